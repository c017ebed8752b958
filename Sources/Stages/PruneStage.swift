// The `prune` stage kind (issue 5): physically deletes the hidden channels of a channel store from
// every tensor of a model store (Model/ChannelSurgery.swift), giving a strictly smaller model whose
// config states its new width. Deleting a slice is the same as zeroing it and then deleting it, so the
// "zero, then remove" of the paper is one copy of the kept slices. With `compensate: least_squares`
// the readers' kept columns first absorb what the deleted channels predictably carried on calibration
// text (Model/Compensation.swift). Not here: choosing the channels (`select`, `regularize`).

import Data
import Foundation
import Model
import Pipeline
import Tensor
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
        ParamDecl("compensate", .string(choices: Compensation.allCases.map(\.rawValue)), default: .string(Compensation.none.rawValue),
                  omittedAtDefault: true,
                  doc: "none: delete the slices as they are. least_squares: first add to every reader's kept columns the least-squares prediction of the deleted channels' norm outputs from the kept ones, fitted on calibration windows of the data input (RMSNorm models; a tied head is left as is)."),
    ] + calibrationParams(windows: "least_squares: windows of the data the fit runs on (the first ones of the token stream, as for select and rotate).",
                          length: "least_squares: tokens per calibration window.", omittedAtDefault: true)
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to prune (regularized or not)."),
                         InputDecl("channels", storeKind: ChannelStore.storeKind, doc: "P, from select or regularize."),
                         InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Calibration text for compensate: least_squares.", optional: true)]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The pruned model; its config has the new hidden size.")]

    /// What happens to the readers of the deleted channels before the deletion.
    enum Compensation: String, Decodable, CaseIterable {
        case none
        case leastSquares = "least_squares"
    }

    struct Params: Decodable {
        var norms: NormWidthPolicy
        var ratio: Double?
        var compensate: Compensation?
        var calibration_windows: Int?
        var calibration_len: Int?
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
        var source = store
        if p.compensate == .leastSquares {
            source.parameters = try Self.compensated(store, channels: channels, params: p, context: context)
        }
        var pruned = store
        do {
            pruned.config = try prunedConfig(store.config, channels: channels, norms: p.norms)
            pruned.parameters = try pruneParameters(source.parameters, config: store.config, channels: channels, norms: p.norms)
        } catch {
            throw DReSSStageError.badInput(stage: context.stageID, input: "channels", what: "does not fit the model: \(error.description)")
        }
        pruned.source["pruned"] = "\(channels.pruned.count) of \(channels.hiddenSize) hidden channels, norms \(p.norms.rawValue)"
            + (p.compensate == .leastSquares ? ", readers compensated by least squares" : "")
        context.log("hidden size \(store.config.hiddenSize) -> \(pruned.config.hiddenSize); parameters \(store.config.parameterCount) -> \(pruned.config.parameterCount)")
        try pruned.write(to: context.outputs["model"]!)
    }

    /// `store`'s parameters with the readers of `channels` compensated on the calibration windows of the data input.
    static func compensated(_ store: ModelStore, channels: ChannelSet, params p: Params, context: StageContext) throws -> ParameterSet {
        guard let data = context.inputs["data"] else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "compensate",
                                               reason: "is least_squares, which fits on calibration text: give the stage a data input (a dataset or mix output)")
        }
        let windows = try calibrationWindows(data: data, tokenizer: store.tokenizer, windows: p.calibration_windows ?? 16,
                                             length: p.calibration_len ?? 256, stage: context.stageID)
        Threading.configure(threads: context.threads)
        do {
            let (parameters, summary) = try ChannelCompensation.leastSquares(model: try store.decoder(), windows: windows, channels: channels)
            let shares = summary.explained.filter { $0 > 0 }
            let mean = shares.isEmpty ? 0 : shares.reduce(0, +) / Double(shares.count)
            context.log("least-squares compensation on \(windows.count) × \(windows.first?.count ?? 0) tokens: the kept channels explain "
                        + "\(String(format: "%.1f", 100 * mean))% of the deleted norm outputs' energy (mean over \(shares.count) norms; "
                        + "least \(String(format: "%.1f", 100 * (shares.min() ?? 0)))%, most \(String(format: "%.1f", 100 * (shares.max() ?? 0)))%)"
                        + (summary.head ? "" : "; the tied head is left as is"))
            return parameters
        } catch {
            throw DReSSStageError.failed(stage: context.stageID, step: "compensating", underlying: "\(error)")
        }
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
