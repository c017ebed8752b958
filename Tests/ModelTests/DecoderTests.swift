// Decoder behaviour beyond gradients: learning, determinism, the chunked evaluation paths, the KV
// cache and generation, the activation plan, and config/parameter validation.

import Foundation
import Testing
import Tensor
@testable import Model

@Suite struct DecoderTests {
    @Test(arguments: [ToyConfigs.llamaGQAUntied, ToyConfigs.gpt2])
    func sgdDrivesTheLossOnARepeatedSequenceNearZero(_ config: ModelConfig) {
        let model = Decoder.initialized(config: config, seed: 1)
        let (B, T) = (2, 12)
        let pattern: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        let stream = (0..<(B * T + 1)).map { pattern[$0 % pattern.count] }
        let tokens = Array(stream[0..<(B * T)]), targets = Array(stream[1...(B * T)])
        let first = model.forward(tokens: tokens, targets: targets, B: B, T: T)
        model.backward()
        var last = first
        for _ in 0..<400 {
            model.parameters.zeroGrads()
            last = model.forward(tokens: tokens, targets: targets, B: B, T: T)
            model.backward()
            // Plain SGD; lr 0.5 is large, but the 0.02-scale initialisation needs it to move in 400 steps.
            let values = model.parameters.values.data, grads = model.parameters.grads.data
            for i in 0..<model.parameters.count { values[i] -= 0.5 * grads[i] }
        }
        #expect(first > 2, "initial loss \(first) should be near ln V = \(log(Double(config.vocabSize)))")
        #expect(last < 0.05, "loss after training: \(last)")
    }

    @Test func initializationIsDeterministicAndFollowsTheRecipe() {
        let config = ToyConfigs.gpt2
        let a = Decoder.initialized(config: config, seed: 42), b = Decoder.initialized(config: config, seed: 42)
        let c = Decoder.initialized(config: config, seed: 43)
        #expect(a.parameters.values.array == b.parameters.values.array)
        #expect(a.parameters.values.array != c.parameters.values.array)
        #expect(a.parameters.value("layers/0/attn_norm/scale").array.allSatisfy { $0 == 1 })
        #expect(a.parameters.value("layers/1/mlp/b_up").array.allSatisfy { $0 == 0 })
        #expect(a.parameters.value("final_norm/shift").array.allSatisfy { $0 == 0 })
        let big = ModelConfig.llama(vocabSize: 64, hiddenSize: 128, layers: 8, heads: 4, kvHeads: 2, ffn: 256)
        let model = Decoder.initialized(config: big, seed: 7)
        func std(_ name: String) -> Double {
            let v = model.parameters.value(name).array.map(Double.init)
            let mean = v.reduce(0, +) / Double(v.count)
            return (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        }
        #expect(abs(std("layers/3/mlp/w_up") - 0.02) < 0.001)
        #expect(abs(std("layers/3/attn/wo") - 0.02 / 4) < 0.0003)  // 1/√(2L) = 1/4 for L = 8
    }

    @Test(arguments: [ToyConfigs.llamaMQATied, ToyConfigs.gpt2Irregular])
    func chunkedNegativeLogLikelihoodMatchesFullLogits(_ config: ModelConfig) {
        let model = Decoder.initialized(config: config, seed: 2)
        randomize(model.parameters, seed: 3)
        let (B, T) = (3, 5)
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 4)
        let logits = model.logits(tokens: tokens, B: B, T: T)
        var expected = 0.0
        for n in 0..<(B * T) where targets[n] >= 0 {
            let row = (0..<config.vocabSize).map { Double(logits.data[n * config.vocabSize + $0]) }
            let m = row.max()!
            expected += log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[Int(targets[n])]
        }
        model.lmHeadChunkRows = 4  // 15 rows: chunks of 4, 4, 4, 3
        let (sum, count) = model.negativeLogLikelihood(tokens: tokens, targets: targets, B: B, T: T)
        #expect(count == B * T - 1)
        #expect(abs(sum - expected) < 1e-5 * expected)
        // The training forward's fused chunks agree too.
        let mean = model.forward(tokens: tokens, targets: targets, B: B, T: T)
        #expect(abs(Double(mean) - expected / Double(count)) < 1e-5 * expected / Double(count))
        model.backward()
    }

    @Test(arguments: [ToyConfigs.llamaGQAUntied, ToyConfigs.gpt2, ToyConfigs.llamaIrregular, ToyConfigs.llamaShortcuts])
    func kvCacheDecodingReproducesTheFullForwardAtEveryPosition(_ config: ModelConfig) {
        let model = Decoder.initialized(config: config, seed: 5)
        randomize(model.parameters, seed: 6)
        let (B, T, P) = (3, 9, 4)
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 7)
        let full = model.logits(tokens: tokens, B: B, T: T)  // (B, T, V)
        let V = config.vocabSize
        let cache = model.makeCache(batch: B, capacity: T)
        let prompt = (0..<B).flatMap { b in tokens[(b * T)..<(b * T + P)] }
        let prefill = model.step(tokens: prompt, B: B, T: P, cache: cache, allPositions: true)  // (B, P, V)
        var worst: Float = 0
        for b in 0..<B {
            for t in 0..<P {
                for i in 0..<V { worst = max(worst, abs(prefill.data[(b * P + t) * V + i] - full.data[(b * T + t) * V + i])) }
            }
        }
        for t in P..<T {
            let next = (0..<B).map { tokens[$0 * T + t] }
            let logits = model.step(tokens: next, B: B, T: 1, cache: cache)  // (B, V)
            for b in 0..<B {
                for i in 0..<V { worst = max(worst, abs(logits.data[b * V + i] - full.data[(b * T + t) * V + i])) }
            }
        }
        #expect(cache.length == T)
        #expect(worst < 1e-4, "largest logit difference \(worst)")
    }

    @Test func greedyGenerationMatchesArgmaxOfFullForwards() {
        let config = ToyConfigs.llamaGQAUntied
        let model = Decoder.initialized(config: config, seed: 8)
        randomize(model.parameters, seed: 9)
        let prompts: [[Int32]] = [[1, 2, 3], [4, 4, 0], [10, 9, 8]]
        let batched = model.generate(prompts: prompts, maxNewTokens: 6)
        for (b, prompt) in prompts.enumerated() {
            var sequence = prompt
            for _ in 0..<6 {
                let logits = model.logits(tokens: sequence, B: 1, T: sequence.count)
                let last = Array(logits.array.suffix(config.vocabSize))
                sequence.append(Int32(last.indices.max { last[$0] < last[$1] }!))
            }
            #expect(batched[b] == Array(sequence.dropFirst(prompt.count)), "sequence \(b)")
            #expect(model.generate(prompt: prompt, maxNewTokens: 6) == batched[b])
        }
        // Stop token: generation ends right after emitting it.
        let stop = batched[0][2]
        let stopped = model.generate(prompt: prompts[0], maxNewTokens: 6, stopAt: stop)
        #expect(stopped == Array(batched[0].prefix(through: batched[0].firstIndex(of: stop)!)))
        // The context limit caps the new tokens: positions 3..<16 are fed back, and the token predicted
        // at the last position is returned too, so 3 + 14 = 17 tokens.
        #expect(model.generate(prompt: prompts[0], maxNewTokens: 40).count == 14)
    }

    @Test func samplingIsSeededAndTopKOneIsGreedy() {
        let model = Decoder.initialized(config: ToyConfigs.gpt2, seed: 10)
        randomize(model.parameters, seed: 11)
        let prompt: [Int32] = [1, 2]
        let a = model.generate(prompt: prompt, maxNewTokens: 8, temperature: 1, seed: 5)
        #expect(a == model.generate(prompt: prompt, maxNewTokens: 8, temperature: 1, seed: 5))
        let seeds = (0..<6).map { model.generate(prompt: prompt, maxNewTokens: 8, temperature: 1, seed: UInt64($0)) }
        #expect(Set(seeds).count > 1)
        #expect(model.generate(prompt: prompt, maxNewTokens: 8, temperature: 1, topK: 1, seed: 3)
                == model.generate(prompt: prompt, maxNewTokens: 8))
    }

    /// Top-k candidates are the prefix of the vocabulary sorted by logit (ties to the lower id).
    @Test func topKSelectionIsTheSortsPrefix() {
        var rng = RNG(seed: 12)
        for trial in 0..<12 {
            let V = 50 + trial * 37
            let logits: [Float] = (0..<V).map { _ in Float(rng.nextInt(below: 7)) }   // few values: many ties
            let sorted = (0..<V).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            for k in [1, 5, V - 1, V] {
                let picked = logits.withUnsafeBufferPointer { Decoder.largest($0.baseAddress!, count: V, k: k) }
                #expect(picked == Array(sorted.prefix(k)), "V \(V) k \(k)")
            }
        }
    }

    /// Banned tokens are never produced; the streams of a batch are the seed's streams from `firstStream`
    /// (a batch of one at stream k samples like sequence k − first of a batch from `first`, greedy-equal
    /// logits aside); `afterStep` counts every new token.
    @Test func bannedTokensNeverAppearAndStreamsOffset() {
        let config = ToyConfigs.gpt2, V = config.vocabSize
        let model = Decoder.initialized(config: config, seed: 10)
        randomize(model.parameters, seed: 11)
        let banned: [Int32] = (0..<Int32(V)).filter { $0 % 3 != 0 }
        var steps = 0
        let out = model.generate(prompts: [[1, 2], [3, 4]], maxNewTokens: 9, temperature: 2, seed: 5, banned: banned) { steps = $0 }
        #expect(steps == 9 && out.allSatisfy { $0.count == 9 })
        #expect(out.joined().allSatisfy { $0 % 3 == 0 }, "\(out)")
        let greedyBanned = model.generate(prompts: [[1, 2]], maxNewTokens: 5, banned: banned)[0]
        #expect(greedyBanned.allSatisfy { $0 % 3 == 0 })
        let pair = model.generate(prompts: [[1, 2], [1, 2]], maxNewTokens: 6, temperature: 1, seed: 4, firstStream: 7)
        #expect(pair[1] == model.generate(prompts: [[1, 2]], maxNewTokens: 6, temperature: 1, seed: 4, firstStream: 8)[0])
        #expect(pair[0] == model.generate(prompts: [[1, 2]], maxNewTokens: 6, temperature: 1, seed: 4, firstStream: 7)[0])
    }

    @Test func activationArenaIsPlannedOncePerShape() {
        let config = ToyConfigs.llamaGQAUntied
        let model = Decoder.initialized(config: config, seed: 1)
        #expect(model.activationBytes == 0)
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: 2, T: 6, seed: 2)
        model.forward(tokens: tokens, targets: targets, B: 2, T: 6)
        model.backward()
        #expect(model.activationBytes == model.activationBytes(B: 2, T: 6))
        #expect(model.activationBytes(B: 4, T: 6) > model.activationBytes(B: 2, T: 6))
        // Kept per layer per token at least: input, 2 norm outputs, mid (C each), q, att (16), k, v (8), gate, up (F).
        let perToken = (config.layers.map { 4 * config.hiddenSize + 2 * 16 + 2 * 8 + 2 * $0.ffn }.reduce(0, +)) * 4
        #expect(model.activationBytes >= perToken * 12)
    }

    @Test func flopCountMatchesTheShapes() {
        let config = ModelConfig.llama(vocabSize: 100, hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 4, ffn: 32)
        let model = Decoder.initialized(config: config, seed: 1)
        // Per layer: q, o 16·16; k, v 16·8; gate, up, down 16·32. Head 16·100.
        let linear = 2.0 * (2 * (2 * 256 + 2 * 128 + 3 * 512) + 1600)
        let attention = 2.0 * 2 * 4 * 4 * Double(8 + 1) / 2 * 2  // QKᵀ and P·V, NH·HD = 16, (T+1)/2 keys, 2 layers
        #expect(model.flopsPerToken(T: 8, training: false) == linear + attention)
        // Training: forward, backward's four products and the recomputed QKᵀ (half the forward's).
        #expect(model.flopsPerToken(T: 8, training: true) == 3 * linear + 3.5 * attention)
        // Residual shortcut matrices (SliceGPT): two 16·16 products per layer.
        var sliced = config
        sliced.shortcuts = true
        let withShortcuts = Decoder.initialized(config: sliced, seed: 1)
        #expect(withShortcuts.flopsPerToken(T: 8, training: false) == linear + 2.0 * 2 * 2 * 256 + attention)
    }

    @Test func mismatchedParametersAndBadConfigsAreReportedByName() {
        let config = ToyConfigs.gpt2
        var specs = config.parameterSpecs
        specs[3] = ParameterSpec(specs[3].name, [specs[3].shape[0] + 1] + specs[3].shape.dropFirst())
        #expect(throws: ModelError.parameterMismatch(name: config.parameterSpecs[3].name, expected: config.parameterSpecs[3].shape,
                                                     found: specs[3].shape)) {
            try Decoder(config: config, parameters: ParameterSet(specs))
        }
        #expect(throws: ModelError.parameterMismatch(name: "lm_head", expected: nil, found: [11, 8])) {
            try Decoder(config: config, parameters: ParameterSet(config.parameterSpecs + [ParameterSpec("lm_head", [11, 8])]))
        }
        var bad = ToyConfigs.llamaGQAUntied
        bad.layers[1].kvHeads = 3
        #expect(throws: ModelError.self) { try Decoder(config: bad, parameters: ParameterSet(bad.parameterSpecs)) }
        let error = ModelError.invalidConfig(field: "layers[1].heads", reason: "x")
        #expect(error.description.contains("layers[1].heads"))
    }
}

/// `gemmShapes` lists exactly the linear-layer and LM-head work `flopsPerToken` counts.
@Suite struct GEMMShapeTests {
    @Test(arguments: [ToyConfigs.llamaGQAUntied, ToyConfigs.gpt2, ToyConfigs.llamaIrregular])
    func gemmFlopsAreTheLinearPartOfTheCount(_ config: ModelConfig) {
        let model = Decoder.initialized(config: config, seed: 1)
        model.lmHeadChunkRows = 3  // 2 × 5 = 10 rows: three full chunks and a rest of one
        let (B, T) = (2, 5)
        func total(_ calls: [(shape: GEMMShape, count: Int)]) -> Double { calls.reduce(0) { $0 + Double($1.count) * $1.shape.flops } }
        let forward = total(model.gemmShapes(B: B, T: T, training: false))
        let training = total(model.gemmShapes(B: B, T: T, training: true))
        // flopsPerToken = linear + attention, attention = Σ layers 4·NH·HD·(T + 1)/2 forward, 3.5× that in training.
        let attention = config.layers.reduce(0.0) { $0 + 4 * Double($1.heads * config.headDim) * Double(T + 1) / 2 }
        let N = Double(B * T)
        #expect(abs(forward - N * (model.flopsPerToken(T: T, training: false) - attention)) < 1e-6 * forward)
        #expect(abs(training - N * (model.flopsPerToken(T: T, training: true) - 3.5 * attention)) < 1e-6 * training)
        #expect(training == 3 * forward)
    }
}
