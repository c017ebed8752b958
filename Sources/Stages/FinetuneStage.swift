// The `finetune` stage kind (issue 5): recovery fine-tuning of a (pruned) model on a token dataset,
// with LoRA adapters on every linear layer merged into the weights at the end (the paper's setting:
// rank 32, alpha 10, lr 2e-5) or with every weight trained. The output has the input's widths.
// Not here: the training loop itself (Training/Trainer.swift).

import Data
import Foundation
import Model
import Pipeline
import Tensor
import Training

/// `finetune`: LoRA (merged) or full fine-tuning. Unlike the general `train` kind it has the paper's
/// recovery defaults, a fixed data budget (`samples`, `sample_offset`) and a held-out tail.
public struct FinetuneStage: StageKind {
    public init() {}
    public let name = "finetune"
    public let version = 1
    public let doc = "Recovery fine-tuning: LoRA on every linear layer, merged at the end (or full); same widths out."
    public let params = [
        ParamDecl("lora_rank", .int(0...4096), default: .int(32), doc: "LoRA rank r (the paper's 32); 0 trains every weight (full fine-tuning)."),
        ParamDecl("lora_alpha", .double(0...1e6), default: .double(10), doc: "LoRA alpha; the adapter scale is alpha/rank (the paper's 10)."),
    ] + trainingParams(steps: 100, lr: 2e-5) + distillationParams + [
        ParamDecl("heldout_fraction", .double(0...0.5), default: .double(0),
                  doc: "Tail of the token stream not trained on; its loss is logged before and after (0: train on all)."),
        ParamDecl("freeze", .string(), default: .string(""), omittedAtDefault: true,
                  doc: "Full fine-tuning (lora_rank 0) only: comma-separated name patterns of weights kept as they are, e.g. embed/**,lm_head."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to recover (usually pruned)."),
                         InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Fine-tuning tokens; a mix stage's mixture is sampled by its weights, each source's tail held out."),
                         teacherInput]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The fine-tuned model, adapters merged.")]

    struct Params: Decodable {
        var lora_rank: Int
        var lora_alpha: Double
        var heldout_fraction: Double
        var freeze: String?  // omitted at its default, ""
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self), t = try context.decodeParams(TrainingParams.self)
        let distillation = try context.decodeParams(DistillationParams.self)
        Threading.configure(threads: context.threads)
        let store = try ModelStore(store: context.inputs["model"]!)
        let data = try TokenSplit(store: context.inputs["data"]!, tokenizer: store.tokenizer, training: t, heldOutFraction: p.heldout_fraction, seed: context.seed,
                                  stage: context.stageID, input: "data")
        let model = try store.decoder()
        let teaching = try attachTeacher(context, params: distillation, to: model, input: store)
        if let teaching { context.log(teaching) }
        let before = heldOutLoss(model, batches: data.heldOut)
        let lora = p.lora_rank > 0
        let frozen = freezePatterns(p.freeze ?? "")
        if lora && !frozen.isEmpty {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "freeze",
                                              reason: "LoRA (lora_rank \(p.lora_rank)) already keeps every base weight; freeze applies to full fine-tuning, lora_rank: 0")
        }
        if lora {
            do {
                try model.addLoRA(rank: p.lora_rank, alpha: Float(p.lora_alpha), seed: context.seed)
            } catch {
                throw DReSSStageError.badParameter(stage: context.stageID, name: "lora_rank", reason: error.description)
            }
            model.trainBase = false
        }
        let config = t.trainerConfig(freeze: frozen)
        let divergence = DivergenceGuard(stage: context.stageID, advice: "Lower lr (now \(t.lr))"
                                         + (lora ? " or lora_alpha (now \(p.lora_alpha))" : "")
                                         + ", add warm-up or set clip_norm (now \(t.clip_norm), 0 = off).")
        let trainer: Trainer<Decoder>
        do {
            trainer = try Trainer(model: model, config: config, batches: data.sampler)
        } catch {
            // Only a pattern that names nothing is freeze's fault; other settings report themselves.
            guard case .unknownParameterPattern = error else { throw error }
            throw DReSSStageError.badParameter(stage: context.stageID, name: "freeze", reason: error.description)
        }
        do {
            try trainer.run { report in
                context.progress(StageProgress(step: report.step, totalSteps: report.steps, loss: Double(report.loss),
                                               tokensPerSecond: report.tokensPerSecond))
                if report.step % 10 == 0 || report.step == report.steps { context.log(report.description) }
            }
        } catch {
            throw divergence.stageError(error, while: "fine-tuning")
        }
        if lora { model.mergeLoRA() }
        try divergence.checkFinal(model, steps: t.steps, probe: [data.sampler.batch(first: 0, count: t.batch_size)])
        if !data.heldOut.isEmpty {
            context.log(String(format: "held-out loss %.4f -> %.4f over %d windows", before, heldOutLoss(model, batches: data.heldOut), data.heldOut.count))
        }
        var out = store
        out.parameters = model.parameters
        out.source["finetuned"] = (lora ? "lora rank=\(p.lora_rank) alpha=\(p.lora_alpha) steps=\(t.steps)"
                   : "full steps=\(t.steps)" + (frozen.isEmpty ? "" : " frozen=\(frozen.joined(separator: ","))"))
            + (teaching.map { "; \($0)" } ?? "")
        try out.write(to: context.outputs["model"]!)
    }
}
