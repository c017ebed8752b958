// `streamline export --model STORE --format hf --out DIR [--dtype bfloat16]`: a model store -> a Hugging
// Face folder (config.json, generation_config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json) that transformers >= 4.45 loads; `--format gguf --out
// FILE.gguf [--dtype q8_0]`: one GGUF file for llama.cpp. Presentation only: the conversions, including
// how a pruned model's widths and norm divisor are expressed, are HFExport and GGUFExport.

import ArgumentParser
import Data
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model store as a Hugging Face folder (transformers >= 4.45) or a GGUF file (llama.cpp).",
        discussion: """
            LLaMA-family models only. A pruned model keeps its narrower hidden width; head_dim is \
            written explicitly, and when the norms divide by the original width D rather than the \
            stored width d', each norm scale is multiplied by sqrt(D/d') and rms_norm_eps by D/d', \
            which computes exactly what the store computes. The tokenizer files carry the special \
            tokens, BOS setting and chat template the source checkpoint recorded; what the store does \
            not record is printed as a note.

            GGUF (architecture llama) folds the norm divisor the same way, writes \
            llama.attention.key_length when the width is not heads x head_dim, and permutes Q/K rows \
            to llama.cpp's RoPE order; norm scales stay F32.

            Examples:
              streamline export --model runs/pruned.h5 --format hf --dtype bfloat16 --out exported/pruned
              streamline export --model runs/pruned.h5 --format gguf --dtype q8_0 --out exported/pruned.gguf
            """)

    /// Output formats.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case hf, gguf
    }

    @Option(help: "The model store to export (.h5).")
    var model: String

    @Option(help: "Output format.")
    var format: Format = .hf

    @Option(help: "Weight type: hf float32|bfloat16|float16 (rounded to nearest even); gguf float32|float16|q8_0.")
    var dtype: String = "float32"

    @Option(help: "The folder (hf) or file (gguf) to write.")
    var out: String

    func validate() throws {
        let choices = format == .hf ? SafetensorsFloat.allCases.map(\.rawValue) : GGUFFloat.allCases.map(\.rawValue)
        guard choices.contains(dtype) else {
            throw ValidationError("--dtype \(dtype) is not a \(format.rawValue) type: use one of \(choices.joined(separator: ", ")).")
        }
    }

    func run() throws {
        let store = try ModelStore(store: URL(fileURLWithPath: model), verify: true)
        guard format == .hf else { return try exportGGUF(store) }
        let dtype = SafetensorsFloat(rawValue: dtype)!
        let folder = URL(fileURLWithPath: out)
        let files = try HFExport.write(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer,
                                       dtype: dtype, to: folder)
        let card = try ModelCard.forStore(URL(fileURLWithPath: model), dtype: dtype.rawValue)
        try Data(card.markdown.utf8).write(to: folder.appendingPathComponent("README.md"), options: .atomic)
        print(describe(store))
        print("exported   \(folder.path) (\(try files.files().map(\.name).joined(separator: ", ")), README.md; \(dtype.rawValue))")
        for note in files.notes { print("note       \(note)") }
    }

    func exportGGUF(_ store: ModelStore) throws {
        let url = URL(fileURLWithPath: out)
        try GGUFExport.write(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer,
                             dtype: GGUFFloat(rawValue: dtype)!, to: url)
        print(describe(store))
        print("exported   \(url.path) (GGUF v3, llama; \(dtype))")
    }
}
