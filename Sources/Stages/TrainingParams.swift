// The training parameters `regularize`, `finetune` and `train` share, their decoded form and the one
// place it becomes a `TrainerConfig`; and reading a token dataset store into a training sampler and
// held-out batches (a `mix` stage's mixture: source by source, sampled by its weights).

import Data
import Foundation
import Model
import Pipeline
import Training

/// The training parameters `regularize`, `finetune` and `train` share (their defaults differ, so built per kind).
func trainingParams(steps: Int, lr: Double, batch: Int = 4, seqLen: Int = 256, warmup: Int = 10, weightDecay: Double = 0) -> [ParamDecl] {
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
        ParamDecl("weight_decay", .double(0...10), default: .double(weightDecay), doc: "AdamW decoupled weight decay on matrices."),
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

    /// The trainer's settings: the one place stage parameters become a `TrainerConfig`.
    func trainerConfig(freeze: [String] = []) -> TrainerConfig {
        TrainerConfig(steps: steps, batchSize: batch_size, seqLen: seq_len, accumulation: accumulation, clipNorm: clipNorm,
                      schedule: lrSchedule, optimizer: AdamWConfig(weightDecay: Float(weight_decay)), freeze: freeze)
    }
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

/// Trains `model` in place the way `train` and `finetune` do: LoRA adapters of `loraRank` on every
/// linear layer, merged at the end (rank > 0), or every weight but the `freeze` patterns (rank 0).
/// Faults of those two parameters are the stage's `badParameter`; progress goes to the context and a
/// log line every 10 steps; a diverging run stops with advice. `activity` names the work in errors.
func trainInStage(_ model: Decoder, on data: TokenSplit, training t: TrainingParams, loraRank: Int, loraAlpha: Double,
                  freeze: [String], context: StageContext, activity: String) throws {
    let lora = loraRank > 0
    if lora && !freeze.isEmpty {
        throw DReSSStageError.badParameter(stage: context.stageID, name: "freeze",
                                          reason: "LoRA (lora_rank \(loraRank)) already keeps every base weight; freeze applies to full training, lora_rank: 0")
    }
    if lora {
        do {
            try model.addLoRA(rank: loraRank, alpha: Float(loraAlpha), seed: context.seed)
        } catch {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "lora_rank", reason: error.description)
        }
        model.trainBase = false
    }
    let trainer: Trainer<Decoder>
    do {
        trainer = try Trainer(model: model, config: t.trainerConfig(freeze: freeze), batches: data.sampler)
    } catch {
        // Only a pattern that names nothing is freeze's fault; other settings report themselves.
        guard case .unknownParameterPattern = error else { throw error }
        throw DReSSStageError.badParameter(stage: context.stageID, name: "freeze", reason: error.description)
    }
    let divergence = DivergenceGuard(stage: context.stageID, advice: "Lower lr (now \(t.lr))"
                                     + (lora ? " or lora_alpha (now \(loraAlpha))" : "")
                                     + ", add warm-up or set clip_norm (now \(t.clip_norm), 0 = off).")
    do {
        try trainResumably(trainer, context: context) { report in
            context.progress(StageProgress(step: report.step, totalSteps: report.steps, loss: Double(report.loss),
                                           tokensPerSecond: report.tokensPerSecond))
            if report.step % 10 == 0 || report.step == report.steps { context.log(report.description) }
        }
    } catch let error as TrainingError {
        throw divergence.stageError(error, while: activity)
    }
    if lora { model.mergeLoRA() }
    try divergence.checkFinal(model, steps: t.steps, probe: [data.sampler.batch(first: 0, count: t.batch_size)])
}

/// The `freeze` parameter of `train` and `finetune`: comma-separated name patterns, blanks dropped.
func freezePatterns(_ text: String) -> [String] {
    text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}
