// Knowledge distillation fused with cross-entropy over rows of logits: one pass gives each row's loss
// and writes its dlogits, so the model can run it chunk by chunk inside the LM head (no (B·T, V)
// buffer beyond one chunk, as with crossEntropyForward/Backward).
//
// Per row n, with student logits s, teacher logits t, target y, temperature τ and weights a (LM), b (KD):
//   p = softmax(t/τ), q = softmax(s/τ)
//   loss[n]    = a·(logsumexp(s) − s[y]) + b·τ²·KL(p ‖ q)
//   dlogits[n] = dlosses[n] · (a·(softmax(s) − onehot(y)) + b·τ·(q − p))
// τ² keeps the KD gradient's size independent of τ (Hinton et al.). Rows with target −1 are ignored
// (loss 0, gradient 0), as in cross-entropy, so padding never teaches.
//
// Shapes (legend in Tensor.swift): N rows, V vocabulary. The public kernel is the fast one; its
// plain-loop `…Reference` twin at the bottom is what the tests hold it to.

import Foundation

/// How a row's loss mixes the LM cross-entropy and the distillation KL (see the file header).
public struct DistillationWeights: Sendable, Equatable {
    /// a, weight of logsumexp(s) − s[y].
    public var lm: Float
    /// b, weight of τ²·KL(softmax(t/τ) ‖ softmax(s/τ)).
    public var kd: Float
    /// τ > 0.
    public var temperature: Float

    public init(lm: Float, kd: Float, temperature: Float) {
        precondition(temperature > 0 && temperature.isFinite, "DistillationWeights: temperature \(temperature) must be a finite number > 0")
        self.lm = lm
        self.kd = kd
        self.temperature = temperature
    }
}

/// losses[n] and dlogits[n] as in the file header. WRITES dlogits (no accumulation); `dlogits` may be
/// the student logits' own memory (each row is read fully before it is written).
/// - losses: (N)
/// - dlogits, student, teacher: (N, V)
/// - targets, dlosses: (N); targets in 0..<V or −1
public func distillationForwardBackward(losses: UnsafeMutablePointer<Float>, dlogits: UnsafeMutablePointer<Float>,
                                        student: UnsafePointer<Float>, teacher: UnsafePointer<Float>,
                                        targets: UnsafePointer<Int32>, dlosses: UnsafePointer<Float>,
                                        N: Int, V: Int, weights w: DistillationWeights) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.loss, profiled) }
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(V, 1))) { rows in
        for n in rows {
            let target = crossEntropyTarget(targets, n, V: V)
            let s = student + n * V, t = teacher + n * V, ds = dlogits + n * V
            if target < 0 {
                losses[n] = 0
                ds.update(repeating: 0, count: V)
                continue
            }
            let inv = 1 / w.temperature
            let sMax = rowMax(s, V), tMax = rowMax(t, V)
            // Pass 1: the three normalisers and Σ e^((t−tMax)/τ)·(t − s), the cross term of the KL.
            var zs1 = Vec16(), zsT = Vec16(), zt = Vec16(), cross = Vec16()
            vectorLoop(0..<V) { i, count in
                let sv = load16(s + i, count, pad: -.infinity), tv = load16(t + i, count, pad: -.infinity)
                let es = exp16((sv - sMax) * inv), et = exp16((tv - tMax) * inv)
                zsT += es
                zt += et
                zs1 += inv == 1 ? es : exp16(sv - sMax)
                // Padding lanes: et is 0 there, and (t − s) would be NaN (−inf − −inf); zero them first.
                let diff = (tv - sv).replacing(with: 0, where: et .== 0)
                cross += et * diff
            }
            let sumS1 = zs1.sum(), sumST = zsT.sum(), sumT = zt.sum()
            // KL = Σp·(t − s)/τ − (tMax − sMax)/τ − log Σe^((t−tMax)/τ) + log Σe^((s−sMax)/τ)
            let kl = cross.sum() / sumT * inv - (tMax - sMax) * inv - log(sumT) + log(sumST)
            let ce = log(sumS1) + sMax - s[target]
            losses[n] = w.lm * ce + w.kd * w.temperature * w.temperature * max(kl, 0)
            // Pass 2: the gradient; s is read before ds is written (they may be the same memory).
            let scale = dlosses[n]
            let aS = scale * w.lm / sumS1, bQ = scale * w.kd * w.temperature / sumST, bP = scale * w.kd * w.temperature / sumT
            vectorLoop(0..<V) { i, count in
                let sv = load16(s + i, count), tv = load16(t + i, count)
                let es = exp16((sv - sMax) * inv), et = exp16((tv - tMax) * inv)
                let es1 = inv == 1 ? es : exp16(sv - sMax)
                store16(aS * es1 + bQ * es - bP * et, ds + i, count)
            }
            ds[target] -= scale * w.lm
        }
    }
}

// MARK: - Reference (plain loops in Double; the fast version is tested against it)

/// Plain-loop `distillationForwardBackward`, computed in Double.
public func distillationForwardBackwardReference(losses: UnsafeMutablePointer<Float>, dlogits: UnsafeMutablePointer<Float>,
                                                 student: UnsafePointer<Float>, teacher: UnsafePointer<Float>,
                                                 targets: UnsafePointer<Int32>, dlosses: UnsafePointer<Float>,
                                                 N: Int, V: Int, weights w: DistillationWeights) {
    let tau = Double(w.temperature)
    for n in 0..<N {
        let target = crossEntropyTarget(targets, n, V: V)
        let s = (0..<V).map { Double(student[n * V + $0]) }, t = (0..<V).map { Double(teacher[n * V + $0]) }
        if target < 0 {
            losses[n] = 0
            for i in 0..<V { dlogits[n * V + i] = 0 }
            continue
        }
        func softmax(_ x: [Double]) -> [Double] {
            let m = x.max()!
            let e = x.map { exp($0 - m) }
            let z = e.reduce(0, +)
            return e.map { $0 / z }
        }
        let p1 = softmax(s), q = softmax(s.map { $0 / tau }), p = softmax(t.map { $0 / tau })
        var kl = 0.0
        for i in 0..<V where p[i] > 0 { kl += p[i] * (log(p[i]) - log(q[i])) }
        losses[n] = Float(Double(w.lm) * -log(p1[target]) + Double(w.kd) * tau * tau * kl)
        let scale = Double(dlosses[n])
        for i in 0..<V {
            let lmGrad = p1[i] - (i == target ? 1 : 0)
            dlogits[n * V + i] = Float(scale * (Double(w.lm) * lmGrad + Double(w.kd) * tau * (q[i] - p[i])))
        }
    }
}
