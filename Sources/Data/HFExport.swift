// LLaMA-family models -> a Hugging Face folder transformers can load: config.json (LlamaForCausalLM),
// model.safetensors (F32) and tokenizer.json. Pruned models are expressed exactly:
// - hiddenSize != heads·headDim: `head_dim` is written explicitly.
// - normDivisor D != hiddenSize d′ (channels deleted, the norm still divides by the original D):
//   Streamline computes x / sqrt(Σx²/D + ε) · s, HF computes x / sqrt(Σx²/d′ + ε′) · s′. With
//   s′ = s·sqrt(D/d′) and ε′ = ε·D/d′:  x·s·sqrt(D/d′) / sqrt(Σx²/d′ + ε·D/d′)
//   = x·s / sqrt((d′/D)·(Σx²/d′ + ε·D/d′)) = x·s / sqrt(Σx²/D + ε). Exact, for every norm at once,
//   because all norms share D and ε.
// Not supported: per-layer widths (HF LLaMA has one width per model) and the GPT-2/OPT families.

import Foundation
import Model
import Tensor

/// The files of a Hugging Face folder, in memory: what `HFExport.write` puts on disk.
public struct HFFolder {
    /// config.json bytes.
    public var config: Data
    /// The weights under their HF names, in file order (norm scales already rescaled).
    public var tensors: [(name: String, tensor: Tensor)]
    /// tokenizer.json bytes; nil writes none.
    public var tokenizer: Data?

    /// The safetensors header metadata transformers expects.
    public static let safetensorsMetadata = ["format": "pt"]

    public init(config: Data, tensors: [(name: String, tensor: Tensor)], tokenizer: Data?) {
        self.config = config
        self.tensors = tensors
        self.tokenizer = tokenizer
    }

    /// File name → bytes: config.json, model.safetensors and (when there is one) tokenizer.json.
    public func files() throws -> [(name: String, bytes: Data)] {
        var out = [("config.json", config),
                   ("model.safetensors", try SafetensorsFile.encode(tensors, metadata: Self.safetensorsMetadata))]
        if let tokenizer { out.append(("tokenizer.json", tokenizer)) }
        return out
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
    /// Writes `config.json`, `model.safetensors` and (when given) `tokenizer.json` into `folder`.
    public static func write(config: ModelConfig, parameters: ParameterSet, tokenizer: BPETokenizer?, to folder: URL) throws {
        try self.folder(config: config, parameters: parameters, tokenizer: tokenizer).write(to: folder)
    }

    /// The folder's files in memory (deterministic: sorted JSON keys, tensors in parameter order).
    public static func folder(config: ModelConfig, parameters: ParameterSet, tokenizer: BPETokenizer?) throws -> HFFolder {
        guard config.architecture == .llama, config.norm == .rmsnorm, config.activation == .swiglu, !config.bias else {
            throw DataError.notExportable(detail: "HF export writes the LLaMA family; this model is \(config.architecture.rawValue)")
        }
        guard let shape = config.layers.first, config.layers.allSatisfy({ $0 == shape }) else {
            throw DataError.notExportable(detail: "layers have different head counts or FFN widths")
        }
        let D = Double(config.normDivisor), d = Double(config.hiddenSize)
        let scaleFactor = Float((D / d).squareRoot())
        var json: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float32",
            "hidden_size": config.hiddenSize, "intermediate_size": shape.ffn, "num_hidden_layers": config.layerCount,
            "num_attention_heads": shape.heads, "num_key_value_heads": shape.kvHeads, "head_dim": config.headDim,
            "rms_norm_eps": Double(config.normEps) * D / d, "rope_theta": Double(config.ropeTheta),
            "vocab_size": config.vocabSize, "max_position_embeddings": config.maxPositions,
            "tie_word_embeddings": config.tiedEmbeddings, "hidden_act": "silu",
            "attention_bias": false, "mlp_bias": false, "rope_scaling": NSNull(),
        ]
        if let bos = tokenizer?.bosID { json["bos_token_id"] = bos }
        if let eos = tokenizer?.eosID { json["eos_token_id"] = eos }
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
        return HFFolder(config: try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                        tensors: tensors, tokenizer: try tokenizer?.tokenizerJSON())
    }
}
