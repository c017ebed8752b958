// LLaMA-family models -> a GGUF v3 file of architecture `llama` (llama.cpp's names and layouts), the
// inverse of GGUFImport: `llama.*` widths, the tokenizer under `tokenizer.ggml.*` with its special
// tokens, BOS setting, pre-tokenizer name and chat template, and the weights with each head's Q/K rows
// permuted to llama.cpp's adjacent-pair RoPE order. Pruned models are expressed exactly:
// - hiddenSize != heads·headDim: `llama.attention.key_length` / `value_length` carry the head dim.
// - normDivisor D != hiddenSize d′: norm scales × sqrt(D/d′) and ε × D/d′, the same folding as the
//   HF export (algebra in HFExport.swift's header), exact because all norms share D and ε.
// Matrices are F32, F16 or Q8_0; norm scales stay F32, and under Q8_0 a matrix whose rows are not a
// multiple of 32 falls back to F16 (as llama.cpp's converter does). Not supported: per-layer widths and
// the GPT-2/OPT families (no llama.cpp `llama` equivalent) and SliceGPT models (residual shortcut
// matrices), refused by HFExport.uniformLlamaShape.

import Foundation
import Model
import Tensor

public enum GGUFExport {
    /// The GGUF bytes of a model (deterministic: metadata and tensors in a fixed order).
    public static func encode(config: ModelConfig, parameters: ParameterSet, tokenizer: BPETokenizer?,
                              dtype: GGUFFloat = .float32, name: String = "streamline") throws -> Data {
        let shape = try HFExport.uniformLlamaShape(config, format: "GGUF")
        let (scaleFactor, eps) = HFExport.foldedNorm(config)
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.name", .string(name))
        writer.set("general.alignment", .uint32(UInt32(GGUFWriter.alignment)))
        writer.set("general.file_type", .uint32(fileType(dtype)))
        writer.set("llama.vocab_size", .uint32(UInt32(config.vocabSize)))
        writer.set("llama.context_length", .uint32(UInt32(config.maxPositions)))
        writer.set("llama.embedding_length", .uint32(UInt32(config.hiddenSize)))
        writer.set("llama.block_count", .uint32(UInt32(config.layerCount)))
        writer.set("llama.feed_forward_length", .uint32(UInt32(shape.ffn)))
        writer.set("llama.rope.dimension_count", .uint32(UInt32(config.headDim)))
        writer.set("llama.attention.head_count", .uint32(UInt32(shape.heads)))
        writer.set("llama.attention.head_count_kv", .uint32(UInt32(shape.kvHeads)))
        // llama.cpp derives the head dim as width / heads unless these say otherwise.
        if config.hiddenSize != shape.heads * config.headDim {
            writer.set("llama.attention.key_length", .uint32(UInt32(config.headDim)))
            writer.set("llama.attention.value_length", .uint32(UInt32(config.headDim)))
        }
        writer.set("llama.attention.layer_norm_rms_epsilon", .float32(Float(eps)))
        writer.set("llama.rope.freq_base", .float32(config.ropeTheta))
        if let tokenizer { setTokenizer(tokenizer, in: &writer) }

        for spec in config.parameterSpecs {
            var value = parameters.value(spec.name)
            let isNorm = spec.name.hasSuffix("/scale")
            if isNorm && scaleFactor != 1 {
                value = value.copy()
                for i in 0..<value.count { value.data[i] *= scaleFactor }
            }
            if let layer = rotaryLayer(spec.name) {
                value = value.copy()
                let heads = spec.name.hasSuffix("/wq") ? config.layers[layer].heads : config.layers[layer].kvHeads
                permuteRotary(value, heads: heads, headDim: config.headDim)
            }
            try writer.add(GGUFImport.ggufName(spec.name), value, as: tensorType(dtype, shape: spec.shape, isNorm: isNorm))
        }
        return writer.encode()
    }

    /// Writes the GGUF file atomically.
    public static func write(config: ModelConfig, parameters: ParameterSet, tokenizer: BPETokenizer?,
                             dtype: GGUFFloat = .float32, to url: URL) throws {
        let bytes = try encode(config: config, parameters: parameters, tokenizer: tokenizer, dtype: dtype)
        do { try bytes.write(to: url, options: .atomic) } catch {
            throw DataError.unwritable(path: url.path, detail: error.localizedDescription)
        }
    }

    /// The ggml type of one tensor: norms F32 (tiny, and llama.cpp keeps them F32); Q8_0 only for rows
    /// of whole 32-weight blocks, else F16.
    static func tensorType(_ dtype: GGUFFloat, shape: [Int], isNorm: Bool) -> GGMLType {
        if isNorm || shape.count < 2 { return .f32 }
        if dtype == .q8_0 && shape.last! % GGUFWriter.q8Block != 0 { return .f16 }
        return dtype.ggml
    }

    /// llama_ftype: 0 all F32, 1 mostly F16, 7 mostly Q8_0.
    static func fileType(_ dtype: GGUFFloat) -> UInt32 {
        switch dtype {
        case .float32: 0
        case .float16: 1
        case .q8_0: 7
        }
    }

    /// The layer of a Q or K projection, nil for every other tensor.
    static func rotaryLayer(_ canonical: String) -> Int? {
        let parts = canonical.split(separator: "/")
        guard parts.count == 4, parts[0] == "layers", parts[2] == "attn", parts[3] == "wq" || parts[3] == "wk" else { return nil }
        return Int(parts[1])
    }

    /// The inverse of GGUFImport.unpermuteRotary: w (heads·HD, in) viewed as (heads, 2, HD/2, in) ->
    /// (heads, HD/2, 2, in), so llama.cpp's adjacent-pair RoPE computes Streamline's rotate-half.
    static func permuteRotary(_ w: Tensor, heads: Int, headDim HD: Int) {
        GGUFImport.reorderRotary(w, heads: heads, headDim: HD, toPairs: true)
    }

    /// `tokenizer.ggml.*` as GGUFImport's tokenizer reader (and llama.cpp) reads them. Streamline's
    /// tokenizers are byte-level BPE, llama.cpp's `gpt2` model; special tokens are type 3 (control).
    static func setTokenizer(_ tokenizer: BPETokenizer, in writer: inout GGUFWriter) {
        let special = Set(tokenizer.specialTokenIDs)
        writer.set("tokenizer.ggml.model", .string("gpt2"))
        writer.set("tokenizer.ggml.pre", .string(tokenizer.preTokenizer.rawValue))
        writer.set("tokenizer.ggml.tokens", .array(tokenizer.tokens.map { .string($0) }))
        writer.set("tokenizer.ggml.token_type", .array(tokenizer.tokens.indices.map { .int32(special.contains($0) ? 3 : 1) }))
        writer.set("tokenizer.ggml.merges", .array(tokenizer.merges.map { .string($0) }))
        let conventions = tokenizer.conventions
        for (key, id) in [("bos", tokenizer.bosID), ("eos", tokenizer.eosID), ("unknown", tokenizer.unknownID),
                          ("padding", conventions.padID)] {
            if let id { writer.set("tokenizer.ggml.\(key)_token_id", .uint32(UInt32(id))) }
        }
        if let addBOS = conventions.addBOS { writer.set("tokenizer.ggml.add_bos_token", .bool(addBOS)) }
        if let template = conventions.chatTemplate { writer.set("tokenizer.chat_template", .string(template)) }
    }
}
