// Per-hidden-channel statistics of the residual stream for the calibration-based channel-selection
// rules, in Double, summed over tokens:
//   activation  (issue 5): x_c² at every layer's input (x₀ = the embeddings, …, x_{L−1}) and at the
//               final norm's input x_L; an inference forward, the LM head is not run.
//   norm_output (issue 10, Minitron): |norm output_c| at the 2L + 1 norms (attn_norm, mlp_norm of each
//               layer, the final norm), scale and shift included; an inference forward.
//   taylor      (issue 10): |x_c · ∂L/∂x_c| at the 2L + 1 norm inputs (the stream each norm reads),
//               L the mean cross-entropy; a training forward and backward with base gradients off.
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

    /// Σ over the N = B·T rows of |norm output_c| at each of the 2L + 1 norms, in forward order (layer
    /// l's attn_norm at 2l, its mlp_norm at 2l + 1, the final norm at 2L): 2L + 1 arrays of C Doubles.
    /// - tokens: (B, T) ids, row-major
    public func normOutputAbsSums(tokens: [Int32], B: Int, T: Int) -> [[Double]] {
        checkBatch(tokens, B: B, T: T, start: 0)
        let work = inferenceWorkspace(B: B, T: T), N = B * T
        embed(tokens, into: work.stream, B: B, T: T, start: 0)
        var sums: [[Double]] = []
        sums.reserveCapacity(2 * layers.count + 1)
        for p in layers {
            // Both norm outputs of the layer stay in its (shared) buffers until the next layer runs.
            layerForward(p, work.layer, output: work.stream, scratch: work.scratch, B: B, T: T, cache: nil)
            sums.append(columnAbsSums(work.layer.attnNorm.out, rows: N))
            sums.append(columnAbsSums(work.layer.mlpNorm.out, rows: N))
        }
        normForward(finalNorm, work.finalNorm, inp: work.stream, N: N)
        sums.append(columnAbsSums(work.finalNorm.out, rows: N))
        return sums
    }

    /// Σ over the N = B·T rows of |x_c · ∂L/∂x_c| at each of the 2L + 1 points where a norm reads the
    /// residual stream, in the order of `normOutputAbsSums` (layer l's attn_norm input at 2l, its
    /// mlp_norm input at 2l + 1, the final norm's input at 2L). L is the mean cross-entropy over the
    /// targets that are not −1 and ∂L/∂x the full gradient at that point (see `backward(observingStream:)`).
    /// Base parameter gradients are left as they were (the backward runs with `trainBase` off); adapter
    /// gradients, when there are adapters, accumulate as in any backward.
    /// - tokens, targets: (B, T) ids, row-major
    public func residualTaylorSums(tokens: [Int32], targets: [Int32], B: Int, T: Int) -> [[Double]] {
        let C = config.hiddenSize, N = B * T
        var sums = [[Double]](repeating: [Double](repeating: 0, count: C), count: 2 * layers.count + 1)
        let wasTrainingBase = trainBase
        trainBase = false
        defer { trainBase = wasTrainingBase }
        forward(tokens: tokens, targets: targets, B: B, T: T)
        backward { point, x, dx in
            let xs = x.data, ds = dx.data
            var pointSums = [Double](repeating: 0, count: C)
            for r in 0..<N {
                for c in 0..<C { pointSums[c] += Double(abs(xs[r * C + c] * ds[r * C + c])) }
            }
            sums[point] = pointSums
        }
        return sums
    }

    /// Σ over rows of |x|, per column, of the first `rows` rows of `x` (rows, C).
    private func columnAbsSums(_ x: Tensor, rows: Int) -> [Double] { columnSums(x, rows: rows) { abs($0) } }

    /// Σ over rows of x², per column, of the first `rows` rows of `x` (rows, C); Float within a row's
    /// square, Double across rows.
    private func columnSquareSums(_ x: Tensor, rows: Int) -> [Double] { columnSums(x, rows: rows) { $0 * $0 } }

    /// Σ over the first `rows` rows of `x` (rows, C) of term(x), per column, accumulated in Double.
    private func columnSums(_ x: Tensor, rows: Int, _ term: (Float) -> Float) -> [Double] {
        let C = config.hiddenSize, w = x.data
        var sums = [Double](repeating: 0, count: C)
        for r in 0..<rows {
            let row = w + r * C
            for c in 0..<C { sums[c] += Double(term(row[c])) }
        }
        return sums
    }
}
