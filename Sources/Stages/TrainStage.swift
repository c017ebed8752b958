// `train`: fine-tunes a model store on a token dataset with Training.Trainer (AdamW, LR schedule,
// clipping, accumulation) -> a model store with the same tokenizer. With lora_rank > 0 the base
// weights are frozen, LoRA adapters are trained and merged into the weights at the end, so the
// output is an ordinary dense model. Batches are random windows of the dataset's id stream, seeded
// by the stage seed (of a mixture from the `mix` stage: of each source, the sources drawn by weight).

import Data
import Foundation
import Model
import Pipeline
import Tensor
import TensorStore
import Training

public struct TrainStage: StageKind {
    public init() {}
    public let name = "train"
    public let version = 1
    public let doc = "Fine-tunes a model on a token dataset (full or LoRA merged at the end) with AdamW."
    public let params = [
        ParamDecl("steps", .int(1...10_000_000), default: .int(100), doc: "Optimiser steps."),
        ParamDecl("batch_size", .int(1...1024), default: .int(4), doc: "Sequences per micro-batch (B)."),
        ParamDecl("seq_len", .int(2...8192), default: .int(256), doc: "Tokens per sequence (T)."),
        ParamDecl("accumulation", .int(1...1024), default: .int(1), doc: "Micro-batches per optimiser step."),
        ParamDecl("lr", .double(0...1), default: .double(1e-4), doc: "Peak learning rate."),
        ParamDecl("schedule", .string(choices: LRSchedule.Kind.allCases.map(\.rawValue)), default: .string("cosine"),
                  doc: "Learning-rate curve after warm-up."),
        ParamDecl("warmup", .int(0...10_000_000), default: .int(10), doc: "Warm-up steps."),
        ParamDecl("min_lr_ratio", .double(0...1), default: .double(0.1), doc: "Final learning rate as a share of lr."),
        ParamDecl("weight_decay", .double(0...1), default: .double(0.01), doc: "AdamW weight decay (matrices only)."),
        ParamDecl("clip_norm", .double(0...1e6), default: .double(1), doc: "Global gradient-norm limit; 0 = none."),
        ParamDecl("freeze", .string(), default: .string(""), doc: "Comma-separated name patterns of frozen weights, e.g. embed/**."),
        ParamDecl("lora_rank", .int(0...4096), default: .int(0), doc: "LoRA rank; 0 trains every (unfrozen) weight."),
        ParamDecl("lora_alpha", .double(0...1e6), default: .double(16), doc: "LoRA scale numerator (scale = alpha / rank)."),
    ] + distillationParams
    public let inputs = [
        InputDecl("model", storeKind: ModelStore.storeKind, doc: "The starting model."),
        InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Training token ids (same tokenizer); a mix stage's mixture is sampled by its weights."),
        teacherInput,
    ]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The fine-tuned model (LoRA merged).")]

    struct Params: Decodable {
        var steps: Int, batch_size: Int, seq_len: Int, accumulation: Int
        var lr: Double, schedule: String, warmup: Int, min_lr_ratio: Double, weight_decay: Double, clip_norm: Double
        var freeze: String, lora_rank: Int, lora_alpha: Double
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self), distillation = try context.decodeParams(DistillationParams.self)
        Threading.configure(threads: context.threads)
        var store = try ModelStore(store: context.inputs["model"]!)
        let data = try tokenDataset(context.inputs["data"]!, tokenizer: store.tokenizer, stage: context.stageID, input: "data")
        let decoder = try store.decoder()
        let teaching = try attachTeacher(context, params: distillation, to: decoder, input: store)
        if let teaching { context.log(teaching) }
        if p.lora_rank > 0 {
            try decoder.addLoRA(rank: p.lora_rank, alpha: Float(p.lora_alpha), seed: context.seed)
            decoder.trainBase = false
        }
        let config = TrainerConfig(
            steps: p.steps, batchSize: p.batch_size, seqLen: p.seq_len, accumulation: p.accumulation,
            clipNorm: p.clip_norm > 0 ? Float(p.clip_norm) : nil,
            schedule: LRSchedule(kind: LRSchedule.Kind(rawValue: p.schedule)!, lr: Float(p.lr), warmup: p.warmup,
                                 minLR: Float(p.lr * p.min_lr_ratio)),
            optimizer: AdamWConfig(weightDecay: Float(p.weight_decay)),
            freeze: freezePatterns(p.freeze))
        let batches: any BatchSource
        if data.sources.isEmpty {
            batches = try TokenSampler(stream: data.tokens, T: p.seq_len, seed: context.seed)
        } else {
            // A mixture: random windows of each source, drawn by the sources' weights.
            let samplers = try data.sources.indices.map { i throws(TrainingError) in
                try TokenSampler(stream: Array(data.sourceTokens(i)), T: p.seq_len, seed: MixedSampler.sourceSeed(context.seed, source: i))
            }
            batches = try MixedSampler(sources: samplers, schedule: try sourceSchedule(data, stage: context.stageID, input: "data"))
        }
        let trainer = try Trainer(model: decoder, config: config, batches: batches)
        let divergence = DivergenceGuard(stage: context.stageID, advice: "Lower lr (now \(p.lr))"
                                         + (p.lora_rank > 0 ? " or lora_alpha (now \(p.lora_alpha))" : "")
                                         + ", add warm-up or set clip_norm (now \(p.clip_norm), 0 = off).")
        do {
            try trainer.run { report in
                context.progress(StageProgress(step: report.step, totalSteps: report.steps, loss: Double(report.loss),
                                               tokensPerSecond: report.tokensPerSecond))
                if report.step == 1 || report.step % 10 == 0 || report.step == report.steps { context.log(report.description) }
            }
        } catch {
            throw divergence.stageError(error, while: "training")
        }
        if p.lora_rank > 0 {
            decoder.mergeLoRA()
        }
        try divergence.checkFinal(decoder, steps: p.steps, probe: [batches.batch(first: 0, count: p.batch_size)])
        store.parameters = decoder.parameters
        store.source["trained_from"] = try TensorStoreReader.digest(ofStoreAt: context.inputs["model"]!)
        if let teaching { store.source["loss"] = teaching }
        try store.write(to: context.outputs["model"]!)
    }
}

/// The `freeze` parameter of `train` and `finetune`: comma-separated name patterns, blanks dropped.
func freezePatterns(_ text: String) -> [String] {
    text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}
