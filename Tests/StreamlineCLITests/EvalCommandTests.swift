// `streamline eval` on a tiny model store: the perplexity equals one computed here window by window
// with Decoder.negativeLogLikelihood (so batching and windowing are checked against a direct sum),
// a smaller stride scores every token after the first exactly once, and bad options are refused.

import Data
import Foundation
import StageTestSupport
import Model
import Testing

@Suite struct EvalCommandTests {
    struct Output: Decodable {
        var perplexity: Double
        var tokens_scored: Int
        var windows: Int
    }

    func evaluate(_ extra: [String], in dir: URL) throws -> Output {
        let result = try streamline(["eval", "--model", "m.h5", "--text", "t.txt", "--json", "--threads", "1"] + extra, in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        return try JSONDecoder().decode(Output.self, from: Data(result.stdout.utf8))
    }

    func fixture() throws -> (URL, ModelStore, [Int32]) {
        let dir = try temporaryFolder()
        let store = try TinyModel.writeStore(to: dir.appendingPathComponent("m.h5"))
        try TinyModel.text.write(to: dir.appendingPathComponent("t.txt"), atomically: true, encoding: .utf8)
        return (dir, store, store.tokenizer.encode(TinyModel.text))
    }

    @Test func nonOverlappingWindowsMatchADirectSum() throws {
        let (dir, store, tokens) = try fixture()
        defer { try? FileManager.default.removeItem(at: dir) }
        let window = 64, maxTokens = 300  // 4 full windows and one of 44: batches of 3 and a ragged tail
        let out = try evaluate(["--window", "\(window)", "--max-tokens", "\(maxTokens)", "--batch", "3"], in: dir)
        let decoder = try store.decoder()
        var sum = 0.0, count = 0
        for start in stride(from: 0, to: maxTokens, by: window) {
            let piece = Array(tokens[start..<min(start + window, maxTokens)])
            let targets = Array(piece.dropFirst()) + [-1]
            let (s, n) = decoder.negativeLogLikelihood(tokens: piece, targets: targets, B: 1, T: piece.count)
            sum += s
            count += n
        }
        #expect(out.tokens_scored == count && count == maxTokens - 5)
        #expect(out.windows == 5)
        #expect(abs(out.perplexity - exp(sum / Double(count))) <= 1e-5 * out.perplexity)
    }

    @Test func slidingWindowsScoreEachTokenOnce() throws {
        let (dir, _, _) = try fixture()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sliding = try evaluate(["--window", "64", "--stride", "16", "--max-tokens", "200"], in: dir)
        #expect(sliding.tokens_scored == 199)
        #expect(sliding.windows == 10)  // starts 0, 16, …, 136; the last reaches the end (200)
        let plain = try evaluate(["--window", "64", "--max-tokens", "200"], in: dir)
        #expect(sliding.perplexity != plain.perplexity)  // more context per token changes the number
    }

    @Test func aDatasetStoreOfTheSameTextGivesTheSamePerplexity() throws {
        let (dir, store, _) = try fixture()
        defer { try? FileManager.default.removeItem(at: dir) }
        let documents = try TextCorpus.plainText(dir.appendingPathComponent("t.txt"))
        try TokenDataset(documents: documents, tokenizer: store.tokenizer).write(to: dir.appendingPathComponent("d.h5"))
        let fromText = try evaluate(["--window", "48", "--max-tokens", "250"], in: dir)
        let result = try streamline(["eval", "--model", "m.h5", "--dataset", "d.h5", "--json", "--window", "48",
                                     "--max-tokens", "250", "--threads", "1"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let fromDataset = try JSONDecoder().decode(Output.self, from: Data(result.stdout.utf8))
        #expect(fromDataset.perplexity == fromText.perplexity && fromDataset.tokens_scored == fromText.tokens_scored)
    }

    @Test func refusesAStrideLargerThanTheWindow() throws {
        let (dir, _, _) = try fixture()
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try streamline(["eval", "--model", "m.h5", "--text", "t.txt", "--window", "16", "--stride", "32"], in: dir)
        #expect(result.status != 0)
        #expect(result.stderr.contains("--stride"))
    }
}
