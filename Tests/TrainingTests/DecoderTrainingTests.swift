// The real decoder under the trainer: a tiny LLaMA learns a repeated sequence, LoRA-only training
// moves only the adapters and lowers the loss, and merged adapters give the unmerged loss.

import Foundation
import Testing
import Tensor
import Model
@testable import Training

@Suite struct DecoderTrainingTests {
    static let config = ModelConfig.llama(vocabSize: 32, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64, maxPositions: 64)
    /// 12 distinct tokens in a fixed order, repeated: the text the model must memorise.
    static let text: [Int32] = (0..<240).map { [7, 19, 2, 30, 11, 5, 23, 14, 28, 1, 9, 17][$0 % 12] }
    static let T = 16

    /// A fixed evaluation batch: the first four windows the sampler with seed 99 gives.
    static func evaluationBatch() throws -> TokenBatch {
        try TokenSampler(stream: text, T: T, seed: 99).batch(first: 0, count: 4)
    }

    static func trainerConfig(steps: Int, lr: Float) -> TrainerConfig {
        TrainerConfig(steps: steps, batchSize: 4, seqLen: T, schedule: LRSchedule(kind: .cosine, lr: lr, warmup: 5, minLR: lr / 10),
                      optimizer: AdamWConfig(weightDecay: 0))
    }

    @Test func tinyLlamaDrivesTheLossNearZero() throws {
        let model = Decoder.initialized(config: Self.config, seed: 1)
        let trainer = try Trainer(model: model, config: Self.trainerConfig(steps: 150, lr: 1e-2),
                                  batches: TokenSampler(stream: Self.text, T: Self.T, seed: 3))
        var losses: [Float] = []
        try trainer.run { losses.append($0.loss) }
        #expect(losses[0] > 3, "starts near ln 32 = 3.47, got \(losses[0])")
        #expect(losses.last! < 0.05, "final training loss \(losses.last!)")
        let batch = try Self.evaluationBatch()
        let evaluation = model.loss(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T)
        #expect(evaluation < 0.05, "evaluation loss \(evaluation)")
    }

    @Test func loraOnlyTrainingMovesOnlyAdaptersAndMergedEqualsUnmerged() throws {
        let model = Decoder.initialized(config: Self.config, seed: 2)
        try model.addLoRA(rank: 4, alpha: 8, seed: 5)
        model.trainBase = false
        let base = model.parameters.values.array
        let adaptersBefore = try #require(model.adapters).values.array
        let batch = try Self.evaluationBatch()
        let lossBefore = model.loss(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T)

        let trainer = try Trainer(model: model, config: Self.trainerConfig(steps: 40, lr: 1e-2),
                                  batches: TokenSampler(stream: Self.text, T: Self.T, seed: 4))
        #expect(trainer.optimizer.sets.count == 1 && trainer.optimizer.sets[0] === model.adapters)
        try trainer.run()

        let lossAfter = model.loss(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T)
        #expect(lossAfter < lossBefore - 0.25, "LoRA training lowers the loss: \(lossBefore) → \(lossAfter)")
        #expect(model.parameters.values.array.map(\.bitPattern) == base.map(\.bitPattern), "base weights bitwise unchanged")
        #expect(model.parameters.grads.array.allSatisfy { $0 == 0 }, "no base gradient was accumulated")
        #expect(try #require(model.adapters).values.array != adaptersBefore)

        model.mergeLoRA()
        #expect(model.adapters == nil)
        #expect(model.parameters.values.array != base, "merging changed the base weights")
        let lossMerged = model.loss(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T)
        #expect(abs(lossMerged - lossAfter) < 1e-5 * max(1, lossAfter), "merged \(lossMerged) vs unmerged \(lossAfter)")
    }

    @Test func freezingABaseTensorByPatternKeepsItFixed() throws {
        let model = Decoder.initialized(config: Self.config, seed: 3)
        let embedBefore = model.parameters.value("embed/tokens").array
        let normBefore = model.parameters.value("layers/0/attn_norm/scale").array
        var config = Self.trainerConfig(steps: 3, lr: 1e-2)
        config.freeze = ["embed/**"]
        try Trainer(model: model, config: config, batches: TokenSampler(stream: Self.text, T: Self.T, seed: 1)).run()
        #expect(model.parameters.value("embed/tokens").array == embedBefore)
        #expect(model.parameters.value("layers/0/attn_norm/scale").array != normBefore)
    }

    @Test func loraRunResumedFromACheckpointMatchesAnUninterruptedRun() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-decoder-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let batches = try TokenSampler(stream: Self.text, T: Self.T, seed: 6)
        func loraModel() throws -> Decoder {
            let model = Decoder.initialized(config: Self.config, seed: 4)
            try model.addLoRA(rank: 2, alpha: 4, targets: ["wq", "wv"], seed: 8)
            model.trainBase = false
            return model
        }
        let config = Self.trainerConfig(steps: 6, lr: 1e-2)
        let straight = try loraModel()
        try Trainer(model: straight, config: config, batches: batches).run()

        let stopped = try loraModel()
        let first = try Trainer(model: stopped, config: config, batches: batches)
        for _ in 0..<3 { try first.step() }
        let checkpoint = folder.appendingPathComponent("lora-state.h5")
        try first.saveCheckpoint(to: checkpoint)

        let fresh = Decoder.initialized(config: Self.config, seed: 4)
        try fresh.addLoRA(rank: 2, alpha: 4, targets: ["wq", "wv"], seed: 77)   // other adapter values, replaced by the load
        fresh.trainBase = false
        let second = try Trainer(model: fresh, config: config, batches: batches)
        try second.resume(from: checkpoint)
        try second.run()
        let a = try #require(straight.adapters).values.array, b = try #require(fresh.adapters).values.array
        let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) of \(a.count) adapter values differ, max difference \(maxAbsDiff(a, b))")
        #expect(a != (try loraModel()).adapters?.values.array)
    }
}
