// `streamline export --model STORE --format hf --out DIR`: a model store -> a Hugging Face folder
// (config.json, model.safetensors, tokenizer.json) that transformers loads. Presentation only: the
// conversion, including how a pruned model's widths and norm divisor are expressed, is HFExport.

import ArgumentParser
import Data
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model store as a Hugging Face folder (config.json, model.safetensors, tokenizer.json).",
        discussion: """
            LLaMA-family models only. A pruned model keeps its narrower hidden width; head_dim is \
            written explicitly, and when the norms divide by the original width D rather than the \
            stored width d', each norm scale is multiplied by sqrt(D/d') and rms_norm_eps by D/d', \
            which computes exactly what the store computes.

            Example:
              streamline export --model runs/pruned.h5 --format hf --out exported/pruned
            """)

    /// Output formats (one for now; the option keeps the command line stable as more arrive).
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case hf
    }

    @Option(help: "The model store to export (.h5).")
    var model: String

    @Option(help: "Output format.")
    var format: Format = .hf

    @Option(help: "The folder to write (created if missing).")
    var out: String

    func run() throws {
        let store = try ModelStore(store: URL(fileURLWithPath: model), verify: true)
        let folder = URL(fileURLWithPath: out)
        try HFExport.write(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer, to: folder)
        print(describe(store))
        print("exported   \(folder.path) (config.json, model.safetensors, tokenizer.json)")
    }
}
