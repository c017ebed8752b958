// RMSNorm forward and backward (LLaMA family): out = inp · rstd · weight, rstd = 1/sqrt(Σ inp² / D + eps).
// Not LayerNorm (no mean, no bias): see LayerNorm.swift.
//
// D is the divisor of the mean square. It equals C for a dense model; a pruned model keeps the
// original width as D so the surviving channels are normalised exactly as before pruning
// (design.md, "how norms behave once the width shrinks").
//
// Shapes (legend in Tensor.swift): N rows, C width, D divisor. The public kernels are the fast ones; each
// has a plain-loop `…Reference` twin at the bottom of the file that the tests hold it to.

/// Forward RMSNorm over the last axis; overwrites `out` and `rstd`.
/// - out: (N, C)
/// - rstd: (N), saved for the backward
/// - inp: (N, C)
/// - weight: (C)
public func rmsnormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                           inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           N: Int, C: Int, D: Int, eps: Float) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.norm, profiled) }
    precondition(D > 0, "rmsnormForward: divisor D must be positive, got \(D)")
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(C, 1))) { rows in
        for n in rows {
            let x = inp + n * C, y = out + n * C
            var sumSq = Vec16()
            vectorLoop(0..<C) { i, count in
                let v = load16(x + i, count)
                sumSq += v * v
            }
            let r = 1 / (sumSq.sum() / Float(D) + eps).squareRoot()
            rstd[n] = r
            vectorLoop(0..<C) { i, count in
                store16(load16(x + i, count) * r * load16(weight + i, count), y + i, count)
            }
        }
    }
}

/// Backward of `rmsnormForward`; accumulates into `dinp` and (when given) `dweight`.
/// - dinp: (N, C)
/// - dweight: (C), nil when the scale is frozen
/// - dout, inp: (N, C); weight: (C); rstd: (N) from the forward
public func rmsnormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                            dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                            weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                            N: Int, C: Int, D: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.norm, profiled) }
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(C, 1))) { rows in
        for n in rows {
            let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
            let r = rstd[n]
            var dot = Vec16()
            vectorLoop(0..<C) { i, count in
                dot += load16(dy + i, count) * load16(weight + i, count) * load16(x + i, count)
            }
            let k = r * r / Float(D) * dot.sum()
            vectorLoop(0..<C) { i, count in
                let g = load16(dy + i, count) * load16(weight + i, count)
                store16(load16(dx + i, count) + r * (g - load16(x + i, count) * k), dx + i, count)
            }
        }
    }
    if let dweight {
        parallelColumns(C, rows: N) { columns in
            for n in 0..<N {
                let x = inp + n * C, dy = dout + n * C, r = rstd[n]
                for i in columns { dweight[i] += dy[i] * x[i] * r }
            }
        }
    }
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `rmsnormForward`.
public func rmsnormForwardReference(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    N: Int, C: Int, D: Int, eps: Float) {
    precondition(D > 0, "rmsnormForward: divisor D must be positive, got \(D)")
    for n in 0..<N {
        let x = inp + n * C, y = out + n * C
        var sumSq: Float = 0
        for i in 0..<C { sumSq += x[i] * x[i] }
        let r = 1 / (sumSq / Float(D) + eps).squareRoot()
        rstd[n] = r
        for i in 0..<C { y[i] = x[i] * r * weight[i] }
    }
}

/// Plain-loop `rmsnormBackward`.
/// With g = dout · weight: dinp = rstd · (g − inp · rstd² / D · Σ g·inp); dweight += dout · inp · rstd.
public func rmsnormBackwardReference(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                     dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                     weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                     N: Int, C: Int, D: Int) {
    for n in 0..<N {
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let r = rstd[n]
        var dot: Float = 0
        for i in 0..<C { dot += dy[i] * weight[i] * x[i] }
        let k = r * r / Float(D) * dot
        for i in 0..<C {
            dx[i] += r * (dy[i] * weight[i] - x[i] * k)
            if let dweight { dweight[i] += dy[i] * x[i] * r }
        }
    }
}
