// Decoder.residualSquareSums against the float64 reference decoder: the residual stream at every
// layer's input and at the final norm's input, squared and summed over tokens per channel.

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
}
