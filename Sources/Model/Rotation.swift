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
// stock LLaMA checkpoint. The untied head costs V·C′ parameters after pruning: evaluate counts them.
// `tieHead` keeps the head tied approximately: the C×C map's plain diagonal cost ~1e7× perplexity on
// SmolLM2 (design.md), because a few "massive activation" channels of the final norm's input, mixed
// by the rotation, carry their huge values through the map's off-diagonal entries. Kept out of the
// rotation (`principalBasis(_:pinned:)`) and with the diagonal fitted by least squares on the
// calibration stream, the map loses a few percent of its energy, which recovery training then closes.
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
        try principalBasis(StreamStatistics(model: model, windows: windows), pinned: [])
    }

    /// The principal basis of `statistics.pooled` with the `pinned` channels kept as they are: each
    /// pinned channel is a basis row of its own (a unit vector), the others are the principal
    /// directions of the stream with the pinned coordinates left out. Rows sorted by mean square,
    /// largest first, as `principalBasis(model:windows:)`.
    public static func principalBasis(_ statistics: StreamStatistics, pinned: [Int]) throws(SymmetricEigenError) -> (basis: [Double], variances: [Double]) {
        let C = statistics.C, gram = statistics.pooled
        let pinnedSet = Set(pinned), free = (0..<C).filter { !pinnedSet.contains($0) }
        let F = free.count
        var sub = [Double](repeating: 0, count: F * F)
        for (a, i) in free.enumerated() { for (b, j) in free.enumerated() { sub[a * F + b] = gram[i * C + j] } }
        let (values, vectors) = try symmetricEigen(sub, n: F)
        // (variance, row) pairs: the free directions embedded back in C coordinates, then the pins.
        var rows: [(Double, [Double])] = (0..<F).map { r in
            var row = [Double](repeating: 0, count: C)
            for (a, i) in free.enumerated() { row[i] = vectors[r * F + a] }
            return (values[r], row)
        }
        for p in pinned.sorted() {
            var row = [Double](repeating: 0, count: C)
            row[p] = 1
            rows.append((gram[p * C + p], row))
        }
        // symmetricEigen returns its values largest first; a stable sort keeps ties in that order.
        let sorted = rows.enumerated().sorted { ($0.element.0, -$0.offset) > ($1.element.0, -$1.offset) }.map(\.element)
        return (sorted.flatMap(\.1), sorted.map(\.0))
    }

    /// The channels whose mean square at the final norm's input (normalised, so the mean over
    /// channels is about 1) exceeds `threshold`: the few "massive activation" channels a tied head
    /// needs kept out of the rotation (`tieHead`).
    public static func massiveChannels(_ statistics: StreamStatistics, threshold: Double) -> [Int] {
        (0..<statistics.C).filter { statistics.final[$0 * statistics.C + $0] > threshold }
    }

    /// Ties the head of a model `rotate` untied, approximately. `rotated` came from `rotate` with
    /// `basis` (rows: new channel directions) applied to a model with a tied head and final-norm scale
    /// `finalScale` (g, C). Exactly, logits = n′·M·E′ᵀ with n′ the rotated final-norm output, E′ the
    /// rotated embedding and M = basis·diag(g)·basisᵀ (C×C); a stock LLaMA has room for a diagonal
    /// there only. The diagonal s is fitted by least squares on the calibration stream at the final
    /// norm: s_j = (G′M)_jj / G′_jj with G′ = basis·G_final·basisᵀ, so each channel's scale absorbs
    /// what its correlated neighbours carried. The result has the rotated embedding as its tied head
    /// and s as its final-norm scale. Also returns the share of the output map's energy on the
    /// calibration stream the diagonal misses, E‖n′(M − S)‖² / E‖n′M‖² (0 when g is uniform).
    public static func tieHead(config: ModelConfig, rotated: ParameterSet, basis: [Double], finalScale g: Tensor,
                               statistics: StreamStatistics) -> (ModelConfig, ParameterSet, missed: Double) {
        let C = config.hiddenSize
        precondition(basis.count == C * C && statistics.C == C && g.count == C, "tieHead: shapes disagree")
        // M = B·diag(g)·Bᵀ and G′ = B·G_final·Bᵀ (B: basis rows), in Double.
        var m = [Double](repeating: 0, count: C * C), gp = [Double](repeating: 0, count: C * C)
        var bg = [Double](repeating: 0, count: C * C)  // B·G_final
        for i in 0..<C {
            for k in 0..<C {
                let b = basis[i * C + k]
                if b == 0 { continue }
                for j in 0..<C { bg[i * C + j] += b * statistics.final[k * C + j] }
            }
        }
        for i in 0..<C {
            for j in i..<C {
                var mij = 0.0, gij = 0.0
                for k in 0..<C {
                    mij += basis[i * C + k] * Double(g.data[k]) * basis[j * C + k]
                    gij += bg[i * C + k] * basis[j * C + k]
                }
                m[i * C + j] = mij; m[j * C + i] = mij
                gp[i * C + j] = gij; gp[j * C + i] = gij
            }
        }
        var s = [Double](repeating: 0, count: C)
        for j in 0..<C {
            var gm = 0.0
            for k in 0..<C { gm += gp[j * C + k] * m[k * C + j] }
            s[j] = gp[j * C + j] > 0 ? gm / gp[j * C + j] : m[j * C + j]
        }
        // tr(X·G′·X) for symmetric X = M and X = M − S.
        func energy(_ x: [Double]) -> Double {
            var total = 0.0
            for i in 0..<C {
                for j in 0..<C {
                    var xg = 0.0
                    for k in 0..<C { xg += x[i * C + k] * gp[k * C + j] }
                    total += xg * x[j * C + i]
                }
            }
            return total
        }
        var residual = m
        for j in 0..<C { residual[j * C + j] -= s[j] }
        let full = energy(m), missed = full > 0 ? energy(residual) / full : 0

        var tied = config
        tied.tiedEmbeddings = true
        let out = ParameterSet(tied.parameterSpecs)
        for spec in tied.parameterSpecs {
            out.value(spec.name).data.update(from: rotated.value(spec.name).data, count: spec.count)
        }
        for j in 0..<C { out.value("final_norm/scale").data[j] = Float(s[j]) }
        return (tied, out, missed)
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

/// Second moments of a model's normalised residual stream n = x / √(Σx²/D + ε) on calibration
/// windows, as C×C row-major Double matrices: `pooled` over every (token, norm input) pair, what the
/// principal basis diagonalises; `final` over tokens at the final norm's input alone.
public struct StreamStatistics: Sendable {
    public let C: Int
    public var pooled: [Double]
    public var final: [Double]

    public init(model: Decoder, windows: [[Int32]]) {
        let C = model.config.hiddenSize, finalPoint = 2 * model.config.layerCount
        var pooled = [Double](repeating: 0, count: C * C), final = pooled
        var pooledCount = 0, finalCount = 0
        let product = Tensor(zeros: [C, C])
        for window in windows {
            // Summed per window, then across windows: the order the basis has always been computed in,
            // so the untied basis keeps its bits.
            var windowGram = [Double](repeating: 0, count: C * C)
            model.forEachNormalizedStream(tokens: window, B: 1, T: window.count) { point, n in
                accumulateGram(n, rows: window.count, into: &windowGram, product: product)
                pooledCount += window.count
                if point == finalPoint {
                    for i in 0..<(C * C) { final[i] += Double(product.data[i]) }
                    finalCount += window.count
                }
            }
            for i in 0..<(C * C) { pooled[i] += windowGram[i] }
        }
        let pooledScale = 1 / Double(max(pooledCount, 1)), finalScale = 1 / Double(max(finalCount, 1))
        self.C = C
        self.pooled = pooled.map { $0 * pooledScale }
        self.final = final.map { $0 * finalScale }
    }
}

extension StreamStatistics {
    /// The second moments of the token embedding's rows, each scaled to ‖e‖² = C (as a normalised
    /// stream row), uniformly over the vocabulary: (C, C) row-major. Rows of zeros are skipped.
    /// Every token counts once here, where the calibration stream counts tokens by frequency.
    public static func vocabularyGram(embedding: Tensor) -> [Double] {
        let V = embedding.shape[0], C = embedding.shape[1], chunk = 4096
        var gram = [Double](repeating: 0, count: C * C)
        let rows = Tensor(zeros: [chunk, C]), product = Tensor(zeros: [C, C])
        var counted = 0
        for start in stride(from: 0, to: V, by: chunk) {
            var filled = 0
            for v in start..<min(start + chunk, V) {
                let e = embedding.data + v * C
                var square = 0.0
                for c in 0..<C { square += Double(e[c]) * Double(e[c]) }
                guard square > 0 else { continue }
                let s = Float((Double(C) / square).squareRoot())
                for c in 0..<C { rows.data[filled * C + c] = e[c] * s }
                filled += 1
            }
            guard filled > 0 else { continue }
            accumulateGram(rows, rows: filled, into: &gram, product: product)
            counted += filled
        }
        let scale = 1 / Double(max(counted, 1))
        return gram.map { $0 * scale }
    }

    /// These statistics with `share` of the pooled second moments taken from the vocabulary's
    /// (`vocabularyGram`): pooled ← (1 − share)·pooled + share·vocabulary. The basis then keeps the
    /// directions rare tokens' embeddings use, which the calibration text, counting tokens by
    /// frequency, weighs little. `final` is unchanged.
    public func blending(vocabulary: [Double], share: Double) -> StreamStatistics {
        precondition(vocabulary.count == C * C, "StreamStatistics.blending: vocabulary Gram is not C×C")
        var out = self
        for i in 0..<(C * C) { out.pooled[i] = (1 - share) * pooled[i] + share * vocabulary[i] }
        return out
    }
}

extension ResidualRotation {
    /// The share of `gram`'s energy (trace) in the last `count` rows of `basis` (C×C, rows orthonormal).
    public static func energyShare(of gram: [Double], inLast count: Int, of basis: [Double]) -> Double {
        let C = Int(Double(gram.count).squareRoot())
        var total = 0.0, tail = 0.0
        for j in 0..<C {
            let b = basis[(j * C)..<(j * C + C)]
            var quadratic = 0.0
            for (r, br) in b.enumerated() where br != 0 {
                var row = 0.0
                for (c, bc) in b.enumerated() { row += gram[r * C + c] * bc }
                quadratic += br * row
            }
            total += quadratic
            if j >= C - count { tail += quadratic }
        }
        return total > 0 ? tail / total : 0
    }
}

extension Decoder {
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
