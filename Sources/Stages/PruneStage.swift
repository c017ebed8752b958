// The `prune` stage kind (issue 5): physically deletes the hidden channels of a channel store from
// every tensor of a model store (Model/ChannelSurgery.swift), giving a strictly smaller model whose
// config states its new width. Deleting a slice is the same as zeroing it and then deleting it, so the
// "zero, then remove" of the paper is one copy of the kept slices. Not here: choosing the channels
// (`select`, `regularize`).

import Data
import Foundation
import Model
import Pipeline
import Training

/// `prune`: a model without the channels P.
public struct PruneStage: StageKind {
    public init() {}
    public let name = "prune"
    public let version = 1
    public let doc = "Deletes the hidden channels P from every tensor: a strictly smaller model of width d − |P|."
    public let params = [
        ParamDecl("norms", .string(choices: NormWidthPolicy.allCases.map(\.rawValue)), default: .string(NormWidthPolicy.keepDivisor.rawValue),
                  doc: "keep_divisor: norms keep dividing by the original width (exact when P's channels are zero); rescale_scales: RMSNorm divides by the new width, scales × √(d/d′)."),
        ParamDecl("ratio", .double(0...0.99), default: .double(0), omittedAtDefault: true,
                  doc: "0: delete all of P. Otherwise the channel store must be ranked (select or regularize with ratios): delete its first round(ratio·d) channels, so one nested run serves a sweep over this ratio."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to prune (regularized or not)."),
                         InputDecl("channels", storeKind: ChannelStore.storeKind, doc: "P, from select or regularize.")]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The pruned model; its config has the new hidden size.")]

    struct Params: Decodable {
        var norms: NormWidthPolicy
        var ratio: Double?
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let store = try ModelStore(store: context.inputs["model"]!)
        let channelStore = try ChannelStore(store: context.inputs["channels"]!)
        let channels = try Self.channels(channelStore, ratio: p.ratio ?? 0, stage: context.stageID)
        if let ranking = channelStore.ranking, channels.pruned.count < ranking.order.count {
            let served = ranking.counts.contains(channels.pruned.count)
            context.log("ratio \(p.ratio ?? 0): the first \(channels.pruned.count) of \(ranking.order.count) ranked channels"
                        + (served ? "" : " (not one of the served prefixes \(ranking.counts.map(String.init).joined(separator: ", ")): the run did not train this width)"))
        }
        var pruned = store
        do {
            pruned.config = try prunedConfig(store.config, channels: channels, norms: p.norms)
            pruned.parameters = try pruneParameters(store.parameters, config: store.config, channels: channels, norms: p.norms)
        } catch {
            throw DReSSStageError.badInput(stage: context.stageID, input: "channels", what: "does not fit the model: \(error.description)")
        }
        pruned.source["pruned"] = "\(channels.pruned.count) of \(channels.hiddenSize) hidden channels, norms \(p.norms.rawValue)"
        context.log("hidden size \(store.config.hiddenSize) -> \(pruned.config.hiddenSize); parameters \(store.config.parameterCount) -> \(pruned.config.parameterCount)")
        try pruned.write(to: context.outputs["model"]!)
    }

    /// The set to delete: all of P for ratio 0, else the prefix of round(ratio·d) of the store's ranking.
    static func channels(_ store: ChannelStore, ratio: Double, stage: String) throws -> ChannelSet {
        guard ratio > 0 else { return store.channels }
        guard let ranking = store.ranking else {
            throw DReSSStageError.badParameter(stage: stage, name: "ratio",
                                               reason: "is \(ratio), but the channel store holds one unranked set of \(store.channels.pruned.count) channels; "
                                               + "give select or regularize `ratios` (with \(ratio) among them), or leave ratio out to delete that set")
        }
        do {
            return try ranking.prefix(try ChannelSelection.count(ratio: ratio, hiddenSize: ranking.hiddenSize))
        } catch {
            throw DReSSStageError.badParameter(stage: stage, name: "ratio", reason: error.description)
        }
    }
}
