// The Data module's one error type: everything a checkpoint, tokenizer or text file can get wrong,
// with the file and the place inside it, and what to do next. Programmer errors are preconditions.

/// A problem reading or writing a checkpoint, tokenizer or corpus.
public enum DataError: Error, Sendable, Equatable {
    /// The file could not be opened, mapped or read.
    case unreadable(path: String, detail: String)
    /// The file could not be written.
    case unwritable(path: String, detail: String)
    /// The bytes do not follow the format (`format` e.g. "GGUF"; `at` says where: offset, key or tensor).
    case malformed(format: String, path: String, at: String, detail: String)
    /// A GGUF tensor is stored in a quantisation this reader does not dequantise.
    case unsupportedTensorType(path: String, tensor: String, type: String)
    /// A metadata key the importer needs is absent or of the wrong type.
    case missingKey(path: String, key: String, expected: String)
    /// A tensor the importer needs is absent.
    case missingTensor(path: String, name: String)
    /// A tensor has a shape other than the config implies.
    case shapeMismatch(path: String, tensor: String, expected: [Int], found: [Int])
    /// The checkpoint's architecture (or one of its options) is not one Streamline runs.
    case unsupportedArchitecture(path: String, architecture: String, detail: String)
    /// The tokenizer description is not a byte-level BPE this module implements.
    case unsupportedTokenizer(path: String, detail: String)
    /// A token id outside the vocabulary was given to `decode`.
    case tokenOutOfRange(id: Int, vocabSize: Int)
    /// A JSONL line is not an object with string field `field`.
    case jsonlField(path: String, line: Int, field: String)
    /// A corpus produced no documents or too few tokens for what was asked.
    case notEnoughText(path: String, detail: String)
    /// A model config cannot be expressed in the target format (e.g. per-layer widths in HF LLaMA).
    case notExportable(detail: String)
    /// The model carries matrices on its residual connections (SliceGPT), which `format` has no place for.
    case shortcutsNotExportable(format: String)
    /// A token dataset was made by the tokenizer of digest `dataset`, not by the model's (`model`).
    case tokenizerMismatch(dataset: String, model: String)
}

extension DataError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unreadable(let path, let detail):
            return "Cannot read \(path): \(detail). Check the path and permissions "
                + "(fetched files: run make models / make testdata / make corpora)."
        case .unwritable(let path, let detail):
            return "Cannot write \(path): \(detail). Check the folder exists, is writable and has free space."
        case .malformed(let format, let path, let at, let detail):
            return "\(path) is not a valid \(format) file (at \(at): \(detail)). "
                + "The file is probably truncated or of another format; fetch or export it again."
        case .unsupportedTensorType(let path, let tensor, let type):
            return "\(path): tensor '\(tensor)' is stored as \(type), which Streamline does not dequantise "
                + "(F32, F16, BF16, Q8_0, Q4_0, Q4_1 are supported). Re-quantise the checkpoint to one of those."
        case .missingKey(let path, let key, let expected):
            return "\(path): metadata key '\(key)' is missing or is not \(expected). "
                + "The checkpoint is incomplete or not of the architecture it claims."
        case .missingTensor(let path, let name):
            return "\(path): tensor '\(name)' is missing. "
                + "The checkpoint is incomplete or uses naming Streamline does not map."
        case .shapeMismatch(let path, let tensor, let expected, let found):
            return "\(path): tensor '\(tensor)' has shape \(found) but the config implies \(expected). "
                + "The config and the weights disagree; check the checkpoint."
        case .unsupportedArchitecture(let path, let architecture, let detail):
            return "\(path): architecture '\(architecture)' is not supported (\(detail)). Supported: GGUF llama; "
                + "Hugging Face LlamaForCausalLM, GPT2LMHeadModel, OPTForCausalLM (pre-norm)."
        case .unsupportedTokenizer(let path, let detail):
            return "\(path): tokenizer not supported (\(detail)). Streamline reads byte-level BPE (GGUF "
                + "tokenizer.ggml.model = gpt2, or tokenizer.json with a BPE model and a ByteLevel pre-tokenizer)."
        case .tokenOutOfRange(let id, let vocabSize):
            return "Token id \(id) is outside the vocabulary (size \(vocabSize)). "
                + "The ids come from another tokenizer; re-tokenize the text with this one."
        case .jsonlField(let path, let line, let field):
            return "\(path):\(line): not a JSON object with a string field '\(field)'. "
                + "Fix the line or pass the right field name."
        case .notEnoughText(let path, let detail):
            return "\(path): \(detail). Use a larger corpus or ask for fewer or shorter windows."
        case .notExportable(let detail):
            return "Cannot export: \(detail). Export a model whose layers all have the same widths, "
                + "or keep using the Streamline store."
        case .shortcutsNotExportable(let format):
            return "Cannot export to \(format): this model comes from slicegpt and carries a matrix on every residual connection "
                + "(x·Sᵀ + block instead of x + block), which a LLaMA checkpoint has no tensor for. Evaluate, generate and "
                + "finetune it with Streamline from its store; for an exportable model of the same width use rotate, select (last) and prune."
        case .tokenizerMismatch(let dataset, let model):
            return "The dataset was tokenized by \(dataset.prefix(16)), the model uses \(model.prefix(16)); build the dataset from this model."
        }
    }
}
