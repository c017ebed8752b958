// The `evaluate` stage kind, in process, on a tiny untrained model and a copy with half its hidden
// channels pruned: the digested metrics (perplexity as Perplexity.evaluate gives it, parameter count,
// width, layers, FLOPs per token, dataset) and the speed record in the provenance (present, positive,
// speed-ups computed from the same measurements, absent with `speed: false`). Timing never enters the
// store digest: two runs give equal digests and different timings. No assertion about which model
// is faster: that is a benchmark's business, not a test's.

import Data
import Foundation
import StageTestSupport
import Model
import Pipeline
@testable import Stages
import Testing
import TensorStore

@Suite struct EvaluateSpeedTests {
    /// Small speed settings, so a debug build measures in well under a second.
    static let quick: [String: ParamValue] = ["window": .int(32), "prefill_tokens": .int(48), "decode_batch": .int(3),
                                              "decode_tokens": .int(5), "speed_repeats": .int(3)]

    /// A tiny model (d = 32), the same pruned to d = 16 (last half of the channels), and held-out text.
    func fixtures(in dir: URL) throws -> (dense: URL, pruned: URL, data: URL) {
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(40)], in: dir)
        let channels = try runKind(SelectStage(), params: ["ratio": .double(0.5), "selection": .string("last")],
                                   inputs: ["model": tiny["model"]!], in: dir)
        let pruned = try runKind(PruneStage(), inputs: ["model": tiny["model"]!, "channels": channels["channels"]!], in: dir)
        return (tiny["model"]!, pruned["model"]!, tiny["heldout"]!)
    }

    func evaluate(_ model: URL, dense: URL? = nil, data: URL, params: [String: ParamValue] = quick, in dir: URL) throws -> URL {
        var inputs = ["model": model, "data": data]
        inputs["dense"] = dense
        return try runKind(EvaluateStage(), params: params, inputs: inputs, in: dir)["metrics"]!
    }

    @Test func metricsDescribeTheModelAndTheTextAndKeepThePerplexity() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (dense, pruned, data) = try fixtures(in: dir)
        for url in [dense, pruned] {
            let (metrics, _) = try EvaluationStore.read(try evaluate(url, data: data, in: dir))
            let store = try ModelStore(store: url), dataset = try TokenDataset(store: data)
            let expected = try Perplexity.evaluate(try store.decoder(), tokens: dataset.tokens, evaluation: metrics.evaluation,
                                                   bosID: nil, batch: 1) { _, _ in }
            #expect(metrics.perplexity == expected.perplexity && metrics.tokensScored == expected.tokensScored)
            #expect(metrics.parameters == store.config.parameterCount && metrics.hiddenSize == store.config.hiddenSize)
            #expect(metrics.layers == 2)
            #expect(metrics.flopsPerToken == (try store.decoder()).flopsPerToken(T: 32, training: false))
            #expect(metrics.dataset.contains("\(dataset.tokens.count) tokens") && metrics.dataset.contains(dataset.selection))
        }
        let denseMetrics = try EvaluationStore.read(try evaluate(dense, data: data, in: dir)).metrics
        let prunedMetrics = try EvaluationStore.read(try evaluate(pruned, data: data, in: dir)).metrics
        #expect(denseMetrics.hiddenSize == 32 && prunedMetrics.hiddenSize == 16)
        #expect(prunedMetrics.parameters < denseMetrics.parameters && prunedMetrics.flopsPerToken < denseMetrics.flopsPerToken)
    }

    @Test func speedIsMeasuredForBothModelsAndTheSpeedupsComeFromTheSameNumbers() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (dense, pruned, data) = try fixtures(in: dir)
        let speed = try #require(try EvaluationStore.read(try evaluate(pruned, dense: dense, data: data, in: dir)).speed)
        #expect(speed.prefillTokens == 48 && speed.decodeBatch == 3 && speed.decodeTokens == 5 && speed.repeats == 3 && speed.threads == 1)
        let denseSpeed = try #require(speed.dense)
        for value in [speed.prefillSeconds, speed.decodeTokensPerSecond, denseSpeed.prefillSeconds, denseSpeed.decodeTokensPerSecond] {
            #expect(value > 0 && value.isFinite)
        }
        #expect(speed.prefillSpeedup == denseSpeed.prefillSeconds / speed.prefillSeconds)
        #expect(speed.decodeSpeedup == speed.decodeTokensPerSecond / denseSpeed.decodeTokensPerSecond)

        // Without `dense` there is no dense record and no speed-up; with `speed: false` no speed at all.
        let alone = try #require(try EvaluationStore.read(try evaluate(pruned, data: data, in: dir)).speed)
        #expect(alone.dense == nil && alone.prefillSpeedup == nil && alone.decodeSpeedup == nil && alone.prefillSeconds > 0)
        var off = Self.quick
        off["speed"] = .bool(false)
        #expect(try EvaluationStore.read(try evaluate(pruned, dense: dense, data: data, params: off, in: dir)).speed == nil)
    }

    @Test func timingStaysOutOfTheDigest() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (dense, pruned, data) = try fixtures(in: dir)
        let first = try evaluate(pruned, dense: dense, data: data, in: dir), second = try evaluate(pruned, dense: dense, data: data, in: dir)
        var off = Self.quick
        off["speed"] = .bool(false)
        let unmeasured = try evaluate(pruned, data: data, params: off, in: dir)
        let digests = try [first, second, unmeasured].map { try TensorStoreReader(url: $0).digest }
        #expect(digests[0] == digests[1] && digests[1] == digests[2])
        let a = try #require(try EvaluationStore.read(first).speed), b = try #require(try EvaluationStore.read(second).speed)
        #expect(a.prefillSeconds != b.prefillSeconds || a.decodeTokensPerSecond != b.decodeTokensPerSecond)
    }

    @Test func theLogShowsTheNumbers() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (dense, pruned, data) = try fixtures(in: dir)
        let lines = LogLines()
        var params: [String: ParamValue] = [:]
        for decl in EvaluateStage().params { params[decl.name] = Self.quick[decl.name] ?? decl.defaultValue }
        let out = dir.appendingPathComponent("logged.h5")
        try EvaluateStage().run(StageContext(stageID: "evaluate", params: params, seed: 1,
                                             inputs: ["model": pruned, "data": data, "dense": dense], outputs: ["metrics": out],
                                             threads: 1, log: lines.append))
        let speed = try #require(try EvaluationStore.read(out).speed)
        let text = lines.all.joined(separator: "\n")
        #expect(text.contains(String(format: "prefill 48 tokens %.4f s (dense %.4f s: %.3f× faster)", speed.prefillSeconds,
                                     speed.dense!.prefillSeconds, speed.prefillSpeedup!)), "\(text)")
        #expect(text.contains(String(format: "decode 3×5 tokens %.1f tokens/s", speed.decodeTokensPerSecond)), "\(text)")
        #expect(text.contains("hidden 16, 2 layers"), "\(text)")
    }

    @Test func speedLengthsAreCutToThePositionsTheModelsAllow() throws {
        let small = Decoder.initialized(config: .llama(vocabSize: 20, hiddenSize: 8, layers: 1, heads: 2, kvHeads: 1, ffn: 16,
                                                       maxPositions: 16), seed: 1)
        let large = Decoder.initialized(config: .llama(vocabSize: 30, hiddenSize: 8, layers: 1, heads: 2, kvHeads: 1, ffn: 16,
                                                       maxPositions: 64), seed: 2)
        let asked = SpeedSettings(prefillTokens: 512, decodeBatch: 2, decodeTokens: 64, repeats: 1, threads: 1)
        let fitted = EvaluationTiming.fitted(asked, to: [large, small])
        #expect(fitted.prefillTokens == 16 && fitted.decodeTokens == 15 && fitted.decodeBatch == 2)
        #expect(EvaluationTiming.fitted(asked, to: [large]).prefillTokens == 64)
        let speed = EvaluationTiming.measure(small, dense: large, settings: fitted, seed: 3)
        #expect(speed.prefillTokens == 16 && speed.decodeTokens == 15 && speed.dense != nil)
        #expect(EvaluationTiming.median([3, 1, 2]) == 2 && EvaluationTiming.median([4, 1, 3, 2]) == 2.5)
    }
}

/// Collects log lines from a stage (which may log from any thread).
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var all: [String] { lock.withLock { lines } }
    @Sendable func append(_ line: String) { lock.withLock { lines.append(line) } }
}
