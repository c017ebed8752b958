// Nested regularization (issue 15): one regularize run that serves several pruning ratios. The channels
// are ranked (ChannelRanking: the set of ratio p is a prefix of the order, inside every larger ratio's
// set), and two things act on the run:
// - Micro-batch s (update t, micro-batch m: s = t·K + m) trains the model with the prefix of served ratio s mod k removed (its slices zeroed for
//   that forward and backward, `ChannelMask`), so every served width learns to work on its own; what
//   it removes is what `prune` with that ratio deletes.
// - The DReSS penalty acts only on the channels every served ratio removes (the smallest ratio's set),
//   with the whole λ of a single-ratio run, so they empty on its schedule. The larger ratios' channels
//   get no penalty: the masked steps alone teach the model to do without them.
// Why not a penalty that empties every prefix in turn, or one that grows with the share of ratios that
// remove a channel: an emptied channel is dead (none of its slices gets a gradient again), so every
// smaller ratio would keep it as dead width. Measured: with λ(r) = λ·m(r)/k the 10%, 20% and 30%
// models of one run came out as the same function (docs/experiments/ratio-sweep.md).
// See docs/methods.md "Nested regularization".
// Not here: the update loop itself (Regularization.swift), the ranking rules (ChannelSelection.swift).

import Model
import Tensor

/// Channel sets removed from a model for one forward and backward and then put back: `remove` saves
/// the values and gradients of the set's slices and zeroes the values; `restore` puts both back, so the
/// micro-batch leaves no gradient on the removed slices (the gradient of the model with them deleted).
/// One save buffer, sized for the largest set the mask will take, serves every set (a nested run's
/// prefixes share it: one buffer per prefix would cost about 1.6 GB more on SmolLM2 at five ratios).
public struct ChannelMask {
    private let capacity: Set<Int>
    private let tensors: [HiddenChannelTensor]
    private var values: [[Float]]
    private var grads: [[Float]]
    /// The set `remove` took out and `restore` has not yet put back.
    private var removed: ChannelRuns?

    /// `capacity` is the largest set `remove` will be given; every later set must lie inside it.
    public init(capacity: ChannelSet, config: ModelConfig, parameters: ParameterSet) {
        let runs = ChannelRuns(capacity.pruned)
        self.capacity = Set(capacity.pruned)
        tensors = config.hiddenChannelTensors
        values = tensors.map { [Float](repeating: 0, count: sliceElementCount(parameters.value($0.name), axis: $0.axis, runs: runs)) }
        grads = values
    }

    /// Saves the slices' values and gradients of `channels`, then zeroes the values.
    public mutating func remove(_ channels: ChannelSet, from parameters: ParameterSet) {
        precondition(removed == nil, "ChannelMask: restore the removed set before removing another")
        precondition(channels.pruned.allSatisfy(capacity.contains), "ChannelMask: the set lies outside the mask's capacity")
        let runs = ChannelRuns(channels.pruned)
        for (i, tensor) in tensors.enumerated() {
            let value = parameters.value(tensor.name), grad = parameters.grad(tensor.name)
            values[i].withUnsafeMutableBufferPointer { sliceCopy(value, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: true) }
            grads[i].withUnsafeMutableBufferPointer { sliceCopy(grad, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: true) }
            sliceZero(value, axis: tensor.axis, runs: runs)
        }
        removed = runs
    }

    /// Puts back the values and gradients the last `remove` saved.
    public mutating func restore(to parameters: ParameterSet) {
        guard let runs = removed else { preconditionFailure("ChannelMask: nothing removed to restore") }
        for (i, tensor) in tensors.enumerated() {
            let value = parameters.value(tensor.name), grad = parameters.grad(tensor.name)
            values[i].withUnsafeMutableBufferPointer { sliceCopy(value, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: false) }
            grads[i].withUnsafeMutableBufferPointer { sliceCopy(grad, axis: tensor.axis, runs: runs, buffer: $0.baseAddress!, save: false) }
        }
        removed = nil
    }
}

/// What a nested run needs beside a single-ratio one: the served prefixes and the mask that removes them.
struct NestedRun {
    let ranking: ChannelRanking
    /// One per served ratio, ascending.
    let prefixes: [ChannelSet]
    private var mask: ChannelMask

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
        mask = ChannelMask(capacity: largest, config: config, parameters: parameters)
    }

    /// The served ratio micro-batch `sample` trains: the ratios in turn.
    func prefixIndex(ofMicroBatch sample: Int) -> Int { sample % prefixes.count }

    /// Runs `body` with prefix `index` removed from `parameters`, then puts it back.
    mutating func withPrefixRemoved<R>(_ index: Int, from parameters: ParameterSet, _ body: () -> R) -> R {
        mask.remove(prefixes[index], from: parameters)
        defer { mask.restore(to: parameters) }
        return body()
    }

    /// The penalty weights: `base` (ones when nil) on the channels every served ratio removes, 0 on the rest.
    func penaltyWeights(_ base: SliceWeights?, channels: ChannelSet, config: ModelConfig) -> SliceWeights {
        let always = Set(ranking.order.prefix(ranking.counts[0]))
        return SliceWeights.scaled(base, config: config, channels: channels, factors: channels.pruned.map { always.contains($0) ? 1 : 0 })
    }
}
