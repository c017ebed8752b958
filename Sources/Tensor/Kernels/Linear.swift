// Linear layer forward and backward: out = inp · weightᵀ + bias, weight row-major (OUT, IN) as in
// PyTorch and GGUF. The products go through cblas_sgemm (GEMM.swift); the backward uses beta = 1 so
// gradients accumulate. Not LoRA (Training) and not attention's batched products (Attention.swift).
//
// Shapes (legend in Tensor.swift): N rows, IN and OUT features. The public kernels are the fast ones; each
// has a plain-loop `…Reference` twin at the bottom of the file that the tests hold it to.

/// Forward linear layer; overwrites `out`.
/// - out: (N, OUT)
/// - inp: (N, IN)
/// - weight: (OUT, IN)
/// - bias: (OUT), or nil for no bias
public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          N: Int, IN: Int, OUT: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.gemm, profiled) }
    if let bias {
        // Broadcast the bias into out first, then let sgemm add the product on top (beta = 1).
        Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(OUT, 1))) { rows in
            for n in rows { (out + n * OUT).update(from: bias, count: OUT) }
        }
    }
    sgemm(transB: true, M: N, N: OUT, K: IN, A: inp, lda: IN, B: weight, ldb: IN,
          beta: bias == nil ? 0 : 1, C: out, ldc: OUT)
}

/// Backward of `linearForward`; accumulates into every gradient that is not nil.
/// - dinp: (N, IN) += dout · weight
/// - dweight: (OUT, IN) += doutᵀ · inp
/// - dbias: (OUT) += Σₙ dout
/// - dout: (N, OUT); inp: (N, IN); weight: (OUT, IN)
public func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                           dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                           inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           N: Int, IN: Int, OUT: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.gemm, profiled) }
    if let dinp {
        sgemm(M: N, N: IN, K: OUT, A: dout, lda: OUT, B: weight, ldb: IN, beta: 1, C: dinp, ldc: IN)
    }
    if let dweight {
        sgemm(transA: true, M: OUT, N: IN, K: N, A: dout, lda: OUT, B: inp, ldb: IN, beta: 1, C: dweight, ldc: IN)
    }
    if let dbias {
        parallelColumns(OUT, rows: N) { columns in
            for n in 0..<N {
                let row = dout + n * OUT
                for o in columns { dbias[o] += row[o] }
            }
        }
    }
}

// MARK: - Reference (plain loops; the sgemm versions are tested against these)

/// Plain-loop `linearForward`.
public func linearForwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                   N: Int, IN: Int, OUT: Int) {
    for n in 0..<N {
        for o in 0..<OUT {
            var acc: Float = bias?[o] ?? 0
            for i in 0..<IN { acc += inp[n * IN + i] * weight[o * IN + i] }
            out[n * OUT + o] = acc
        }
    }
}

/// Plain-loop `linearBackward`.
public func linearBackwardReference(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                                    dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    N: Int, IN: Int, OUT: Int) {
    for n in 0..<N {
        for o in 0..<OUT {
            let g = dout[n * OUT + o]
            if let dbias { dbias[o] += g }
            for i in 0..<IN {
                dinp?[n * IN + i] += g * weight[o * IN + i]
                dweight?[o * IN + i] += g * inp[n * IN + i]
            }
        }
    }
}
