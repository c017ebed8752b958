// Row-wise softmax, numerically stable (the row maximum is subtracted before exp).
// Attention's causal softmax lives in Attention.swift; cross-entropy's in CrossEntropy.swift.

import Foundation

/// out[n] = softmax(inp[n]); out may alias inp.
/// - out, inp: (N, V)
public func softmaxForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int, V: Int) {
    softmaxForwardReference(out: out, inp: inp, N: N, V: V)
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `softmaxForward`.
public func softmaxForwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int, V: Int) {
    for n in 0..<N {
        let x = inp + n * V, y = out + n * V
        var maxValue = -Float.infinity
        for i in 0..<V { maxValue = max(maxValue, x[i]) }
        var sum: Float = 0
        for i in 0..<V {
            y[i] = exp(x[i] - maxValue)
            sum += y[i]
        }
        let inv = 1 / sum
        for i in 0..<V { y[i] *= inv }
    }
}
