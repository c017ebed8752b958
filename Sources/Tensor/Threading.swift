// One threading policy for the process: `Threading.configure(threads:)` sets how many cores kernels
// may use. BLAS gets that many threads; `parallelFor` splits loops into at most that many chunks.
// Kernels never nest a parallel loop inside a BLAS call or another parallel loop, so there is no
// oversubscription.

import CBLAS
import Dispatch
import Foundation
import Synchronization

public enum Threading {
    private static let configured = Atomic<Int>(0)

    /// Number of cores on this machine.
    public static var coreCount: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Threads kernels may use (defaults to every core until `configure` is called).
    public static var threads: Int {
        let n = configured.load(ordering: .relaxed)
        return n > 0 ? n : coreCount
    }

    /// Sets the thread budget for BLAS and parallel loops (clamped to at least 1).
    public static func configure(threads: Int) {
        let n = max(1, threads)
        configured.store(n, ordering: .relaxed)
        openblas_set_num_threads(Int32(n))
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, one per thread (at most `threads`).
    /// Chunks below `minChunk` items are merged so tiny loops stay on the calling thread.
    public static func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let budget = threads
        let workers = min(budget, max(1, count / max(1, minChunk)))
        // With OpProfile on: the loop offers budget × wall thread time; chunks report what they used.
        let started = OpProfile.start()
        defer {
            if started != 0 { OpProfile.addOffered(UInt64(budget) * (OpProfile.now() &- started)) }
        }
        if workers <= 1 {
            body(0..<count)
            if started != 0 { OpProfile.addBusy(OpProfile.now() &- started) }
            return
        }
        let chunk = (count + workers - 1) / workers
        withoutActuallyEscaping(body) { body in
            // concurrentPerform returns only when every chunk is done and chunks are disjoint, so the
            // non-Sendable body (it captures raw pointers) is never used after or across this call.
            let shared = UncheckedSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = w * chunk, hi = min(count, lo + chunk)
                let chunkStarted = started != 0 ? OpProfile.now() : 0
                if lo < hi { shared.value(lo..<hi) }
                if chunkStarted != 0 { OpProfile.addBusy(OpProfile.now() &- chunkStarted) }
            }
        }
    }
}

/// Carries a value into a @Sendable closure when the caller guarantees data-race freedom by
/// construction (disjoint writes, synchronous joins). Use sparingly and say why at each use.
public struct UncheckedSendableBox<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
