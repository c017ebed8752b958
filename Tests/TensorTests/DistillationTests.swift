// The fused distillation + cross-entropy kernel against a Double computation written here from the
// formulas (not the library's reference), its gradient against central differences, the fast
// kernel against its plain-loop twin on vocabulary-sized rows, and the fixed points: a student equal
// to its teacher has zero KD loss and gradient.

import Foundation
import Testing
@testable import Tensor

@Suite struct DistillationTests {
    let N = 5, V = 19
    /// Row 3 is ignored.
    let targets: [Int32] = [4, 0, 18, -1, 9]

    /// a·CE(s, y) + b·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) per row, in Double.
    func expectedLosses(student s: [Double], teacher t: [Double], weights w: DistillationWeights) -> [Double] {
        let tau = Double(w.temperature)
        func logSoftmax(_ x: ArraySlice<Double>) -> [Double] {
            let m = x.max()!
            let lse = Foundation.log(x.reduce(0) { $0 + Foundation.exp($1 - m) }) + m
            return x.map { $0 - lse }
        }
        return (0..<N).map { n in
            guard targets[n] >= 0 else { return 0 }
            let sr = s[(n * V)..<(n * V + V)], tr = t[(n * V)..<(n * V + V)]
            let ce = -logSoftmax(sr)[Int(targets[n])]
            let logP = logSoftmax(tr.map { $0 / tau }[...]), logQ = logSoftmax(sr.map { $0 / tau }[...])
            let kl = zip(logP, logQ).reduce(0) { $0 + Foundation.exp($1.0) * ($1.0 - $1.1) }
            return Double(w.lm) * ce + Double(w.kd) * tau * tau * kl
        }
    }

    static let settings = [
        DistillationWeights(lm: 0, kd: 1, temperature: 1),
        DistillationWeights(lm: 0.3, kd: 0.7, temperature: 2.5),
        DistillationWeights(lm: 1, kd: 0, temperature: 1),
        DistillationWeights(lm: 0.5, kd: 0.5, temperature: 0.5),
    ]

    func run(_ fast: Bool, losses: Tensor, dlogits: Tensor, student: Tensor, teacher: Tensor, dlosses: Tensor,
             weights: DistillationWeights, targets: [Int32]? = nil, N: Int? = nil, V: Int? = nil) {
        let f = fast ? distillationForwardBackward : distillationForwardBackwardReference
        f(losses.data, dlogits.data, student.data, teacher.data, targets ?? self.targets, dlosses.data, N ?? self.N, V ?? self.V, weights)
    }

    @Test(arguments: 0..<settings.count, [true, false])
    func lossesMatchDouble(setting: Int, fast: Bool) {
        let w = Self.settings[setting]
        var studentValues = randomTensor(N * V, seed: 201, scale: 3).array
        for i in 0..<V { studentValues[i] += 300 }  // a row that would overflow a naive exp
        let student = tensor(studentValues), teacher = randomTensor(N * V, seed: 202, scale: 3)
        let losses = randomTensor(N, seed: 203), dlogits = zeros(N * V), dlosses = randomTensor(N, seed: 204)
        run(fast, losses: losses, dlogits: dlogits, student: student, teacher: teacher, dlosses: dlosses, weights: w)
        checkTensor("distillation losses \(w) fast=\(fast)", losses,
                    expectedLosses(student: doubles(student), teacher: doubles(teacher), weights: w), tolerance: 1e-5)
        #expect(losses.array[3] == 0)
    }

    @Test(arguments: 0..<settings.count, [true, false])
    func gradientMatchesFiniteDifferences(setting: Int, fast: Bool) {
        let w = Self.settings[setting]
        let student = randomTensor(N * V, seed: 211, scale: 2), teacher = randomTensor(N * V, seed: 212, scale: 2)
        let dlosses = randomTensor(N, seed: 213), losses = zeros(N), dlogits = randomTensor(N * V, seed: 214)
        run(fast, losses: losses, dlogits: dlogits, student: student, teacher: teacher, dlosses: dlosses, weights: w)
        let numeric = numericGradient(at: doubles(student)) {
            weightedSum(expectedLosses(student: $0, teacher: doubles(teacher), weights: w), dlosses)
        }
        checkTensor("distillation dlogits \(w) fast=\(fast)", dlogits, numeric, tolerance: gradientTolerance)
        #expect(dlogits.array[(3 * V)..<(4 * V)].allSatisfy { $0 == 0 })
        // Written over the student logits themselves.
        let shared = student.copy()
        run(fast, losses: losses, dlogits: shared, student: shared, teacher: teacher, dlosses: dlosses, weights: w)
        #expect(shared.array == dlogits.array)
    }

    /// KD alone, student = teacher: the KL and its gradient vanish, at any temperature.
    @Test func studentEqualToTeacherHasNothingToLearn() {
        for temperature: Float in [0.5, 1, 3] {
            let logits = randomTensor(N * V, seed: 221, scale: 4)
            let losses = zeros(N), dlogits = zeros(N * V), dlosses = tensor([Float](repeating: 1, count: N))
            run(true, losses: losses, dlogits: dlogits, student: logits, teacher: logits, dlosses: dlosses,
                weights: DistillationWeights(lm: 0, kd: 1, temperature: temperature))
            #expect(losses.array.allSatisfy { abs($0) < 1e-6 }, "τ \(temperature): \(losses.array)")
            #expect(dlogits.array.allSatisfy { abs($0) < 1e-7 }, "τ \(temperature)")
        }
    }

    /// lm 1, kd 0 is exactly the cross-entropy kernels.
    @Test func lmOnlyEqualsCrossEntropy() {
        let student = randomTensor(N * V, seed: 231, scale: 3), teacher = randomTensor(N * V, seed: 232, scale: 3)
        let dlosses = randomTensor(N, seed: 233)
        let losses = zeros(N), dlogits = zeros(N * V), ceLosses = zeros(N), ceGrad = zeros(N * V)
        run(true, losses: losses, dlogits: dlogits, student: student, teacher: teacher, dlosses: dlosses,
            weights: DistillationWeights(lm: 1, kd: 0, temperature: 1))
        crossEntropyForward(losses: ceLosses.data, logits: student.data, targets: targets, N: N, V: V)
        crossEntropyBackward(dlogits: ceGrad.data, logits: student.data, targets: targets, dlosses: dlosses.data, N: N, V: V)
        checkTensor("lm-only losses", losses, ceLosses, tolerance: 1e-6)
        checkTensor("lm-only dlogits", dlogits, ceGrad, tolerance: 1e-6)
    }

    /// Vocabulary-sized rows (49,157: not a multiple of 16) against the Double twin.
    @Test func fastMatchesReferenceOnVocabularyRows() {
        let n = 3, v = 49_157
        let manyTargets: [Int32] = [0, 49_156, 12_345]
        let student = randomTensor(n * v, seed: 241, scale: 4), teacher = randomTensor(n * v, seed: 242, scale: 4)
        let dlosses = randomTensor(n, seed: 243)
        let w = DistillationWeights(lm: 0.25, kd: 0.75, temperature: 2)
        let lossF = zeros(n), lossR = zeros(n), dF = zeros(n * v), dR = zeros(n * v)
        run(true, losses: lossF, dlogits: dF, student: student, teacher: teacher, dlosses: dlosses, weights: w,
            targets: manyTargets, N: n, V: v)
        run(false, losses: lossR, dlogits: dR, student: student, teacher: teacher, dlosses: dlosses, weights: w,
            targets: manyTargets, N: n, V: v)
        checkTensor("distillation vocabulary losses", lossF, lossR, tolerance: 1e-5)
        checkTensor("distillation vocabulary dlogits", dF, dR, tolerance: 1e-6)
    }
}
