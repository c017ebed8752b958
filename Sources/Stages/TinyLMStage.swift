// `debug/tiny-lm`: a self-contained source for tests and demonstrations of the DReSS stages. It writes
// a synthetic corpus (seeded sentences from a tiny grammar) as a token dataset, and a tiny LLaMA with
// a byte-level tokenizer of 96 tokens trained on it for a few steps, so that its channels carry
// something that pruning can destroy, and a held-out corpus of the same grammar. Seconds, no files needed. Not a model anyone should use.

import Data
import Foundation
import Model
import Pipeline
import Tensor
import Training

/// `debug/tiny-lm`: a tiny trained model and its corpus.
public struct TinyLMStage: StageKind {
    public init() {}
    public let name = "debug/tiny-lm"
    public let version = 2   // 2: the LM head's dW sums over chunks of 682 rows, not 170 (V = 49152), so trained bits differ
    public let doc = "Test kind: a tiny LLaMA (byte tokens) trained briefly on a synthetic seeded corpus; that corpus and a held-out one as token datasets."
    public let params = [
        ParamDecl("hidden", .int(2...4096), default: .int(32), doc: "Hidden size d."),
        ParamDecl("layers", .int(1...64), default: .int(2), doc: "Decoder layers."),
        ParamDecl("heads", .int(1...64), default: .int(4), doc: "Query heads (head dim = hidden/heads)."),
        ParamDecl("kv_heads", .int(1...64), default: .int(2), doc: "Key/value heads (divides heads)."),
        ParamDecl("ffn", .int(1...65_536), default: .int(64), doc: "FFN width."),
        ParamDecl("sentences", .int(1...1_000_000), default: .int(400), doc: "Sentences in the corpus."),
        ParamDecl("train_steps", .int(0...100_000), default: .int(100), doc: "Training updates (B 4, T 32, lr 1e-2 cosine)."),
    ]
    public let inputs: [InputDecl] = []
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The tiny trained model."),
                          OutputDecl("data", storeKind: TokenDataset.storeKind, doc: "The synthetic corpus, tokenized."),
                          OutputDecl("heldout", storeKind: TokenDataset.storeKind, doc: "Another sentences/4 sentences of the same grammar, never trained on.")]

    struct Params: Decodable {
        var hidden: Int, layers: Int, heads: Int, kv_heads: Int, ffn: Int, sentences: Int, train_steps: Int
    }

    /// Printable ASCII as itself, space and newline as GPT-2's byte-level symbols Ġ and Ċ.
    static func byteTokenizer() throws -> BPETokenizer {
        let tokens = (0x21...0x7E).map { String(UnicodeScalar(UInt8($0))) } + ["\u{0120}", "\u{010A}"]
        return try BPETokenizer(tokens: tokens, merges: [], preTokenizer: .gpt2, specialTokenIDs: [], bosID: nil, eosID: nil,
                                path: "debug/tiny-lm")
    }

    /// `count` sentences "the <adjective> <noun> <verb> the <noun>." drawn by Philox stream `stream` of `seed`.
    static func corpus(sentences count: Int, seed: UInt64, stream: UInt64 = 0) -> String {
        let adjectives = ["red", "small", "old", "quick"], nouns = ["cat", "dog", "bird", "fox", "mouse"]
        let verbs = ["sees", "chases", "likes", "hears"]
        var rng = RNG(seed: seed, stream: stream)
        return (0..<count).map { _ in
            "the \(adjectives[rng.nextInt(below: adjectives.count)]) \(nouns[rng.nextInt(below: nouns.count)]) "
                + "\(verbs[rng.nextInt(below: verbs.count)]) the \(nouns[rng.nextInt(below: nouns.count)])."
        }.joined(separator: " ")
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        guard p.hidden % p.heads == 0, p.heads % p.kv_heads == 0 else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "heads", reason: "must divide hidden and be a multiple of kv_heads")
        }
        let tokenizer = try Self.byteTokenizer()
        let data = TokenDataset(documents: [TextDocument(text: Self.corpus(sentences: p.sentences, seed: context.seed))], tokenizer: tokenizer)
        let config = ModelConfig.llama(vocabSize: tokenizer.vocabSize, hiddenSize: p.hidden, layers: p.layers, heads: p.heads,
                                       kvHeads: p.kv_heads, ffn: p.ffn, maxPositions: 512)
        let model = Decoder.initialized(config: config, seed: context.seed)
        let T = 32
        do {
            let trainer = try Trainer(model: model,
                                      config: TrainerConfig(steps: p.train_steps, batchSize: 4, seqLen: T,
                                                            schedule: LRSchedule(kind: .cosine, lr: 1e-2, warmup: 5, minLR: 1e-3),
                                                            optimizer: AdamWConfig(weightDecay: 0)),
                                      batches: TokenSampler(stream: data.tokens, T: T, seed: context.seed))
            try trainer.run { report in
                context.progress(StageProgress(step: report.step, totalSteps: report.steps, loss: Double(report.loss)))
                if report.step == report.steps { context.log(report.description) }
            }
        } catch {
            throw DReSSStageError.failed(stage: context.stageID, step: "training the tiny model", underlying: error.description)
        }
        try ModelStore(config: config, parameters: model.parameters, tokenizer: tokenizer, source: ["debug": "tiny-lm"])
            .write(to: context.outputs["model"]!)
        try data.write(to: context.outputs["data"]!)
        // Stream 1: different sentences of the same grammar (stream 0 made the training corpus).
        let heldOut = Self.corpus(sentences: max(1, p.sentences / 4), seed: context.seed, stream: 1)
        try TokenDataset(documents: [TextDocument(text: heldOut)], tokenizer: tokenizer).write(to: context.outputs["heldout"]!)
    }
}
