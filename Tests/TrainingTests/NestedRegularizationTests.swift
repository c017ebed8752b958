// Nested regularization (issue 15): rankings whose prefixes are the single-ratio sets, a channel mask whose forward and backward are those of the physically
// pruned model (an independent path: Model/ChannelSurgery), and a nested run that serves every ratio.

import Foundation
import Testing
import Tensor
import Model
@testable import Training

@Suite struct NestedRegularizationTests {
    static let config = RegularizationTests.config
    static let ratios = [0.25, 0.125, 0.5]   // any order: ranked ascending

    @Test func everyNestedRuleRanksTheSingleRatioSetsAsPrefixes() throws {
        let model = Decoder.initialized(config: Self.config, seed: 4)
        var rng = RNG(seed: 5)
        let statistics = (0..<Self.config.hiddenSize).map { _ in Double(rng.nextUniform()) }
        for rule in ChannelSelectionRule.allCases where rule != .uniform {
            let ranking = try ChannelSelection.ranking(rule, ratios: Self.ratios, config: Self.config, seed: 3,
                                                       parameters: model.parameters, statistics: statistics)
            #expect(ranking.counts == [4, 8, 16], "\(rule)")
            for ratio in Self.ratios {
                let single = try ChannelSelection.select(rule, ratio: ratio, config: Self.config, seed: 3,
                                                         parameters: model.parameters, statistics: statistics)
                #expect(try ranking.prefix(single.pruned.count) == single, "\(rule) at \(ratio)")
            }
        }
        let last = try ChannelSelection.ranking(.last, ratios: [0.125], config: Self.config)
        #expect(last.order == [31, 30, 29, 28], "last removes the last channel first")
    }

    @Test func refusesWhatCannotNest() throws {
        #expect(throws: ChannelSetError.notNested(rule: "uniform")) {
            try ChannelSelection.ranking(.uniform, ratios: [0.25, 0.5], config: Self.config)
        }
        #expect(throws: ChannelSetError.ratiosCollide(0.25, 0.26, count: 8, hiddenSize: 32)) {
            try ChannelSelection.ranking(.last, ratios: [0.26, 0.25], config: Self.config)
        }
        let ranking = try ChannelSelection.ranking(.first, ratios: [0.25], config: Self.config)
        #expect(throws: ChannelSetError.beyondRanking(count: 9, ranked: 8)) { try ranking.prefix(9) }
        for counts in [[], [0, 8], [4, 4, 8], [4, 7]] {
            #expect(throws: ChannelSetError.invalidRankingCounts(counts, ranked: 8)) {
                try ChannelRanking(hiddenSize: 32, order: ranking.order, counts: counts)
            }
        }
    }

    /// A ranking read from a store goes through the same checks as a computed one, and keeps its keys.
    @Test func aDecodedRankingIsValidated() throws {
        let ranking = try ChannelSelection.ranking(.last, ratios: [0.125, 0.25], config: Self.config)
        let json = try JSONEncoder().encode(ranking)
        #expect(try JSONDecoder().decode(ChannelRanking.self, from: json) == ranking)
        #expect(String(decoding: json, as: UTF8.self).contains("\"hiddenSize\""), "stores written before the custom decoder use these keys")
        let damaged = #"{"hiddenSize": 32, "order": [31, 30, 29, 28], "counts": [4, 2]}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ChannelRanking.self, from: Data(damaged.utf8)) }
        let outOfRange = #"{"hiddenSize": 32, "order": [32], "counts": [1]}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ChannelRanking.self, from: Data(outOfRange.utf8)) }
    }

    /// Loss and gradient of the model with `channels` masked equal the physically pruned model's (norms
    /// keep their divisor), every masked slice gets no gradient, and restoring gives back the exact bytes.
    @Test func aMaskedStepIsThePrunedModelsStep() throws {
        let model = try RegularizationTests.trainedModel()
        let channels = try ChannelSelection.random(ratio: 0.25, hiddenSize: Self.config.hiddenSize, seed: 8)
        let batch = try TokenSampler(stream: RegularizationTests.text, T: RegularizationTests.T, seed: 2).batch(first: 0, count: 3)
        let parameters = model.parameters
        // Gradients already there (an earlier micro-batch) must survive on the masked slices.
        parameters.zeroGrads()
        _ = model.forward(tokens: batch.tokens, targets: batch.targets, B: 3, T: batch.T)
        model.backward()
        let before = (values: parameters.values.array, grads: parameters.grads.array)

        var mask = ChannelMask(capacity: channels, config: Self.config, parameters: parameters)
        mask.remove(channels, from: parameters)
        parameters.zeroGrads()
        let masked = model.forward(tokens: batch.tokens, targets: batch.targets, B: 3, T: batch.T)
        model.backward()
        let maskedGrads = ParameterSet(parameters.specs)
        maskedGrads.values.assign(parameters.grads)

        let prunedParameters = try pruneParameters(ParameterSet.copy(of: before.values, specs: parameters.specs), config: Self.config, channels: channels)
        let pruned = try Decoder(config: try prunedConfig(Self.config, channels: channels), parameters: prunedParameters)
        let reference = pruned.forward(tokens: batch.tokens, targets: batch.targets, B: 3, T: batch.T)
        pruned.backward()
        #expect(abs(masked - reference) < 1e-5, "masked loss \(masked), pruned model's \(reference)")
        let keptGrads = try pruneParameters(maskedGrads, config: Self.config, channels: channels).values.array
        let worst = zip(keptGrads, pruned.parameters.grads.array).map { abs($0 - $1) }.max()!
        let scale = pruned.parameters.grads.array.map(abs).max()!
        #expect(worst <= 1e-4 * scale, "kept gradients differ by \(worst) (largest \(scale))")
        // The masked slices get nothing from the masked micro-batch.
        ChannelRegularizer.zeroChannels(parameters: maskedGrads, config: Self.config, channels: channels)
        #expect(maskedGrads.values.array == parameters.grads.array, "only masked slices may be zeroed here, and they already are 0")

        mask.restore(to: parameters)
        #expect(parameters.values.array == before.values)
        let restored = ParameterSet.copy(of: parameters.grads.array, specs: parameters.specs)
        let saved = ParameterSet.copy(of: before.grads, specs: parameters.specs)
        for tensor in Self.config.hiddenChannelTensors {
            // Masked slices: the earlier micro-batch's gradient, exactly; kept ones: the masked step's.
            let runs = ChannelRuns(channels.pruned)
            #expect(sliceReduce(restored.value(tensor.name), axis: tensor.axis, runs: runs, absolute: true)
                    == sliceReduce(saved.value(tensor.name), axis: tensor.axis, runs: runs, absolute: true), "\(tensor.name)")
        }
    }

    /// One mask serves every prefix of a ranking in turn: each removal zeroes exactly its own slices
    /// (the larger buffer holds no stale bytes for a smaller set), and each restore gives back the bytes.
    @Test func oneMaskServesEveryPrefix() throws {
        let ranking = try ChannelSelection.ranking(.last, ratios: [0.125, 0.25, 0.5], config: Self.config)
        let parameters = try RegularizationTests.trainedModel().parameters
        parameters.grads.assign(parameters.values)  // distinct, non-zero gradients to save and restore
        let original = (values: parameters.values.array, grads: parameters.grads.array)
        var mask = ChannelMask(capacity: try ranking.prefix(ranking.order.count), config: Self.config, parameters: parameters)
        for count in [ranking.counts[2], ranking.counts[0], ranking.counts[1]] {
            let prefix = try ranking.prefix(count)
            mask.remove(prefix, from: parameters)
            let expected = ParameterSet.copy(of: original.values, specs: parameters.specs)
            ChannelRegularizer.zeroChannels(parameters: expected, config: Self.config, channels: prefix)
            #expect(parameters.values.array == expected.values.array, "\(count) channels removed")
            mask.restore(to: parameters)
            #expect(parameters.values.array == original.values && parameters.grads.array == original.grads, "\(count) channels restored")
        }
    }

    /// One run serves every ratio: masking each served prefix costs far less after it than before, the
    /// channels every ratio removes empty (the penalty acts on them alone) while the others keep their
    /// energy for the smaller ratios that keep them, the curves report every prefix, and the bytes repeat.
    @Test func aNestedRunServesEveryRatio() throws {
        let ranking = try ChannelSelection.ranking(.last, ratios: [0.125, 0.25, 0.5], config: Self.config)
        let channels = try ranking.prefix(ranking.order.count)
        let config = RegularizationConfig(lambda: .constant(1.0 / 90), steps: 150, batchSize: 4, seqLen: RegularizationTests.T,
                                          lr: 3e-2, warmup: 5, minLR: 0, logEvery: 50, evalEvery: 75, sliceWeights: .initial)
        func run() throws -> (Decoder, RegularizationCurves) {
            let model = try RegularizationTests.trainedModel()
            let curves = try runRegularization(model: model, batches: TokenSampler(stream: RegularizationTests.text, T: RegularizationTests.T, seed: 4),
                                               channels: channels, config: config, heldOut: RegularizationTests.heldOut(), ranking: ranking)
            return (model, curves)
        }
        let (model, curves) = try run()
        #expect(curves.evaluations.map(\.step) == [0, 75, 150])
        let first = curves.evaluations.first!, last = curves.evaluations.last!
        let before = try #require(first.prefixLosses), after = try #require(last.prefixLosses)
        #expect(before.count == 3 && after.count == 3)
        #expect(after.last == last.maskedLoss, "the largest prefix is P")
        #expect(before[2] > first.loss + 0.2, "masking the largest prefix before the run hurts: \(first)")
        for k in 0..<3 {
            #expect(before[k] > before[max(0, k - 1)] - 1e-9, "a larger prefix costs more: \(first)")
            #expect(after[k] - last.loss < max(0.02, (before[k] - first.loss) / 4), "after it, masking prefix \(k) costs little: \(first) → \(last)")
        }
        let energy = ChannelRegularizer.channelEnergy(parameters: model.parameters, config: Self.config)
        let always = ranking.order.prefix(ranking.counts[0]), others = ranking.order[ranking.counts[0]...]
        #expect(always.allSatisfy { energy[$0] == 0 }, "λ empties the channels every ratio removes by 60% of the run")
        #expect(others.allSatisfy { energy[$0] > 0 }, "no penalty on the channels a smaller ratio keeps")
        let (again, curvesAgain) = try run()
        #expect(again.parameters.values.array == model.parameters.values.array)
        #expect(curvesAgain == curves)
    }
}

extension ParameterSet {
    /// A fresh set of `specs` holding `values`.
    static func copy(of values: [Float], specs: [ParameterSpec]) -> ParameterSet {
        let set = ParameterSet(specs)
        set.values.assign(Tensor(shape: [values.count], values: values))
        return set
    }
}
