// Where a training step's wall-clock time goes, op by op, for `streamline bench engine --breakdown`
// (issue 13). Off unless a benchmark turns it on. Then every public kernel adds its duration to its
// category, and `Threading.parallelFor` adds the thread time its workers spent waiting. When off, a
// kernel pays one relaxed atomic load at entry and a compare at exit.
//
// Timed kernels are called only from the thread that drives the model, never from inside one another
// (Decoder calls them one after the other), so their times add up without overlap. What no kernel
// covers (zeroing buffers, copies, LoRA's direct sgemm calls, the driver's own loops) is the remainder
// a report shows as "other". Not a tracer: no per-call records, only totals.

import Dispatch
import Synchronization

public enum OpProfile {
    /// What a timed kernel counts as.
    public enum Category: Int, CaseIterable, Sendable {
        /// Linear layers and the LM head (linearForward, linearBackward).
        case gemm
        /// Causal attention: scores, softmax, weighted values and their backward (its own small sgemms).
        case attention
        /// RMSNorm and LayerNorm.
        case norm
        /// RoPE, activations, residual adds.
        case elementwise
        /// Cross-entropy and the distillation loss over the LM head's chunks.
        case loss
        /// Token (and position) embedding lookups and their backward.
        case embedding
        /// The optimiser's update.
        case optimizer

        /// Short label for reports.
        public var label: String {
            switch self {
            case .gemm: "GEMM (linear layers, LM head)"
            case .attention: "attention"
            case .norm: "norms"
            case .elementwise: "elementwise (RoPE, SwiGLU, residual)"
            case .loss: "loss (cross-entropy / KD)"
            case .embedding: "embedding"
            case .optimizer: "optimizer (AdamW)"
            }
        }
    }

    /// Totals since the last `reset()`: nanoseconds per category (indexed by rawValue), and the
    /// thread time parallel loops offered and used.
    public struct Totals: Sendable {
        /// Wall-clock nanoseconds spent inside each category's kernels.
        public var nanoseconds: [UInt64]
        /// Σ over parallelFor calls of (thread budget × the call's wall time), in nanoseconds.
        public var parallelOffered: UInt64
        /// Σ over parallelFor calls of the time chunks spent running, in nanoseconds.
        public var parallelBusy: UInt64

        /// Thread time parallel loops left unused: hand-offs, waiting for the slowest chunk, and loops
        /// too short to split (the other threads wait for all of it).
        public var parallelIdle: UInt64 { parallelOffered > parallelBusy ? parallelOffered - parallelBusy : 0 }
    }

    private static let on = Atomic<Bool>(false)
    private static let totals = Mutex<[UInt64]>([UInt64](repeating: 0, count: Category.allCases.count))
    private static let offered = Atomic<UInt64>(0)
    private static let busy = Atomic<UInt64>(0)

    /// Whether kernels are being timed.
    @inline(__always)
    public static var isOn: Bool { on.load(ordering: .relaxed) }

    /// Starts (or stops) timing kernels. Totals keep accumulating until `reset()`.
    public static func enable(_ value: Bool) { on.store(value, ordering: .relaxed) }

    /// Sets every total to zero.
    public static func reset() {
        totals.withLock { $0 = [UInt64](repeating: 0, count: Category.allCases.count) }
        offered.store(0, ordering: .relaxed)
        busy.store(0, ordering: .relaxed)
    }

    /// The totals so far.
    public static func snapshot() -> Totals {
        Totals(nanoseconds: totals.withLock { $0 }, parallelOffered: offered.load(ordering: .relaxed),
               parallelBusy: busy.load(ordering: .relaxed))
    }

    /// A start mark for `stop`: the current time when timing is on, else 0 (and `stop` does nothing).
    @inline(__always)
    public static func start() -> UInt64 { isOn ? now() : 0 }

    /// Adds the time since `started` (from `start()`) to `category`.
    @inline(__always)
    public static func stop(_ category: Category, _ started: UInt64) {
        guard started != 0 else { return }
        let elapsed = now() &- started
        totals.withLock { $0[category.rawValue] &+= elapsed }
    }

    /// A parallel loop's thread time: its wall time × the thread budget (`Threading.parallelFor`,
    /// while timing is on).
    static func addOffered(_ nanoseconds: UInt64) { offered.add(nanoseconds, ordering: .relaxed) }

    /// Time one chunk of a parallel loop ran, from whichever thread ran it.
    static func addBusy(_ nanoseconds: UInt64) { busy.add(nanoseconds, ordering: .relaxed) }

    /// Monotonic nanoseconds.
    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
