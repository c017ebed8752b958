// AdamW against an independent Double-precision implementation of torch.optim.AdamW's update, on
// parameters whose sizes exercise the SIMD body, the scalar tail, several blocks and the decay rule.

import Foundation
import Testing
import Tensor
@testable import Training

/// torch.optim.AdamW written out in Double, one scalar at a time (the reference).
struct ReferenceAdamW {
    var p: [Double], m: [Double], v: [Double]
    var t = 0
    let lr: Double, beta1: Double, beta2: Double, eps: Double, wd: Double

    mutating func step(grads g: [Double]) {
        t += 1
        for i in p.indices {
            p[i] *= 1 - lr * wd
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            let mHat = m[i] / (1 - pow(beta1, Double(t)))
            let vHat = v[i] / (1 - pow(beta2, Double(t)))
            p[i] -= lr * mHat / (vHat.squareRoot() + eps)
        }
    }
}

@Suite struct AdamWTests {
    /// Matrix [3, 5] (15: SIMD body + tail), vector [7] (tail only, no decay), matrix [300, 250] (several blocks).
    static let specs = [ParameterSpec("w", [3, 5]), ParameterSpec("b", [7]), ParameterSpec("big", [300, 250])]

    @Test func matchesDoubleReferenceOverSeveralSteps() {
        let set = ParameterSet(Self.specs)
        var rng = RNG(seed: 7)
        set.values.fillNormal(&rng)
        let config = AdamWConfig(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        let lr: Float = 0.01
        let optimizer = AdamW(sets: [set], config: config)
        let n = set.count
        let isMatrix = Self.specs.flatMap { spec in Array(repeating: spec.shape.count >= 2, count: spec.count) }
        func reference(decay wd: Double) -> ReferenceAdamW {
            ReferenceAdamW(p: set.values.array.map(Double.init), m: Array(repeating: 0, count: n), v: Array(repeating: 0, count: n),
                           lr: Double(lr), beta1: 0.9, beta2: 0.95, eps: 1e-8, wd: wd)
        }
        // Two references differing only in decay; each scalar follows the one its rank selects.
        var decayed = reference(decay: 0.1), plain = reference(decay: 0)
        for step in 0..<5 {
            // A gradient that depends on the current values, like a real loss: g = sin(3p + step).
            var grads = [Double](repeating: 0, count: n)
            for i in 0..<n {
                let g = Float(sin(3 * Double(set.values[flat: i]) + Double(step)))
                set.grads[flat: i] = g
                grads[i] = Double(g)
            }
            optimizer.update(lr: lr)
            decayed.step(grads: grads)
            plain.step(grads: grads)
            for i in 0..<n {
                let p = isMatrix[i] ? decayed.p[i] : plain.p[i]
                decayed.p[i] = p; plain.p[i] = p
                let m = decayed.m[i]; plain.m[i] = m
                let v = decayed.v[i]; plain.v[i] = v
            }
            var worst = 0.0
            for i in 0..<n { worst = max(worst, abs(Double(set.values[flat: i]) - decayed.p[i])) }
            #expect(worst < 1e-6, "step \(step + 1): max |p − reference| = \(worst)")
        }
        #expect(optimizer.step == 5)
        var worstM = 0.0, worstV = 0.0
        for i in 0..<n {
            worstM = max(worstM, abs(Double(optimizer.m(set: 0)[flat: i]) - decayed.m[i]))
            worstV = max(worstV, abs(Double(optimizer.v(set: 0)[flat: i]) - decayed.v[i]) / max(decayed.v[i], 1e-30))
        }
        #expect(worstM < 1e-6, "max |m − reference| = \(worstM)")
        #expect(worstV < 1e-5, "max relative |v − reference| = \(worstV)")
    }

    @Test func simdKernelMatchesPlainLoopBitwise() {
        let n = 1003   // SIMD body plus a 3-element tail
        let h = AdamWHyper(lr: 0.003, beta1: 0.9, beta2: 0.99, eps: 1e-8, decayFactor: 1 - 0.003 * 0.1,
                           correction1: 1 / (1 - 0.9 * 0.9), correction2: 1 / (1 - 0.99 * 0.99))
        let inputs = (0..<4).map { Tensor.randn([n], seed: 17, stream: UInt64($0)) }
        inputs[3].assign(Tensor(shape: [n], values: inputs[3].array.map { $0 * $0 }))   // v ≥ 0
        let fast = inputs.map { $0.copy() }, plain = inputs.map { $0.copy() }
        for _ in 0..<3 {
            adamwUpdate(p: fast[0].data, g: fast[1].data, m: fast[2].data, v: fast[3].data, n: n, h)
            adamwUpdateReference(p: plain[0].data, g: plain[1].data, m: plain[2].data, v: plain[3].data, n: n, h)
        }
        for (name, (a, b)) in zip(["p", "g", "m", "v"], zip(fast, plain)) {
            #expect(a.array.map(\.bitPattern) == b.array.map(\.bitPattern), "\(name) differs")
        }
        #expect(fast[0].array != inputs[0].array)
    }

    @Test func weightDecayOnlyTouchesMatricesByDefaultAndRuleIsOverridable() {
        // With zero gradients Adam's step is 0, so only the decoupled decay moves a parameter.
        let set = ParameterSet([ParameterSpec("w", [2, 2]), ParameterSpec("b", [3])])
        set.values.assign(Tensor(shape: [7], repeating: 1))
        AdamW(sets: [set], config: AdamWConfig(weightDecay: 0.5)).update(lr: 0.1)
        #expect(set.value("w").array == Array(repeating: 1 - 0.1 * 0.5, count: 4))
        #expect(set.value("b").array == Array(repeating: 1, count: 3))

        let other = ParameterSet([ParameterSpec("w", [2, 2]), ParameterSpec("b", [3])])
        other.values.assign(Tensor(shape: [7], repeating: 1))
        AdamW(sets: [other], config: AdamWConfig(weightDecay: 0.5), decays: { $0.name == "b" }).update(lr: 0.1)
        #expect(other.value("w").array == Array(repeating: 1, count: 4))
        #expect(other.value("b").array == Array(repeating: 1 - 0.1 * 0.5, count: 3))
    }

    @Test func momentsOfSeveralSetsFollowEachSetsLayout() {
        let a = ParameterSet([ParameterSpec("x", [4])]), b = ParameterSet([ParameterSpec("y", [2, 3])])
        a.grads.assign(Tensor(shape: [4], values: [1, 2, 3, 4]))
        b.grads.assign(Tensor(shape: [6], values: [-1, -2, -3, -4, -5, -6]))
        let optimizer = AdamW(sets: [a, b], config: AdamWConfig(beta1: 0.5, beta2: 0.75))
        optimizer.update(lr: 0.001)
        #expect(optimizer.moments.shape == [2, 10])
        #expect(optimizer.m(set: 0).array == [0.5, 1, 1.5, 2])
        #expect(optimizer.m(set: 1).array == [-0.5, -1, -1.5, -2, -2.5, -3])
        #expect(optimizer.v(set: 1).array == [0.25, 1, 2.25, 4, 6.25, 9])
    }

    @Test func stateRoundTripsAndRejectsAnotherLayout() throws {
        let set = ParameterSet([ParameterSpec("w", [2, 3])])
        set.grads.assign(Tensor(shape: [6], values: [1, -1, 2, -2, 3, -3]))
        let optimizer = AdamW(sets: [set])
        optimizer.update(lr: 0.1)
        optimizer.update(lr: 0.1)
        let state = optimizer.state
        #expect(state.step == 2)
        #expect(state.tensorNames == ["m/0", "v/0"])

        let twin = AdamW(sets: [ParameterSet([ParameterSpec("w", [2, 3])])])
        try twin.restore(state)
        #expect(twin.step == 2)
        #expect(twin.moments.array == optimizer.moments.array)

        let wrong = AdamW(sets: [ParameterSet([ParameterSpec("w", [3, 2])])])
        #expect(throws: TrainingError.stateMismatch(what: "parameter set 0", expected: "w [3, 2]", found: "w [2, 3]")) {
            try wrong.restore(state)
        }
    }

    @Test func configDecodesWithDefaultsAndRejectsBadBeta() throws {
        let config = try JSONDecoder().decode(AdamWConfig.self, from: Data(#"{"beta2": 0.95, "weight_decay": 0.1}"#.utf8))
        #expect(config == AdamWConfig(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(AdamWConfig.self, from: Data(#"{"beta1": 1.0}"#.utf8))
        }
    }
}
