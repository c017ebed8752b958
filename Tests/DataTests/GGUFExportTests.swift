// GGUF export on SmolLM2-135M (made by llama.cpp's converter): exporting our import as F32 gives back
// the original file's tensors exactly (names, shapes, and the Q/K permutation in llama.cpp's
// direction, checked against llama.cpp's own output rather than our importer), plus the config and
// tokenizer keys; a pruned 4-block SmolLM2 (d 576 -> 432, 9 heads × 64, norms keeping divisor 576) comes back
// through our importer with the same logits.

import Foundation
import Model
import Tensor
import Testing
@testable import Data

@Suite struct GGUFExportTests {
    /// max |a − b| over the logits of a few tokens, relative to a's largest |logit|.
    func maxRelativeLogitDifference(_ a: ImportedModel, _ b: ImportedModel, tokens: [Int32]) throws -> Float {
        let la = try Decoder(config: a.config, parameters: a.parameters).logits(tokens: tokens, B: 1, T: tokens.count).array
        let lb = try Decoder(config: b.config, parameters: b.parameters).logits(tokens: tokens, B: 1, T: tokens.count).array
        let scale = la.map(abs).max() ?? 1
        return zip(la, lb).map { abs($0 - $1) }.max()! / scale
    }

    @Test func smolLM2ExportEqualsLlamaCppsFileAndPrunedComesBack() throws {
        let source = try Fetched.file(Fetched.smolLM2, target: "models")
        let dir = try makeTempDir("gguf-export")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try GGUFImport.load(url: source)

        // Dense: the file itself, not re-imported (a full import is most of this test's time).
        let url = dir.appendingPathComponent("dense.gguf")
        try GGUFExport.write(config: model.config, parameters: model.parameters, tokenizer: model.tokenizer, to: url)
        let original = try GGUFFile(url: source), exported = try GGUFFile(url: url)
        #expect(try GGUFImport.config(of: exported) == model.config)
        #expect(exported.tensors.map(\.name) == model.config.parameterSpecs.map { GGUFImport.ggufName($0.name) })
        for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.attn_q.weight",
                     "blk.29.attn_k.weight", "blk.29.ffn_down.weight", "blk.29.ffn_norm.weight", "output_norm.weight"] {
            #expect(try exported.tensor(name).array == original.tensor(name).array, "\(name) differs from llama.cpp's")
        }
        for key in ["llama.embedding_length", "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
                    "llama.attention.head_count_kv", "llama.context_length", "llama.rope.freq_base",
                    "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model", "tokenizer.ggml.pre",
                    "tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
                    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.chat_template"] {
            #expect(exported.metadata[key] == original.metadata[key], "\(key)")
        }
        #expect(exported.metadata["llama.attention.key_length"] == nil)

        // Pruned: the first 4 blocks (enough to exercise every tensor kind; all 30 would triple the time).
        var head = model.config
        head.layers = Array(head.layers.prefix(4))
        let headParameters = ParameterSet(head.parameterSpecs)
        for spec in head.parameterSpecs {
            headParameters.value(spec.name).data.update(from: model.parameters.value(spec.name).data, count: spec.count)
        }
        let channels = try ChannelSet(hiddenSize: 576, pruned: Array(stride(from: 1, to: 576, by: 4)))
        let config = try prunedConfig(head, channels: channels)
        let parameters = try pruneParameters(headParameters, config: head, channels: channels)
        #expect(config.hiddenSize == 432 && config.normDivisor == 576)
        let pruned = ImportedModel(config: config, parameters: parameters, tokenizer: model.tokenizer)
        let prunedURL = dir.appendingPathComponent("pruned.gguf")
        try GGUFExport.write(config: config, parameters: parameters, tokenizer: model.tokenizer, to: prunedURL)
        let back = try GGUFImport.load(url: prunedURL)
        #expect(back.config.hiddenSize == 432 && back.config.headDim == 64 && back.config.normDivisor == 432)
        let tokens = try #require(model.tokenizer).encode("The quick brown fox jumps over")
        #expect(try maxRelativeLogitDifference(pruned, back, tokens: tokens) < 1e-5)
    }
}
