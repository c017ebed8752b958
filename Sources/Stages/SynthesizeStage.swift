// The `synthesize` stage kind (issue 10): training text sampled from a model itself, the data-free
// distillation idea of LLM-QAT (Liu et al., 2023). A compressed model distilled on what the dense model
// writes learns the teacher's own distribution (the genres it was trained on) rather than only the
// genres of the corpora at hand, which is what text none of them resembles needs. Each sequence continues
// a prompt (by default "<|endoftext|>", the pretraining document separator) with temperature and top-k
// sampling; special tokens are never sampled, so a sequence runs on as one document instead of closing
// a chat turn. Sequence n draws from Philox stream n
// of the stage seed, so the text is a pure function of the model and the parameters.
// Not here: generation itself (Model/Decoder+Generation.swift), mixing it with other text (`mix`).

import Data
import Foundation
import Model
import Pipeline
import Tensor
import TensorStore

/// `synthesize`: a token dataset sampled from a model.
public struct SynthesizeStage: StageKind {
    public init() {}
    public let name = "synthesize"
    public let version = 1
    public let doc = "Samples a token dataset from a model (a prompt, by default the document separator, continued by temperature and top-k sampling, special tokens banned): training text for distillation that follows the teacher's own distribution."
    public let params = [
        ParamDecl("sequences", .int(1...10_000_000), default: .int(256), doc: "Sequences (documents) to sample."),
        ParamDecl("length", .int(1...65_536), default: .int(256), doc: "Tokens sampled per sequence (the prompt is not stored)."),
        ParamDecl("batch", .int(1...4096), default: .int(16), doc: "Sequences decoded together (one KV cache); part of the fingerprint, since batched products may round differently."),
        ParamDecl("temperature", .double(0...10), default: .double(0.8), doc: "Sampling temperature; 0 = greedy (every sequence alike)."),
        ParamDecl("top_k", .int(0...1_000_000), default: .int(50), doc: "Sample from the K most likely tokens; 0 = the whole vocabulary."),
        ParamDecl("prompt", .string(), default: .string("<|endoftext|>"),
                  doc: "What every sequence continues (special tokens written as text are parsed; not stored). The default is the document separator of GPT-2-style pretraining, so the model starts a fresh document."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model that writes the text (the teacher, usually the dense model).")]
    public let outputs = [OutputDecl("data", storeKind: TokenDataset.storeKind, doc: "The sampled token ids, one document per sequence, tokenized by the model's tokenizer.")]

    struct Params: Decodable {
        var sequences: Int
        var length: Int
        var batch: Int
        var temperature: Double
        var top_k: Int
        var prompt: String
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        Threading.configure(threads: context.threads)
        let store = try ModelStore(store: context.inputs["model"]!)
        let tokenizer = store.tokenizer
        let prompt = tokenizer.encode(p.prompt, parseSpecial: true)
        guard !prompt.isEmpty else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "prompt", reason: "is empty; give the text every sequence continues, e.g. \"<|endoftext|>\"")
        }
        guard prompt.count + p.length <= store.config.maxPositions else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "length",
                                               reason: "is \(p.length), but the prompt's \(prompt.count) tokens + \(p.length) exceed the model's \(store.config.maxPositions) positions; lower it")
        }
        let banned = tokenizer.specialTokenIDs.map(Int32.init)
        let model = try store.decoder()
        var tokens: [Int32] = [], starts: [Int] = []
        tokens.reserveCapacity(p.sequences * p.length)
        let total = p.sequences * p.length
        var lastReport = ContinuousClock.now
        for first in stride(from: 0, to: p.sequences, by: p.batch) {
            let count = min(p.batch, p.sequences - first)
            let done = tokens.count
            let sequences = model.generate(prompts: Array(repeating: prompt, count: count), maxNewTokens: p.length,
                                           temperature: Float(p.temperature), topK: p.top_k > 0 ? p.top_k : nil,
                                           seed: context.seed, firstStream: UInt64(first), banned: banned) { produced in
                let now = ContinuousClock.now
                let seconds = (now - lastReport) / .seconds(1)
                lastReport = now
                context.progress(StageProgress(step: done + produced * count, totalSteps: total,
                                               tokensPerSecond: seconds > 0 ? Double(count) / seconds : nil))
            }
            for sequence in sequences {
                starts.append(tokens.count)
                tokens += sequence
            }
        }
        let documents = try zip(starts, starts.dropFirst() + [tokens.count]).map { start, end in
            TextDocument(text: try tokenizer.decode(Array(tokens[start..<end])))
        }
        let data = TokenDataset(tokens: tokens, documentStarts: starts, tokenizerDigest: tokenizer.digest,
                                textDigest: TextCorpus.digest(documents), selection: "synthesized")
        var provenance = StoreProvenance()
        provenance.extra["synthesized"] = "\(p.sequences) x \(p.length) tokens, temperature \(p.temperature), top_k \(p.top_k), seed \(context.seed)"
        try data.write(to: context.outputs["data"]!, provenance: provenance)
        context.log("sampled \(p.sequences) sequences of \(p.length) tokens (\(tokens.count) tokens); first: \(documents.first.map { String($0.text.prefix(160)) } ?? "")")
    }
}
