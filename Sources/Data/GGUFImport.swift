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
        // Every tensor must be there with its shape before the (config-sized) parameters are allocated.
        for spec in config.parameterSpecs {
            let name = ggufName(spec.name)
            guard let info = file.tensorInfo(name) else { throw DataError.missingTensor(path: file.path, name: name) }
            guard info.shape == spec.shape else {
                throw DataError.shapeMismatch(path: file.path, tensor: name, expected: spec.shape, found: info.shape)
            }
        }
        let parameters = ParameterSet(config.parameterSpecs)
        for spec in config.parameterSpecs {
            let name = ggufName(spec.name), value = parameters.value(spec.name)
            try file.read(file.tensorInfo(name)!, into: value.data)
            try CheckpointLimits.requireFinite(value.data, count: value.count, format: "GGUF", path: file.path, tensor: name)
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
        // Every size is checked against a sane range before anything is computed or allocated from it:
        // a header is untrusted input (a zero head count divided by, a negative block count allocated).
        func int(_ key: String, _ range: ClosedRange<Int>, default fallback: Int? = nil) throws -> Int {
            guard let v = file.metadata[key]?.int ?? fallback else { throw DataError.missingKey(path: path, key: key, expected: "an integer") }
            guard range.contains(v) else {
                throw DataError.malformed(format: "GGUF", path: path, at: key, detail: "\(v) is outside \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        let C = try int("llama.embedding_length", CheckpointLimits.hidden), NH = try int("llama.attention.head_count", CheckpointLimits.heads)
        let NKV = try int("llama.attention.head_count_kv", 1...NH, default: NH)
        guard NH % NKV == 0 else {
            throw DataError.malformed(format: "GGUF", path: path, at: "llama.attention.head_count_kv", detail: "\(NKV) does not divide the head count \(NH)")
        }
        let HD = try int("llama.attention.key_length", CheckpointLimits.headDim, default: max(C / NH, 1))
        guard let eps = file.metadata["llama.attention.layer_norm_rms_epsilon"]?.double else {
            throw DataError.missingKey(path: path, key: "llama.attention.layer_norm_rms_epsilon", expected: "a float")
        }
        guard eps.isFinite, eps > 0 else {
            throw DataError.malformed(format: "GGUF", path: path, at: "llama.attention.layer_norm_rms_epsilon", detail: "\(eps) must be a finite number > 0")
        }
        let theta = file.metadata["llama.rope.freq_base"]?.double ?? 10_000
        guard theta.isFinite, theta > 0 else {
            throw DataError.malformed(format: "GGUF", path: path, at: "llama.rope.freq_base", detail: "\(theta) must be a finite number > 0")
        }
        let L = try int("llama.block_count", CheckpointLimits.layers), F = try int("llama.feed_forward_length", CheckpointLimits.ffn)
        let context = try int("llama.context_length", CheckpointLimits.context)
        // Vocabulary: the explicit key, else the embedding's row count.
        var embeddingRows: Int?
        if file.metadata["llama.vocab_size"] == nil {
            guard let embedding = file.tensorInfo("token_embd.weight") else { throw DataError.missingTensor(path: path, name: "token_embd.weight") }
            embeddingRows = embedding.shape.first
        }
        let V = try int("llama.vocab_size", CheckpointLimits.vocab, default: embeddingRows)
        return ModelConfig.llama(vocabSize: V, hiddenSize: C, layers: L, heads: NH, kvHeads: NKV,
                                 headDim: HD, ffn: F, ropeTheta: Float(theta), normEps: Float(eps), maxPositions: context,
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
        reorderRotary(w, heads: heads, headDim: HD, toPairs: false)
    }

    /// Moves each head's rows between rotate-half order (2, HD/2) and llama.cpp's adjacent pairs
    /// (HD/2, 2): `toPairs` for export (GGUFExport), the reverse for import.
    static func reorderRotary(_ w: Tensor, heads: Int, headDim HD: Int, toPairs: Bool) {
        let cols = w.shape[1], half = HD / 2
        let source = w.copy()
        for h in 0..<heads {
            for j in 0..<half {
                for i in 0..<2 {
                    let paired = (h * HD) + j * 2 + i, halves = (h * HD) + i * half + j
                    let (from, to) = toPairs ? (halves, paired) : (paired, halves)
                    (w.data + to * cols).update(from: source.data + from * cols, count: cols)
                }
            }
        }
    }
}
