// The `dataset` stage's formats on small fixture files: plain text (a file is a document, the store
// as it always was), JSONL (a line's string field is a document; a bad line is an error naming
// file:line) and WikiText raw (an article is a document); the format lands in the stores' metadata
// and provenance.

import Foundation
import StageTestSupport
import Testing
import Data
import Pipeline
import Stages
import TensorStore

@Suite struct DatasetStageTests {
    /// A tiny model (for its tokenizer) and the fixture texts, in a fresh folder.
    static func fixtures() throws -> (dir: URL, model: URL) {
        let dir = try temporaryProject([
            "a.txt": "The first plain document.\n",
            "b.txt": "The second one.\n",
            "c.jsonl": #"{"body": "Zürich \u00e9t\u00e9 🎉", "id": 1}"# + "\n\n" + #"{"body": "tab\there \"quoted\""}"# + "\n"
                + #"{"id": 3, "body": "third\nline"}"# + "\n",
            "wiki.raw": [" ", " = Alpha = ", " ", " Alpha text . ", " = = Part = = ", " more . ", " = Beta = ", " Beta text . ", " = Gamma = ", " g . ", ""]
                .joined(separator: "\r\n"),
        ])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(8)], in: dir)
        return (dir, tiny["model"]!)
    }

    static func run(_ params: [String: String], _ f: (dir: URL, model: URL)) throws -> (train: URL, validation: URL) {
        let resolved = params.mapValues { ParamValue.string($0) }.merging(["train": .string("")]) { given, _ in given }
        let out = try runKind(DatasetStage(), params: resolved, inputs: ["model": f.model], in: f.dir)
        return (out["train"]!, out["validation"]!)
    }

    @Test func eachFormatSplitsItsDocuments() throws {
        let f = try Self.fixtures()
        func path(_ name: String) -> String { f.dir.appendingPathComponent(name).path }
        let text = try Self.run(["train": path("a.txt") + ", " + path("b.txt"), "validation": path("b.txt")], f)
        let jsonl = try Self.run(["train": path("c.jsonl"), "validation": path("c.jsonl"), "format": "jsonl", "field": "body"], f)
        let wiki = try Self.run(["train": path("wiki.raw"), "validation": path("wiki.raw"), "format": "wikitext"], f)
        #expect(try TokenDataset(store: text.train).documentCount == 2)
        #expect(try TokenDataset(store: jsonl.train).documentCount == 3)
        #expect(try TokenDataset(store: wiki.validation).documentCount == 3)
        // The JSONL documents are the decoded strings (escapes and unicode), nothing of the JSON around them.
        let tokenizer = try ModelStore(store: f.model).tokenizer
        let docs = try TextCorpus.jsonl(URL(fileURLWithPath: path("c.jsonl")), field: "body")
        #expect(docs.map(\.text) == ["Zürich été 🎉", "tab\there \"quoted\"", "third\nline"])
        #expect(try TokenDataset(store: jsonl.train).tokens == TokenDataset(documents: docs, tokenizer: tokenizer, eos: true).tokens)
        // The format is recorded: metadata only when not plain text (a text store is as before), provenance always.
        for (urls, format) in [(text, nil), (jsonl, "jsonl field=body"), (wiki, "wikitext")] as [((URL, URL), String?)] {
            for url in [urls.0, urls.1] {
                let reader = try TensorStoreReader(url: url)
                #expect(try TokenDataset(store: url).format == format)
                #expect(reader.metadataKeys.contains("format") == (format != nil))
                #expect(reader.provenance?.extra["format"] == format ?? "text")
            }
        }
    }

    @Test func aBadJSONLLineIsNamedByFileAndLine() throws {
        let f = try Self.fixtures()
        let file = f.dir.appendingPathComponent("c.jsonl").path
        #expect { try Self.run(["train": file, "format": "jsonl", "field": "text"], f) } throws: { error in
            "\(error)".hasPrefix(file + ":1: not a JSON object with a string field 'text'")
        }
        #expect { try Self.run(["train": file, "field": "body"], f) } throws: { "\($0)".contains("read only by format jsonl") }
    }
}
