// The trainable parts of one or more ParameterSets as contiguous runs ("spans") of their flat buffers,
// so the optimiser and the clipper walk long vectorisable loops instead of per-parameter views and
// never see a frozen parameter. Work is cut into fixed-size blocks of that virtual concatenation:
// block boundaries do not depend on the thread count, so reductions (the gradient norm) give the same
// bits with 1 or 2 threads.

import Tensor

/// One contiguous run of trainable scalars inside set `set`'s flat buffers.
struct Span {
    /// Index of the ParameterSet.
    let set: Int
    /// First scalar inside that set's `values` / `grads`.
    let start: Int
    /// Number of scalars.
    let count: Int
    /// Whether weight decay applies to this run.
    let decays: Bool
}

/// Every trainable scalar of a list of sets, as spans laid end to end in a virtual index space 0..<total.
struct SpanLayout {
    let spans: [Span]
    /// Virtual index of each span's first scalar.
    let starts: [Int]
    /// Number of trainable scalars.
    let total: Int

    /// Scalars per block of work; big enough to amortise a thread hand-off, small enough to split
    /// a 135M-parameter model into thousands of blocks.
    static let blockSize = 1 << 15

    /// Spans of the trainable parameters of `sets`; neighbours with equal `decays` are merged.
    init(sets: [ParameterSet], mask: TrainableMask, decays: (ParameterSpec) -> Bool) {
        var spans: [Span] = []
        for (s, set) in sets.enumerated() {
            for (i, spec) in set.specs.enumerated() where mask.flags[s][i] && spec.count > 0 {
                let start = set.offsets[i], decay = decays(spec)
                if let last = spans.last, last.set == s, last.decays == decay, last.start + last.count == start {
                    spans[spans.count - 1] = Span(set: s, start: last.start, count: last.count + spec.count, decays: decay)
                } else {
                    spans.append(Span(set: s, start: start, count: spec.count, decays: decay))
                }
            }
        }
        self.spans = spans
        (starts, total) = runningOffsets(spans.map(\.count))
    }

    /// Number of fixed-size blocks covering 0..<total.
    var blockCount: Int { (total + Self.blockSize - 1) / Self.blockSize }

    /// Calls `body(span, lo, hi)` for each piece of block `block`; lo..<hi are offsets inside the span.
    func forEachPiece(ofBlock block: Int, _ body: (Span, Int, Int) -> Void) {
        let lo = block * Self.blockSize, hi = min(total, lo + Self.blockSize)
        // Binary search for the last span starting at or before lo.
        var a = 0, b = spans.count - 1
        while a < b {
            let mid = (a + b + 1) / 2
            if starts[mid] <= lo { a = mid } else { b = mid - 1 }
        }
        var k = a
        while k < spans.count, starts[k] < hi {
            let from = max(lo, starts[k]) - starts[k]
            let to = min(hi, starts[k] + spans[k].count) - starts[k]
            if from < to { body(spans[k], from, to) }
            k += 1
        }
    }

    /// Runs `body` over every block, blocks spread over the configured threads.
    func parallelBlocks(_ body: (Int) -> Void) {
        Threading.parallelFor(blockCount) { range in
            for block in range { body(block) }
        }
    }
}

/// Where each of `counts` starts when laid end to end, and the total: ([0, c0, c0 + c1, …], Σ counts).
func runningOffsets(_ counts: [Int]) -> (starts: [Int], total: Int) {
    var starts: [Int] = []
    starts.reserveCapacity(counts.count)
    var total = 0
    for count in counts {
        starts.append(total)
        total += count
    }
    return (starts, total)
}
