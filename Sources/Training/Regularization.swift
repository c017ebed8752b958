// The DReSS regularization loop (design.md "The method", issue 5) as a library function: AdamW with
// warm-up and decay on LM loss + λ(step)·Σ‖slice‖ over the slices of a fixed channel set P, with the
// curves a report plots (loss, penalty, relative slice energy, and at checkpoints the held-out loss of
// the model with P masked to zero). Each update is Trainer's five calls plus one: the penalty gradient
// is added after the model's backward and before clipping, so clipping sees the whole objective.
// Not here: choosing P (ChannelSelection.swift), the penalty kernels (ChannelRegularizer.swift),
// deleting the channels (Model/ChannelSurgery.swift), stores and stage parameters (module Stages).

import Foundation
import Model
import Tensor
import TensorStore

/// How the penalty acts on the weights.
public enum PenaltyUpdate: String, Codable, Sendable, CaseIterable {
    /// After each AdamW update, the proximal step of η_t·λ_t·penalty (`ChannelRegularizer.applyProximal`):
    /// a shrink of η_t·λ_t per slice per step, independent of AdamW's per-weight scaling, reaching exact 0.
    case proximal
    /// λ·∂penalty added to the gradient before clipping and AdamW (a subgradient method): AdamW's
    /// normalisation caps each weight's move at ~lr per step, whatever λ is.
    case gradient
}

/// Which weight each slice's norm gets in the penalty.
public enum SliceWeighting: String, Codable, Sendable, CaseIterable {
    /// Σ‖slice‖, every slice weight 1 (the paper's penalty): λ is an absolute shrink per step.
    case uniform
    /// Σ ‖s⁰‖·‖slice‖ with ‖s⁰‖ the slice's norm when the run starts (`SliceWeights.initialNorms`): λ is
    /// a fraction of each slice's starting norm, so small slices (norm scales) and large ones
    /// (embedding columns) empty together.
    case initial
}

/// How the proximal step size η_t follows the update step.
public enum PenaltySchedule: String, Codable, Sendable, CaseIterable {
    /// η_t = penalty_lr at every step.
    case constant
    /// η_t = penalty_lr · lr_t / lr: the learning rate's warm-up and decay, scaled.
    case lr
}

/// Settings of one regularization run (the regularize stage builds it from its parameters).
public struct RegularizationConfig: Sendable, Equatable {
    /// λ over update steps, e.g. constant 1e-3 (the paper's best).
    public var lambda: LambdaSchedule
    /// How one slice is measured, e.g. .l2 (the paper's).
    public var norm: SliceNorm
    /// Optimiser updates, e.g. 200.
    public var steps: Int
    /// B, sequences per micro-batch, e.g. 4.
    public var batchSize: Int
    /// T, tokens per sequence, e.g. 256.
    public var seqLen: Int
    /// Micro-batches accumulated per update, e.g. 1 (effective batch = accumulation · B).
    public var accumulation: Int
    /// Peak learning rate, e.g. 1e-4.
    public var lr: Float
    /// Linear warm-up updates, e.g. 10.
    public var warmup: Int
    /// Curve after warm-up, e.g. .cosine down to `minLR` at the last step.
    public var decay: LRSchedule.Kind
    /// Floor of the decay, e.g. lr / 10.
    public var minLR: Float
    /// AdamW decoupled weight decay on matrices, e.g. 0 (why 0: the penalty is the regulariser; decay
    /// would also shrink the kept channels).
    public var weightDecay: Float
    /// Global gradient-norm limit, e.g. 1.0; nil = no clipping (`clip_norm: 0` in a file).
    public var clipNorm: Float?
    /// Loss, penalty and energy are recorded every `logEvery` updates (and at the last), e.g. 10.
    public var logEvery: Int
    /// The masked held-out loss is measured every `evalEvery` updates, before the first and after the
    /// last; 0 = only before the first and after the last.
    public var evalEvery: Int
    /// How the penalty acts, e.g. .proximal (the default: chosen by the SmolLM2 experiments, docs/results.md).
    public var penaltyUpdate: PenaltyUpdate
    /// η, the proximal step size: each step shrinks every slice by η_t·λ_t (ℓ2 norm units), e.g. 1.
    /// Unused by .gradient.
    public var penaltyLR: Double
    /// How η_t follows the steps, e.g. .constant.
    public var penaltySchedule: PenaltySchedule
    /// Weights of the slices in the penalty, e.g. .initial (the stage's default, chosen by the SmolLM2
    /// experiments) or .uniform (the paper's).
    public var sliceWeights: SliceWeighting

    public init(lambda: LambdaSchedule = .constant(1e-3), norm: SliceNorm = .l2, steps: Int, batchSize: Int,
                seqLen: Int, accumulation: Int = 1, lr: Float, warmup: Int = 0, decay: LRSchedule.Kind = .cosine,
                minLR: Float? = nil, weightDecay: Float = 0, clipNorm: Float? = 1.0, logEvery: Int = 10, evalEvery: Int = 0,
                penaltyUpdate: PenaltyUpdate = .proximal, penaltyLR: Double = 1, penaltySchedule: PenaltySchedule = .constant,
                sliceWeights: SliceWeighting = .uniform) {
        self.lambda = lambda
        self.norm = norm
        self.steps = steps
        self.batchSize = batchSize
        self.seqLen = seqLen
        self.accumulation = accumulation
        self.lr = lr
        self.warmup = warmup
        self.decay = decay
        self.minLR = minLR ?? lr / 10
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        self.logEvery = logEvery
        self.evalEvery = evalEvery
        self.penaltyUpdate = penaltyUpdate
        self.penaltyLR = penaltyLR
        self.penaltySchedule = penaltySchedule
        self.sliceWeights = sliceWeights
    }

    /// η_t, the proximal step size of update `step` (0-based) whose learning rate is `lr`.
    public func penaltyStep(_ step: Int, lr stepLR: Float) -> Double {
        switch penaltySchedule {
        case .constant: penaltyLR
        case .lr: penaltyLR * Double(stepLR) / Double(lr)
        }
    }

    /// The equivalent trainer settings (sizes, clipping, the warm-up/decay schedule, AdamW decay); its
    /// validation covers the shared keys.
    public var trainerConfig: TrainerConfig {
        TrainerConfig(steps: steps, batchSize: batchSize, seqLen: seqLen, accumulation: accumulation, clipNorm: clipNorm,
                      schedule: LRSchedule(kind: decay, lr: lr, warmup: warmup, steps: max(steps, warmup), minLR: minLR),
                      optimizer: AdamWConfig(weightDecay: weightDecay))
    }

    /// Checks ranges: the trainer's keys, a finite lr ≥ min_lr ≥ 0, warm-up ≥ 0, weight decay ≥ 0,
    /// log_every ≥ 1, eval_every ≥ 0, a finite penalty_lr ≥ 0 (and lr > 0 when η follows lr).
    public func validate() throws(TrainingError) {
        try trainerConfig.validate()
        guard lr.isFinite, lr >= 0 else { throw .invalidSetting(key: "lr", value: "\(lr)", reason: "must be a finite number >= 0") }
        guard minLR.isFinite, minLR >= 0, minLR <= lr else {
            throw .invalidSetting(key: "min_lr", value: "\(minLR)", reason: "must lie in [0, lr = \(lr)]")
        }
        for (key, value, minimum) in [("warmup", warmup, 0), ("log_every", logEvery, 1), ("eval_every", evalEvery, 0)]
            where value < minimum {
            throw .invalidSetting(key: key, value: "\(value)", reason: "must be >= \(minimum)")
        }
        guard weightDecay.isFinite, weightDecay >= 0 else {
            throw .invalidSetting(key: "weight_decay", value: "\(weightDecay)", reason: "must be a finite number >= 0")
        }
        guard penaltyLR.isFinite, penaltyLR >= 0 else {
            throw .invalidSetting(key: "penalty_lr", value: "\(penaltyLR)", reason: "must be a finite number >= 0")
        }
        if penaltySchedule == .lr, lr == 0 {
            throw .invalidSetting(key: "penalty_schedule", value: "lr", reason: "follows lr_t / lr, so lr must be > 0; use constant")
        }
    }
}

/// One recorded point of the training curves.
public struct RegularizationPoint: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Updates done (1-based).
    public var step: Int
    /// Mean LM loss of the update's micro-batches (before the update).
    public var loss: Float
    /// Unweighted penalty Σ‖slice‖: before the update (gradient), after the proximal step (proximal).
    public var penalty: Double
    /// λ used by the update.
    public var lambda: Double
    /// Learning rate used by the update.
    public var lr: Float
    /// `SliceEnergy.relative` after the update: 0.5 = a selected channel as strong as a kept one, → 0 as P empties.
    public var energy: Double
    /// Global gradient norm before clipping: of the whole objective (gradient), of the LM loss (proximal).
    public var gradNorm: Double

    public var description: String {
        String(format: "step %d | loss %.4f | penalty %.4g | λ %.3g | energy %.3e | lr %.3e | grad norm %.3f",
               step, Double(loss), penalty, lambda, energy, Double(lr), gradNorm)
    }
}

/// Held-out losses at a checkpoint: of the model as it is, and with the slices of P set to zero.
public struct MaskedEvaluation: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Updates done when measured (0 = before the first).
    public var step: Int
    /// Mean held-out cross-entropy of the model as it is.
    public var loss: Double
    /// Mean held-out cross-entropy with every slice of P zeroed (what pruning P would leave).
    public var maskedLoss: Double
    /// A nested run's: the masked loss of every served ratio's prefix, ratios ascending (nil otherwise).
    public var prefixLosses: [Double]?

    public init(step: Int, loss: Double, maskedLoss: Double, prefixLosses: [Double]? = nil) {
        self.step = step
        self.loss = loss
        self.maskedLoss = maskedLoss
        self.prefixLosses = prefixLosses
    }

    /// exp(loss).
    public var perplexity: Double { exp(loss) }
    /// exp(maskedLoss).
    public var maskedPerplexity: Double { exp(maskedLoss) }

    public var description: String {
        String(format: "eval step %d | loss %.4f (ppl %.2f) | P masked: loss %.4f (ppl %.2f)",
               step, loss, perplexity, maskedLoss, maskedPerplexity)
            + (prefixLosses.map { " | prefixes masked: ppl " + $0.map { String(format: "%.2f", exp($0)) }.joined(separator: " / ") } ?? "")
    }
}

/// The curves of one regularization run, for reports and plots.
public struct RegularizationCurves: Codable, Sendable, Equatable {
    /// Every `logEvery`-th update and the last.
    public var points: [RegularizationPoint]
    /// Before the first update, every `evalEvery`-th, and after the last (empty without held-out batches).
    public var evaluations: [MaskedEvaluation]
    /// Relative slice energy before the first update.
    public var initialEnergy: Double

    public init(points: [RegularizationPoint] = [], evaluations: [MaskedEvaluation] = [], initialEnergy: Double = 0) {
        self.points = points
        self.evaluations = evaluations
        self.initialEnergy = initialEnergy
    }

    enum CodingKeys: String, CodingKey {
        case points, evaluations
        case initialEnergy = "initial_energy"
    }
}

/// What `runRegularization` reports while it runs.
public enum RegularizationEvent: Sendable {
    /// After every update: updates done (1-based), of `steps`, and the update's mean LM loss.
    case step(Int, steps: Int, loss: Float)
    /// After every `logEvery`-th update and the last: the recorded point.
    case point(RegularizationPoint)
    /// After each held-out checkpoint.
    case evaluation(MaskedEvaluation)
}

/// Trains `model` in place on LM loss + λ(step)·Σ‖slice‖ over the slices of `channels` and returns the
/// curves: a `RegularizationRun` from its first update to its last.
public func runRegularization(model: Decoder, batches: any BatchSource, channels: ChannelSet, config: RegularizationConfig,
                              heldOut: [TokenBatch] = [], ranking: ChannelRanking? = nil,
                              progress: @escaping (RegularizationEvent) -> Void = { _ in }) throws(TrainingError) -> RegularizationCurves {
    let run = try RegularizationRun(model: model, batches: batches, channels: channels, config: config, heldOut: heldOut,
                                    ranking: ranking, progress: progress)
    try run.start()
    while run.updatesDone < config.steps { try run.update() }
    return run.curves
}

/// One regularization run, update by update: LM loss + λ(step)·Σ‖slice‖ over the slices of `channels`.
/// The penalty acts by `config.penaltyUpdate`: a proximal step after each AdamW update, or its gradient
/// added before clipping. Sample numbers follow the update count (update t, micro-batch k reads samples
/// (t·K + k)·B ..< +B of `batches`), so the run is a pure function of its inputs and can stop after any
/// update and continue from `saveCheckpoint` (the curves so far travel with the weights and moments).
/// `heldOut` batches (each (B′, T′), any sizes) are evaluated at checkpoints on a masked copy; the model
/// is not changed by them. The model's base weights must be trainable (`trainBase`) and no adapters attached.
/// With `ranking` (its largest set must be `channels`) the run is nested (NestedRegularization.swift):
/// micro-batch s trains with served prefix s mod k removed, the penalty acts only on the smallest
/// prefix (the channels every served ratio removes), and checkpoints also measure every prefix masked.
public final class RegularizationRun: ResumableRun {
    public let config: RegularizationConfig
    /// What has been recorded so far.
    public private(set) var curves: RegularizationCurves
    private let model: Decoder
    private let batches: any BatchSource
    private let channels: ChannelSet
    private let heldOut: [TokenBatch]
    private let progress: (RegularizationEvent) -> Void
    private let optimizer: AdamW
    private var nested: NestedRun?
    /// Penalty weights per slice (from the run's starting weights, so computed before any resume).
    private let weights: SliceWeights?

    public init(model: Decoder, batches: any BatchSource, channels: ChannelSet, config: RegularizationConfig,
                heldOut: [TokenBatch] = [], ranking: ChannelRanking? = nil,
                progress: @escaping (RegularizationEvent) -> Void = { _ in }) throws(TrainingError) {
        try config.validate()
        guard batches.T == config.seqLen else {
            throw .invalidSetting(key: "seq_len", value: "\(config.seqLen)", reason: "the batch source cuts windows of T = \(batches.T)")
        }
        guard channels.hiddenSize == model.config.hiddenSize else {
            throw .invalidSetting(key: "channels", value: "width \(channels.hiddenSize)",
                                  reason: "the model's hidden size is \(model.config.hiddenSize)")
        }
        // Why no adapters: the masked copy would have to reproduce them, and DReSS trains the base weights.
        guard model.adapters == nil else {
            throw .invalidSetting(key: "adapters", value: "attached", reason: "regularize the base weights without LoRA adapters")
        }
        guard model.trainBase else {
            throw .invalidSetting(key: "train_base", value: "false", reason: "the penalty acts on the base weights, which must train")
        }
        let parameters = model.parameters, modelConfig = model.config
        self.config = config
        self.model = model
        self.batches = batches
        self.channels = channels
        self.heldOut = heldOut
        self.progress = progress
        self.optimizer = AdamW(sets: model.trainableSets, config: config.trainerConfig.optimizer)
        let nested = try ranking.map { ranking throws(TrainingError) in
            try NestedRun(ranking: ranking, channels: channels, config: modelConfig, parameters: parameters)
        }
        self.nested = nested
        let baseWeights = config.sliceWeights == .initial
            ? SliceWeights.initialNorms(parameters: parameters, config: modelConfig, channels: channels) : nil
        self.weights = nested.map { $0.penaltyWeights(baseWeights, channels: channels, config: modelConfig) } ?? baseWeights
        self.curves = RegularizationCurves(
            initialEnergy: ChannelRegularizer.sliceEnergy(parameters: parameters, config: modelConfig, channels: channels).relative)
    }

    /// Updates done (the schedule position).
    public var updatesDone: Int { optimizer.step }
    /// Updates in the whole run.
    public var totalUpdates: Int { config.steps }

    /// The held-out checkpoint before the first update (nothing after a resume: the curves hold it).
    public func start() throws(TrainingError) {
        if updatesDone == 0 { try checkpoint(0) }
    }

    /// Measures the held-out losses, records them and reports them.
    private func checkpoint(_ step: Int) throws(TrainingError) {
        guard !heldOut.isEmpty else { return }
        var evaluation = try maskedEvaluation(model: model, channels: channels, heldOut: heldOut, step: step)
        if let nested {
            evaluation.prefixLosses = nested.prefixes.map { prefix in
                prefix == channels ? evaluation.maskedLoss : maskedHeldOutLoss(model: model, channels: prefix, heldOut: heldOut)
            }
        }
        // A diverged model is stopped here, not stored: non-finite curves cannot be written or read.
        guard evaluation.loss.isFinite else { throw .nonFiniteHeldOut(step: step, loss: evaluation.loss, masked: false) }
        guard evaluation.maskedLoss.isFinite else { throw .nonFiniteHeldOut(step: step, loss: evaluation.maskedLoss, masked: true) }
        curves.evaluations.append(evaluation)
        progress(.evaluation(evaluation))
    }

    /// One update (Trainer's five calls plus the penalty), then what the curves record at that step.
    public func update() throws(TrainingError) {
        let t = updatesDone, schedule = config.trainerConfig.schedule
        let parameters = model.parameters, modelConfig = model.config
        let B = config.batchSize, T = config.seqLen, K = config.accumulation
        let lr = schedule.lr(t), lambda = config.lambda.lambda(t)
        var lossSum = 0.0
        for set in optimizer.sets { set.zeroGrads() }                                         // zero grad
        for micro in 0..<K {
            let sample = t * K + micro
            let batch = batches.batch(first: sample * B, count: B)                            // next batch
            func step() -> Float {
                let loss = model.forward(tokens: batch.tokens, targets: batch.targets, B: B, T: T) // forward
                model.backward()                                                              // backward
                return loss
            }
            if nested != nil {
                let index = nested!.prefixIndex(ofMicroBatch: sample)
                lossSum += Double(nested!.withPrefixRemoved(index, from: parameters, step))
            } else {
                lossSum += Double(step())
            }
        }
        var penalty = 0.0
        if config.penaltyUpdate == .gradient {
            // The grads hold the SUM of K micro-batch gradients and clipping scales them by 1/K, so the
            // penalty gradient enters with K·λ to end up as λ·∂penalty in the mean.
            penalty = ChannelRegularizer.addPenaltyGradient(parameters: parameters, config: modelConfig, channels: channels,
                                                            norm: config.norm, lambda: lambda * Double(K), weights: weights) // penalty
        }
        let gradNorm = optimizer.clipGradients(maxNorm: config.clipNorm, scale: 1 / Float(K))        // clip
        let loss = Float(lossSum / Double(K))
        guard loss.isFinite, gradNorm.isFinite, penalty.isFinite else {
            throw .nonFinite(step: t + 1, loss: loss, gradNorm: gradNorm)
        }
        optimizer.update(lr: lr)                                                              // update
        if config.penaltyUpdate == .proximal {
            penalty = ChannelRegularizer.applyProximal(parameters: parameters, config: modelConfig, channels: channels,
                                                       norm: config.norm, threshold: config.penaltyStep(t, lr: lr) * lambda, weights: weights) // prox
        }
        let step = t + 1
        progress(.step(step, steps: config.steps, loss: loss))
        // Energy only at recorded points: it reads every hidden-channel slice of the model, a pass as
        // long as the penalty's.
        if step % config.logEvery == 0 || step == config.steps {
            let energy = ChannelRegularizer.sliceEnergy(parameters: parameters, config: modelConfig, channels: channels).relative
            let point = RegularizationPoint(step: step, loss: loss, penalty: penalty, lambda: lambda, lr: lr, energy: energy, gradNorm: gradNorm)
            curves.points.append(point)
            progress(.point(point))
        }
        if step == config.steps || (config.evalEvery > 0 && step % config.evalEvery == 0) { try checkpoint(step) }
    }

    /// Metadata key of the curves in a checkpoint.
    public static var curvesMetadataKey: String { "regularization_curves" }

    /// Writes the weights, the optimiser state, the trainer settings and the curves so far to a new
    /// training-state store at `url` (Trainer+Checkpoint.swift's layout); returns its digest.
    @discardableResult
    public func saveCheckpoint(to url: URL) throws(TrainingError) -> String {
        try writeTrainingState(optimizer: optimizer, config: config.trainerConfig, to: url) { writer in
            try writer.setMetadata(Self.curvesMetadataKey, curves)
        }
    }

    /// Loads a checkpoint written by `saveCheckpoint(to:)` for the same model and channels.
    public func resume(from url: URL, verify: Bool = false) throws(TrainingError) {
        curves = try readTrainingState(into: optimizer, from: url, verify: verify) { reader in
            try reader.metadata(Self.curvesMetadataKey, as: RegularizationCurves.self)
        }
    }
}

/// Held-out loss of `model` (without adapters) as it is and of a copy with the slices of `channels` zeroed.
public func maskedEvaluation(model: Decoder, channels: ChannelSet, heldOut: [TokenBatch], step: Int = 0) throws(TrainingError) -> MaskedEvaluation {
    MaskedEvaluation(step: step, loss: heldOutLoss(model, batches: heldOut),
                     maskedLoss: maskedHeldOutLoss(model: model, channels: channels, heldOut: heldOut))
}

/// Held-out loss of a copy of `model` (without adapters) with the slices of `channels` zeroed.
func maskedHeldOutLoss(model: Decoder, channels: ChannelSet, heldOut: [TokenBatch]) -> Double {
    let masked = ParameterSet(model.parameters.specs)
    masked.values.assign(model.parameters.values)
    ChannelRegularizer.zeroChannels(parameters: masked, config: model.config, channels: channels)
    let copy: Decoder
    do {
        copy = try Decoder(config: model.config, parameters: masked)
    } catch {
        // The copy has the model's own config and specs, so this cannot fail for a valid model.
        preconditionFailure("maskedHeldOutLoss: copying a valid decoder failed: \(error)")
    }
    return heldOutLoss(copy, batches: heldOut)
}

/// Mean cross-entropy over every target of `heldOut`.
public func heldOutLoss(_ model: Decoder, batches heldOut: [TokenBatch]) -> Double {
    var sum = 0.0, count = 0
    for batch in heldOut {
        let r = model.negativeLogLikelihood(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T)
        sum += r.sum
        count += r.count
    }
    return count > 0 ? sum / Double(count) : 0
}
