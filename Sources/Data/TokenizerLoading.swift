// Where byte-level BPE tokenizers come from and go to: GGUF metadata (`tokenizer.ggml.*`) and Hugging
// Face `tokenizer.json` (model BPE + ByteLevel pre-tokenizer, optionally after Digits). Anything else
// is refused with a typed error rather than tokenized slightly wrong.

import Foundation

extension BPETokenizer {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.model` must be `gpt2`;
    /// `tokenizer.ggml.pre` `gpt2` or `smollm`). Control and user-defined tokens are special.
    public convenience init(gguf: GGUFFile) throws {
        let path = gguf.path
        func need<T>(_ key: String, _ expected: String, _ get: (GGUFValue) -> T?) throws -> T {
            guard let v = gguf.metadata[key], let t = get(v) else {
                throw DataError.missingKey(path: path, key: key, expected: expected)
            }
            return t
        }
        let model = try need("tokenizer.ggml.model", "a string", \.string)
        guard model == "gpt2" else {
            throw DataError.unsupportedTokenizer(path: path, detail: "tokenizer.ggml.model is '\(model)', not gpt2 (byte-level BPE)")
        }
        let preName = gguf.metadata["tokenizer.ggml.pre"]?.string ?? "gpt2"
        // llama.cpp writes "gpt-2" for GPT-2 itself and "gpt2" as the generic default.
        guard let pre = PreTokenizerKind(rawValue: preName == "gpt-2" ? "gpt2" : preName) else {
            throw DataError.unsupportedTokenizer(path: path, detail: "tokenizer.ggml.pre '\(preName)' (known: gpt2, smollm)")
        }
        let tokens = try need("tokenizer.ggml.tokens", "an array of strings", \.strings)
        let merges = try need("tokenizer.ggml.merges", "an array of strings", \.strings)
        // llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
        let types = gguf.metadata["tokenizer.ggml.token_type"]?.ints ?? []
        let special = types.enumerated().filter { $0.element == 3 || $0.element == 4 }.map(\.offset)
        try self.init(tokens: tokens, merges: merges, preTokenizer: pre, specialTokenIDs: special,
                      bosID: gguf.metadata["tokenizer.ggml.bos_token_id"]?.int,
                      eosID: gguf.metadata["tokenizer.ggml.eos_token_id"]?.int,
                      unknownID: gguf.metadata["tokenizer.ggml.unknown_token_id"]?.int,
                      conventions: TokenizerConventions(padID: gguf.metadata["tokenizer.ggml.padding_token_id"]?.int,
                                                        addBOS: gguf.metadata["tokenizer.ggml.add_bos_token"]?.bool,
                                                        chatTemplate: gguf.metadata["tokenizer.chat_template"]?.string),
                      path: path)
    }

    /// A Hugging Face `tokenizer.json` (BPE model; ByteLevel pre-tokenizer without prefix space,
    /// optionally preceded by Digits(individual_digits)). bos/eos ids come from the model's config.
    /// `settings` (tokenizer_config.json) names special tokens by text; ids given here win.
    public convenience init(tokenizerJSON url: URL, bosID: Int? = nil, eosID: Int? = nil, padID: Int? = nil,
                            settings: HFTokenizerSettings = HFTokenizerSettings()) throws {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DataError.unreadable(path: path, detail: error.localizedDescription)
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any] else {
            throw DataError.malformed(format: "tokenizer.json", path: path, at: "top level", detail: "no 'model' object")
        }
        guard (model["type"] as? String) == "BPE", let vocab = model["vocab"] as? [String: Int] else {
            throw DataError.unsupportedTokenizer(path: path, detail: "model.type is '\(model["type"] ?? "absent")', not BPE with a vocab")
        }
        let pre = try Self.preTokenizerKind(root["pre_tokenizer"], path: path)
        var merges: [String] = []
        for (i, m) in ((model["merges"] as? [Any]) ?? []).enumerated() {
            if let s = m as? String { merges.append(s) } else if let pair = m as? [String], pair.count == 2 {
                merges.append(pair[0] + " " + pair[1])
            } else {
                throw DataError.malformed(format: "tokenizer.json", path: path, at: "model.merges[\(i)]", detail: "not 'a b' or [a, b]")
            }
        }
        var byID: [Int: String] = [:]
        for (token, id) in vocab { byID[id] = token }
        var special: [Int] = []
        for added in (root["added_tokens"] as? [[String: Any]]) ?? [] {
            guard let id = added["id"] as? Int, let content = added["content"] as? String else { continue }
            byID[id] = content
            if (added["special"] as? Bool) ?? false { special.append(id) }
        }
        let size = (byID.keys.max() ?? -1) + 1
        // The id table is allocated from the largest id: cap it like a declared vocabulary size.
        guard size <= CheckpointLimits.vocab.upperBound, byID.keys.allSatisfy({ $0 >= 0 }) else {
            throw DataError.malformed(format: "tokenizer.json", path: path, at: "model.vocab",
                                      detail: "token ids must lie in 0..<\(CheckpointLimits.vocab.upperBound), found \(byID.keys.min()!)...\(size - 1)")
        }
        var tokens = [String](repeating: "", count: size)
        for (id, t) in byID { tokens[id] = t }
        func id(_ text: String?) -> Int? { text.flatMap { tokens.firstIndex(of: $0) } }
        let conventions = TokenizerConventions(padID: padID ?? id(settings.pad), addBOS: settings.addBOS,
                                               chatTemplate: settings.chatTemplate)
        try self.init(tokens: tokens, merges: merges, preTokenizer: pre, specialTokenIDs: special,
                      bosID: bosID ?? id(settings.bos), eosID: eosID ?? id(settings.eos),
                      unknownID: id(model["unk_token"] as? String) ?? id(settings.unk), conventions: conventions, path: path)
    }

    private static func preTokenizerKind(_ value: Any?, path: String) throws -> PreTokenizerKind {
        func isByteLevel(_ p: [String: Any]) -> Bool {
            p["type"] as? String == "ByteLevel" && (p["add_prefix_space"] as? Bool ?? false) == false
                && (p["use_regex"] as? Bool ?? true)
        }
        guard let p = value as? [String: Any] else {
            throw DataError.unsupportedTokenizer(path: path, detail: "no pre_tokenizer")
        }
        if isByteLevel(p) { return .gpt2 }
        if p["type"] as? String == "Sequence", let list = p["pretokenizers"] as? [[String: Any]], list.count == 2,
           list[0]["type"] as? String == "Digits", list[0]["individual_digits"] as? Bool == true, isByteLevel(list[1]) {
            return .smollm
        }
        throw DataError.unsupportedTokenizer(path: path, detail: "pre_tokenizer \(p["type"] ?? "?") is not ByteLevel or Digits+ByteLevel")
    }

    /// A Hugging Face `tokenizer.json` describing exactly this tokenizer (for HF export).
    public func tokenizerJSON() throws -> Data {
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let pre: [String: Any] = preTokenizer == .gpt2 ? byteLevel
            : ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        var vocab: [String: Int] = [:]
        let specialSet = Set(specialTokenIDs)
        for (i, t) in tokens.enumerated() where !specialSet.contains(i) { vocab[t] = i }
        let added: [[String: Any]] = specialTokenIDs.map {
            ["id": $0, "content": tokens[$0], "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        for id in specialTokenIDs { vocab[tokens[id]] = id }
        let unk: Any = unknownID.map { tokens[$0] } ?? NSNull()
        // A model that expects BOS gets it from the post-processor: the generic fast tokenizer of
        // transformers does not act on add_bos_token itself.
        var post: Any = NSNull()
        if conventions.addBOS == true, let bos = bosID {
            let bosPiece = ["SpecialToken": ["id": tokens[bos], "type_id": 0] as [String: Any]]
            func sequence(_ id: String, _ type: Int) -> [String: Any] { ["Sequence": ["id": id, "type_id": type] as [String: Any]] }
            post = ["type": "TemplateProcessing", "single": [bosPiece, sequence("A", 0)],
                    "pair": [bosPiece, sequence("A", 0), bosPiece, sequence("B", 1)],
                    "special_tokens": [tokens[bos]: ["id": tokens[bos], "ids": [bos], "tokens": [tokens[bos]]]]] as [String: Any]
        }
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": pre, "post_processor": post,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": unk, "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false,
                      "vocab": vocab, "merges": merges] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }
}

/// What a Hugging Face `tokenizer_config.json` (and `chat_template.jinja`, where newer transformers
/// put the template) says beyond tokenizer.json: special tokens by text, BOS insertion, chat template.
public struct HFTokenizerSettings: Sendable, Equatable {
    public var bos: String?
    public var eos: String?
    public var pad: String?
    public var unk: String?
    public var addBOS: Bool?
    public var chatTemplate: String?

    public init(bos: String? = nil, eos: String? = nil, pad: String? = nil, unk: String? = nil, addBOS: Bool? = nil,
                chatTemplate: String? = nil) {
        (self.bos, self.eos, self.pad, self.unk, self.addBOS, self.chatTemplate) = (bos, eos, pad, unk, addBOS, chatTemplate)
    }

    /// Reads the settings files of `folder`; none there gives empty settings (everything unknown).
    public init(folder: URL) throws {
        self.init()
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: configURL.path) {
            let json = try HFImport.readJSON(configURL)
            // A token is its text or an AddedToken object {"content": text, ...}.
            func token(_ key: String) -> String? {
                json[key] as? String ?? (json[key] as? [String: Any])?["content"] as? String
            }
            (bos, eos, pad, unk) = (token("bos_token"), token("eos_token"), token("pad_token"), token("unk_token"))
            addBOS = json["add_bos_token"] as? Bool
            // A list of named templates keeps the one transformers uses by default.
            chatTemplate = json["chat_template"] as? String
                ?? (json["chat_template"] as? [[String: Any]])?.first { $0["name"] as? String == "default" }?["template"] as? String
        }
        let jinja = folder.appendingPathComponent("chat_template.jinja")
        if chatTemplate == nil, FileManager.default.fileExists(atPath: jinja.path) {
            do { chatTemplate = try String(contentsOf: jinja, encoding: .utf8) } catch {
                throw DataError.unreadable(path: jinja.path, detail: "\(error.localizedDescription); fix or remove the file")
            }
        }
    }
}
