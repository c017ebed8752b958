// Measuring helpers for `streamline bench`: wall-clock timing, the cblas_sgemm reference rate,
// and peak resident memory. Benchmarks report ratios measured in one run because this machine is
// shared and noisy; absolute numbers alone mean little.

import Foundation
import Tensor

enum Measure {
    /// Seconds taken by `body`.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Runs `body` at least `minRuns` times and until `minSeconds` have passed; returns the median time.
    static func median(minRuns: Int = 3, minSeconds: Double = 1.0, _ body: () throws -> Void) rethrows -> Double {
        var times: [Double] = []
        var total = 0.0
        while times.count < minRuns || total < minSeconds {
            let t = try seconds(body)
            times.append(t)
            total += t
        }
        times.sort()
        return times[times.count / 2]
    }

    /// GFLOP/s of cblas_sgemm for C[M×N] = A[M×K]·B[K×N] (optionally Bᵀ) with the current thread budget.
    static func sgemmGFLOPS(M: Int, N: Int, K: Int, transB: Bool = false, minSeconds: Double = 0.5) -> Double {
        let a = Tensor.randn([M, K], seed: 1), b = Tensor.randn(transB ? [N, K] : [K, N], seed: 2)
        let c = Tensor(zeros: [M, N])
        sgemm(transB: transB, M: M, N: N, K: K, A: a.data, lda: K, B: b.data, ldb: transB ? K : N, C: c.data, ldc: N)
        let t = median(minSeconds: minSeconds) {
            sgemm(transB: transB, M: M, N: N, K: K, A: a.data, lda: K, B: b.data, ldb: transB ? K : N, C: c.data, ldc: N)
        }
        return 2 * Double(M) * Double(N) * Double(K) / t / 1e9
    }
}

/// Peak resident memory of this process, from /proc/self/status (Linux).
enum PeakMemory {
    /// VmHWM in bytes (0 where /proc is unavailable).
    static func bytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }

    /// Resets the high-water mark to the current resident size so the next phase is measured alone
    /// (Linux ≥ 4.0: writing 5 to clear_refs). Returns false where that is not allowed.
    @discardableResult
    static func reset() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)); return true } catch { return false }
    }
}

extension Double {
    /// "123.4" style formatting for tables.
    func formatted(_ decimals: Int) -> String { String(format: "%.\(decimals)f", self) }
}

/// Human-readable byte counts (MiB/GiB).
func formatBytes(_ bytes: Int) -> String {
    let mib = Double(bytes) / 1_048_576
    return mib >= 1024 ? "\((mib / 1024).formatted(2)) GiB" : "\(mib.formatted(1)) MiB"
}
