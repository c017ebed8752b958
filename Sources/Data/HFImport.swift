// Hugging Face folders (`config.json` + safetensors, optional `tokenizer.json`) -> ModelConfig +
// ParameterSet under the canonical names, for LlamaForCausalLM, GPT2LMHeadModel and OPTForCausalLM.
// One name table per architecture (`hfSource`); every quirk in it: GPT-2's Conv1D weights are
// (in, out) and its q/k/v share one c_attn; OPT's learned positions start at row 2.
// HFExport.swift writes the LLaMA family back out.

import Foundation
import Model
import Tensor

/// Where one canonical parameter comes from in a Hugging Face checkpoint.
enum HFSource: Equatable {
    /// The tensor as stored.
    case copy(String)
    /// A Conv1D (in, out) matrix, transposed to (out, in).
    case transpose(String)
    /// Part `part` of `parts` equal row blocks of the transposed matrix (or of a 1-D bias).
    case split(String, part: Int, parts: Int, transposed: Bool)
    /// The tensor without its first `rows` rows.
    case dropRows(String, rows: Int)

    var name: String {
        switch self {
        case .copy(let n), .transpose(let n), .split(let n, _, _, _), .dropRows(let n, _): return n
        }
    }
}

public enum HFImport {
    /// Reads `folder` (config.json, model.safetensors or its sharded index, tokenizer.json if present).
    public static func load(folder: URL) throws -> ImportedModel {
        let configURL = folder.appendingPathComponent("config.json")
        let json = try readJSON(configURL)
        let config = try config(json: json, path: configURL.path)
        let checkpoint = try SafetensorsCheckpoint(folder: folder)
        let prefix = namePrefix(config.architecture, names: Set(checkpoint.names))
        let parameters = ParameterSet(config.parameterSpecs)
        for spec in config.parameterSpecs {
            let source = hfSource(spec.name, config: config, prefix: prefix)
            let raw = try checkpoint.tensor(source.name)
            let value = try transform(raw, source, path: folder.path)
            guard value.shape == spec.shape else {
                throw DataError.shapeMismatch(path: folder.path, tensor: source.name, expected: spec.shape, found: value.shape)
            }
            parameters.value(spec.name).assign(value)
        }
        let tokenizerURL = folder.appendingPathComponent("tokenizer.json")
        let tokenizer = FileManager.default.fileExists(atPath: tokenizerURL.path)
            ? try BPETokenizer(tokenizerJSON: tokenizerURL, bosID: json["bos_token_id"] as? Int, eosID: json["eos_token_id"] as? Int)
            : nil
        return ImportedModel(config: config, parameters: parameters, tokenizer: tokenizer)
    }

    /// The ModelConfig a `config.json` object describes (`architectures[0]` or `model_type` decides).
    public static func config(json: [String: Any], path: String) throws -> ModelConfig {
        let arch = (json["architectures"] as? [String])?.first ?? (json["model_type"] as? String) ?? "absent"
        func int(_ key: String) throws -> Int {
            guard let v = json[key] as? Int else { throw DataError.missingKey(path: path, key: key, expected: "an integer") }
            return v
        }
        func float(_ key: String, default value: Double) -> Float { Float((json[key] as? Double) ?? value) }
        func refuse(_ detail: String) -> DataError { .unsupportedArchitecture(path: path, architecture: arch, detail: detail) }
        switch arch {
        case "LlamaForCausalLM", "llama":
            if json["rope_scaling"] is [String: Any] { throw refuse("rope_scaling is not supported") }
            if (json["attention_bias"] as? Bool) == true || (json["mlp_bias"] as? Bool) == true {
                throw refuse("attention_bias / mlp_bias are not supported")
            }
            let heads = try int("num_attention_heads")
            return ModelConfig.llama(vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
                                     layers: try int("num_hidden_layers"), heads: heads,
                                     kvHeads: (json["num_key_value_heads"] as? Int) ?? heads,
                                     headDim: json["head_dim"] as? Int, ffn: try int("intermediate_size"),
                                     ropeTheta: float("rope_theta", default: 10_000), normEps: float("rms_norm_eps", default: 1e-6),
                                     maxPositions: (json["max_position_embeddings"] as? Int) ?? 2048,
                                     tiedEmbeddings: (json["tie_word_embeddings"] as? Bool) ?? false)  // LlamaConfig's default
        case "GPT2LMHeadModel", "gpt2":
            let act = (json["activation_function"] as? String) ?? "gelu_new"
            // Streamline's GELU is the tanh approximation; exact-erf "gelu" would not compute the same.
            guard act == "gelu_new" || act == "gelu_pytorch_tanh" else { throw refuse("activation_function \(act)") }
            let C = try int("n_embd")
            return ModelConfig.gpt2(vocabSize: try int("vocab_size"), hiddenSize: C, layers: try int("n_layer"),
                                    heads: try int("n_head"), ffn: json["n_inner"] as? Int,
                                    maxPositions: try int("n_positions"), normEps: float("layer_norm_epsilon", default: 1e-5))
        case "OPTForCausalLM", "opt":
            guard (json["do_layer_norm_before"] as? Bool) ?? true else {
                throw refuse("do_layer_norm_before = false (post-norm, e.g. opt-350m)")
            }
            let C = try int("hidden_size")
            if let proj = json["word_embed_proj_dim"] as? Int, proj != C { throw refuse("word_embed_proj_dim \(proj) != hidden_size \(C)") }
            guard (json["activation_function"] as? String ?? "relu") == "relu" else { throw refuse("activation_function") }
            guard (json["enable_bias"] as? Bool) ?? true else { throw refuse("enable_bias = false") }
            var config = ModelConfig.gpt2(vocabSize: try int("vocab_size"), hiddenSize: C, layers: try int("num_hidden_layers"),
                                          heads: try int("num_attention_heads"), ffn: try int("ffn_dim"),
                                          maxPositions: try int("max_position_embeddings"), normEps: 1e-5,  // OPT's LayerNorm default
                                          activation: .relu, architecture: .opt)
            config.tiedEmbeddings = (json["tie_word_embeddings"] as? Bool) ?? true
            return config
        default:
            throw refuse("config.json architectures/model_type")
        }
    }

    /// The prefix the checkpoint's names carry (base-model checkpoints drop the `transformer.`/`model.` part).
    static func namePrefix(_ arch: Architecture, names: Set<String>) -> String {
        switch arch {
        case .llama: return "model."
        case .gpt2: return names.contains("transformer.wte.weight") ? "transformer." : ""
        case .opt: return names.contains("model.decoder.embed_tokens.weight") ? "model.decoder." : "decoder."
        }
    }

    /// Canonical name -> checkpoint tensor (the mapping tables for the three architectures).
    static func hfSource(_ canonical: String, config: ModelConfig, prefix p: String) -> HFSource {
        let parts = canonical.split(separator: "/").map(String.init)
        switch config.architecture {
        case .llama:
            switch canonical {
            case "embed/tokens": return .copy("model.embed_tokens.weight")
            case "final_norm/scale": return .copy("model.norm.weight")
            case "lm_head": return .copy("lm_head.weight")
            default:
                let l = parts[1], rest = parts[2...].joined(separator: "/")
                let table = ["attn_norm/scale": "input_layernorm", "attn/wq": "self_attn.q_proj", "attn/wk": "self_attn.k_proj",
                             "attn/wv": "self_attn.v_proj", "attn/wo": "self_attn.o_proj",
                             "mlp_norm/scale": "post_attention_layernorm", "mlp/w_gate": "mlp.gate_proj",
                             "mlp/w_up": "mlp.up_proj", "mlp/w_down": "mlp.down_proj"]
                guard let hf = table[rest] else { preconditionFailure("HFImport: no llama name for \(canonical)") }
                return .copy("\(p)layers.\(l).\(hf).weight")
            }
        case .gpt2:
            switch canonical {
            case "embed/tokens": return .copy("\(p)wte.weight")
            case "embed/positions": return .copy("\(p)wpe.weight")
            case "final_norm/scale": return .copy("\(p)ln_f.weight")
            case "final_norm/shift": return .copy("\(p)ln_f.bias")
            case "lm_head": return .copy("lm_head.weight")
            default:
                let h = "\(p)h.\(parts[1])."
                switch parts[2...].joined(separator: "/") {
                case "attn_norm/scale": return .copy(h + "ln_1.weight")
                case "attn_norm/shift": return .copy(h + "ln_1.bias")
                case "attn/wq": return .split(h + "attn.c_attn.weight", part: 0, parts: 3, transposed: true)
                case "attn/wk": return .split(h + "attn.c_attn.weight", part: 1, parts: 3, transposed: true)
                case "attn/wv": return .split(h + "attn.c_attn.weight", part: 2, parts: 3, transposed: true)
                case "attn/bq": return .split(h + "attn.c_attn.bias", part: 0, parts: 3, transposed: false)
                case "attn/bk": return .split(h + "attn.c_attn.bias", part: 1, parts: 3, transposed: false)
                case "attn/bv": return .split(h + "attn.c_attn.bias", part: 2, parts: 3, transposed: false)
                case "attn/wo": return .transpose(h + "attn.c_proj.weight")
                case "attn/bo": return .copy(h + "attn.c_proj.bias")
                case "mlp_norm/scale": return .copy(h + "ln_2.weight")
                case "mlp_norm/shift": return .copy(h + "ln_2.bias")
                case "mlp/w_up": return .transpose(h + "mlp.c_fc.weight")
                case "mlp/b_up": return .copy(h + "mlp.c_fc.bias")
                case "mlp/w_down": return .transpose(h + "mlp.c_proj.weight")
                case "mlp/b_down": return .copy(h + "mlp.c_proj.bias")
                default: preconditionFailure("HFImport: no gpt2 name for \(canonical)")
                }
            }
        case .opt:
            switch canonical {
            case "embed/tokens": return .copy("\(p)embed_tokens.weight")
            // OPT's position table has 2 extra leading rows (positions are looked up at index + 2).
            case "embed/positions": return .dropRows("\(p)embed_positions.weight", rows: 2)
            case "final_norm/scale": return .copy("\(p)final_layer_norm.weight")
            case "final_norm/shift": return .copy("\(p)final_layer_norm.bias")
            case "lm_head": return .copy("lm_head.weight")
            default:
                let table = ["attn_norm/scale": "self_attn_layer_norm.weight", "attn_norm/shift": "self_attn_layer_norm.bias",
                             "attn/wq": "self_attn.q_proj.weight", "attn/wk": "self_attn.k_proj.weight",
                             "attn/wv": "self_attn.v_proj.weight", "attn/wo": "self_attn.out_proj.weight",
                             "attn/bq": "self_attn.q_proj.bias", "attn/bk": "self_attn.k_proj.bias",
                             "attn/bv": "self_attn.v_proj.bias", "attn/bo": "self_attn.out_proj.bias",
                             "mlp_norm/scale": "final_layer_norm.weight", "mlp_norm/shift": "final_layer_norm.bias",
                             "mlp/w_up": "fc1.weight", "mlp/b_up": "fc1.bias", "mlp/w_down": "fc2.weight", "mlp/b_down": "fc2.bias"]
                guard let hf = table[parts[2...].joined(separator: "/")] else { preconditionFailure("HFImport: no opt name for \(canonical)") }
                return .copy("\(p)layers.\(parts[1]).\(hf)")
            }
        }
    }

    static func transform(_ raw: Tensor, _ source: HFSource, path: String) throws -> Tensor {
        switch source {
        case .copy: return raw
        case .transpose: return try transposed(raw, source.name, path)
        case .split(_, let part, let parts, let isTransposed):
            let t = isTransposed ? try transposed(raw, source.name, path) : raw
            guard t.shape[0] % parts == 0 else {
                throw DataError.malformed(format: "Hugging Face checkpoint", path: path, at: source.name,
                                          detail: "\(t.shape[0]) rows do not split into \(parts) parts")
            }
            let n = t.shape[0] / parts
            return t.rank == 1 ? t.reshaped([parts, n]).row(part).copy() : t.rows((part * n)..<((part + 1) * n)).copy()
        case .dropRows(_, let rows):
            guard raw.rank == 2, raw.shape[0] > rows else {
                throw DataError.malformed(format: "Hugging Face checkpoint", path: path, at: source.name, detail: "shape \(raw.shape)")
            }
            return raw.rows(rows..<raw.shape[0]).copy()
        }
    }

    static func transposed(_ t: Tensor, _ name: String, _ path: String) throws -> Tensor {
        guard t.rank == 2 else {
            throw DataError.malformed(format: "Hugging Face checkpoint", path: path, at: name, detail: "expected a matrix, shape \(t.shape)")
        }
        let (r, c) = (t.shape[0], t.shape[1])
        let out = Tensor(zeros: [c, r])
        for i in 0..<r { for j in 0..<c { out.data[j * r + i] = t.data[i * c + j] } }
        return out
    }

    static func readJSON(_ url: URL) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DataError.unreadable(path: url.path, detail: error.localizedDescription) }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DataError.malformed(format: "JSON", path: url.path, at: "top level", detail: "not a JSON object")
        }
        return json
    }
}
