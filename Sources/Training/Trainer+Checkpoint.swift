// A training checkpoint: everything a run needs to continue exactly where it stopped, in one store
// of kind "training_state": the values of every trainable set (`parameters/<s>/<name>`), the AdamW
// moments and update count (`optimizer/…`, AdamW+Store.swift) and the trainer settings. The batch
// order and the learning rate are pure functions of the update count, so nothing else is needed.
// Parameters outside `trainableSets` (a frozen base under LoRA) are not saved: they never change and
// come from the model store the run started from.

import Foundation
import Tensor
import TensorStore

extension Trainer {
    /// Store kind of a training checkpoint.
    public static var checkpointKind: String { "training_state" }
    /// Metadata key of the trainer settings in a checkpoint.
    public static var configMetadataKey: String { "trainer_config" }

    /// Writes parameters, optimiser state and settings to a new store at `url`; returns its digest.
    @discardableResult
    public func saveCheckpoint(to url: URL) throws(TrainingError) -> String {
        try reportingStoreErrors(path: url.path) {
            let writer = try TensorStoreWriter(url: url, kind: Self.checkpointKind)
            try writer.setMetadata(Self.configMetadataKey, config)
            for (s, set) in optimizer.sets.enumerated() {
                try writer.write(parameters: set, prefix: "parameters/\(s)/")
            }
            try optimizer.write(to: writer)
            return try writer.commit()
        }
    }

    /// Loads a checkpoint written by `saveCheckpoint(to:)` for a model with the same trainable sets:
    /// parameter values into the model, moments and update count into the optimiser.
    public func resume(from url: URL, verify: Bool = false) throws(TrainingError) {
        try reportingStoreErrors(path: url.path) {
            let reader = try TensorStoreReader(url: url, expectingKind: Self.checkpointKind)
            // Optimiser first: it checks every set's names and shapes before any value is overwritten.
            try optimizer.restore(from: reader, verify: verify)
            for (s, set) in optimizer.sets.enumerated() {
                try reader.read(into: set, prefix: "parameters/\(s)/", verify: verify)
            }
        }
    }
}
