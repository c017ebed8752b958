// OpenBLAS must run kernels that match the CPU: on a model newer than the library it falls back to
// Prescott's SSE3 kernels (6x slower GEMM, thread-count-dependent sums) unless CBLASCore re-selects.

import Foundation
import Testing
import Tensor

@Suite struct BLASKernelsTests {
    /// The CPU's instruction-set flags, from /proc/cpuinfo (empty where there is none).
    var cpuFlags: Set<Substring> {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " "))
    }

    @Test func kernelsMatchTheCPUsVectorUnits() {
        let generic: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge"]
        let flags = cpuFlags
        if flags.contains("avx2") && flags.contains("fma") && ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            #expect(!generic.contains(BLASKernels.name), "\(BLASKernels.summary)")
        }
        #expect(BLASKernels.summary.hasPrefix("OpenBLAS kernels: \(BLASKernels.name)"))
    }
}
