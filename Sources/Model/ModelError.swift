// The errors the Model module reports: configs that cannot run, parameter sets that do not match a
// config, LoRA requests that name nothing, and perplexity protocols a model and stream cannot meet.
// Shape mismatches inside the model's own kernels are programmer errors and stay preconditions.

/// What went wrong building or adapting a decoder.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// The config cannot describe a runnable decoder (`field` names the offending setting).
    case invalidConfig(field: String, reason: String)
    /// The parameter set's layout differs from `config.parameterSpecs` at `name`.
    case parameterMismatch(name: String, expected: [Int]?, found: [Int]?)
    /// A LoRA target short name is not one of the decoder's linear layers.
    case unknownLoRATarget(String)
    /// A LoRA request that cannot be honoured (rank, alpha, adapters already present…).
    case invalidLoRA(String)
    /// Perplexity with bos asked of a tokenizer without one (`bosID` nil).
    case perplexityWithoutBOS
    /// A perplexity window (with its bos) longer than the model's context.
    case perplexityWindowTooLong(positions: Int, context: Int)
    /// A token stream too short to score a single token; `text` is its digest.
    case perplexityNothingToScore(text: String, tokens: Int)

    public var description: String {
        switch self {
        case let .invalidConfig(field, reason):
            return "model config field '\(field)': \(reason). Fix the config (or the importer that wrote it)."
        case let .parameterMismatch(name, expected, found):
            let e = expected.map { "\($0)" } ?? "absent", f = found.map { "\($0)" } ?? "absent"
            return "parameter '\(name)': expected shape \(e), found \(f). Build the parameter set from config.parameterSpecs "
                + "(or re-import the checkpoint with the matching config)."
        case let .unknownLoRATarget(name):
            return "LoRA target '\(name)' is not a linear layer of this decoder. Use some of \(Decoder.loraTargetNames)."
        case let .invalidLoRA(reason):
            return "LoRA: \(reason). Check the LoRA settings (rank > 0, targets present, merge or drop old adapters first)."
        // The three perplexity messages read as they did when Data threw them (DataError.unsupportedTokenizer, .notEnoughText).
        case .perplexityWithoutBOS:
            return "bos: tokenizer not supported (the tokenizer has no bos token; evaluate without --bos). Streamline reads byte-level BPE (GGUF "
                + "tokenizer.ggml.model = gpt2, or tokenizer.json with a BPE model and a ByteLevel pre-tokenizer)."
        case let .perplexityWindowTooLong(positions, context):
            return "window: a window of \(positions) positions exceeds the model's context \(context); use a smaller --window. "
                + "Use a larger corpus or ask for fewer or shorter windows."
        case let .perplexityNothingToScore(text, tokens):
            return "\(text): \(tokens) tokens leave nothing to score. Use a larger corpus or ask for fewer or shorter windows."
        }
    }
}
