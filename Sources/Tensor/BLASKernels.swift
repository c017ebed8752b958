// Which OpenBLAS kernels this process runs on, and whether Streamline had to choose them (see
// CBLASCore: a CPU model newer than the library makes OpenBLAS fall back to generic SSE3 kernels).

import CBLASCore

public enum BLASKernels {
    /// OpenBLAS's kernel set ("Cooperlake", "SkylakeX", "Haswell", ...).
    public static var name: String { String(cString: streamline_blas_core_name()) }

    /// Set when the load-time check replaced OpenBLAS's generic fallback: what it chose and what runs now.
    public static var override: String? { streamline_blas_core_override().map { String(cString: $0) } }

    /// One line for benchmark headers and logs: "OpenBLAS kernels: Cooperlake (…)".
    public static var summary: String {
        "OpenBLAS kernels: \(name)" + (override.map { " (\($0))" } ?? "")
    }
}
