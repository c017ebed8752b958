// Per-hidden-channel statistics of the residual stream, for the `activation` channel-selection rule
// (issue 5): Σ over tokens of x_c² at every layer's input (x₀ = the embeddings, …, x_{L−1}) and at the
// final norm's input x_L, in Double. A forward pass of the inference path that reads the stream
// between layers; nothing is kept and the LM head is not run.
// Not here: turning the sums into a ranking (Training/ChannelSelection.swift) or choosing the text.

import Tensor

extension Decoder {
    /// Σ over the N = B·T rows of x_c² at each of the L + 1 points where the residual stream is read by
    /// a norm (every layer's input, then the final norm's input): L + 1 arrays of C Doubles.
    /// Divide by N (summed over every batch) for mean squares.
    /// - tokens: (B, T) ids, row-major
    public func residualSquareSums(tokens: [Int32], B: Int, T: Int) -> [[Double]] {
        checkBatch(tokens, B: B, T: T, start: 0)
        let work = inferenceWorkspace(B: B, T: T)
        embed(tokens, into: work.stream, B: B, T: T, start: 0)
        var sums: [[Double]] = []
        sums.reserveCapacity(layers.count + 1)
        for p in layers {
            sums.append(columnSquareSums(work.stream, rows: B * T))
            layerForward(p, work.layer, output: work.stream, scratch: work.scratch, B: B, T: T, cache: nil)
        }
        sums.append(columnSquareSums(work.stream, rows: B * T))
        return sums
    }

    /// Σ over rows of x², per column, of the first `rows` rows of `x` (rows, C); Float within a row's
    /// square, Double across rows.
    private func columnSquareSums(_ x: Tensor, rows: Int) -> [Double] {
        let C = config.hiddenSize, w = x.data
        var sums = [Double](repeating: 0, count: C)
        for r in 0..<rows {
            let row = w + r * C
            for c in 0..<C { sums[c] += Double(row[c] * row[c]) }
        }
        return sums
    }
}
