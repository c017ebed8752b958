// Row-wise softmax, numerically stable (the row maximum is subtracted before exp).
// Attention's causal softmax lives in Attention.swift; cross-entropy's in CrossEntropy.swift.
//
// Shapes (legend in Tensor.swift): N rows, V columns. The public kernels are the fast ones; each has a
// plain-loop `…Reference` twin at the bottom of the file that the tests hold it to.

import Foundation

/// out[n] = softmax(inp[n]); out may alias inp.
/// - out, inp: (N, V)
public func softmaxForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int, V: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(V, 1))) { rows in
        for n in rows { softmaxRow(out + n * V, inp + n * V, valid: V, columns: V) }
    }
}

/// y[0..<valid] = scale · softmax(x[0..<valid]) and y[valid..<columns] = 0; y may alias x.
@inline(__always)
func softmaxRow(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, valid: Int, columns: Int,
                scale: Float = 1) {
    let maxValue = rowMax(x, valid)
    var sum = Vec16()
    vectorLoop(0..<valid) { i, count in
        // Padding lanes hold −inf: exp gives 0 there.
        let e = exp16(load16(x + i, count, pad: -.infinity) - maxValue)
        sum += e
        store16(e, y + i, count)
    }
    let inv = scale / sum.sum()
    vectorLoop(0..<valid) { i, count in store16(load16(y + i, count) * inv, y + i, count) }
    (y + valid).update(repeating: 0, count: columns - valid)
}

/// max of p[0..<count] (−inf for an empty row).
@inline(__always)
func rowMax(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var m = Vec16(repeating: -.infinity)
    vectorLoop(0..<count) { i, n in m = max16(m, load16(p + i, n, pad: -.infinity)) }
    return m.max()
}

/// Σ e^(p[i] − shift) over p[0..<count].
@inline(__always)
func rowSumExp(_ p: UnsafePointer<Float>, _ count: Int, shift: Float) -> Float {
    var sum = Vec16()
    vectorLoop(0..<count) { i, n in sum += exp16(load16(p + i, n, pad: -.infinity) - shift) }
    return sum.sum()
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
