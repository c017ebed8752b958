// SliceGPT (Slicing.swift): with nothing sliced the model computes the same logits in its new bases;
// a stream that spans fewer directions than C loses nothing when sliced to them; a real slice equals
// the float64 reference decoder run with each point's stream projected onto its kept directions (so
// the shortcut matrices carry exactly the change of basis); sliced models refuse rotation, channel
// selection and pruning.

import Foundation
import Testing
import Tensor
@testable import Model

@Suite struct SlicingTests {
    /// The LLaMA toys `rotate` is tested on (tied, untied, GQA, D ≠ C).
    static let configs = RotationTests.configs

    static func sliced(_ model: Decoder, width: Int, windows: [[Int32]],
                       statistic: SliceGPT.Statistic = .stream) throws -> (Decoder, [SliceGPT.Basis]) {
        let bases = try SliceGPT.bases(model: model, windows: windows, width: width, statistic: statistic)
        let (config, parameters) = try SliceGPT.slice(config: model.config, parameters: model.parameters, bases: bases)
        return (try Decoder(config: config, parameters: parameters), bases)
    }

    @Test(arguments: 0..<configs.count)
    func withoutSlicingTheLogitsAreUnchanged(_ index: Int) throws {
        let (label, config) = Self.configs[index]
        let model = Decoder.initialized(config: config, seed: 31)
        randomize(model.parameters, seed: 32)
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: 2, T: 7, seed: 33)
        let expected = model.logits(tokens: tokens, B: 2, T: 7)
        let windows = RotationTests.windows(vocab: config.vocabSize, count: 3, T: 8, seed: 34)
        let (sliced, bases) = try Self.sliced(model, width: config.hiddenSize, windows: windows)
        #expect(sliced.config.hasShortcuts && !sliced.config.tiedEmbeddings)
        #expect(sliced.config.hiddenSize == config.hiddenSize && sliced.config.normDivisor == config.normDivisor)
        #expect(bases.count == 2 * config.layerCount + 1)
        // Consecutive points have different bases, so the shortcuts are real rotations, not the identity.
        let shortcut = sliced.parameters.value("layers/0/attn/shortcut")
        let offDiagonal = (0..<shortcut.count).filter { $0 / config.hiddenSize != $0 % config.hiddenSize }.map { abs(shortcut.data[$0]) }.max()!
        #expect(offDiagonal > 0.1, "\(label): shortcut is nearly diagonal (\(offDiagonal))")
        let error = RotationTests.relativeDifference(sliced.logits(tokens: tokens, B: 2, T: 7), expected)
        #expect(error <= 1e-4, "\(label): logits differ by \(error) relative")
    }

    /// A model whose stream spans only C − k directions at every point (`modelWithDeadDirections`):
    /// SliceGPT finds k zero-variance directions at each of the 2L + 1 points, and slicing them away
    /// changes no logit, whichever statistic; the normalised one sees every token's stream at mean
    /// square 1, so its variances sum to C at each point, and unsliced it keeps the logits too.
    @Test(arguments: SliceGPT.Statistic.allCases)
    func slicingZeroVarianceDirectionsChangesNothing(statistic: SliceGPT.Statistic) throws {
        let config = ToyConfigs.llamaGQAUntied, C = config.hiddenSize, k = 3
        let hidden = try RotationTests.modelWithDeadDirections(config, k: k, seed: 41)
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: 2, T: 7, seed: 44)
        let expected = hidden.logits(tokens: tokens, B: 2, T: 7)
        let windows = RotationTests.windows(vocab: config.vocabSize, count: 3, T: 8, seed: 45)
        let (sliced, bases) = try Self.sliced(hidden, width: C - k, windows: windows, statistic: statistic)
        #expect(sliced.config.hiddenSize == C - k)
        for (point, basis) in bases.enumerated() {
            #expect(basis.droppedEnergy < 1e-6, "point \(point): \(basis.droppedEnergy) of the energy sliced away")
            let total = basis.variances.reduce(0, +)
            if statistic == .normalized {
                #expect(abs(total - Double(C)) < 1e-3 * Double(C), "point \(point): variances sum to \(total), not C = \(C)")
            }
        }
        let error = RotationTests.relativeDifference(sliced.logits(tokens: tokens, B: 2, T: 7), expected)
        #expect(error <= 1e-5, "slicing dead directions changed the logits by \(error) relative")
        if statistic == .normalized {
            let (full, _) = try Self.sliced(hidden, width: C, windows: windows, statistic: .normalized)
            #expect(RotationTests.relativeDifference(full.logits(tokens: tokens, B: 2, T: 7), expected) <= 1e-4)
            let streamBases = try SliceGPT.bases(model: hidden, windows: windows, width: C - k)
            #expect(streamBases[1].variances != bases[1].variances, "the two statistics differ")
        }
    }

    /// Slicing half the width of a random model: its logits equal the float64 reference of the
    /// original model whose stream is projected onto span(U_p) at every point p, and the projection
    /// is not the identity (the logits move away from the dense model's).
    @Test func aSlicedModelIsTheOriginalWithEachStreamProjected() throws {
        let config = ToyConfigs.llamaGQAUntied, C = config.hiddenSize, K = C / 2
        let model = Decoder.initialized(config: config, seed: 51)
        randomize(model.parameters, seed: 52)
        let (B, T) = (2, 6)
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 53)
        let windows = RotationTests.windows(vocab: config.vocabSize, count: 3, T: 8, seed: 54)
        let (sliced, bases) = try Self.sliced(model, width: K, windows: windows)
        for basis in bases { #expect(zip(basis.variances, basis.variances.dropFirst()).allSatisfy { $0 >= $1 }) }

        let reference = ReferenceDecoder(model)
        func project(_ x: [[Double]], _ point: Int) -> [[Double]] {
            let u = bases[point].rows.array.map(Double.init)  // (K, C)
            return x.map { row in
                let y = (0..<K).map { j in (0..<C).reduce(0) { $0 + row[$1] * u[j * C + $1] } }
                return (0..<C).map { c in (0..<K).reduce(0) { $0 + y[$1] * u[$1 * C + c] } }
            }
        }
        var x = project(reference.embed(tokens: tokens, B: B, T: T), 0)
        for l in 0..<config.layerCount {
            x = project(reference.attentionBlock(l, x, B: B, T: T), 2 * l + 1)
            x = project(reference.mlpBlock(l, x), 2 * l + 2)
        }
        let expected = reference.head(x).flatMap { $0 }
        let logits = sliced.logits(tokens: tokens, B: B, T: T).array
        let difference = zip(logits, expected).map { abs(Double($0) - $1) }.max()!
        let magnitude = expected.map(abs).max()!
        #expect(difference <= 1e-4 * magnitude, "sliced logits differ from the projected reference by \(difference) (largest \(magnitude))")
        let dense = reference.logits(tokens: tokens, B: B, T: T).flatMap { $0 }
        let moved = zip(dense, expected).map { abs($0 - $1) }.max()!
        #expect(moved > 0.01 * magnitude, "slicing half the width should change the logits (moved \(moved))")
    }

    @Test func slicedModelsRefuseRotationSelectionAndPruning() throws {
        let config = ToyConfigs.llamaShortcuts, C = config.hiddenSize
        let model = Decoder.initialized(config: config, seed: 61)
        let identity = (0..<(C * C)).map { $0 / C == $0 % C ? 1.0 : 0.0 }
        #expect(throws: ModelError.self) { try ResidualRotation.rotate(config: config, parameters: model.parameters, basis: identity) }
        let windows = RotationTests.windows(vocab: config.vocabSize, count: 1, T: 4, seed: 62)
        let bases = try SliceGPT.bases(model: model, windows: windows, width: C)
        #expect(throws: ModelError.self) { try SliceGPT.slice(config: config, parameters: model.parameters, bases: bases) }
        let channels = try ChannelSet(hiddenSize: C, pruned: [C - 1])
        #expect(throws: ChannelSetError.shortcutModel) { try prunedConfig(config, channels: channels) }
        #expect(throws: ChannelSetError.shortcutModel) { try pruneParameters(model.parameters, config: config, channels: channels) }
    }

    /// A fresh decoder's shortcut matrices are the identity, so it computes what the same weights
    /// compute without them.
    @Test func initialShortcutsAreTheIdentity() throws {
        var plain = ToyConfigs.llamaShortcuts
        plain.shortcuts = nil
        let model = Decoder.initialized(config: ToyConfigs.llamaShortcuts, seed: 71)
        let without = try Decoder(config: plain, parameters: try copyParameters(model.parameters, to: plain))
        let (tokens, _) = randomBatch(vocab: plain.vocabSize, B: 1, T: 5, seed: 72)
        #expect(maxAbsDifference(model.logits(tokens: tokens, B: 1, T: 5), without.logits(tokens: tokens, B: 1, T: 5)) == 0)
    }

    /// The parameters of `config` taken by name from `source`.
    func copyParameters(_ source: ParameterSet, to config: ModelConfig) throws -> ParameterSet {
        let out = ParameterSet(config.parameterSpecs)
        for name in out.names { out.value(name).assign(source.value(name)) }
        return out
    }
}
