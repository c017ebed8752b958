// Tests of hidden-channel surgery: the channel set's validation and coding, which parameters carry the
// hidden axis, the pruned config (widths, divisor, parameter count by an explicit formula), element-by-
// element copies of the kept slices, and the RMSNorm rescaling option.

import Foundation
import Model
import Tensor
import Testing

private enum SurgeryFixtures {
    /// LLaMA family, GQA, NH·HD ≠ C, untied LM head.
    static let llama = ModelConfig.llama(vocabSize: 13, hiddenSize: 8, layers: 2, heads: 4, kvHeads: 2,
                                         headDim: 4, ffn: 5, tiedEmbeddings: false)
    /// GPT-2 family: LayerNorm shift, biases, learned positions, tied embeddings.
    static let gpt2 = ModelConfig.gpt2(vocabSize: 13, hiddenSize: 8, layers: 2, heads: 2, ffn: 6, maxPositions: 9)

    /// Parameters whose every value is distinct (value = 1 + flat index / 1000), so a misplaced copy shows.
    static func parameters(_ config: ModelConfig) -> ParameterSet {
        let p = ParameterSet(config.parameterSpecs)
        for i in 0..<p.count { p.values[flat: i] = 1 + Float(i) / 1000 }
        return p
    }
}

@Suite struct ChannelSurgeryTests {
    let set = try! ChannelSet(hiddenSize: 8, pruned: [6, 0, 3])

    @Test func channelSetSortsAndComplements() throws {
        #expect(set.pruned == [0, 3, 6])
        #expect(set.kept == [1, 2, 4, 5, 7])
        #expect(abs(set.ratio - 0.375) < 1e-15)
        #expect(throws: ChannelSetError.channelOutOfRange(index: 8, hiddenSize: 8)) { try ChannelSet(hiddenSize: 8, pruned: [1, 8]) }
        #expect(throws: ChannelSetError.duplicateChannel(index: 2)) { try ChannelSet(hiddenSize: 8, pruned: [2, 1, 2]) }
        #expect(throws: ChannelSetError.prunesEverything(hiddenSize: 2)) { try ChannelSet(hiddenSize: 2, pruned: [0, 1]) }
    }

    @Test func channelSetCoding() throws {
        let json = try JSONEncoder().encode(set)
        #expect(String(decoding: json, as: UTF8.self).contains("hidden_size"))
        #expect(try JSONDecoder().decode(ChannelSet.self, from: json) == set)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ChannelSet.self, from: Data(#"{"hidden_size":4,"pruned":[1,9]}"#.utf8))
        }
    }

    @Test func hiddenChannelTensorsOfGPT2() {
        let names = SurgeryFixtures.gpt2.hiddenChannelTensors.filter { !$0.name.hasPrefix("layers/1/") }
        let expected: [(String, HiddenAxis)] = [
            ("embed/tokens", .columns), ("embed/positions", .columns),
            ("layers/0/attn_norm/scale", .entries), ("layers/0/attn_norm/shift", .entries),
            ("layers/0/attn/wq", .columns), ("layers/0/attn/wk", .columns), ("layers/0/attn/wv", .columns),
            ("layers/0/attn/wo", .rows), ("layers/0/attn/bo", .entries),
            ("layers/0/mlp_norm/scale", .entries), ("layers/0/mlp_norm/shift", .entries),
            ("layers/0/mlp/w_up", .columns), ("layers/0/mlp/w_down", .rows), ("layers/0/mlp/b_down", .entries),
            ("final_norm/scale", .entries), ("final_norm/shift", .entries),
        ]
        #expect(names.map(\.name) == expected.map(\.0))
        #expect(names.map(\.axis) == expected.map(\.1))
        // The channel axis has length C in every listed tensor.
        for t in SurgeryFixtures.gpt2.hiddenChannelTensors {
            let C = t.axis == .rows ? t.shape[0] : t.shape.last!
            #expect(C == 8, "\(t.name)")
        }
    }

    @Test func prunedConfigShrinksOnlyTheHiddenWidth() throws {
        let llama = SurgeryFixtures.llama
        let pruned = try prunedConfig(llama, channels: set)
        #expect(pruned.hiddenSize == 5)
        #expect(pruned.normDivisor == 8)
        var back = pruned
        back.hiddenSize = 8
        #expect(back == llama)
        // Removed per channel (explicit): V (tokens) + L·(1 + q + kv + kv + q + 1 + 3F) + 1 + V (lm_head).
        let L = 2, V = 13, q = 4 * 4, kv = 2 * 4, F = 5
        let perChannel = V + L * (1 + q + kv + kv + q + 1 + 3 * F) + 1 + V
        #expect(pruned.parameterCount == llama.parameterCount - 3 * perChannel)

        let gpt2 = SurgeryFixtures.gpt2
        let g = try prunedConfig(gpt2, channels: set)
        // GPT-2 (tied): V + P (positions) + L·(2 + q + q + q + q + 1 + 2 + F + F + 1) + 2.
        let Q = 2 * 4, G = 6, P = 9
        let gptPerChannel = V + P + L * (2 + 4 * Q + 1 + 2 + 2 * G + 1) + 2
        #expect(g.parameterCount == gpt2.parameterCount - 3 * gptPerChannel)
        // A second pruning keeps the original divisor.
        let twice = try prunedConfig(g, channels: ChannelSet(hiddenSize: 5, pruned: [4]))
        #expect(twice.hiddenSize == 4 && twice.normDivisor == 8)
    }

    @Test func pruneParametersCopiesExactlyTheKeptSlices() throws {
        for config in [SurgeryFixtures.llama, SurgeryFixtures.gpt2] {
            let dense = SurgeryFixtures.parameters(config)
            let newConfig = try prunedConfig(config, channels: set)
            let pruned = try pruneParameters(dense, config: config, channels: set)
            #expect(pruned.specs == newConfig.parameterSpecs)
            #expect(pruned.count == newConfig.parameterCount)
            #expect(pruned.grads.array.allSatisfy { $0 == 0 })
            #expect(pruned.values.storage !== dense.values.storage)
            let kept = set.kept
            var columnNames = ["embed/tokens", "layers/1/attn/wq", "layers/0/attn/wk", "layers/1/mlp/w_up"]
            columnNames.append(config.tiedEmbeddings ? "embed/positions" : "lm_head")
            for name in columnNames {
                let a = dense.value(name), b = pruned.value(name)
                #expect(b.shape == [a.shape[0], 5])
                for r in 0..<a.shape[0] { for (j, c) in kept.enumerated() { #expect(b[r, j] == a[r, c], "\(name)[\(r), \(j)]") } }
            }
            for name in ["layers/0/attn/wo", "layers/1/mlp/w_down"] {
                let a = dense.value(name), b = pruned.value(name)
                #expect(b.shape == [5, a.shape[1]])
                for (j, c) in kept.enumerated() { for k in 0..<a.shape[1] { #expect(b[j, k] == a[c, k], "\(name)[\(j), \(k)]") } }
            }
            var entryNames = ["layers/0/attn_norm/scale", "final_norm/scale"]
            if config.bias { entryNames += ["layers/1/attn/bo", "layers/0/mlp/b_down", "layers/1/mlp_norm/shift"] }
            for name in entryNames {
                let a = dense.value(name), b = pruned.value(name)
                #expect(b.shape == [5])
                for (j, c) in kept.enumerated() { #expect(b[j] == a[c], "\(name)[\(j)]") }
            }
            // Tensors without a hidden axis (GPT-2's q/k/v and up biases) are copied whole.
            if config.bias {
                for name in ["layers/1/attn/bk", "layers/0/mlp/b_up"] { #expect(pruned.value(name).array == dense.value(name).array) }
            }
        }
    }

    @Test func rescaleOptionForRMSNorm() throws {
        let config = SurgeryFixtures.llama
        let dense = SurgeryFixtures.parameters(config)
        let newConfig = try prunedConfig(config, channels: set, norms: .rescaleScales)
        #expect(newConfig.normDivisor == 5)
        #expect(abs(Double(newConfig.normEps) - Double(config.normEps) * 8 / 5) < 1e-12)
        let pruned = try pruneParameters(dense, config: config, channels: set, norms: .rescaleScales)
        let factor = (8.0 / 5.0).squareRoot()
        for name in ["layers/0/attn_norm/scale", "layers/1/mlp_norm/scale", "final_norm/scale"] {
            for (j, c) in set.kept.enumerated() {
                #expect(abs(Double(pruned.value(name)[j]) - Double(dense.value(name)[c]) * factor) < 1e-6)
            }
        }
        // Non-norm tensors are untouched by the option.
        #expect(pruned.value("layers/0/attn/wv").array == (try pruneParameters(dense, config: config, channels: set)).value("layers/0/attn/wv").array)
        #expect(throws: ChannelSetError.rescaleNeedsRMSNorm(norm: .layernorm)) {
            try prunedConfig(SurgeryFixtures.gpt2, channels: set, norms: .rescaleScales)
        }
    }

    @Test func rescaledRMSNormEqualsTheDenseOneOnZeroChannels() throws {
        // RMSNorm of a vector with zeros at P, by the formula, before and after deletion and rescaling.
        let config = SurgeryFixtures.llama
        let newConfig = try prunedConfig(config, channels: set, norms: .rescaleScales)
        var x = [Double](repeating: 0, count: 8)
        for c in set.kept { x[c] = Double(c) * 0.37 - 1 }
        let g = (0..<8).map { 0.5 + Double($0) / 8 }
        let sumSq = x.reduce(0) { $0 + $1 * $1 }
        let rDense = 1 / (sumSq / 8 + Double(config.normEps)).squareRoot()
        let rPruned = 1 / (sumSq / Double(newConfig.normDivisor) + Double(newConfig.normEps)).squareRoot()
        let factor = (8.0 / 5.0).squareRoot()
        for c in set.kept {
            let dense = x[c] * rDense * g[c], pruned = x[c] * rPruned * g[c] * factor
            #expect(abs(dense - pruned) <= 1e-6 * abs(dense))
        }
    }

    @Test func mismatchesThrow() throws {
        let config = SurgeryFixtures.llama
        let dense = SurgeryFixtures.parameters(config)
        let wide = try ChannelSet(hiddenSize: 9, pruned: [1])
        #expect(throws: ChannelSetError.widthMismatch(channels: 9, model: 8)) { try prunedConfig(config, channels: wide) }
        let other = SurgeryFixtures.parameters(SurgeryFixtures.gpt2)
        #expect(throws: ChannelSetError.parameterMismatch(name: "layers/0/attn/wq", expected: [16, 8], found: [8, 8])) {
            try pruneParameters(other, config: config, channels: set)
        }
        let missing = ParameterSet(config.parameterSpecs.filter { $0.name != "lm_head" })
        #expect(throws: ChannelSetError.parameterMismatch(name: "lm_head", expected: [13, 8], found: nil)) {
            try pruneParameters(missing, config: config, channels: set)
        }
        #expect(try pruneParameters(dense, config: config, channels: set).count < dense.count)
    }
}

/// Logits of `config` over a fixed batch (B 2, T 5).
private func logitsOf(_ config: ModelConfig, _ parameters: ParameterSet) throws -> [Float] {
    let batch = randomBatch(vocab: config.vocabSize, B: 2, T: 5, seed: 17)
    return try Decoder(config: config, parameters: parameters).logits(tokens: batch.tokens, B: 2, T: 5).array
}

/// max |a − b| / max |a|.
private func maxRelativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    let scale = a.reduce(0) { max($0, abs(Double($1))) }
    return zip(a, b).reduce(0) { max($0, abs(Double($1.0) - Double($1.1))) } / scale
}

/// Sets every slice of `channels` to 0, written out from `hiddenChannelTensors` (Training's
/// `zeroChannels` is not visible from the Model tests; this also keeps the check independent of it).
private func zeroSlices(_ p: ParameterSet, _ config: ModelConfig, _ channels: ChannelSet) {
    for tensor in config.hiddenChannelTensors {
        let t = p.value(tensor.name)
        for c in channels.pruned {
            switch tensor.axis {
            case .columns: for r in 0..<t.shape[0] { t[r, c] = 0 }
            case .rows: for k in 0..<t.shape[1] { t[c, k] = 0 }
            case .entries: t[c] = 0
            }
        }
    }
}

@Suite struct ChannelSurgeryLogitTests {
    static let cases: [(String, ModelConfig, NormWidthPolicy)] = [
        ("llama GQA untied", ToyConfigs.llamaGQAUntied, .keepDivisor),
        ("llama GQA untied, rescaled", ToyConfigs.llamaGQAUntied, .rescaleScales),
        ("llama MQA tied", ToyConfigs.llamaMQATied, .keepDivisor),
        ("llama irregular (D 9, C 6)", ToyConfigs.llamaIrregular, .keepDivisor),
        ("llama irregular, rescaled", ToyConfigs.llamaIrregular, .rescaleScales),
        ("gpt2", ToyConfigs.gpt2, .keepDivisor),
        ("opt", ToyConfigs.opt, .keepDivisor),
        ("gpt2 irregular (D 10, C 6)", ToyConfigs.gpt2Irregular, .keepDivisor),
    ]

    @Test func pruningZeroedChannelsLeavesLogitsUnchanged() throws {
        for (name, config, norms) in Self.cases {
            let channels = try ChannelSet(hiddenSize: config.hiddenSize, pruned: [1, config.hiddenSize - 2])
            let dense = ParameterSet(config.parameterSpecs)
            randomize(dense, seed: 5)
            zeroSlices(dense, config, channels)
            let pruned = try pruneParameters(dense, config: config, channels: channels, norms: norms)
            let before = try logitsOf(config, dense)
            let after = try logitsOf(prunedConfig(config, channels: channels, norms: norms), pruned)
            #expect(before.count == after.count)
            let error = maxRelativeDifference(before, after)
            #expect(error < 1e-5, "\(name): relative logit change \(error)")
        }
    }

    @Test func pruningLiveChannelsChangesLogits() throws {
        // The same surgery without zeroing first must show up: the invariance above is not vacuous.
        for (name, config, norms) in Self.cases {
            let channels = try ChannelSet(hiddenSize: config.hiddenSize, pruned: [1, config.hiddenSize - 2])
            let dense = ParameterSet(config.parameterSpecs)
            randomize(dense, seed: 5)
            let pruned = try pruneParameters(dense, config: config, channels: channels, norms: norms)
            let error = maxRelativeDifference(try logitsOf(config, dense),
                                              try logitsOf(prunedConfig(config, channels: channels, norms: norms), pruned))
            #expect(error > 1e-3, "\(name): relative logit change \(error)")
        }
    }
}
