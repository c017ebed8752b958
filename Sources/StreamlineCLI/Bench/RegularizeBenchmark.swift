// `streamline bench regularize`: the time of one DReSS regularization update on SmolLM2-135M's shape
// (random weights), split into its parts: forward + backward, the penalty gradient, clipping + AdamW,
// the slice-energy measure recorded at log points, and the channel mask a nested run (`ratios`) puts
// around each micro-batch, so the cost of the regularizer is seen against the training step it rides on.

import ArgumentParser
import Foundation
import Model
import Tensor
import Training

extension BenchCommand {
    /// `streamline bench regularize`: one regularization update on the SmolLM2-135M shape, by part.
    struct Regularize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time of one DReSS regularization update (SmolLM2-135M shape, random weights), by part.",
            discussion: """
                Median seconds of: forward + backward at B×T, the penalty gradient over the slices of the \
                last 25% of hidden channels, gradient clipping + AdamW update, and the relative slice energy; \
                their sum is one update of `regularize` with accumulation 1.
                """)

        @OptionGroup var options: BenchOptions

        @Option(help: "Sequences per batch (B).")
        var batch: Int = 4

        @Option(help: "Tokens per sequence (T).")
        var seqLen: Int = 256

        func validate() throws {
            guard batch > 0, seqLen > 0, seqLen <= 2048 else {
                throw ValidationError("--batch must be > 0 and --seq-len in 1...2048 (got \(batch), \(seqLen)).")
            }
        }

        func run() throws {
            options.apply()
            let config = EngineBenchmark.defaultCases.last!.config
            let model = Decoder.initialized(config: config, seed: 0)
            var rng = RNG(seed: 0, stream: 99)
            let n = batch * seqLen
            let tokens = (0..<n).map { _ in Int32(rng.nextInt(below: config.vocabSize)) }
            let targets = (0..<n).map { _ in Int32(rng.nextInt(below: config.vocabSize)) }
            let channels = try ChannelSelection.last(ratio: 0.25, hiddenSize: config.hiddenSize)
            let optimizer = AdamW(sets: [model.parameters], config: AdamWConfig(weightDecay: 0))
            let p = model.parameters
            let forwardBackward = Measure.median(minRuns: 3, minSeconds: 2) {
                p.zeroGrads()
                _ = model.forward(tokens: tokens, targets: targets, B: batch, T: seqLen)
                model.backward()
            }
            let penalty = Measure.median(minRuns: 3, minSeconds: 1) {
                ChannelRegularizer.addPenaltyGradient(parameters: p, config: config, channels: channels, lambda: 1e-3)
            }
            let update = Measure.median(minRuns: 3, minSeconds: 1) {
                optimizer.clipGradients(maxNorm: 1)
                optimizer.update(lr: 1e-5)
            }
            let energy = Measure.median(minRuns: 3, minSeconds: 1) {
                _ = ChannelRegularizer.sliceEnergy(parameters: p, config: config, channels: channels)
            }
            // What a nested run adds per micro-batch at its largest prefix (half the width here).
            let half = try ChannelSelection.last(ratio: 0.5, hiddenSize: config.hiddenSize)
            var mask = ChannelMask(capacity: half, config: config, parameters: p)
            let masking = Measure.median(minRuns: 3, minSeconds: 1) {
                mask.remove(half, from: p)
                mask.restore(to: p)
            }
            let total = forwardBackward + penalty + update
            print("""
                threads: \(Threading.threads)
                SmolLM2-135M shape, B=\(batch) T=\(seqLen), P = last 25% (\(channels.pruned.count) of \(config.hiddenSize) channels)
                  forward + backward:       \(forwardBackward.formatted(3)) s
                  penalty gradient:         \(penalty.formatted(3)) s
                  clip + AdamW update:      \(update.formatted(3)) s
                  one update (sum):         \(total.formatted(3)) s  (\((Double(n) / total).formatted(0)) tokens/s)
                  slice energy (log points): \(energy.formatted(3)) s
                  nested mask, 50% prefix:  \(masking.formatted(3)) s  (\((100 * masking / total).formatted(1))% of an update)
                """)
        }
    }
}
