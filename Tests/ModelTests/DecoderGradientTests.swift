// Whole-model finite-difference gradient checks: every parameter tensor of toy decoders of both
// families, including free widths (C ≠ NH·HD, per-layer heads and FFN, normDivisor ≠ C) and the
// matrices on the residual connections of SliceGPT models.

import Testing
import Tensor
@testable import Model

@Suite struct DecoderGradientTests {
    static let cases: [(String, ModelConfig)] = [
        ("llama GQA untied", ToyConfigs.llamaGQAUntied),
        ("llama MQA tied", ToyConfigs.llamaMQATied),
        ("gpt2", ToyConfigs.gpt2),
        ("opt relu", ToyConfigs.opt),
        ("llama irregular widths", ToyConfigs.llamaIrregular),
        ("gpt2 irregular widths", ToyConfigs.gpt2Irregular),
        ("llama with residual shortcut matrices", ToyConfigs.llamaShortcuts),
    ]

    @Test(arguments: 0..<cases.count)
    func everyParameterMatchesFiniteDifferences(_ index: Int) throws {
        let (label, config) = Self.cases[index]
        let model = Decoder.initialized(config: config, seed: 3)
        randomize(model.parameters, seed: 4)
        let (B, T) = (2, 5)
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 5)
        let reports = checkGradients(model, set: model.parameters, tokens: tokens, targets: targets, B: B, T: T, seed: 6)
        #expect(reports.map(\.name) == config.parameterSpecs.map(\.name))
        for report in reports {
            #expect(report.worst < 1e-3, "\(label) \(report)")
        }
    }

    @Test func trainingForwardLossEqualsEvaluationLoss() {
        for (label, config) in Self.cases {
            let model = Decoder.initialized(config: config, seed: 8)
            randomize(model.parameters, seed: 9)
            let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: 3, T: 4, seed: 10)
            let trained = model.forward(tokens: tokens, targets: targets, B: 3, T: 4)
            let evaluated = model.loss(tokens: tokens, targets: targets, B: 3, T: 4)
            #expect(abs(trained - evaluated) <= 1e-5 * abs(evaluated), "\(label): \(trained) vs \(evaluated)")
            model.backward()
        }
    }
}

@Suite struct DecoderReferenceTests {
    @Test(arguments: 0..<DecoderGradientTests.cases.count)
    func logitsMatchTheFloat64Reference(_ index: Int) {
        let (label, config) = DecoderGradientTests.cases[index]
        let model = Decoder.initialized(config: config, seed: 12)
        randomize(model.parameters, seed: 13)
        let (B, T) = (2, 7)
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 14)
        let logits = model.logits(tokens: tokens, B: B, T: T)
        let expected = ReferenceDecoder(model).logits(tokens: tokens, B: B, T: T).flatMap { $0 }
        let difference = zip(logits.array, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        let magnitude = expected.map(abs).max() ?? 0
        #expect(difference <= 1e-5 * max(magnitude, 1), "\(label): logits differ by \(difference) (largest \(magnitude))")
    }
}
