// `streamline export --model STORE --format hf --out DIR [--dtype bfloat16]`: a model store -> a Hugging
// Face folder (config.json, generation_config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json) that transformers >= 4.45 loads. Presentation only: the
// conversion, including how a pruned model's widths and norm divisor are expressed, is HFExport.

import ArgumentParser
import Data
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model store as a Hugging Face folder (config, weights, tokenizer files) for transformers >= 4.45.",
        discussion: """
            LLaMA-family models only. A pruned model keeps its narrower hidden width; head_dim is \
            written explicitly, and when the norms divide by the original width D rather than the \
            stored width d', each norm scale is multiplied by sqrt(D/d') and rms_norm_eps by D/d', \
            which computes exactly what the store computes. The tokenizer files carry the special \
            tokens, BOS setting and chat template the source checkpoint recorded; what the store does \
            not record is printed as a note.

            Example:
              streamline export --model runs/pruned.h5 --format hf --dtype bfloat16 --out exported/pruned
            """)

    /// Output formats (one for now; the option keeps the command line stable as more arrive).
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case hf
    }

    @Option(help: "The model store to export (.h5).")
    var model: String

    @Option(help: "Output format.")
    var format: Format = .hf

    @Option(help: "Float type of model.safetensors (rounded to nearest even).")
    var dtype: SafetensorsFloat = .float32

    @Option(help: "The folder to write (created if missing).")
    var out: String

    func run() throws {
        let store = try ModelStore(store: URL(fileURLWithPath: model), verify: true)
        let folder = URL(fileURLWithPath: out)
        let files = try HFExport.write(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer,
                                       dtype: dtype, to: folder)
        print(describe(store))
        print("exported   \(folder.path) (\(try files.files().map(\.name).joined(separator: ", ")); \(dtype.rawValue))")
        for note in files.notes { print("note       \(note)") }
    }
}

extension SafetensorsFloat: ExpressibleByArgument {}
