// The DReSS regularizer (design.md "The method", issue 5): Σ ‖slice‖ over every tensor slice that reads
// or writes a hidden channel c ∈ P, its gradient accumulated into the parameters' gradients, the energy
// left in those slices, "prune step 1" (set them to exactly zero) and the λ schedule. The loss term is
// λ·penalty; the training loop adds the gradient after the model's backward and before the optimiser.
// Not here: choosing P (ChannelSelection.swift), deleting channels (Model/ChannelSurgery.swift).
//
// The slices of channel c (from ModelConfig.hiddenChannelTensors): column c of embed/tokens, of
// embed/positions, of every wq/wk/wv/w_gate/w_up and of lm_head (tied embeddings: embed/tokens once);
// row c of every wo and w_down; entry c of every bo/b_down and of every norm's scale and shift
// (attn_norm, mlp_norm, final_norm). Each tensor's slice is its own group (‖·‖ per tensor per channel).
//
// Cost: every call makes one pass over the selected part of each tensor (the gradient one more, since
// an ℓ2 coefficient needs its whole slice's norm first). Column slices of a row-major (R, C) matrix are
// strided, so they are read row by row, accumulating per-channel partial sums over fixed blocks of rows.
// The blocks do not depend on the thread count and their partial sums are added in block order, so
// results are the same bytes for any thread count.

import Model
import Tensor

/// How one slice s is measured in the penalty.
public enum SliceNorm: String, Codable, Sendable, CaseIterable {
    /// ‖s‖₂, smoothed: √(Σs² + ε) − √ε with ε = `ChannelRegularizer.l2Epsilon` (the default, the paper's).
    case l2
    /// ‖s‖₂² = Σs² (smooth; shrinks large slices fast and small ones slowly).
    case l2sq
    /// ‖s‖₁ = Σ|s|, subgradient sign(s) with 0 at 0.
    case l1
}

/// Energy (sum of squares) in the selected channels' slices against the other channels' slices of the
/// same tensors.
public struct SliceEnergy: Sendable, Equatable {
    /// Σ s² over every slice of the channels in P.
    public let selected: Double
    /// Σ s² over the slices of the channels not in P.
    public let rest: Double
    /// |P|.
    public let selectedChannels: Int
    /// C − |P|.
    public let restChannels: Int

    /// Per-channel relative energy: (selected/|P|) / (selected/|P| + rest/(C − |P|)), in [0, 1].
    /// 0.5 when a selected channel carries as much energy as an average kept one, → 0 as the selected
    /// slices empty. Normalised per channel so that sets of different sizes compare; 0 when P is empty
    /// or the model is all zeros.
    public var relative: Double {
        guard selectedChannels > 0, restChannels > 0 else { return 0 }
        let s = selected / Double(selectedChannels), r = rest / Double(restChannels)
        return s + r > 0 ? s / (s + r) : 0
    }
}

/// Per-slice weights w of a weighted penalty Σ w·‖slice‖: one value per channel of P (list order) for
/// every hidden-channel tensor. `initialNorms` makes λ relative: with w = ‖s⁰‖₂ a proximal step of
/// threshold τ·w removes the fraction τ of every slice's starting norm, so all of P empties together
/// after Σ τ_t = 1, whatever the sizes (on SmolLM2 they span 0.001 for norm scales to 143 for embedding
/// columns, so one absolute threshold zeroes the scales long before the matrices move).
public struct SliceWeights: Sendable, Equatable {
    /// Weights by tensor name, |P| each.
    public let byTensor: [String: [Double]]
    /// The floor of an initial-norm weight, so a slice that starts at (nearly) zero is still held there.
    public static let minimumWeight = 1e-3

    public init(byTensor: [String: [Double]]) {
        self.byTensor = byTensor
    }

    /// w = max(‖s‖₂, minimumWeight) of every slice of P in `parameters` now.
    public static func initialNorms(parameters: ParameterSet, config: ModelConfig, channels: ChannelSet) -> SliceWeights {
        let runs = ChannelRuns(channels.pruned)
        var byTensor: [String: [Double]] = [:]
        for tensor in config.hiddenChannelTensors {
            byTensor[tensor.name] = sliceReduce(parameters.value(tensor.name), axis: tensor.axis, runs: runs, absolute: false)
                .map { max($0.squareRoot(), minimumWeight) }
        }
        return SliceWeights(byTensor: byTensor)
    }

    /// `weights` (ones when nil) with the slices of channel `channels.pruned[k]` multiplied by `factors[k]`.
    static func scaled(_ weights: SliceWeights?, config: ModelConfig, channels: ChannelSet, factors: [Double]) -> SliceWeights {
        var byTensor: [String: [Double]] = [:]
        for tensor in config.hiddenChannelTensors {
            byTensor[tensor.name] = zip(of(weights, tensor.name, count: factors.count), factors).map { $0 * $1 }
        }
        return SliceWeights(byTensor: byTensor)
    }

    /// The weights of `tensor`, or |P| ones when there are no weights.
    static func of(_ weights: SliceWeights?, _ tensor: String, count: Int) -> [Double] {
        guard let weights else { return [Double](repeating: 1, count: count) }
        guard let w = weights.byTensor[tensor], w.count == count else {
            preconditionFailure("SliceWeights: no \(count) weights for \(tensor); build them for this model and channel set")
        }
        return w
    }
}

/// The DReSS penalty on a channel set and the operations around it (pure functions over a config and a
/// ParameterSet laid out by `config.parameterSpecs`).
public enum ChannelRegularizer {
    /// ε inside the ℓ2 square root, in squared units: it smooths ‖s‖₂ only below ‖s‖ ≈ 1e-6 and gives a
    /// defined gradient s/√(Σs² + ε) (0 at s = 0). The penalty subtracts √ε so an all-zero slice costs 0.
    public static let l2Epsilon: Double = 1e-12

    /// Σ over the slices of every channel in P of w·‖slice‖ (w = 1 without `weights`; λ not applied:
    /// the loss term is λ·penalty).
    public static func penalty(parameters: ParameterSet, config: ModelConfig, channels: ChannelSet,
                               norm: SliceNorm = .l2, weights: SliceWeights? = nil) -> Double {
        let runs = ChannelRuns(channels.pruned)
        var total = 0.0
        for tensor in checkedTensors(parameters, config, channels) {
            let reduced = sliceReduce(parameters.value(tensor.name), axis: tensor.axis, runs: runs, absolute: norm == .l1)
            total += sliceCost(reduced, norm: norm, weights: SliceWeights.of(weights, tensor.name, count: runs.total))
        }
        return total
    }

    /// Accumulates λ·∂penalty/∂θ into `parameters.grads` (call after the model's backward, before the
    /// optimiser step) and returns the penalty (without λ) of the current values.
    @discardableResult
    public static func addPenaltyGradient(parameters: ParameterSet, config: ModelConfig, channels: ChannelSet,
                                          norm: SliceNorm = .l2, lambda: Double, weights: SliceWeights? = nil) -> Double {
        let runs = ChannelRuns(channels.pruned)
        var total = 0.0
        for tensor in checkedTensors(parameters, config, channels) {
            let value = parameters.value(tensor.name), grad = parameters.grad(tensor.name)
            // ∂/∂s of each slice's cost is coefficient(slice) · s (ℓ2, ℓ2²) or coefficient · sign(s) (ℓ1).
            let reduced = sliceReduce(value, axis: tensor.axis, runs: runs, absolute: norm == .l1)
            let w = SliceWeights.of(weights, tensor.name, count: runs.total)
            total += sliceCost(reduced, norm: norm, weights: w)
            let coefficients: [Float] = switch norm {
            case .l2: zip(reduced, w).map { Float(lambda * $1 / ($0 + l2Epsilon).squareRoot()) }
            case .l2sq: w.map { Float(2 * lambda * $0) }
            case .l1: w.map { Float(lambda * $0) }
            }
            sliceAccumulate(grad: grad, value: value, axis: tensor.axis, runs: runs,
                            coefficients: coefficients, sign: norm == .l1)
        }
        return total
    }

    /// The proximal step of τ·penalty, applied in place to every slice of P after an optimiser update,
    /// (threshold τ·w per slice with `weights`) and the penalty (without λ) of the values it leaves. Exact prox of each norm (ℓ2 unsmoothed):
    /// ℓ2: s ← s·max(0, 1 − τ/‖s‖₂) (group soft-threshold: a slice with ‖s‖₂ ≤ τ becomes exactly 0);
    /// ℓ2²: s ← s/(1 + 2τ) (never exactly 0); ℓ1: s_i ← sign(s_i)·max(0, |s_i| − τ) per element.
    /// Why: an AdamW step moves each weight by at most ~lr whatever λ is, so a subgradient penalty
    /// cannot empty slices of norm ~1 in a few hundred steps at a small lr; the prox shrinks every
    /// slice by τ = η·λ per step independently of the optimiser's scaling, and reaches exact zeros.
    @discardableResult
    public static func applyProximal(parameters: ParameterSet, config: ModelConfig, channels: ChannelSet,
                                     norm: SliceNorm = .l2, threshold tau: Double, weights: SliceWeights? = nil) -> Double {
        precondition(tau.isFinite && tau >= 0, "ChannelRegularizer.applyProximal: threshold \(tau) must be finite and >= 0")
        let runs = ChannelRuns(channels.pruned)
        var total = 0.0
        for tensor in checkedTensors(parameters, config, channels) {
            let value = parameters.value(tensor.name)
            let w = SliceWeights.of(weights, tensor.name, count: runs.total)
            switch norm {
            case .l2:
                let reduced = sliceReduce(value, axis: tensor.axis, runs: runs, absolute: false)
                var factors = [Float](repeating: 0, count: reduced.count)
                for (k, r) in reduced.enumerated() {
                    let length = r.squareRoot(), threshold = tau * w[k]
                    let factor = length > threshold ? 1 - threshold / length : 0
                    factors[k] = Float(factor)
                    total += w[k] * length * factor
                }
                sliceTransform(value, axis: tensor.axis, runs: runs, perSlice: factors, softThreshold: false)
            case .l2sq:
                let factors = w.map { 1 / (1 + 2 * tau * $0) }
                let reduced = sliceReduce(value, axis: tensor.axis, runs: runs, absolute: false)
                for k in 0..<reduced.count { total += w[k] * reduced[k] * factors[k] * factors[k] }
                sliceTransform(value, axis: tensor.axis, runs: runs, perSlice: factors.map { Float($0) }, softThreshold: false)
            case .l1:
                sliceTransform(value, axis: tensor.axis, runs: runs, perSlice: w.map { Float(tau * $0) }, softThreshold: true)
                total += sliceCost(sliceReduce(value, axis: tensor.axis, runs: runs, absolute: true), norm: .l1, weights: w)
            }
        }
        return total
    }

    /// Energy left in the selected slices against the same tensors' other channel slices.
    public static func sliceEnergy(parameters: ParameterSet, config: ModelConfig, channels: ChannelSet) -> SliceEnergy {
        precondition(channels.hiddenSize == config.hiddenSize,
                     "ChannelRegularizer: channel set of width \(channels.hiddenSize) for a model of width \(config.hiddenSize)")
        let energy = channelEnergy(parameters: parameters, config: config)
        var inP = [Bool](repeating: false, count: config.hiddenSize)
        for c in channels.pruned { inP[c] = true }
        var selected = 0.0, rest = 0.0
        for c in 0..<config.hiddenSize {
            if inP[c] { selected += energy[c] } else { rest += energy[c] }
        }
        return SliceEnergy(selected: selected, rest: rest, selectedChannels: channels.pruned.count,
                           restChannels: config.hiddenSize - channels.pruned.count)
    }

    /// e[c] = Σ s² over every slice of channel c (all C channels), the per-channel energy.
    public static func channelEnergy(parameters: ParameterSet, config: ModelConfig) -> [Double] {
        perChannel(parameters: parameters, config: config) { $0 }
    }

    /// Sets every slice of every channel in P to exactly 0 (DReSS prune step 1; gradients untouched).
    public static func zeroChannels(parameters: ParameterSet, config: ModelConfig, channels: ChannelSet) {
        let runs = ChannelRuns(channels.pruned)
        for tensor in checkedTensors(parameters, config, channels) {
            sliceZero(parameters.value(tensor.name), axis: tensor.axis, runs: runs)
        }
    }

    /// Σ over tensors of `transform`(Σ s² of the tensor's slice of c), for every channel c.
    static func perChannel(parameters: ParameterSet, config: ModelConfig,
                           _ transform: (Double) -> Double) -> [Double] {
        let all = ChannelRuns(Array(0..<config.hiddenSize))
        var out = [Double](repeating: 0, count: config.hiddenSize)
        for tensor in checkedTensors(parameters, config, nil) {
            let reduced = sliceReduce(parameters.value(tensor.name), axis: tensor.axis, runs: all, absolute: false)
            for c in 0..<out.count { out[c] += transform(reduced[c]) }
        }
        return out
    }

    /// The config's hidden-channel tensors after checking the parameters and the set fit it.
    /// Preconditions, not errors: the trainer builds the parameters from the config it passes.
    private static func checkedTensors(_ parameters: ParameterSet, _ config: ModelConfig,
                                       _ channels: ChannelSet?) -> [HiddenChannelTensor] {
        if let channels {
            precondition(channels.hiddenSize == config.hiddenSize,
                         "ChannelRegularizer: channel set of width \(channels.hiddenSize) for a model of width \(config.hiddenSize)")
        }
        let tensors = config.hiddenChannelTensors
        for t in tensors {
            precondition(parameters.value(t.name).shape == t.shape,
                         "ChannelRegularizer: \(t.name) has shape \(parameters.value(t.name).shape), config says \(t.shape)")
        }
        return tensors
    }

    /// Σ over slices of w·(the cost of one slice), from its Σs² (ℓ2, ℓ2²) or Σ|s| (ℓ1).
    private static func sliceCost(_ reduced: [Double], norm: SliceNorm, weights: [Double]) -> Double {
        switch norm {
        case .l2:
            let floor = l2Epsilon.squareRoot()
            return zip(reduced, weights).reduce(0) { $0 + $1.1 * (($1.0 + l2Epsilon).squareRoot() - floor) }
        case .l2sq, .l1:
            return zip(reduced, weights).reduce(0) { $0 + $1.1 * $1.0 }
        }
    }
}

/// λ as a function of the update step.
public enum LambdaSchedule: Sendable, Equatable {
    /// λ at every step, e.g. 1e-3 (the paper's best).
    case constant(Double)
    /// λ = from + (to − from)·min(step, steps)/steps: `from` at step 0, `to` from step `steps` on.
    case linearRamp(from: Double, to: Double, steps: Int)

    /// λ for update `step` (0-based).
    public func lambda(_ step: Int) -> Double {
        switch self {
        case let .constant(value):
            return value
        case let .linearRamp(from, to, steps):
            guard steps > 0 else { return to }
            return from + (to - from) * Double(min(max(step, 0), steps)) / Double(steps)
        }
    }
}

// MARK: - Slice kernels

/// A sorted channel list prepared for strided column access. Long runs of consecutive channels (first
/// and last sets are one run) are read as contiguous, vectorisable loops per row. Scattered sets (uniform,
/// random: runs shorter than `minMeanRun` on average) touch nearly every cache line of a row anyway, so
/// they are read as the one contiguous span from the first to the last selected channel, and the
/// unselected channels in it are dropped (reductions) or get coefficient 0 (gradients).
struct ChannelRuns {
    /// The channel list, sorted ascending.
    let channels: [Int]
    /// (first channel, run length, position of the first channel in the list).
    let runs: [(start: Int, count: Int, slot: Int)]
    /// first..<last + 1 of the list (empty when the list is).
    let span: Range<Int>
    /// Whether column passes read the whole span instead of the runs.
    let useSpan: Bool

    /// Mean run length below which reading the span beats looping over runs: a run costs a loop setup
    /// and a scalar tail, a span element only arithmetic on a cache line that is loaded anyway.
    static let minMeanRun = 8

    /// `useSpan` nil chooses by `minMeanRun`; tests force either mode.
    init(_ sorted: [Int], useSpan: Bool? = nil) {
        var runs: [(start: Int, count: Int, slot: Int)] = []
        for (slot, c) in sorted.enumerated() {
            if let last = runs.last, last.start + last.count == c {
                runs[runs.count - 1].count += 1
            } else {
                runs.append((start: c, count: 1, slot: slot))
            }
        }
        self.channels = sorted
        self.runs = runs
        self.span = sorted.isEmpty ? 0..<0 : sorted[0]..<(sorted[sorted.count - 1] + 1)
        self.useSpan = useSpan ?? (runs.count > 1 && sorted.count < Self.minMeanRun * runs.count)
    }

    /// Length of the channel list.
    var total: Int { channels.count }
}

/// Rows per block of a column reduction: partial sums are Float within a block (short enough to keep
/// Float rounding near 1e-6 relative) and Double across blocks; fixed so results ignore the thread count.
/// Every channel's block sum adds the same rows in the same order in span and run mode: same bytes.
private let blockRows = 64

/// Elements per Float partial sum of a contiguous row (then added in Double), for the same reason.
private let rowBlock = 256

/// Parallel chunks should carry at least this many scalar operations to pay for the dispatch.
private let minParallelWork = 1 << 15

/// r[k] = Σ over the slice of channel list[k] of s² (or |s| when `absolute`), in Double.
/// - tensor: (R, C) for .columns, (C, K) for .rows, (C) for .entries
func sliceReduce(_ tensor: Tensor, axis: HiddenAxis, runs: ChannelRuns, absolute: Bool) -> [Double] {
    let n = runs.total
    var result = [Double](repeating: 0, count: n)
    if n == 0 { return result }
    let w = tensor.data
    switch axis {
    case .columns:
        let R = tensor.shape[0], C = tensor.shape[1]
        let blocks = (R + blockRows - 1) / blockRows
        // Per-block accumulator layout: the span (span mode) or the list positions (run mode).
        let width = runs.useSpan ? runs.span.count : n
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: blocks * n)   // (blocks, n)
        defer { partial.deallocate() }
        Threading.parallelFor(blocks, minChunk: max(1, minParallelWork / (blockRows * width))) { range in
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: width)   // (width)
            defer { acc.deallocate() }
            for b in range {
                acc.update(repeating: 0, count: width)
                for r in (b * blockRows)..<min(R, (b + 1) * blockRows) {
                    let row = w + r * C
                    if runs.useSpan {
                        addPowers(acc, row + runs.span.lowerBound, count: width, absolute: absolute)
                    } else {
                        for run in runs.runs { addPowers(acc + run.slot, row + run.start, count: run.count, absolute: absolute) }
                    }
                }
                let lo = runs.span.lowerBound
                for k in 0..<n { partial[b * n + k] = Double(runs.useSpan ? acc[runs.channels[k] - lo] : acc[k]) }
            }
        }
        for b in 0..<blocks {
            for k in 0..<n { result[k] += partial[b * n + k] }
        }
    case .rows:
        let K = tensor.shape[1]
        result.withUnsafeMutableBufferPointer { out in
            let out = out.baseAddress!
            Threading.parallelFor(n, minChunk: max(1, minParallelWork / max(1, K))) { range in
                for k in range { out[k] = rowReduce(w + runs.channels[k] * K, count: K, absolute: absolute) }
            }
        }
    case .entries:
        for (k, c) in runs.channels.enumerated() {
            let v = Double(w[c])
            result[k] = absolute ? abs(v) : v * v
        }
    }
    return result
}

/// grad[slice k] += coefficients[k] · value[slice k] (or · sign(value) when `sign`).
/// - grad, value: the same shape, (R, C) / (C, K) / (C) by `axis`
func sliceAccumulate(grad: Tensor, value: Tensor, axis: HiddenAxis, runs: ChannelRuns,
                     coefficients: [Float], sign: Bool) {
    let n = runs.total
    if n == 0 { return }
    let g = grad.data, w = value.data
    switch axis {
    case .columns:
        let R = value.shape[0], C = value.shape[1]
        // Span mode: coefficient 0 for the unselected channels inside the span, so they get g + 0·w = g
        // (for finite w; a non-finite weight has already ended the run).
        var perColumn = coefficients
        if runs.useSpan {
            perColumn = [Float](repeating: 0, count: runs.span.count)
            for (k, c) in runs.channels.enumerated() { perColumn[c - runs.span.lowerBound] = coefficients[k] }
        }
        let width = runs.useSpan ? runs.span.count : n
        perColumn.withUnsafeBufferPointer { a in
            let a = a.baseAddress!
            Threading.parallelFor(R, minChunk: max(1, minParallelWork / width)) { range in
                for r in range {
                    let row = r * C
                    if runs.useSpan {
                        let lo = runs.span.lowerBound
                        accumulate(g + row + lo, w + row + lo, a, count: width, sign: sign)
                    } else {
                        for run in runs.runs {
                            accumulate(g + row + run.start, w + row + run.start, a + run.slot, count: run.count, sign: sign)
                        }
                    }
                }
            }
        }
    case .rows:
        let K = value.shape[1]
        Threading.parallelFor(n, minChunk: max(1, minParallelWork / max(1, K))) { range in
            for k in range {
                let c = runs.channels[k]
                rowAccumulate(g + c * K, w + c * K, coefficients[k], count: K, sign: sign)
            }
        }
    case .entries:
        for (k, c) in runs.channels.enumerated() {
            g[c] += coefficients[k] * (sign ? signum(w[c]) : w[c])
        }
    }
}

/// Every element s of selected slice k becomes s·a[k] (scale) or sign(s)·max(0, |s| − a[k])
/// (`softThreshold`); elements of other channels are not touched. Columns are visited run by run (no
/// span mode: this pass only writes the selected elements).
/// - tensor: (R, C) / (C, K) / (C) by `axis`; perSlice: |P| values in list order
func sliceTransform(_ tensor: Tensor, axis: HiddenAxis, runs: ChannelRuns, perSlice: [Float], softThreshold: Bool) {
    let n = runs.total
    if n == 0 { return }
    precondition(perSlice.count == n, "sliceTransform: \(perSlice.count) values for \(n) slices")
    let w = tensor.data
    perSlice.withUnsafeBufferPointer { a in
        let a = a.baseAddress!
        switch axis {
        case .columns:
            let R = tensor.shape[0], C = tensor.shape[1]
            Threading.parallelFor(R, minChunk: max(1, minParallelWork / n)) { range in
                for r in range {
                    for run in runs.runs {
                        transform(w + r * C + run.start, { a[run.slot + $0] }, count: run.count, softThreshold: softThreshold)
                    }
                }
            }
        case .rows:
            let K = tensor.shape[1]
            Threading.parallelFor(n, minChunk: max(1, minParallelWork / max(1, K))) { range in
                for k in range {
                    let value = a[k]
                    transform(w + runs.channels[k] * K, { _ in value }, count: K, softThreshold: softThreshold)
                }
            }
        case .entries:
            for (k, c) in runs.channels.enumerated() {
                transform(w + c, { _ in a[k] }, count: 1, softThreshold: softThreshold)
            }
        }
    }
}

/// x[j] ← x[j]·a(j) or sign(x[j])·max(0, |x[j]| − a(j)), j < count.
@inline(__always)
private func transform(_ x: UnsafeMutablePointer<Float>, _ a: (Int) -> Float, count: Int, softThreshold: Bool) {
    if softThreshold {
        for j in 0..<count {
            let v = x[j], t = a(j)
            x[j] = v > t ? v - t : (v < -t ? v + t : 0)
        }
    } else {
        for j in 0..<count { x[j] *= a(j) }
    }
}

/// Sets every selected slice to 0.
/// - tensor: (R, C) / (C, K) / (C) by `axis`
func sliceZero(_ tensor: Tensor, axis: HiddenAxis, runs: ChannelRuns) {
    let w = tensor.data
    switch axis {
    case .columns:
        let R = tensor.shape[0], C = tensor.shape[1]
        for r in 0..<R {
            for run in runs.runs { (w + r * C + run.start).update(repeating: 0, count: run.count) }
        }
    case .rows:
        let K = tensor.shape[1]
        for run in runs.runs { (w + run.start * K).update(repeating: 0, count: run.count * K) }
    case .entries:
        for run in runs.runs { (w + run.start).update(repeating: 0, count: run.count) }
    }
}

/// Copies every selected slice into `buffer` (`save`) or back from it, slices in list order, each
/// element in the tensor's own order; the buffer holds `sliceElementCount` floats.
/// - tensor: (R, C) / (C, K) / (C) by `axis`
func sliceCopy(_ tensor: Tensor, axis: HiddenAxis, runs: ChannelRuns, buffer: UnsafeMutablePointer<Float>, save: Bool) {
    let w = tensor.data
    func move(_ at: UnsafeMutablePointer<Float>, _ slot: UnsafeMutablePointer<Float>, _ count: Int) {
        if save { slot.update(from: at, count: count) } else { at.update(from: slot, count: count) }
    }
    switch axis {
    case .columns:
        let R = tensor.shape[0], C = tensor.shape[1], n = runs.total
        for r in 0..<R {
            for run in runs.runs { move(w + r * C + run.start, buffer + r * n + run.slot, run.count) }
        }
    case .rows:
        let K = tensor.shape[1]
        for run in runs.runs { move(w + run.start * K, buffer + run.slot * K, run.count * K) }
    case .entries:
        for run in runs.runs { move(w + run.start, buffer + run.slot, run.count) }
    }
}

/// Floats the selected slices of `tensor` hold.
func sliceElementCount(_ tensor: Tensor, axis: HiddenAxis, runs: ChannelRuns) -> Int {
    switch axis {
    case .columns: tensor.shape[0] * runs.total
    case .rows: runs.total * tensor.shape[1]
    case .entries: runs.total
    }
}

/// acc[j] += x[j]² (or |x[j]|), j < count: independent lanes, so it vectorises without reassociation.
@inline(__always)
private func addPowers(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, absolute: Bool) {
    if absolute {
        for j in 0..<count { acc[j] += abs(x[j]) }
    } else {
        for j in 0..<count { acc[j] += x[j] * x[j] }
    }
}

/// Σ x² (or Σ|x|) of one contiguous row: eight Float lanes within blocks of `rowBlock` elements (a
/// scalar Float sum would not vectorise: IEEE addition may not be reordered), Double across blocks.
@inline(__always)
private func rowReduce(_ x: UnsafePointer<Float>, count: Int, absolute: Bool) -> Double {
    var total = 0.0
    var start = 0
    while start < count {
        let end = min(count, start + rowBlock)
        var lanes = SIMD8<Float>()
        var i = start
        while i + 8 <= end {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            lanes += absolute ? v.replacing(with: -v, where: v .< 0) : v * v
            i += 8
        }
        var sum = lanes.sum()
        while i < end {
            sum += absolute ? abs(x[i]) : x[i] * x[i]
            i += 1
        }
        total += Double(sum)
        start = end
    }
    return total
}

/// dst[j] += coef[j] · src[j] (or · sign(src[j])), j < count.
@inline(__always)
private func accumulate(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>,
                        _ coef: UnsafePointer<Float>, count: Int, sign: Bool) {
    if sign {
        for j in 0..<count { dst[j] += coef[j] * signum(src[j]) }
    } else {
        for j in 0..<count { dst[j] += coef[j] * src[j] }
    }
}

/// dst[j] += coef · src[j] (or · sign(src[j])), j < count.
@inline(__always)
private func rowAccumulate(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>,
                           _ coef: Float, count: Int, sign: Bool) {
    if sign {
        for j in 0..<count { dst[j] += coef * signum(src[j]) }
    } else {
        for j in 0..<count { dst[j] += coef * src[j] }
    }
}

/// sign(x) with sign(0) = 0 (the ℓ1 subgradient chosen at 0, so zeroed slices stay put).
@inline(__always)
private func signum(_ x: Float) -> Float {
    x > 0 ? 1 : (x < 0 ? -1 : 0)
}
