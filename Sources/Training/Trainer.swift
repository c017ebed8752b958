// The training loop, llm.c's `main` in Swift: each optimiser step is five calls (next batch, forward,
// zero grad, backward, update), micro-batches accumulate gradients that are then scaled by
// 1/accumulation, clipped by global norm, and applied by AdamW at the schedule's rate.
// A model joins by conforming to TrainableModel. Not here: evaluation, checkpoint files (the model
// store and OptimizerStore.swift), progress display (the CLI formats StepReport).

import Foundation
import Tensor

/// What the trainer needs from a model: its trainable parameter sets, a loss-returning forward and an
/// accumulating backward.
public protocol TrainableModel: AnyObject {
    /// The parameter sets to train, in a fixed order (the optimiser's moment layout follows it).
    var trainableSets: [ParameterSet] { get }
    /// Runs the model on tokens (B, T); with targets (B, T) returns the mean cross-entropy over B·T.
    /// May already ADD part of the gradient (the Decoder fuses its LM head with the loss).
    func forward(tokens: [Int32], targets: [Int32]?, B: Int, T: Int) -> Float
    /// ADDS the rest of the gradient of the last forward's mean loss to the grads of `trainableSets`
    /// (never zeroes).
    func backward()
}

/// Settings of one training run; Codable so stage parameters can carry them.
public struct TrainerConfig: Codable, Sendable, Equatable {
    /// Optimiser steps in the whole run, e.g. 1000.
    public var steps: Int
    /// B, sequences per micro-batch, e.g. 8.
    public var batchSize: Int
    /// T, tokens per sequence, e.g. 512.
    public var seqLen: Int
    /// Micro-batches accumulated per optimiser step, e.g. 8 (effective batch = accumulation · B).
    public var accumulation: Int
    /// Global gradient-norm limit, e.g. 1.0 (nanoGPT); nil = no clipping.
    public var clipNorm: Float?
    /// Learning rate over steps; a decay length left open is the run's `steps`.
    public var schedule: LRSchedule
    /// AdamW β1, β2, ε and weight decay.
    public var optimizer: AdamWConfig
    /// Name patterns of parameters to freeze, e.g. ["embed/**"].
    public var freeze: [String]

    public init(steps: Int, batchSize: Int, seqLen: Int, accumulation: Int = 1, clipNorm: Float? = 1.0,
                schedule: LRSchedule, optimizer: AdamWConfig = AdamWConfig(), freeze: [String] = []) {
        self.steps = steps
        self.batchSize = batchSize
        self.seqLen = seqLen
        self.accumulation = accumulation
        self.clipNorm = clipNorm
        self.schedule = schedule
        self.optimizer = optimizer
        self.freeze = freeze
    }

    enum CodingKeys: String, CodingKey {
        case steps, accumulation, schedule, optimizer, freeze
        case batchSize = "batch_size"
        case seqLen = "seq_len"
        case clipNorm = "clip_norm"
    }

    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decode(Int.self, forKey: .steps)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        seqLen = try c.decode(Int.self, forKey: .seqLen)
        accumulation = try c.decodeIfPresent(Int.self, forKey: .accumulation) ?? 1
        clipNorm = try c.decodeIfPresent(Float.self, forKey: .clipNorm)
        schedule = try c.decode(LRSchedule.self, forKey: .schedule)
        optimizer = try c.decodeIfPresent(AdamWConfig.self, forKey: .optimizer) ?? AdamWConfig()
        freeze = try c.decodeIfPresent([String].self, forKey: .freeze) ?? []
        do {
            try validate()
        } catch {
            let key = CodingKeys(stringValue: error.key) ?? .steps
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: error.description)
        }
    }

    /// Checks ranges: positive sizes, steps ≥ 0, a positive clip norm when set.
    public func validate() throws(TrainingError) {
        for (key, value, minimum) in [("steps", steps, 0), ("batch_size", batchSize, 1), ("seq_len", seqLen, 1),
                                      ("accumulation", accumulation, 1)] where value < minimum {
            throw .invalidSetting(key: key, value: "\(value)", reason: "must be >= \(minimum)")
        }
        if let clipNorm, !(clipNorm > 0 && clipNorm.isFinite) {
            throw .invalidSetting(key: "clip_norm", value: "\(clipNorm)", reason: "must be a finite number > 0 (omit it to disable clipping)")
        }
    }
}

extension TrainingError {
    /// The config key an `invalidSetting` names (for DecodingError key paths).
    fileprivate var key: String {
        if case let .invalidSetting(key, _, _) = self { return key }
        return ""
    }
}

/// What happened in one optimiser step, for the progress callback.
public struct StepReport: Sendable, Equatable, CustomStringConvertible {
    /// Updates done, counting this one (1-based).
    public var step: Int
    /// Updates in the whole run.
    public var steps: Int
    /// Mean training loss over the step's micro-batches.
    public var loss: Float
    /// Learning rate used by this update.
    public var lr: Float
    /// Global gradient norm before clipping (of the averaged gradient).
    public var gradNorm: Double
    /// Training tokens per second in this step.
    public var tokensPerSecond: Double
    /// Estimated seconds until `steps`, from the mean step time so far.
    public var eta: Double

    public var description: String {
        String(format: "step %d/%d | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | eta %.0fs",
               step, steps, Double(loss), Double(lr), gradNorm, tokensPerSecond, eta)
    }
}

/// Trains a model with AdamW, a schedule, clipping and gradient accumulation.
public final class Trainer<Model: TrainableModel> {
    /// The model being trained.
    public let model: Model
    /// Settings (schedule resolved against `steps`).
    public let config: TrainerConfig
    /// The optimiser; its `step` is the number of updates done and the schedule position.
    public let optimizer: AdamW
    /// Where samples come from; sample numbers follow the update count, so resuming replays nothing.
    public let batches: any BatchSource
    private var timedSeconds = 0.0
    private var timedSteps = 0

    /// A trainer over `model.trainableSets` (read once, here: add adapters before making the trainer),
    /// with `config.freeze` patterns frozen and weight decay where `decays` says (default: rank ≥ 2).
    public init(model: Model, config: TrainerConfig, batches: any BatchSource,
                decays: (ParameterSpec) -> Bool = AdamW.decaysMatrices) throws(TrainingError) {
        try config.validate()
        guard batches.T == config.seqLen else {
            throw .invalidSetting(key: "seq_len", value: "\(config.seqLen)", reason: "the batch source cuts windows of T = \(batches.T)")
        }
        var resolved = config
        resolved.schedule = config.schedule.resolved(totalSteps: config.steps)
        let sets = model.trainableSets
        let mask = try TrainableMask(sets: sets, freeze: config.freeze)
        self.model = model
        self.config = resolved
        self.optimizer = AdamW(sets: sets, config: config.optimizer, mask: mask, decays: decays)
        self.batches = batches
    }

    /// One optimiser step: the five calls, with `accumulation` micro-batches between zero grad and update.
    @discardableResult
    public func step() throws(TrainingError) -> StepReport {
        let start = ContinuousClock.now
        let t = optimizer.step, B = config.batchSize, T = config.seqLen, K = config.accumulation
        let lr = config.schedule.lr(t)
        var lossSum = 0.0
        // Zero grad comes before the first forward, not between forward and backward as in llm.c,
        // because a model may accumulate gradients during forward (the Decoder's fused LM head).
        for set in optimizer.sets { set.zeroGrads() }                               // 3. zero grad (once per step)
        for micro in 0..<K {
            let batch = batches.batch(first: (t * K + micro) * B, count: B)          // 1. next batch
            lossSum += Double(model.forward(tokens: batch.tokens, targets: batch.targets, B: B, T: T)) // 2. forward
            model.backward()                                                        // 4. backward (accumulates)
        }
        let loss = Float(lossSum / Double(K))
        // Summed micro-batch gradients → their mean (scale 1/K), then clip that mean by global norm.
        let norm = optimizer.clipGradients(maxNorm: config.clipNorm, scale: 1 / Float(K))
        guard loss.isFinite, norm.isFinite else { throw .nonFinite(step: t + 1, loss: loss, gradNorm: norm) }
        optimizer.update(lr: lr)                                                    // 5. update
        let seconds = max(Double((ContinuousClock.now - start) / .seconds(1)), 1e-9)
        timedSeconds += seconds
        timedSteps += 1
        let remaining = Double(max(config.steps - optimizer.step, 0))
        return StepReport(step: optimizer.step, steps: config.steps, loss: loss, lr: lr, gradNorm: norm,
                          tokensPerSecond: Double(K * B * T) / seconds,
                          eta: remaining * timedSeconds / Double(timedSteps))
    }

    /// Steps until `config.steps` updates are done (continuing from `optimizer.step` after a restore),
    /// calling `progress` after each.
    public func run(progress: (StepReport) -> Void = { _ in }) throws(TrainingError) {
        while optimizer.step < config.steps {
            progress(try step())
        }
    }
}

