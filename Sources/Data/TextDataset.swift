// Text corpora -> token datasets: documents from plain text files, WikiText raw files (a document
// starts at each ` = Title = ` heading) and JSONL (one string field per line); tokenized into one id
// stream with document boundaries; seeded train/validation splits by document; seeded windows of L
// tokens; stored as a tensor store tagged with the tokenizer's and the text's digests. A mixture of
// datasets (the `mix` stage) is one such store whose id stream is its sources laid end to end, each
// with a sampling weight; readers that ignore `sources` see the concatenation.
// Not a tokenizer (BPE.swift), not an evaluator, and not the weighted sampling (Training).

import Crypto
import Foundation
import Tensor
import TensorStore

/// One document of a corpus.
public struct TextDocument: Sendable, Equatable {
    /// WikiText heading or JSONL line number, when the format has one.
    public var title: String?
    /// The document's text.
    public var text: String
    public init(title: String? = nil, text: String) {
        self.title = title
        self.text = text
    }
}

/// Readers for the corpus formats.
public enum TextCorpus {
    /// A plain text file as one document.
    public static func plainText(_ url: URL) throws -> [TextDocument] {
        [TextDocument(title: url.lastPathComponent, text: try readText(url))]
    }

    /// A WikiText raw file: a document starts at every top-level heading line ` = Title = `
    /// (sub-headings ` = = Section = = ` stay inside their article). Text before the first heading is
    /// dropped; line ends (LF or CRLF, as the upstream files have) become LF.
    public static func wikitext(_ url: URL) throws -> [TextDocument] {
        let docs = wikitext(text: try readText(url))
        guard !docs.isEmpty else { throw DataError.notEnoughText(path: url.path, detail: "no ' = Title = ' heading found") }
        return docs
    }

    /// `wikitext(_:)` on text in memory.
    public static func wikitext(text: String) -> [TextDocument] {
        var docs: [TextDocument] = []
        var title: String?
        var body = ""
        for line in lines(text) {
            if let heading = topLevelHeading(line) {
                if let title { docs.append(TextDocument(title: title, text: body)) }
                title = heading
                body = String(line) + "\n"
            } else if title != nil {
                body += line + "\n"
            }
        }
        if let title { docs.append(TextDocument(title: title, text: body)) }
        return docs
    }

    /// " = Title = " -> "Title"; nil for sub-headings (" = = X = = ") and other lines. A top-level
    /// heading is a whole line that starts with " = " but not " = = ", ends with " = " and has a title
    /// between (line end excluded).
    static func topLevelHeading(_ line: Substring) -> String? {
        guard line.hasPrefix(" = "), line.hasSuffix(" = "), !line.hasPrefix(" = = "), line.count > 6 else { return nil }
        return String(line.dropFirst(3).dropLast(3))
    }

    /// JSONL: each non-empty line an object whose string `field` is one document (title: the line number).
    public static func jsonl(_ url: URL, field: String) throws -> [TextDocument] {
        var docs: [TextDocument] = []
        for (i, line) in lines(try readText(url)).enumerated() {
            if line.allSatisfy(\.isWhitespace) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let text = object[field] as? String else {
                throw DataError.jsonlField(path: url.path, line: i + 1, field: field)
            }
            docs.append(TextDocument(title: "line \(i + 1)", text: text))
        }
        return docs
    }

    /// Lines without their ends. Swift sees CRLF as one Character, so "\n" alone would not split it.
    static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    }

    static func readText(_ url: URL) throws -> String {
        do { return try String(contentsOf: url, encoding: .utf8) } catch {
            throw DataError.unreadable(path: url.path, detail: error.localizedDescription)
        }
    }

    /// SHA-256 (hex) of the documents' texts and boundaries (titles excluded: they are not tokenized).
    public static func digest(_ documents: [TextDocument]) -> String {
        var h = SHA256()
        h.update(data: Data("streamline.text.v1\n".utf8))
        for doc in documents {
            let bytes = Data(doc.text.utf8)
            h.update(data: Data("\(bytes.count)\n".utf8))
            h.update(data: bytes)
        }
        return hex(h.finalize())
    }
}

/// One source of a mixed token dataset: a stretch of the id stream and its sampling weight.
public struct TokenSource: Sendable, Equatable, Codable {
    /// Where the ids came from, e.g. the producing stage's node id.
    public var name: String
    /// Ids of this source; the sources lie end to end in `TokenDataset.tokens`, in order.
    public var tokenCount: Int
    /// Relative share of training samples and calibration windows drawn from this source (> 0).
    public var weight: Double

    public init(name: String, tokenCount: Int, weight: Double) {
        self.name = name
        self.tokenCount = tokenCount
        self.weight = weight
    }
}

/// Token ids of a corpus with its document boundaries and provenance digests.
public struct TokenDataset: Sendable, Equatable {
    /// All documents' ids, concatenated: (N).
    public private(set) var tokens: [Int32]
    /// Start of each document in `tokens`, ascending, first 0: (D).
    public private(set) var documentStarts: [Int]
    /// `BPETokenizer.digest` of the tokenizer that produced the ids.
    public let tokenizerDigest: String
    /// `TextCorpus.digest` of the documents.
    public let textDigest: String
    /// Which part of the corpus this is, e.g. "all" or "validation seed=1 fraction=0.25".
    public let selection: String
    /// The sources of a mixture, in stream order (their token counts sum to N); empty for one corpus.
    public private(set) var sources: [TokenSource] = []
    /// How the corpus files were read when not as plain text, e.g. "jsonl field=text" or "wikitext";
    /// nil for plain text (one document per file) and for mixtures. Kept through splits.
    public var format: String?

    /// Store kind written by `write(to:)`.
    public static let storeKind = "token_dataset"

    /// Throws unless these ids were made by `tokenizer`: ids of another vocabulary would train or
    /// score a model on the wrong tokens without any error.
    public func requireTokenizer(_ tokenizer: BPETokenizer) throws(DataError) {
        guard tokenizerDigest == tokenizer.digest else { throw .tokenizerMismatch(dataset: tokenizerDigest, model: tokenizer.digest) }
    }

    public init(tokens: [Int32], documentStarts: [Int], tokenizerDigest: String, textDigest: String, selection: String = "all") {
        self.tokens = tokens
        self.documentStarts = documentStarts
        self.tokenizerDigest = tokenizerDigest
        self.textDigest = textDigest
        self.selection = selection
    }

    /// Tokenizes `documents` (no BOS; `eos` appends the tokenizer's eos id to each document).
    public init(documents: [TextDocument], tokenizer: BPETokenizer, eos: Bool = false) {
        var tokens: [Int32] = []
        var starts: [Int] = []
        for doc in documents {
            starts.append(tokens.count)
            tokens += tokenizer.encode(doc.text)
            if eos, let id = tokenizer.eosID { tokens.append(Int32(id)) }
        }
        self.init(tokens: tokens, documentStarts: starts, tokenizerDigest: tokenizer.digest,
                  textDigest: TextCorpus.digest(documents))
    }

    /// A mixture of `parts` (each a plain dataset of the same tokenizer, weight > 0): their ids and
    /// documents end to end in order, one source per part. The text digest hashes the parts' text
    /// digests and weights, so the same parts mixed otherwise differ.
    public init(mixing parts: [(name: String, dataset: TokenDataset, weight: Double)]) throws(DataError) {
        guard let first = parts.first else {
            throw .notEnoughText(path: "mix", detail: "no datasets to mix; give at least one dataset store")
        }
        var tokens: [Int32] = [], starts: [Int] = [], sources: [TokenSource] = []
        var h = SHA256()
        h.update(data: Data("streamline.mixture.v1\n".utf8))
        for (name, dataset, weight) in parts {
            guard dataset.tokenizerDigest == first.dataset.tokenizerDigest else {
                throw .unsupportedTokenizer(path: name, detail: "tokenized by \(dataset.tokenizerDigest.prefix(16)), but \(first.name) by \(first.dataset.tokenizerDigest.prefix(16)); build every mixed dataset with the same model's tokenizer")
            }
            guard dataset.sources.isEmpty else {
                throw .malformed(format: "token dataset mixture", path: name, at: "sources",
                                 detail: "is itself a mixture; mix the plain datasets in one mix stage")
            }
            precondition(weight.isFinite && weight > 0, "TokenDataset(mixing:): weight \(weight) of \(name) must be positive")
            starts += dataset.documentStarts.map { $0 + tokens.count }
            tokens += dataset.tokens
            sources.append(TokenSource(name: name, tokenCount: dataset.tokens.count, weight: weight))
            h.update(data: Data("\(dataset.textDigest) \(weight)\n".utf8))
        }
        self.init(tokens: tokens, documentStarts: starts, tokenizerDigest: first.dataset.tokenizerDigest,
                  textDigest: hex(h.finalize()),
                  selection: "mix of " + parts.map { "\($0.name) ×\($0.weight)" }.joined(separator: ", "))
        self.sources = sources
    }

    /// The ids of source `i` of a mixture.
    public func sourceTokens(_ i: Int) -> ArraySlice<Int32> {
        let start = sources[..<i].reduce(0) { $0 + $1.tokenCount }
        return tokens[start..<(start + sources[i].tokenCount)]
    }

    /// D, number of documents.
    public var documentCount: Int { documentStarts.count }

    /// The ids of document `i`.
    public func document(_ i: Int) -> ArraySlice<Int32> {
        let end = i + 1 < documentStarts.count ? documentStarts[i + 1] : tokens.count
        return tokens[documentStarts[i]..<end]
    }

    /// Splits by document: a seeded permutation picks round(fraction·D) validation documents (at least
    /// one when fraction > 0 and D > 1); both parts keep the corpus order. Same seed, same split.
    public func split(validationFraction: Double, seed: UInt64) -> (train: TokenDataset, validation: TokenDataset) {
        precondition((0...1).contains(validationFraction), "TokenDataset.split: fraction \(validationFraction) outside [0, 1]")
        var rng = RNG(seed: seed)
        var count = Int((validationFraction * Double(documentCount)).rounded())
        if validationFraction > 0 && documentCount > 1 { count = min(max(count, 1), documentCount - 1) }
        let validation = Set(rng.permutation(documentCount).prefix(count))
        let tag = "seed=\(seed) fraction=\(validationFraction)"
        return (subset({ !validation.contains($0) }, selection: "train \(tag)"),
                subset({ validation.contains($0) }, selection: "validation \(tag)"))
    }

    private func subset(_ keep: (Int) -> Bool, selection: String) -> TokenDataset {
        var tokens: [Int32] = []
        var starts: [Int] = []
        for i in 0..<documentCount where keep(i) {
            starts.append(tokens.count)
            tokens += document(i)
        }
        var part = TokenDataset(tokens: tokens, documentStarts: starts, tokenizerDigest: tokenizerDigest,
                                textDigest: textDigest, selection: self.selection == "all" ? selection : self.selection + " / " + selection)
        part.format = format
        return part
    }

    /// `count` windows of `length` consecutive ids, each starting at a seeded uniform position of the
    /// id stream (windows may cross document boundaries and overlap). Same seed, same windows.
    public func sampleWindows(count: Int, length: Int, seed: UInt64) throws -> [[Int32]] {
        guard length > 0, tokens.count >= length else {
            throw DataError.notEnoughText(path: selection, detail: "\(tokens.count) tokens, a window needs \(length)")
        }
        var rng = RNG(seed: seed)
        return (0..<count).map { _ in
            let start = rng.nextInt(below: tokens.count - length + 1)
            return Array(tokens[start..<(start + length)])
        }
    }

    // MARK: - Store

    /// Writes a tensor store of kind `token_dataset`: `tokens` int32 (N), `document_starts` int64 (D),
    /// metadata `tokenizer_digest`, `text_digest`, `selection`, for a mixture only `sources` and for a
    /// non-plain-text corpus only `format` (so a plain dataset's store is what it always was), and
    /// `provenance` (not digested). Returns the store digest.
    @discardableResult
    public func write(to url: URL, provenance: StoreProvenance = StoreProvenance()) throws -> String {
        let writer = try TensorStoreWriter(url: url, kind: Self.storeKind, provenance: provenance)
        try writer.write("tokens", tokens, shape: [tokens.count])
        try writer.write("document_starts", documentStarts.map(Int64.init), shape: [documentStarts.count])
        try writer.setMetadata("tokenizer_digest", tokenizerDigest)
        try writer.setMetadata("text_digest", textDigest)
        try writer.setMetadata("selection", selection)
        if !sources.isEmpty { try writer.setMetadata("sources", sources) }
        if let format { try writer.setMetadata("format", format) }
        return try writer.commit()
    }

    /// Reads a store written by `write(to:)`.
    public init(store url: URL) throws {
        let reader = try TensorStoreReader(url: url)
        guard reader.kind == Self.storeKind else {
            throw DataError.malformed(format: "token dataset store", path: url.path, at: "kind",
                                      detail: "kind is '\(reader.kind)', expected '\(Self.storeKind)'")
        }
        self.init(tokens: try reader.int32s("tokens").values,
                  documentStarts: try reader.values("document_starts", as: Int64.self).values.map(Int.init),
                  tokenizerDigest: try reader.metadata("tokenizer_digest", as: String.self),
                  textDigest: try reader.metadata("text_digest", as: String.self),
                  selection: try reader.metadata("selection", as: String.self))
        if reader.metadataKeys.contains("format") { format = try reader.metadata("format", as: String.self) }
        if reader.metadataKeys.contains("sources") {
            sources = try reader.metadata("sources", as: [TokenSource].self)
            let total = sources.reduce(0) { $0 + $1.tokenCount }
            guard total == tokens.count, sources.allSatisfy({ $0.tokenCount >= 0 && $0.weight.isFinite && $0.weight > 0 }) else {
                throw DataError.malformed(format: "token dataset store", path: url.path, at: "sources",
                                          detail: "sources cover \(total) of \(tokens.count) ids or have a weight that is not positive; rebuild it with the mix stage")
            }
        }
    }
}
