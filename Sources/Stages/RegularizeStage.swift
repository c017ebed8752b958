// The `regularize` stage kind (method `dress`, issue 5): chooses P by rule, then trains the model on LM
// loss + λ·Σ‖slice‖ over P's slices (Training/Regularization.swift) on windows of a token dataset,
// holding out the tail of the token stream for the masked-perplexity checkpoints. Writes the
// regularized model and the channel store with the run's curves. Not here: pruning (PruneStage.swift),
// the training parameters and token sampling it shares with `finetune` and `train` (TrainingParams.swift).

import Data
import Foundation
import Model
import Pipeline
import Tensor
import Training

/// `regularize`: DReSS regularization of a model towards an empty channel set P.
public struct RegularizeStage: StageKind {
    public init() {}
    public let name = "regularize"
    public let version = 3   // 3: the LM head's dW sums over chunks of 682 rows, not 170 (V = 49152), so trained bits differ
    public let doc = "DReSS: chooses P by rule, then trains with LM loss + λ·Σ‖slice‖ over P's slices so that pruning P later costs little (method none: P only, model unchanged)."
    public let params = [
        ParamDecl("method", .string(choices: ["dress", "none"]), default: .string("dress"),
                  doc: "dress: regularize; none: choose P only and pass the model through unchanged (the direct and importance baselines, so one sweep variable picks the method)."),
    ] + selectionParams + [
        ParamDecl("lambda", .double(0...1e6), default: .double(0.0084),
                  doc: "Penalty weight λ; the ramp's end value. Default: with slice_weights initial and penalty_lr 1, P is empty after 60% of the default 200 steps (≈ 1/(0.6·steps), the best share on SmolLM2). The paper's 1e-3 is for its subgradient form."),
        ParamDecl("lambda_schedule", .string(choices: LambdaScheduleKind.allCases.map(\.rawValue)), default: .string("constant"),
                  doc: "constant: λ throughout; linear_ramp: from lambda_start to lambda over lambda_ramp_steps."),
        ParamDecl("lambda_start", .double(0...1e6), default: .double(0), doc: "λ at step 0 of a linear_ramp."),
        ParamDecl("lambda_ramp_steps", .int(0...1_000_000), default: .int(0), doc: "Length of a linear_ramp; 0 = the whole run."),
        ParamDecl("norm", .string(choices: SliceNorm.allCases.map(\.rawValue)), default: .string("l2"),
                  doc: "Slice norm: l2 (the paper's), l2sq (squared) or l1."),
        ParamDecl("penalty_update", .string(choices: PenaltyUpdate.allCases.map(\.rawValue)), default: .string("proximal"),
                  doc: "proximal: after each AdamW update shrink every slice of P by penalty_lr·λ (exact zeros; the default, chosen by the experiments in docs/results.md); gradient: add λ·∂penalty to the gradient (AdamW caps the move at ~lr per step)."),
        ParamDecl("penalty_lr", .double(0...1e6), default: .double(1),
                  doc: "η of the proximal step: each update shrinks each slice's norm by η·λ (ℓ2; ℓ1 each element). Unused by gradient."),
        ParamDecl("slice_weights", .string(choices: SliceWeighting.allCases.map(\.rawValue)), default: .string("initial"),
                  doc: "uniform: Σ‖slice‖ (the paper's; λ·penalty_lr is an absolute shrink per step); initial: each slice weighted by its starting ℓ2 norm, so λ·penalty_lr is the fraction of every slice removed per step and P empties together once their sum reaches 1."),
        ParamDecl("penalty_schedule", .string(choices: PenaltySchedule.allCases.map(\.rawValue)), default: .string("constant"),
                  doc: "constant: η throughout; lr: η follows the learning rate's warm-up and decay (η·lr_t/lr)."),
    ] + trainingParams(steps: 200, lr: 5e-4) + distillationParams + [
        ParamDecl("log_every", .int(1...1_000_000), default: .int(10), doc: "Record loss, penalty and slice energy every this many updates."),
        ParamDecl("eval_every", .int(0...1_000_000), default: .int(0), doc: "Masked held-out loss every this many updates (0: before and after only)."),
        ParamDecl("heldout_fraction", .double(0...0.5), default: .double(0.05),
                  doc: "Tail of the token stream held out for the masked-loss checkpoints (not trained on)."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The dense model."),
                         InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Training tokens (its tail is held out); a mix stage's mixture is sampled by its weights, each source's tail held out."),
                         teacherInput]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The regularized model (same widths)."),
                          OutputDecl("channels", storeKind: ChannelStore.storeKind, doc: "P, with the run's loss, penalty, energy and masked-loss curves.")]

    struct Params: Decodable {
        var method: String
        var penalty_update: PenaltyUpdate
        var penalty_lr: Double
        var penalty_schedule: PenaltySchedule
        var slice_weights: SliceWeighting
        var lambda: Double
        var lambda_schedule: LambdaScheduleKind
        var lambda_start: Double
        var lambda_ramp_steps: Int
        var norm: SliceNorm
        var log_every: Int
        var eval_every: Int
        var heldout_fraction: Double
    }

    /// The closed set of `lambda_schedule`.
    enum LambdaScheduleKind: String, Decodable, CaseIterable {
        case constant, linear_ramp
    }

    /// λ over the run: a linear_ramp without lambda_ramp_steps spans all `steps` updates.
    static func lambdaSchedule(_ p: Params, steps: Int) -> LambdaSchedule {
        switch p.lambda_schedule {
        case .constant: .constant(p.lambda)
        case .linear_ramp: .linearRamp(from: p.lambda_start, to: p.lambda, steps: p.lambda_ramp_steps > 0 ? p.lambda_ramp_steps : steps)
        }
    }

    /// The trainer's settings from the stage's parameters.
    static func regularizationConfig(_ p: Params, _ t: TrainingParams) -> RegularizationConfig {
        RegularizationConfig(lambda: lambdaSchedule(p, steps: t.steps), norm: p.norm, steps: t.steps, batchSize: t.batch_size,
                             seqLen: t.seq_len, accumulation: t.accumulation, lr: Float(t.lr), warmup: t.warmup, decay: t.schedule,
                             minLR: Float(t.lr * t.min_lr_ratio), weightDecay: Float(t.weight_decay),
                             clipNorm: t.clipNorm, logEvery: p.log_every, evalEvery: p.eval_every,
                             penaltyUpdate: p.penalty_update, penaltyLR: p.penalty_lr, penaltySchedule: p.penalty_schedule,
                             sliceWeights: p.slice_weights)
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self), t = try context.decodeParams(TrainingParams.self)
        let distillation = try context.decodeParams(DistillationParams.self)
        Threading.configure(threads: context.threads)
        let store = try ModelStore(store: context.inputs["model"]!)
        let (channels, selection, ranking) = try selectChannels(context, model: store, data: context.inputs["data"])
        if p.method == "none" {
            context.log("selected \(channels.pruned.count) of \(channels.hiddenSize) channels (\(selection)); method none: model unchanged")
            try store.write(to: context.outputs["model"]!)
            try ChannelStore(channels: channels, selection: selection, ranking: ranking).write(to: context.outputs["channels"]!)
            return
        }
        let data = try TokenSplit(store: context.inputs["data"]!, tokenizer: store.tokenizer, training: t, heldOutFraction: p.heldout_fraction,
                                  seed: context.seed, stage: context.stageID, input: "data")
        let config = Self.regularizationConfig(p, t)
        let model = try store.decoder()
        let teaching = try attachTeacher(context, params: distillation, to: model, input: store)
        if let teaching { context.log(teaching) }
        context.log("regularizing \(channels.pruned.count) of \(channels.hiddenSize) channels (\(selection)), \(data.heldOut.count) held-out windows"
                    + (ranking.map { ", nested: prefixes of \($0.counts.map(String.init).joined(separator: ", ")) in turn" } ?? ""))
        let divergence = DivergenceGuard(stage: context.stageID, advice: "Lower lr (now \(t.lr)) or lambda (now \(p.lambda)) and "
                                         + "penalty_lr (now \(p.penalty_lr)), add warm-up or set clip_norm (now \(t.clip_norm), 0 = off).")
        let curves: RegularizationCurves
        // Tokens/s as finetune reports it: tokens of one optimizer step over the time since the previous step.
        let tokensPerStep = Double(t.batch_size * t.seq_len * max(1, t.accumulation))
        var lastStep = ContinuousClock.now
        do {
            let run = try RegularizationRun(model: model, batches: data.sampler, channels: channels, config: config,
                                            heldOut: data.heldOut, ranking: ranking) { event in
                switch event {
                case let .step(step, steps, loss):
                    let now = ContinuousClock.now
                    let seconds = (now - lastStep) / .seconds(1)
                    lastStep = now
                    context.progress(StageProgress(step: step, totalSteps: steps, loss: Double(loss),
                                                   tokensPerSecond: seconds > 0 ? tokensPerStep / seconds : nil))
                case let .point(point):
                    context.log(point.description)
                case let .evaluation(evaluation):
                    context.log(evaluation.description)
                }
            }
            // `start` measures before the first update, and nothing after a resume (the curves hold it).
            try runResumably(run, context: context, begin: { try run.start() }) { try run.update() }
            curves = run.curves
        } catch let error as TrainingError {
            throw divergence.stageError(error, while: "regularizing")
        }
        try divergence.checkFinal(model, steps: t.steps, probe: [data.sampler.batch(first: 0, count: t.batch_size)])
        var out = store
        out.parameters = model.parameters
        out.source["regularized"] = "\(p.norm.rawValue) \(p.penalty_update.rawValue) lambda=\(p.lambda) penalty_lr=\(p.penalty_lr) weights=\(p.slice_weights.rawValue) steps=\(t.steps) channels=\(channels.pruned.count)/\(channels.hiddenSize)"
            + (ranking.map { " nested=\($0.counts.map(String.init).joined(separator: ","))" } ?? "") + (teaching.map { "; \($0)" } ?? "")
        try out.write(to: context.outputs["model"]!)
        try ChannelStore(channels: channels, selection: selection, curves: curves, ranking: ranking).write(to: context.outputs["channels"]!)
    }
}
