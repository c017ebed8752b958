// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization") over one or more flat
// ParameterSets, with the update of torch.optim.AdamW:
//   p ← p · (1 − lr·wd)                       (decoupled decay, only where the decay rule says so)
//   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//   p ← p − lr · m̂ / (√v̂ + ε),   m̂ = m / (1 − β1ᵗ),  v̂ = v / (1 − β2ᵗ),  t = update number from 1
// Moments are planned in one place: one allocation holding m and v, each laid out exactly like the
// concatenated value buffers of the sets, so `m(set:)` is a view with the layout of `sets[s].values`.
// Frozen parameters (TrainableMask) are skipped entirely: their values and moments are never touched.
// Not here: the learning rate (Schedule.swift), clipping (GradientClipping.swift), the loop (Trainer.swift).

import Tensor

/// AdamW hyper-parameters other than the learning rate (which comes from an LRSchedule).
public struct AdamWConfig: Codable, Sendable, Equatable {
    /// β1, first-moment decay, e.g. 0.9.
    public var beta1: Float
    /// β2, second-moment decay, e.g. 0.999 (torch default; nanoGPT uses 0.95).
    public var beta2: Float
    /// ε added to √v̂, e.g. 1e-8.
    public var eps: Float
    /// Decoupled weight decay coefficient, e.g. 0.01 (torch default; nanoGPT uses 0.1).
    public var weightDecay: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    enum CodingKeys: String, CodingKey {
        case beta1, beta2, eps
        case weightDecay = "weight_decay"
    }

    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = AdamWConfig()
        beta1 = try c.decodeIfPresent(Float.self, forKey: .beta1) ?? defaults.beta1
        beta2 = try c.decodeIfPresent(Float.self, forKey: .beta2) ?? defaults.beta2
        eps = try c.decodeIfPresent(Float.self, forKey: .eps) ?? defaults.eps
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? defaults.weightDecay
        for (key, beta) in [(CodingKeys.beta1, beta1), (.beta2, beta2)] where !(beta >= 0 && beta < 1) {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(key.rawValue) must lie in [0, 1), got \(beta)")
        }
        guard eps > 0, eps.isFinite else {
            throw DecodingError.dataCorruptedError(forKey: .eps, in: c, debugDescription: "eps must be a finite number > 0, got \(eps)")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw DecodingError.dataCorruptedError(forKey: .weightDecay, in: c,
                debugDescription: "weight_decay must be a finite number >= 0, got \(weightDecay)")
        }
    }
}

/// AdamW with decoupled weight decay and bias correction over the trainable parameters of `sets`.
public final class AdamW {
    /// Which parameters get weight decay. nanoGPT's rule, stated once here: matrices and embeddings
    /// (rank ≥ 2) decay; vectors (norm scales and shifts, biases) do not, because shrinking a norm scale
    /// or a bias towards zero is not a useful prior.
    public static let decaysMatrices: @Sendable (ParameterSpec) -> Bool = { $0.shape.count >= 2 }

    /// The parameter sets updated, in moment layout order.
    public let sets: [ParameterSet]
    /// Which parameters are trainable (frozen ones are skipped entirely).
    public let mask: TrainableMask
    /// Hyper-parameters; may be changed between updates.
    public var config: AdamWConfig
    /// Updates done so far; the next `update` uses t = step + 1 for bias correction.
    public private(set) var step: Int = 0
    /// m and v: [2, N], N = Σ sets[s].count; row 0 is m, row 1 is v, each laid out like the sets' values.
    public let moments: Tensor
    /// Offset of set s inside each moment row.
    public let setOffsets: [Int]
    let layout: SpanLayout

    /// An optimiser over `sets`; `mask` defaults to everything trainable, `decays` to `decaysMatrices`.
    public init(sets: [ParameterSet], config: AdamWConfig = AdamWConfig(), mask: TrainableMask? = nil,
                decays: (ParameterSpec) -> Bool = AdamW.decaysMatrices) {
        let mask = mask ?? TrainableMask(allOf: sets)
        precondition(mask.flags.count == sets.count && zip(mask.flags, sets).allSatisfy { $0.count == $1.specs.count },
                     "AdamW: mask shape \(mask.flags.map(\.count)) does not fit sets \(sets.map(\.specs.count))")
        self.sets = sets
        self.mask = mask
        self.config = config
        let (offsets, total) = runningOffsets(sets.map(\.count))
        self.setOffsets = offsets
        self.moments = Tensor(zeros: [2, total])
        self.layout = SpanLayout(sets: sets, mask: mask, decays: decays)
    }

    /// First moments of set `s`, same layout as `sets[s].values`.
    public func m(set s: Int) -> Tensor { moments.row(0).rows(setOffsets[s]..<setOffsets[s] + sets[s].count) }
    /// Second moments of set `s`, same layout as `sets[s].values`.
    public func v(set s: Int) -> Tensor { moments.row(1).rows(setOffsets[s]..<setOffsets[s] + sets[s].count) }

    /// Number of scalars this optimiser updates.
    public var trainableCount: Int { layout.total }

    /// One AdamW update of every trainable parameter from the gradients currently in `sets`' grads.
    public func update(lr: Float) {
        let profiled = OpProfile.start()
        defer { OpProfile.stop(.optimizer, profiled) }
        step += 1
        let t = Double(step)
        let c = config
        let hyper = AdamWHyper(lr: lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps,
                               decayFactor: 1 - lr * c.weightDecay,
                               correction1: Float(1 / (1 - pow(Double(c.beta1), t))),
                               correction2: Float(1 / (1 - pow(Double(c.beta2), t))))
        let mBase = moments.data, vBase = moments.data + moments.shape[1]
        let values = sets.map(\.values.data), grads = sets.map(\.grads.data)
        layout.parallelBlocks { block in
            layout.forEachPiece(ofBlock: block) { span, lo, hi in
                let at = span.start + lo, momentAt = setOffsets[span.set] + at
                var h = hyper
                if !span.decays { h.decayFactor = 1 }
                adamwUpdate(p: values[span.set] + at, g: grads[span.set] + at,
                            m: mBase + momentAt, v: vBase + momentAt, n: hi - lo, h)
            }
        }
    }
}

/// Constants of one update, hoisted out of the loop.
struct AdamWHyper {
    var lr, beta1, beta2, eps: Float
    /// 1 − lr·wd for decayed runs, 1 otherwise.
    var decayFactor: Float
    /// 1 / (1 − β1ᵗ) and 1 / (1 − β2ᵗ).
    var correction1, correction2: Float
}

/// The AdamW update of n scalars: p, g, m, v are (n,). SIMD8 body, then `adamwUpdateReference` for the
/// tail; both use the same operation order, so a scalar gets the same bits wherever it falls.
@inline(__always)
func adamwUpdate(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>,
                 m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, n: Int, _ h: AdamWHyper) {
    typealias V8 = SIMD8<Float>
    let b1 = h.beta1, b2 = h.beta2, a1 = 1 - h.beta1, a2 = 1 - h.beta2
    var i = 0
    while i + 8 <= n {
        let gi = UnsafeRawPointer(g + i).loadUnaligned(as: V8.self)
        let mi = b1 * UnsafeRawPointer(m + i).loadUnaligned(as: V8.self) + a1 * gi
        let vi = b2 * UnsafeRawPointer(v + i).loadUnaligned(as: V8.self) + a2 * (gi * gi)
        let mHat = mi * h.correction1, vHat = vi * h.correction2
        let pi = UnsafeRawPointer(p + i).loadUnaligned(as: V8.self) * h.decayFactor
            - h.lr * (mHat / (vHat.squareRoot() + h.eps))
        UnsafeMutableRawPointer(m + i).storeBytes(of: mi, as: V8.self)
        UnsafeMutableRawPointer(v + i).storeBytes(of: vi, as: V8.self)
        UnsafeMutableRawPointer(p + i).storeBytes(of: pi, as: V8.self)
        i += 8
    }
    if i < n { adamwUpdateReference(p: p + i, g: g + i, m: m + i, v: v + i, n: n - i, h) }
}

/// The plain-loop AdamW update of n scalars (p, g, m, v: (n,)): the reference the SIMD version is tested against.
func adamwUpdateReference(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>,
                          m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, n: Int, _ h: AdamWHyper) {
    let b1 = h.beta1, b2 = h.beta2, a1 = 1 - h.beta1, a2 = 1 - h.beta2
    for i in 0..<n {
        let gi = g[i]
        let mi = b1 * m[i] + a1 * gi
        let vi = b2 * v[i] + a2 * (gi * gi)
        let mHat = mi * h.correction1, vHat = vi * h.correction2
        p[i] = p[i] * h.decayFactor - h.lr * (mHat / (vHat.squareRoot() + h.eps))
        m[i] = mi
        v[i] = vi
    }
}

// MARK: - State for save and resume

extension AdamW {
    /// Everything needed to continue exactly where an optimiser stopped: the update count (which also
    /// fixes the schedule position, as schedules are pure functions of the step) and both moments,
    /// as named flat tensors `m/<s>`, `v/<s>` with the layout of set s.
    public struct State: Sendable {
        /// Updates done.
        public var step: Int
        /// Names and shapes of each set's parameters, checked on restore.
        public var layouts: [[ParameterSpec]]
        /// `m/<s>` and `v/<s>` for each set s: flat copies, (sets[s].count,).
        public var tensors: [String: Tensor]

        public init(step: Int, layouts: [[ParameterSpec]], tensors: [String: Tensor]) {
            self.step = step
            self.layouts = layouts
            self.tensors = tensors
        }

        /// The tensor names in a fixed order: m/0, v/0, m/1, v/1, …
        public var tensorNames: [String] { layouts.indices.flatMap { ["m/\($0)", "v/\($0)"] } }
    }

    /// A snapshot (copies) of the step and the moments.
    public var state: State {
        var tensors: [String: Tensor] = [:]
        for s in sets.indices {
            tensors["m/\(s)"] = m(set: s).copy()
            tensors["v/\(s)"] = v(set: s).copy()
        }
        return State(step: step, layouts: sets.map(\.specs), tensors: tensors)
    }

    /// Loads a snapshot taken from an optimiser over sets with the same names and shapes.
    public func restore(_ state: State) throws(TrainingError) {
        let expected = sets.map(\.specs)
        guard state.layouts.count == expected.count else {
            throw .stateMismatch(what: "number of parameter sets", expected: "\(expected.count)", found: "\(state.layouts.count)")
        }
        for (s, (saved, mine)) in zip(state.layouts, expected).enumerated() where saved != mine {
            let diff = zip(saved, mine).first { $0 != $1 }
            let found = diff.map { "\($0.0.name) \($0.0.shape)" } ?? "\(saved.count) parameters"
            let wanted = diff.map { "\($0.1.name) \($0.1.shape)" } ?? "\(mine.count) parameters"
            throw .stateMismatch(what: "parameter set \(s)", expected: wanted, found: found)
        }
        guard state.step >= 0 else {
            throw .stateMismatch(what: "step", expected: ">= 0", found: "\(state.step)")
        }
        for s in sets.indices {
            for (name, target) in [("m/\(s)", m(set: s)), ("v/\(s)", v(set: s))] {
                guard let saved = state.tensors[name] else {
                    throw .stateMismatch(what: "tensor \(name)", expected: "present", found: "missing")
                }
                guard saved.count == target.count else {
                    throw .stateMismatch(what: "tensor \(name)", expected: "\(target.count) values", found: "\(saved.count)")
                }
                target.assign(saved)
            }
        }
        step = state.step
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
