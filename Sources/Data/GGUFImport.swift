// GGUF `llama` checkpoints -> ModelConfig + ParameterSet under Streamline's canonical names
// (Sources/Model/ModelConfig.swift). The GGUF name table and every checkpoint quirk (Q/K row
// permutation, tied embeddings) live here; the Model module never sees GGUF names.

import Foundation
import Model
import Tensor

/// A checkpoint read into Streamline's representation.
public struct ImportedModel: Sendable {
    /// The architecture and widths.
    public let config: ModelConfig
    /// Values under the canonical names of `config.parameterSpecs` (gradients zero).
    public let parameters: ParameterSet
    /// The tokenizer shipped with the checkpoint, if any.
    public let tokenizer: BPETokenizer?
}

public enum GGUFImport {
    /// Reads a GGUF file of architecture `llama`: config from `llama.*` metadata, weights dequantised,
    /// Q/K rows un-permuted for rotate-half RoPE, tokenizer from `tokenizer.ggml.*`.
    public static func load(url: URL) throws -> ImportedModel {
        let file = try GGUFFile(url: url)
        let config = try config(of: file)
        let parameters = ParameterSet(config.parameterSpecs)
        for spec in config.parameterSpecs {
            let name = ggufName(spec.name)
            guard let info = file.tensorInfo(name) else { throw DataError.missingTensor(path: file.path, name: name) }
            guard info.shape == spec.shape else {
                throw DataError.shapeMismatch(path: file.path, tensor: name, expected: spec.shape, found: info.shape)
            }
            try file.read(info, into: parameters.value(spec.name).data)
        }
        sanitize(parameters, config: config)
        let tokenizer = file.metadata["tokenizer.ggml.model"] == nil ? nil : try BPETokenizer(gguf: file)
        return ImportedModel(config: config, parameters: parameters, tokenizer: tokenizer)
    }

    /// The model config described by `llama.*` metadata (SmolLM2-135M: 30 layers, d 576, 9/3 heads,
    /// FFN 1536, θ 1e5, ε 1e-5, V 49152, tied).
    public static func config(of file: GGUFFile) throws -> ModelConfig {
        let path = file.path
        let arch = file.metadata["general.architecture"]?.string ?? "absent"
        guard arch == "llama" else {
            throw DataError.unsupportedArchitecture(path: path, architecture: arch, detail: "GGUF import reads general.architecture = llama")
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata[key]?.int else { throw DataError.missingKey(path: path, key: key, expected: "an integer") }
            return v
        }
        let C = try int("llama.embedding_length"), NH = try int("llama.attention.head_count")
        let NKV = file.metadata["llama.attention.head_count_kv"]?.int ?? NH
        let HD = file.metadata["llama.attention.key_length"]?.int ?? C / NH
        guard let eps = file.metadata["llama.attention.layer_norm_rms_epsilon"]?.double else {
            throw DataError.missingKey(path: path, key: "llama.attention.layer_norm_rms_epsilon", expected: "a float")
        }
        // Vocabulary: the explicit key, else the embedding's row count.
        let V = try file.metadata["llama.vocab_size"]?.int ?? {
            guard let embedding = file.tensorInfo("token_embd.weight") else {
                throw DataError.missingTensor(path: path, name: "token_embd.weight")
            }
            return embedding.shape[0]
        }()
        return ModelConfig.llama(vocabSize: V, hiddenSize: C, layers: try int("llama.block_count"), heads: NH, kvHeads: NKV,
                                 headDim: HD, ffn: try int("llama.feed_forward_length"),
                                 ropeTheta: Float(file.metadata["llama.rope.freq_base"]?.double ?? 10_000),
                                 normEps: Float(eps), maxPositions: try int("llama.context_length"),
                                 tiedEmbeddings: file.tensorInfo("output.weight") == nil)
    }

    /// Canonical name -> GGUF name (the one mapping table for GGUF llama).
    static func ggufName(_ canonical: String) -> String {
        let fixed = ["embed/tokens": "token_embd.weight", "final_norm/scale": "output_norm.weight", "lm_head": "output.weight"]
        if let name = fixed[canonical] { return name }
        let perLayer = ["attn_norm/scale": "attn_norm", "attn/wq": "attn_q", "attn/wk": "attn_k", "attn/wv": "attn_v",
                        "attn/wo": "attn_output", "mlp_norm/scale": "ffn_norm", "mlp/w_gate": "ffn_gate",
                        "mlp/w_up": "ffn_up", "mlp/w_down": "ffn_down"]
        let parts = canonical.split(separator: "/", maxSplits: 2)
        precondition(parts.count == 3 && parts[0] == "layers", "GGUFImport: no GGUF name for \(canonical)")
        guard let suffix = perLayer[String(parts[2])] else { preconditionFailure("GGUFImport: no GGUF name for \(canonical)") }
        return "blk.\(parts[1]).\(suffix).weight"
    }

    /// Every GGUF quirk, in one place:
    /// - llama.cpp's converter permutes each head's Q and K rows from HF's rotate-half order
    ///   (2, HD/2) to adjacent pairs (HD/2, 2); Streamline's RoPE is rotate-half, so undo it.
    /// - No `output.weight` means tied embeddings (already in the config; nothing to copy).
    static func sanitize(_ parameters: ParameterSet, config: ModelConfig) {
        for (l, shape) in config.layers.enumerated() {
            unpermuteRotary(parameters.value("layers/\(l)/attn/wq"), heads: shape.heads, headDim: config.headDim)
            unpermuteRotary(parameters.value("layers/\(l)/attn/wk"), heads: shape.kvHeads, headDim: config.headDim)
        }
    }

    /// w: (heads·HD, in), viewed as (heads, HD/2, 2, in) -> swap axes 1 and 2 -> (heads, 2, HD/2, in).
    static func unpermuteRotary(_ w: Tensor, heads: Int, headDim HD: Int) {
        let cols = w.shape[1], half = HD / 2
        let source = w.copy()
        for h in 0..<heads {
            for j in 0..<half {
                for i in 0..<2 {
                    let from = source.data + ((h * HD) + j * 2 + i) * cols
                    let to = w.data + ((h * HD) + i * half + j) * cols
                    to.update(from: from, count: cols)
                }
            }
        }
    }
}
