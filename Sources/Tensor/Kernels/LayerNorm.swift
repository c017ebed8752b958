// LayerNorm forward and backward (GPT-2/OPT family):
// mean = Σ inp / D, var = Σ inp² / D − mean², out = (inp − mean) · rstd · weight + bias, rstd = 1/sqrt(var + eps).
// Not RMSNorm: see RMSNorm.swift.
//
// D is the divisor of both moments. It equals C for a dense model; a pruned model keeps the original
// width as D (the deleted channels were regularised to zero, so the sums are unchanged).
//
// Shapes (legend in Tensor.swift): N rows, C width, D divisor. The public kernels are the fast ones; each
// has a plain-loop `…Reference` twin at the bottom of the file that the tests hold it to.

/// Forward LayerNorm over the last axis; overwrites `out`, `mean` and `rstd`.
/// - out: (N, C)
/// - mean, rstd: (N), saved for the backward
/// - inp: (N, C)
/// - weight, bias: (C)
public func layernormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             N: Int, C: Int, D: Int, eps: Float) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.norm, profiled) }
    precondition(D > 0, "layernormForward: divisor D must be positive, got \(D)")
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(C, 1))) { rows in
        for n in rows {
            let x = inp + n * C, y = out + n * C
            var sum = Vec16(), sumSq = Vec16()
            vectorLoop(0..<C) { i, count in
                let v = load16(x + i, count)
                sum += v
                sumSq += v * v
            }
            let m = sum.sum() / Float(D)
            // Clamp at zero: the one-pass variance can round slightly negative for near-constant rows.
            let r = 1 / (max(sumSq.sum() / Float(D) - m * m, 0) + eps).squareRoot()
            mean[n] = m
            rstd[n] = r
            vectorLoop(0..<C) { i, count in
                let xhat = (load16(x + i, count) - m) * r
                store16(xhat * load16(weight + i, count) + load16(bias + i, count), y + i, count)
            }
        }
    }
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
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.norm, profiled) }
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(C, 1))) { rows in
        for n in rows {
            let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
            let m = mean[n], r = rstd[n]
            var sumG = Vec16(), sumGX = Vec16()
            vectorLoop(0..<C) { i, count in
                let g = load16(dy + i, count) * load16(weight + i, count)
                sumG += g
                sumGX += g * (load16(x + i, count) - m)
            }
            let meanG = sumG.sum() / Float(D), meanGX = sumGX.sum() * r / Float(D)
            vectorLoop(0..<C) { i, count in
                let xhat = (load16(x + i, count) - m) * r
                let g = load16(dy + i, count) * load16(weight + i, count)
                store16(load16(dx + i, count) + r * (g - meanG - xhat * meanGX), dx + i, count)
            }
        }
    }
    if dweight == nil && dbias == nil { return }
    parallelColumns(C, rows: N) { columns in
        for n in 0..<N {
            let x = inp + n * C, dy = dout + n * C, m = mean[n], r = rstd[n]
            if let dweight { for i in columns { dweight[i] += dy[i] * ((x[i] - m) * r) } }
            if let dbias { for i in columns { dbias[i] += dy[i] } }
        }
    }
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
