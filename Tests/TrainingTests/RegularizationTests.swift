// The DReSS regularization loop on a tiny LLaMA: a large λ empties the selected slices (so masking them
// costs almost nothing), λ = 0 is exactly the Trainer's run, accumulation keeps the penalty's weight,
// runs are deterministic, and the config decodes with defaults and rejects bad values by key.

import Foundation
import Testing
import Tensor
import Model
@testable import Training

@Suite struct RegularizationTests {
    static let config = ModelConfig.llama(vocabSize: 32, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64, maxPositions: 64)
    /// 12 distinct tokens in a fixed order, repeated: a text the tiny model can learn.
    static let text: [Int32] = (0..<240).map { [7, 19, 2, 30, 11, 5, 23, 14, 28, 1, 9, 17][$0 % 12] }
    static let T = 16

    static func heldOut() throws -> [TokenBatch] {
        [try TokenSampler(stream: text, T: T, seed: 99).batch(first: 0, count: 4)]
    }

    /// A model that has learned the text first, so masking channels has something to destroy.
    static func trainedModel() throws -> Decoder {
        let model = Decoder.initialized(config: config, seed: 1)
        let trainer = try Trainer(model: model,
                                  config: TrainerConfig(steps: 60, batchSize: 4, seqLen: T,
                                                        schedule: LRSchedule(kind: .cosine, lr: 1e-2, warmup: 5, minLR: 1e-3),
                                                        optimizer: AdamWConfig(weightDecay: 0)),
                                  batches: TokenSampler(stream: text, T: T, seed: 3))
        try trainer.run()
        return model
    }

    @Test func largeLambdaEmptiesTheSelectedSlicesAndMaskingThemCostsLittle() throws {
        let model = try Self.trainedModel()
        let channels = try ChannelSelection.last(ratio: 0.5, hiddenSize: Self.config.hiddenSize)
        let config = RegularizationConfig(lambda: .constant(1), steps: 150, batchSize: 4, seqLen: Self.T,
                                          lr: 3e-2, warmup: 5, minLR: 0, logEvery: 10, evalEvery: 50)
        var steps = 0, points = 0, evaluations = 0
        let curves = try runRegularization(model: model, batches: TokenSampler(stream: Self.text, T: Self.T, seed: 4),
                                           channels: channels, config: config, heldOut: Self.heldOut()) { event in
            switch event {
            case .step: steps += 1
            case .point: points += 1
            case .evaluation: evaluations += 1
            }
        }
        #expect(steps == 150 && points == 15 && evaluations == 4, "evaluations at 0, 50, 100, 150")
        #expect(curves.points.map(\.step) == Array(stride(from: 10, through: 150, by: 10)))
        #expect(curves.evaluations.map(\.step) == [0, 50, 100, 150])
        #expect(curves.initialEnergy > 0.2, "a trained model uses the selected channels: \(curves.initialEnergy)")
        let final = curves.points.last!
        #expect(final.energy < 1e-6, "relative energy left in P: \(final.energy)")
        // The energy the curves report is the library's own measure of the final weights.
        #expect(final.energy == ChannelRegularizer.sliceEnergy(parameters: model.parameters, config: Self.config, channels: channels).relative)
        let first = curves.evaluations.first!, last = curves.evaluations.last!
        #expect(first.maskedLoss > first.loss + 0.2, "masking P before regularization hurts: \(first)")
        #expect(abs(last.maskedLoss - last.loss) < 0.02, "after it, masking P costs little: \(last)")
        #expect(last.loss < 0.5, "the model still knows the text: \(last)")
    }

    @Test func zeroLambdaIsExactlyTheTrainersRun() throws {
        let config = RegularizationConfig(lambda: .constant(0), steps: 12, batchSize: 2, seqLen: Self.T, accumulation: 2,
                                          lr: 3e-3, warmup: 3, decay: .linear, weightDecay: 0.1, clipNorm: 0.5)
        let a = Decoder.initialized(config: Self.config, seed: 7)
        let b = Decoder.initialized(config: Self.config, seed: 7)
        let channels = try ChannelSelection.uniform(ratio: 0.25, hiddenSize: Self.config.hiddenSize)
        _ = try runRegularization(model: a, batches: TokenSampler(stream: Self.text, T: Self.T, seed: 5),
                                  channels: channels, config: config)
        try Trainer(model: b, config: config.trainerConfig, batches: TokenSampler(stream: Self.text, T: Self.T, seed: 5)).run()
        #expect(a.parameters.values.array == b.parameters.values.array)
    }

    @Test func accumulationKeepsThePenaltyWeight() throws {
        // Two micro-batches of 2 and one batch of 4 see the same samples and the same mean objective.
        let channels = try ChannelSelection.first(ratio: 0.25, hiddenSize: Self.config.hiddenSize)
        func run(batch: Int, accumulation: Int) throws -> [Float] {
            let model = Decoder.initialized(config: Self.config, seed: 8)
            let config = RegularizationConfig(lambda: .constant(0.5), norm: .l2sq, steps: 5, batchSize: batch, seqLen: Self.T,
                                              accumulation: accumulation, lr: 1e-3, clipNorm: nil)
            _ = try runRegularization(model: model, batches: TokenSampler(stream: Self.text, T: Self.T, seed: 6),
                                      channels: channels, config: config)
            return model.parameters.values.array
        }
        let one = try run(batch: 4, accumulation: 1), two = try run(batch: 2, accumulation: 2)
        let start = Decoder.initialized(config: Self.config, seed: 8).parameters.values.array
        let moved = zip(one, start).map { abs($0 - $1) }.max()!
        let differ = zip(one, two).map { abs($0 - $1) }.max()!
        #expect(moved > 1e-3)
        #expect(differ < 1e-5, "B 4 × 1 against B 2 × 2: max difference \(differ) (weights moved up to \(moved))")
    }

    @Test func sameInputsGiveTheSameBytes() throws {
        let channels = try ChannelSelection.random(ratio: 0.25, hiddenSize: Self.config.hiddenSize, seed: 2)
        let config = RegularizationConfig(lambda: .linearRamp(from: 0, to: 0.1, steps: 4), norm: .l1, steps: 6, batchSize: 2,
                                          seqLen: Self.T, lr: 5e-3, logEvery: 2)
        func run() throws -> ([Float], RegularizationCurves) {
            let model = Decoder.initialized(config: Self.config, seed: 9)
            let curves = try runRegularization(model: model, batches: TokenSampler(stream: Self.text, T: Self.T, seed: 1),
                                               channels: channels, config: config, heldOut: Self.heldOut())
            return (model.parameters.values.array, curves)
        }
        let (w1, c1) = try run(), (w2, c2) = try run()
        #expect(w1 == w2)
        #expect(c1 == c2)
        // Points at updates 2, 4, 6 used λ of 0-based steps 1, 3, 5.
        #expect(c1.points.map(\.lambda) == [1, 3, 5].map { config.lambda.lambda($0) })
    }

    @Test func maskedEvaluationLeavesTheModelAlone() throws {
        let model = Decoder.initialized(config: Self.config, seed: 3)
        let before = model.parameters.values.array
        let channels = try ChannelSelection.last(ratio: 0.5, hiddenSize: Self.config.hiddenSize)
        let evaluation = try maskedEvaluation(model: model, channels: channels, heldOut: Self.heldOut())
        #expect(model.parameters.values.array == before)
        // Independent reference: zero the slices on a copy by hand and evaluate that.
        let zeroed = ParameterSet(model.parameters.specs)
        zeroed.values.assign(model.parameters.values)
        ChannelRegularizer.zeroChannels(parameters: zeroed, config: Self.config, channels: channels)
        let reference = try Decoder(config: Self.config, parameters: zeroed)
        let batch = try Self.heldOut()[0]
        #expect(Float(evaluation.maskedLoss) == reference.loss(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T))
        #expect(Float(evaluation.loss) == model.loss(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T))
        #expect(evaluation.maskedLoss != evaluation.loss)
    }

    @Test func configDefaultsAndRejectsBadValuesByKey() throws {
        let config = RegularizationConfig(lambda: .linearRamp(from: 0, to: 0.01, steps: 50), steps: 100, batchSize: 4, seqLen: 256, lr: 1e-4)
        #expect(config.clipNorm == 1.0)
        #expect(config.minLR == 1e-5)
        try config.validate()
        #expect(throws: TrainingError.invalidSetting(key: "log_every", value: "0", reason: "must be >= 1")) {
            try RegularizationConfig(steps: 100, batchSize: 4, seqLen: 256, lr: 1e-4, logEvery: 0).validate()
        }
    }
}
