// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) over the trainable parameters only:
// ‖g‖ = √Σ g² across every trainable scalar of every set, accumulated in Double over fixed blocks so
// the result has the same bits for any thread count. Frozen gradients are neither counted nor scaled.

import Tensor

/// Multiplies the trainable gradients of `sets` by `scale` (e.g. 1/accumulation), then, when `maxNorm`
/// is set and the scaled norm exceeds it, scales them down to `maxNorm`. Returns the norm after `scale`
/// and before clipping.
@discardableResult
public func clipGradients(_ sets: [ParameterSet], mask: TrainableMask, maxNorm: Float?, scale: Float = 1) -> Double {
    let layout = SpanLayout(sets: sets, mask: mask, decays: { _ in false })
    return clipGradients(sets, layout: layout, maxNorm: maxNorm, scale: scale)
}

/// The global ℓ2 norm of the trainable gradients of `sets`, in Double.
public func gradientNorm(_ sets: [ParameterSet], mask: TrainableMask) -> Double {
    gradientNorm(sets, layout: SpanLayout(sets: sets, mask: mask, decays: { _ in false }))
}

extension AdamW {
    /// `clipGradients` over this optimiser's sets and mask (no layout rebuilt).
    @discardableResult
    public func clipGradients(maxNorm: Float?, scale: Float = 1) -> Double {
        Training.clipGradients(sets, layout: layout, maxNorm: maxNorm, scale: scale)
    }
}

func clipGradients(_ sets: [ParameterSet], layout: SpanLayout, maxNorm: Float?, scale: Float) -> Double {
    let norm = gradientNorm(sets, layout: layout) * Double(abs(scale))
    var factor = Double(scale)
    // torch's clip coefficient: max_norm / (norm + 1e-6), applied only when below 1; the 1e-6 keeps a
    // zero gradient from dividing by zero.
    if let maxNorm, norm.isFinite {
        let coefficient = Double(maxNorm) / (norm + 1e-6)
        if coefficient < 1 { factor *= coefficient }
    }
    if factor != 1 { scaleGradients(sets, layout: layout, by: Float(factor)) }
    return norm
}

func gradientNorm(_ sets: [ParameterSet], layout: SpanLayout) -> Double {
    let grads = sets.map(\.grads.data)
    var partial = [Double](repeating: 0, count: layout.blockCount)
    partial.withUnsafeMutableBufferPointer { out in
        let out = out
        layout.parallelBlocks { block in
            var sum = 0.0
            layout.forEachPiece(ofBlock: block) { span, lo, hi in
                sum += sumOfSquares(grads[span.set] + span.start + lo, n: hi - lo)
            }
            out[block] = sum
        }
    }
    // Blocks are added in order, so the sum does not depend on how they were spread over threads.
    return partial.reduce(0, +).squareRoot()
}

/// Σ x² over x: (n,), accumulated in Double lanes.
@inline(__always)
func sumOfSquares(_ x: UnsafeMutablePointer<Float>, n: Int) -> Double {
    var acc = SIMD8<Double>()
    var i = 0
    while i + 8 <= n {
        let d = SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
        acc += d * d
        i += 8
    }
    var sum = acc.sum()
    while i < n {
        let d = Double(x[i])
        sum += d * d
        i += 1
    }
    return sum
}

func scaleGradients(_ sets: [ParameterSet], layout: SpanLayout, by factor: Float) {
    let grads = sets.map(\.grads.data)
    layout.parallelBlocks { block in
        layout.forEachPiece(ofBlock: block) { span, lo, hi in
            let g = grads[span.set] + span.start + lo
            for i in 0..<(hi - lo) { g[i] *= factor }
        }
    }
}
