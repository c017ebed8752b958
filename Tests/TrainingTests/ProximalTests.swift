// The proximal penalty update: ChannelRegularizer.applyProximal against the closed forms computed
// directly on the slice list written out by hand (DressFixtures.slices), exact zeros below the
// threshold, and runRegularization with `.proximal` on a tiny LLaMA: a large λ leaves no energy in P
// and pruning the result changes no logit.

import Foundation
import Model
import Tensor
import Testing
@testable import Training

@Suite struct ProximalTests {
    /// The prox of τ·cost on one slice, in Double, straight from the definitions.
    static func prox(_ s: [Double], norm: SliceNorm, tau: Double) -> [Double] {
        switch norm {
        case .l2:
            let length = s.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return s.map { length > tau ? $0 * (1 - tau / length) : 0 }
        case .l2sq:
            return s.map { $0 / (1 + 2 * tau) }
        case .l1:
            return s.map { $0 > tau ? $0 - tau : ($0 < -tau ? $0 + tau : 0) }
        }
    }

    @Test(arguments: SliceNorm.allCases, [0.3, 1.5])
    func matchesTheClosedFormOnEverySliceAndLeavesTheRest(norm: SliceNorm, tau: Double) throws {
        for (name, config) in DressFixtures.all {
            let channels = try ChannelSet(hiddenSize: 8, pruned: [1, 2, 5])
            let p = DressFixtures.parameters(config, seed: 11)
            let before = ParameterSet(config.parameterSpecs)
            before.values.assign(p.values)
            let penalty = ChannelRegularizer.applyProximal(parameters: p, config: config, channels: channels, norm: norm, threshold: tau)
            for c in 0..<8 {
                let got = DressFixtures.slices(config, p, channel: c), old = DressFixtures.slices(config, before, channel: c)
                for (k, slice) in got.enumerated() {
                    let want = channels.pruned.contains(c) ? Self.prox(old[k], norm: norm, tau: tau) : old[k]
                    for (a, b) in zip(slice, want) {
                        #expect(abs(a - b) <= 1e-6 * max(1, abs(b)), "\(name) \(norm) channel \(c) slice \(k): \(a) vs \(b)")
                    }
                }
            }
            // The returned penalty is that of the values left (ℓ2 unsmoothed: the ε floor is below 1e-6).
            let left = DressFixtures.naivePenalty(config, p, channels, norm)
            #expect(abs(penalty - left) <= 1e-5 * max(1, left), "\(name) \(norm): penalty \(penalty) vs \(left)")
        }
    }

    @Test func groupsBelowTheThresholdBecomeExactlyZero() throws {
        let config = DressFixtures.llamaUntied
        let channels = try ChannelSet(hiddenSize: 8, pruned: [0, 3, 6, 7])
        let p = DressFixtures.parameters(config, seed: 5)
        let norms = channels.pruned.map { c in DressFixtures.slices(config, p, channel: c).map { s in s.reduce(0) { $0 + $1 * $1 }.squareRoot() } }
        // A threshold between the slice norms: every norm-scale entry (|s| < 1) and some columns fall below it.
        let sorted = norms.flatMap { $0 }.sorted()
        let tau = (sorted[sorted.count / 2] + sorted[sorted.count / 2 + 1]) / 2
        ChannelRegularizer.applyProximal(parameters: p, config: config, channels: channels, norm: .l2, threshold: tau)
        var zeroed = 0, kept = 0
        for (i, c) in channels.pruned.enumerated() {
            for (k, slice) in DressFixtures.slices(config, p, channel: c).enumerated() {
                if norms[i][k] <= tau {
                    #expect(slice.allSatisfy { $0 == 0 }, "channel \(c) slice \(k) of norm \(norms[i][k]) ≤ τ = \(tau)")
                    zeroed += 1
                } else {
                    let length = slice.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    #expect(abs(length - (norms[i][k] - tau)) < 1e-5, "a slice above τ shrinks by exactly τ")
                    kept += 1
                }
            }
        }
        #expect(zeroed > 0 && kept > 0)
    }

    @Test(arguments: [SliceNorm.l2, .l1])
    func largeLambdaEmptiesPAndPruningChangesNoLogit(norm: SliceNorm) throws {
        let model = try RegularizationTests.trainedModel()
        let config = RegularizationTests.config
        let channels = try ChannelSelection.last(ratio: 0.25, hiddenSize: config.hiddenSize)
        // Threshold 0.05 per step: every slice of the trained model (norm ≲ 3) is empty well before step 100.
        let settings = RegularizationConfig(lambda: .constant(0.05), norm: norm, steps: 100, batchSize: 4, seqLen: RegularizationTests.T,
                                            lr: 1e-2, warmup: 5, minLR: 1e-3, penaltyUpdate: .proximal, penaltyLR: 1)
        let curves = try runRegularization(model: model, batches: TokenSampler(stream: RegularizationTests.text, T: RegularizationTests.T, seed: 4),
                                           channels: channels, config: settings)
        #expect(curves.initialEnergy > 0.1)
        let energy = ChannelRegularizer.sliceEnergy(parameters: model.parameters, config: config, channels: channels)
        #expect(energy.selected == 0, "\(norm): energy left in P \(energy.selected)")
        #expect(curves.points.last!.penalty == 0)
        #expect(curves.points.last!.loss < 0.5, "the model still knows the text: \(curves.points.last!)")

        let pruned = try Decoder(config: prunedConfig(config, channels: channels),
                                 parameters: pruneParameters(model.parameters, config: config, channels: channels))
        let batch = try RegularizationTests.heldOut()[0]
        let a = model.logits(tokens: batch.tokens, B: batch.B, T: batch.T).array
        let b = pruned.logits(tokens: batch.tokens, B: batch.B, T: batch.T).array
        let difference = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
        let size = a.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
        #expect(difference / size < 1e-5, "relative logit error \(difference / size)")
    }

    @Test func initialNormWeightsShrinkEverySliceByTheSameFractionAndEmptyPTogether() throws {
        let config = DressFixtures.gpt2
        let channels = try ChannelSet(hiddenSize: 8, pruned: [2, 3, 7])
        let p = DressFixtures.parameters(config, seed: 9)
        let weights = SliceWeights.initialNorms(parameters: p, config: config, channels: channels)
        let norms = { (set: ParameterSet) in
            channels.pruned.map { c in DressFixtures.slices(config, set, channel: c).map { s in s.reduce(0) { $0 + $1 * $1 }.squareRoot() } }
        }
        let start = norms(p)
        // The weighted penalty at the start is Σ‖s⁰‖², the weighted sum written out.
        let expected = start.flatMap { $0 }.reduce(0) { $0 + $1 * $1 }
        let penalty = ChannelRegularizer.penalty(parameters: p, config: config, channels: channels, weights: weights)
        #expect(abs(penalty - expected) < 1e-5 * expected)
        ChannelRegularizer.applyProximal(parameters: p, config: config, channels: channels, threshold: 0.25, weights: weights)
        for (now, before) in zip(norms(p).flatMap { $0 }, start.flatMap { $0 }) {
            #expect(abs(now - 0.75 * before) < 1e-5 * max(1, before), "every slice keeps 75%: \(now) of \(before)")
        }
        // Four more steps of 0.25: the thresholds add up to more than the starting norms, so all of P is empty.
        for _ in 0..<4 {
            ChannelRegularizer.applyProximal(parameters: p, config: config, channels: channels, threshold: 0.25, weights: weights)
        }
        #expect(ChannelRegularizer.sliceEnergy(parameters: p, config: config, channels: channels).selected == 0)
    }

    @Test func stepSizeFollowsTheLearningRateWhenAsked() throws {
        let constant = RegularizationConfig(steps: 10, batchSize: 1, seqLen: 4, lr: 0.01, penaltyLR: 2)
        var following = constant
        following.penaltySchedule = .lr
        #expect(constant.penaltyStep(3, lr: 0.005) == 2)
        #expect(following.penaltyStep(3, lr: 0.005) == 1)
        var invalid = following
        invalid.lr = 0
        invalid.minLR = 0
        #expect(throws: TrainingError.self) { try invalid.validate() }
    }
}
