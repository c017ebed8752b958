// The calibration statistics of Decoder+ChannelStatistics against the float64 reference decoder:
// residualSquareSums (the stream at every layer's input and the final norm's input, squared),
// normOutputAbsSums (|output| of all 2L + 1 norms) and residualTaylorSums (|x·∂L/∂x| at the 2L + 1
// norm inputs, ∂L/∂x by central differences of the reference loss), each summed over tokens per channel.

import Foundation
import Testing
import Tensor
@testable import Model

@Suite struct ChannelStatisticsTests {
    @Test(arguments: [ToyConfigs.llamaGQAUntied, ToyConfigs.gpt2, ToyConfigs.llamaIrregular])
    func squareSumsMatchTheReferenceStream(config: ModelConfig) throws {
        let model = try Decoder(config: config, parameters: ParameterSet(config.parameterSpecs))
        randomize(model.parameters, seed: 21)
        let B = 2, T = 5
        let (tokens, _) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 4)
        let sums = model.residualSquareSums(tokens: tokens, B: B, T: T)

        // The reference stream: embeddings (+ learned positions), then each layer in turn.
        let reference = ReferenceDecoder(model), C = config.hiddenSize
        var x = (0..<(B * T)).map { n -> [Double] in
            let id = Int(tokens[n])
            var row = Array(reference.weights["embed/tokens"]![(id * C)..<(id * C + C)])
            if config.positions == .learned {
                for c in 0..<C { row[c] += reference.weights["embed/positions"]![(n % T) * C + c] }
            }
            return row
        }
        var expected: [[Double]] = []
        for l in 0..<config.layerCount {
            expected.append((0..<C).map { c in x.reduce(0) { $0 + $1[c] * $1[c] } })
            x = reference.layer(l, x, B: B, T: T)
        }
        expected.append((0..<C).map { c in x.reduce(0) { $0 + $1[c] * $1[c] } })

        #expect(sums.count == config.layerCount + 1)
        for (point, (got, want)) in zip(sums, expected).enumerated() {
            for c in 0..<C {
                #expect(abs(got[c] - want[c]) <= 1e-4 * max(1, abs(want[c])), "point \(point) channel \(c): \(got[c]) vs \(want[c])")
            }
        }
        // Statistics read the stream only: the logits afterwards are those of a fresh forward.
        let after = model.logits(tokens: tokens, B: B, T: T).array
        let fresh = try Decoder(config: config, parameters: model.parameters).logits(tokens: tokens, B: B, T: T).array
        #expect(after == fresh)
    }

    /// The reference stream at the 2L + 1 norm inputs in forward order (layer l's attn_norm input at 2l,
    /// its mlp_norm input at 2l + 1, the final norm's input at 2L), and the loss as a function of the
    /// stream at one of them with everything below it fixed.
    struct ReferencePoints {
        let reference: ReferenceDecoder
        let B: Int, T: Int
        let targets: [Int32]
        var streams: [[[Double]]] = []

        init(_ reference: ReferenceDecoder, tokens: [Int32], targets: [Int32], B: Int, T: Int) {
            (self.reference, self.B, self.T, self.targets) = (reference, B, T, targets)
            var x = reference.embed(tokens: tokens, B: B, T: T)
            for l in 0..<reference.config.layerCount {
                streams.append(x)
                x = reference.attentionBlock(l, x, B: B, T: T)
                streams.append(x)
                x = reference.mlpBlock(l, x)
            }
            streams.append(x)
        }

        func loss(point: Int, stream: [[Double]]) -> Double {
            var x = stream
            let L = reference.config.layerCount
            if point < 2 * L {
                if point % 2 == 0 { x = reference.attentionBlock(point / 2, x, B: B, T: T) }
                x = reference.mlpBlock(point / 2, x)
                for l in (point / 2 + 1)..<L { x = reference.layer(l, x, B: B, T: T) }
            }
            return reference.crossEntropy(reference.head(x), targets: targets)
        }
    }

    @Test(arguments: [ToyConfigs.llamaGQAUntied, ToyConfigs.gpt2, ToyConfigs.llamaIrregular])
    func normOutputSumsMatchTheReferenceNorms(config: ModelConfig) throws {
        let model = try Decoder(config: config, parameters: ParameterSet(config.parameterSpecs))
        randomize(model.parameters, seed: 23)
        let B = 2, T = 5, C = config.hiddenSize
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 6)
        let sums = model.normOutputAbsSums(tokens: tokens, B: B, T: T)

        let reference = ReferenceDecoder(model)
        let points = ReferencePoints(reference, tokens: tokens, targets: targets, B: B, T: T)
        let norms = (0..<config.layerCount).flatMap { ["layers/\($0)/attn_norm", "layers/\($0)/mlp_norm"] } + ["final_norm"]
        #expect(sums.count == norms.count)
        for (point, (got, name)) in zip(sums, norms).enumerated() {
            let out = reference.norm(name, points.streams[point])
            for c in 0..<C {
                let want = out.reduce(0) { $0 + abs($1[c]) }
                #expect(abs(got[c] - want) <= 1e-4 * max(1, want), "\(name) channel \(c): \(got[c]) vs \(want)")
            }
        }
    }

    @Test(arguments: [ToyConfigs.llamaGQAUntied, ToyConfigs.gpt2, ToyConfigs.llamaIrregular, ToyConfigs.opt])
    func taylorSumsMatchFiniteDifferences(config: ModelConfig) throws {
        let model = try Decoder(config: config, parameters: ParameterSet(config.parameterSpecs))
        randomize(model.parameters, seed: 25)
        let B = 2, T = 4, C = config.hiddenSize
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 8)
        let sums = model.residualTaylorSums(tokens: tokens, targets: targets, B: B, T: T)
        // Base gradients are not touched.
        #expect(model.parameters.grads.array.allSatisfy { $0 == 0 })

        let points = ReferencePoints(ReferenceDecoder(model), tokens: tokens, targets: targets, B: B, T: T)
        #expect(sums.count == 2 * config.layerCount + 1)
        let h = 1e-5
        for point in 0..<sums.count {
            let stream = points.streams[point]
            var want = [Double](repeating: 0, count: C)
            for n in 0..<(B * T) {
                for c in 0..<C {
                    var up = stream, down = stream
                    up[n][c] += h
                    down[n][c] -= h
                    let gradient = (points.loss(point: point, stream: up) - points.loss(point: point, stream: down)) / (2 * h)
                    want[c] += abs(stream[n][c] * gradient)
                }
            }
            let scale = want.max()!
            #expect(scale > 1e-3, "point \(point): the check needs gradients well above rounding")
            for c in 0..<C {
                #expect(abs(sums[point][c] - want[c]) <= 2e-3 * scale, "point \(point) channel \(c): \(sums[point][c]) vs \(want[c])")
            }
        }
    }

    @Test func taylorSumsLeaveTrainingUnchanged() throws {
        let config = ToyConfigs.llamaMQATied
        let model = try Decoder(config: config, parameters: ParameterSet(config.parameterSpecs))
        randomize(model.parameters, seed: 27)
        let fresh = try Decoder(config: config, parameters: ParameterSet(config.parameterSpecs))
        randomize(fresh.parameters, seed: 27)
        let B = 2, T = 5
        let (tokens, targets) = randomBatch(vocab: config.vocabSize, B: B, T: T, seed: 9)
        _ = model.residualTaylorSums(tokens: tokens, targets: targets, B: B, T: T)
        #expect(model.trainBase)
        let loss = model.forward(tokens: tokens, targets: targets, B: B, T: T)
        model.backward()
        let freshLoss = fresh.forward(tokens: tokens, targets: targets, B: B, T: T)
        fresh.backward()
        #expect(loss == freshLoss)
        #expect(model.parameters.grads.array == fresh.parameters.grads.array)
    }
}
