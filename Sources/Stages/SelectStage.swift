// The `select` stage kind and the channel store the DReSS stages share: a selection rule applied to a
// model store gives the hidden-channel set P, written as a store of kind "channels" (P as int32
// tensor `pruned`, the ChannelSet and optional regularization curves as metadata). `select` feeds
// `prune` directly for the baselines that skip regularization (`direct` with a positional rule,
// `magnitude` / `activation` by importance); `regularize` uses the same rules and parameters and writes
// the same store (with `method: none` it is a select that also passes the model through).
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
    /// Training made the model non-finite: after update `step`, `what` (a loss, a weight) is `value`.
    /// `advice` says which settings to lower. Nothing is published.
    case diverged(stage: String, step: Int, what: String, value: Double, advice: String)

    public var description: String {
        switch self {
        case let .badInput(stage, input, what):
            return "Stage \(stage): input '\(input)' \(what). Check the stage that produced it."
        case let .badParameter(stage, name, reason):
            return "Stage \(stage): parameter '\(name)' \(reason). Change it in the pipeline spec."
        case let .failed(stage, step, underlying):
            return "Stage \(stage) failed while \(step): \(underlying)"
        case let .diverged(stage, step, what, value, advice):
            return "Stage \(stage) diverged: \(step == 0 ? "before the first update" : "at update \(step)") \(what) is \(value), "
                + "so nothing was published. \(advice)"
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
    /// With `ratios`: the removal order of P whose prefixes are the served ratios' sets (nil otherwise).
    public var ranking: ChannelRanking?

    public init(channels: ChannelSet, selection: String, curves: RegularizationCurves? = nil, ranking: ChannelRanking? = nil) {
        self.channels = channels
        self.selection = selection
        self.curves = curves
        self.ranking = ranking
    }

    /// Writes tensor `pruned` int32 (|P|) and metadata `channel_set`, `selection` and (when present)
    /// `curves` and `ranking`; returns the store digest.
    @discardableResult
    public func write(to url: URL) throws -> String {
        let writer = try TensorStoreWriter(url: url, kind: Self.storeKind)
        do {
            try writer.write("pruned", channels.pruned.map(Int32.init), shape: [channels.pruned.count])
            try writer.setMetadata("channel_set", channels)
            try writer.setMetadata("selection", selection)
            if let curves { try writer.setMetadata("curves", curves) }
            if let ranking { try writer.setMetadata("ranking", ranking) }
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
                  curves: reader.metadataKeys.contains("curves") ? try reader.metadata("curves", as: RegularizationCurves.self) : nil,
                  ranking: reader.metadataKeys.contains("ranking") ? try reader.metadata("ranking", as: ChannelRanking.self) : nil)
    }
}

/// The selection parameters `select` and `regularize` share.
let selectionParams = [
    ParamDecl("ratio", .double(0...0.99), default: .double(0.25), doc: "Fraction p of hidden channels to remove; |P| = round(p·d)."),
    ParamDecl("selection", .string(choices: ChannelSelectionRule.allCases.map(\.rawValue)), default: .string("last"),
              doc: "Rule choosing P: positions (first, last, uniform = evenly spread), random (selection_seed), magnitude (lowest Σ of slice ℓ2 norms), or on calibration windows of the data: activation (lowest residual-stream mean x² at the layer inputs and the final norm), taylor (lowest Σ over the 2L+1 norm inputs and tokens of |x·∂L/∂x|, L the LM loss) or norm_output (lowest mean |norm output| over every norm and token, Minitron's)."),
    ParamDecl("selection_seed", .int(0...Int(Int32.max)), default: .int(0), doc: "Seed of the random rule."),
] + calibrationParams(
    windows: "activation, taylor, norm_output: windows of the data run through the model (the first ones of the token stream, inside the data budget).",
    length: "activation, taylor, norm_output: tokens per calibration window.") + [
    ParamDecl("ratios", .string(), default: .string(""), omittedAtDefault: true,
              doc: "Nested: comma-separated ratios served at once (e.g. \"0.1, 0.2, 0.3\"), replacing ratio: P is the largest one's set, ranked so each smaller ratio's set is a prefix; prune then takes any of them by its own ratio. Every rule but uniform."),
]

/// The calibration parameters of every stage that reads windows of its data through the model (select,
/// regularize, rotate, slicegpt): one declaration, so their ranges and defaults cannot drift apart.
/// `omittedAtDefault` for a kind that gained them later (its cached fingerprints stay valid).
func calibrationParams(windows windowsDoc: String, length lengthDoc: String = "Tokens per calibration window.",
                       omittedAtDefault: Bool = false) -> [ParamDecl] {
    [ParamDecl("calibration_windows", .int(1...100_000), default: .int(16), omittedAtDefault: omittedAtDefault, doc: windowsDoc),
     ParamDecl("calibration_len", .int(1...65_536), default: .int(256), omittedAtDefault: omittedAtDefault, doc: lengthDoc)]
}

/// The decoded `selectionParams`.
struct SelectionParams: Decodable {
    var ratio: Double
    var selection: ChannelSelectionRule
    var selection_seed: Int
    var calibration_windows: Int
    var calibration_len: Int
    var ratios: String?

    /// The `ratios` list; nil when empty (a single-ratio stage).
    func servedRatios(stage: String) throws -> [Double]? {
        let text = ratios ?? ""
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        return try text.split(separator: ",").map { part in
            let item = part.trimmingCharacters(in: .whitespaces)
            guard let ratio = Double(item), ratio.isFinite, ratio > 0, ratio < 1 else {
                throw DReSSStageError.badParameter(stage: stage, name: "ratios",
                                                   reason: "has '\(item)', not a ratio in (0, 1); write e.g. \"0.1, 0.2, 0.3\"")
            }
            return ratio
        }
    }
}

/// The first `windows` windows of `length` tokens of a token dataset made with `tokenizer`; of a
/// mixture, window w comes from the source the weighted schedule gives sample w (so the sources
/// appear in proportion), each source's windows again its first ones.
func calibrationWindows(data url: URL, tokenizer: BPETokenizer, windows: Int, length: Int, stage: String) throws -> [[Int32]] {
    let dataset = try tokenDataset(url, tokenizer: tokenizer, stage: stage, input: "data")
    guard !dataset.sources.isEmpty else {
        return try firstWindows(dataset.tokens[...], windows: windows, length: length, stage: stage, input: "data")
    }
    let schedule = try sourceSchedule(dataset, stage: stage, input: "data")
    let perSource = try dataset.sources.indices.map { i in
        try firstWindows(dataset.sourceTokens(i), windows: schedule.count(source: i, inFirst: windows), length: length,
                         stage: stage, input: "data (source \(dataset.sources[i].name))")
    }
    return (0..<windows).map { w in
        let (source, index) = schedule.source(ofSample: w)
        return perSource[source][index]
    }
}

/// The first `windows` windows of `length` tokens of `tokens`.
private func firstWindows(_ tokens: ArraySlice<Int32>, windows: Int, length: Int, stage: String, input: String) throws -> [[Int32]] {
    guard tokens.count >= windows * length else {
        throw DReSSStageError.badInput(stage: stage, input: input,
                                       what: "has \(tokens.count) tokens, fewer than \(windows) calibration windows of \(length) = \(windows * length); lower calibration_windows or calibration_len")
    }
    let start = tokens.startIndex
    return (0..<windows).map { Array(tokens[(start + $0 * length)..<(start + ($0 + 1) * length)]) }
}

/// P for `model` by the selection parameters of `context` (`ratio` or `ratios`, `selection`,
/// `selection_seed`, and for the calibration rules the calibration windows of `data`, which they then
/// require), its label, and with `ratios` the ranking whose largest prefix is P.
func selectChannels(_ context: StageContext, model: ModelStore, data: URL?) throws -> (ChannelSet, String, ChannelRanking?) {
    let p = try context.decodeParams(SelectionParams.self)
    let rule = p.selection, seed = p.selection_seed
    var statistics: [Double]?
    var label = rule == .random ? "random seed=\(seed)" : rule.rawValue
    if rule.needsCalibration {
        guard let data else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "selection",
                                               reason: "'\(rule.rawValue)' needs calibration text: give the stage a 'data' input")
        }
        let windows = try calibrationWindows(data: data, tokenizer: model.tokenizer, windows: p.calibration_windows,
                                             length: p.calibration_len, stage: context.stageID)
        Threading.configure(threads: context.threads)
        let decoder = try model.decoder()
        switch rule {
        case .taylor: statistics = ChannelSelection.taylorStatistics(model: decoder, windows: windows)
        case .normOutput: statistics = ChannelSelection.normOutputStatistics(model: decoder, windows: windows)
        default: statistics = ChannelSelection.activationStatistics(model: decoder, windows: windows)
        }
        label = "\(rule.rawValue) windows=\(p.calibration_windows)x\(p.calibration_len)"
    }
    let ratio = p.ratio
    let ratios = try p.servedRatios(stage: context.stageID)
    do {
        if let ratios {
            let ranking = try ChannelSelection.ranking(rule, ratios: ratios, config: model.config, seed: UInt64(seed),
                                                       parameters: model.parameters, statistics: statistics)
            return (try ranking.prefix(ranking.order.count), label + " nested", ranking)
        }
        let set = try ChannelSelection.select(rule, ratio: ratio, config: model.config, seed: UInt64(seed),
                                              parameters: model.parameters, statistics: statistics)
        return (set, label, nil)
    } catch {
        throw DReSSStageError.badParameter(stage: context.stageID, name: ratios == nil ? "ratio" : "ratios", reason: error.description)
    }
}

/// `select`: a channel set chosen by rule, without training (the baselines' P).
public struct SelectStage: StageKind {
    public init() {}
    public let name = "select"
    public let version = 2
    public let doc = "Chooses the hidden-channel set P of a model by a rule (no training): the input of prune for the direct and importance baselines."
    public let params = selectionParams
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The dense model."),
                         InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Calibration text for selection: activation, taylor and norm_output (a mix stage's mixture: windows from every source by weight).", optional: true)]
    public let outputs = [OutputDecl("channels", storeKind: ChannelStore.storeKind, doc: "P, the channels to remove.")]

    public func run(_ context: StageContext) throws {
        let model = try ModelStore(store: context.inputs["model"]!)
        let (channels, selection, ranking) = try selectChannels(context, model: model, data: context.inputs["data"])
        context.log("selected \(channels.pruned.count) of \(channels.hiddenSize) channels (\(selection))")
        try ChannelStore(channels: channels, selection: selection, ranking: ranking).write(to: context.outputs["channels"]!)
    }
}
