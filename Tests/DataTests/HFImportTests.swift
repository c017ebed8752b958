// Hugging Face import and export: config.json -> ModelConfig for the three architectures, tiny
// checkpoints written here with HF names and layouts (GPT-2 Conv1D + fused c_attn, OPT's position
// offset) imported back to the canonical values, LLaMA export -> import, the exact RMSNorm fold for
// pruned widths, and SmolLM2 GGUF -> HF export -> HF import with identical weights.

import Foundation
import Model
import Tensor
import Testing
@testable import Data

private func randomParameters(_ config: ModelConfig, seed: UInt64) -> ParameterSet {
    let p = ParameterSet(config.parameterSpecs)
    var rng = RNG(seed: seed)
    for i in 0..<p.count { p.values.data[i] = rng.nextNormal() }
    return p
}

private func transpose(_ t: Tensor) -> Tensor {
    let (r, c) = (t.shape[0], t.shape[1])
    let out = Tensor(zeros: [c, r])
    for i in 0..<r { for j in 0..<c { out[j, i] = t[i, j] } }
    return out
}

private func writeFolder(_ dir: URL, config: [String: Any], tensors: [(String, Tensor)]) throws {
    try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
    try SafetensorsFile.write(tensors.map { (name: $0.0, tensor: $0.1) }, to: dir.appendingPathComponent("model.safetensors"))
}

private func expectSameValues(_ a: ParameterSet, _ b: ParameterSet) {
    #expect(a.names == b.names)
    for name in a.names where b.contains(name) {
        #expect(a.value(name).shape == b.value(name).shape, "\(name)")
        #expect(a.value(name).array == b.value(name).array, "\(name)")
    }
}

@Suite struct HFImportTests {
    @Test func configsOfTheThreeArchitectures() throws {
        let llama = try HFImport.config(json: [
            "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9,
            "num_key_value_heads": 3, "num_hidden_layers": 30, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
            "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": true], path: "c")
        #expect(llama == ModelConfig.llama(vocabSize: 49152, hiddenSize: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536,
                                           ropeTheta: 1e5, normEps: 1e-5, maxPositions: 8192, tiedEmbeddings: true))
        let gpt2 = try HFImport.config(json: [
            "architectures": ["GPT2LMHeadModel"], "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
            "vocab_size": 50257, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"], path: "c")
        #expect(gpt2 == ModelConfig.gpt2(vocabSize: 50257, hiddenSize: 768, layers: 12, heads: 12, maxPositions: 1024))
        let opt = try HFImport.config(json: [
            "architectures": ["OPTForCausalLM"], "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "ffn_dim": 3072, "max_position_embeddings": 2048, "vocab_size": 50272, "do_layer_norm_before": true,
            "word_embed_proj_dim": 768, "activation_function": "relu"], path: "c")
        #expect(opt == ModelConfig.gpt2(vocabSize: 50272, hiddenSize: 768, layers: 12, heads: 12, ffn: 3072, maxPositions: 2048,
                                        activation: .relu, architecture: .opt))
        #expect(throws: DataError.self) {
            try HFImport.config(json: ["architectures": ["OPTForCausalLM"], "do_layer_norm_before": false], path: "c")
        }
        #expect(throws: DataError.self) { try HFImport.config(json: ["architectures": ["BertModel"]], path: "c") }
    }

    @Test func gpt2ConvWeightsAndFusedQKV() throws {
        let dir = try makeTempDir("hf-gpt2")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = ModelConfig.gpt2(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 2, maxPositions: 6)
        let p = randomParameters(config, seed: 5)
        var tensors: [(String, Tensor)] = [("transformer.wte.weight", p.value("embed/tokens")),
                                           ("transformer.wpe.weight", p.value("embed/positions")),
                                           ("transformer.ln_f.weight", p.value("final_norm/scale")),
                                           ("transformer.ln_f.bias", p.value("final_norm/shift"))]
        for l in 0..<2 {
            let h = "transformer.h.\(l).", c = "layers/\(l)/"
            let qkv = Tensor(shape: [24, 8], values: ["wq", "wk", "wv"].flatMap { p.value(c + "attn/" + $0).array })
            let qkvBias = Tensor(shape: [24], values: ["bq", "bk", "bv"].flatMap { p.value(c + "attn/" + $0).array })
            tensors += [(h + "ln_1.weight", p.value(c + "attn_norm/scale")), (h + "ln_1.bias", p.value(c + "attn_norm/shift")),
                        (h + "attn.c_attn.weight", transpose(qkv)), (h + "attn.c_attn.bias", qkvBias),
                        (h + "attn.c_proj.weight", transpose(p.value(c + "attn/wo"))), (h + "attn.c_proj.bias", p.value(c + "attn/bo")),
                        (h + "ln_2.weight", p.value(c + "mlp_norm/scale")), (h + "ln_2.bias", p.value(c + "mlp_norm/shift")),
                        (h + "mlp.c_fc.weight", transpose(p.value(c + "mlp/w_up"))), (h + "mlp.c_fc.bias", p.value(c + "mlp/b_up")),
                        (h + "mlp.c_proj.weight", transpose(p.value(c + "mlp/w_down"))), (h + "mlp.c_proj.bias", p.value(c + "mlp/b_down"))]
        }
        try writeFolder(dir, config: ["architectures": ["GPT2LMHeadModel"], "n_embd": 8, "n_layer": 2, "n_head": 2,
                                      "n_positions": 6, "vocab_size": 11], tensors: tensors)
        let imported = try HFImport.load(folder: dir)
        #expect(imported.config == config)
        expectSameValues(imported.parameters, p)
    }

    @Test func optPositionOffset() throws {
        let dir = try makeTempDir("hf-opt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = ModelConfig.gpt2(vocabSize: 9, hiddenSize: 4, layers: 1, heads: 2, ffn: 12, maxPositions: 5,
                                      activation: .relu, architecture: .opt)
        let p = randomParameters(config, seed: 6)
        // HF stores maxPositions + 2 rows; the two leading rows are never used.
        let positions = Tensor(shape: [7, 4], values: [Float](repeating: 99, count: 8) + p.value("embed/positions").array)
        let d = "model.decoder.", l = "model.decoder.layers.0.", c = "layers/0/"
        var tensors: [(String, Tensor)] = [(d + "embed_tokens.weight", p.value("embed/tokens")), (d + "embed_positions.weight", positions),
                                           (d + "final_layer_norm.weight", p.value("final_norm/scale")),
                                           (d + "final_layer_norm.bias", p.value("final_norm/shift"))]
        for (hf, canonical) in [("self_attn_layer_norm.weight", "attn_norm/scale"), ("self_attn_layer_norm.bias", "attn_norm/shift"),
                                ("self_attn.q_proj.weight", "attn/wq"), ("self_attn.k_proj.weight", "attn/wk"),
                                ("self_attn.v_proj.weight", "attn/wv"), ("self_attn.out_proj.weight", "attn/wo"),
                                ("self_attn.q_proj.bias", "attn/bq"), ("self_attn.k_proj.bias", "attn/bk"),
                                ("self_attn.v_proj.bias", "attn/bv"), ("self_attn.out_proj.bias", "attn/bo"),
                                ("final_layer_norm.weight", "mlp_norm/scale"), ("final_layer_norm.bias", "mlp_norm/shift"),
                                ("fc1.weight", "mlp/w_up"), ("fc1.bias", "mlp/b_up"), ("fc2.weight", "mlp/w_down"), ("fc2.bias", "mlp/b_down")] {
            tensors.append((l + hf, p.value(c + canonical)))
        }
        try writeFolder(dir, config: ["architectures": ["OPTForCausalLM"], "hidden_size": 4, "num_hidden_layers": 1,
                                      "num_attention_heads": 2, "ffn_dim": 12, "max_position_embeddings": 5, "vocab_size": 9,
                                      "do_layer_norm_before": true, "word_embed_proj_dim": 4], tensors: tensors)
        let imported = try HFImport.load(folder: dir)
        #expect(imported.config == config)
        expectSameValues(imported.parameters, p)
    }

    @Test func llamaExportImportRoundTrip() throws {
        let dir = try makeTempDir("hf-llama")
        defer { try? FileManager.default.removeItem(at: dir) }
        for tied in [true, false] {
            let config = ModelConfig.llama(vocabSize: 13, hiddenSize: 12, layers: 2, heads: 4, kvHeads: 2, headDim: 4, ffn: 20,
                                           ropeTheta: 5e4, normEps: 1e-6, maxPositions: 64, tiedEmbeddings: tied)
            let p = randomParameters(config, seed: 7)
            try HFExport.write(config: config, parameters: p, tokenizer: nil, to: dir)
            let back = try HFImport.load(folder: dir)
            #expect(back.config == config)
            expectSameValues(back.parameters, p)
        }
    }

    /// A pruned store (d′ = 6 channels left of D = 8, heads·HD = 16 ≠ d′) exports with head_dim, scale·sqrt(D/d′)
    /// and ε·D/d′; HF's RMSNorm of the imported model equals Streamline's RMSNorm with divisor D.
    @Test func prunedNormFoldIsExact() throws {
        let dir = try makeTempDir("hf-pruned")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = ModelConfig.llama(vocabSize: 10, hiddenSize: 6, layers: 1, heads: 4, kvHeads: 4, headDim: 4, ffn: 8,
                                       normEps: 1e-2, maxPositions: 16)
        config.normDivisor = 8
        let p = randomParameters(config, seed: 8)
        try HFExport.write(config: config, parameters: p, tokenizer: nil, to: dir)
        let written = try HFImport.readJSON(dir.appendingPathComponent("config.json"))
        #expect(written["head_dim"] as? Int == 4)
        let back = try HFImport.load(folder: dir)
        #expect(back.config.normDivisor == 6 && back.config.headDim == 4)
        let x: [Double] = [0.3, -1.2, 2.0, 0.05, -0.7, 1.1]
        func rmsnorm(_ scale: [Float], divisor: Double, eps: Double) -> [Double] {
            let r = 1 / (x.reduce(0) { $0 + $1 * $1 } / divisor + eps).squareRoot()
            return zip(x, scale).map { $0 * r * Double($1) }
        }
        let ours = rmsnorm(p.value("layers/0/attn_norm/scale").array, divisor: 8, eps: Double(config.normEps))
        let theirs = rmsnorm(back.parameters.value("layers/0/attn_norm/scale").array, divisor: 6, eps: Double(back.config.normEps))
        for (a, b) in zip(ours, theirs) { #expect(abs(a - b) <= 1e-6 * max(1, abs(a))) }
    }

    @Test func smolLM2ThroughHFExportKeepsEveryWeight() throws {
        let url = try Fetched.file(Fetched.smolLM2, target: "models")
        let dir = try makeTempDir("hf-smollm2")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try GGUFImport.load(url: url)
        try HFExport.write(config: model.config, parameters: model.parameters, tokenizer: model.tokenizer, to: dir)
        let back = try HFImport.load(folder: dir)
        #expect(back.config == model.config)
        #expect(back.parameters.values.array == model.parameters.values.array)
        #expect(back.tokenizer?.digest == model.tokenizer?.digest)
    }
}
