// Nested regularization (issue 15): one regularize run that serves several pruning ratios. The channels
// are ranked (ChannelRanking: the set of ratio p is a prefix of the order, inside every larger ratio's
// set), and two things act on the run:
// - Update t trains the model with the prefix of served ratio j = t mod k removed (its slices zeroed for
//   that forward and backward, `ChannelMask`), so every served width learns to work on its own; what
//   it removes is what `prune` with that ratio deletes.
// - The DReSS penalty acts on the largest ratio's channels with λ(r) = λ·m(r)/k, m(r) the number of served
//   ratios that remove position r: the channels every ratio removes take the whole λ of a single-ratio
//   run and empty on its schedule, the ones only the largest ratio removes take λ/k.
// Why not one penalty that empties every prefix in turn: the channels of the larger ratios would end the
// run at zero, and a zero channel is a dead one (its slices get no gradient), so every smaller ratio
// would get the largest ratio's model. See docs/methods.md "Nested regularization".
// Not here: the update loop itself (Regularization.swift), the ranking rules (ChannelSelection.swift).

import Model
import Tensor

/// A channel set removed from a model for one forward and backward and then put back: `remove` saves
/// the values and gradients of its slices and zeroes the values; `restore` puts both back, so the
/// micro-batch leaves no gradient on the removed slices (the gradient of the model with them deleted).
public struct ChannelMask {
    private let runs: ChannelRuns
    private let tensors: [HiddenChannelTensor]
    private var values: [[Float]]
    private var grads: [[Float]]

    public init(channels: ChannelSet, config: ModelConfig, parameters: ParameterSet) {
        let runs = ChannelRuns(channels.pruned)
        self.runs = runs
        tensors = config.hiddenChannelTensors
        values = tensors.map { [Float](repeating: 0, count: sliceElementCount(parameters.value($0.name), axis: $0.axis, runs: runs)) }
        grads = values
    }

    /// Saves the slices' values and gradients, then zeroes the values.
    public mutating func remove(from parameters: ParameterSet) {
        for (i, tensor) in tensors.enumerated() {
            let value = parameters.value(tensor.name), grad = parameters.grad(tensor.name)
            values[i].withUnsafeMutableBufferPointer { sliceCopy(value, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: true) }
            grads[i].withUnsafeMutableBufferPointer { sliceCopy(grad, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: true) }
            sliceZero(value, axis: tensor.axis, runs: runs)
        }
    }

    /// Puts back the values and gradients `remove` saved.
    public mutating func restore(to parameters: ParameterSet) {
        for (i, tensor) in tensors.enumerated() {
            let value = parameters.value(tensor.name), grad = parameters.grad(tensor.name)
            values[i].withUnsafeMutableBufferPointer { sliceCopy(value, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: false) }
            grads[i].withUnsafeMutableBufferPointer { sliceCopy(grad, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: false) }
        }
    }
}

/// What a nested run needs beside a single-ratio one: the served prefixes and their masks.
struct NestedRun {
    let ranking: ChannelRanking
    /// One per served ratio, ascending.
    let prefixes: [ChannelSet]
    private var masks: [ChannelMask]

    /// Checks that `channels` is the ranking's largest set (the one the penalty acts on).
    init(ranking: ChannelRanking, channels: ChannelSet, config: ModelConfig, parameters: ParameterSet) throws(TrainingError) {
        let largest: ChannelSet
        do {
            prefixes = try ranking.counts.map { count throws(ChannelSetError) in try ranking.prefix(count) }
            largest = try ranking.prefix(ranking.order.count)
        } catch {
            throw .invalidSetting(key: "ranking", value: "\(ranking.order.count) channels", reason: error.description)
        }
        guard largest == channels else {
            throw .invalidSetting(key: "ranking", value: "\(ranking.order.count) channels",
                                  reason: "must order exactly the regularized set P (\(channels.pruned.count) channels)")
        }
        self.ranking = ranking
        masks = prefixes.map { ChannelMask(channels: $0, config: config, parameters: parameters) }
    }

    /// The served ratio micro-batch `sample` trains: the ratios in turn.
    func prefixIndex(ofMicroBatch sample: Int) -> Int { sample % prefixes.count }

    /// Runs `body` with prefix `index` removed from `parameters`, then puts it back.
    mutating func withPrefixRemoved<R>(_ index: Int, from parameters: ParameterSet, _ body: () -> R) -> R {
        masks[index].remove(from: parameters)
        defer { masks[index].restore(to: parameters) }
        return body()
    }

    /// The penalty weights: `base` (ones when nil) times each channel's removal share m(r)/k.
    func penaltyWeights(_ base: SliceWeights?, channels: ChannelSet, config: ModelConfig) -> SliceWeights {
        var share: [Int: Double] = [:]
        for (c, s) in zip(ranking.order, ranking.removalShares) { share[c] = s }
        return SliceWeights.scaled(base, config: config, channels: channels, factors: channels.pruned.map { share[$0]! })
    }
}
