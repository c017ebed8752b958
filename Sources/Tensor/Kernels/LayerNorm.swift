// LayerNorm forward and backward (GPT-2/OPT family):
// mean = Σ inp / D, var = Σ inp² / D − mean², out = (inp − mean) · rstd · weight + bias, rstd = 1/sqrt(var + eps).
// Not RMSNorm: see RMSNorm.swift.
//
// D is the divisor of both moments. It equals C for a dense model; a pruned model keeps the original
// width as D (the deleted channels were regularised to zero, so the sums are unchanged).

/// Forward LayerNorm over the last axis; overwrites `out`, `mean` and `rstd`.
/// - out: (N, C)
/// - mean, rstd: (N), saved for the backward
/// - inp: (N, C)
/// - weight, bias: (C)
public func layernormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             N: Int, C: Int, D: Int, eps: Float) {
    layernormForwardReference(out: out, mean: mean, rstd: rstd, inp: inp, weight: weight, bias: bias,
                              N: N, C: C, D: D, eps: eps)
}

/// Backward of `layernormForward`; accumulates into `dinp`, and into `dweight`/`dbias` when given.
/// - dinp: (N, C)
/// - dweight, dbias: (C), nil when frozen
/// - dout, inp: (N, C); weight: (C); mean, rstd: (N) from the forward
public func layernormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                              dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                              inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                              N: Int, C: Int, D: Int) {
    layernormBackwardReference(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight,
                               mean: mean, rstd: rstd, N: N, C: C, D: D)
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `layernormForward`.
public func layernormForwardReference(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                      rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                      weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                      N: Int, C: Int, D: Int, eps: Float) {
    precondition(D > 0, "layernormForward: divisor D must be positive, got \(D)")
    for n in 0..<N {
        let x = inp + n * C, y = out + n * C
        var sum: Float = 0, sumSq: Float = 0
        for i in 0..<C { sum += x[i]; sumSq += x[i] * x[i] }
        let m = sum / Float(D)
        // Clamp at zero: the one-pass variance can round slightly negative for near-constant rows.
        let variance = max(sumSq / Float(D) - m * m, 0)
        let r = 1 / (variance + eps).squareRoot()
        mean[n] = m
        rstd[n] = r
        for i in 0..<C { y[i] = (x[i] - m) * r * weight[i] + bias[i] }
    }
}

/// Plain-loop `layernormBackward`.
/// With g = dout · weight and xhat = (inp − mean) · rstd:
/// dinp = rstd · (g − Σg / D − xhat · Σ(g·xhat) / D); dweight += dout · xhat; dbias += dout.
public func layernormBackwardReference(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                       dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                       inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                       N: Int, C: Int, D: Int) {
    for n in 0..<N {
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let m = mean[n], r = rstd[n]
        var sumG: Float = 0, sumGX: Float = 0
        for i in 0..<C {
            let g = dy[i] * weight[i]
            sumG += g
            sumGX += g * (x[i] - m) * r
        }
        let meanG = sumG / Float(D), meanGX = sumGX / Float(D)
        for i in 0..<C {
            let xhat = (x[i] - m) * r
            dx[i] += r * (dy[i] * weight[i] - meanG - xhat * meanGX)
            if let dweight { dweight[i] += dy[i] * xhat }
            if let dbias { dbias[i] += dy[i] }
        }
    }
}
