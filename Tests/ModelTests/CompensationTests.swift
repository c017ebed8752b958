// Least-squares compensation (Compensation.swift), checked against its definition rather than its
// code: on the calibration tokens each compensated reader's error is orthogonal to the kept inputs
// (the normal equations, summed here token by token in Double) and no larger than deleting the
// channels outright; a stream that spans fewer directions than the kept channels is nearly recovered
// end to end; the solver against a direct product; a tied head and LayerNorm models.

import Foundation
import Testing
import Tensor
@testable import Model

@Suite struct CompensationTests {
    static let config = ToyConfigs.llamaGQAUntied

    /// The norm outputs m = n ⊙ g at every point of `model` on `windows`, token rows concatenated: [point][row][C].
    static func normOutputs(_ model: Decoder, windows: [[Int32]]) -> [[[Double]]] {
        let C = model.config.hiddenSize, points = 2 * model.config.layerCount + 1
        var rows = [[[Double]]](repeating: [], count: points)
        for window in windows {
            model.forEachNormalizedStream(tokens: window, B: 1, T: window.count) { point, n in
                let g = model.parameters.value(ChannelCompensation.readers(of: point, config: model.config).scale).data
                for r in 0..<window.count { rows[point].append((0..<C).map { Double(n.data[r * C + $0]) * Double(g[$0]) }) }
            }
        }
        return rows
    }

    /// For every reader at every point: Σ over tokens of (W·m − W′_K·m_K)·m_Kᵀ ≈ 0, and the squared
    /// error is at most that of deleting the channels without compensation.
    @Test func everyReadersErrorIsOrthogonalToTheKeptInputs() throws {
        let model = Decoder.initialized(config: Self.config, seed: 11)
        randomize(model.parameters, seed: 12)
        let windows = RotationTests.windows(vocab: Self.config.vocabSize, count: 6, T: 8, seed: 13)
        let channels = try ChannelSet(hiddenSize: Self.config.hiddenSize, pruned: [1, 6])
        let (compensated, summary) = try ChannelCompensation.leastSquares(model: model, windows: windows, channels: channels, ridge: 1e-9)
        #expect(summary.head && summary.explained.count == 2 * Self.config.layerCount + 1)
        let m = Self.normOutputs(model, windows: windows)
        let K = channels.kept, C = Self.config.hiddenSize
        for point in m.indices {
            for reader in ChannelCompensation.readers(of: point, config: Self.config).readers {
                let w = model.parameters.value(reader), wc = compensated.value(reader), R = w.shape[0]
                var normal = [Double](repeating: 0, count: R * K.count), magnitude = normal
                var errorAfter = 0.0, errorBefore = 0.0
                for row in m[point] {
                    for r in 0..<R {
                        let full = (0..<C).reduce(0.0) { $0 + Double(w.data[r * C + $1]) * row[$1] }
                        let kept = K.reduce(0.0) { $0 + Double(w.data[r * C + $1]) * row[$1] }
                        let fitted = K.reduce(0.0) { $0 + Double(wc.data[r * C + $1]) * row[$1] }
                        for (j, k) in K.enumerated() {
                            normal[r * K.count + j] += (full - fitted) * row[k]
                            magnitude[r * K.count + j] += abs(full * row[k])
                        }
                        errorAfter += (full - fitted) * (full - fitted)
                        errorBefore += (full - kept) * (full - kept)
                    }
                }
                let largest = normal.map(abs).max()!
                #expect(largest <= 1e-3 * magnitude.max()!, "\(reader): normal equations off by \(largest) (terms up to \(magnitude.max()!))")
                #expect(errorAfter <= errorBefore * (1 + 1e-6), "\(reader): \(errorAfter) after, \(errorBefore) without")
            }
        }
        // The deleted channels' own slices are untouched (prune deletes them next).
        for tensor in Self.config.hiddenChannelTensors where tensor.axis == .columns && tensor.name != "embed/tokens" {
            let w = model.parameters.value(tensor.name), wc = compensated.value(tensor.name)
            for r in 0..<w.shape[0] { for c in channels.pruned { #expect(w.data[r * C + c] == wc.data[r * C + c]) } }
        }
    }

    /// A stream confined to C − k directions hidden by a random rotation: any k deleted channels are an
    /// exact linear function of the rest, so compensation brings the pruned model's logits much closer to
    /// the dense ones than plain deletion. Not all the way: P carries a quarter of the energy here, and
    /// its share varies by token, so the norm factor (the mean of ‖n_K‖/‖n‖) is right only on average.
    @Test(arguments: [21, 31, 41] as [UInt64])
    func aPredictableStreamIsLargelyRecovered(_ seed: UInt64) throws {
        let config = Self.config, C = config.hiddenSize, k = 2
        let model = try RotationTests.modelWithDeadDirections(config, k: k, seed: seed)
        let windows = RotationTests.windows(vocab: config.vocabSize, count: 6, T: 8, seed: seed + 1)
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: 2, T: 7, seed: seed + 2)
        let expected = model.logits(tokens: tokens, B: 2, T: 7)
        let channels = try ChannelSet(hiddenSize: C, pruned: [2, 5])
        let (compensated, summary) = try ChannelCompensation.leastSquares(model: model, windows: windows, channels: channels, ridge: 1e-9)
        #expect(summary.explained.allSatisfy { $0 > 0.999 }, "\(summary.explained)")
        #expect(summary.normFactors.allSatisfy { $0 > 0.5 && $0 < 1 }, "\(summary.normFactors)")
        func prunedLogits(_ parameters: ParameterSet) throws -> Tensor {
            let pruned = try Decoder(config: try prunedConfig(model.config, channels: channels),
                                     parameters: try pruneParameters(parameters, config: model.config, channels: channels))
            return pruned.logits(tokens: tokens, B: 2, T: 7)
        }
        let plain = RotationTests.relativeDifference(try prunedLogits(model.parameters), expected)
        let fitted = RotationTests.relativeDifference(try prunedLogits(compensated), expected)
        #expect(fitted < 0.6 * plain, "compensated \(fitted), plain deletion \(plain)")
    }

    /// The Cholesky solve against the product it inverts.
    @Test func choleskySolvesTheSystem() {
        let n = 5, m = 3
        var rng = RNG(seed: 31, stream: 0)
        let b0 = (0..<(n * n)).map { _ in Double(rng.nextNormal()) }
        var a = [Double](repeating: 0, count: n * n)   // BᵀB + I: symmetric positive definite
        for i in 0..<n { for j in 0..<n { a[i * n + j] = (0..<n).reduce(i == j ? 1 : 0) { $0 + b0[$1 * n + i] * b0[$1 * n + j] } } }
        let x = (0..<(n * m)).map { _ in Double(rng.nextNormal()) }
        var rhs = (0..<(n * m)).map { idx in (0..<n).reduce(0.0) { $0 + a[(idx / m) * n + $1] * x[$1 * m + idx % m] } }
        var factor = a
        ChannelCompensation.choleskySolve(&factor, n: n, rhs: &rhs, columns: m)
        #expect(zip(rhs, x).allSatisfy { abs($0 - $1) < 1e-9 }, "\(rhs) vs \(x)")
    }

    /// A tied head is the input embedding too: it and the final norm are left alone. LayerNorm models are refused.
    @Test func tiedHeadsAndLayerNormModels() throws {
        let tied = Decoder.initialized(config: ToyConfigs.llamaMQATied, seed: 41)
        randomize(tied.parameters, seed: 42)
        let windows = RotationTests.windows(vocab: ToyConfigs.llamaMQATied.vocabSize, count: 2, T: 8, seed: 43)
        let channels = try ChannelSet(hiddenSize: ToyConfigs.llamaMQATied.hiddenSize, pruned: [0])
        let (parameters, summary) = try ChannelCompensation.leastSquares(model: tied, windows: windows, channels: channels)
        #expect(!summary.head)
        #expect(parameters.value("embed/tokens").array == tied.parameters.value("embed/tokens").array)
        #expect(parameters.value("final_norm/scale").array == tied.parameters.value("final_norm/scale").array,
                "nothing compensated reads the final norm, so its scale keeps the larger outputs")
        #expect(parameters.value("layers/0/attn_norm/scale").array != tied.parameters.value("layers/0/attn_norm/scale").array)
        let gpt2 = Decoder.initialized(config: ToyConfigs.gpt2, seed: 44)
        #expect(throws: ModelError.self) {
            try ChannelCompensation.leastSquares(model: gpt2, windows: windows, channels: try ChannelSet(hiddenSize: 8, pruned: [0]))
        }
    }
}
