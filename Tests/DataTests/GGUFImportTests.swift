// GGUF llama import: SmolLM2's config from metadata (design.md values), canonical parameter names,
// weights equal to the raw dequantised tensors, and the Q/K un-permutation on a hand-made matrix.

import Foundation
import Model
import Tensor
import Testing
@testable import Data

@Suite struct GGUFImportTests {
    @Test func smolLM2ConfigAndWeights() throws {
        let url = try Fetched.file(Fetched.smolLM2, target: "models")
        let model = try GGUFImport.load(url: url)
        let c = model.config
        #expect(c.architecture == .llama && c.layerCount == 30 && c.hiddenSize == 576 && c.headDim == 64)
        #expect(c.layers.allSatisfy { $0 == LayerShape(heads: 9, kvHeads: 3, ffn: 1536) })
        #expect(c.ropeTheta == 1e5 && c.normEps == 1e-5 && c.vocabSize == 49152 && c.tiedEmbeddings)
        #expect(c.norm == .rmsnorm && c.activation == .swiglu && c.positions == .rope && !c.bias)
        #expect(model.parameters.count == 134_515_008)
        #expect(model.tokenizer?.vocabSize == 49152)

        // Unpermuted tensors equal the raw dequantised ones; wq/wk rows are the raw rows, re-ordered per head.
        let file = try GGUFFile(url: url)
        #expect(model.parameters.value("embed/tokens").array == (try file.tensor("token_embd.weight")).array)
        #expect(model.parameters.value("layers/7/mlp/w_down").array == (try file.tensor("blk.7.ffn_down.weight")).array)
        #expect(model.parameters.value("final_norm/scale").array == (try file.tensor("output_norm.weight")).array)
        let rawK = try file.tensor("blk.3.attn_k.weight"), k = model.parameters.value("layers/3/attn/wk")
        for h in 0..<3 {
            for j in 0..<32 {
                #expect(k.row(h * 64 + j).array == rawK.row(h * 64 + 2 * j).array)
                #expect(k.row(h * 64 + 32 + j).array == rawK.row(h * 64 + 2 * j + 1).array)
            }
        }
    }

    /// Head dim 4, 2 heads: GGUF rows per head are (HD/2, 2) pairs [a0 b0 a1 b1]; rotate-half wants [a0 a1 b0 b1].
    @Test func unpermuteRotaryReordersRowsPerHead() {
        let w = Tensor(shape: [8, 1], values: [0, 1, 2, 3, 10, 11, 12, 13])
        GGUFImport.unpermuteRotary(w, heads: 2, headDim: 4)
        #expect(w.array == [0, 2, 1, 3, 10, 12, 11, 13])
    }

    @Test func namesMapToGGUF() {
        #expect(GGUFImport.ggufName("embed/tokens") == "token_embd.weight")
        #expect(GGUFImport.ggufName("layers/12/attn/wo") == "blk.12.attn_output.weight")
        #expect(GGUFImport.ggufName("layers/0/mlp_norm/scale") == "blk.0.ffn_norm.weight")
        #expect(GGUFImport.ggufName("lm_head") == "output.weight")
    }
}
