// Byte-level BPE: llama.cpp's GPT-2 reference vectors id for id, SmolLM2's tokenizer on real text
// against the independent Python reference, and a seeded round-trip property test on random UTF-8.

import Foundation
import Tensor
import Testing
@testable import Data

@Suite struct BPETests {
    /// Test strings and expected ids from ggml-vocab-gpt-2.gguf.inp/.out (llama.cpp's test-tokenizer-0 format:
    /// inputs separated by "\n__ggml_vocab_test__\n", one line of space-separated ids per input).
    @Test func gpt2ReferenceVectors() throws {
        let url = try Fetched.file(Fetched.gpt2Vocab, target: "testdata")
        let tokenizer = try BPETokenizer(gguf: GGUFFile(url: url))
        let inputs = try String(contentsOf: URL(fileURLWithPath: url.path + ".inp"), encoding: .utf8)
            .components(separatedBy: "\n__ggml_vocab_test__\n")
        var outputs = try String(contentsOf: URL(fileURLWithPath: url.path + ".out"), encoding: .utf8)
            .components(separatedBy: "\n")
        if outputs.last == "" { outputs.removeLast() }
        let cases = inputs.count == outputs.count + 1 && inputs.last!.isEmpty ? Array(inputs.dropLast()) : inputs
        #expect(cases.count == outputs.count)
        #expect(cases.count >= 30)
        for (text, line) in zip(cases, outputs) {
            let expected = line.split(separator: " ").map { Int32($0)! }
            let ids = tokenizer.encode(text)
            #expect(ids == expected, "text \(text.debugDescription)")
            #expect(try tokenizer.decode(ids) == text)
        }
        #expect(tokenizer.encode("Hello world") == [15496, 995])
    }

    /// SmolLM2's tokenizer (smollm pre-tokenizer) on Hamlet gives the ids the Python `tokenizers`
    /// reference recorded in the fixture (scripts/reference/smollm2_perplexity.py).
    @Test func smolLM2MatchesReferenceOnHamlet() throws {
        let model = try Fetched.file(Fetched.smolLM2, target: "models")
        let text = try Fetched.file(Fetched.hamlet, target: "corpora")
        let reference = try ReferenceFixture.load()
        let tokenizer = try BPETokenizer(gguf: GGUFFile(url: model))
        let ids = tokenizer.encode(try String(contentsOf: text, encoding: .utf8))
        #expect(Array(ids.prefix(reference.tokenIDs.count)) == reference.tokenIDs)
        #expect(tokenizer.bosID == 1 && tokenizer.eosID == 2)
        #expect(tokenizer.encode("abc 2024!") == tokenizer.encode("abc ") + [tokenizer.id(of: "2")!, tokenizer.id(of: "0")!,
                                                                           tokenizer.id(of: "2")!, tokenizer.id(of: "4")!].map(Int32.init)
                + tokenizer.encode("!"))
    }

    @Test func specialTokensParseOnlyWhenAsked() throws {
        let url = try Fetched.file(Fetched.smolLM2, target: "models")
        let tokenizer = try BPETokenizer(gguf: GGUFFile(url: url))
        let eos = Int32(tokenizer.eosID!)
        let text = "Hi" + tokenizer.tokens[Int(eos)] + "there"
        let parsed = tokenizer.encode(text, parseSpecial: true)
        #expect(parsed == tokenizer.encode("Hi") + [eos] + tokenizer.encode("there"))
        #expect(!tokenizer.encode(text).contains(eos))
        #expect(try tokenizer.decode(parsed) == text)
    }

    /// encode -> decode is the identity on random UTF-8 drawn from ASCII, Latin, CJK, emoji (incl. ZWJ
    /// sequences), combining marks, digits of several scripts and whitespace runs (seeded).
    @Test func roundTripOnRandomUnicode() throws {
        let url = try Fetched.file(Fetched.gpt2Vocab, target: "testdata")
        let smol = try Fetched.file(Fetched.smolLM2, target: "models")
        let tokenizers = [try BPETokenizer(gguf: GGUFFile(url: url)), try BPETokenizer(gguf: GGUFFile(url: smol))]
        let pools: [[Unicode.Scalar]] = [
            Array("abcdefghijklmnopqrstuvwxyzABCXYZ'.,;:!?-_()[]{}\"/\\@#$%^&*+=~`|<>".unicodeScalars),
            Array("0123456789٠١٢٣४५६７８".unicodeScalars),
            Array(" \t\n\r\u{00A0}\u{2003}\u{3000}\u{000B}\u{000C}\u{0085}".unicodeScalars),
            Array("éüßñçøåÄÖЖщбγλΩשׁלוםمرحبا".unicodeScalars),
            Array("日本語中文字漢字한국어テスト".unicodeScalars),
            Array("😀🦙👍🏽👨\u{200D}👩\u{200D}👧🇩🇪✨".unicodeScalars),
            Array("\u{0301}\u{0308}\u{0327}\u{20DD}\u{FE0F}\u{200B}".unicodeScalars),
        ]
        var rng = RNG(seed: 20_261_129)
        for tokenizer in tokenizers {
            for _ in 0..<300 {
                var s = String.UnicodeScalarView()
                for _ in 0..<rng.nextInt(below: 40) {
                    let pool = pools[rng.nextInt(below: pools.count)]
                    for _ in 0..<(1 + rng.nextInt(below: 4)) { s.append(pool[rng.nextInt(below: pool.count)]) }
                }
                let text = String(s)
                let ids = tokenizer.encode(text)
                #expect(try tokenizer.decode(ids) == text)
                #expect(Array(try tokenizer.decodeBytes(ids)) == Array(text.utf8))
            }
        }
    }

    @Test func digestIdentifiesTheTokenizer() throws {
        let gpt2 = try BPETokenizer(gguf: GGUFFile(url: Fetched.file(Fetched.gpt2Vocab, target: "testdata")))
        let again = try BPETokenizer(gguf: GGUFFile(url: Fetched.file(Fetched.gpt2Vocab, target: "testdata")))
        let smol = try BPETokenizer(gguf: GGUFFile(url: Fetched.file(Fetched.smolLM2, target: "models")))
        #expect(gpt2.digest == again.digest)
        #expect(gpt2.digest != smol.digest)
        #expect(gpt2.digest.count == 64)
    }

    /// tokenizer.json written by `tokenizerJSON()` loads back to the same tokenizer (same digest, same ids).
    @Test func tokenizerJSONRoundTrip() throws {
        let smol = try BPETokenizer(gguf: GGUFFile(url: Fetched.file(Fetched.smolLM2, target: "models")))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpe-json-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        try smol.tokenizerJSON().write(to: url)
        let back = try BPETokenizer(tokenizerJSON: url, bosID: smol.bosID, eosID: smol.eosID)
        #expect(back.digest == smol.digest)
        let text = "It was 1999; the café's 3 owners said \"hello\"  world\n\n"
        #expect(back.encode(text) == smol.encode(text))
    }
}
