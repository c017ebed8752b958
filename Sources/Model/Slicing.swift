// SliceGPT (Ashkboos et al., 2024, "SliceGPT: Compress Large Language Models by Deleting Rows and
// Columns", §3): a PCA basis of its own at each of the 2L + 1 points where a norm reads the residual
// stream, each computed on calibration text as the already-sliced earlier blocks produce it, and each
// stream cut to its first K principal directions. Unlike `rotate` (one global basis, Rotation.swift)
// consecutive points differ, so each residual connection carries the change of basis between them,
// S = Q_bᵀ·Q_a cut to (K, K) (the paper's Q_ℓᵀQ_{ℓ+1}, stored (out, in)); the decoder runs it as a
// matrix on the residual path (Decoder.residualConnection).
//
// Points: p = 2l is layer l's attention input (p = 0: the embeddings), 2l + 1 its MLP input, 2L the
// final norm's input. With U_p the first K principal directions at p as rows (K, C), the sliced model
// is the original one with the stream projected onto span(U_p) at every point: its stream y_p = x_p·U_pᵀ
// has the same norm as the projection x̂_p = y_p·U_p, and every reader of x̂_p (W·diag(g)) becomes
// W·diag(g)·U_pᵀ. So the calibration pass runs the original blocks and projects between them:
//   x ← E[tokens]; for p in 0...2L { U_p = top K eigenvectors of Σ xᵀx;  x ← x·U_pᵀ·U_p;  x ← block p(x) }
// The statistic is by default the uncentred second moment of the stream itself (the norm's input), as in
// the reference implementation (microsoft/TransformerCompression, `pca_calc` over the signals it hooks
// there); `.normalized` takes it of every token's stream divided by its RMS (what the norm passes on
// before its scale, the statistic `rotate` uses), so a few tokens with huge activations do not choose
// the directions for all the others. Norms keep dividing by the original D
// (ModelConfig.normDivisor), as SliceGPT's RMSN does, so cutting directions that carry nothing is exact.
//
// Departures from the paper's code, chosen for one hidden width everywhere: the head reads the sliced
// final stream (their default keeps the last block's output and the head at full width), and K is not
// rounded to a multiple of 8. LLaMA family only (RMSNorm, RoPE), as for `rotate`.
// Not here: recovery fine-tuning (the `finetune` stage runs on the sliced model as on any other).

import Tensor

public enum SliceGPT {
    /// What the PCA at each point is taken of.
    public enum Statistic: String, Codable, Sendable, CaseIterable {
        /// The stream as the norm reads it (the reference code's).
        case stream
        /// Each token's stream divided by its RMS.
        case normalized
    }

    /// The K principal directions at each point, as rows (K, C), and the mean squares of all C
    /// principal directions there (largest first; their sum is the stream's mean ‖x‖²).
    public struct Basis {
        public let rows: Tensor
        public let variances: [Double]

        /// Share of the stream's energy at this point in the directions the slice drops.
        public var droppedEnergy: Double {
            let total = variances.reduce(0, +)
            return total > 0 ? variances[rows.shape[0]...].reduce(0, +) / total : 0
        }
    }

    /// The 2L + 1 bases of width `width` (K) of `model` over the calibration `windows` (token ids; each
    /// a sequence), computed point after point on the stream the sliced earlier blocks produce.
    /// The bytes do not depend on the thread count (`sgemm` cuts K in fixed slices, `symmetricEigen`
    /// runs on one BLAS thread and fixes the eigenvectors' signs).
    public static func bases(model: Decoder, windows: [[Int32]], width K: Int,
                             statistic: Statistic = .stream) throws(SymmetricEigenError) -> [Basis] {
        let config = model.config, C = config.hiddenSize
        precondition(K > 0 && K <= C, "SliceGPT.bases: width \(K) outside 1...\(C)")
        let streams = windows.map { window -> Tensor in
            let x = Tensor(zeros: [window.count, C])  // (T, C)
            model.embed(window, into: x, B: 1, T: window.count, start: 0)
            return x
        }
        let rowCount = windows.reduce(0) { $0 + $1.count }
        let product = Tensor(zeros: [C, C])
        var bases: [Basis] = []
        for point in 0...(2 * config.layerCount) {
            var gram = [Double](repeating: 0, count: C * C)
            for x in streams {
                let rows = statistic == .normalized ? rmsNormalized(x) : x
                accumulateGram(rows, rows: rows.shape[0], into: &gram, product: product)
            }
            let scale = 1 / Double(max(rowCount, 1))
            let (values, vectors) = try symmetricEigen(gram.map { $0 * scale }, n: C)
            let rows = Tensor(shape: [K, C], values: vectors[..<(K * C)].map(Float.init))  // (K, C)
            bases.append(Basis(rows: rows, variances: values))
            for x in streams {
                project(x, onto: rows)
                if point < 2 * config.layerCount { model.runBlock(point, stream: x) }
            }
        }
        return bases
    }

    /// The sliced model (hidden width K, a shortcut matrix on every residual connection, norm scales
    /// folded, head untied): `ResidualRotation.changeBasis` with the bases' rows.
    public static func slice(config: ModelConfig, parameters: ParameterSet, bases: [Basis]) throws(ModelError) -> (ModelConfig, ParameterSet) {
        guard bases.count == 2 * config.layerCount + 1 else {
            throw .invalidConfig(field: "layers", reason: "\(bases.count) SliceGPT bases for a model of \(config.layerCount) layers, which needs 2L + 1 = \(2 * config.layerCount + 1)")
        }
        return try ResidualRotation.changeBasis(config: config, parameters: parameters, bases: bases.map(\.rows), shortcuts: true)
    }

    /// A copy of x (T, C) with every row divided by its root mean square (rows of zeros stay zero).
    static func rmsNormalized(_ x: Tensor) -> Tensor {
        let T = x.shape[0], C = x.shape[1]
        let out = Tensor(zeros: [T, C])
        for t in 0..<T {
            let row = x.data + t * C
            var sum = 0.0
            for c in 0..<C { sum += Double(row[c]) * Double(row[c]) }
            let scale = sum > 0 ? Float(1 / (sum / Double(C)).squareRoot()) : 0
            for c in 0..<C { out.data[t * C + c] = row[c] * scale }
        }
        return out
    }

    /// x ← x·Uᵀ·U: the rows of x (T, C) projected onto the span of U's orthonormal rows (K, C).
    static func project(_ x: Tensor, onto u: Tensor) {
        let T = x.shape[0], C = x.shape[1], K = u.shape[0]
        let y = Tensor(zeros: [T, K])
        sgemm(transB: true, M: T, N: K, K: C, A: x.data, lda: C, B: u.data, ldb: C, C: y.data, ldc: K)  // (T, K)
        sgemm(M: T, N: C, K: K, A: y.data, lda: K, B: u.data, ldb: C, C: x.data, ldc: C)  // (T, C)
    }
}

extension Decoder {
    /// Runs block `point` of one sequence in place on `stream` (T, C): layer point/2's attention block
    /// for an even point, its MLP block for an odd one (inference buffers, no cache).
    func runBlock(_ point: Int, stream: Tensor) {
        let T = stream.shape[0], C = config.hiddenSize
        let work = inferenceWorkspace(B: 1, T: T), p = layers[point / 2]
        work.stream.data.update(from: stream.data, count: T * C)
        if point % 2 == 0 {
            attentionBlockForward(p, work.layer, scratch: work.scratch, B: 1, T: T, cache: nil)
        } else {
            mlpBlockForward(p, work.layer, output: work.stream, scratch: work.scratch, N: T)
        }
        stream.data.update(from: work.stream.data, count: T * C)
    }
}
