// `streamline bench engine`: forward and training-step speed of the decoder on random weights,
// reported as tokens/s, achieved GFLOP/s, and the ratio to cblas_sgemm measured in the same run,
// plus peak resident memory against the memory the design plans to keep.

import Foundation
import Model
import Tensor
import Training
import ArgumentParser

struct EngineBenchmark {
    /// A named model shape to measure.
    struct Case {
        var name: String
        var config: ModelConfig
        /// Sequences per batch and tokens per sequence.
        var B: Int, T: Int
    }

    /// SmolLM2-135M's shape (design.md) with random weights, and a small config for a quick look.
    static let defaultCases: [Case] = [
        Case(name: "small (6L d256 4/2h F768 V8192)",
             config: .llama(vocabSize: 8192, hiddenSize: 256, layers: 6, heads: 4, kvHeads: 2, ffn: 768, maxPositions: 512),
             B: 4, T: 512),
        Case(name: "SmolLM2-135M shape (30L d576 9/3h F1536 V49152)",
             config: .llama(vocabSize: 49152, hiddenSize: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64, ffn: 1536,
                            ropeTheta: 100_000, maxPositions: 2048),
             B: 4, T: 512),
    ]

    struct Result {
        var forwardTokensPerSecond: Double
        var forwardGFLOPS: Double
        var trainTokensPerSecond: Double
        var trainGFLOPS: Double
        var plannedTrainingBytes: Int
        var peakTrainingBytes: Int
    }

    /// Measures one case. `sgemmRate` is only used for the printed ratios.
    static func run(_ c: Case, seed: UInt64 = 0) -> Result {
        let model = Decoder.initialized(config: c.config, seed: seed)
        var rng = RNG(seed: seed, stream: 99)
        let n = c.B * c.T
        let tokens = (0..<n).map { _ in Int32(rng.nextInt(below: c.config.vocabSize)) }
        let targets = (0..<n).map { _ in Int32(rng.nextInt(below: c.config.vocabSize)) }

        // Forward as perplexity evaluation runs it: chunked NLL, no activations kept.
        _ = model.negativeLogLikelihood(tokens: tokens, targets: targets, B: c.B, T: c.T)
        let forwardTime = Measure.median(minRuns: 3, minSeconds: 2) {
            _ = model.negativeLogLikelihood(tokens: tokens, targets: targets, B: c.B, T: c.T)
        }

        // Training step: forward, backward, AdamW update.
        PeakMemory.reset()
        let optimizer = AdamW(sets: [model.parameters], config: AdamWConfig())
        let step = {
            model.parameters.zeroGrads()
            _ = model.forward(tokens: tokens, targets: targets, B: c.B, T: c.T)
            model.backward()
            optimizer.update(lr: 1e-4)
        }
        step()
        let trainTime = Measure.median(minRuns: 3, minSeconds: 2, step)
        let peak = PeakMemory.bytes()

        let weights = model.parameters.count * MemoryLayout<Float>.stride
        let planned = 4 * weights + model.activationBytes  // weights + grads + two Adam moments + kept activations
        return Result(
            forwardTokensPerSecond: Double(n) / forwardTime,
            forwardGFLOPS: model.flopsPerToken(T: c.T, training: false) * Double(n) / forwardTime / 1e9,
            trainTokensPerSecond: Double(n) / trainTime,
            trainGFLOPS: model.flopsPerToken(T: c.T, training: true) * Double(n) / trainTime / 1e9,
            plannedTrainingBytes: planned,
            peakTrainingBytes: peak)
    }
}

extension BenchCommand {
    /// `streamline bench engine`: decoder forward and training speed against cblas_sgemm.
    struct Engine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decoder forward and training-step speed (random weights) against cblas_sgemm, and peak memory.",
            discussion: """
                For each model shape: forward tokens/s as perplexity evaluation runs it (512-token windows), \
                training-step tokens/s (forward + backward + AdamW), the GFLOP/s both achieve, the cblas_sgemm \
                GFLOP/s measured just before on the model's dominant matrix shape, and their ratio. Peak memory \
                during training is compared with what the design keeps: weights + gradients + two Adam moments \
                + saved activations. Targets on a 2-core machine: forward ≥ 0.6 of sgemm, training ≥ 0.5, \
                peak ≤ 1.5 × planned.
                """)

        @OptionGroup var options: BenchOptions

        @Option(help: "Which shapes to run: all, small or smollm2.")
        var only: String = "all"

        func validate() throws {
            guard ["all", "small", "smollm2"].contains(only) else {
                throw ValidationError("--only must be all, small or smollm2 (got '\(only)').")
            }
        }

        func run() throws {
            options.apply()
            print("threads: \(Threading.threads)")
            let cases = EngineBenchmark.defaultCases.filter {
                only == "all" || (only == "small") == $0.name.hasPrefix("small")
            }
            for c in cases {
                let ffn = c.config.layers.first?.ffn ?? c.config.hiddenSize
                let sgemmRate = Measure.sgemmGFLOPS(M: c.B * c.T, N: ffn, K: c.config.hiddenSize)
                let r = EngineBenchmark.run(c)
                print("""

                    \(c.name), B=\(c.B) T=\(c.T), \(c.config.parameterCount / 1000) k parameters
                      cblas_sgemm (\(c.B * c.T)×\(ffn)×\(c.config.hiddenSize)):  \(sgemmRate.formatted(1)) GFLOP/s
                      forward:        \(r.forwardTokensPerSecond.formatted(0)) tokens/s  \(r.forwardGFLOPS.formatted(1)) GFLOP/s  ratio \((r.forwardGFLOPS / sgemmRate).formatted(2))  (target ≥ 0.60)
                      training step:  \(r.trainTokensPerSecond.formatted(0)) tokens/s  \(r.trainGFLOPS.formatted(1)) GFLOP/s  ratio \((r.trainGFLOPS / sgemmRate).formatted(2))  (target ≥ 0.50)
                      peak memory in training: \(formatBytes(r.peakTrainingBytes)), planned \(formatBytes(r.plannedTrainingBytes)), ratio \((Double(r.peakTrainingBytes) / Double(r.plannedTrainingBytes)).formatted(2))  (target ≤ 1.50)
                    """)
            }
        }
    }
}
