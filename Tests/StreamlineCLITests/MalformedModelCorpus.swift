// The malformed model files of issue 11, item 6, generated here into temporary folders: a tiny valid
// Hugging Face folder and GGUF file, each damaged in one way (config values, safetensors headers and
// offsets, GGUF headers and tensor tables, non-finite weights). Each case names the error text the
// import must give. MalformedModelImportTests runs them; the 16 GGUF header cases of
// Tests/DataTests/MalformedGGUFTests.swift complete the corpus.

import Data
import Foundation
import Model
import Tensor

/// One damaged checkpoint: `make` writes it into a folder and returns what to import.
struct MalformedModel: Sendable, CustomStringConvertible {
    var name: String
    /// Text the error message must contain (the key, tensor or rule it breaks).
    var expected: String
    var make: @Sendable (URL) throws -> URL
    var description: String { name }
}

enum MalformedModelCorpus {
    /// 1 layer, d 8, 2/1 heads, FFN 16, V 96 (the byte tokenizer's), tied: a few KB.
    static let config = ModelConfig.llama(vocabSize: 96, hiddenSize: 8, layers: 1, heads: 2, kvHeads: 1, ffn: 16,
                                          maxPositions: 64, tiedEmbeddings: true)

    static func tokenizer() throws -> BPETokenizer {
        let tokens = (0x21...0x7E).map { String(UnicodeScalar(UInt8($0))) } + ["\u{0120}", "\u{010A}"]
        return try BPETokenizer(tokens: tokens, merges: [], preTokenizer: .gpt2, specialTokenIDs: [], bosID: 0, eosID: 1,
                                path: "corpus")
    }

    /// Deterministic small weights.
    static func parameters() -> ParameterSet {
        let parameters = ParameterSet(config.parameterSpecs)
        for i in 0..<parameters.values.count { parameters.values.data[i] = Float((i * 37) % 19 - 9) / 64 }
        return parameters
    }

    // MARK: Hugging Face folders

    /// The valid folder's files, with `edit` applied to config.json's object and `header` to the
    /// safetensors header (name -> entry) before they are written; `data` may change the data bytes.
    static func hf(config edit: @escaping @Sendable (inout [String: Any]) -> Void = { _ in },
                   header: @escaping @Sendable (inout [String: Any]) -> Void = { _ in },
                   data: @escaping @Sendable (inout Data) -> Void = { _ in }) -> @Sendable (URL) throws -> URL {
        { folder in
            let files = try HFExport.folder(config: config, parameters: parameters(), tokenizer: try tokenizer())
            var json = try JSONSerialization.jsonObject(with: files.config) as! [String: Any]
            edit(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: folder.appendingPathComponent("config.json"))
            try files.tokenizer!.write(to: folder.appendingPathComponent("tokenizer.json"))
            let encoded = try SafetensorsFile.encode(files.tensors)
            let length = Int(encoded.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            var entries = try JSONSerialization.jsonObject(with: encoded.subdata(in: 8..<(8 + length))) as! [String: Any]
            var bytes = encoded.subdata(in: (8 + length)..<encoded.count)
            header(&entries)
            data(&bytes)
            try safetensors(header: JSONSerialization.data(withJSONObject: entries), data: bytes)
                .write(to: folder.appendingPathComponent("model.safetensors"))
            return folder
        }
    }

    /// Safetensors bytes: u64 header length, header, data.
    static func safetensors(header: Data, data: Data, declaredLength: UInt64? = nil) -> Data {
        var out = Data()
        withUnsafeBytes(of: (declaredLength ?? UInt64(header.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + header + data
    }

    /// A valid config.json with a raw safetensors file.
    static func rawSafetensors(_ bytes: Data) -> @Sendable (URL) throws -> URL {
        { folder in
            _ = try hf()(folder)
            try bytes.write(to: folder.appendingPathComponent("model.safetensors"))
            return folder
        }
    }

    static func set(_ key: String, _ value: Any) -> @Sendable (inout [String: Any]) -> Void {
        nonisolated(unsafe) let value = value
        return { $0[key] = value }
    }

    /// Changes one field of tensor `name`'s header entry.
    static func entry(_ name: String, _ field: String, _ value: [Int]) -> @Sendable (inout [String: Any]) -> Void {
        { header in
            var e = header[name] as! [String: Any]
            e[field] = value
            header[name] = e
        }
    }

    static let q = "model.layers.0.self_attn.q_proj.weight", norm = "model.norm.weight", embed = "model.embed_tokens.weight"

    static func offsets(_ name: String, in header: [String: Any]) -> [Int] { (header[name] as! [String: Any])["data_offsets"] as! [Int] }

    static let huggingFace: [MalformedModel] = [
        MalformedModel(name: "hf heads 0", expected: "num_attention_heads", make: hf(config: set("num_attention_heads", 0))),
        MalformedModel(name: "hf heads -2", expected: "num_attention_heads", make: hf(config: set("num_attention_heads", -2))),
        MalformedModel(name: "hf layers -1", expected: "num_hidden_layers", make: hf(config: set("num_hidden_layers", -1))),
        MalformedModel(name: "hf layers 1e8", expected: "num_hidden_layers", make: hf(config: set("num_hidden_layers", 100_000_000))),
        MalformedModel(name: "hf layers 2.5", expected: "num_hidden_layers", make: hf(config: set("num_hidden_layers", 2.5))),
        MalformedModel(name: "hf ffn -5", expected: "intermediate_size", make: hf(config: set("intermediate_size", -5))),
        MalformedModel(name: "hf hidden 0", expected: "hidden_size", make: hf(config: set("hidden_size", 0))),
        MalformedModel(name: "hf hidden 1e20", expected: "hidden_size", make: hf(config: set("hidden_size", 1e20))),
        MalformedModel(name: "hf vocab -1", expected: "vocab_size", make: hf(config: set("vocab_size", -1))),
        MalformedModel(name: "hf vocab 2^40", expected: "vocab_size", make: hf(config: set("vocab_size", 1 << 40))),
        MalformedModel(name: "hf context 0", expected: "max_position_embeddings", make: hf(config: set("max_position_embeddings", 0))),
        MalformedModel(name: "hf context -100", expected: "max_position_embeddings", make: hf(config: set("max_position_embeddings", -100))),
        MalformedModel(name: "hf rope base -1", expected: "rope_theta", make: hf(config: set("rope_theta", -1.0))),
        MalformedModel(name: "hf rope base 0", expected: "rope_theta", make: hf(config: set("rope_theta", 0))),
        MalformedModel(name: "hf rope base string", expected: "rope_theta", make: hf(config: set("rope_theta", "1e4"))),
        MalformedModel(name: "hf rms eps 0", expected: "rms_norm_eps", make: hf(config: set("rms_norm_eps", 0))),
        MalformedModel(name: "hf bos past vocab", expected: "bos_token_id", make: hf(config: set("bos_token_id", 5000))),
        MalformedModel(name: "hf eos -1", expected: "eos_token_id", make: hf(config: set("eos_token_id", -1))),
        MalformedModel(name: "hf kv heads above heads", expected: "num_key_value_heads", make: hf(config: set("num_key_value_heads", 3))),
        MalformedModel(name: "hf heads not dividing hidden", expected: "num_attention_heads",
                       make: hf(config: { $0["num_attention_heads"] = 3; $0["num_key_value_heads"] = 1; $0["head_dim"] = nil })),
        MalformedModel(name: "hf odd head dim", expected: "headDim", make: hf(config: set("head_dim", 3))),
        MalformedModel(name: "hf config not an object", expected: "not a JSON object",
                       make: { folder in _ = try hf()(folder); try Data("[1, 2]".utf8).write(to: folder.appendingPathComponent("config.json")); return folder }),
        MalformedModel(name: "gpt2 heads 0", expected: "n_head",
                       make: hf(config: { $0 = ["architectures": ["GPT2LMHeadModel"], "n_embd": 8, "n_head": 0, "n_layer": 1,
                                                "vocab_size": 96, "n_positions": 64] })),
        MalformedModel(name: "opt ffn -1", expected: "ffn_dim",
                       make: hf(config: { $0 = ["architectures": ["OPTForCausalLM"], "hidden_size": 8, "num_attention_heads": 2,
                                                "num_hidden_layers": 1, "vocab_size": 96, "ffn_dim": -1, "max_position_embeddings": 64] })),
        // Safetensors headers and offsets.
        MalformedModel(name: "st header length past the file", expected: "larger than the file",
                       make: rawSafetensors(safetensors(header: Data("{}".utf8), data: Data(), declaredLength: 1 << 20))),
        MalformedModel(name: "st header length 2^63", expected: "larger than the file",
                       make: rawSafetensors(safetensors(header: Data("{}".utf8), data: Data(), declaredLength: 1 << 63))),
        MalformedModel(name: "st shorter than its length field", expected: "past the end of the file", make: rawSafetensors(Data([1, 2, 3]))),
        MalformedModel(name: "st header not JSON", expected: "not a JSON object",
                       make: rawSafetensors(safetensors(header: Data("{\"a\": [".utf8), data: Data()))),
        MalformedModel(name: "st begin reads the header", expected: "data_offsets",
                       make: hf(header: { h in let o = offsets(embed, in: h); entry(embed, "data_offsets", [o[0] - 8, o[1] - 8])(&h) })),
        MalformedModel(name: "st negative offsets", expected: "data_offsets", make: hf(header: entry(q, "data_offsets", [-256, -192]))),
        MalformedModel(name: "st end past the file", expected: "data_offsets",
                       make: hf(header: { h in let o = offsets(norm, in: h); entry(norm, "data_offsets", [o[0] + 4096, o[1] + 4096])(&h) })),
        MalformedModel(name: "st begin after end", expected: "data_offsets",
                       make: hf(header: { h in let o = offsets(q, in: h); entry(q, "data_offsets", [o[1], o[0]])(&h) })),
        MalformedModel(name: "st overlapping tensors", expected: "overlap",
                       make: hf(header: { h in let o = offsets(embed, in: h); entry(norm, "data_offsets", [o[0], o[0] + 32])(&h) })),
        MalformedModel(name: "st bytes do not match the shape", expected: "which needs", make: hf(header: entry(norm, "shape", [9]))),
        MalformedModel(name: "st negative dimension", expected: "negative dimension", make: hf(header: entry(norm, "shape", [-8]))),
        MalformedModel(name: "st element count overflows", expected: "more elements than can be addressed",
                       make: hf(header: entry(norm, "shape", [1 << 40, 1 << 40]))),
        MalformedModel(name: "st unknown dtype", expected: "unknown dtype",
                       make: hf(header: { h in var e = h[norm] as! [String: Any]; e["dtype"] = "F99"; h[norm] = e })),
        MalformedModel(name: "st integer weights", expected: "I32",
                       make: hf(header: { h in var e = h[norm] as! [String: Any]; e["dtype"] = "I32"; h[norm] = e })),
        MalformedModel(name: "st missing tensor", expected: norm, make: hf(header: { $0[norm] = nil })),
        MalformedModel(name: "st shape other than the config's", expected: q,
                       make: hf(header: entry(q, "shape", [16, 4]))),
        MalformedModel(name: "st NaN weight", expected: "nan", make: hf(data: { $0.replaceSubrange(0..<4, with: withUnsafeBytes(of: Float.nan.bitPattern) { Data($0) }) })),
        MalformedModel(name: "st infinite weight", expected: "inf",
                       make: hf(data: { $0.replaceSubrange(12..<16, with: withUnsafeBytes(of: Float.infinity.bitPattern) { Data($0) }) })),
        MalformedModel(name: "st shard outside the folder", expected: "is not a file name",
                       make: { folder in
                           _ = try hf()(folder)
                           try Data(#"{"weight_map": {"model.norm.weight": "../model.safetensors"}}"#.utf8)
                               .write(to: folder.appendingPathComponent("model.safetensors.index.json"))
                           return folder
                       }),
        MalformedModel(name: "tokenizer id 2^40", expected: "token ids must lie",
                       make: { folder in
                           _ = try hf()(folder)
                           let url = folder.appendingPathComponent("tokenizer.json")
                           var root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                           var model = root["model"] as! [String: Any]
                           var vocab = model["vocab"] as! [String: Int]
                           vocab["!"] = 1 << 40
                           model["vocab"] = vocab
                           root["model"] = model
                           try JSONSerialization.data(withJSONObject: root).write(to: url)
                           return folder
                       }),
    ]

    // MARK: GGUF files

    /// A GGUF v3 metadata value.
    enum Value: Sendable {
        case u32(UInt32), f32(Float), string(String), strings([String])
    }

    /// One tensor of a GGUF file: its row-major shape (written reversed as ne), ggml type and data.
    struct GGUFTensor: Sendable {
        var name: String
        var shape: [Int]
        var type: UInt32 = 0
        var data: Data
    }

    /// The valid tiny model as GGUF: metadata, then F32 tensors aligned to 32 bytes.
    static func validGGUF() throws -> (metadata: [(String, Value)], tensors: [GGUFTensor]) {
        let c = config, tokenizer = try tokenizer(), parameters = parameters()
        let metadata: [(String, Value)] = [
            ("general.architecture", .string("llama")), ("llama.embedding_length", .u32(UInt32(c.hiddenSize))),
            ("llama.attention.head_count", .u32(2)), ("llama.attention.head_count_kv", .u32(1)),
            ("llama.attention.layer_norm_rms_epsilon", .f32(1e-5)), ("llama.block_count", .u32(1)),
            ("llama.feed_forward_length", .u32(16)), ("llama.context_length", .u32(64)), ("llama.vocab_size", .u32(96)),
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .strings(tokenizer.tokens)),
            ("tokenizer.ggml.merges", .strings([])), ("tokenizer.ggml.bos_token_id", .u32(0)),
        ]
        let names = ["embed/tokens": "token_embd.weight", "final_norm/scale": "output_norm.weight"]
        let tensors = c.parameterSpecs.map { spec in
            let value = parameters.value(spec.name)
            let gguf = names[spec.name] ?? "blk.0." + ["attn_norm/scale": "attn_norm", "attn/wq": "attn_q", "attn/wk": "attn_k",
                                                        "attn/wv": "attn_v", "attn/wo": "attn_output", "mlp_norm/scale": "ffn_norm",
                                                        "mlp/w_gate": "ffn_gate", "mlp/w_up": "ffn_up",
                                                        "mlp/w_down": "ffn_down"][String(spec.name.dropFirst("layers/0/".count))]! + ".weight"
            return GGUFTensor(name: gguf, shape: spec.shape, data: Data(bytes: value.data, count: value.byteCount))
        }
        return (metadata, tensors)
    }

    /// GGUF bytes; `dims` overrides a tensor's dimension count field, `tail` drops bytes from the end.
    static func ggufBytes(_ metadata: [(String, Value)], _ tensors: [GGUFTensor], magic: String = "GGUF", version: UInt32 = 3,
                          kvCount: UInt64? = nil) -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        out.append(contentsOf: Array(magic.utf8))
        u32(version)
        u64(UInt64(tensors.count))
        u64(kvCount ?? UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            switch value {
            case .u32(let v): u32(4); u32(v)
            case .f32(let v): u32(6); u32(v.bitPattern)
            case .string(let v): u32(8); string(v)
            case .strings(let list): u32(9); u32(8); u64(UInt64(list.count)); list.forEach(string)
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + 31) / 32 * 32
        }
        for (t, at) in zip(tensors, offsets) {
            string(t.name)
            u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { u64(UInt64(bitPattern: Int64(d))) }
            u32(t.type)
            u64(UInt64(at))
        }
        out.append(Data(count: (32 - out.count % 32) % 32))
        for t in tensors { out.append(t.data + Data(count: (32 - t.data.count % 32) % 32)) }
        return out
    }

    /// The valid GGUF with `edit` applied to its metadata and tensors, and `bytes` to the file.
    static func gguf(_ edit: @escaping @Sendable (inout [(String, Value)], inout [GGUFTensor]) -> Void = { _, _ in },
                     bytes: @escaping @Sendable (inout Data) -> Void = { _ in }) -> @Sendable (URL) throws -> URL {
        { folder in
            var (metadata, tensors) = try validGGUF()
            edit(&metadata, &tensors)
            var data = ggufBytes(metadata, tensors)
            bytes(&data)
            let url = folder.appendingPathComponent("model.gguf")
            try data.write(to: url)
            return url
        }
    }

    static func tensor(_ name: String, _ change: @escaping @Sendable (inout GGUFTensor) -> Void) -> @Sendable (inout [(String, Value)], inout [GGUFTensor]) -> Void {
        { _, tensors in
            let i = tensors.firstIndex { $0.name == name }!
            change(&tensors[i])
        }
    }

    static let ggufFiles: [MalformedModel] = [
        MalformedModel(name: "gguf bad magic", expected: "magic", make: gguf(bytes: { $0.replaceSubrange(0..<4, with: Data("GGUX".utf8)) })),
        MalformedModel(name: "gguf version 7", expected: "version 7", make: gguf(bytes: { $0[4] = 7 })),
        MalformedModel(name: "gguf metadata count past the file", expected: "metadata count",
                       make: gguf(bytes: { $0.replaceSubrange(16..<24, with: withUnsafeBytes(of: UInt64(1) << 40) { Data($0) }) })),
        MalformedModel(name: "gguf truncated data", expected: "past the end of the file", make: gguf(bytes: { $0.removeLast(64) })),
        MalformedModel(name: "gguf NaN weight", expected: "nan",
                       make: gguf(tensor("blk.0.attn_q.weight") { $0.data.replaceSubrange(0..<4, with: withUnsafeBytes(of: Float.nan.bitPattern) { Data($0) }) })),
        MalformedModel(name: "gguf infinite weight", expected: "output_norm.weight",
                       make: gguf(tensor("output_norm.weight") { $0.data.replaceSubrange(4..<8, with: withUnsafeBytes(of: (-Float.infinity).bitPattern) { Data($0) }) })),
        MalformedModel(name: "gguf 200k x 200k embedding", expected: "token_embd.weight",
                       make: gguf(tensor("token_embd.weight") { $0.shape = [200_000, 200_000] })),
        MalformedModel(name: "gguf unknown tensor type", expected: "ggml type 99", make: gguf(tensor("output_norm.weight") { $0.type = 99 })),
        MalformedModel(name: "gguf nine dimensions", expected: "9 dimensions",
                       make: gguf(tensor("output_norm.weight") { $0.shape = [1, 1, 1, 1, 1, 1, 1, 1, 8] })),
        MalformedModel(name: "gguf missing tensor", expected: "blk.0.ffn_down.weight",
                       make: gguf { _, tensors in tensors.removeAll { $0.name == "blk.0.ffn_down.weight" } }),
        MalformedModel(name: "gguf bos past vocab", expected: "bos token id",
                       make: gguf { metadata, _ in metadata = metadata.map { $0.0 == "tokenizer.ggml.bos_token_id" ? ($0.0, .u32(1000)) : $0 } }),
        MalformedModel(name: "gguf alignment 3", expected: "general.alignment",
                       make: gguf { metadata, _ in metadata.append(("general.alignment", .u32(3))) }),
    ]

    static let all = huggingFace + ggufFiles
}
