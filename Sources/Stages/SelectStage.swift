// The `select` stage kind and the channel store the DReSS stages share: a selection rule applied to a
// model store gives the hidden-channel set P, written as a store of kind "channels" (P as int32
// tensor `pruned`, the ChannelSet and optional regularization curves as metadata). `select` feeds
// `prune` directly for the baselines that skip regularization (`direct` with a positional rule,
// `magnitude` by importance); `regularize` uses the same rules and writes the same store.
// Also here: the error type of these stages. Not here: the rules themselves (Training/ChannelSelection).

import Data
import Foundation
import Model
import Pipeline
import Tensor
import Training
import TensorStore

/// Why a DReSS stage (select, regularize, prune, finetune) could not run.
public enum DReSSStageError: Error, CustomStringConvertible {
    /// An input store has the wrong contents; `what` says which part.
    case badInput(stage: String, input: String, what: String)
    /// A parameter combination the declared ranges cannot express is invalid.
    case badParameter(stage: String, name: String, reason: String)
    /// A library call failed; `underlying` is its own message.
    case failed(stage: String, step: String, underlying: String)

    public var description: String {
        switch self {
        case let .badInput(stage, input, what):
            return "Stage \(stage): input '\(input)' \(what). Check the stage that produced it."
        case let .badParameter(stage, name, reason):
            return "Stage \(stage): parameter '\(name)' \(reason). Change it in the pipeline spec."
        case let .failed(stage, step, underlying):
            return "Stage \(stage) failed while \(step): \(underlying)"
        }
    }
}

/// The store of a hidden-channel set, with the curves of the run that emptied it when there was one.
public struct ChannelStore: Sendable, Equatable {
    /// Store kind of channel stores.
    public static let storeKind = "channels"
    /// P and the width it refers to.
    public var channels: ChannelSet
    /// The rule that chose P, e.g. "last" or "random seed=3".
    public var selection: String
    /// Curves of the `regularize` run (nil for `select`).
    public var curves: RegularizationCurves?

    public init(channels: ChannelSet, selection: String, curves: RegularizationCurves? = nil) {
        self.channels = channels
        self.selection = selection
        self.curves = curves
    }

    /// Writes tensor `pruned` int32 (|P|) and metadata `channel_set`, `selection` and (when present)
    /// `curves`; returns the store digest.
    @discardableResult
    public func write(to url: URL) throws -> String {
        let writer = try TensorStoreWriter(url: url, kind: Self.storeKind)
        do {
            try writer.write("pruned", channels.pruned.map(Int32.init), shape: [channels.pruned.count])
            try writer.setMetadata("channel_set", channels)
            try writer.setMetadata("selection", selection)
            if let curves { try writer.setMetadata("curves", curves) }
            return try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Reads a store written by `write(to:)`.
    public init(store url: URL) throws {
        let reader = try TensorStoreReader(url: url, expectingKind: Self.storeKind)
        self.init(channels: try reader.metadata("channel_set", as: ChannelSet.self),
                  selection: try reader.metadata("selection", as: String.self),
                  curves: reader.metadataKeys.contains("curves") ? try reader.metadata("curves", as: RegularizationCurves.self) : nil)
    }
}

/// The selection parameters `select` and `regularize` share.
let selectionParams = [
    ParamDecl("ratio", .double(0...0.99), default: .double(0.25), doc: "Fraction p of hidden channels to remove; |P| = round(p·d)."),
    ParamDecl("selection", .string(choices: ["first", "last", "uniform", "random", "magnitude"]), default: .string("last"),
              doc: "Rule choosing P: positions (first, last, uniform = evenly spread), random (selection_seed) or magnitude (lowest slice norms)."),
    ParamDecl("selection_seed", .int(0...Int(Int32.max)), default: .int(0), doc: "Seed of the random rule."),
]

/// P for `model` by the `ratio`, `selection` and `selection_seed` parameters of `context`.
func selectChannels(_ context: StageContext, model: ModelStore) throws -> (ChannelSet, String) {
    let ratio = context.params["ratio"]!.number!
    let ruleName = context.params["selection"]!.description
    guard let rule = ChannelSelectionRule(rawValue: ruleName) else {
        throw DReSSStageError.badParameter(stage: context.stageID, name: "selection", reason: "'\(ruleName)' is not a rule")
    }
    guard case .int(let seed)? = context.params["selection_seed"] else {
        throw DReSSStageError.badParameter(stage: context.stageID, name: "selection_seed", reason: "must be an integer")
    }
    do {
        let set = try ChannelSelection.select(rule, ratio: ratio, config: model.config, seed: UInt64(seed),
                                              parameters: model.parameters)
        return (set, rule == .random ? "random seed=\(seed)" : ruleName)
    } catch {
        throw DReSSStageError.badParameter(stage: context.stageID, name: "ratio", reason: error.description)
    }
}

/// `select`: a channel set chosen by rule, without training (the baselines' P).
public struct SelectStage: StageKind {
    public init() {}
    public let name = "select"
    public let version = 1
    public let doc = "Chooses the hidden-channel set P of a model by a rule (no training): the input of prune for the direct and importance baselines."
    public let params = selectionParams
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The dense model.")]
    public let outputs = [OutputDecl("channels", storeKind: ChannelStore.storeKind, doc: "P, the channels to remove.")]

    public func run(_ context: StageContext) throws {
        let model = try ModelStore(store: context.inputs["model"]!)
        let (channels, selection) = try selectChannels(context, model: model)
        context.log("selected \(channels.pruned.count) of \(channels.hiddenSize) channels (\(selection))")
        try ChannelStore(channels: channels, selection: selection).write(to: context.outputs["channels"]!)
    }
}
