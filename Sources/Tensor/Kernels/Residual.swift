// Residual connections and small elementwise helpers: out = inp1 + inp2 and its backward,
// out += inp, out *= scale; and the residual connection through a matrix of SliceGPT models,
// out = inp1·weightᵀ + inp2 (its products through cblas_sgemm, GEMM.swift). Nothing here allocates.
// Plain loops: with bounds checks off they vectorise on their own, and they run in parallel chunks
// when long.
//
// Shapes (legend in Tensor.swift): N elements, or N rows of C for the matrix connection. The public
// kernels are the fast ones; each has a plain-loop `…Reference` twin at the bottom of the file that
// the tests hold it to.

/// out = inp1 + inp2. out, inp1, inp2: (N); out may alias either input.
public func residualForward(out: UnsafeMutablePointer<Float>, inp1: UnsafePointer<Float>,
                           inp2: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        for i in range { out[i] = inp1[i] + inp2[i] }
    }
}

/// dinp1 += dout; dinp2 += dout. All (N).
public func residualBackward(dinp1: UnsafeMutablePointer<Float>, dinp2: UnsafeMutablePointer<Float>,
                             dout: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        for i in range {
            dinp1[i] += dout[i]
            dinp2[i] += dout[i]
        }
    }
}

/// Residual connection through a matrix (SliceGPT's shortcut): out = inp1·weightᵀ + inp2.
/// - out: (N, C); may be inp2 (the branch accumulates the shortcut), never inp1
/// - inp1: (N, C) the residual stream; inp2: (N, C) the block's output
/// - weight: (C, C) row-major (out, in), like a linear layer's
public func residualMatrixForward(out: UnsafeMutablePointer<Float>, inp1: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                  inp2: UnsafePointer<Float>, N: Int, C: Int) {
    precondition(UnsafePointer(out) != inp1, "residualMatrixForward: out may not alias inp1")
    if UnsafePointer(out) != inp2 { out.update(from: inp2, count: N * C) }
    sgemm(transB: true, M: N, N: C, K: C, A: inp1, lda: C, B: weight, ldb: C, beta: 1, C: out, ldc: C)
}

/// Backward of `residualMatrixForward`; accumulates into every gradient that is not nil.
/// - dinp1: (N, C) += dout·weight (must not alias dout)
/// - dweight: (C, C) += doutᵀ·inp1
/// - dinp2: (N, C) += dout
/// - dout, inp1: (N, C); weight: (C, C)
public func residualMatrixBackward(dinp1: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                   dinp2: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                   inp1: UnsafePointer<Float>, weight: UnsafePointer<Float>, N: Int, C: Int) {
    linearBackward(dinp: dinp1, dweight: dweight, dbias: nil, dout: dout, inp: inp1, weight: weight, N: N, IN: C, OUT: C)
    if let dinp2 { addInPlace(out: dinp2, inp: dout, N: N * C) }
}

/// out += inp. out, inp: (N).
public func addInPlace(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        addInPlaceSerial(out: out + range.lowerBound, inp: inp + range.lowerBound, N: range.count)
    }
}

/// out += inp on the calling thread (for use inside parallel loops). out, inp: (N).
@inline(__always)
func addInPlaceSerial(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N { out[i] += inp[i] }
}

/// out *= scale. out: (N).
public func scaleInPlace(out: UnsafeMutablePointer<Float>, scale: Float, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        for i in range { out[i] *= scale }
    }
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `residualForward`.
public func residualForwardReference(out: UnsafeMutablePointer<Float>, inp1: UnsafePointer<Float>,
                                    inp2: UnsafePointer<Float>, N: Int) {
    for i in 0..<N { out[i] = inp1[i] + inp2[i] }
}

/// Plain-loop `residualBackward`.
public func residualBackwardReference(dinp1: UnsafeMutablePointer<Float>, dinp2: UnsafeMutablePointer<Float>,
                                     dout: UnsafePointer<Float>, N: Int) {
    for i in 0..<N {
        dinp1[i] += dout[i]
        dinp2[i] += dout[i]
    }
}


/// Plain-loop `residualMatrixForward` (out must not alias either input).
public func residualMatrixForwardReference(out: UnsafeMutablePointer<Float>, inp1: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                           inp2: UnsafePointer<Float>, N: Int, C: Int) {
    for n in 0..<N {
        for o in 0..<C {
            var acc = inp2[n * C + o]
            for i in 0..<C { acc += inp1[n * C + i] * weight[o * C + i] }
            out[n * C + o] = acc
        }
    }
}

/// Plain-loop `residualMatrixBackward`.
public func residualMatrixBackwardReference(dinp1: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                            dinp2: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                            inp1: UnsafePointer<Float>, weight: UnsafePointer<Float>, N: Int, C: Int) {
    for n in 0..<N {
        for o in 0..<C {
            let g = dout[n * C + o]
            dinp2?[n * C + o] += g
            for i in 0..<C {
                dinp1[n * C + i] += g * weight[o * C + i]
                dweight?[o * C + i] += g * inp1[n * C + i]
            }
        }
    }
}
