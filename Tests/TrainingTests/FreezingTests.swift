// Freezing by name pattern: glob semantics on canonical names, the mask, frozen parameters and their
// moments untouched by AdamW, and the error for a pattern that matches nothing.

import Testing
import Tensor
import Model
@testable import Training

@Suite struct FreezingTests {
    @Test func globMatchesSegments() {
        #expect(NamePattern("layers/*/attn/*").matches("layers/3/attn/wq"))
        #expect(!NamePattern("layers/*/attn/*").matches("layers/3/attn_norm/scale"))
        #expect(!NamePattern("layers/*/attn/*").matches("layers/3/attn/wq/lora_a"))
        #expect(NamePattern("embed/**").matches("embed/tokens"))
        #expect(NamePattern("embed/**").matches("embed/positions"))
        #expect(!NamePattern("embed/**").matches("lm_head"))
        #expect(NamePattern("**/lora_a").matches("layers/0/attn/wq/lora_a"))
        #expect(NamePattern("**").matches("final_norm/scale"))
        #expect(NamePattern("layers/*/mlp/w_*").matches("layers/12/mlp/w_down"))
        #expect(!NamePattern("layers/*/mlp/w_*").matches("layers/12/mlp/b_up"))
        #expect(NamePattern("layers/1*/**/scale").matches("layers/12/mlp_norm/scale"))
        #expect(!NamePattern("layers/1*/**/scale").matches("layers/2/mlp_norm/scale"))
        #expect(NamePattern("lm_head").matches("lm_head"))
        #expect(!NamePattern("lm_head").matches("lm_head2"))
    }

    @Test func maskFreezesMatchingParametersOfALlamaConfig() throws {
        let config = ModelConfig.llama(vocabSize: 32, hiddenSize: 8, layers: 2, heads: 2, kvHeads: 1, ffn: 16, tiedEmbeddings: false)
        let set = ParameterSet(config.parameterSpecs)
        let mask = try TrainableMask(sets: [set], freeze: ["embed/**", "layers/*/attn/*"])
        let frozen = zip(set.names, mask.flags[0]).filter { !$0.1 }.map(\.0)
        #expect(frozen == ["embed/tokens",
                           "layers/0/attn/wq", "layers/0/attn/wk", "layers/0/attn/wv", "layers/0/attn/wo",
                           "layers/1/attn/wq", "layers/1/attn/wk", "layers/1/attn/wv", "layers/1/attn/wo"])
    }

    @Test func unknownPatternListsCloseNames() {
        let set = ParameterSet([ParameterSpec("embed/tokens", [4, 2]), ParameterSpec("final_norm/scale", [2]),
                                ParameterSpec("lm_head", [4, 2])])
        #expect(throws: TrainingError.unknownParameterPattern(pattern: "embed/token", closest: ["embed/tokens", "lm_head", "final_norm/scale"])) {
            try TrainableMask(sets: [set], freeze: ["embed/token"])
        }
        let error = TrainingError.unknownParameterPattern(pattern: "embed/token", closest: ["embed/tokens"])
        #expect(error.description.contains("embed/tokens"))
    }

    @Test func frozenParametersAndTheirMomentsStayUntouched() throws {
        let model = TinyLM(V: 6, C: 3, seed: 1)
        let set = model.parameters
        let mask = try TrainableMask(sets: [set], freeze: ["embed"])
        let optimizer = AdamW(sets: [set], config: AdamWConfig(weightDecay: 0.1), mask: mask)
        let embedBefore = set.value("embed").array, projBefore = set.value("proj/w").array
        let tokens: [Int32] = [0, 1, 2, 3, 4, 5, 0, 1], targets: [Int32] = [1, 2, 3, 4, 5, 0, 1, 2]
        for _ in 0..<3 {
            set.zeroGrads()
            _ = model.forward(tokens: tokens, targets: targets, B: 2, T: 4)
            model.backward()
            optimizer.update(lr: 0.05)
        }
        #expect(set.value("embed").array == embedBefore)
        #expect(set.grad("embed").array.contains { $0 != 0 }, "the frozen parameter did get gradients")
        #expect(set.value("proj/w").array != projBefore)
        let embedCount = set.value("embed").count
        #expect(optimizer.m(set: 0).array.prefix(embedCount).allSatisfy { $0 == 0 })
        #expect(optimizer.v(set: 0).array.prefix(embedCount).allSatisfy { $0 == 0 })
        #expect(optimizer.trainableCount == set.count - embedCount)
    }
}
