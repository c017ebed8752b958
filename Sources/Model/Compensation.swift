// Least-squares compensation of pruned channels (training-free). Deleting hidden channels P takes
// W_P·m_P out of every layer that reads the residual stream, where m = n ⊙ g is the output of the norm
// in front of it. On calibration text, the removed norm outputs are partly predictable from the kept
// ones; with the least-squares map A from kept to removed (over the calibration tokens, at that norm),
//   A = G_PK · (G_KK + ρI)⁻¹,   G = Σ m·mᵀ at that point,
// a reader keeps W_K·m_K + W_P·A·m_K instead of W_K·m_K alone, so its kept columns become
//   W′_K = W_K + W_P·A.
// Every reader of one point shares A (it depends on the stream, not on the reader), so one solve per
// point serves q, k and v (or gate and up). The readers: wq, wk, wv after an attention norm; w_up and
// w_gate after an MLP norm; an untied LM head after the final norm (a tied head is the input
// embedding too, which writes the stream, so it is left alone). P's own slices are untouched: `prune`
// deletes them next. Writers (wo, w_down, the embedding) have nothing to compensate: their P rows write
// channels that no longer exist.
// The norms see a shorter vector too: with keep_divisor a norm's RMS no longer counts P's energy, so its
// output grows by ‖n‖/‖n_K‖ per token. The scale of each norm whose readers were compensated is
// multiplied by the mean over the calibration tokens of ‖n_K‖/‖n‖ at that point, which undoes that on
// average (exactly when P's share of the energy is the same for every token). Not the final norm of a
// tied model: its head keeps no part of what P carried, and the larger outputs make up some of the lost
// logit magnitude (measured on a tiny model: the loss is lower without that factor). The map is exact for the dense model's stream at each point; the
// pruned model's stream drifts from it layer by layer, which later training corrects.
// ρ = ridge · mean(diag G_KK) keeps the solve well posed when some kept directions carry no energy.
// RMSNorm models without shortcut matrices only. See docs/methods.md "Least-squares compensation".

import Tensor

public enum ChannelCompensation {
    /// What `leastSquares` did, for the stage's log.
    public struct Summary: Sendable, Equatable {
        /// Per point where a norm reads the stream: the share of the removed norm outputs' energy
        /// (Σ over tokens of ‖m_P‖²) that the map from the kept ones explains on the calibration text.
        public var explained: [Double]
        /// Per point: the mean of ‖n_K‖/‖n‖ over the tokens, the factor its norm scale was multiplied by
        /// (except the final norm of a tied model, left as is).
        public var normFactors: [Double]
        /// Whether the LM head was compensated (false for tied embeddings).
        public var head: Bool
    }

    /// A copy of `model`'s parameters with every reader's kept columns compensated for deleting
    /// `channels` (see the file header), using the norm outputs of `windows` (token sequences).
    public static func leastSquares(model: Decoder, windows: [[Int32]], channels: ChannelSet,
                                    ridge: Double = 1e-3) throws(ModelError) -> (parameters: ParameterSet, summary: Summary) {
        let config = model.config
        guard config.norm == .rmsnorm else {
            throw .invalidConfig(field: "norm", reason: "is \(config.norm.rawValue): least-squares compensation reads RMSNorm outputs (LLaMA family)")
        }
        guard !config.hasShortcuts else {
            throw .invalidConfig(field: "shortcuts", reason: "a model with residual shortcut matrices has no single channel set to compensate")
        }
        guard channels.hiddenSize == config.hiddenSize else {
            throw .invalidConfig(field: "hidden_size", reason: "is \(config.hiddenSize), but the channel set was chosen for width \(channels.hiddenSize)")
        }
        let C = config.hiddenSize, points = 2 * config.layerCount + 1
        // Σ n·nᵀ per point, before the norm scales (applied per point below).
        var grams = [[Double]](repeating: [Double](repeating: 0, count: C * C), count: points)
        let product = Tensor(zeros: [C, C])
        let P = channels.pruned, K = channels.kept
        var keptNorms = [Double](repeating: 0, count: points), tokens = [Int](repeating: 0, count: points)
        for window in windows where !window.isEmpty {
            model.forEachNormalizedStream(tokens: window, B: 1, T: window.count) { point, n in
                accumulateGram(n, rows: window.count, into: &grams[point], product: product)
                for r in 0..<window.count {
                    var all = 0.0, removed = 0.0
                    for c in 0..<C { let v = Double(n.data[r * C + c]); all += v * v }
                    for c in P { let v = Double(n.data[r * C + c]); removed += v * v }
                    guard all > 0 else { continue }
                    keptNorms[point] += ((all - removed) / all).squareRoot()
                    tokens[point] += 1
                }
            }
        }
        let out = ParameterSet(model.parameters.specs)
        out.values.assign(model.parameters.values)
        var explained: [Double] = []
        for point in 0..<points {
            let (scaleName, readers) = Self.readers(of: point, config: config)
            guard !readers.isEmpty else { explained.append(0); continue }   // a tied head
            let g = model.parameters.value(scaleName).data
            // The Gram of m = n ⊙ g.
            func gm(_ i: Int, _ j: Int) -> Double { grams[point][i * C + j] * Double(g[i]) * Double(g[j]) }
            let (map, share) = leastSquaresMap(removed: P, kept: K, gram: gm, ridge: ridge)
            explained.append(share)
            for reader in readers { compensate(out.value(reader), removed: P, kept: K, map: map) }
        }
        let factors = (0..<points).map { tokens[$0] > 0 ? keptNorms[$0] / Double(tokens[$0]) : 1 }
        for point in 0..<points {
            let (scaleName, readers) = Self.readers(of: point, config: config)
            guard !readers.isEmpty else { continue }
            let scale = out.value(scaleName)
            for c in K { scale.data[c] *= Float(factors[point]) }
        }
        return (out, Summary(explained: explained, normFactors: factors, head: !config.tiedEmbeddings))
    }

    /// The norm-scale parameter of `point` and the parameters that read its output.
    static func readers(of point: Int, config: ModelConfig) -> (scale: String, readers: [String]) {
        let L = config.layerCount
        if point == 2 * L { return ("final_norm/scale", config.tiedEmbeddings ? [] : ["lm_head"]) }
        let p = "layers/\(point / 2)"
        if point % 2 == 0 { return ("\(p)/attn_norm/scale", ["\(p)/attn/wq", "\(p)/attn/wk", "\(p)/attn/wv"]) }
        return ("\(p)/mlp_norm/scale", config.activation == .swiglu ? ["\(p)/mlp/w_up", "\(p)/mlp/w_gate"] : ["\(p)/mlp/w_up"])
    }

    /// A = G_PK·(G_KK + ρI)⁻¹ as a (|P|, |K|) row-major Float matrix, and the share of tr G_PP it explains,
    /// tr(A·G_KP) / tr G_PP (0 when P carries no energy).
    static func leastSquaresMap(removed P: [Int], kept K: [Int], gram: (Int, Int) -> Double, ridge: Double) -> (map: [Float], explained: Double) {
        let k = K.count, p = P.count
        var gkk = [Double](repeating: 0, count: k * k)
        for i in 0..<k { for j in 0..<k { gkk[i * k + j] = gram(K[i], K[j]) } }
        let meanDiagonal = (0..<k).reduce(0.0) { $0 + gkk[$1 * k + $1] } / Double(max(k, 1))
        let rho = max(ridge * meanDiagonal, Double.leastNormalMagnitude)
        for i in 0..<k { gkk[i * k + i] += rho }
        // Columns of G_KP as right-hand sides: X (k, p) with (G_KK + ρI)·X = G_KP, so A = Xᵀ.
        var x = [Double](repeating: 0, count: k * p)
        for i in 0..<k { for j in 0..<p { x[i * p + j] = gram(K[i], P[j]) } }
        let gkp = x
        choleskySolve(&gkk, n: k, rhs: &x, columns: p)
        var map = [Float](repeating: 0, count: p * k)
        var captured = 0.0, total = 0.0
        for j in 0..<p {
            total += gram(P[j], P[j])
            for i in 0..<k {
                map[j * k + i] = Float(x[i * p + j])
                captured += x[i * p + j] * gkp[i * p + j]
            }
        }
        return (map, total > 0 ? captured / total : 0)
    }

    /// W_K += W_P·A for a reader W (R, C) row-major; A (|P|, |K|).
    static func compensate(_ weight: Tensor, removed P: [Int], kept K: [Int], map: [Float]) {
        let R = weight.shape[0], C = weight.shape[1], p = P.count, k = K.count
        let removed = Tensor(zeros: [R, p]), correction = Tensor(zeros: [R, k])
        for r in 0..<R { for (j, c) in P.enumerated() { removed.data[r * p + j] = weight.data[r * C + c] } }
        map.withUnsafeBufferPointer { a in
            sgemm(M: R, N: k, K: p, A: removed.data, lda: p, B: a.baseAddress!, ldb: k, C: correction.data, ldc: k)
        }
        for r in 0..<R { for (j, c) in K.enumerated() { weight.data[r * C + c] += correction.data[r * k + j] } }
    }

    /// Solves A·X = B in place for a symmetric positive definite A (n, n) and B (n, columns), both
    /// row-major: A is overwritten by its Cholesky factor, B by X. Sequential, so bytes never depend on
    /// the thread count.
    static func choleskySolve(_ a: inout [Double], n: Int, rhs b: inout [Double], columns m: Int) {
        for j in 0..<n {
            var d = a[j * n + j]
            for t in 0..<j { d -= a[j * n + t] * a[j * n + t] }
            precondition(d > 0, "choleskySolve: the matrix is not positive definite (pivot \(j))")
            let l = d.squareRoot()
            a[j * n + j] = l
            for i in (j + 1)..<max(j + 1, n) {
                var s = a[i * n + j]
                for t in 0..<j { s -= a[i * n + t] * a[j * n + t] }
                a[i * n + j] = s / l
            }
        }
        // L·Y = B, then Lᵀ·X = Y, column block by column block.
        for i in 0..<n {
            for t in 0..<i where a[i * n + t] != 0 {
                let f = a[i * n + t]
                for c in 0..<m { b[i * m + c] -= f * b[t * m + c] }
            }
            let inv = 1 / a[i * n + i]
            for c in 0..<m { b[i * m + c] *= inv }
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            for t in (i + 1)..<max(i + 1, n) where a[t * n + i] != 0 {
                let f = a[t * n + i]
                for c in 0..<m { b[i * m + c] -= f * b[t * m + c] }
            }
            let inv = 1 / a[i * n + i]
            for c in 0..<m { b[i * m + c] *= inv }
        }
    }
}
