// `train`: fine-tunes a model store on a token dataset with Training.Trainer (AdamW, LR schedule,
// clipping, accumulation) -> a model store with the same tokenizer. With lora_rank > 0 the base
// weights are frozen, LoRA adapters are trained and merged into the weights at the end, so the
// output is an ordinary dense model. Batches are random windows of the dataset's id stream, seeded
// by the stage seed (of a mixture from the `mix` stage: of each source, the sources drawn by weight),
// or a fixed budget of windows (`samples`); the training parameters are finetune's (TrainingParams.swift).

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
    public let version = 2   // 2: the LM head's dW sums over chunks of 682 rows, not 170 (V = 49152), so trained bits differ
    public let doc = "Fine-tunes a model on a token dataset (full or LoRA merged at the end) with AdamW."
    public let params = trainingParams(steps: 100, lr: 1e-4, weightDecay: 0.01) + [
        ParamDecl("freeze", .string(), default: .string(""), doc: "Full training (lora_rank 0) only: comma-separated name patterns of frozen weights, e.g. embed/**."),
        ParamDecl("lora_rank", .int(0...4096), default: .int(0), doc: "LoRA rank; 0 trains every (unfrozen) weight."),
        ParamDecl("lora_alpha", .double(0...1e6), default: .double(16), doc: "LoRA scale numerator (scale = alpha / rank)."),
    ] + distillationParams
    public let inputs = [
        InputDecl("model", storeKind: ModelStore.storeKind, doc: "The starting model."),
        InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Training token ids (same tokenizer); a mix stage's mixture is sampled by its weights."),
        teacherInput,
    ]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The fine-tuned model (LoRA merged).")]

    struct Params: Decodable { var freeze: String, lora_rank: Int, lora_alpha: Double }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self), t = try context.decodeParams(TrainingParams.self)
        let distillation = try context.decodeParams(DistillationParams.self)
        Threading.configure(threads: context.threads)
        var store = try ModelStore(store: context.inputs["model"]!)
        let data = try TokenSplit(store: context.inputs["data"]!, tokenizer: store.tokenizer, training: t, heldOutFraction: 0,
                                  seed: context.seed, stage: context.stageID, input: "data")
        let decoder = try store.decoder()
        let teaching = try attachTeacher(context, params: distillation, to: decoder, input: store)
        if let teaching { context.log(teaching) }
        try trainInStage(decoder, on: data, training: t, loraRank: p.lora_rank, loraAlpha: p.lora_alpha,
                         freeze: freezePatterns(p.freeze), context: context, activity: "training")
        store.parameters = decoder.parameters
        store.source["trained_from"] = try TensorStoreReader.digest(ofStoreAt: context.inputs["model"]!)
        if let teaching { store.source["loss"] = teaching }
        try store.write(to: context.outputs["model"]!)
    }
}
