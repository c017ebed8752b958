// How `evaluate` measures speed on the executing machine: prefill latency and batched decode
// throughput with the KV cache (Decoder+Generation.swift), of the evaluated model and, when given, of
// a reference (dense) model in the same process. Not here: perplexity (Perplexity.swift) and where
// the numbers are stored (EvaluationMetrics.swift: the provenance, never the digest).
//
// Protocol, per model (the same ids for both models, seeded):
//   prefill: one `step` of batch 1 over a `prefillTokens`-token prompt into an empty cache, returning
//            the last position's logits (what a generation's first step computes).
//   decode:  `decodeBatch` sequences start from a 1-token prompt (untimed), then `decodeTokens` steps
//            of one new token per sequence, each attending over the cache; the context grows from 1
//            to decodeTokens. Throughput = decodeBatch · decodeTokens / seconds of those steps.
// The next ids are seeded, not sampled, so the timing measures the model and not the sampler.
// Each phase starts with an untimed warm-up per model (buffers are planned per (B, T) and pages are
// first touched there), then runs `repeats` rounds interleaved A B A B…, so a burst of machine noise
// (another process on the 2 cores) falls on both models alike; the median of each model's runs is kept.

import Foundation
import Model
import Tensor

/// What to measure; `EvaluationTiming.measure` fits the lengths to the models' position limits.
struct SpeedSettings: Equatable {
    var prefillTokens: Int
    var decodeBatch: Int
    var decodeTokens: Int
    var repeats: Int
    var threads: Int
}

enum EvaluationTiming {
    /// The settings with prompt and decode lengths cut to what every model's positions allow: the
    /// prefill prompt to maxPositions, the decode to maxPositions − 1 new tokens (after the 1-token prompt).
    static func fitted(_ settings: SpeedSettings, to models: [Decoder]) -> SpeedSettings {
        let positions = models.map(\.config.maxPositions).min() ?? settings.prefillTokens
        var fitted = settings
        fitted.prefillTokens = min(settings.prefillTokens, positions)
        fitted.decodeTokens = min(settings.decodeTokens, positions - 1)
        return fitted
    }

    /// Measures `model` and, when given, `dense` with `settings` (already fitted); ids from `seed`.
    static func measure(_ model: Decoder, dense: Decoder?, settings s: SpeedSettings, seed: UInt64) -> EvaluationSpeed {
        let models = [model] + (dense.map { [$0] } ?? [])
        let vocab = models.map(\.config.vocabSize).min()!
        var rng = RNG(seed: seed)
        let prompt = (0..<s.prefillTokens).map { _ in Int32(rng.nextInt(below: vocab)) }  // (1, prefillTokens)
        let steps = (0...s.decodeTokens).map { _ in (0..<s.decodeBatch).map { _ in Int32(rng.nextInt(below: vocab)) } }  // (1 + decodeTokens) × (decodeBatch)
        let prefillCaches = models.map { $0.makeCache(batch: 1, capacity: s.prefillTokens) }
        let decodeCaches = models.map { $0.makeCache(batch: s.decodeBatch, capacity: 1 + s.decodeTokens) }

        func prefill(_ i: Int) -> Double {
            prefillCaches[i].reset()
            return seconds { _ = models[i].step(tokens: prompt, B: 1, T: s.prefillTokens, cache: prefillCaches[i]) }
        }
        func decode(_ i: Int, tokens: Int) -> Double {
            decodeCaches[i].reset()
            _ = models[i].step(tokens: steps[0], B: s.decodeBatch, T: 1, cache: decodeCaches[i])
            return seconds {
                for t in 1...tokens { _ = models[i].step(tokens: steps[t], B: s.decodeBatch, T: 1, cache: decodeCaches[i]) }
            }
        }
        func interleaved(_ run: (Int) -> Double) -> [Double] {
            var times = [[Double]](repeating: [], count: models.count)
            for _ in 0..<s.repeats { for i in models.indices { times[i].append(run(i)) } }
            return times.map(median)
        }

        for i in models.indices { _ = prefill(i) }
        let prefillSeconds = interleaved(prefill)
        for i in models.indices { _ = decode(i, tokens: min(2, s.decodeTokens)) }
        let decodeSeconds = interleaved { decode($0, tokens: s.decodeTokens) }
        let newTokens = Double(s.decodeBatch * s.decodeTokens)
        return EvaluationSpeed(threads: s.threads, prefillTokens: s.prefillTokens, decodeBatch: s.decodeBatch,
                               decodeTokens: s.decodeTokens, repeats: s.repeats, prefillSeconds: prefillSeconds[0],
                               decodeTokensPerSecond: newTokens / decodeSeconds[0],
                               dense: dense == nil ? nil : DenseSpeed(prefillSeconds: prefillSeconds[1],
                                                                      decodeTokensPerSecond: newTokens / decodeSeconds[1]))
    }

    /// Wall-clock seconds of `body` (monotonic clock).
    static func seconds(_ body: () -> Void) -> Double {
        let elapsed = ContinuousClock().measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// The middle value (mean of the two middle ones for an even count).
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted(), n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}
