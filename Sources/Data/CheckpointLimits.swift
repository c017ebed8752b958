// What every importer (GGUF, Hugging Face) checks an untrusted checkpoint against before computing or
// allocating anything from it: one table of sane size ranges, and the refusal of non-finite weights.
// A header is attacker-controlled: a zero head count is divided by, a negative layer count allocated.

/// Sane ranges for the sizes a checkpoint declares (far above any model Streamline runs on a CPU).
enum CheckpointLimits {
    /// C, the hidden width.
    static let hidden = 1...(1 << 16)
    /// NH and NKV, head counts.
    static let heads = 1...1024
    /// HD, the per-head width.
    static let headDim = 1...(1 << 12)
    /// L, the layer count.
    static let layers = 1...1024
    /// F, the MLP width.
    static let ffn = 1...(1 << 20)
    /// The context length (RoPE limit or learned position table rows).
    static let context = 1...(1 << 24)
    /// V, the vocabulary size (also caps token ids in tokenizer files).
    static let vocab = 1...(1 << 22)

    /// Throws `malformed` naming `tensor` when one of its `count` values is NaN or infinite: such
    /// weights would pass import and only show up later as `perplexity nan`.
    static func requireFinite(_ values: UnsafePointer<Float>, count: Int, format: String, path: String, tensor: String) throws {
        guard let bad = (0..<count).first(where: { !values[$0].isFinite }) else { return }
        throw DataError.malformed(format: format, path: path, at: tensor,
                                  detail: "weight \(bad) is \(values[bad]); Streamline refuses non-finite weights (re-export the checkpoint)")
    }
}
