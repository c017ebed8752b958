// `streamline bench engine`: forward and training-step speed of the decoder on random weights, held
// against two yardsticks measured in the same run (issue 13): raw cblas_sgemm on the model's own
// matrix shapes (one call each, not Tensor's K-sliced wrapper) and the machine's FMA peak (CPeak).
// Also a distillation step against an LM step, peak memory against the planned arena, and with
// --breakdown where one training step's time goes (OpProfile). `bench peers` reuses the sessions here.

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
        /// LM-head rows per chunk; nil: the decoder's default.
        var headRows: Int? = nil
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

    /// The cases `--only` selects: all, small or smollm2.
    static func cases(only: String) -> [Case] {
        defaultCases.filter { only == "all" || (only == "small") == $0.name.hasPrefix("small") }
    }

    /// One model with a fixed random batch, ready to time. A training step is what `Trainer` runs:
    /// zero the gradients, forward with the fused LM-head loss, backward, AdamW.
    final class Session {
        let c: Case
        let model: Decoder
        let tokens: [Int32], targets: [Int32]
        private(set) lazy var optimizer = AdamW(sets: [model.parameters], config: AdamWConfig())

        init(_ c: Case, seed: UInt64 = 0) {
            self.c = c
            model = Decoder.initialized(config: c.config, seed: seed)
            if let rows = c.headRows { model.lmHeadChunkRows = rows }
            var rng = RNG(seed: seed, stream: 99)
            let n = c.B * c.T
            tokens = (0..<n).map { _ in Int32(rng.nextInt(below: c.config.vocabSize)) }
            targets = (0..<n).map { _ in Int32(rng.nextInt(below: c.config.vocabSize)) }
        }

        var tokenCount: Int { c.B * c.T }

        /// Forward as perplexity evaluation runs it: chunked NLL, no activations kept.
        func forward() { _ = model.negativeLogLikelihood(tokens: tokens, targets: targets, B: c.B, T: c.T) }

        /// One training step + AdamW.
        func trainStep() {
            model.parameters.zeroGrads()
            _ = model.forward(tokens: tokens, targets: targets, B: c.B, T: c.T)
            model.backward()
            optimizer.update(lr: 1e-4)
        }

        /// From now on training steps distil from `teacher` (pure KL at temperature 1); nil: LM loss again.
        func distil(from teacher: Decoder?) throws(ModelError) {
            try model.distil(from: teacher, weights: DistillationWeights(lm: 0, kd: 1, temperature: 1))
        }

        /// Floating-point operations of one forward or training step (Decoder.flopsPerToken).
        func flops(training: Bool) -> Double { model.flopsPerToken(T: c.T, training: training) * Double(tokenCount) }
    }

    struct Result {
        var forward: Samples, train: Samples, distillation: Samples
        var forwardFlops: Double, trainFlops: Double
        /// Raw cblas_sgemm GFLOP/s over the forward's and the training step's products.
        var sgemmForward: Double, sgemmTrain: Double
        var plannedTrainingBytes: Int, peakTrainingBytes: Int
        var breakdown: OpProfile.Totals?, breakdownSeconds: Double, breakdownSteps: Int
        /// LM-head rows per chunk the model ran with.
        var headRows: Int
    }

    /// Measures one case: `repeats` rounds after one warm-up, each round raw sgemm on the forward's
    /// products, a forward, raw sgemm on the step's products, a training step, a KD step.
    static func run(_ c: Case, repeats: Int, breakdown: Bool) throws(ModelError) -> Result {
        let before = PeakMemory.resident()
        let s = Session(c)
        // Peak memory first, before other buffers have grown the heap; counted above the process's
        // resident size before the model existed (the binary, earlier cases' freed buffers).
        PeakMemory.reset()
        s.trainStep()
        let peak = PeakMemory.bytes() - before
        let weights = s.model.parameters.count * MemoryLayout<Float>.stride
        let planned = 4 * weights + s.model.activationBytes  // weights + grads + two Adam moments + kept activations

        // Interleaved, so a change of the machine's load hits both sides of each ratio alike. The KD
        // step distils from a teacher of the same shape: its forward is the extra cost.
        let rawForward = Measure.RawSgemm(s.model.gemmShapes(B: c.B, T: c.T, training: false))
        let rawTrain = Measure.RawSgemm(s.model.gemmShapes(B: c.B, T: c.T, training: true))
        let teacher = Decoder.initialized(config: c.config, seed: 1)
        s.forward()
        try s.distil(from: teacher)
        s.trainStep()
        try s.distil(from: nil)
        var sgemmForward: [Double] = [], forward: [Double] = [], sgemmTrain: [Double] = [], train: [Double] = []
        var distillation: [Double] = []
        for _ in 0..<repeats {
            sgemmForward.append(rawForward.seconds())
            forward.append(Measure.seconds(s.forward))
            sgemmTrain.append(rawTrain.seconds())
            train.append(Measure.seconds(s.trainStep))
            try s.distil(from: teacher)
            distillation.append(Measure.seconds(s.trainStep))
            try s.distil(from: nil)
        }

        var totals: OpProfile.Totals?, profiledSeconds = 0.0
        if breakdown {
            // Separate from the timed runs, so timers never touch the figures above.
            OpProfile.reset()
            OpProfile.enable(true)
            profiledSeconds = Measure.seconds { for _ in 0..<repeats { s.trainStep() } }
            OpProfile.enable(false)
            totals = OpProfile.snapshot()
        }

        return Result(forward: Samples(forward), train: Samples(train), distillation: Samples(distillation),
                      forwardFlops: s.flops(training: false), trainFlops: s.flops(training: true),
                      sgemmForward: rawForward.flops / Samples(sgemmForward).median / 1e9,
                      sgemmTrain: rawTrain.flops / Samples(sgemmTrain).median / 1e9,
                      plannedTrainingBytes: planned, peakTrainingBytes: peak,
                      breakdown: totals, breakdownSeconds: profiledSeconds, breakdownSteps: repeats,
                      headRows: s.model.lmHeadChunkRows)
    }

    /// The report of one case; `peak` is the FMA peak in GFLOP/s (nil when not measurable).
    static func report(_ c: Case, _ r: Result, peak measuredPeak: Double?) -> String {
        let n = Double(c.B * c.T)
        // A peak is a ceiling: if the FMA loop ran while the machine was busy and anything measured
        // later went faster, that rate is the better estimate of the ceiling, and the report says so.
        let fastest = [r.sgemmForward, r.sgemmTrain, r.forwardFlops / r.forward.median / 1e9, r.trainFlops / r.train.median / 1e9].max()!
        let peak = measuredPeak.map { max($0, fastest) }
        let raised = measuredPeak.map { fastest > $0 } ?? false
        func line(_ label: String, _ s: Samples, flops: Double, sgemm: Double) -> String {
            let gflops = flops / s.median / 1e9
            let ofPeak = peak.map { "  \((gflops / $0).formatted(2)) of peak" } ?? ""
            return "  \(label) \((n / s.median).formatted(0)) tokens/s (\((n / s.max).formatted(0))–\((n / s.min).formatted(0)), "
                + "\(s.count) runs, spread \((100 * s.spread).formatted(0))%)  \(gflops.formatted(1)) GFLOP/s  "
                + "\((gflops / sgemm).formatted(2)) of sgemm\(ofPeak)"
        }
        let sgemmPeak = peak.map { "; \((r.sgemmTrain / $0).formatted(2)) and \((r.sgemmForward / $0).formatted(2)) of peak" } ?? ""
        var out = """

            \(c.name), B=\(c.B) T=\(c.T), \(c.config.parameterCount / 1000) k parameters, LM head in chunks of \(r.headRows) rows\(raised ? "\n  (peak raised to \(fastest.formatted(1)) GFLOP/s, a rate measured below: the FMA loop ran on a busy machine)" : "")
              raw cblas_sgemm on this model's products: forward \(r.sgemmForward.formatted(1)) GFLOP/s, training step \(r.sgemmTrain.formatted(1)) GFLOP/s\(sgemmPeak)
            \(line("forward:      ", r.forward, flops: r.forwardFlops, sgemm: r.sgemmForward))
            \(line("training step:", r.train, flops: r.trainFlops, sgemm: r.sgemmTrain))
              KD step (teacher of the same shape): \((n / r.distillation.median).formatted(0)) tokens/s = \((r.distillation.median / r.train.median).formatted(2)) × the LM step's time  (target ≤ 1.40)
              peak memory in training (above the process before the model): \(formatBytes(r.peakTrainingBytes)), planned \(formatBytes(r.plannedTrainingBytes)), ratio \((Double(r.peakTrainingBytes) / Double(r.plannedTrainingBytes)).formatted(2))  (target ≤ 1.10)
            """
        if let totals = r.breakdown { out += "\n" + breakdownTable(totals, seconds: r.breakdownSeconds, steps: r.breakdownSteps) }
        return out
    }

    /// Per-op shares of the profiled training steps, and the thread time parallel loops left idle.
    static func breakdownTable(_ t: OpProfile.Totals, seconds: Double, steps: Int) -> String {
        let wall = seconds * 1e9
        var rows: [(String, Double)] = OpProfile.Category.allCases.map { ($0.label, Double(t.nanoseconds[$0.rawValue])) }
        rows.append(("other (zeroing, copies, driver)", max(0, wall - rows.reduce(0) { $0 + $1.1 })))
        var out = "  one training step, by op (\(steps) steps with timers on, \((seconds / Double(steps) * 1000).formatted(0)) ms/step):"
        for (label, ns) in rows {
            out += "\n    \(label.padding(toLength: 40, withPad: " ", startingAt: 0)) \((ns / 1e6 / Double(steps)).formatted(1).leftPadded(8)) ms  \((100 * ns / wall).formatted(1).leftPadded(5))%"
        }
        let offered = Double(t.parallelOffered)
        out += "\n    threading idle: \((100 * Double(t.parallelIdle) / max(offered, 1)).formatted(1))% of the thread time inside our parallel loops "
            + "(\((Double(t.parallelIdle) / 1e6 / Double(steps)).formatted(1)) ms of thread time per step; BLAS's own threads not seen)"
        return out
    }
}

extension String {
    /// Right-aligned in `width` characters.
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// The shapes and repeats `bench engine` and `bench peers` share.
struct ShapeOptions: ParsableArguments {
    @Option(help: "Which shapes to run: all, small or smollm2.")
    var only: String = "all"

    @Option(help: "Timed runs per measurement (medians and spreads are reported).")
    var repeats: Int = 5

    @Option(name: .customLong("head-rows"),
            help: "Rows of the LM head (and its loss) computed at once; default: the decoder's own choice (32M logits per chunk).")
    var headRows: Int?

    func validate() throws {
        guard ["all", "small", "smollm2"].contains(only) else {
            throw ValidationError("--only must be all, small or smollm2 (got '\(only)').")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1 (got \(repeats)).") }
        if let headRows, headRows < 1 { throw ValidationError("--head-rows must be at least 1 (got \(headRows)).") }
    }

    /// The selected cases, in `EngineBenchmark.defaultCases` order.
    var cases: [EngineBenchmark.Case] {
        EngineBenchmark.cases(only: only).map { c in var c = c; c.headRows = headRows; return c }
    }
}

extension BenchCommand {
    /// `streamline bench engine`: decoder forward and training speed against raw sgemm and the FMA peak.
    struct Engine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decoder forward and training-step speed (random weights) against raw cblas_sgemm and the FMA peak.",
            discussion: """
                For each model shape: forward tokens/s as perplexity evaluation runs it (512-token windows) and \
                training-step tokens/s (forward + backward + AdamW), median and spread of --repeats runs, the GFLOP/s \
                both achieve, and that as a fraction of raw cblas_sgemm (one call per product, timed on exactly the \
                model's linear-layer and LM-head shapes) and of the machine's FMA peak (a loop of independent FMAs on \
                every thread). Then a distillation step against an LM step, and peak memory in training against what \
                the design keeps: weights + gradients + two Adam moments + saved activations. --breakdown adds where \
                one training step's time goes, by op. Targets (issue 13): training ≥ 0.7 of sgemm on SmolLM2, a KD \
                step ≤ 1.4 × an LM step, peak ≤ 1.1 × planned.
                """)

        @OptionGroup var options: BenchOptions

        @OptionGroup var shapes: ShapeOptions

        @Flag(help: "Also time each op of the training step (timers are off in the timed runs).")
        var breakdown = false

        func run() throws {
            options.apply()
            let peak = Measure.fmaPeak(threads: Threading.threads)
            print("threads: \(Threading.threads); \(BLASKernels.summary)")
            if let peak {
                print("FMA peak: \(peak.gflops.formatted(1)) GFLOP/s (\(peak.lanes)-lane FMA loop on \(Threading.threads) threads, best of 7)")
            } else {
                print("FMA peak: not measured (no AVX-512 or AVX2+FMA)")
            }
            var best = peak?.gflops
            for c in shapes.cases {
                // Measured again before each shape; the best of the run is the peak.
                if let again = Measure.fmaPeak(threads: Threading.threads)?.gflops { best = max(best ?? 0, again) }
                let r = try EngineBenchmark.run(c, repeats: shapes.repeats, breakdown: breakdown)
                print(EngineBenchmark.report(c, r, peak: best))
                fflush(nil)  // every stream: a case takes minutes, show it now even when stdout is a file
            }
        }
    }
}
