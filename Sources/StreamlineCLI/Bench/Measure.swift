// Measuring helpers for `streamline bench`: wall-clock timing, raw cblas_sgemm on given shapes,
// the machine's FMA peak, and peak resident memory. Benchmarks report ratios measured in one run
// because this machine is shared and noisy; absolute numbers alone mean little.

import CBLAS
import CPeak
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

    /// Runs `body` `repeats` times (after the caller's warm-up) and returns every time.
    static func samples(repeats: Int, _ body: () throws -> Void) rethrows -> Samples {
        var times: [Double] = []
        for _ in 0..<max(1, repeats) { times.append(try seconds(body)) }
        return Samples(times)
    }

    /// Raw `cblas_sgemm` on a fixed set of calls: one BLAS call per product (K not sliced, unlike
    /// Tensor's `sgemm` wrapper) with the current thread budget, on random operands allocated once.
    final class RawSgemm {
        let calls: [(shape: GEMMShape, count: Int)]
        private let a: Tensor, b: Tensor, c: Tensor

        init(_ calls: [(shape: GEMMShape, count: Int)]) {
            self.calls = calls
            a = Tensor.randn([calls.map { $0.shape.M * $0.shape.K }.max() ?? 1], seed: 1)
            b = Tensor.randn([calls.map { $0.shape.K * $0.shape.N }.max() ?? 1], seed: 2)
            c = Tensor(zeros: [calls.map { $0.shape.M * $0.shape.N }.max() ?? 1])
            _ = seconds()  // warm-up: BLAS threads started, pages touched
        }

        /// Floating-point operations of one round: Σ count · 2MNK.
        var flops: Double { calls.reduce(0) { $0 + Double($1.count) * $1.shape.flops } }

        /// Seconds raw sgemm needs for one round: each product timed once, times its count.
        func seconds() -> Double {
            calls.reduce(0) { total, call in
                let s = call.shape
                let (lda, ldb) = (s.transA ? s.M : s.K, s.transB ? s.K : s.N)
                return total + Double(call.count) * Measure.seconds {
                    cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans,
                                Int32(s.M), Int32(s.N), Int32(s.K), 1, a.data, Int32(lda), b.data, Int32(ldb), 0, c.data, Int32(s.N))
                }
            }
        }
    }

    /// The machine's fp32 peak for `threads` threads: a loop of independent FMAs (CPeak) run on that
    /// many threads at once, in the widest vectors the CPU has, best of `repeats` runs of ~20 ms (a
    /// peak is a best case; a busy machine only lowers single runs). nil when the CPU has neither
    /// AVX-512 nor AVX2+FMA.
    static func fmaPeak(threads: Int, repeats: Int = 7) -> (gflops: Double, lanes: Int)? {
        var best: (gflops: Double, lanes: Int)?
        for lanes in [16, 8] where cpeak_fma_flops(1, Int32(lanes)) > 0 {
            let iterations = 10_000_000 * 8 / lanes
            // What each thread does: 12 chains × lanes × 2 flops per iteration (CPeak.h).
            let flopsPerThread = cpeak_fma_flops(1, Int32(lanes)) * Double(iterations)
            for _ in 0..<repeats {
                let seconds = Measure.seconds {
                    DispatchQueue.concurrentPerform(iterations: threads) { _ in
                        _ = cpeak_fma_flops(iterations, Int32(lanes))
                    }
                }
                let gflops = Double(threads) * flopsPerThread / seconds / 1e9
                if gflops > best?.gflops ?? 0 { best = (gflops, lanes) }
            }
        }
        return best
    }
}

/// Times of repeated runs, sorted.
struct Samples {
    let seconds: [Double]
    init(_ times: [Double]) { seconds = times.sorted() }
    var median: Double { seconds[seconds.count / 2] }
    var min: Double { seconds.first ?? 0 }
    var max: Double { seconds.last ?? 0 }
    /// (slowest − fastest) / median.
    var spread: Double { median > 0 ? (max - min) / median : 0 }
    var count: Int { seconds.count }
}

/// Peak resident memory of this process, from /proc/self/status (Linux).
enum PeakMemory {
    /// VmHWM in bytes (0 where /proc is unavailable).
    static func bytes() -> Int { status("VmHWM:") }

    /// Resident size now (VmRSS) in bytes (0 where /proc is unavailable).
    static func resident() -> Int { status("VmRSS:") }

    /// A "Vm…: N kB" line of /proc/self/status, in bytes.
    private static func status(_ key: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(key) {
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
