// What an `evaluate` store records, and how to read it back. Two parts, kept apart on purpose:
// `EvaluationMetrics` is determined by the inputs (perplexity, sizes, FLOPs, the text) and is the
// store's digested metadata, so the same model on the same text gives the same store digest;
// `EvaluationSpeed` is measured on whatever machine ran the stage, so it lives in the store's
// provenance, which no digest covers. Measuring is EvaluationTiming's; this file only
// holds the records.

import Data
import Foundation
import Model
import TensorStore

/// `metrics` metadata of an evaluate store: only what the inputs determine (it is digested).
public struct EvaluationMetrics: Codable, Sendable, Equatable {
    /// exp(meanNLL) under `evaluation`.
    public var perplexity: Double
    /// Mean next-token negative log-likelihood, nats.
    public var meanNLL: Double
    public var tokensScored: Int
    public var windows: Int
    /// How the perplexity was measured (window, stride, bos, digests of tokenizer and text).
    public var evaluation: PerplexityProtocol
    /// Parameter count of the evaluated model (a tied embedding counted once).
    public var parameters: Int
    /// Model width d (after pruning: the kept channels).
    public var hiddenSize: Int
    public var layers: Int
    /// Forward FLOPs per token at the evaluation window's mean context: `Decoder.flopsPerToken(T:)`
    /// with T = the window's tokens (plus bos), so attention sees (T + 1) / 2 keys on average.
    public var flopsPerToken: Double
    /// What text was scored: document and token counts, the dataset's selection and text digest.
    public var dataset: String

    public init(perplexity: Double, meanNLL: Double, tokensScored: Int, windows: Int, evaluation: PerplexityProtocol,
                parameters: Int, hiddenSize: Int, layers: Int, flopsPerToken: Double, dataset: String) {
        self.perplexity = perplexity
        self.meanNLL = meanNLL
        self.tokensScored = tokensScored
        self.windows = windows
        self.evaluation = evaluation
        self.parameters = parameters
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.flopsPerToken = flopsPerToken
        self.dataset = dataset
    }

    enum CodingKeys: String, CodingKey {
        case perplexity, meanNLL = "mean_nll", tokensScored = "tokens_scored", windows, evaluation = "protocol",
             parameters, hiddenSize = "hidden_size", layers, flopsPerToken = "flops_per_token", dataset
    }
}

/// The two speed measurements of one model.
public struct DenseSpeed: Codable, Sendable, Equatable {
    /// Median seconds of one prefill forward (batch 1, `EvaluationSpeed.prefillTokens` tokens).
    public var prefillSeconds: Double
    /// New tokens per second over the whole batch (`decodeBatch` × `decodeTokens`), median run.
    public var decodeTokensPerSecond: Double

    public init(prefillSeconds: Double, decodeTokensPerSecond: Double) {
        self.prefillSeconds = prefillSeconds
        self.decodeTokensPerSecond = decodeTokensPerSecond
    }

    enum CodingKeys: String, CodingKey {
        case prefillSeconds = "prefill_seconds", decodeTokensPerSecond = "decode_tokens_per_second"
    }
}

/// Timings measured by the executing machine; NOT digested (stored in the provenance of the store).
public struct EvaluationSpeed: Codable, Sendable, Equatable {
    public var threads: Int
    public var prefillTokens: Int
    public var decodeBatch: Int
    public var decodeTokens: Int
    /// Runs per measurement; the median is kept.
    public var repeats: Int
    /// Median seconds of one prefill (batch 1, `prefillTokens` prompt).
    public var prefillSeconds: Double
    /// New tokens per second: batch `decodeBatch`, `decodeTokens` new tokens each, KV cache.
    public var decodeTokensPerSecond: Double
    /// The same measurements of the `dense` input model, interleaved with these in the same process.
    public var dense: DenseSpeed?
    /// dense prefill seconds / this prefill seconds (> 1: this model is faster).
    public var prefillSpeedup: Double?
    /// dense decode seconds / this decode seconds = this tokens/s / dense tokens/s.
    public var decodeSpeedup: Double?

    public init(threads: Int, prefillTokens: Int, decodeBatch: Int, decodeTokens: Int, repeats: Int,
                prefillSeconds: Double, decodeTokensPerSecond: Double, dense: DenseSpeed? = nil) {
        self.threads = threads
        self.prefillTokens = prefillTokens
        self.decodeBatch = decodeBatch
        self.decodeTokens = decodeTokens
        self.repeats = repeats
        self.prefillSeconds = prefillSeconds
        self.decodeTokensPerSecond = decodeTokensPerSecond
        self.dense = dense
        self.prefillSpeedup = dense.map { $0.prefillSeconds / prefillSeconds }
        self.decodeSpeedup = dense.map { decodeTokensPerSecond / $0.decodeTokensPerSecond }
    }

    enum CodingKeys: String, CodingKey {
        case threads, prefillTokens = "prefill_tokens", decodeBatch = "decode_batch", decodeTokens = "decode_tokens",
             repeats, prefillSeconds = "prefill_seconds", decodeTokensPerSecond = "decode_tokens_per_second", dense,
             prefillSpeedup = "prefill_speedup", decodeSpeedup = "decode_speedup"
    }
}

/// Reading an evaluate stage's `metrics` store.
public enum EvaluationStore {
    /// Store kind of an evaluate stage's output.
    public static let storeKind = "metrics"
    /// Metadata key of the `EvaluationMetrics`.
    static let metricsKey = "metrics"
    /// `StoreProvenance.extra` key of the `EvaluationSpeed` JSON.
    static let speedKey = "speed"

    /// The metrics of the store at `url`, and its speed when the stage measured one.
    public static func read(_ url: URL) throws -> (metrics: EvaluationMetrics, speed: EvaluationSpeed?) {
        let reader = try TensorStoreReader(url: url, expectingKind: storeKind)
        let metrics = try reader.metadata(metricsKey, as: EvaluationMetrics.self)
        guard let json = reader.provenance?.extra[speedKey] else { return (metrics, nil) }
        do {
            return (metrics, try JSONDecoder().decode(EvaluationSpeed.self, from: Data(json.utf8)))
        } catch {
            throw DataError.malformed(format: "evaluate store provenance", path: url.path, at: "extra.\(speedKey)",
                                      detail: "\(error); remove this store (its cache entry) and run the evaluate stage again")
        }
    }

    /// The provenance text of `speed` (sorted keys, so equal speeds give equal text).
    static func provenanceText(_ speed: EvaluationSpeed) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(speed), as: UTF8.self)
    }
}
