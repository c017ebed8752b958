// LoRA adapters: fresh adapters change nothing, merging reproduces the adapted logits, LoRA-only
// backward touches only adapter gradients and they match finite differences.

import Testing
import Tensor
@testable import Model

@Suite struct LoRATests {
    /// A model with adapters on every linear layer whose B matrices are nonzero.
    func adaptedModel(_ config: ModelConfig, targets: [String] = Decoder.loraTargetNames) throws -> Decoder {
        let model = Decoder.initialized(config: config, seed: 20)
        randomize(model.parameters, seed: 21)
        try model.addLoRA(rank: 3, alpha: 6, targets: targets, seed: 22)
        let adapters = try #require(model.adapters)
        for (i, name) in adapters.names.enumerated() where name.hasSuffix("/lora_b") {
            var rng = RNG(seed: 23, stream: UInt64(i))
            adapters.value(name).fillNormal(&rng, std: 0.3)
        }
        return model
    }

    @Test func freshAdaptersLeaveTheLogitsUnchanged() throws {
        let model = Decoder.initialized(config: ToyConfigs.llamaGQAUntied, seed: 1)
        randomize(model.parameters, seed: 2)
        let (tokens, _) = randomBatch(vocab: 11, B: 2, T: 5, seed: 3)
        let before = model.logits(tokens: tokens, B: 2, T: 5)
        try model.addLoRA(rank: 4, alpha: 8, seed: 4)
        #expect(model.loraScale == 2)
        let adapters = try #require(model.adapters)
        #expect(adapters.names.contains("layers/1/mlp/w_gate/lora_a"))
        #expect(adapters.value("layers/0/attn/wk/lora_b").shape == [8, 4])
        #expect(adapters.value("layers/0/attn/wk/lora_a").shape == [4, 8])
        #expect(adapters.value("layers/0/attn/wk/lora_a").array.contains { $0 != 0 })
        #expect(maxAbsDifference(before, model.logits(tokens: tokens, B: 2, T: 5)) == 0)
    }

    @Test(arguments: [ToyConfigs.llamaGQAUntied, ToyConfigs.gpt2])
    func mergedAdaptersGiveTheSameLogits(_ config: ModelConfig) throws {
        let model = try adaptedModel(config)
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: 2, T: 6, seed: 5)
        let adapted = model.logits(tokens: tokens, B: 2, T: 6)
        let base = Decoder.initialized(config: config, seed: 20)
        randomize(base.parameters, seed: 21)
        #expect(maxAbsDifference(adapted, base.logits(tokens: tokens, B: 2, T: 6)) > 1e-2)
        model.mergeLoRA()
        #expect(model.adapters == nil)
        let merged = model.logits(tokens: tokens, B: 2, T: 6)
        #expect(maxAbsDifference(adapted, merged) < 1e-4)
    }

    @Test(arguments: [ToyConfigs.llamaIrregular, ToyConfigs.opt, ToyConfigs.llamaShortcuts])
    func loraOnlyBackwardLeavesBaseGradientsAndMatchesFiniteDifferences(_ config: ModelConfig) throws {
        let model = try adaptedModel(config)
        model.trainBase = false
        let (B, T) = (2, 5)
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 6)
        let adapters = try #require(model.adapters)
        let reports = checkGradients(model, set: adapters, tokens: tokens, targets: targets, B: B, T: T, seed: 7)
        #expect(model.parameters.grads.array.allSatisfy { $0 == 0 }, "base gradients must stay untouched")
        #expect(adapters.grads.array.contains { $0 != 0 })
        #expect(reports.count == adapters.specs.count)
        for report in reports { #expect(report.worst < 1e-3, "\(report)") }
    }

    @Test func baseAndAdapterGradientsTogetherMatchFiniteDifferences() throws {
        let model = try adaptedModel(ToyConfigs.llamaMQATied, targets: ["wq", "wv", "w_down"])
        let (tokens, targets) = randomBatch(vocab: 11, B: 2, T: 4, seed: 8)
        for set in [model.parameters, try #require(model.adapters)] {
            let reports = checkGradients(model, set: set, tokens: tokens, targets: targets, B: 2, T: 4, seed: 9)
            for report in reports { #expect(report.worst < 1e-3, "\(report)") }
        }
    }

    @Test func badRequestsAreRejected() throws {
        let model = Decoder.initialized(config: ToyConfigs.gpt2, seed: 1)
        #expect(throws: ModelError.unknownLoRATarget("q_proj")) { try model.addLoRA(rank: 2, alpha: 4, targets: ["q_proj"], seed: 0) }
        #expect(throws: ModelError.self) { try model.addLoRA(rank: 0, alpha: 4, seed: 0) }
        #expect(throws: ModelError.self) { try model.addLoRA(rank: 2, alpha: 4, targets: ["w_gate"], seed: 0) }
        try model.addLoRA(rank: 2, alpha: 4, seed: 0)
        #expect(model.adapters?.names.contains { $0.contains("w_gate") } == false)
        #expect(throws: ModelError.self) { try model.addLoRA(rank: 2, alpha: 4, seed: 0) }
        model.dropLoRA()
        #expect(model.adapters == nil)
    }
}
