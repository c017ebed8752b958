// Rotating the residual stream (computational invariance, the idea behind SliceGPT; issue 10): an
// RMSNorm that divides by a fixed D commutes with any orthogonal Q, since ‖x·Q‖ = ‖x‖. Fold every
// norm's scale into the layers that read it, then rotate every read and write of the stream by one Q
// and the model computes exactly the same function, in a basis of our choosing. With Q the principal
// directions of the normalised stream (pooled over every norm input of calibration text, largest
// variance first), the last hidden channels carry the least energy, so pruning them costs least.
//
// With x' = x·Q (rows), the parameters become (g: the scale of the norm that reads the stream there):
//   embed/tokens   E' = E·Q                      (V, C)
//   readers        W' = W·diag(g)·Q              wq, wk, wv (after attn_norm); w_gate, w_up (after mlp_norm)
//   writers        W' = Qᵀ·W,  b' = Qᵀ·b         wo, w_down (and their biases)
//   lm_head        H' = H·diag(g_final)·Q        (V, C); H = E for a tied model, which comes out UNTIED
//   norm scales    1
// The head is untied because E·Q (the embedding's rotation) and E·diag(g_final)·Q differ unless
// g_final is uniform; the exact alternative, a C×C matrix before a tied head, is not expressible in a
// stock LLaMA checkpoint, and replacing it by its diagonal costs ~1e7× perplexity on SmolLM2
// (design.md). The untied head costs V·C′ parameters after pruning: evaluate counts them.
// LayerNorm models would need their stream centred first: not supported, refused.
// `changeBasis` is the general form SliceGPT uses (Slicing.swift): a basis per point where a norm reads
// the stream, fewer rows than C to slice, and a matrix on each residual connection between bases.
// Not here: choosing which channels to drop (Training/ChannelSelection), deleting them (ChannelSurgery).

import Tensor

public enum ResidualRotation {
    /// The principal directions of the normalised residual stream of `model` over calibration
    /// `windows` (each a sequence of token ids), as rows of a C×C orthonormal basis, largest mean
    /// square first, with those mean squares per (token, norm input) pair (they sum to about D, since
    /// every normalised row has ‖n‖² ≈ D).
    public static func principalBasis(model: Decoder, windows: [[Int32]]) throws(SymmetricEigenError) -> (basis: [Double], variances: [Double]) {
        let C = model.config.hiddenSize
        var gram = [Double](repeating: 0, count: C * C), count = 0
        for window in windows {
            let (g, n) = model.normalizedStreamGram(tokens: window, B: 1, T: window.count)
            for i in 0..<(C * C) { gram[i] += g[i] }
            count += n
        }
        let scale = 1 / Double(max(count, 1))
        let (values, vectors) = try symmetricEigen(gram.map { $0 * scale }, n: C)
        return (vectors, values)
    }

    /// A rotated copy of `parameters` (see the file header): same hidden width, unit norm scales,
    /// untied head. `basis` holds the new channel directions as rows (C×C, row-major, orthonormal),
    /// so new channel j = x·basis[j] (Q = basisᵀ).
    public static func rotate(config: ModelConfig, parameters: ParameterSet, basis: [Double]) throws(ModelError) -> (ModelConfig, ParameterSet) {
        let C = config.hiddenSize
        guard basis.count == C * C else {
            throw .invalidConfig(field: "basis", reason: "has \(basis.count) values, a \(C)×\(C) rotation needs \(C * C)")
        }
        let q = Tensor(shape: [C, C], values: basis.map(Float.init))
        return try changeBasis(config: config, parameters: parameters,
                               bases: Array(repeating: q, count: 2 * config.layerCount + 1), shortcuts: false)
    }

    /// `parameters` with the residual stream at each of the 2L + 1 points where a norm reads it carried
    /// in a basis of its own: point 2l is layer l's attention input (2·0: the embeddings), 2l + 1 its
    /// MLP input, 2L the final norm's input. `bases[p]` is (K, C) with orthonormal rows, new channel
    /// j = x·bases[p][j]; K ≤ C becomes the hidden width (K < C drops the stream outside the rows'
    /// span). Norm scales are folded (1 afterwards), the head is untied, D (normDivisor) is kept.
    /// Without `shortcuts` every basis must be one square rotation (the model is then exact). With
    /// them, each residual connection from point a to point b carries S = bases[b]·bases[a]ᵀ (K, K),
    /// SliceGPT's Q_aᵀQ_b as an (out, in) matrix. RMSNorm and RoPE (LLaMA family) only.
    public static func changeBasis(config: ModelConfig, parameters: ParameterSet, bases: [Tensor],
                                   shortcuts: Bool) throws(ModelError) -> (ModelConfig, ParameterSet) {
        guard config.norm == .rmsnorm else {
            throw .invalidConfig(field: "norm", reason: "is \(config.norm.rawValue): rotating the residual stream needs RMSNorm (LLaMA family); a LayerNorm stream would have to be centred first, which Streamline does not do")
        }
        guard config.positions == .rope else {
            throw .invalidConfig(field: "positions", reason: "learned position embeddings are not rotated; only RoPE (LLaMA family) models can be")
        }
        guard !config.hasShortcuts else {
            throw .invalidConfig(field: "shortcuts", reason: "the model already carries residual shortcut matrices (a SliceGPT model); rotate or slice the model it was made from")
        }
        let C = config.hiddenSize, V = config.vocabSize, K = bases.first?.shape[0] ?? 0
        precondition(bases.count == 2 * config.layerCount + 1 && bases.allSatisfy { $0.shape == [K, C] } && K > 0 && K <= C,
                     "changeBasis: needs 2L + 1 bases of (K, C) with 0 < K <= C")
        precondition(shortcuts || (K == C && bases.allSatisfy { $0.storage === bases[0].storage }), "changeBasis: without shortcuts one square basis serves every point")
        var newConfig = config
        newConfig.hiddenSize = K
        newConfig.tiedEmbeddings = false
        newConfig.shortcuts = shortcuts ? true : nil
        let out = ParameterSet(newConfig.parameterSpecs)
        for spec in newConfig.parameterSpecs where parameters.contains(spec.name) && parameters.value(spec.name).shape == spec.shape {
            out.value(spec.name).data.update(from: parameters.value(spec.name).data, count: spec.count)
        }

        /// source · diag(scale) · basisᵀ for a (rows, C) reader, written to `target` (rows, K).
        func rotateReader(_ source: Tensor, rows: Int, scale: Tensor, basis: Tensor, into target: Tensor) {
            let scaled = Tensor(zeros: [rows, C])
            for r in 0..<rows {
                for c in 0..<C { scaled.data[r * C + c] = source.data[r * C + c] * scale.data[c] }
            }
            // (rows, C) · basisᵀ: column j of the product is the reader's weight on new channel j.
            sgemm(transB: true, M: rows, N: K, K: C, A: scaled.data, lda: C, B: basis.data, ldb: C, C: target.data, ldc: K)
        }
        /// basis · W for a (C, columns) writer, written as (K, columns).
        func rotateWriter(_ name: String, columns: Int, basis: Tensor) {
            sgemm(M: K, N: columns, K: C, A: basis.data, lda: C, B: parameters.value(name).data, ldb: columns,
                  C: out.value(name).data, ldc: columns)
        }
        /// S = bases[to]·bases[from]ᵀ (K, K): the stream of point `from` re-expressed at point `to`.
        func shortcut(_ name: String, from: Int, to: Int) {
            sgemm(transB: true, M: K, N: K, K: C, A: bases[to].data, lda: C, B: bases[from].data, ldb: C, C: out.value(name).data, ldc: K)
        }
        let ones = Tensor(shape: [C], values: [Float](repeating: 1, count: C))
        let embedding = parameters.value("embed/tokens")
        rotateReader(embedding, rows: V, scale: ones, basis: bases[0], into: out.value("embed/tokens"))
        for (l, shape) in config.layers.enumerated() {
            let p = "layers/\(l)", attnIn = bases[2 * l], mlpIn = bases[2 * l + 1], layerOut = bases[2 * l + 2]
            let attnScale = parameters.value("\(p)/attn_norm/scale"), mlpScale = parameters.value("\(p)/mlp_norm/scale")
            let qRows = shape.heads * config.headDim, kvRows = shape.kvHeads * config.headDim
            for (name, rows) in [("attn/wq", qRows), ("attn/wk", kvRows), ("attn/wv", kvRows)] {
                rotateReader(parameters.value("\(p)/\(name)"), rows: rows, scale: attnScale, basis: attnIn, into: out.value("\(p)/\(name)"))
            }
            var mlpReaders = [("mlp/w_up", shape.ffn)]
            if config.activation == .swiglu { mlpReaders.append(("mlp/w_gate", shape.ffn)) }
            for (name, rows) in mlpReaders {
                rotateReader(parameters.value("\(p)/\(name)"), rows: rows, scale: mlpScale, basis: mlpIn, into: out.value("\(p)/\(name)"))
            }
            rotateWriter("\(p)/attn/wo", columns: qRows, basis: mlpIn)
            rotateWriter("\(p)/mlp/w_down", columns: shape.ffn, basis: layerOut)
            if config.bias {
                rotateWriter("\(p)/attn/bo", columns: 1, basis: mlpIn)
                rotateWriter("\(p)/mlp/b_down", columns: 1, basis: layerOut)
            }
            if shortcuts {
                shortcut("\(p)/attn/shortcut", from: 2 * l, to: 2 * l + 1)
                shortcut("\(p)/mlp/shortcut", from: 2 * l + 1, to: 2 * l + 2)
            }
            out.value("\(p)/attn_norm/scale").data.update(repeating: 1, count: K)
            out.value("\(p)/mlp_norm/scale").data.update(repeating: 1, count: K)
        }
        let head = config.tiedEmbeddings ? embedding : parameters.value("lm_head")
        rotateReader(head, rows: V, scale: parameters.value("final_norm/scale"), basis: bases[2 * config.layerCount], into: out.value("lm_head"))
        out.value("final_norm/scale").data.update(repeating: 1, count: K)
        return (newConfig, out)
    }
}

extension Decoder {
    /// Σ over rows and over the 2L + 1 points where a norm reads the residual stream (each layer's
    /// attention and MLP norms, then the final norm) of n·nᵀ, where n = x / √(Σx²/D + ε) is the norm's
    /// output before its scale: a C×C row-major Double matrix, and the number of (row, point) pairs.
    /// Runs the training forward without targets (its arena keeps every norm input and 1/rms).
    /// - tokens: (B, T) ids, row-major
    public func normalizedStreamGram(tokens: [Int32], B: Int, T: Int) -> (gram: [Double], count: Int) {
        let C = config.hiddenSize
        var gram = [Double](repeating: 0, count: C * C), count = 0
        let product = Tensor(zeros: [C, C])
        forEachNormalizedStream(tokens: tokens, B: B, T: T) { _, n in
            accumulateGram(n, rows: B * T, into: &gram, product: product)
            count += B * T
        }
        return (gram, count)
    }

    /// Runs the training forward without targets (its arena keeps every norm input and 1/rms) and shows
    /// `body` each of the 2L + 1 points where a norm reads the residual stream, in order (2l: layer l's
    /// attention norm, 2l + 1: its MLP norm, 2L: the final norm), as n = x / √(Σx²/D + ε) before the
    /// norm's scale: (B·T, C), valid during the call only.
    func forEachNormalizedStream(tokens: [Int32], B: Int, T: Int, _ body: (_ point: Int, _ n: Tensor) -> Void) {
        forward(tokens: tokens, targets: nil, B: B, T: T)
        guard let arena = training else { preconditionFailure("Decoder.forEachNormalizedStream: no training arena after a forward") }
        let N = B * T, C = config.hiddenSize
        let scaled = Tensor(zeros: [N, C])
        func show(_ point: Int, _ x: Tensor, rstd: Tensor) {
            for r in 0..<N {
                let s = rstd.data[r]
                for c in 0..<C { scaled.data[r * C + c] = x.data[r * C + c] * s }
            }
            body(point, scaled)
        }
        for (l, a) in arena.layers.enumerated() {
            show(2 * l, a.input, rstd: a.attnNorm.rstd)
            show(2 * l + 1, a.mid, rstd: a.mlpNorm.rstd)
        }
        show(2 * arena.layers.count, arena.top, rstd: arena.finalNorm.rstd)
    }
}

/// gram += xᵀ·x in Double, x (rows, C) float32 row-major, through one sgemm into `product` (C, C).
func accumulateGram(_ x: Tensor, rows: Int, into gram: inout [Double], product: Tensor) {
    let C = product.shape[0]
    sgemm(transA: true, M: C, N: C, K: rows, A: x.data, lda: C, B: x.data, ldb: C, C: product.data, ldc: C)
    for i in 0..<(C * C) { gram[i] += Double(product.data[i]) }
}
