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
    public let version = 2   // 2: the LM head's dW sums over chunks of 682 rows, not 170 (V = 49152), so trained bits differ
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
        try trainInStage(model, on: data, training: t, loraRank: p.lora_rank, loraAlpha: p.lora_alpha,
                         freeze: frozen, context: context, activity: "fine-tuning")
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
