// `streamline import` on a tiny model exported as a Hugging Face folder: the store holds the same
// config, weights and tokenizer, its digest does not depend on where the source lies, and a
// missing source fails with a message saying what to do. Also holds the tiny-model fixture the
// eval and generate command tests share.

import Data
import Foundation
import StageTestSupport
import Model
import Tensor
import Testing

/// A tiny llama-style model with a byte-level BPE tokenizer built here: 256 byte symbols (GPT-2's
/// alphabet) plus a few merges and an eos token.
enum TinyModel {
    static func tokenizer() throws -> BPETokenizer {
        // GPT-2's byte -> scalar alphabet: printable Latin-1 bytes map to themselves, the rest to U+0100…
        var alphabet = [String](repeating: "", count: 256)
        var next = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            alphabet[b] = String(Character(Unicode.Scalar(printable ? b : { defer { next += 1 }; return next }())!))
        }
        let merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n"]
        let merged = ["Ġt", "he", "Ġthe", "Ġa", "in"]
        return try BPETokenizer(tokens: alphabet + merged + ["<eos>"], merges: merges, preTokenizer: .gpt2,
                                specialTokenIDs: [256 + merged.count], bosID: nil, eosID: 256 + merged.count, path: "tiny")
    }

    static func config(vocabSize: Int) -> ModelConfig {
        .llama(vocabSize: vocabSize, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 64, maxPositions: 128)
    }

    /// A seeded random model store at `url`; returns it.
    @discardableResult
    static func writeStore(to url: URL, seed: UInt64 = 1) throws -> ModelStore {
        let tokenizer = try tokenizer()
        let decoder = Decoder.initialized(config: config(vocabSize: tokenizer.vocabSize), seed: seed)
        let store = ModelStore(config: decoder.config, parameters: decoder.parameters, tokenizer: tokenizer)
        try store.write(to: url)
        return store
    }

    static let text = String(repeating: "the cat sat in the hat and the dog ate the bun. ", count: 40)

    /// max |a − b| over the logits of 24 tokens of `text`, relative to a's largest |logit|.
    static func maxRelativeLogitDifference(_ a: ModelStore, _ b: ModelStore) throws -> Float {
        let tokens = Array(a.tokenizer.encode(text).prefix(24))
        let la = try a.decoder().logits(tokens: tokens, B: 1, T: tokens.count).array
        let lb = try b.decoder().logits(tokens: tokens, B: 1, T: tokens.count).array
        let scale = la.map(abs).max() ?? 1
        return zip(la, lb).map { abs($0 - $1) }.max()! / scale
    }
}

func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-stages-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct ImportCommandTests {
    @Test func importsAnHFFolderIntoAStoreWhoseDigestIgnoresThePath() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokenizer = try TinyModel.tokenizer()
        let decoder = Decoder.initialized(config: TinyModel.config(vocabSize: tokenizer.vocabSize), seed: 7)
        for name in ["a", "b"] {
            try HFExport.write(config: decoder.config, parameters: decoder.parameters, tokenizer: tokenizer,
                               to: dir.appendingPathComponent(name))
        }
        let first = try streamline(["import", "a", "--out", "a.h5"], in: dir)
        let second = try streamline(["import", "b", "--out", "b.h5"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("2 layers, d 32"))
        let digestLine = { (r: CommandResult) in r.stdout.split(separator: "\n").first { $0.hasPrefix("digest") } }
        #expect(digestLine(first) != nil && digestLine(first) == digestLine(second))

        let store = try ModelStore(store: dir.appendingPathComponent("a.h5"), verify: true)
        #expect(store.config == decoder.config)
        #expect(store.tokenizer.digest == tokenizer.digest)
        #expect(store.source["format"] == "hf")
        for spec in decoder.config.parameterSpecs {
            #expect(store.parameters.value(spec.name).array == decoder.parameters.value(spec.name).array, "\(spec.name)")
        }
    }

    @Test func modelStoreRoundTripsTheTokenizer() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let written = try TinyModel.writeStore(to: dir.appendingPathComponent("m.h5"))
        let read = try ModelStore(store: dir.appendingPathComponent("m.h5"), verify: true)
        #expect(read.tokenizer.digest == written.tokenizer.digest)
        #expect(read.tokenizer.encode(TinyModel.text) == written.tokenizer.encode(TinyModel.text))
        #expect(read.tokenizer.eosID == written.tokenizer.eosID)
    }

    @Test func missingSourceFailsSayingWhatToDo() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try streamline(["import", "nowhere.gguf", "--out", "x.h5"], in: dir)
        #expect(result.status != 0)
        #expect(result.stderr.contains("nowhere.gguf") && result.stderr.contains("make models"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.h5").path))
    }
}
