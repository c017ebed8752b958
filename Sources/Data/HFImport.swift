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
    /// Every config value and every tensor's presence and shape are checked before the (config-sized)
    /// parameters are allocated, so a hostile header can neither crash the import nor size its memory.
    public static func load(folder: URL) throws -> ImportedModel {
        let configURL = folder.appendingPathComponent("config.json")
        let json = try readJSON(configURL)
        let config = try config(json: json, path: configURL.path)
        let checkpoint = try SafetensorsCheckpoint(folder: folder)
        let prefix = namePrefix(config.architecture, names: Set(checkpoint.names))
        let sources = config.parameterSpecs.map { (spec: $0, source: hfSource($0.name, config: config, prefix: prefix)) }
        for (spec, source) in sources {
            guard let info = checkpoint.info(source.name) else { throw DataError.missingTensor(path: folder.path, name: source.name) }
            guard let shape = transformedShape(info.shape, source), shape == spec.shape else {
                throw DataError.shapeMismatch(path: folder.path, tensor: source.name, expected: spec.shape, found: info.shape)
            }
        }
        let parameters = ParameterSet(config.parameterSpecs)
        for (spec, source) in sources {
            let raw = try checkpoint.tensor(source.name)
            try CheckpointLimits.requireFinite(raw.data, count: raw.count, format: "safetensors", path: folder.path, tensor: source.name)
            parameters.value(spec.name).assign(try transform(raw, source, path: folder.path))
        }
        let tokenizerURL = folder.appendingPathComponent("tokenizer.json")
        let tokenizer = FileManager.default.fileExists(atPath: tokenizerURL.path)
            ? try BPETokenizer(tokenizerJSON: tokenizerURL, bosID: json["bos_token_id"] as? Int, eosID: json["eos_token_id"] as? Int,
                               padID: json["pad_token_id"] as? Int, settings: try HFTokenizerSettings(folder: folder))
            : nil
        return ImportedModel(config: config, parameters: parameters, tokenizer: tokenizer)
    }

    /// The ModelConfig a `config.json` object describes (`architectures[0]` or `model_type` decides).
    /// Every value is range-checked (CheckpointLimits) before anything is computed from it.
    public static func config(json: [String: Any], path: String) throws -> ModelConfig {
        let arch = (json["architectures"] as? [String])?.first ?? (json["model_type"] as? String) ?? "absent"
        let values = ConfigValues(json: json, path: path)
        func refuse(_ detail: String) -> DataError { .unsupportedArchitecture(path: path, architecture: arch, detail: detail) }
        let config: ModelConfig
        switch arch {
        case "LlamaForCausalLM", "llama":
            if json["rope_scaling"] is [String: Any] { throw refuse("rope_scaling is not supported") }
            if (json["attention_bias"] as? Bool) == true || (json["mlp_bias"] as? Bool) == true {
                throw refuse("attention_bias / mlp_bias are not supported")
            }
            let C = try values.int("hidden_size", CheckpointLimits.hidden)
            let heads = try values.int("num_attention_heads", CheckpointLimits.heads)
            let kvHeads = try values.int("num_key_value_heads", 1...heads, default: heads)
            let headDim = try values.optionalInt("head_dim", CheckpointLimits.headDim) ?? values.quotient(C, "hidden_size", by: heads, "num_attention_heads")
            config = ModelConfig.llama(vocabSize: try values.int("vocab_size", CheckpointLimits.vocab), hiddenSize: C,
                                       layers: try values.int("num_hidden_layers", CheckpointLimits.layers), heads: heads,
                                       kvHeads: kvHeads, headDim: headDim, ffn: try values.int("intermediate_size", CheckpointLimits.ffn),
                                       ropeTheta: try values.positive("rope_theta", default: 10_000),
                                       normEps: try values.positive("rms_norm_eps", default: 1e-6),
                                       maxPositions: try values.int("max_position_embeddings", CheckpointLimits.context, default: 2048),
                                       tiedEmbeddings: (json["tie_word_embeddings"] as? Bool) ?? false)  // LlamaConfig's default
        case "GPT2LMHeadModel", "gpt2":
            let act = (json["activation_function"] as? String) ?? "gelu_new"
            // Streamline's GELU is the tanh approximation; exact-erf "gelu" would not compute the same.
            guard act == "gelu_new" || act == "gelu_pytorch_tanh" else { throw refuse("activation_function \(act)") }
            let C = try values.int("n_embd", CheckpointLimits.hidden), heads = try values.int("n_head", CheckpointLimits.heads)
            _ = try values.quotient(C, "n_embd", by: heads, "n_head")
            config = ModelConfig.gpt2(vocabSize: try values.int("vocab_size", CheckpointLimits.vocab), hiddenSize: C,
                                      layers: try values.int("n_layer", CheckpointLimits.layers), heads: heads,
                                      ffn: try values.optionalInt("n_inner", CheckpointLimits.ffn),
                                      maxPositions: try values.int("n_positions", CheckpointLimits.context),
                                      normEps: try values.positive("layer_norm_epsilon", default: 1e-5))
        case "OPTForCausalLM", "opt":
            guard (json["do_layer_norm_before"] as? Bool) ?? true else {
                throw refuse("do_layer_norm_before = false (post-norm, e.g. opt-350m)")
            }
            let C = try values.int("hidden_size", CheckpointLimits.hidden), heads = try values.int("num_attention_heads", CheckpointLimits.heads)
            if let proj = json["word_embed_proj_dim"] as? Int, proj != C { throw refuse("word_embed_proj_dim \(proj) != hidden_size \(C)") }
            guard (json["activation_function"] as? String ?? "relu") == "relu" else { throw refuse("activation_function") }
            guard (json["enable_bias"] as? Bool) ?? true else { throw refuse("enable_bias = false") }
            _ = try values.quotient(C, "hidden_size", by: heads, "num_attention_heads")
            var opt = ModelConfig.gpt2(vocabSize: try values.int("vocab_size", CheckpointLimits.vocab), hiddenSize: C,
                                       layers: try values.int("num_hidden_layers", CheckpointLimits.layers), heads: heads,
                                       ffn: try values.int("ffn_dim", CheckpointLimits.ffn),
                                       maxPositions: try values.int("max_position_embeddings", CheckpointLimits.context),
                                       normEps: 1e-5,  // OPT's LayerNorm default
                                       activation: .relu, architecture: .opt)
            opt.tiedEmbeddings = (json["tie_word_embeddings"] as? Bool) ?? true
            config = opt
        default:
            throw refuse("config.json architectures/model_type")
        }
        for key in ["bos_token_id", "eos_token_id", "pad_token_id"] { try values.tokenIDs(key, vocabSize: config.vocabSize) }
        do {
            try config.validate()
        } catch {
            throw DataError.malformed(format: "config.json", path: path, at: "model config", detail: error.description)
        }
        return config
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

    /// The shape `transform` makes of a stored tensor of shape `stored`, or nil when it cannot apply
    /// (checked before anything is allocated).
    static func transformedShape(_ stored: [Int], _ source: HFSource) -> [Int]? {
        switch source {
        case .copy: return stored
        case .transpose: return stored.count == 2 ? [stored[1], stored[0]] : nil
        case .split(_, _, let parts, let isTransposed):
            let shape = isTransposed ? (stored.count == 2 ? [stored[1], stored[0]] : nil) : stored
            guard let shape, let rows = shape.first, rows % parts == 0 else { return nil }
            return [rows / parts] + shape.dropFirst()
        case .dropRows(_, let rows):
            return stored.count == 2 && stored[0] > rows ? [stored[0] - rows, stored[1]] : nil
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

/// Typed, range-checked reads of `config.json` values. A key that is present must have the right
/// type (a string where a number belongs is an error, not the default); null counts as absent.
struct ConfigValues {
    let json: [String: Any]
    let path: String

    private func refuse(_ key: String, _ detail: String) -> DataError {
        .malformed(format: "config.json", path: path, at: key, detail: detail)
    }

    private func present(_ key: String) -> Any? {
        guard let value = json[key], !(value is NSNull) else { return nil }
        return value
    }

    /// An integer in `range` (whole numbers only: 2.5 or 1e30 are refused).
    func optionalInt(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let value = present(key) else { return nil }
        guard let v = value as? Int else { throw refuse(key, "\(value) is not an integer") }
        guard range.contains(v) else { throw refuse(key, "\(v) is outside \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    func int(_ key: String, _ range: ClosedRange<Int>, default fallback: Int? = nil) throws -> Int {
        guard let v = try optionalInt(key, range) ?? fallback else { throw DataError.missingKey(path: path, key: key, expected: "an integer") }
        return v
    }

    /// A finite number > 0 (RoPE base, norm ε), representable as Float.
    func positive(_ key: String, default fallback: Double) throws -> Float {
        guard let value = present(key) else { return Float(fallback) }
        guard let v = value as? Double else { throw refuse(key, "\(value) is not a number") }
        guard v > 0, Float(v).isFinite, Float(v) > 0 else { throw refuse(key, "\(v) must be a finite number > 0") }
        return Float(v)
    }

    /// `a / b`, refusing a remainder: the default head width must split the hidden width exactly.
    func quotient(_ a: Int, _ aKey: String, by b: Int, _ bKey: String) throws -> Int {
        guard a % b == 0 else { throw refuse(bKey, "\(b) does not divide \(aKey) \(a); give head_dim or fix the head count") }
        return a / b
    }

    /// Special token ids (an integer or a list of them) must index the vocabulary.
    func tokenIDs(_ key: String, vocabSize: Int) throws {
        guard let value = present(key) else { return }
        let ids: [Int]
        if let one = value as? Int { ids = [one] } else if let many = value as? [Int] { ids = many } else {
            throw refuse(key, "\(value) is not a token id or a list of them")
        }
        if let bad = ids.first(where: { !(0..<vocabSize).contains($0) }) {
            throw refuse(key, "\(bad) is outside the vocabulary 0..<\(vocabSize)")
        }
    }
}
