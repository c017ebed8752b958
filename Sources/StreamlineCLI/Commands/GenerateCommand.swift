// `streamline generate --model STORE --prompt TEXT`: continues a prompt with a model store and prints
// prompt + continuation. Sampling is Decoder.generate's; this file only encodes and decodes.

import ArgumentParser
import Data
import Foundation
import Tensor

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a model store.",
        discussion: """
            Greedy when --temperature is 0 (the default), otherwise samples softmax(logits / \
            temperature), from the --top-k most likely tokens when given, seeded by --seed. Stops \
            after --max-tokens tokens or at the tokenizer's end-of-sequence token.

            Examples:
              streamline generate --model runs/smollm2.h5 --prompt "The capital of France is"
              streamline generate --model runs/smollm2.h5 --prompt "Once upon a time" --temperature 0.8 --top-k 40 --seed 3
            """)

    @Option(help: "The model store.")
    var model: String

    @Option(help: "The text to continue.")
    var prompt: String

    @Option(help: "New tokens at most.")
    var maxTokens: Int = 40

    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature: Double = 0

    @Option(help: "Sample only from the K most likely tokens.")
    var topK: Int?

    @Option(help: "Seed of the sampler.")
    var seed: UInt64 = 0

    @Flag(help: "Put the bos token before the prompt.")
    var bos = false

    @Option(help: "Threads.")
    var threads: Int = Threading.coreCount

    func validate() throws {
        guard maxTokens >= 1, temperature >= 0, (topK ?? 1) >= 1, threads >= 1 else {
            throw ValidationError("--max-tokens, --top-k and --threads must be at least 1, --temperature at least 0.")
        }
    }

    func run() throws {
        Threading.configure(threads: threads)
        let store = try ModelStore(store: URL(fileURLWithPath: model))
        let tokenizer = store.tokenizer
        var promptIDs = tokenizer.encode(prompt)
        if bos, let id = tokenizer.bosID { promptIDs.insert(Int32(id), at: 0) }
        guard !promptIDs.isEmpty else { throw ValidationError("The prompt is empty after tokenizing; give some text.") }
        // Decoder.generate returns the whole continuation; streaming token by token needs its
        // sampler (Decoder.sampleToken, internal to Model) and is left to that module.
        let ids = try store.decoder().generate(prompt: promptIDs, maxNewTokens: maxTokens, temperature: Float(temperature),
                                               topK: topK, seed: seed, stopAt: tokenizer.eosID.map(Int32.init))
        print(prompt + (try tokenizer.decode(ids)))
        FileHandle.standardError.write(Data("[\(ids.count) tokens]\n".utf8))
    }
}
