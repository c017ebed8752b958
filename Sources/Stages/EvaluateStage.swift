// `evaluate`: perplexity of a model store on a token dataset -> a metrics store. The measurement and
// its windowing are Perplexity.evaluate's (Data module). The store holds only what is determined by
// the inputs (so equal inputs give equal bytes); timing goes to the log and the provenance.

import Data
import Foundation
import Pipeline
import Tensor
import TensorStore

public struct EvaluateStage: StageKind {
    public init() {}
    public let name = "evaluate"
    public let version = 1
    public let doc = "Measures a model's perplexity on a token dataset (sliding windows, HF convention)."
    public let params = [
        ParamDecl("window", .int(2...8192), default: .int(512), doc: "Tokens per window."),
        ParamDecl("stride", .int(0...8192), default: .int(0), doc: "Tokens between window starts; 0 = window (no overlap)."),
        ParamDecl("bos", .bool, default: .bool(false), doc: "Put the tokenizer's bos token before each window."),
        ParamDecl("max_tokens", .int(0...1_000_000_000), default: .int(0), doc: "Use only the first N tokens; 0 = all."),
        ParamDecl("batch", .int(1...64), default: .int(1), doc: "Windows per forward pass (speed only; does not change the result)."),
    ]
    public let inputs = [
        InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to evaluate."),
        InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Token ids made with the model's tokenizer."),
    ]
    public let outputs = [OutputDecl("metrics", storeKind: "metrics", doc: "Perplexity, tokens scored and the protocol.")]

    struct Params: Decodable { var window: Int; var stride: Int; var bos: Bool; var max_tokens: Int; var batch: Int }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        guard p.stride <= p.window else {
            throw DataError.malformed(format: "evaluate params", path: context.stageID, at: "stride",
                                      detail: "stride \(p.stride) exceeds window \(p.window); use 0 or a value ≤ window")
        }
        Threading.configure(threads: context.threads)
        let store = try ModelStore(store: context.inputs["model"]!)
        let data = try TokenDataset(store: context.inputs["data"]!)
        guard data.tokenizerDigest == store.tokenizer.digest else {
            throw DataError.unsupportedTokenizer(path: context.inputs["data"]!.path,
                                                 detail: "the dataset was tokenized by \(data.tokenizerDigest.prefix(16)), the model uses \(store.tokenizer.digest.prefix(16)); build the dataset from this model")
        }
        let evaluation = PerplexityProtocol(window: p.window, stride: p.stride == 0 ? nil : p.stride, bos: p.bos,
                                            maxTokens: p.max_tokens == 0 ? nil : p.max_tokens,
                                            tokenizerDigest: store.tokenizer.digest,
                                            textDigest: "\(data.textDigest) \(data.selection)")
        let decoder = try store.decoder()
        let result = try Perplexity.evaluate(decoder, tokens: data.tokens, evaluation: evaluation,
                                             bosID: store.tokenizer.bosID, batch: p.batch) { done, total in
            context.progress(StageProgress(step: done, totalSteps: total))
        }
        let writer = try TensorStoreWriter(url: context.outputs["metrics"]!, kind: "metrics")
        try writer.setMetadata("metrics", EvaluationMetrics(perplexity: result.perplexity, meanNLL: result.meanNLL,
                                                            tokensScored: result.tokensScored, windows: result.windows,
                                                            evaluation: evaluation,
                                                            parameters: store.config.parameterCount,
                                                            hiddenSize: store.config.hiddenSize, layers: store.config.layerCount,
                                                            flopsPerToken: decoder.flopsPerToken(T: p.window + (p.bos ? 1 : 0), training: false),
                                                            dataset: "\(data.documentCount) documents, \(data.tokens.count) tokens, \(data.selection), text \(data.textDigest.prefix(12))"))
        try writer.write("perplexity", Tensor(shape: [1], values: [Float(result.perplexity)]))
        var provenance = StoreProvenance()
        provenance.extra["seconds"] = String(format: "%.3f", result.seconds)
        provenance.extra["tokens_per_second"] = String(format: "%.1f", result.tokensPerSecond)
        writer.setProvenance(provenance)
        try writer.commit()
        context.log(String(format: "perplexity %.4f over %d tokens (%d windows), %.1f tokens/s", result.perplexity,
                           result.tokensScored, result.windows, result.tokensPerSecond))
    }
}
