// The `regularize` stage kind (method `dress`, issue 5): chooses P by rule, then trains the model on LM
// loss + λ·Σ‖slice‖ over P's slices (Training/Regularization.swift) on windows of a token dataset,
// holding out the tail of the token stream for the masked-perplexity checkpoints. Writes the
// regularized model and the channel store with the run's curves. Also here: reading token datasets
// into a sampler and held-out batches, shared with `finetune`. Not here: pruning (PruneStage.swift).

import Data
import Foundation
import Model
import Pipeline
import Tensor
import Training

/// The training parameters `regularize` and `finetune` share (their defaults differ, so built per kind);
/// names as in `train`.
func trainingParams(steps: Int, lr: Double, batch: Int = 4, seqLen: Int = 256, warmup: Int = 10) -> [ParamDecl] {
    [
        ParamDecl("steps", .int(0...1_000_000), default: .int(steps), doc: "Optimiser updates."),
        ParamDecl("batch_size", .int(1...4096), default: .int(batch), doc: "Sequences per micro-batch (B)."),
        ParamDecl("seq_len", .int(1...65_536), default: .int(seqLen), doc: "Tokens per sequence (T)."),
        ParamDecl("accumulation", .int(1...4096), default: .int(1), doc: "Micro-batches per update (effective batch = accumulation·B)."),
        ParamDecl("lr", .double(0...1), default: .double(lr), doc: "Peak learning rate (AdamW)."),
        ParamDecl("warmup", .int(0...1_000_000), default: .int(warmup), doc: "Linear warm-up updates."),
        ParamDecl("schedule", .string(choices: LRSchedule.Kind.allCases.map(\.rawValue)), default: .string("cosine"),
                  doc: "Learning-rate curve after warm-up, down to min_lr_ratio·lr at the last update."),
        ParamDecl("min_lr_ratio", .double(0...1), default: .double(0.1), doc: "Floor of the decay as a share of lr."),
        ParamDecl("weight_decay", .double(0...10), default: .double(0), doc: "AdamW decoupled weight decay on matrices."),
        ParamDecl("clip_norm", .double(0...1e6), default: .double(1), doc: "Global gradient-norm clip; 0 = off."),
        ParamDecl("samples", .int(0...100_000_000), default: .int(0),
                  doc: "Data budget: 0 = random windows anywhere in the training part; N = only windows sample_offset ..< sample_offset+N of T+1 tokens cut end to end from it, shuffled each epoch."),
        ParamDecl("sample_offset", .int(0...100_000_000), default: .int(0),
                  doc: "First window of the budget (e.g. regularize 0 + 750 samples, finetune 750 + 250: the paper's 3:1 split)."),
    ]
}

/// The decoded `trainingParams`.
struct TrainingParams: Decodable {
    var steps: Int
    var batch_size: Int
    var seq_len: Int
    var accumulation: Int
    var lr: Double
    var warmup: Int
    var schedule: LRSchedule.Kind
    var min_lr_ratio: Double
    var weight_decay: Double
    var clip_norm: Double
    var samples: Int
    var sample_offset: Int

    var lrSchedule: LRSchedule {
        LRSchedule(kind: schedule, lr: Float(lr), warmup: warmup, steps: max(steps, warmup), minLR: Float(lr * min_lr_ratio))
    }
    var clipNorm: Float? { clip_norm > 0 ? Float(clip_norm) : nil }
}

/// A token dataset store as a training sampler over its head and held-out batches from its tail; a
/// mixture (the `mix` stage) is split source by source and sampled by its weights.
struct TokenSplit {
    var sampler: any BatchSource
    /// Windows of T + 1 tokens cut end to end from the tail, (1, T) each (a mixture: every source's
    /// tail, in source order).
    var heldOut: [TokenBatch]

    /// The last `heldOutFraction` of the token stream (at least one window when the fraction is > 0)
    /// becomes held-out windows. The rest trains: random windows anywhere (`training.samples` 0), or
    /// windows `sample_offset ..< sample_offset + samples` of T + 1 tokens cut end to end, shuffled each
    /// epoch by `seed` (a fixed data budget).
    /// A mixture does this per source: its tail is held out, and with a budget source i contributes
    /// the windows the weighted schedule draws from it among samples 0 ..< sample_offset (skipped)
    /// and 0 ..< samples (used), so budgets of consecutive stages stay disjoint in every source.
    /// The dataset must have been tokenized by `tokenizer` (the model's).
    init(store url: URL, tokenizer: BPETokenizer, training: TrainingParams, heldOutFraction: Double, seed: UInt64,
         stage: String, input: String) throws {
        let dataset = try tokenDataset(url, tokenizer: tokenizer, stage: stage, input: input)
        guard !dataset.sources.isEmpty else {
            (sampler, heldOut) = try Self.split(dataset.tokens, training: training, heldOutFraction: heldOutFraction, seed: seed,
                                                offset: training.sample_offset, samples: training.samples, stage: stage, input: input)
            return
        }
        let schedule = try sourceSchedule(dataset, stage: stage, input: input)
        var samplers: [TokenSampler] = []
        heldOut = []
        for (i, source) in dataset.sources.enumerated() {
            let samples = schedule.count(source: i, inFirst: training.samples)
            if training.samples > 0 && samples == 0 {
                throw DReSSStageError.badInput(stage: stage, input: input,
                                               what: "gives source \(source.name) no window within samples \(training.samples); raise samples or its weight")
            }
            let (sampler, held) = try Self.split(Array(dataset.sourceTokens(i)), training: training, heldOutFraction: heldOutFraction,
                                                 seed: MixedSampler.sourceSeed(seed, source: i),
                                                 offset: schedule.count(source: i, inFirst: training.sample_offset), samples: samples,
                                                 stage: stage, input: "\(input) (source \(source.name))")
            samplers.append(sampler)
            heldOut += held
        }
        do {
            sampler = try MixedSampler(sources: samplers, schedule: schedule)
        } catch {
            throw DReSSStageError.badInput(stage: stage, input: input, what: error.description)
        }
    }

    /// One token stream's sampler (windows `offset ..< offset + samples` when samples > 0) and tail.
    private static func split(_ tokens: [Int32], training: TrainingParams, heldOutFraction: Double, seed: UInt64,
                              offset: Int, samples: Int, stage: String, input: String) throws -> (TokenSampler, [TokenBatch]) {
        let T = training.seq_len, window = T + 1
        var heldCount = heldOutFraction > 0 ? max(window, Int(Double(tokens.count) * heldOutFraction)) : 0
        heldCount -= heldCount % window
        let split = tokens.count - heldCount
        let budget = samples > 0 ? (offset + samples) * window : window
        guard split >= budget else {
            throw DReSSStageError.badInput(stage: stage, input: input, what: "has \(tokens.count) tokens: \(split) left after holding out \(heldCount), "
                                           + "but training needs \(budget) (windows of \(window), samples \(samples) from \(offset))")
        }
        let sampler: TokenSampler
        do {
            if samples > 0 {
                let start = offset * window
                sampler = try TokenSampler(windows: Array(tokens[start..<(start + samples * window)]), T: T, seed: seed)
            } else {
                sampler = try TokenSampler(stream: Array(tokens[..<split]), T: T, seed: seed)
            }
        } catch {
            throw DReSSStageError.badInput(stage: stage, input: input, what: error.description)
        }
        let heldOut = stride(from: split, to: tokens.count, by: window).map { start in
            TokenBatch(tokens: Array(tokens[start..<(start + T)]), targets: Array(tokens[(start + 1)..<(start + window)]), B: 1, T: T)
        }
        return (sampler, heldOut)
    }
}

/// The token dataset store at `url`, which must have been tokenized by `tokenizer` (the model's).
func tokenDataset(_ url: URL, tokenizer: BPETokenizer, stage: String, input: String) throws -> TokenDataset {
    let dataset = try TokenDataset(store: url)
    do {
        try dataset.requireTokenizer(tokenizer)
    } catch {
        throw DReSSStageError.badInput(stage: stage, input: input, what: "does not fit the model: \(error.description)")
    }
    return dataset
}

/// The sampling schedule of a mixture's sources, from their weights.
func sourceSchedule(_ dataset: TokenDataset, stage: String, input: String) throws -> SourceSchedule {
    do {
        return try SourceSchedule(weights: dataset.sources.map(\.weight))
    } catch {
        throw DReSSStageError.badInput(stage: stage, input: input, what: "has source weights that cannot be scheduled: \(error.description)")
    }
}

/// `regularize`: DReSS regularization of a model towards an empty channel set P.
public struct RegularizeStage: StageKind {
    public init() {}
    public let name = "regularize"
    public let version = 2
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
            curves = try runRegularization(model: model, batches: data.sampler, channels: channels, config: config,
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
        } catch {
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
