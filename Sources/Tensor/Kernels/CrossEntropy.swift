// Cross-entropy over rows of logits, forward (per-row losses) and backward (dlogits).
// The model calls these on chunks of rows so the full (B·T, V) logits never exist at once.
// Target −1 marks an ignored row: loss 0 and zero gradient. Not the mean over rows (the caller's).
//
// Shapes (legend in Tensor.swift): N rows, V vocabulary. The public kernels are the fast ones; each has a
// plain-loop `…Reference` twin at the bottom of the file that the tests hold it to.

import Foundation

/// losses[n] = logsumexp(logits[n]) − logits[n][targets[n]], or 0 where targets[n] == −1.
/// - losses: (N)
/// - logits: (N, V)
/// - targets: (N), in 0..<V or −1
public func crossEntropyForward(losses: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, N: Int, V: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.loss, profiled) }
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(V, 1))) { rows in
        for n in rows {
            let target = crossEntropyTarget(targets, n, V: V)
            if target < 0 { losses[n] = 0; continue }
            let x = logits + n * V
            let maxValue = rowMax(x, V)
            losses[n] = log(rowSumExp(x, V, shift: maxValue)) + maxValue - x[target]
        }
    }
}

/// dlogits[n] = (softmax(logits[n]) − onehot(targets[n])) · dlosses[n]; ignored rows get 0.
/// WRITES (does not accumulate) so `dlogits` may alias `logits` and reuse their memory.
/// - dlogits, logits: (N, V)
/// - targets, dlosses: (N)
public func crossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                 targets: UnsafePointer<Int32>, dlosses: UnsafePointer<Float>, N: Int, V: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.loss, profiled) }
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(V, 1))) { rows in
        for n in rows {
            let target = crossEntropyTarget(targets, n, V: V)
            let x = logits + n * V, dx = dlogits + n * V
            if target < 0 {
                dx.update(repeating: 0, count: V)
                continue
            }
            // softmaxRow reads each vector before writing it, so dlogits may be the logits' own memory.
            softmaxRow(dx, x, valid: V, columns: V, scale: dlosses[n])
            dx[target] -= dlosses[n]
        }
    }
}

@inline(__always)
func crossEntropyTarget(_ targets: UnsafePointer<Int32>, _ n: Int, V: Int) -> Int {
    let target = Int(targets[n])
    precondition(target >= -1 && target < V, "crossEntropy: target \(target) of row \(n) is outside 0..<\(V) (or -1)")
    return target
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `crossEntropyForward`.
public func crossEntropyForwardReference(losses: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                         targets: UnsafePointer<Int32>, N: Int, V: Int) {
    for n in 0..<N {
        let target = crossEntropyTarget(targets, n, V: V)
        if target < 0 { losses[n] = 0; continue }
        let x = logits + n * V
        var maxValue = -Float.infinity
        for i in 0..<V { maxValue = max(maxValue, x[i]) }
        var sum: Float = 0
        for i in 0..<V { sum += exp(x[i] - maxValue) }
        losses[n] = log(sum) + maxValue - x[target]
    }
}

/// Plain-loop `crossEntropyBackward`.
public func crossEntropyBackwardReference(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                          targets: UnsafePointer<Int32>, dlosses: UnsafePointer<Float>,
                                          N: Int, V: Int) {
    for n in 0..<N {
        let target = crossEntropyTarget(targets, n, V: V)
        let x = logits + n * V, dx = dlogits + n * V
        if target < 0 {
            for i in 0..<V { dx[i] = 0 }
            continue
        }
        var maxValue = -Float.infinity
        for i in 0..<V { maxValue = max(maxValue, x[i]) }
        var sum: Float = 0
        for i in 0..<V { sum += exp(x[i] - maxValue) }
        let scale = dlosses[n] / sum
        // Read x[i] before writing dx[i]: the two may be the same memory.
        for i in 0..<V { dx[i] = exp(x[i] - maxValue) * scale }
        dx[target] -= dlosses[n]
    }
}
