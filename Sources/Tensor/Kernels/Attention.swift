// Causal grouped-query self-attention, forward and backward, plus a forward over a KV cache for
// generation. Query head h reads key/value head h / (NH / NKV); scores are scaled by 1/sqrt(HD).
// Not the Q/K/V/O projections (Linear.swift) and not RoPE (RoPE.swift): inputs arrive rotated.

import Foundation

/// Causal attention over whole sequences; overwrites `out` and `probs`.
/// - out: (B, T, NH, HD)
/// - probs: (B, NH, T, T) softmax weights saved for the backward; entries above the diagonal are 0
/// - q: (B, T, NH, HD)
/// - k, v: (B, T, NKV, HD)
///
/// Per (b, h) the products go through sgemm straight on the (B, T, heads, HD) layout (row stride
/// heads·HD, no transposes), in row blocks that stop at the diagonal so the masked half is never
/// computed; BLAS threads do the products and `parallelFor` the softmax rows, never nested.
public func attentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             B: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionForward")
    let group = NH / NKV, ldq = NH * HD, ldk = NKV * HD
    let scale = 1 / Float(HD).squareRoot()
    for b in 0..<B {
        for h in 0..<NH {
            let qbh = q + b * T * ldq + h * HD, obh = out + b * T * ldq + h * HD
            let kbh = k + b * T * ldk + (h / group) * HD, vbh = v + b * T * ldk + (h / group) * HD
            let pbh = probs + (b * NH + h) * T * T
            forEachCausalBlock(T) { r0, r1 in
                // scores[r0..<r1, 0..<r1] = scale · Q[r0..<r1] · K[0..<r1]ᵀ
                sgemm(transB: true, M: r1 - r0, N: r1, K: HD, alpha: scale, A: qbh + r0 * ldq, lda: ldq,
                      B: kbh, ldb: ldk, C: pbh + r0 * T, ldc: T)
            }
            causalSoftmaxRows(pbh, rows: T, columns: T, offset: 0)
            forEachCausalBlock(T) { r0, r1 in
                // out[r0..<r1] = P[r0..<r1, 0..<r1] · V[0..<r1]
                sgemm(M: r1 - r0, N: HD, K: r1, A: pbh + r0 * T, lda: T, B: vbh, ldb: ldk, C: obh + r0 * ldq, ldc: ldq)
            }
        }
    }
}

/// Floats of scratch `attentionBackward` needs when the caller provides it.
public func attentionBackwardScratchCount(B: Int, T: Int, NH: Int, NKV: Int, HD: Int) -> Int {
    T * T
}

/// Backward of `attentionForward`; accumulates into dq, dk and dv.
/// - dq: (B, T, NH, HD)
/// - dk, dv: (B, T, NKV, HD)
/// - dout: (B, T, NH, HD); q, k, v and probs as in the forward
/// - scratch: at least `attentionBackwardScratchCount(...)` floats, or nil to allocate internally
///
/// Per (b, h), with dP = dO·Vᵀ and dS = P ⊙ (dP − Σ P⊙dP) / sqrt(HD):
/// dV += Pᵀ·dO, dQ += dS·K, dK += dSᵀ·Q, all sgemm with beta = 1 in causal row blocks.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, B: Int, T: Int, NH: Int, NKV: Int, HD: Int,
                              scratch: UnsafeMutablePointer<Float>? = nil) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionBackward")
    let owned: Tensor? = scratch == nil ? Tensor(zeros: [T * T]) : nil
    let dscores = scratch ?? owned!.data  // (T, T)
    let group = NH / NKV, ldq = NH * HD, ldk = NKV * HD
    let scale = 1 / Float(HD).squareRoot()
    for b in 0..<B {
        for h in 0..<NH {
            let qbh = q + b * T * ldq + h * HD, dqbh = dq + b * T * ldq + h * HD, dobh = dout + b * T * ldq + h * HD
            let kvOffset = b * T * ldk + (h / group) * HD
            let kbh = k + kvOffset, vbh = v + kvOffset, dkbh = dk + kvOffset, dvbh = dv + kvOffset
            let pbh = probs + (b * NH + h) * T * T
            forEachCausalBlock(T) { r0, r1 in
                // dP[r0..<r1, 0..<r1] = dO[r0..<r1] · V[0..<r1]ᵀ
                sgemm(transB: true, M: r1 - r0, N: r1, K: HD, A: dobh + r0 * ldq, lda: ldq, B: vbh, ldb: ldk,
                      C: dscores + r0 * T, ldc: T)
                // dV[0..<r1] += P[r0..<r1, 0..<r1]ᵀ · dO[r0..<r1]
                sgemm(transA: true, M: r1, N: HD, K: r1 - r0, A: pbh + r0 * T, lda: T, B: dobh + r0 * ldq, ldb: ldq,
                      beta: 1, C: dvbh, ldc: ldk)
            }
            Threading.parallelFor(T, minChunk: max(1, parallelGrain / max(T, 1))) { rows in
                for t in rows {
                    let p = pbh + t * T, d = dscores + t * T
                    var weighted = Vec16()
                    vectorLoop(0..<(t + 1)) { i, count in weighted += load16(p + i, count) * load16(d + i, count) }
                    let w = weighted.sum()
                    vectorLoop(0..<(t + 1)) { i, count in
                        store16(load16(p + i, count) * (load16(d + i, count) - w) * scale, d + i, count)
                    }
                    // The block products below read this row up to its block's end: zero the masked part.
                    let blockEnd = min(T, (t / attentionBlock + 1) * attentionBlock)
                    (d + t + 1).update(repeating: 0, count: blockEnd - t - 1)
                }
            }
            forEachCausalBlock(T) { r0, r1 in
                // dQ[r0..<r1] += dS[r0..<r1, 0..<r1] · K[0..<r1]
                sgemm(M: r1 - r0, N: HD, K: r1, A: dscores + r0 * T, lda: T, B: kbh, ldb: ldk,
                      beta: 1, C: dqbh + r0 * ldq, ldc: ldq)
                // dK[0..<r1] += dS[r0..<r1, 0..<r1]ᵀ · Q[r0..<r1]
                sgemm(transA: true, M: r1, N: HD, K: r1 - r0, A: dscores + r0 * T, lda: T, B: qbh + r0 * ldq, ldb: ldq,
                      beta: 1, C: dkbh, ldc: ldk)
            }
        }
    }
    withExtendedLifetime(owned) {}
}

/// Attention of Tq new queries over a KV cache (generation); overwrites `out`.
/// Query t sits at absolute position start + t and attends to cache positions 0...start + t.
/// - out: (B, Tq, NH, HD)
/// - q: (B, Tq, NH, HD)
/// - kCache, vCache: (B, Tk, NKV, HD) with positions 0..<start+Tq filled; consecutive positions are
///   `ldk` floats apart (default NKV·HD), batches Tk·ldk floats apart
public func attentionCachedForward(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                   kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>,
                                   B: Int, Tq: Int, Tk: Int, start: Int, NH: Int, NKV: Int, HD: Int,
                                   ldk: Int? = nil) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionCachedForward")
    precondition(start >= 0 && start + Tq <= Tk, "attentionCachedForward: positions \(start)..<\(start + Tq) exceed the cache's \(Tk)")
    let rowStride = ldk ?? NKV * HD
    let group = NH / NKV, ldq = NH * HD, span = start + Tq
    let scale = 1 / Float(HD).squareRoot()
    let scores = Tensor(zeros: [Tq, span])
    for b in 0..<B {
        for h in 0..<NH {
            let qbh = q + b * Tq * ldq + h * HD, obh = out + b * Tq * ldq + h * HD
            let kbh = kCache + b * Tk * rowStride + (h / group) * HD, vbh = vCache + b * Tk * rowStride + (h / group) * HD
            // Every query row sees at most `span` keys; the causal tail is masked by the softmax.
            sgemm(transB: true, M: Tq, N: span, K: HD, alpha: scale, A: qbh, lda: ldq, B: kbh, ldb: rowStride,
                  C: scores.data, ldc: span)
            causalSoftmaxRows(scores.data, rows: Tq, columns: span, offset: start)
            sgemm(M: Tq, N: HD, K: span, A: scores.data, lda: span, B: vbh, ldb: rowStride, C: obh, ldc: ldq)
        }
    }
}

/// Rows per causal block: products stop at each block's diagonal, so only ~(1 + block/T)/2 of the
/// square is computed; 128 keeps each sgemm large enough for BLAS to run near its peak.
let attentionBlock = 128

/// Calls body(r0, r1) for row blocks [r0, r1) covering 0..<T.
@inline(__always)
func forEachCausalBlock(_ T: Int, _ body: (_ r0: Int, _ r1: Int) -> Void) {
    var r0 = 0
    while r0 < T {
        let r1 = min(T, r0 + attentionBlock)
        body(r0, r1)
        r0 = r1
    }
}

/// In place over a (rows, columns) score matrix: row t becomes softmax over columns 0...offset + t,
/// and the columns after it become exactly 0. Rows run in parallel.
func causalSoftmaxRows(_ scores: UnsafeMutablePointer<Float>, rows: Int, columns: Int, offset: Int) {
    Threading.parallelFor(rows, minChunk: max(1, parallelGrain / max(columns, 1))) { range in
        for t in range {
            softmaxRow(scores + t * columns, scores + t * columns, valid: offset + t + 1, columns: columns)
        }
    }
}

@inline(__always)
func attentionCheckHeads(NH: Int, NKV: Int, _ op: String) {
    precondition(NKV > 0 && NH % NKV == 0, "\(op): \(NH) query heads are not a multiple of \(NKV) KV heads")
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `attentionForward`.
public func attentionForwardReference(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                      q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                      B: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionForward")
    let group = NH / NKV
    let scale = 1 / Float(HD).squareRoot()
    for b in 0..<B {
        for h in 0..<NH {
            let kvh = h / group
            for t in 0..<T {
                let qt = q + ((b * T + t) * NH + h) * HD
                let p = probs + ((b * NH + h) * T + t) * T
                var maxValue = -Float.infinity
                for s in 0...t {
                    let ks = k + ((b * T + s) * NKV + kvh) * HD
                    var dot: Float = 0
                    for i in 0..<HD { dot += qt[i] * ks[i] }
                    p[s] = dot * scale
                    maxValue = max(maxValue, p[s])
                }
                var sum: Float = 0
                for s in 0...t {
                    p[s] = exp(p[s] - maxValue)
                    sum += p[s]
                }
                for s in 0...t { p[s] /= sum }
                for s in (t + 1)..<T { p[s] = 0 }
                let o = out + ((b * T + t) * NH + h) * HD
                for i in 0..<HD { o[i] = 0 }
                for s in 0...t {
                    let vs = v + ((b * T + s) * NKV + kvh) * HD
                    for i in 0..<HD { o[i] += p[s] * vs[i] }
                }
            }
        }
    }
}

/// Plain-loop `attentionBackward`. With dp = dout · vᵀ, the score gradient is p · (dp − Σ p·dp).
public func attentionBackwardReference(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                       dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                       q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                       probs: UnsafePointer<Float>, B: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionBackward")
    let group = NH / NKV
    let scale = 1 / Float(HD).squareRoot()
    var dp = [Float](repeating: 0, count: T)
    for b in 0..<B {
        for h in 0..<NH {
            let kvh = h / group
            for t in 0..<T {
                let qt = q + ((b * T + t) * NH + h) * HD
                let dqt = dq + ((b * T + t) * NH + h) * HD
                let dot = dout + ((b * T + t) * NH + h) * HD
                let p = probs + ((b * NH + h) * T + t) * T
                var weighted: Float = 0
                for s in 0...t {
                    let vs = v + ((b * T + s) * NKV + kvh) * HD
                    let dvs = dv + ((b * T + s) * NKV + kvh) * HD
                    var acc: Float = 0
                    for i in 0..<HD {
                        acc += dot[i] * vs[i]
                        dvs[i] += p[s] * dot[i]
                    }
                    dp[s] = acc
                    weighted += p[s] * acc
                }
                for s in 0...t {
                    let dscore = p[s] * (dp[s] - weighted) * scale
                    let ks = k + ((b * T + s) * NKV + kvh) * HD
                    let dks = dk + ((b * T + s) * NKV + kvh) * HD
                    for i in 0..<HD {
                        dqt[i] += dscore * ks[i]
                        dks[i] += dscore * qt[i]
                    }
                }
            }
        }
    }
}

/// Plain-loop `attentionCachedForward`.
public func attentionCachedForwardReference(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                            kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>,
                                            B: Int, Tq: Int, Tk: Int, start: Int, NH: Int, NKV: Int, HD: Int,
                                            ldk: Int? = nil) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionCachedForward")
    precondition(start >= 0 && start + Tq <= Tk, "attentionCachedForward: positions \(start)..<\(start + Tq) exceed the cache's \(Tk)")
    let rowStride = ldk ?? NKV * HD
    let group = NH / NKV
    let scale = 1 / Float(HD).squareRoot()
    var scores = [Float](repeating: 0, count: Tk)
    for b in 0..<B {
        for t in 0..<Tq {
            let last = start + t
            for h in 0..<NH {
                let kvh = h / group
                let qt = q + ((b * Tq + t) * NH + h) * HD
                var maxValue = -Float.infinity
                for s in 0...last {
                    let ks = kCache + (b * Tk + s) * rowStride + kvh * HD
                    var dot: Float = 0
                    for i in 0..<HD { dot += qt[i] * ks[i] }
                    scores[s] = dot * scale
                    maxValue = max(maxValue, scores[s])
                }
                var sum: Float = 0
                for s in 0...last {
                    scores[s] = exp(scores[s] - maxValue)
                    sum += scores[s]
                }
                let o = out + ((b * Tq + t) * NH + h) * HD
                for i in 0..<HD { o[i] = 0 }
                for s in 0...last {
                    let vs = vCache + (b * Tk + s) * rowStride + kvh * HD
                    let w = scores[s] / sum
                    for i in 0..<HD { o[i] += w * vs[i] }
                }
            }
        }
    }
}
