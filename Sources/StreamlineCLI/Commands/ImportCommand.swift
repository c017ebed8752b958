// `streamline import SOURCE --out STORE`: a GGUF file or Hugging Face folder -> a model store (config,
// weights, tokenizer). Presentation only: the conversion is ModelStore.importCheckpoint (Data module).

import ArgumentParser
import Data
import Foundation
import Model

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a GGUF file or Hugging Face folder into a Streamline model store.",
        discussion: """
            Reads a llama-architecture checkpoint (GGUF: quantised weights are dequantised to float32; \
            HF folder: config.json + model.safetensors + tokenizer.json) and writes one model store \
            with the model configuration, the weights and the tokenizer. Prints the configuration and \
            the store digest. The store records the source's sha256, not its path.

            Examples:
              streamline import models/smollm2/SmolLM2-135M-Instruct-Q4_1.gguf --out runs/smollm2.h5
              streamline import checkpoints/my-hf-model --out runs/mine.h5
            """)

    @Argument(help: "A .gguf file or a Hugging Face model folder.")
    var source: String

    @Option(help: "Where to write the model store (.h5).")
    var out: String

    func run() throws {
        let store = try ModelStore.importCheckpoint(URL(fileURLWithPath: source))
        let digest = try store.write(to: URL(fileURLWithPath: out))
        print(describe(store))
        print("store      \(out)")
        print("digest     \(digest)")
    }
}

/// The lines `import` and `eval` print about a model store.
func describe(_ store: ModelStore) -> String {
    let c = store.config
    let heads = Set(c.layers.map { "\($0.heads)/\($0.kvHeads)" }).sorted().joined(separator: ",")
    let ffn = Set(c.layers.map { String($0.ffn) }).sorted().joined(separator: ",")
    let count = c.parameterSpecs.reduce(0) { $0 + $1.shape.reduce(1, *) }
    return """
        model      \(c.architecture.rawValue), \(c.layers.count) layers, d \(c.hiddenSize), heads/kv \(heads), head dim \(c.headDim), FFN \(ffn)
                   V \(c.vocabSize), \(c.norm.rawValue) ε \(c.normEps), \(c.positions.rawValue) θ \(c.ropeTheta), context \(c.maxPositions), tied \(c.tiedEmbeddings)
        parameters \(count) (\(String(format: "%.1f", Double(count) / 1e6)) M)
        tokenizer  \(store.tokenizer.vocabSize) tokens, \(store.tokenizer.preTokenizer.rawValue), digest \(store.tokenizer.digest.prefix(16))
        source     \(store.source.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        """
}
