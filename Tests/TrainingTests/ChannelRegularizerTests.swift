// Tests of the DReSS regularizer: the penalty against a slice list written out by hand with naive Double
// loops, finite-difference checks of the accumulated gradient for every norm kind and both model
// families, zeroing, slice energy, thread-count independence and the λ schedule.

import Foundation
import Model
import Tensor
import Testing
@testable import Training

/// Tiny models and parameter fills shared by the channel regularizer and selection tests.
enum DressFixtures {
    /// LLaMA family with GQA (4 query / 2 KV heads, NH·HD = 16 ≠ C), untied LM head.
    static let llamaUntied = ModelConfig.llama(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 4, kvHeads: 2,
                                               headDim: 4, ffn: 5, tiedEmbeddings: false)
    /// The same with tied embeddings (no lm_head).
    static let llamaTied = ModelConfig.llama(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 4, kvHeads: 2,
                                             headDim: 4, ffn: 5, tiedEmbeddings: true)
    /// GPT-2 family: LayerNorm with shift, biases, learned positions, tied embeddings.
    static let gpt2 = ModelConfig.gpt2(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 2, ffn: 6, maxPositions: 7)
    static let all: [(String, ModelConfig)] = [("llama-untied", llamaUntied), ("llama-tied", llamaTied), ("gpt2", gpt2)]

    /// Parameters with every value ±U[0.2, 1): bounded away from 0 so |s| and ‖s‖ are smooth near every
    /// value a finite difference visits.
    static func parameters(_ config: ModelConfig, seed: UInt64) -> ParameterSet {
        let p = ParameterSet(config.parameterSpecs)
        var rng = RNG(seed: seed)
        for i in 0..<p.count {
            let magnitude = 0.2 + 0.8 * rng.nextUniform()
            p.values[flat: i] = rng.nextUniform() < 0.5 ? -magnitude : magnitude
        }
        return p
    }

    /// Every slice of channel c written out by name (design.md's list), each as its Double values.
    static func slices(_ config: ModelConfig, _ p: ParameterSet, channel c: Int) -> [[Double]] {
        func column(_ name: String) -> [Double] {
            let t = p.value(name)
            return (0..<t.shape[0]).map { Double(t[$0, c]) }
        }
        func row(_ name: String) -> [Double] {
            let t = p.value(name)
            return (0..<t.shape[1]).map { Double(t[c, $0]) }
        }
        func entry(_ name: String) -> [Double] { [Double(p.value(name)[c])] }
        let layerNorm = config.norm == .layernorm
        var out = [column("embed/tokens")]
        if config.positions == .learned { out.append(column("embed/positions")) }
        for l in 0..<config.layerCount {
            let pre = "layers/\(l)"
            out.append(entry("\(pre)/attn_norm/scale"))
            if layerNorm { out.append(entry("\(pre)/attn_norm/shift")) }
            out += [column("\(pre)/attn/wq"), column("\(pre)/attn/wk"), column("\(pre)/attn/wv"), row("\(pre)/attn/wo")]
            if config.bias { out.append(entry("\(pre)/attn/bo")) }
            out.append(entry("\(pre)/mlp_norm/scale"))
            if layerNorm { out.append(entry("\(pre)/mlp_norm/shift")) }
            if config.activation == .swiglu { out.append(column("\(pre)/mlp/w_gate")) }
            out += [column("\(pre)/mlp/w_up"), row("\(pre)/mlp/w_down")]
            if config.bias { out.append(entry("\(pre)/mlp/b_down")) }
        }
        out.append(entry("final_norm/scale"))
        if layerNorm { out.append(entry("final_norm/shift")) }
        if !config.tiedEmbeddings { out.append(column("lm_head")) }
        return out
    }

    /// The penalty by naive Double loops over `slices`.
    static func naivePenalty(_ config: ModelConfig, _ p: ParameterSet, _ set: ChannelSet, _ norm: SliceNorm) -> Double {
        var total = 0.0
        for c in set.pruned {
            for s in slices(config, p, channel: c) {
                switch norm {
                case .l2:
                    let eps = ChannelRegularizer.l2Epsilon
                    total += (s.reduce(0) { $0 + $1 * $1 } + eps).squareRoot() - eps.squareRoot()
                case .l2sq: total += s.reduce(0) { $0 + $1 * $1 }
                case .l1: total += s.reduce(0) { $0 + abs($1) }
                }
            }
        }
        return total
    }
}

private func relativeError(_ a: Double, _ b: Double) -> Double {
    let scale = max(abs(a), abs(b))
    return scale == 0 ? 0 : abs(a - b) / scale
}

/// Scattered channels (column passes read the span 1...5) and one contiguous run (they loop over runs).
private let sets8 = [try! ChannelSet(hiddenSize: 8, pruned: [5, 1, 2]), try! ChannelSet(hiddenSize: 8, pruned: [2, 3, 4])]
private let set8 = sets8[0]

@Suite struct ChannelRegularizerTests {
    @Test(arguments: SliceNorm.allCases, sets8)
    func penaltyMatchesNaiveSliceList(norm: SliceNorm, channels: ChannelSet) {
        #expect(ChannelRuns(channels.pruned).useSpan == (channels == sets8[0]))
        for (name, config) in DressFixtures.all {
            let p = DressFixtures.parameters(config, seed: 7)
            let got = ChannelRegularizer.penalty(parameters: p, config: config, channels: channels, norm: norm)
            let want = DressFixtures.naivePenalty(config, p, channels, norm)
            #expect(want > 0)
            #expect(relativeError(got, want) < 1e-6, "\(name) \(norm): \(got) vs \(want)")
        }
    }

    @Test func tiedEmbeddingsCountedOnce() {
        // The tied model is the untied one without lm_head, so its penalty is smaller by exactly the
        // LM-head columns; embed/tokens is not counted twice.
        let untied = DressFixtures.parameters(DressFixtures.llamaUntied, seed: 3)
        let tied = ParameterSet(DressFixtures.llamaTied.parameterSpecs)
        for name in tied.names { tied.value(name).assign(untied.value(name)) }
        let pUntied = ChannelRegularizer.penalty(parameters: untied, config: DressFixtures.llamaUntied, channels: set8, norm: .l2sq)
        let pTied = ChannelRegularizer.penalty(parameters: tied, config: DressFixtures.llamaTied, channels: set8, norm: .l2sq)
        let head = untied.value("lm_head")
        var headEnergy = 0.0
        for r in 0..<head.shape[0] { for c in set8.pruned { headEnergy += Double(head[r, c]) * Double(head[r, c]) } }
        #expect(relativeError(pUntied - pTied, headEnergy) < 1e-6)
        #expect(DressFixtures.llamaTied.hiddenChannelTensors.filter { $0.name == "embed/tokens" }.count == 1)
    }

    @Test(arguments: SliceNorm.allCases, sets8)
    func gradientMatchesFiniteDifferences(norm: SliceNorm, channels: ChannelSet) {
        let lambda = 0.7
        for (name, config) in DressFixtures.all {
            let p = DressFixtures.parameters(config, seed: 11)
            // Existing gradients must be kept: the penalty gradient accumulates.
            for i in 0..<p.count { p.grads[flat: i] = Float(i % 7) * 0.01 }
            let before = p.grads.array
            let returned = ChannelRegularizer.addPenaltyGradient(parameters: p, config: config, channels: channels,
                                                                 norm: norm, lambda: lambda)
            #expect(relativeError(returned, DressFixtures.naivePenalty(config, p, channels, norm)) < 1e-6)
            var rng = RNG(seed: 99)
            var checkedInside = 0
            for (index, spec) in p.specs.enumerated() {
                let value = p.value(spec.name)
                // Sample entries of every tensor: some at a selected channel when the tensor has a hidden
                // axis, and some anywhere.
                var picks = (0..<3).map { _ in rng.nextInt(below: value.count) }
                if let axis = config.hiddenChannelTensors.first(where: { $0.name == spec.name })?.axis {
                    for c in channels.pruned {
                        switch axis {
                        case .columns: picks.append(rng.nextInt(below: value.shape[0]) * value.shape[1] + c)
                        case .rows: picks.append(c * value.shape[1] + rng.nextInt(below: value.shape[1]))
                        case .entries: picks.append(c)
                        }
                    }
                }
                for i in picks {
                    let flat = p.offsets[index] + i
                    let analytic = (Double(p.grads[flat: flat]) - Double(before[flat])) / lambda
                    let x = value[flat: i]
                    let h: Float = 1e-3
                    value[flat: i] = x + h
                    let plus = DressFixtures.naivePenalty(config, p, channels, norm), up = Double(value[flat: i])
                    value[flat: i] = x - h
                    let minus = DressFixtures.naivePenalty(config, p, channels, norm), down = Double(value[flat: i])
                    value[flat: i] = x
                    let numeric = (plus - minus) / (up - down)
                    if numeric != 0 { checkedInside += 1 }
                    #expect(relativeError(analytic, numeric) < 1e-3,
                            "\(name) \(norm) \(spec.name)[\(i)]: analytic \(analytic), numeric \(numeric)")
                }
            }
            #expect(checkedInside > 40, "\(name): too few entries inside selected slices were checked")
        }
    }

    @Test func zeroChannelsEmptiesEverySelectedSliceAndNothingElse() {
        for (name, config) in DressFixtures.all {
            let p = DressFixtures.parameters(config, seed: 5)
            let original = p.values.array
            ChannelRegularizer.zeroChannels(parameters: p, config: config, channels: set8)
            for norm in SliceNorm.allCases {
                #expect(ChannelRegularizer.penalty(parameters: p, config: config, channels: set8, norm: norm) == 0, "\(name) \(norm)")
            }
            // Every value is nonzero before, so the zeros are exactly the hand-written slices' entries
            // (their count), and every other value is untouched.
            let after = p.values.array
            let zeroed = after.filter { $0 == 0 }.count
            #expect(zip(original, after).allSatisfy { $1 == 0 || $0 == $1 })
            let expected = set8.pruned.reduce(0) { $0 + DressFixtures.slices(config, p, channel: $1).reduce(0) { $0 + $1.count } }
            #expect(zeroed == expected, "\(name): \(zeroed) zeros, expected \(expected)")
            // A zero slice has a defined ℓ2 gradient of 0: nothing is added.
            p.zeroGrads()
            ChannelRegularizer.addPenaltyGradient(parameters: p, config: config, channels: set8, norm: .l2, lambda: 1)
            #expect(p.grads.array.allSatisfy { $0 == 0 })
        }
    }

    @Test func sliceEnergyMatchesNaiveSums() {
        for (name, config) in DressFixtures.all {
            let p = DressFixtures.parameters(config, seed: 21)
            let energy = ChannelRegularizer.sliceEnergy(parameters: p, config: config, channels: set8)
            func naive(_ c: Int) -> Double {
                DressFixtures.slices(config, p, channel: c).reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }
            }
            let selected = set8.pruned.reduce(0) { $0 + naive($1) }
            let rest = set8.kept.reduce(0) { $0 + naive($1) }
            #expect(relativeError(energy.selected, selected) < 1e-6, "\(name)")
            #expect(relativeError(energy.rest, rest) < 1e-6, "\(name)")
            let perChannel = (selected / 3) / (selected / 3 + rest / 5)
            #expect(relativeError(energy.relative, perChannel) < 1e-6)
            ChannelRegularizer.zeroChannels(parameters: p, config: config, channels: set8)
            let after = ChannelRegularizer.sliceEnergy(parameters: p, config: config, channels: set8)
            #expect(after.selected == 0 && after.relative == 0)
            #expect(relativeError(after.rest, rest) < 1e-6)
        }
    }

    @Test func resultsDoNotDependOnThreadCount() {
        // Large enough that the column and row passes split across threads.
        let config = ModelConfig.llama(vocabSize: 40_000, hiddenSize: 16, layers: 1, heads: 2, kvHeads: 1,
                                       headDim: 4, ffn: 4_096, tiedEmbeddings: false)
        let set = try! ChannelSet(hiddenSize: 16, pruned: [0, 3, 4, 5, 11])
        func run(threads: Int) -> (Double, [Float]) {
            Threading.configure(threads: threads)
            let p = DressFixtures.parameters(config, seed: 1)
            let value = ChannelRegularizer.addPenaltyGradient(parameters: p, config: config, channels: set, lambda: 0.1)
            return (value, p.grads.array)
        }
        let one = run(threads: 1), two = run(threads: 2)
        Threading.configure(threads: Threading.coreCount)
        #expect(one.0 == two.0)
        #expect(one.1 == two.1)
    }

    @Test func spanAndRunModesGiveTheSameBytes() {
        let value = Tensor.randn([300, 40], seed: 3), base = Tensor.randn([300, 40], seed: 4)
        for list in [[1, 2, 5], [0, 3, 4, 5, 17, 18, 39], Array(10..<30), [7]] {
            for absolute in [false, true] {
                let span = sliceReduce(value, axis: .columns, runs: ChannelRuns(list, useSpan: true), absolute: absolute)
                let runs = sliceReduce(value, axis: .columns, runs: ChannelRuns(list, useSpan: false), absolute: absolute)
                #expect(span == runs, "\(list)")
                #expect(span.allSatisfy { $0 > 0 })
            }
            let coefficients = list.map { Float($0) * 0.1 + 1 }
            for sign in [false, true] {
                let a = base.copy(), b = base.copy()
                sliceAccumulate(grad: a, value: value, axis: .columns, runs: ChannelRuns(list, useSpan: true), coefficients: coefficients, sign: sign)
                sliceAccumulate(grad: b, value: value, axis: .columns, runs: ChannelRuns(list, useSpan: false), coefficients: coefficients, sign: sign)
                #expect(a.array == b.array, "\(list)")
                // Only the listed columns moved.
                for r in 0..<300 { for c in 0..<40 where !list.contains(c) { #expect(a[r, c] == base[r, c]) } }
            }
        }
    }

    @Test func emptySetCostsNothing() throws {
        let config = DressFixtures.gpt2
        let p = DressFixtures.parameters(config, seed: 2)
        let none = try ChannelSet(hiddenSize: 8, pruned: [])
        #expect(ChannelRegularizer.penalty(parameters: p, config: config, channels: none) == 0)
        ChannelRegularizer.addPenaltyGradient(parameters: p, config: config, channels: none, lambda: 1)
        #expect(p.grads.array.allSatisfy { $0 == 0 })
        #expect(ChannelRegularizer.sliceEnergy(parameters: p, config: config, channels: none).relative == 0)
    }
}

@Suite struct LambdaScheduleTests {
    @Test func values() {
        #expect(LambdaSchedule.constant(1e-3).lambda(0) == 1e-3)
        #expect(LambdaSchedule.constant(1e-3).lambda(10_000) == 1e-3)
        let ramp = LambdaSchedule.linearRamp(from: 0, to: 1e-2, steps: 100)
        #expect(ramp.lambda(0) == 0)
        #expect(abs(ramp.lambda(25) - 2.5e-3) < 1e-15)
        #expect(ramp.lambda(100) == 1e-2)
        #expect(ramp.lambda(500) == 1e-2)
        #expect(LambdaSchedule.linearRamp(from: 1, to: 2, steps: 0).lambda(0) == 2)
    }
}

@Suite struct RegularizeThenPruneTests {
    /// LM loss of `parameters` on the batch, through a fresh decoder.
    private func loss(_ config: ModelConfig, _ parameters: ParameterSet, _ tokens: [Int32], _ targets: [Int32], B: Int, T: Int) throws -> Float {
        try Decoder(config: config, parameters: parameters).loss(tokens: tokens, targets: targets, B: B, T: T)
    }

    /// Issue 5's "after regularize with a large λ the selected slices' energy falls below a small
    /// threshold", in miniature: LM loss + λ·penalty by SGD on a repeated sequence, then zero and prune.
    @Test(arguments: [ModelConfig.llama(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 2, kvHeads: 1, headDim: 4, ffn: 12),
                      ModelConfig.gpt2(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 2, ffn: 16, maxPositions: 16)])
    func largeLambdaEmptiesTheSlicesAndPruningCostsNothing(config: ModelConfig) throws {
        let (B, T) = (2, 12)
        let pattern: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        let stream = (0..<(B * T + 1)).map { pattern[$0 % pattern.count] }
        let tokens = Array(stream[0..<(B * T)]), targets = Array(stream[1...(B * T)])
        let channels = try ChannelSelection.last(ratio: 0.25, hiddenSize: config.hiddenSize)
        func train(lambda: Double) -> Decoder {
            let model = Decoder.initialized(config: config, seed: 1)
            for step in 0..<250 {
                model.parameters.zeroGrads()
                model.forward(tokens: tokens, targets: targets, B: B, T: T)
                model.backward()
                ChannelRegularizer.addPenaltyGradient(parameters: model.parameters, config: config, channels: channels,
                                                      norm: .l2, lambda: lambda)
                // Plain SGD (the toy initialisation needs a large rate), then a smaller one so the ℓ2
                // group-lasso steps of size lr·λ stop overshooting zero.
                let lr: Float = step < 200 ? 0.5 : 0.05
                let values = model.parameters.values.data, grads = model.parameters.grads.data
                for i in 0..<model.parameters.count { values[i] -= lr * grads[i] }
            }
            return model
        }
        let plain = train(lambda: 0), regularized = train(lambda: 0.05)
        let before = ChannelRegularizer.sliceEnergy(parameters: plain.parameters, config: config, channels: channels)
        let after = ChannelRegularizer.sliceEnergy(parameters: regularized.parameters, config: config, channels: channels)
        let prunedConfigValue = try prunedConfig(config, channels: channels)
        func prunedLoss(_ model: Decoder) throws -> Float {
            let p = ParameterSet(config.parameterSpecs)
            p.values.assign(model.parameters.values)
            ChannelRegularizer.zeroChannels(parameters: p, config: config, channels: channels)
            return try loss(prunedConfigValue, pruneParameters(p, config: config, channels: channels), tokens, targets, B: B, T: T)
        }
        let plainLoss = try loss(config, plain.parameters, tokens, targets, B: B, T: T)
        let regularizedLoss = try loss(config, regularized.parameters, tokens, targets, B: B, T: T)
        let plainPruned = try prunedLoss(plain), regularizedPruned = try prunedLoss(regularized)
        let name = config.architecture
        #expect(before.relative > 0.3, "\(name): without λ the selected channels keep their share (\(before.relative))")
        #expect(after.relative < 1e-4, "\(name): relative energy left \(after.relative)")
        #expect(regularizedLoss < 0.5, "\(name): the regularized model still learns (loss \(regularizedLoss))")
        // Pruning the emptied channels costs (almost) nothing; pruning them without regularization costs.
        let regularizedCost = abs(regularizedPruned - regularizedLoss), directCost = plainPruned - plainLoss
        #expect(regularizedCost < 1e-4, "\(name): pruning the regularized model changed its loss by \(regularizedCost)")
        #expect(directCost > 100 * regularizedCost && directCost > 1e-2,
                "\(name): direct pruning changed the loss by only \(directCost)")
    }
}
