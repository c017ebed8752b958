// A decoder trained towards a teacher (Distillation.swift): every parameter's gradient of the fused
// LM + KD loss against central differences of the float64 reference decoder, with a teacher of other
// widths; a teacher equal to the student gives zero loss; bad teachers are refused.

import Foundation
import Testing
import Tensor
@testable import Model

@Suite struct DistillationGradientTests {
    /// Mean over counted rows of a·CE + b·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)), in Double.
    static func referenceLoss(student: [[Double]], teacher: [[Double]], targets: [Int32], weights w: DistillationWeights) -> Double {
        let tau = Double(w.temperature)
        func logSoftmax(_ x: [Double]) -> [Double] {
            let m = x.max()!
            let lse = log(x.reduce(0) { $0 + exp($1 - m) }) + m
            return x.map { $0 - lse }
        }
        var sum = 0.0, count = 0
        for n in student.indices where targets[n] >= 0 {
            let ce = -logSoftmax(student[n])[Int(targets[n])]
            let logP = logSoftmax(teacher[n].map { $0 / tau }), logQ = logSoftmax(student[n].map { $0 / tau })
            let kl = zip(logP, logQ).reduce(0) { $0 + exp($1.0) * ($1.0 - $1.1) }
            sum += Double(w.lm) * ce + Double(w.kd) * tau * tau * kl
            count += 1
        }
        return sum / Double(count)
    }

    @Test(arguments: [(ToyConfigs.llamaGQAUntied, ToyConfigs.llamaIrregular), (ToyConfigs.llamaMQATied, ToyConfigs.llamaGQAUntied),
                      (ToyConfigs.gpt2, ToyConfigs.opt)])
    func everyParameterMatchesFiniteDifferences(student config: ModelConfig, teacher teacherConfig: ModelConfig) throws {
        let model = Decoder.initialized(config: config, seed: 31)
        randomize(model.parameters, seed: 32)
        let teacher = Decoder.initialized(config: teacherConfig, seed: 33)
        randomize(teacher.parameters, seed: 34)
        let weights = DistillationWeights(lm: 0.4, kd: 0.6, temperature: 1.5)
        try model.distil(from: teacher, weights: weights)
        let (B, T) = (2, 5)
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 35)
        let teacherLogits = ReferenceDecoder(teacher).logits(tokens: tokens, B: B, T: T)
        let reports = checkGradients(model, set: model.parameters, tokens: tokens, targets: targets, B: B, T: T, seed: 36) { reference in
            Self.referenceLoss(student: reference.logits(tokens: tokens, B: B, T: T), teacher: teacherLogits, targets: targets, weights: weights)
        }
        #expect(reports.map(\.name) == config.parameterSpecs.map(\.name))
        for report in reports { #expect(report.worst < 1e-3, "\(config.architecture) \(report)") }
    }

    @Test func forwardLossEqualsTheReference() throws {
        let config = ToyConfigs.llamaGQAUntied
        let model = Decoder.initialized(config: config, seed: 41), teacher = Decoder.initialized(config: ToyConfigs.llamaIrregular, seed: 42)
        randomize(model.parameters, seed: 43)
        randomize(teacher.parameters, seed: 44)
        let weights = DistillationWeights(lm: 0.2, kd: 0.8, temperature: 2)
        try model.distil(from: teacher, weights: weights)
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: 3, T: 4, seed: 45)
        let loss = Double(model.forward(tokens: tokens, targets: targets, B: 3, T: 4))
        model.backward()
        let expected = Self.referenceLoss(student: ReferenceDecoder(model).logits(tokens: tokens, B: 3, T: 4),
                                          teacher: ReferenceDecoder(teacher).logits(tokens: tokens, B: 3, T: 4),
                                          targets: targets, weights: weights)
        #expect(abs(loss - expected) <= 1e-5 * abs(expected), "\(loss) vs \(expected)")
        // Evaluation stays the plain LM loss: distillation changes what is trained, not what is measured.
        try model.distil(from: nil, weights: weights)
        let lm = model.loss(tokens: tokens, targets: targets, B: 3, T: 4)
        #expect(abs(Double(lm) - ReferenceDecoder(model).loss(tokens: tokens, targets: targets, B: 3, T: 4)) < 1e-5)
    }

    /// A teacher identical to the student: KD alone has loss 0 and moves no weight.
    @Test func copyOfItselfTeachesNothing() throws {
        let config = ToyConfigs.llamaMQATied
        let model = Decoder.initialized(config: config, seed: 51)
        randomize(model.parameters, seed: 52)
        let copy = ParameterSet(model.parameters.specs)
        copy.values.assign(model.parameters.values)
        try model.distil(from: try Decoder(config: config, parameters: copy), weights: DistillationWeights(lm: 0, kd: 1, temperature: 1))
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: 2, T: 6, seed: 53)
        model.parameters.zeroGrads()
        let loss = model.forward(tokens: tokens, targets: targets, B: 2, T: 6)
        model.backward()
        #expect(abs(loss) < 1e-6)
        #expect(model.parameters.grads.array.allSatisfy { abs($0) < 1e-5 })
    }

    @Test func refusesItselfAndOtherVocabularies() {
        let model = Decoder.initialized(config: ToyConfigs.llamaGQAUntied, seed: 61)
        let weights = DistillationWeights(lm: 0, kd: 1, temperature: 1)
        #expect(throws: ModelError.self) { try model.distil(from: model, weights: weights) }
        // Another decoder over the same weights would move with the student.
        #expect(throws: ModelError.self) {
            try model.distil(from: try Decoder(config: model.config, parameters: model.parameters), weights: weights)
        }
        var other = ToyConfigs.llamaIrregular
        other.vocabSize = 13
        #expect(throws: ModelError.self) { try model.distil(from: Decoder.initialized(config: other, seed: 62), weights: weights) }
    }
}
