// Tests of the channel selection rules: counts and rounding, positions of first/last/uniform, seeded
// random draws, magnitude ranking against planted weak channels, activation ranking, the loss-aware
// rules (taylor, norm_output) on tiny models whose irrelevant channels are known, and the errors.

import Foundation
import Model
import Tensor
import Testing
@testable import Training

@Suite struct ChannelSelectionTests {
    @Test func countRoundsHalfAwayFromZero() throws {
        #expect(try ChannelSelection.count(ratio: 0.25, hiddenSize: 576) == 144)
        #expect(try ChannelSelection.count(ratio: 0.25, hiddenSize: 10) == 3)    // 2.5 -> 3
        #expect(try ChannelSelection.count(ratio: 0.3, hiddenSize: 8) == 2)     // 2.4 -> 2
        #expect(try ChannelSelection.count(ratio: 0, hiddenSize: 8) == 0)
    }

    @Test(arguments: [0.0, 0.1, 0.25, 0.5, 0.75])
    func everyRuleReturnsTheCount(ratio: Double) throws {
        let config = DressFixtures.gpt2
        let C = config.hiddenSize
        let n = try ChannelSelection.count(ratio: ratio, hiddenSize: C)
        let p = DressFixtures.parameters(config, seed: 4)
        let stats = (0..<C).map { Double(($0 * 5) % C) }
        for rule in ChannelSelectionRule.allCases {
            let set = try ChannelSelection.select(rule, ratio: ratio, config: config, seed: 9, parameters: p, statistics: stats)
            #expect(set.hiddenSize == C)
            #expect(set.pruned.count == n, "\(rule)")
            #expect(set.pruned == set.pruned.sorted() && Set(set.pruned).count == n, "\(rule)")
            #expect(set.kept.count == C - n && Set(set.kept).isDisjoint(with: set.pruned))
        }
    }

    @Test func firstAndLast() throws {
        #expect(try ChannelSelection.first(ratio: 0.25, hiddenSize: 12).pruned == [0, 1, 2])
        #expect(try ChannelSelection.last(ratio: 0.25, hiddenSize: 12).pruned == [9, 10, 11])
        #expect(try ChannelSelection.last(ratio: 0.25, hiddenSize: 12).kept == Array(0..<9))
    }

    @Test(arguments: [(576, 0.25), (10, 0.25), (576, 0.5), (7, 0.4), (100, 0.33)])
    func uniformPutsOneChannelInEachEqualBin(hiddenSize: Int, ratio: Double) throws {
        let set = try ChannelSelection.uniform(ratio: ratio, hiddenSize: hiddenSize)
        let n = set.pruned.count
        for (i, c) in set.pruned.enumerated() {
            let lower = i * hiddenSize / n, upper = (i + 1) * hiddenSize / n
            #expect(c >= lower && c < upper, "channel \(i) = \(c) outside bin [\(lower), \(upper))")
        }
        let gaps = zip(set.pruned.dropFirst(), set.pruned).map { $0 - $1 }
        #expect(gaps.max()! - gaps.min()! <= 1)
    }

    @Test func uniformAtSmolLM2Width() throws {
        // C = 576, 25%: every fourth channel, at the bin centres 2, 6, 10, ...
        #expect(try ChannelSelection.uniform(ratio: 0.25, hiddenSize: 576).pruned == (0..<144).map { 4 * $0 + 2 })
    }

    @Test func randomIsDeterministicBySeed() throws {
        let a = try ChannelSelection.random(ratio: 0.25, hiddenSize: 576, seed: 42)
        let b = try ChannelSelection.random(ratio: 0.25, hiddenSize: 576, seed: 42)
        let c = try ChannelSelection.random(ratio: 0.25, hiddenSize: 576, seed: 43)
        #expect(a == b)
        #expect(a != c)
        #expect(a.pruned.count == 144)
        // Not a positional pattern: the draw covers both halves of the width.
        #expect(a.pruned.contains { $0 < 288 } && a.pruned.contains { $0 >= 288 })
    }

    @Test func magnitudePicksPlantedWeakChannels() throws {
        for (name, config) in DressFixtures.all {
            let p = DressFixtures.parameters(config, seed: 8)
            let weak = [3, 6]
            // Shrink every slice of the weak channels (the same slices the penalty touches).
            for tensor in config.hiddenChannelTensors {
                let t = p.value(tensor.name)
                for c in weak {
                    switch tensor.axis {
                    case .columns: for r in 0..<t.shape[0] { t[r, c] *= 0.01 }
                    case .rows: for k in 0..<t.shape[1] { t[c, k] *= 0.01 }
                    case .entries: t[c] *= 0.01
                    }
                }
            }
            let set = try ChannelSelection.magnitude(ratio: 0.25, parameters: p, config: config)
            #expect(set.pruned == weak, "\(name)")
        }
    }

    @Test func magnitudeImportanceIsTheSumOfSliceNorms() {
        for (name, config) in DressFixtures.all {
            let p = DressFixtures.parameters(config, seed: 12)
            let importance = ChannelSelection.magnitudeImportance(parameters: p, config: config)
            for c in 0..<config.hiddenSize {
                let want = DressFixtures.slices(config, p, channel: c).reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 }.squareRoot() }
                #expect(abs(importance[c] - want) <= 1e-6 * want, "\(name) channel \(c)")
            }
        }
    }

    @Test func activationPicksLowestWithTiesToLowerIndex() throws {
        let stats: [Double] = [0.5, 0.1, 0.9, 0.1, 2.0, 0.05, 0.3, 0.1]
        #expect(try ChannelSelection.activation(ratio: 0.25, statistics: stats).pruned == [1, 5])
        #expect(try ChannelSelection.activation(ratio: 0.5, statistics: stats).pruned == [1, 3, 5, 7])
    }

    /// A model whose residual stream is exactly 0 in `dead` at every point: the embeddings and every
    /// write into the stream (wo, w_down rows; LLaMA has no biases) are zero there.
    static func modelWithDeadChannels(_ config: ModelConfig, dead: [Int], seed: UInt64) throws -> Decoder {
        let p = DressFixtures.parameters(config, seed: seed)
        let embed = p.value("embed/tokens")
        for c in dead {
            for v in 0..<config.vocabSize { embed[v, c] = 0 }
            for l in 0..<config.layerCount {
                for name in ["layers/\(l)/attn/wo", "layers/\(l)/mlp/w_down"] {
                    let w = p.value(name)
                    for k in 0..<w.shape[1] { w[c, k] = 0 }
                }
            }
        }
        return try Decoder(config: config, parameters: p)
    }

    static func windows(_ config: ModelConfig, count: Int, length: Int, seed: UInt64) -> [[Int32]] {
        var rng = RNG(seed: seed)
        return (0..<count).map { _ in (0..<length).map { _ in Int32(rng.nextInt(below: config.vocabSize)) } }
    }

    @Test(arguments: [ChannelSelectionRule.taylor, .normOutput])
    func lossAwareRulesPickChannelsTheStreamNeverCarries(rule: ChannelSelectionRule) throws {
        for config in [DressFixtures.llamaUntied, DressFixtures.llamaTied] {
            let dead = [2, 5]
            let model = try Self.modelWithDeadChannels(config, dead: dead, seed: 31)
            let windows = Self.windows(config, count: 3, length: 6, seed: 5)
            let scores = rule == .taylor ? ChannelSelection.taylorStatistics(model: model, windows: windows)
                : ChannelSelection.normOutputStatistics(model: model, windows: windows)
            for c in 0..<config.hiddenSize {
                if dead.contains(c) { #expect(scores[c] == 0, "\(rule) channel \(c)") } else { #expect(scores[c] > 0, "\(rule) channel \(c)") }
            }
            let set = try ChannelSelection.select(rule, ratio: 0.25, config: config, statistics: scores)
            #expect(set.pruned == dead, "\(rule)")
        }
    }

    @Test func normOutputIgnoresAStreamNoNormPassesOn() throws {
        // Channels 1 and 6 carry the largest stream of all, but every norm's scale is 0 there: the
        // layers never read them, so norm_output ranks them lowest while activation ranks them highest.
        let config = DressFixtures.llamaUntied, muted = [1, 6]
        let p = DressFixtures.parameters(config, seed: 33)
        let embed = p.value("embed/tokens")
        let norms = (0..<config.layerCount).flatMap { ["layers/\($0)/attn_norm/scale", "layers/\($0)/mlp_norm/scale"] } + ["final_norm/scale"]
        for c in muted {
            for v in 0..<config.vocabSize { embed[v, c] *= 10 }
            for name in norms { p.value(name)[c] = 0 }
        }
        let model = try Decoder(config: config, parameters: p)
        let windows = Self.windows(config, count: 2, length: 5, seed: 6)
        let scores = ChannelSelection.normOutputStatistics(model: model, windows: windows)
        #expect(muted.allSatisfy { scores[$0] == 0 })
        #expect(try ChannelSelection.select(.normOutput, ratio: 0.25, config: config, statistics: scores).pruned == muted)
        let energy = ChannelSelection.activationStatistics(model: model, windows: windows)
        #expect(try ChannelSelection.select(.activation, ratio: 0.25, config: config, statistics: energy).pruned.allSatisfy { !muted.contains($0) })
    }

    @Test func taylorIsTheMeanOverWindowsOfTheDecoderSums() throws {
        // The rule's normalisation: each window's Σ over points and tokens, averaged over windows, with
        // every token predicting the next one and the last one without a target.
        let config = DressFixtures.gpt2
        let model = try Decoder(config: config, parameters: DressFixtures.parameters(config, seed: 35))
        let windows = Self.windows(config, count: 2, length: 5, seed: 7)
        let scores = ChannelSelection.taylorStatistics(model: model, windows: windows)
        var want = [Double](repeating: 0, count: config.hiddenSize)
        for window in windows {
            let sums = model.residualTaylorSums(tokens: window, targets: Array(window.dropFirst()) + [-1], B: 1, T: window.count)
            #expect(sums.count == 2 * config.layerCount + 1)
            for point in sums { for c in point.indices { want[c] += point[c] / 2 } }
        }
        for c in want.indices { #expect(abs(scores[c] - want[c]) <= 1e-12 * want[c], "channel \(c)") }
    }

    @Test func errors() throws {
        for ratio in [-0.1, 1.0, 1.5] {
            #expect(throws: ChannelSetError.invalidRatio(ratio)) { try ChannelSelection.first(ratio: ratio, hiddenSize: 8) }
        }
        // NaN is not equal to itself, so match the case instead of the value.
        let nanError = #expect(throws: ChannelSetError.self) { try ChannelSelection.uniform(ratio: .nan, hiddenSize: 8) }
        if case .invalidRatio(let r)? = nanError { #expect(r.isNaN) } else { Issue.record("expected invalidRatio, got \(String(describing: nanError))") }
        #expect(throws: ChannelSetError.prunesEverything(hiddenSize: 8)) { try ChannelSelection.last(ratio: 0.99, hiddenSize: 8) }
        #expect(throws: ChannelSetError.nonFiniteStatistic(index: 1, value: .infinity)) {
            try ChannelSelection.activation(ratio: 0.5, statistics: [1, .infinity, 2, 3])
        }
        let config = DressFixtures.llamaTied
        #expect(throws: ChannelSetError.statisticsCount(count: 3, hiddenSize: 8)) {
            try ChannelSelection.select(.activation, ratio: 0.25, config: config, statistics: [1, 2, 3])
        }
        for rule in [ChannelSelectionRule.taylor, .normOutput] {
            #expect(throws: ChannelSetError.missingSelectionInput(rule: rule.rawValue, needs: "statistics")) {
                try ChannelSelection.select(rule, ratio: 0.25, config: config)
            }
        }
        #expect(throws: ChannelSetError.missingSelectionInput(rule: "magnitude", needs: "parameters")) {
            try ChannelSelection.select(.magnitude, ratio: 0.25, config: config)
        }
        let wrong = DressFixtures.parameters(DressFixtures.gpt2, seed: 1)
        #expect(throws: ChannelSetError.self) { try ChannelSelection.magnitude(ratio: 0.25, parameters: wrong, config: config) }
        let message = ChannelSetError.invalidRatio(1.5).description
        #expect(message.contains("1.5") && message.contains("e.g. 0.25"))
    }
}
