// Hidden-channel surgery (DReSS "prune", design.md "The method"): the set of residual-stream channels P
// a run removes, the map from every parameter to the axis that carries the hidden width C, and the two
// pure functions that turn a model into its narrower copy (a new config and new, smaller buffers; nothing
// is resized in place). Not here: choosing P (Training/ChannelSelection.swift) or driving the selected
// slices to zero (Training/ChannelRegularizer.swift).
//
// Why deleting exactly-zero channels changes no logit: when every slice that writes channel c is zero
// (embedding and position columns, o/down output rows and biases), the residual stream x_c is 0 at every
// position; every norm then outputs 0 at c (RMSNorm x_c·r·g_c, LayerNorm (x_c − μ)·r·g_c + b_c with
// g_c = b_c = 0), and every slice that reads c (q/k/v/gate/up and LM-head input columns) multiplies 0.
// The only other place c enters is the norms' statistics, Σx/D and Σx²/D: deleting zeros leaves both sums
// unchanged, so keeping the divisor D (ModelConfig.normDivisor) at the original width keeps them exact.

import Tensor

// MARK: - Channel set

/// The hidden channels P removed from (or regularized in) a model of width `hiddenSize`, one index set
/// shared by every layer because the residual stream ties them together (DReSS).
public struct ChannelSet: Codable, Sendable, Equatable {
    /// C, width of the model the indices refer to, e.g. 576.
    public let hiddenSize: Int
    /// P, channel indices in 0..<hiddenSize, sorted ascending and unique, e.g. [432, 433, ..., 575].
    public let pruned: [Int]

    /// A channel set; `pruned` may come in any order and is stored sorted.
    /// Throws when an index is out of range or repeated, or when nothing would be left.
    public init(hiddenSize: Int, pruned: [Int]) throws(ChannelSetError) {
        let sorted = pruned.sorted()
        if let bad = sorted.first(where: { $0 < 0 || $0 >= hiddenSize }) {
            throw .channelOutOfRange(index: bad, hiddenSize: hiddenSize)
        }
        for i in sorted.indices.dropFirst() where sorted[i] == sorted[i - 1] {
            throw .duplicateChannel(index: sorted[i])
        }
        // Why: a model of width 0 has no residual stream; every stage downstream would fail obscurely.
        if sorted.count >= hiddenSize { throw .prunesEverything(hiddenSize: hiddenSize) }
        self.hiddenSize = hiddenSize
        self.pruned = sorted
    }

    /// The channels that survive pruning, ascending (the complement of `pruned`).
    public var kept: [Int] {
        var mask = [Bool](repeating: true, count: hiddenSize)
        for c in pruned { mask[c] = false }
        return (0..<hiddenSize).filter { mask[$0] }
    }

    /// |P| / C, e.g. 0.25.
    public var ratio: Double { Double(pruned.count) / Double(hiddenSize) }

    /// Throws unless this set was chosen for a model of `config.hiddenSize` channels, and that model
    /// has no residual shortcut matrices.
    public func validate(for config: ModelConfig) throws(ChannelSetError) {
        if config.hasShortcuts { throw .shortcutModel }
        if hiddenSize != config.hiddenSize { throw .widthMismatch(channels: hiddenSize, model: config.hiddenSize) }
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case pruned
    }

    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let width = try c.decode(Int.self, forKey: .hiddenSize)
        let indices = try c.decode([Int].self, forKey: .pruned)
        do throws(ChannelSetError) {
            try self.init(hiddenSize: width, pruned: indices)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .pruned, in: c, debugDescription: error.description)
        }
    }
}

/// What can be wrong with a channel set, a selection request or a surgery request.
public enum ChannelSetError: Error, Equatable, Sendable {
    /// A pruning ratio outside [0, 1) or not a number.
    case invalidRatio(Double)
    /// The set (or round(ratio·C)) would remove all `hiddenSize` channels.
    case prunesEverything(hiddenSize: Int)
    /// A channel index outside 0..<hiddenSize.
    case channelOutOfRange(index: Int, hiddenSize: Int)
    /// A channel index listed twice.
    case duplicateChannel(index: Int)
    /// The set was chosen for a model of width `channels`, but the model has width `model`.
    case widthMismatch(channels: Int, model: Int)
    /// Calibration statistics with `count` entries for a model of width `hiddenSize`.
    case statisticsCount(count: Int, hiddenSize: Int)
    /// A calibration statistic that is NaN or infinite, at channel `index`.
    case nonFiniteStatistic(index: Int, value: Double)
    /// A selection rule was asked for without the input it ranks by (`needs`: "parameters" or "statistics").
    case missingSelectionInput(rule: String, needs: String)
    /// A parameter the config requires is absent (`found` nil) or has another shape.
    case parameterMismatch(name: String, expected: [Int], found: [Int]?)
    /// Rescaling norm scales is exact only for RMSNorm; this model uses `norm`.
    case rescaleNeedsRMSNorm(norm: NormKind)
    /// The model carries residual shortcut matrices (SliceGPT), whose hidden channels are not one index set.
    case shortcutModel
    /// A rule whose sets for different ratios are not prefixes of one order (uniform) was asked for a ranking.
    case notNested(rule: String)
    /// Two requested ratios remove the same number of channels of a width-`hiddenSize` model.
    case ratiosCollide(Double, Double, count: Int, hiddenSize: Int)
    /// A prefix of `count` channels was asked of a ranking that orders `ranked`.
    case beyondRanking(count: Int, ranked: Int)
    /// A ranking's served prefix lengths do not ascend strictly from above 0 to the `ranked` channels it orders.
    case invalidRankingCounts([Int], ranked: Int)
}

extension ChannelSetError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .invalidRatio(ratio):
            return "Pruning ratio \(ratio) is outside [0, 1). Give the fraction of hidden channels to remove, e.g. 0.25."
        case let .prunesEverything(hiddenSize):
            return "The channel set removes all \(hiddenSize) hidden channels. Use a smaller ratio so at least one channel is kept."
        case let .channelOutOfRange(index, hiddenSize):
            return "Channel \(index) is outside 0..<\(hiddenSize). Use indices of the model's hidden width."
        case let .duplicateChannel(index):
            return "Channel \(index) is listed twice. List each pruned channel once."
        case let .widthMismatch(channels, model):
            return "The channel set was chosen for hidden width \(channels) but the model has width \(model). "
                + "Select channels for this model (or prune the model the set was chosen for)."
        case let .statisticsCount(count, hiddenSize):
            return "Calibration statistics have \(count) entries for a model of hidden width \(hiddenSize). "
                + "Compute one statistic per hidden channel."
        case let .nonFiniteStatistic(index, value):
            return "The calibration statistic of channel \(index) is \(value). "
                + "Recompute the statistics (check the calibration text and the model for NaN)."
        case let .missingSelectionInput(rule, needs):
            return "Channel selection '\(rule)' ranks channels by \(needs), which were not given. Pass the \(needs) or choose another rule."
        case let .parameterMismatch(name, expected, found):
            let what = found.map { "has shape \($0)" } ?? "is missing"
            return "Parameter '\(name)' \(what), the model config needs \(expected). "
                + "Use the parameters that belong to this config."
        case let .rescaleNeedsRMSNorm(norm):
            return "Rescaling norm scales keeps outputs exact only for RMSNorm, not \(norm.rawValue). "
                + "Keep the original norm divisor instead (norms: keep_divisor)."
        case .shortcutModel:
            return "The model is a SliceGPT model: each residual connection changes basis, so a hidden channel is not one slice of "
                + "every tensor and cannot be selected or pruned. Slice the original model with a larger ratio instead."
        case let .notNested(rule):
            return "Selection '\(rule)' spreads its channels anew for every count, so the set of a smaller ratio is not inside a larger one's "
                + "and one run cannot serve several ratios. Use first, last, random or an importance rule with ratios."
        case let .ratiosCollide(a, b, count, hiddenSize):
            return "Ratios \(a) and \(b) both remove \(count) of \(hiddenSize) channels. List ratios that differ by at least one channel."
        case let .beyondRanking(count, ranked):
            return "A prefix of \(count) channels was asked of a ranking of \(ranked). Ask for at most the largest ratio the ranking was made for, "
                + "or rank for a larger ratio upstream (ratios of select or regularize)."
        case let .invalidRankingCounts(counts, ranked):
            return "A channel ranking serves prefixes of \(counts) channels of the \(ranked) it orders; they must ascend strictly from above 0 "
                + "and end at \(ranked). Re-run the select or regularize stage that made it (the store may be damaged)."
        }
    }
}

// MARK: - Where the hidden width lives

/// Which axis of a parameter carries the hidden width C, i.e. what one channel's slice is.
public enum HiddenAxis: Sendable, Equatable {
    /// A row-major [R, C] matrix that reads the residual stream: channel c is column c (strided).
    case columns
    /// A row-major [C, K] matrix that writes the residual stream: channel c is row c (contiguous).
    case rows
    /// A [C] vector (a norm's scale or shift, an output bias): channel c is entry c.
    case entries
}

/// One parameter tensor with a hidden-channel axis.
public struct HiddenChannelTensor: Sendable, Equatable {
    /// Canonical parameter name, e.g. "layers/0/attn/wq".
    public let name: String
    /// The axis of the hidden width.
    public let axis: HiddenAxis
    /// Full shape in the config, e.g. [NH*HD, C].
    public let shape: [Int]
}

extension ModelConfig {
    /// Every parameter that reads or writes the residual stream, with its hidden-channel axis, in
    /// layout order: embeddings and learned positions (columns), q/k/v/gate/up and LM-head input columns,
    /// o/down output rows, their biases bo/b_down and every norm's scale and shift (entries). Tied
    /// embeddings appear once (there is no `lm_head` then). Parameters without a C axis (bq, bk, bv,
    /// b_up) are not listed.
    public var hiddenChannelTensors: [HiddenChannelTensor] {
        parameterSpecs.compactMap { spec in
            let leaf = spec.name.split(separator: "/").last.map(String.init) ?? spec.name
            let axis: HiddenAxis?
            switch leaf {
            case "tokens", "positions", "wq", "wk", "wv", "w_gate", "w_up", "lm_head": axis = .columns
            case "wo", "w_down": axis = .rows
            case "bo", "b_down", "scale", "shift": axis = .entries
            case "bq", "bk", "bv", "b_up": axis = nil
            case "shortcut":
                // Why: SliceGPT models are refused by ChannelSet.validate and ChannelSelection.select first.
                preconditionFailure("hiddenChannelTensors: a model with residual shortcut matrices has no hidden-channel slices")
            default:
                // Why: a parameter added to ModelConfig must be classified here, or pruning would
                // silently leave it at the old width.
                preconditionFailure("hiddenChannelTensors: parameter \(spec.name) is not classified")
            }
            return axis.map { HiddenChannelTensor(name: spec.name, axis: $0, shape: spec.shape) }
        }
    }
}

// MARK: - Surgery

/// How norms see the narrower residual stream after pruning.
public enum NormWidthPolicy: String, Codable, Sendable, CaseIterable {
    /// Keep D (normDivisor) at the original width: exact for RMSNorm and LayerNorm when the deleted
    /// channels are zero (the default).
    case keepDivisor = "keep_divisor"
    /// RMSNorm only: D becomes the new width C′, every norm scale is multiplied by √(D/C′) and ε by D/C′.
    /// Then Σx²/C′ + εD/C′ = (D/C′)(Σx²/D + ε), so x·g′/√(Σx²/C′ + ε′) = x·g/√(Σx²/D + ε) exactly in real
    /// arithmetic (rescaling only the scales would be exact only up to ε). Useful for checkpoint formats
    /// that always divide by the width (Hugging Face).
    case rescaleScales = "rescale_scales"
}

/// The config of `config` with the channels `channels.pruned` removed: hiddenSize = kept.count, every
/// other width unchanged. With `.keepDivisor` normDivisor stays at `config.normDivisor`; with
/// `.rescaleScales` (RMSNorm only) it becomes the new width and normEps is multiplied by D/C′.
public func prunedConfig(_ config: ModelConfig, channels: ChannelSet,
                         norms: NormWidthPolicy = .keepDivisor) throws(ChannelSetError) -> ModelConfig {
    try channels.validate(for: config)
    var pruned = config
    pruned.hiddenSize = channels.hiddenSize - channels.pruned.count
    switch norms {
    case .keepDivisor:
        break
    case .rescaleScales:
        guard config.norm == .rmsnorm else { throw .rescaleNeedsRMSNorm(norm: config.norm) }
        pruned.normDivisor = pruned.hiddenSize
        pruned.normEps = Float(Double(config.normEps) * normRescale(config, pruned))
    }
    return pruned
}

/// D / C′: the factor ε is multiplied by and whose square root multiplies every norm scale.
private func normRescale(_ dense: ModelConfig, _ pruned: ModelConfig) -> Double {
    Double(dense.normDivisor) / Double(pruned.hiddenSize)
}

/// New parameters laid out by `prunedConfig(config, channels:, norms:)`.parameterSpecs, holding the kept
/// slices of `parameters` (new buffers; gradients zero). Tensors without a hidden axis are copied whole.
/// With `.rescaleScales` the norm scales are multiplied by √(D/C′) (see NormWidthPolicy).
public func pruneParameters(_ parameters: ParameterSet, config: ModelConfig, channels: ChannelSet,
                            norms: NormWidthPolicy = .keepDivisor) throws(ChannelSetError) -> ParameterSet {
    let newConfig = try prunedConfig(config, channels: channels, norms: norms)
    try requireParameters(parameters, for: config)
    let out = ParameterSet(newConfig.parameterSpecs)
    let axes = Dictionary(uniqueKeysWithValues: config.hiddenChannelTensors.map { ($0.name, $0.axis) })
    let kept = channels.kept
    let scaleFactor = norms == .rescaleScales ? Float(normRescale(config, newConfig).squareRoot()) : 1
    for spec in newConfig.parameterSpecs {
        let src = parameters.value(spec.name), dst = out.value(spec.name)
        switch axes[spec.name] {
        case nil:
            dst.assign(src)
        case .columns?:
            // src: (R, C) -> dst: (R, C′), gathering kept columns row by row.
            let R = src.shape[0], C = src.shape[1], Cp = kept.count
            let s = src.data, d = dst.data
            for r in 0..<R {
                for (j, c) in kept.enumerated() { d[r * Cp + j] = s[r * C + c] }
            }
        case .rows?:
            // src: (C, K) -> dst: (C′, K), copying kept rows.
            for (j, c) in kept.enumerated() { dst.row(j).assign(src.row(c)) }
        case .entries?:
            // src: (C) -> dst: (C′).
            let isScale = spec.name.hasSuffix("/scale")
            let factor = isScale ? scaleFactor : 1
            for (j, c) in kept.enumerated() { dst.data[j] = src.data[c] * factor }
        }
    }
    return out
}

/// Throws unless `parameters` holds every parameter of `config.parameterSpecs` with its shape.
public func requireParameters(_ parameters: ParameterSet, for config: ModelConfig) throws(ChannelSetError) {
    for spec in config.parameterSpecs {
        guard parameters.contains(spec.name) else {
            throw .parameterMismatch(name: spec.name, expected: spec.shape, found: nil)
        }
        let found = parameters.value(spec.name).shape
        if found != spec.shape { throw .parameterMismatch(name: spec.name, expected: spec.shape, found: found) }
    }
}
