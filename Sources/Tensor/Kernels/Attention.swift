// Causal grouped-query self-attention, forward and backward, plus a forward over a KV cache for
// generation. Query head h reads key/value head h / (NH / NKV); scores are scaled by 1/sqrt(HD).
// Not the Q/K/V/O projections (Linear.swift) and not RoPE (RoPE.swift): inputs arrive rotated.

import Foundation

/// Causal attention over whole sequences; overwrites `out` and `probs`.
/// - out: (B, T, NH, HD)
/// - probs: (B, NH, T, T) softmax weights saved for the backward; entries above the diagonal are 0
/// - q: (B, T, NH, HD)
/// - k, v: (B, T, NKV, HD)
public func attentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             B: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
    attentionForwardReference(out: out, probs: probs, q: q, k: k, v: v, B: B, T: T, NH: NH, NKV: NKV, HD: HD)
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
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, B: Int, T: Int, NH: Int, NKV: Int, HD: Int,
                              scratch: UnsafeMutablePointer<Float>? = nil) {
    attentionBackwardReference(dq: dq, dk: dk, dv: dv, dout: dout, q: q, k: k, v: v, probs: probs,
                               B: B, T: T, NH: NH, NKV: NKV, HD: HD)
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
    attentionCachedForwardReference(out: out, q: q, kCache: kCache, vCache: vCache, B: B, Tq: Tq, Tk: Tk,
                                    start: start, NH: NH, NKV: NKV, HD: HD, ldk: ldk)
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
