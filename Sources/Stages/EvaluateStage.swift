// `evaluate`: perplexity of a model store on a token dataset -> a metrics store, plus the model's size
// and FLOPs per token, and (unless `speed: false`) its speed on the executing machine, against the
// optional `dense` model's, as speed-ups. The perplexity and its windowing are Perplexity.evaluate's
// (Model module), the speed protocol is EvaluationTiming's. The store's digested metadata holds only
// what the inputs determine (EvaluationMetrics: equal inputs give equal digests); timings go to the log
// and to the store's provenance (EvaluationSpeed, read back by EvaluationStore.read).

import Data
import Foundation
import Model
import Pipeline
import Tensor
import TensorStore

public struct EvaluateStage: StageKind {
    public init() {}
    public let name = "evaluate"
    // 2: metrics gain parameters, hidden size, layers, FLOPs per token and the dataset; speed measured.
    public let version = 2
    public let doc = "Measures a model's perplexity on a token dataset (sliding windows, HF convention), its size and FLOPs, and its speed here against the dense model's."
    public let params = [
        ParamDecl("window", .int(2...8192), default: .int(512), doc: "Tokens per window."),
        ParamDecl("stride", .int(0...8192), default: .int(0), doc: "Tokens between window starts; 0 = window (no overlap)."),
        ParamDecl("bos", .bool, default: .bool(false), doc: "Put the tokenizer's bos token before each window."),
        ParamDecl("max_tokens", .int(0...1_000_000_000), default: .int(0), doc: "Use only the first N tokens; 0 = all."),
        ParamDecl("batch", .int(1...64), default: .int(1), doc: "Windows per forward pass (speed only; does not change the result)."),
        ParamDecl("speed", .bool, default: .bool(true), doc: "Measure prefill latency and decode throughput on this machine (and the dense model's, when given)."),
        ParamDecl("prefill_tokens", .int(1...32768), default: .int(512),
                  doc: "Prompt length of the prefill measurement (batch 1); cut to the model's maximum positions."),
        ParamDecl("decode_batch", .int(1...256), default: .int(8), doc: "Sequences decoded together in the decode measurement."),
        ParamDecl("decode_tokens", .int(1...32768), default: .int(64),
                  doc: "New tokens per sequence in the decode measurement (KV cache, after a 1-token prompt)."),
        ParamDecl("speed_repeats", .int(1...100), default: .int(3), doc: "Timed runs per measurement and model; the median is kept."),
    ]
    public let inputs = [
        InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to evaluate."),
        InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Token ids made with the model's tokenizer."),
        InputDecl("dense", storeKind: ModelStore.storeKind,
                  doc: "Optional: the unpruned model, timed interleaved with `model` for the speed-ups.", optional: true),
    ]
    public let outputs = [OutputDecl("metrics", storeKind: EvaluationStore.storeKind,
                                     doc: "Perplexity, protocol, size, FLOPs and dataset; speed in the provenance.")]

    struct Params: Decodable {
        var window: Int
        var stride: Int
        var bos: Bool
        var max_tokens: Int
        var batch: Int
        var speed: Bool
        var prefill_tokens: Int
        var decode_batch: Int
        var decode_tokens: Int
        var speed_repeats: Int
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        guard p.stride <= p.window else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "stride",
                                               reason: "is \(p.stride), more than window \(p.window); use 0 or a value ≤ window")
        }
        Threading.configure(threads: context.threads)
        let store = try ModelStore(store: context.inputs["model"]!)
        let data = try tokenDataset(context.inputs["data"]!, tokenizer: store.tokenizer, stage: context.stageID, input: "data")
        let evaluation = PerplexityProtocol(window: p.window, stride: p.stride == 0 ? nil : p.stride, bos: p.bos,
                                            maxTokens: p.max_tokens == 0 ? nil : p.max_tokens,
                                            tokenizerDigest: store.tokenizer.digest,
                                            textDigest: "\(data.textDigest) \(data.selection)")
        let decoder = try store.decoder()
        let result = try Perplexity.evaluate(decoder, tokens: data.tokens, evaluation: evaluation,
                                             bosID: store.tokenizer.bosID, batch: p.batch) { done, total in
            context.progress(StageProgress(step: done, totalSteps: total))
        }
        // A model that overflows gives an infinite perplexity: say so here, not as a metrics encoding error.
        guard result.meanNLL.isFinite, result.perplexity.isFinite else {
            throw DReSSStageError.badInput(stage: context.stageID, input: "model",
                                           what: "gives a non-finite loss (mean NLL \(result.meanNLL)) on this text: its weights overflow, so the stage that trained it diverged; run that stage again with a lower learning rate")
        }
        let metrics = Self.metrics(result, evaluation: evaluation, config: store.config, decoder: decoder, data: data)
        context.log(String(format: "perplexity %.4f over %d tokens (%d windows), %.1f tokens/s", result.perplexity,
                           result.tokensScored, result.windows, result.tokensPerSecond))
        context.log(String(format: "size: %d parameters, hidden %d, %d layers, %.3f GFLOP per token at context %d",
                           metrics.parameters, metrics.hiddenSize, metrics.layers, metrics.flopsPerToken / 1e9,
                           p.window + (p.bos ? 1 : 0)))

        var provenance = StoreProvenance()
        provenance.extra["seconds"] = String(format: "%.3f", result.seconds)
        provenance.extra["tokens_per_second"] = String(format: "%.1f", result.tokensPerSecond)
        if p.speed {
            let speed = try measureSpeed(decoder, p, context)
            provenance.extra[EvaluationStore.speedKey] = try EvaluationStore.provenanceText(speed)
        }
        let writer = try TensorStoreWriter(url: context.outputs["metrics"]!, kind: EvaluationStore.storeKind)
        try writer.setMetadata(EvaluationStore.metricsKey, metrics)
        try writer.write("perplexity", Tensor(shape: [1], values: [Float(result.perplexity)]))
        writer.setProvenance(provenance)
        try writer.commit()
    }

    /// The digested record: the perplexity with its protocol, and what the model and the text are.
    /// FLOPs per token use T = the window's tokens (bos included), i.e. the mean context (T + 1) / 2.
    static func metrics(_ result: PerplexityResult, evaluation: PerplexityProtocol, config: ModelConfig,
                        decoder: Decoder, data: TokenDataset) -> EvaluationMetrics {
        EvaluationMetrics(perplexity: result.perplexity, meanNLL: result.meanNLL, tokensScored: result.tokensScored,
                          windows: result.windows, evaluation: evaluation, parameters: config.parameterCount,
                          hiddenSize: config.hiddenSize, layers: config.layerCount,
                          flopsPerToken: decoder.flopsPerToken(T: evaluation.window + (evaluation.bos ? 1 : 0), training: false),
                          dataset: "\(data.documentCount) documents, \(data.tokens.count) tokens, \(data.selection), text \(data.textDigest.prefix(12))")
    }

    /// Times the model (and the dense input, interleaved) and logs the numbers.
    func measureSpeed(_ decoder: Decoder, _ p: Params, _ context: StageContext) throws -> EvaluationSpeed {
        let dense = try context.inputs["dense"].map { try ModelStore(store: $0).decoder() }
        let asked = SpeedSettings(prefillTokens: p.prefill_tokens, decodeBatch: p.decode_batch, decodeTokens: p.decode_tokens,
                                  repeats: p.speed_repeats, threads: context.threads)
        let settings = EvaluationTiming.fitted(asked, to: [decoder] + (dense.map { [$0] } ?? []))
        guard settings.decodeTokens >= 1 else {
            throw DReSSStageError.badInput(stage: context.stageID, input: "model",
                                           what: "allows only \(settings.prefillTokens) positions, too few to decode; set speed: false")
        }
        if settings != asked {
            context.log("speed: the models allow \(settings.prefillTokens) positions: prefill \(settings.prefillTokens) tokens, decode \(settings.decodeTokens) tokens")
        }
        let speed = EvaluationTiming.measure(decoder, dense: dense, settings: settings, seed: context.seed)
        Self.describe(speed).forEach(context.log)
        return speed
    }

    /// One line per measurement, with the dense numbers and speed-ups when there are.
    static func describe(_ s: EvaluationSpeed) -> [String] {
        var prefill = String(format: "speed: prefill %d tokens %.4f s", s.prefillTokens, s.prefillSeconds)
        var decode = String(format: "speed: decode %d×%d tokens %.1f tokens/s", s.decodeBatch, s.decodeTokens, s.decodeTokensPerSecond)
        if let dense = s.dense, let prefillUp = s.prefillSpeedup, let decodeUp = s.decodeSpeedup {
            prefill += String(format: " (dense %.4f s: %.3f× faster)", dense.prefillSeconds, prefillUp)
            decode += String(format: " (dense %.1f tokens/s: %.3f× faster)", dense.decodeTokensPerSecond, decodeUp)
        }
        let how = String(format: ", median of %d, %d threads", s.repeats, s.threads)
        return [prefill + how, decode + how]
    }
}
