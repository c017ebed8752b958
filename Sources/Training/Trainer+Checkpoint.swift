// A training checkpoint: everything a run needs to continue exactly where it stopped, in one store
// of kind "training_state": the values of every trainable set (`parameters/<s>/<name>`), the AdamW
// moments and update count (`optimizer/…`, AdamW+Store.swift) and the trainer settings (and what a
// loop adds: a regularization run its curves so far, Regularization.swift). The batch
// order and the learning rate are pure functions of the update count, so nothing else is needed.
// Parameters outside `trainableSets` (a frozen base under LoRA) are not saved: they never change and
// come from the model store the run started from.

import Foundation
import Tensor
import TensorStore

/// A training loop that can stop after any update and continue, on a later attempt, from a
/// checkpoint of its state (the stages' resume points, Stages/ResumableTraining.swift).
public protocol ResumableRun: AnyObject {
    /// Updates done (after a resume: counting those before it).
    var updatesDone: Int { get }
    /// Updates in the whole run.
    var totalUpdates: Int { get }
    /// Writes the whole state to a new store at `url`; returns its digest.
    @discardableResult
    func saveCheckpoint(to url: URL) throws(TrainingError) -> String
    /// Continues from a store `saveCheckpoint` wrote for the same run.
    func resume(from url: URL, verify: Bool) throws(TrainingError)
}

extension Trainer: ResumableRun {
    public var updatesDone: Int { optimizer.step }
    public var totalUpdates: Int { config.steps }

    /// Store kind of a training checkpoint.
    public static var checkpointKind: String { trainingStateKind }
    /// Metadata key of the trainer settings in a checkpoint.
    public static var configMetadataKey: String { trainerConfigKey }

    /// Writes parameters, optimiser state and settings to a new store at `url`; returns its digest.
    @discardableResult
    public func saveCheckpoint(to url: URL) throws(TrainingError) -> String {
        try writeTrainingState(optimizer: optimizer, config: config, to: url)
    }

    /// Loads a checkpoint written by `saveCheckpoint(to:)` for a model with the same trainable sets:
    /// parameter values into the model, moments and update count into the optimiser.
    public func resume(from url: URL, verify: Bool = false) throws(TrainingError) {
        try readTrainingState(into: optimizer, from: url, verify: verify) { _ in }
    }
}

let trainingStateKind = "training_state"
let trainerConfigKey = "trainer_config"

/// Writes the values of the optimiser's sets, its moments and step, `config` and whatever `extra`
/// adds as one training-state store at `url`; returns its digest.
func writeTrainingState(optimizer: AdamW, config: TrainerConfig, to url: URL,
                        extra: (TensorStoreWriter) throws -> Void = { _ in }) throws(TrainingError) -> String {
    try reportingStoreErrors(path: url.path) {
        let writer = try TensorStoreWriter(url: url, kind: trainingStateKind)
        try writer.setMetadata(trainerConfigKey, config)
        try extra(writer)
        for (s, set) in optimizer.sets.enumerated() {
            try writer.write(parameters: set, prefix: "parameters/\(s)/")
        }
        try optimizer.write(to: writer)
        return try writer.commit()
    }
}

/// Reads a store written by `writeTrainingState` into the optimiser and its sets' values; `extra`
/// reads (and checks) what the writer added, before anything is overwritten. Returns what it read.
@discardableResult
func readTrainingState<T>(into optimizer: AdamW, from url: URL, verify: Bool,
                          extra: (TensorStoreReader) throws -> T) throws(TrainingError) -> T {
    try reportingStoreErrors(path: url.path) {
        let reader = try TensorStoreReader(url: url, expectingKind: trainingStateKind)
        let value = try extra(reader)
        // Optimiser first: it checks every set's names and shapes before any value is overwritten.
        try optimizer.restore(from: reader, verify: verify)
        for (s, set) in optimizer.sets.enumerated() {
            try reader.read(into: set, prefix: "parameters/\(s)/", verify: verify)
        }
        return value
    }
}
