// `streamline generate` on a tiny model store: greedy output is the prompt followed by exactly what
// Decoder.generate produces, sampling is reproducible per seed, and --max-tokens bounds the output.

import Data
import Foundation
import StageTestSupport
import Model
import Testing

@Suite struct GenerateCommandTests {
    @Test func greedyOutputIsThePromptAndTheDecodersContinuation() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try TinyModel.writeStore(to: dir.appendingPathComponent("m.h5"))
        let prompt = "the cat sat"
        let result = try streamline(["generate", "--model", "m.h5", "--prompt", prompt, "--max-tokens", "12"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let ids = try store.decoder().generate(prompt: store.tokenizer.encode(prompt), maxNewTokens: 12,
                                               stopAt: store.tokenizer.eosID.map(Int32.init))
        #expect(result.stdout == prompt + (try store.tokenizer.decode(ids)) + "\n")
        #expect(result.stderr.contains("[\(ids.count) tokens]"))
    }

    @Test func samplingIsReproduciblePerSeed() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TinyModel.writeStore(to: dir.appendingPathComponent("m.h5"))
        func sample(_ seed: Int) throws -> String {
            try streamline(["generate", "--model", "m.h5", "--prompt", "the", "--max-tokens", "30",
                            "--temperature", "1.5", "--seed", "\(seed)"], in: dir).stdout
        }
        let a = try sample(1), b = try sample(1), c = try sample(2)
        #expect(a == b)
        #expect(a != c)
    }
}
