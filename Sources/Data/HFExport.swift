// LLaMA-family models -> a Hugging Face folder transformers (>= 4.45, for head_dim) can load:
// config.json (LlamaForCausalLM), model.safetensors (F32, BF16 or F16), generation_config.json and the
// tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json) with the special tokens,
// BOS setting and chat template the source recorded. Pruned models are expressed exactly:
// - hiddenSize != heads·headDim: `head_dim` is written explicitly.
// - normDivisor D != hiddenSize d′ (channels deleted, the norm still divides by the original D):
//   Streamline computes x / sqrt(Σx²/D + ε) · s, HF computes x / sqrt(Σx²/d′ + ε′) · s′. With
//   s′ = s·sqrt(D/d′) and ε′ = ε·D/d′:  x·s·sqrt(D/d′) / sqrt(Σx²/d′ + ε·D/d′)
//   = x·s / sqrt((d′/D)·(Σx²/d′ + ε·D/d′)) = x·s / sqrt(Σx²/D + ε). Exact, for every norm at once,
//   because all norms share D and ε.
// Not supported: per-layer widths (HF LLaMA has one width per model), the GPT-2/OPT families, and
// SliceGPT models (a matrix on each residual connection; refused with DataError.shortcutsNotExportable).

import Foundation
import Model
import Tensor

/// The files of a Hugging Face folder, in memory: what `HFExport.write` puts on disk.
public struct HFFolder {
    /// The small files (config.json, tokenizer.json, tokenizer_config.json…) by name.
    public var documents: [(name: String, bytes: Data)]
    /// The weights under their HF names, in file order (norm scales already rescaled), as float32.
    public var tensors: [(name: String, tensor: Tensor)]
    /// The float type model.safetensors is written in.
    public var dtype: SafetensorsFloat
    /// What the export could not write because the store does not record it, for the user to read.
    public var notes: [String]

    /// The safetensors header metadata transformers expects.
    public static let safetensorsMetadata = ["format": "pt"]

    public init(documents: [(name: String, bytes: Data)], tensors: [(name: String, tensor: Tensor)],
                dtype: SafetensorsFloat = .float32, notes: [String] = []) {
        self.documents = documents
        self.tensors = tensors
        self.dtype = dtype
        self.notes = notes
    }

    public func document(_ name: String) -> Data? { documents.first { $0.name == name }?.bytes }
    /// config.json bytes.
    public var config: Data { document("config.json") ?? Data() }
    /// tokenizer.json bytes, if the folder has a tokenizer.
    public var tokenizer: Data? { document("tokenizer.json") }

    /// File name → bytes, sorted by name: the documents and model.safetensors (documents only when
    /// there are no tensors: a GGUF export is one document, `model.gguf`).
    public func files() throws -> [(name: String, bytes: Data)] {
        guard !tensors.isEmpty else { return documents.sorted { $0.name < $1.name } }
        let weights = try SafetensorsFile.encode(tensors, dtype: dtype, metadata: Self.safetensorsMetadata)
        return (documents + [("model.safetensors", weights)]).sorted { $0.name < $1.name }
    }

    /// Writes the files into `folder` (created if missing), each atomically, skipping a file that
    /// already holds exactly these bytes; returns the names written. Other files are left alone.
    @discardableResult
    public func write(to folder: URL) throws -> [String] {
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            throw DataError.unwritable(path: folder.path, detail: error.localizedDescription)
        }
        var written: [String] = []
        for (name, bytes) in try files() {
            let url = folder.appendingPathComponent(name)
            if let existing = try? Data(contentsOf: url, options: .mappedIfSafe), existing == bytes { continue }
            written.append(name)
            do { try bytes.write(to: url, options: .atomic) } catch {
                throw DataError.unwritable(path: url.path, detail: error.localizedDescription)
            }
        }
        return written
    }
}

public enum HFExport {
    /// Writes the folder's files into `folder`; returns the folder (its notes say what was left out).
    @discardableResult
    public static func write(config: ModelConfig, parameters: ParameterSet, tokenizer: BPETokenizer?,
                             dtype: SafetensorsFloat = .float32, to folder: URL) throws -> HFFolder {
        let files = try self.folder(config: config, parameters: parameters, tokenizer: tokenizer, dtype: dtype)
        try files.write(to: folder)
        return files
    }

    /// The folder's files in memory (deterministic: sorted JSON keys, tensors in parameter order):
    /// config.json and model.safetensors; with a tokenizer also tokenizer.json, tokenizer_config.json,
    /// special_tokens_map.json and generation_config.json.
    public static func folder(config: ModelConfig, parameters: ParameterSet, tokenizer: BPETokenizer?,
                              dtype: SafetensorsFloat = .float32) throws -> HFFolder {
        let shape = try uniformLlamaShape(config, format: "HF")
        let (scaleFactor, eps) = foldedNorm(config)
        var json: [String: Any] = [
            // transformers 5 reads `dtype`, 4.x `torch_dtype`.
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "dtype": dtype.rawValue, "torch_dtype": dtype.rawValue,
            "hidden_size": config.hiddenSize, "intermediate_size": shape.ffn, "num_hidden_layers": config.layerCount,
            "num_attention_heads": shape.heads, "num_key_value_heads": shape.kvHeads, "head_dim": config.headDim,
            "rms_norm_eps": eps, "rope_theta": Double(config.ropeTheta),
            "vocab_size": config.vocabSize, "max_position_embeddings": config.maxPositions,
            "tie_word_embeddings": config.tiedEmbeddings, "hidden_act": "silu",
            "attention_bias": false, "mlp_bias": false, "rope_scaling": NSNull(),
        ]
        let ids = tokenizer.map(specialTokenIDs) ?? [:]
        json.merge(ids) { $1 }
        var tensors: [(name: String, tensor: Tensor)] = []
        for spec in config.parameterSpecs {
            guard case .copy(let hfName) = HFImport.hfSource(spec.name, config: config, prefix: "model.") else {
                preconditionFailure("HFExport: llama names are plain copies")
            }
            var value = parameters.value(spec.name)
            if spec.name.hasSuffix("/scale") && scaleFactor != 1 {
                value = value.copy()
                for i in 0..<value.count { value.data[i] *= scaleFactor }
            }
            tensors.append((hfName, value))
        }
        var documents = [("config.json", try jsonData(json))]
        var notes: [String] = []
        if let tokenizer {
            documents += [("generation_config.json", try jsonData(ids)), ("tokenizer.json", try tokenizer.tokenizerJSON())]
            let (tokenizerConfig, specialTokens, missing) = tokenizerSettings(tokenizer, contextLength: config.maxPositions)
            documents += [("tokenizer_config.json", try jsonData(tokenizerConfig)), ("special_tokens_map.json", try jsonData(specialTokens))]
            notes = missing
        } else {
            notes = ["the store has no tokenizer: wrote no tokenizer files"]
        }
        return HFFolder(documents: documents, tensors: tensors, dtype: dtype, notes: notes)
    }

    /// The one layer shape of a LLaMA-family model with equal layers, which both export formats need.
    static func uniformLlamaShape(_ config: ModelConfig, format: String) throws -> LayerShape {
        if config.hasShortcuts { throw DataError.shortcutsNotExportable(format: format) }
        guard config.architecture == .llama, config.norm == .rmsnorm, config.activation == .swiglu, !config.bias else {
            throw DataError.notExportable(detail: "\(format) export writes the LLaMA family; this model is \(config.architecture.rawValue)")
        }
        guard let shape = config.layers.first, config.layers.allSatisfy({ $0 == shape }) else {
            throw DataError.notExportable(detail: "layers have different head counts or FFN widths")
        }
        return shape
    }

    /// The norm scale factor sqrt(D/d′) and ε·D/d′ that express norms dividing by D over d′ channels
    /// as standard RMSNorm (algebra in the file header); (1, ε) for an unpruned width.
    static func foldedNorm(_ config: ModelConfig) -> (scaleFactor: Float, eps: Double) {
        let D = Double(config.normDivisor), d = Double(config.hiddenSize)
        return (Float((D / d).squareRoot()), Double(config.normEps) * D / d)
    }

    static func jsonData(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// bos/eos/pad ids under config.json's and generation_config.json's keys; unknown ones left out.
    static func specialTokenIDs(_ tokenizer: BPETokenizer) -> [String: Any] {
        var ids: [String: Any] = [:]
        for (key, id) in [("bos_token_id", tokenizer.bosID), ("eos_token_id", tokenizer.eosID),
                          ("pad_token_id", tokenizer.conventions.padID)] {
            if let id { ids[key] = id }
        }
        return ids
    }

    /// tokenizer_config.json and special_tokens_map.json objects, and notes on what the store does not
    /// record. The class is the generic fast tokenizer, which takes tokenizer.json as it is (a named
    /// class such as LlamaTokenizerFast would add tokens and behaviour of its own); tokens the source
    /// does not define are left out rather than invented.
    static func tokenizerSettings(_ tokenizer: BPETokenizer, contextLength: Int)
        -> (config: [String: Any], specialTokens: [String: Any], notes: [String]) {
        let conventions = tokenizer.conventions
        var specials: [String: Any] = [:]
        for (key, id) in [("bos_token", tokenizer.bosID), ("eos_token", tokenizer.eosID),
                          ("pad_token", conventions.padID), ("unk_token", tokenizer.unknownID)] {
            if let id { specials[key] = tokenizer.tokens[id] }
        }
        var config = specials
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        // tokenizer.json adds BOS through its post-processor exactly when this is true.
        config["add_bos_token"] = conventions.addBOS ?? false
        config["add_eos_token"] = false
        config["model_max_length"] = contextLength
        config["clean_up_tokenization_spaces"] = false
        if let template = conventions.chatTemplate { config["chat_template"] = template }
        var notes: [String] = []
        if conventions.addBOS == nil {
            notes.append("the store does not record whether the model expects BOS: wrote add_bos_token false (Streamline's own tokenization)")
        }
        if conventions.padID == nil { notes.append("no padding token recorded: set tokenizer.pad_token before padding") }
        if conventions.chatTemplate == nil { notes.append("no chat template recorded: apply_chat_template needs one passed in") }
        if !notes.isEmpty, conventions == TokenizerConventions() {
            notes.append("stores imported before Streamline kept these lack them even when the checkpoint has them; re-import the checkpoint with `streamline import`")
        }
        return (config, specials, notes)
    }
}
