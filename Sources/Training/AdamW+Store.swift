// AdamW state in a tensor store: the moments as flat float32 tensors `<prefix>m/<s>`, `<prefix>v/<s>`
// (set s's layout) and a metadata record with the update count (= schedule position), the
// hyper-parameters and every set's parameter names and shapes, checked when loading.
// Not here: what else a checkpoint holds (Trainer+Checkpoint.swift).

import Foundation
import Tensor
import TensorStore

/// The metadata record written beside the moments (key `AdamW.stateMetadataKey`).
public struct AdamWStateRecord: Codable, Sendable, Equatable {
    /// Updates done when the state was written.
    public var step: Int
    /// Hyper-parameters in use at the time (informational: the resuming run's config wins).
    public var config: AdamWConfig
    /// Per set, the parameters the moments are laid out for.
    public var layouts: [[ParameterSpec]]
}

extension AdamW {
    /// Store kind of a store that holds only optimiser state.
    public static let storeKind = "optimizer"
    /// Metadata key of the `AdamWStateRecord`.
    public static let stateMetadataKey = "adamw_state"

    /// Writes moments and the state record into an open writer; tensor names start with `prefix`.
    /// The moments are written from their views (no snapshot copy: a 135M-parameter model's moments are 1 GB).
    public func write(to writer: TensorStoreWriter, prefix: String = "optimizer/") throws(TrainingError) {
        let record = AdamWStateRecord(step: step, config: config, layouts: sets.map(\.specs))
        try reportingStoreErrors(path: writer.url.path) {
            try writer.setMetadata(Self.stateMetadataKey, record)
            for s in sets.indices {
                try writer.write(prefix + "m/\(s)", m(set: s))
                try writer.write(prefix + "v/\(s)", v(set: s))
            }
        }
    }

    /// Loads step and moments from a store written by `write(to:prefix:)` for the same parameter layout.
    public func restore(from reader: TensorStoreReader, prefix: String = "optimizer/", verify: Bool = false) throws(TrainingError) {
        let setCount = sets.count
        let state = try reportingStoreErrors(path: reader.url.path) {
            let record = try reader.metadata(Self.stateMetadataKey, as: AdamWStateRecord.self)
            guard record.layouts.count == setCount else {
                throw TrainingError.stateMismatch(what: "number of parameter sets", expected: "\(setCount)", found: "\(record.layouts.count)")
            }
            var tensors: [String: Tensor] = [:]
            for (s, layout) in record.layouts.enumerated() {
                let count = layout.reduce(0) { $0 + $1.count }
                for moment in ["m", "v"] {
                    let name = "\(moment)/\(s)"
                    tensors[name] = try reader.tensor(prefix + name, expectedShape: [count], verify: verify)
                }
            }
            return State(step: record.step, layouts: record.layouts, tensors: tensors)
        }
        try restore(state)
    }

    /// Saves the optimiser state alone as a store of kind "optimizer" at `url`; returns its digest.
    @discardableResult
    public func save(to url: URL) throws(TrainingError) -> String {
        try reportingStoreErrors(path: url.path) {
            let writer = try TensorStoreWriter(url: url, kind: Self.storeKind)
            try write(to: writer)
            return try writer.commit()
        }
    }

    /// Loads the optimiser state from a store written by `save(to:)`.
    public func load(from url: URL, verify: Bool = false) throws(TrainingError) {
        let reader = try reportingStoreErrors(path: url.path) { try TensorStoreReader(url: url, expectingKind: Self.storeKind) }
        try restore(from: reader, verify: verify)
    }
}

/// Runs `body`, passing TrainingErrors through and wrapping any other error (a TensorStoreError) as
/// `.store(path:message:)`, so callers see one error type.
func reportingStoreErrors<T>(path: String, _ body: () throws -> T) throws(TrainingError) -> T {
    do {
        return try body()
    } catch let error as TrainingError {
        throw error
    } catch {
        throw .store(path: path, message: "\(error)")
    }
}
