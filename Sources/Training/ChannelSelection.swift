// Rules that choose the hidden-channel set P before DReSS regularization (or for the prune-only
// baselines): fixed positions (first, last, evenly spread), a seeded random draw, and importance
// rankings (lowest importance pruned): by weight magnitude, or on calibration text by the stream's
// energy (activation), its first-order loss sensitivity (taylor) or the norms' output size (norm_output). The paper fixes
// P by position and reports that first, last and evenly spread sets behave alike (design.md).
// Not here: the calibration forward pass itself (Model/Decoder+ChannelStatistics.swift) or the
// regularizer (ChannelRegularizer.swift).
//
// Count: |P| = round(ratio·C), ties rounded away from zero (ratio 0.25 of C = 10 prunes 3), ratio in [0, 1).

import Model
import Tensor

/// A selection rule by name, as stage parameters spell it.
public enum ChannelSelectionRule: String, Codable, Sendable, CaseIterable {
    /// Channels 0..<n.
    case first
    /// Channels C−n..<C.
    case last
    /// n channels spread evenly: ⌊(2i + 1)·C / (2n)⌋ for i < n, the centres of n equal bins.
    case uniform
    /// n channels drawn without replacement by a seeded Philox permutation.
    case random
    /// The n channels with the lowest `ChannelSelection.magnitudeImportance`.
    case magnitude
    /// The n channels with the lowest calibration statistic (`activationStatistics`: the residual
    /// stream's mean x², summed over the points where norms read it).
    case activation
    /// The n channels with the lowest `taylorStatistics`: Σ over the 2L + 1 norm inputs of |x·∂L/∂x|,
    /// the first-order change of the LM loss when channel c of the stream is zeroed there.
    case taylor
    /// The n channels with the lowest `normOutputStatistics`: mean |norm output| over every norm and
    /// calibration token (Minitron's width importance).
    case normOutput = "norm_output"

    /// Whether the rule ranks channels by statistics of calibration text run through the model.
    public var needsCalibration: Bool { self == .activation || self == .taylor || self == .normOutput }
}

/// A removal order for several ratios at once: `order[0]` goes first, and the set a served ratio removes
/// is the prefix of `counts[j]` channels, so the set of a smaller ratio lies inside every larger one's
/// (what nested regularization trains for, issue 15).
public struct ChannelRanking: Codable, Sendable, Equatable {
    /// C, width of the model the indices refer to.
    public let hiddenSize: Int
    /// The channels of the largest served ratio, first removed first, e.g. [575, 574, …] for `last`.
    public let order: [Int]
    /// Prefix lengths of the served ratios, strictly ascending; the last is `order.count`.
    public let counts: [Int]

    /// Throws when an index is out of range or repeated, or when `counts` does not ascend strictly to
    /// `order.count` (so every served prefix is a distinct, valid set).
    public init(hiddenSize: Int, order: [Int], counts: [Int]) throws(ChannelSetError) {
        let largest = try ChannelSet(hiddenSize: hiddenSize, pruned: order)   // range, duplicates, width
        guard let first = counts.first, first > 0, counts.last == largest.pruned.count,
              zip(counts, counts.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw .invalidRankingCounts(counts, ranked: order.count)
        }
        self.hiddenSize = hiddenSize
        self.order = order
        self.counts = counts
    }

    // Keys as Swift synthesizes them, so rankings stored before this decoder existed still read.
    enum CodingKeys: String, CodingKey { case hiddenSize, order, counts }

    /// Decodes through the validating init: a store's ranking is checked like a computed one.
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let width = try c.decode(Int.self, forKey: .hiddenSize)
        let order = try c.decode([Int].self, forKey: .order)
        let counts = try c.decode([Int].self, forKey: .counts)
        do throws(ChannelSetError) {
            try self.init(hiddenSize: width, order: order, counts: counts)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .order, in: c, debugDescription: error.description)
        }
    }

    /// The first `count` channels of the order, as a set.
    public func prefix(_ count: Int) throws(ChannelSetError) -> ChannelSet {
        guard count <= order.count else { throw .beyondRanking(count: count, ranked: order.count) }
        return try ChannelSet(hiddenSize: hiddenSize, pruned: Array(order.prefix(count)))
    }
}

/// Channel selection rules; every rule returns a validated `ChannelSet` of round(ratio·C) channels.
public enum ChannelSelection {
    /// |P| = round(ratio·C), ties away from zero; throws for a ratio outside [0, 1) or one that rounds to C.
    public static func count(ratio: Double, hiddenSize: Int) throws(ChannelSetError) -> Int {
        guard ratio.isFinite, ratio >= 0, ratio < 1 else { throw .invalidRatio(ratio) }
        let n = Int((ratio * Double(hiddenSize)).rounded(.toNearestOrAwayFromZero))
        if n >= hiddenSize { throw .prunesEverything(hiddenSize: hiddenSize) }
        return n
    }

    /// The first round(ratio·C) channels.
    public static func first(ratio: Double, hiddenSize: Int) throws(ChannelSetError) -> ChannelSet {
        let n = try count(ratio: ratio, hiddenSize: hiddenSize)
        return try ChannelSet(hiddenSize: hiddenSize, pruned: Array(0..<n))
    }

    /// The last round(ratio·C) channels.
    public static func last(ratio: Double, hiddenSize: Int) throws(ChannelSetError) -> ChannelSet {
        let n = try count(ratio: ratio, hiddenSize: hiddenSize)
        return try ChannelSet(hiddenSize: hiddenSize, pruned: Array((hiddenSize - n)..<hiddenSize))
    }

    /// round(ratio·C) channels at the centres of equal bins, ⌊(2i + 1)·C / (2n)⌋: distinct because the
    /// bins are at least one channel wide, and symmetric (ratio 0.5 takes every odd channel of an even C).
    public static func uniform(ratio: Double, hiddenSize: Int) throws(ChannelSetError) -> ChannelSet {
        let n = try count(ratio: ratio, hiddenSize: hiddenSize)
        return try ChannelSet(hiddenSize: hiddenSize, pruned: (0..<n).map { (2 * $0 + 1) * hiddenSize / (2 * n) })
    }

    /// round(ratio·C) channels: the first n of a Philox permutation of 0..<C (stream 0 of `seed`).
    public static func random(ratio: Double, hiddenSize: Int, seed: UInt64) throws(ChannelSetError) -> ChannelSet {
        let n = try count(ratio: ratio, hiddenSize: hiddenSize)
        var rng = RNG(seed: seed)
        return try ChannelSet(hiddenSize: hiddenSize, pruned: Array(rng.permutation(hiddenSize).prefix(n)))
    }

    /// The round(ratio·C) channels of lowest `magnitudeImportance`.
    public static func magnitude(ratio: Double, parameters: ParameterSet, config: ModelConfig) throws(ChannelSetError) -> ChannelSet {
        try requireParameters(parameters, for: config)
        let n = try count(ratio: ratio, hiddenSize: config.hiddenSize)
        return try ChannelSet(hiddenSize: config.hiddenSize,
                              pruned: lowest(magnitudeImportance(parameters: parameters, config: config), count: n))
    }

    /// Importance of channel c: Σ over every slice the DReSS penalty touches (the same slices, tied
    /// embeddings once) of its ℓ2 norm, i.e. the unsmoothed ℓ2 penalty channel c alone would cost.
    /// Raw weights, no per-tensor normalisation: embeddings and norm scales weigh as they are.
    public static func magnitudeImportance(parameters: ParameterSet, config: ModelConfig) -> [Double] {
        ChannelRegularizer.perChannel(parameters: parameters, config: config) { $0.squareRoot() }
    }

    /// The round(ratio·C) channels with the lowest `statistics` (one finite value per channel, e.g. mean
    /// |x| of the residual stream over calibration tokens, computed by the caller with the model).
    public static func activation(ratio: Double, statistics: [Double]) throws(ChannelSetError) -> ChannelSet {
        let C = statistics.count
        if let bad = statistics.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteStatistic(index: bad, value: statistics[bad])
        }
        let n = try count(ratio: ratio, hiddenSize: C)
        return try ChannelSet(hiddenSize: C, pruned: lowest(statistics, count: n))
    }

    /// The `activation` statistic of channel c: Σ over the L + 1 points where a norm reads the residual
    /// stream (every layer's input, the final norm's input) of the mean of x_c² over every token of
    /// `windows` (each a token sequence of any length ≥ 1, run as its own batch of one).
    /// Why x² summed over layers: deleting channel c removes x_c from every norm's input, and a norm
    /// output's error grows with the energy removed there; every layer counts, the final norm too.
    public static func activationStatistics(model: Decoder, windows: [[Int32]]) -> [Double] {
        let (totals, tokens) = pointTotals(windows: windows, hiddenSize: model.config.hiddenSize) {
            model.residualSquareSums(tokens: $0, B: 1, T: $0.count)
        }
        return tokens > 0 ? totals.map { $0 / Double(tokens) } : totals
    }

    /// The `norm_output` statistic of channel c: the mean of |norm output_c| over every token of
    /// `windows` and over the 2L + 1 norms (each layer's attn_norm and mlp_norm, the final norm), the
    /// output including the norm's scale (and shift). Why outputs: they are what the layers read, so a
    /// channel whose scale is 0 scores 0 however large its stream.
    public static func normOutputStatistics(model: Decoder, windows: [[Int32]]) -> [Double] {
        let (totals, tokens) = pointTotals(windows: windows, hiddenSize: model.config.hiddenSize) {
            model.normOutputAbsSums(tokens: $0, B: 1, T: $0.count)
        }
        let norms = Double(2 * model.config.layerCount + 1)
        return tokens > 0 ? totals.map { $0 / (Double(tokens) * norms) } : totals
    }

    /// The `taylor` statistic of channel c: the mean over `windows` of Σ over the 2L + 1 points where a
    /// norm reads the residual stream and over the window's tokens of |x_c · ∂L/∂x_c|, L the window's
    /// mean next-token cross-entropy (every token predicts the next one; the last has no target).
    /// Why: x_c·∂L/∂x_c is the first-order change of L when x_c is zeroed at that point, which is what
    /// deleting the channel does at every norm input at once.
    public static func taylorStatistics(model: Decoder, windows: [[Int32]]) -> [Double] {
        var count = 0
        let (totals, _) = pointTotals(windows: windows, hiddenSize: model.config.hiddenSize) { window in
            count += 1
            return model.residualTaylorSums(tokens: window, targets: Array(window.dropFirst()) + [-1], B: 1, T: window.count)
        }
        return count > 0 ? totals.map { $0 / Double(count) } : totals
    }

    /// Σ over the non-empty windows (each run as its own batch of one) and over the points `sums`
    /// returns of the per-channel sums, and the number of tokens run.
    private static func pointTotals(windows: [[Int32]], hiddenSize C: Int,
                                    _ sums: ([Int32]) -> [[Double]]) -> (totals: [Double], tokens: Int) {
        var totals = [Double](repeating: 0, count: C)
        var tokens = 0
        for window in windows where !window.isEmpty {
            for point in sums(window) {
                for c in 0..<C { totals[c] += point[c] }
            }
            tokens += window.count
        }
        return (totals, tokens)
    }

    /// Applies `rule` to a model of `config`: `seed` is used by .random, `parameters` by .magnitude and
    /// `statistics` (C values) by the calibration rules (.activation, .taylor, .normOutput); a rule whose
    /// input is missing throws.
    public static func select(_ rule: ChannelSelectionRule, ratio: Double, config: ModelConfig, seed: UInt64 = 0,
                              parameters: ParameterSet? = nil, statistics: [Double]? = nil) throws(ChannelSetError) -> ChannelSet {
        let C = config.hiddenSize
        if config.hasShortcuts { throw .shortcutModel }
        switch rule {
        case .first: return try first(ratio: ratio, hiddenSize: C)
        case .last: return try last(ratio: ratio, hiddenSize: C)
        case .uniform: return try uniform(ratio: ratio, hiddenSize: C)
        case .random: return try random(ratio: ratio, hiddenSize: C, seed: seed)
        case .magnitude:
            guard let parameters else { throw .missingSelectionInput(rule: rule.rawValue, needs: "parameters") }
            return try magnitude(ratio: ratio, parameters: parameters, config: config)
        case .activation, .taylor, .normOutput:
            guard let statistics else { throw .missingSelectionInput(rule: rule.rawValue, needs: "statistics") }
            if statistics.count != C { throw .statisticsCount(count: statistics.count, hiddenSize: C) }
            return try activation(ratio: ratio, statistics: statistics)
        }
    }

    /// The removal order of `rule` for every ratio of `ratios` at once (any order, no repeats): the set
    /// `select` gives for each ratio is a prefix of it. Every rule but `uniform`, whose bin centres move
    /// with the count, is nested.
    public static func ranking(_ rule: ChannelSelectionRule, ratios: [Double], config: ModelConfig, seed: UInt64 = 0,
                               parameters: ParameterSet? = nil, statistics: [Double]? = nil) throws(ChannelSetError) -> ChannelRanking {
        let C = config.hiddenSize
        if config.hasShortcuts { throw .shortcutModel }
        let sorted = ratios.sorted()
        var counts: [Int] = []
        for (i, ratio) in sorted.enumerated() {
            let n = try count(ratio: ratio, hiddenSize: C)
            if i > 0, counts[i - 1] == n { throw .ratiosCollide(sorted[i - 1], ratio, count: n, hiddenSize: C) }
            counts.append(n)
        }
        guard let n = counts.last else { throw .invalidRatio(.nan) }
        let order: [Int]
        switch rule {
        case .first: order = Array(0..<n)
        case .last: order = Array((C - n)..<C).reversed()
        case .uniform: throw .notNested(rule: rule.rawValue)
        case .random:
            var rng = RNG(seed: seed)
            order = Array(rng.permutation(C).prefix(n))
        case .magnitude:
            guard let parameters else { throw .missingSelectionInput(rule: rule.rawValue, needs: "parameters") }
            try requireParameters(parameters, for: config)
            order = lowest(magnitudeImportance(parameters: parameters, config: config), count: n)
        case .activation, .taylor, .normOutput:
            guard let statistics else { throw .missingSelectionInput(rule: rule.rawValue, needs: "statistics") }
            if statistics.count != C { throw .statisticsCount(count: statistics.count, hiddenSize: C) }
            if let bad = statistics.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteStatistic(index: bad, value: statistics[bad]) }
            order = lowest(statistics, count: n)
        }
        return try ChannelRanking(hiddenSize: C, order: order, counts: counts)
    }

    /// Indices of the `count` smallest scores; equal scores go to the lower index (deterministic).
    static func lowest(_ scores: [Double], count: Int) -> [Int] {
        let order = scores.indices.sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return Array(order.prefix(count))
    }
}
