// Byte-level BPE as GPT-2 defines it: text -> pre-tokenizer word spans -> UTF-8 bytes -> one symbol per
// byte (GPT-2's byte-to-unicode alphabet) -> repeatedly merge the adjacent pair of lowest merge rank ->
// token ids. Special tokens (bos/eos, added tokens) are matched literally before pre-tokenizing when
// asked. Built from GGUF metadata or tokenizer.json (TokenizerLoading.swift); knows nothing of models.

import Crypto
import Foundation
import TensorStore

/// A byte-level BPE tokenizer with exact GPT-2 semantics.
public final class BPETokenizer: @unchecked Sendable {
    /// Token strings by id, in GPT-2's byte-to-unicode alphabet (special tokens as written).
    public let tokens: [String]
    /// Merges in rank order, each "left right".
    public let merges: [String]
    /// Rule applied before BPE.
    public let preTokenizer: PreTokenizerKind
    /// Ids of special tokens (matched literally by `encode(_:parseSpecial: true)`, decoded as their text).
    public let specialTokenIDs: [Int]
    /// Beginning-of-sequence id, e.g. 1 for SmolLM2.
    public let bosID: Int?
    /// End-of-sequence id, e.g. 2 for SmolLM2.
    public let eosID: Int?
    /// Id emitted for a byte whose symbol is not in the vocabulary (SmolLM2 lacks a few control bytes);
    /// nil drops such bytes, as Hugging Face's BPE does without an unk token.
    public let unknownID: Int?
    /// What a Hugging Face tokenizer_config needs beside the vocabulary (padding, BOS insertion, chat
    /// template). Not part of `digest`: none of it changes the ids `encode` gives.
    public let conventions: TokenizerConventions

    /// Vocabulary size V.
    public var vocabSize: Int { tokens.count }

    private let idByToken: [String: Int32]
    /// Id of the single-byte token for each byte value; -1 where the vocabulary lacks it.
    private let byteToken: [Int32]
    /// (left id << 32 | right id) -> (rank, merged id).
    private let mergeTable: [UInt64: (rank: Int32, id: Int32)]
    /// The bytes each id decodes to.
    private let tokenBytes: [[UInt8]]
    /// Special token texts, longest first, with their ids (for literal matching).
    private let specials: [(scalars: [Unicode.Scalar], id: Int32)]
    /// Word bytes -> ids, shared across calls (most words repeat).
    private let cache = WordCache()

    /// Builds a tokenizer; `path` names the source in errors. Every merge must join two known tokens
    /// into a known token, and the vocabulary must contain the symbols of the printable ASCII bytes.
    public init(tokens: [String], merges: [String], preTokenizer: PreTokenizerKind, specialTokenIDs: [Int],
                bosID: Int?, eosID: Int?, unknownID: Int? = nil, conventions: TokenizerConventions = TokenizerConventions(),
                path: String) throws {
        // Ids index `tokens` when encoding and decoding: one past the end would trap at the first use.
        for (role, id) in [("bos", bosID), ("eos", eosID), ("unknown", unknownID), ("padding", conventions.padID)] {
            if let id, !tokens.indices.contains(id) {
                throw DataError.malformed(format: "tokenizer", path: path, at: "\(role) token id",
                                          detail: "\(id) is outside the vocabulary of \(tokens.count) tokens")
            }
        }
        self.tokens = tokens
        self.merges = merges
        self.preTokenizer = preTokenizer
        self.specialTokenIDs = specialTokenIDs.sorted()
        self.bosID = bosID
        self.eosID = eosID
        self.unknownID = unknownID
        self.conventions = conventions
        var index: [String: Int32] = [:]
        index.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where index[t] == nil { index[t] = Int32(i) }
        idByToken = index
        let alphabet = ByteLevel.byteToScalar
        var byteToken = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = index[String(Character(alphabet[b]))] { byteToken[b] = id }
        }
        if let b = (0x21...0x7E).first(where: { byteToken[$0] < 0 }) {
            throw DataError.unsupportedTokenizer(path: path, detail: "no token for byte \(b) ('\(alphabet[b])'); not a byte-level vocabulary")
        }
        self.byteToken = byteToken
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let a = index[String(parts[0])], let b = index[String(parts[1])],
                  let m = index[String(parts[0]) + String(parts[1])] else {
                throw DataError.unsupportedTokenizer(path: path, detail: "merge \(rank) '\(merge)' does not join two vocabulary tokens into one")
            }
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if table[key] == nil { table[key] = (Int32(rank), m) }
        }
        mergeTable = table
        let specialSet = Set(specialTokenIDs)
        tokenBytes = tokens.enumerated().map { id, t in
            specialSet.contains(id) ? Array(t.utf8) : ByteLevel.bytes(of: t)
        }
        specials = specialTokenIDs.filter { !tokens[$0].isEmpty }
            .map { (Array(tokens[$0].unicodeScalars), Int32($0)) }
            .sorted { $0.scalars.count > $1.scalars.count }
    }

    /// Id of token string `token`, if in the vocabulary.
    public func id(of token: String) -> Int? { idByToken[token].map(Int.init) }

    // MARK: - Encoding

    /// Token ids of `text`. With `parseSpecial`, special-token texts (e.g. `<|endoftext|>`) become their
    /// ids; otherwise they are ordinary text. No BOS/EOS is added.
    public func encode(_ text: String, parseSpecial: Bool = false) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var classes = [ScalarClass](repeating: .other, count: scalars.count)
        for i in scalars.indices { classes[i] = PreTokenizer.classify(scalars[i]) }
        var out: [Int32] = []
        out.reserveCapacity(scalars.count / 3)
        var pieceStart = 0
        if parseSpecial && !specials.isEmpty {
            var i = 0
            while i < scalars.count {
                if let (length, id) = special(at: i, in: scalars) {
                    encodePiece(scalars, classes, pieceStart..<i, into: &out)
                    out.append(id)
                    i += length
                    pieceStart = i
                } else {
                    i += 1
                }
            }
        }
        encodePiece(scalars, classes, pieceStart..<scalars.count, into: &out)
        return out
    }

    private func special(at i: Int, in s: [Unicode.Scalar]) -> (Int, Int32)? {
        for sp in specials where i + sp.scalars.count <= s.count && s[i] == sp.scalars[0] {
            if s[i..<(i + sp.scalars.count)].elementsEqual(sp.scalars) { return (sp.scalars.count, sp.id) }
        }
        return nil
    }

    private func encodePiece(_ scalars: [Unicode.Scalar], _ classes: [ScalarClass], _ range: Range<Int>,
                             into out: inout [Int32]) {
        if range.isEmpty { return }
        let s = Array(scalars[range]), c = Array(classes[range])
        var word: [UInt8] = []
        PreTokenizer.split(s, classes: c, kind: preTokenizer) { span in
            word.removeAll(keepingCapacity: true)
            for k in span { UTF8.encode(s[k]) { word.append($0) } }
            if let ids = cache.get(word) { out.append(contentsOf: ids); return }
            let ids = bpe(word)
            cache.set(word, ids)
            out.append(contentsOf: ids)
        }
    }

    /// Merges the byte symbols of one word, lowest rank first (ties: leftmost), until no pair merges.
    private func bpe(_ word: [UInt8]) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        for b in word {
            let id = byteToken[Int(b)]
            if id >= 0 { symbols.append(id) } else if let unknownID { symbols.append(Int32(unknownID)) }
        }
        while symbols.count > 1 {
            var bestRank = Int32.max, bestAt = -1, bestID: Int32 = 0
            for k in 0..<(symbols.count - 1) {
                let key = UInt64(UInt32(symbols[k])) << 32 | UInt64(UInt32(symbols[k + 1]))
                if let m = mergeTable[key], m.rank < bestRank { bestRank = m.rank; bestAt = k; bestID = m.id }
            }
            if bestAt < 0 { break }
            // Merge every non-overlapping occurrence of the best pair, left to right (as GPT-2's bpe()).
            let left = symbols[bestAt], right = symbols[bestAt + 1]
            var merged: [Int32] = []
            merged.reserveCapacity(symbols.count)
            var k = 0
            while k < symbols.count {
                if k + 1 < symbols.count && symbols[k] == left && symbols[k + 1] == right {
                    merged.append(bestID); k += 2
                } else {
                    merged.append(symbols[k]); k += 1
                }
            }
            symbols = merged
        }
        return symbols
    }

    // MARK: - Decoding

    /// The UTF-8 bytes of `ids` (special tokens as their text).
    public func decodeBytes(_ ids: [Int32]) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for id in ids {
            guard id >= 0 && Int(id) < tokens.count else { throw DataError.tokenOutOfRange(id: Int(id), vocabSize: tokens.count) }
            out.append(contentsOf: tokenBytes[Int(id)])
        }
        return out
    }

    /// The text of `ids`; byte sequences that are not valid UTF-8 (a cut inside a character) become U+FFFD.
    public func decode(_ ids: [Int32]) throws -> String {
        String(decoding: try decodeBytes(ids), as: UTF8.self)
    }

    // MARK: - Identity

    /// SHA-256 (hex) of the canonical description: pre-tokenizer, tokens, merges, special ids, bos, eos.
    /// Two tokenizers with the same digest produce the same ids for every text; datasets record it.
    public var digest: String {
        var h = SHA256()
        func add(_ s: String) { h.update(data: Data(s.utf8)); h.update(data: Data([0x0A])) }
        add("streamline.bpe.v1")
        add("pre \(preTokenizer.rawValue)")
        add("tokens \(tokens.count)")
        for t in tokens { add(t) }
        add("merges \(merges.count)")
        for m in merges { add(m) }
        add("special \(specialTokenIDs.map(String.init).joined(separator: ","))")
        add("bos \(bosID.map(String.init) ?? "none") eos \(eosID.map(String.init) ?? "none") unk \(unknownID.map(String.init) ?? "none")")
        return hex(h.finalize())
    }
}

/// How a model uses its tokenizer beyond the vocabulary, as its source recorded it; nil = the source
/// did not say (or the store predates recording it).
public struct TokenizerConventions: Codable, Sendable, Equatable {
    /// Padding token id (SmolLM2: 2, the eos token).
    public var padID: Int?
    /// Whether the model expects BOS before every text (SmolLM2: false).
    public var addBOS: Bool?
    /// The Jinja chat template of an instruction-tuned model.
    public var chatTemplate: String?

    public init(padID: Int? = nil, addBOS: Bool? = nil, chatTemplate: String? = nil) {
        self.padID = padID
        self.addBOS = addBOS
        self.chatTemplate = chatTemplate
    }
}

/// GPT-2's reversible byte <-> printable-scalar alphabet: printable Latin-1 bytes map to themselves,
/// the other 68 bytes to U+0100 onwards in byte order.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// The bytes a token string stands for; scalars outside the alphabet contribute their own UTF-8.
    static func bytes(of token: String) -> [UInt8] {
        var out: [UInt8] = []
        for s in token.unicodeScalars {
            if let b = scalarToByte[s.value] { out.append(b) } else { UTF8.encode(s) { out.append($0) } }
        }
        return out
    }

    /// The token string for raw bytes.
    static func string(of bytes: [UInt8]) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }
}

/// A lock-protected word cache; bounded so a long run over varied text cannot grow without limit.
final class WordCache: @unchecked Sendable {
    private var map: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()
    private let capacity = 200_000

    func get(_ word: [UInt8]) -> [Int32]? {
        lock.lock(); defer { lock.unlock() }
        return map[word]
    }

    func set(_ word: [UInt8], _ ids: [Int32]) {
        lock.lock(); defer { lock.unlock() }
        if map.count >= capacity { map.removeAll(keepingCapacity: true) }
        map[word] = ids
    }
}
