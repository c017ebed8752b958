// Text corpora and token datasets: WikiText document boundaries, JSONL fields and their errors,
// deterministic seeded splits and windows, digests, the dataset store round trip, and mixtures.

import Foundation
import Testing
import TensorStore
@testable import Data

@Suite struct TextDatasetTests {
    let wiki = """
     = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 is a game . \n\n = = Gameplay = = \n\n It plays well . \n\
     = Tower Building = \n\n The tower is tall . \n = Third = \n text \n
    """

    private func tokenizer() throws -> BPETokenizer {
        try BPETokenizer(gguf: GGUFFile(url: Fetched.file(Fetched.gpt2Vocab, target: "testdata")))
    }

    @Test func aDatasetOfAnotherTokenizerIsRefused() throws {
        let gpt2 = try tokenizer()
        let data = TokenDataset(documents: [TextDocument(text: "The tower is tall.")], tokenizer: gpt2)
        try data.requireTokenizer(gpt2)
        let other = try BPETokenizer(tokens: gpt2.tokens, merges: Array(gpt2.merges.dropLast()), preTokenizer: gpt2.preTokenizer,
                                     specialTokenIDs: gpt2.specialTokenIDs, bosID: gpt2.bosID, eosID: gpt2.eosID, path: "one merge fewer")
        #expect(throws: DataError.tokenizerMismatch(dataset: gpt2.digest, model: other.digest)) { try data.requireTokenizer(other) }
    }

    @Test func wikitextDocumentsStartAtTopLevelHeadings() {
        let docs = TextCorpus.wikitext(text: wiki)
        #expect(docs.map(\.title) == ["Valkyria Chronicles III", "Tower Building", "Third"])
        #expect(docs[0].text.contains(" = = Gameplay = = "))
        #expect(docs[0].text.hasPrefix(" = Valkyria Chronicles III = \n"))
        #expect(!docs[0].text.contains("tower"))
        #expect(docs.map(\.text).joined() == wiki.split(separator: "\n", omittingEmptySubsequences: false).map { $0 + "\n" }.joined())
    }

    @Test func jsonlField() throws {
        let dir = try makeTempDir("jsonl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.jsonl")
        try Data("{\"text\": \"first doc\", \"id\": 1}\n\n{\"text\": \"second \\u00e9\"}\n".utf8).write(to: url)
        #expect(try TextCorpus.jsonl(url, field: "text").map(\.text) == ["first doc", "second é"])
        #expect(throws: DataError.jsonlField(path: url.path, line: 1, field: "body")) { try TextCorpus.jsonl(url, field: "body") }
    }

    @Test func wikitextWithCRLFLineEnds() {
        // The upstream raw files end lines with CRLF; Swift sees "\r\n" as one Character.
        let crlf = wiki.replacingOccurrences(of: "\n", with: "\r\n")
        let docs = TextCorpus.wikitext(text: crlf)
        #expect(docs.map(\.title) == ["Valkyria Chronicles III", "Tower Building", "Third"])
        #expect(docs.map(\.text) == TextCorpus.wikitext(text: wiki).map(\.text))
        // Not headings: a sub-heading, a heading without its spaces, a bare " = = ".
        for line in [" = = Gameplay = = ", "= Title =", " = = ", " =  = x"] {
            #expect(TextCorpus.topLevelHeading(Substring(line)) == nil, "\(line)")
        }
    }

    @Test func jsonlUnicodeEscapesAndErrorLines() throws {
        let dir = try makeTempDir("jsonl-escapes")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.jsonl")
        let lines = [#"{"text": "tab\tquote\" newline\n end", "n": 2}"#, "", "  ",
                     #"{"text": "Ünïcödé 日本語 \ud83d\ude00 🎉"}"#, #"{"text": "crlf"}"#]
        try Data(lines.joined(separator: "\r\n").utf8).write(to: url)
        #expect(try TextCorpus.jsonl(url, field: "text").map(\.text)
                == ["tab\tquote\" newline\n end", "Ünïcödé 日本語 😀 🎉", "crlf"])
        #expect(try TextCorpus.jsonl(url, field: "text").map(\.title) == ["line 1", "line 4", "line 5"])
        // Lines that are not an object with a string field name their line (1-based, empty lines counted).
        for (bad, line) in [("[1, 2]", 3), (#"{"text": 5}"#, 3), ("{\"text\": \"cut", 3), (#"{"body": "x"}"#, 3)] {
            try Data(("{\"text\": \"ok\"}\n\n" + bad + "\n").utf8).write(to: url)
            #expect(throws: DataError.jsonlField(path: url.path, line: line, field: "text")) { try TextCorpus.jsonl(url, field: "text") }
        }
        #expect("\(DataError.jsonlField(path: url.path, line: 3, field: "text"))".hasPrefix(url.path + ":3: "))
    }

    @Test func boundariesAndDigests() throws {
        let tok = try tokenizer()
        let docs = TextCorpus.wikitext(text: wiki)
        let data = TokenDataset(documents: docs, tokenizer: tok)
        #expect(data.documentCount == 3)
        for (i, doc) in docs.enumerated() { #expect(Array(data.document(i)) == tok.encode(doc.text)) }
        #expect(data.tokenizerDigest == tok.digest)
        #expect(data.textDigest == TextCorpus.digest(docs))
        var changed = docs
        changed[2].text += "!"
        #expect(TextCorpus.digest(changed) != data.textDigest)
        let withEOS = TokenDataset(documents: docs, tokenizer: tok, eos: true)
        #expect(withEOS.document(0).last == Int32(tok.eosID!))
    }

    @Test func splitsAreSeededDisjointAndComplete() throws {
        let docs = (0..<40).map { TextDocument(text: "Document number \($0) says hello.") }
        let data = TokenDataset(documents: docs, tokenizer: try tokenizer())
        let (train, validation) = data.split(validationFraction: 0.25, seed: 42)
        #expect(validation.documentCount == 10 && train.documentCount == 30)
        let again = data.split(validationFraction: 0.25, seed: 42)
        #expect(again.train == train && again.validation == validation)
        #expect(data.split(validationFraction: 0.25, seed: 43).validation != validation)
        let all = (0..<train.documentCount).map { Array(train.document($0)) } + (0..<validation.documentCount).map { Array(validation.document($0)) }
        #expect(Set(all) == Set((0..<40).map { Array(data.document($0)) }))
        #expect(train.tokens.count + validation.tokens.count == data.tokens.count)
    }

    @Test func windowsAreSeededSlicesOfTheStream() throws {
        let data = TokenDataset(documents: [TextDocument(text: String(repeating: "the quick brown fox 12 jumps. ", count: 50))],
                                tokenizer: try tokenizer())
        let w = try data.sampleWindows(count: 8, length: 16, seed: 3)
        #expect(w.count == 8 && w.allSatisfy { $0.count == 16 })
        #expect(try data.sampleWindows(count: 8, length: 16, seed: 3) == w)
        #expect(try data.sampleWindows(count: 8, length: 16, seed: 4) != w)
        let stream = data.tokens
        for window in w {
            #expect((0...(stream.count - 16)).contains { Array(stream[$0..<($0 + 16)]) == window })
        }
        #expect(throws: DataError.self) { try data.sampleWindows(count: 1, length: stream.count + 1, seed: 0) }
    }

    @Test func storeRoundTrip() throws {
        let dir = try makeTempDir("dataset-store")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = TokenDataset(documents: TextCorpus.wikitext(text: wiki), tokenizer: try tokenizer())
        let (train, _) = data.split(validationFraction: 0.34, seed: 1)
        let url = dir.appendingPathComponent("train.h5")
        try train.write(to: url)
        #expect(try TokenDataset(store: url) == train)
    }

    @Test func mixturesLaySourcesEndToEndAndRoundTrip() throws {
        let dir = try makeTempDir("dataset-mix")
        defer { try? FileManager.default.removeItem(at: dir) }
        let plays = TokenDataset(tokens: [1, 2, 3, 4, 5], documentStarts: [0, 3], tokenizerDigest: "tok", textDigest: "plays")
        let docs = TokenDataset(tokens: [7, 8, 9], documentStarts: [0], tokenizerDigest: "tok", textDigest: "docs")
        let mix = try TokenDataset(mixing: [("plays", plays, 2), ("docs", docs, 1)])
        #expect(mix.tokens == [1, 2, 3, 4, 5, 7, 8, 9] && mix.documentStarts == [0, 3, 5])
        #expect(mix.sources == [TokenSource(name: "plays", tokenCount: 5, weight: 2), TokenSource(name: "docs", tokenCount: 3, weight: 1)])
        #expect(Array(mix.sourceTokens(1)) == [7, 8, 9])
        #expect(mix.tokenizerDigest == "tok")
        // The weights are part of what the text digest says.
        #expect(try TokenDataset(mixing: [("plays", plays, 1), ("docs", docs, 1)]).textDigest != mix.textDigest)

        let url = dir.appendingPathComponent("mix.h5"), plainURL = dir.appendingPathComponent("plain.h5")
        try mix.write(to: url)
        #expect(try TokenDataset(store: url) == mix)
        // A plain dataset's store has no trace of mixtures.
        try plays.write(to: plainURL)
        #expect(try !TensorStoreReader(url: plainURL).metadataKeys.contains("sources"))
        #expect(try TokenDataset(store: plainURL).sources.isEmpty)
    }

    @Test func mixturesNeedOneTokenizerAndPlainParts() throws {
        let a = TokenDataset(tokens: [1, 2], documentStarts: [0], tokenizerDigest: "tok-a", textDigest: "a")
        let b = TokenDataset(tokens: [3], documentStarts: [0], tokenizerDigest: "tok-b", textDigest: "b")
        #expect { try TokenDataset(mixing: [("a", a, 1), ("b", b, 1)]) } throws: { "\($0)".contains("same model's tokenizer") }
        let nested = try TokenDataset(mixing: [("a", a, 1)])
        #expect { try TokenDataset(mixing: [("nested", nested, 1), ("a", a, 1)]) } throws: { "\($0)".contains("mix the plain datasets") }
        #expect(throws: DataError.self) { try TokenDataset(mixing: []) }
    }
}
