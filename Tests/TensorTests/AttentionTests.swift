// Causal grouped-query attention against a Double reference and central differences, and the
// KV-cache forward against the full-sequence forward.

import Foundation
import Testing
@testable import Tensor

/// Head layouts: GQA (4 query heads on 2 KV heads), MQA (3 on 1) and plain multi-head (2 on 2).
struct Heads: Sendable, CustomStringConvertible {
    let NH: Int, NKV: Int
    var description: String { "NH=\(NH) NKV=\(NKV)" }
}

@Suite struct AttentionTests {
    static let layouts = [Heads(NH: 4, NKV: 2), Heads(NH: 3, NKV: 1), Heads(NH: 2, NKV: 2)]
    let B = 2, T = 5, HD = 6

    /// Independent Double attention: explicit causal mask, max-subtracted softmax.
    func reference(_ q: [Double], _ k: [Double], _ v: [Double], _ heads: Heads) -> [Double] {
        let (NH, NKV) = (heads.NH, heads.NKV)
        var out = [Double](repeating: 0, count: B * T * NH * HD)
        for b in 0..<B {
            for h in 0..<NH {
                let kvh = h * NKV / NH
                for t in 0..<T {
                    let scores = (0..<T).map { s -> Double in
                        if s > t { return -.infinity }
                        var dot = 0.0
                        for i in 0..<HD { dot += q[((b * T + t) * NH + h) * HD + i] * k[((b * T + s) * NKV + kvh) * HD + i] }
                        return dot / Double(HD).squareRoot()
                    }
                    let m = scores.max() ?? 0
                    let weights = scores.map { Foundation.exp($0 - m) }
                    let total = weights.reduce(0, +)
                    for i in 0..<HD {
                        var acc = 0.0
                        for s in 0..<T { acc += weights[s] / total * v[((b * T + s) * NKV + kvh) * HD + i] }
                        out[((b * T + t) * NH + h) * HD + i] = acc
                    }
                }
            }
        }
        return out
    }

    func forward(_ variant: Variant, out: Tensor, probs: Tensor, q: Tensor, k: Tensor, v: Tensor, _ heads: Heads, T: Int) {
        switch variant {
        case .fast:
            attentionForward(out: out.data, probs: probs.data, q: q.data, k: k.data, v: v.data,
                             B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        case .reference:
            attentionForwardReference(out: out.data, probs: probs.data, q: q.data, k: k.data, v: v.data,
                                      B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        }
    }

    func backward(_ variant: Variant, dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, q: Tensor, k: Tensor, v: Tensor,
                  probs: Tensor, _ heads: Heads, T: Int) {
        switch variant {
        case .fast:
            attentionBackward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, q: q.data, k: k.data, v: v.data,
                              probs: probs.data, B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        case .reference:
            attentionBackwardReference(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, q: q.data, k: k.data,
                                       v: v.data, probs: probs.data, B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        }
    }

    @Test(arguments: Variant.allCases, layouts) func forwardMatchesDouble(variant: Variant, heads: Heads) {
        let nq = B * T * heads.NH * HD, nkv = B * T * heads.NKV * HD
        let q = randomTensor(nq, seed: 121), k = randomTensor(nkv, seed: 122), v = randomTensor(nkv, seed: 123)
        // Outputs start as garbage: the forward must overwrite every element.
        let out = randomTensor(nq, seed: 124), probs = randomTensor(B * heads.NH * T * T, seed: 125)
        forward(variant, out: out, probs: probs, q: q, k: k, v: v, heads, T: T)
        checkTensor("attention \(variant) \(heads) out", out, reference(doubles(q), doubles(k), doubles(v), heads),
                    tolerance: 1e-5)
        // Causal: every probability row sums to 1 over s ≤ t and is exactly 0 above the diagonal.
        let p = probs.array
        for row in 0..<(B * heads.NH * T) {
            let t = row % T
            let values = p[(row * T)..<(row * T + T)]
            #expect(values.dropFirst(t + 1).allSatisfy { $0 == 0 })
            #expect(abs(values.reduce(0, +) - 1) < 1e-5)
        }
    }

    @Test(arguments: Variant.allCases, layouts) func backwardMatchesFiniteDifferences(variant: Variant, heads: Heads) {
        let nq = B * T * heads.NH * HD, nkv = B * T * heads.NKV * HD
        let q = randomTensor(nq, seed: 126), k = randomTensor(nkv, seed: 127), v = randomTensor(nkv, seed: 128)
        let dout = randomTensor(nq, seed: 129)
        let out = zeros(nq), probs = zeros(B * heads.NH * T * T)
        forward(variant, out: out, probs: probs, q: q, k: k, v: v, heads, T: T)
        let dq = randomTensor(nq, seed: 130), dk = randomTensor(nkv, seed: 131), dv = randomTensor(nkv, seed: 132)
        let dq0 = dq.array, dk0 = dk.array, dv0 = dv.array
        backward(variant, dq: dq, dk: dk, dv: dv, dout: dout, q: q, k: k, v: v, probs: probs, heads, T: T)
        let qd = doubles(q), kd = doubles(k), vd = doubles(v)
        checkTensor("attention \(variant) \(heads) dq", added(dq, since: dq0),
                    numericGradient(at: qd) { weightedSum(reference($0, kd, vd, heads), dout) }, tolerance: gradientTolerance)
        checkTensor("attention \(variant) \(heads) dk", added(dk, since: dk0),
                    numericGradient(at: kd) { weightedSum(reference(qd, $0, vd, heads), dout) }, tolerance: gradientTolerance)
        checkTensor("attention \(variant) \(heads) dv", added(dv, since: dv0),
                    numericGradient(at: vd) { weightedSum(reference(qd, kd, $0, heads), dout) }, tolerance: gradientTolerance)
    }

    /// Sequences spanning several causal blocks (the last one partial), fast against the plain loops.
    @Test func fastMatchesReferenceOnLongerSequences() {
        let heads = Heads(NH: 6, NKV: 2), T = 2 * attentionBlock + 45, HD = 32, B = 1
        let nq = B * T * heads.NH * HD, nkv = B * T * heads.NKV * HD
        let q = randomTensor(nq, seed: 133, scale: 2), k = randomTensor(nkv, seed: 134, scale: 2)
        let v = randomTensor(nkv, seed: 135)
        let dout = randomTensor(nq, seed: 136)
        let outF = zeros(nq), probsF = zeros(B * heads.NH * T * T), outR = zeros(nq), probsR = zeros(B * heads.NH * T * T)
        attentionForward(out: outF.data, probs: probsF.data, q: q.data, k: k.data, v: v.data,
                         B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        attentionForwardReference(out: outR.data, probs: probsR.data, q: q.data, k: k.data, v: v.data,
                                  B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        checkTensor("attention long out", outF, outR, tolerance: 1e-5)
        checkTensor("attention long probs", probsF, probsR, tolerance: 1e-5)
        let dqF = zeros(nq), dkF = zeros(nkv), dvF = zeros(nkv), dqR = zeros(nq), dkR = zeros(nkv), dvR = zeros(nkv)
        attentionBackward(dq: dqF.data, dk: dkF.data, dv: dvF.data, dout: dout.data, q: q.data, k: k.data, v: v.data,
                          probs: probsR.data, B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        attentionBackwardReference(dq: dqR.data, dk: dkR.data, dv: dvR.data, dout: dout.data, q: q.data, k: k.data,
                                   v: v.data, probs: probsR.data, B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        checkTensor("attention long dq", dqF, dqR, tolerance: 1e-5)
        checkTensor("attention long dk", dkF, dkR, tolerance: 1e-5)
        checkTensor("attention long dv", dvF, dvR, tolerance: 1e-5)
    }

    /// Caller-provided scratch (sized by `attentionBackwardScratchCount`) gives the same bits as none.
    @Test func backwardWithCallerScratch() {
        let heads = Heads(NH: 4, NKV: 2), T = 70, HD = 8
        let nq = B * T * heads.NH * HD, nkv = B * T * heads.NKV * HD
        let q = randomTensor(nq, seed: 142), k = randomTensor(nkv, seed: 143), v = randomTensor(nkv, seed: 144)
        let dout = randomTensor(nq, seed: 145)
        let out = zeros(nq), probs = zeros(B * heads.NH * T * T)
        attentionForward(out: out.data, probs: probs.data, q: q.data, k: k.data, v: v.data,
                         B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        func gradients(scratch: Tensor?) -> [Float] {
            let dq = zeros(nq), dk = zeros(nkv), dv = zeros(nkv)
            attentionBackward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, q: q.data, k: k.data, v: v.data,
                              probs: probs.data, B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD, scratch: scratch?.data)
            return dq.array + dk.array + dv.array
        }
        // Sized at the documented maximum: another suite changes the thread budget while tests run in
        // parallel, and the count depends on it.
        let maximum = B * heads.NH * (T * T + 2 * T * HD)
        let count = attentionBackwardScratchCount(B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        #expect(count >= T * T && count <= maximum)
        // Garbage in the scratch must not leak into the gradients.
        let scratch = randomTensor(maximum, seed: 146, scale: 1000)
        #expect(gradients(scratch: scratch) == gradients(scratch: nil))
    }

    /// The kernels that keep no probabilities (per-worker scratch, backward recomputes them) against
    /// the plain loops, over several causal blocks, for every head layout; garbage in the scratch and
    /// a scratch holding a single worker's share must not change a bit.
    @Test(arguments: layouts) func scratchKernelsMatchReference(heads: Heads) {
        let T = attentionBlock + 29, HD = 16, B = 3
        let nq = B * T * heads.NH * HD, nkv = B * T * heads.NKV * HD
        let q = randomTensor(nq, seed: 171, scale: 2), k = randomTensor(nkv, seed: 172, scale: 2)
        let v = randomTensor(nkv, seed: 173), dout = randomTensor(nq, seed: 174)
        let outR = zeros(nq), probsR = zeros(B * heads.NH * T * T)
        let dqR = zeros(nq), dkR = zeros(nkv), dvR = zeros(nkv)
        attentionForwardReference(out: outR.data, probs: probsR.data, q: q.data, k: k.data, v: v.data,
                                  B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        attentionBackwardReference(dq: dqR.data, dk: dkR.data, dv: dvR.data, dout: dout.data, q: q.data, k: k.data,
                                   v: v.data, probs: probsR.data, B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD)
        func run(workers: Int) -> (out: Tensor, dq: Tensor, dk: Tensor, dv: Tensor) {
            let scratch = randomTensor(workers * attentionScratchPerWorker(T: T), seed: 175, scale: 1000)
            let buffer = UnsafeMutableBufferPointer(start: scratch.data, count: scratch.count)
            let out = randomTensor(nq, seed: 176), dq = zeros(nq), dk = zeros(nkv), dv = zeros(nkv)
            attentionForward(out: out.data, q: q.data, k: k.data, v: v.data, B: B, T: T, NH: heads.NH, NKV: heads.NKV,
                             HD: HD, scratch: buffer)
            attentionBackward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, q: q.data, k: k.data, v: v.data,
                              B: B, T: T, NH: heads.NH, NKV: heads.NKV, HD: HD, scratch: buffer)
            return (out, dq, dk, dv)
        }
        let one = run(workers: 1), many = run(workers: 4)
        checkTensor("scratch attention \(heads) out", many.out, outR, tolerance: 1e-5)
        checkTensor("scratch attention \(heads) dq", many.dq, dqR, tolerance: 1e-5)
        checkTensor("scratch attention \(heads) dk", many.dk, dkR, tolerance: 1e-5)
        checkTensor("scratch attention \(heads) dv", many.dv, dvR, tolerance: 1e-5)
        #expect(one.out.array == many.out.array && one.dq.array == many.dq.array)
        #expect(one.dk.array == many.dk.array && one.dv.array == many.dv.array)
    }

    /// Queries at positions start..<T over a cache holding the whole sequence (plus unused capacity
    /// filled with garbage, and a padded row stride) give the full forward's last rows.
    @Test(arguments: Variant.allCases, layouts) func cachedForwardMatchesFullForward(variant: Variant, heads: Heads) {
        // A prefill of the whole prompt (start 0) and a continuation (start 4).
        for start in [0, 4] { checkCachedForward(variant: variant, heads: heads, start: start) }
    }

    func checkCachedForward(variant: Variant, heads: Heads, start: Int) {
        let (NH, NKV) = (heads.NH, heads.NKV)
        let T = 7, Tq = T - start, capacity = 10, pad = 3
        let ldk = NKV * HD + pad
        let q = randomTensor(B * T * NH * HD, seed: 137), k = randomTensor(B * T * NKV * HD, seed: 138)
        let v = randomTensor(B * T * NKV * HD, seed: 139)
        let out = zeros(B * T * NH * HD), probs = zeros(B * NH * T * T)
        forward(.reference, out: out, probs: probs, q: q, k: k, v: v, heads, T: T)

        let kCache = randomTensor(B * capacity * ldk, seed: 140, scale: 100)
        let vCache = randomTensor(B * capacity * ldk, seed: 141, scale: 100)
        let qNew = zeros(B * Tq * NH * HD)
        for b in 0..<B {
            for t in 0..<T {
                for c in 0..<(NKV * HD) {
                    kCache.data[(b * capacity + t) * ldk + c] = k.data[(b * T + t) * NKV * HD + c]
                    vCache.data[(b * capacity + t) * ldk + c] = v.data[(b * T + t) * NKV * HD + c]
                }
            }
            for t in 0..<Tq {
                (qNew.data + (b * Tq + t) * NH * HD).update(from: q.data + (b * T + start + t) * NH * HD, count: NH * HD)
            }
        }
        let cached = zeros(B * Tq * NH * HD)
        switch variant {
        case .fast:
            attentionCachedForward(out: cached.data, q: qNew.data, kCache: kCache.data, vCache: vCache.data,
                                   B: B, Tq: Tq, Tk: capacity, start: start, NH: NH, NKV: NKV, HD: HD, ldk: ldk)
        case .reference:
            attentionCachedForwardReference(out: cached.data, q: qNew.data, kCache: kCache.data, vCache: vCache.data,
                                            B: B, Tq: Tq, Tk: capacity, start: start, NH: NH, NKV: NKV, HD: HD, ldk: ldk)
        }
        var expected: [Float] = []
        for b in 0..<B { expected += out.array[((b * T + start) * NH * HD)..<((b * T + T) * NH * HD)] }
        checkTensor("cached attention \(variant) \(heads) start \(start)", cached, tensor(expected), tolerance: 1e-5)
    }
}
