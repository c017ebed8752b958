// Learning-rate schedules as one Codable value and one pure function of the step (nanoGPT's get_lr),
// so stage parameters can name them (`{kind: cosine, lr: 3e-4, warmup: 10, steps: 1000, min_lr: 3e-5}`)
// and a resumed run gets the same rate for the same step. Not here: the optimiser itself (AdamW.swift).

/// A learning-rate schedule: optional linear warm-up, then constant, linear or cosine decay to a floor.
public struct LRSchedule: Codable, Sendable, Equatable {
    /// Shape of the curve after warm-up.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Stays at `lr`.
        case constant
        /// Falls linearly from `lr` to `minLR` over steps warmup ... steps.
        case linear
        /// Falls along half a cosine from `lr` to `minLR` over steps warmup ... steps.
        case cosine
    }

    /// Curve after warm-up, e.g. .cosine.
    public var kind: Kind
    /// Peak learning rate, reached at the end of warm-up, e.g. 3e-4.
    public var lr: Float
    /// Warm-up steps, e.g. 10; 0 starts at the peak.
    public var warmup: Int
    /// Step at which decay reaches `minLR`, e.g. 1000; nil = the run's step count (`resolved(totalSteps:)`).
    public var steps: Int?
    /// Floor after decay, e.g. lr / 10 (nanoGPT's choice); ignored by .constant.
    public var minLR: Float

    public init(kind: Kind, lr: Float, warmup: Int = 0, steps: Int? = nil, minLR: Float = 0) {
        self.kind = kind
        self.lr = lr
        self.warmup = warmup
        self.steps = steps
        self.minLR = minLR
    }

    /// A constant rate without warm-up.
    public static func constant(_ lr: Float) -> LRSchedule { LRSchedule(kind: .constant, lr: lr) }

    enum CodingKeys: String, CodingKey {
        case kind, lr, warmup, steps
        case minLR = "min_lr"
    }

    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        lr = try c.decode(Float.self, forKey: .lr)
        warmup = try c.decodeIfPresent(Int.self, forKey: .warmup) ?? 0
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        minLR = try c.decodeIfPresent(Float.self, forKey: .minLR) ?? 0
        guard lr.isFinite, lr >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .lr, in: c, debugDescription: "lr must be a finite number >= 0, got \(lr)")
        }
        guard warmup >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .warmup, in: c, debugDescription: "warmup must be >= 0, got \(warmup)")
        }
        if let steps, steps < warmup {
            throw DecodingError.dataCorruptedError(forKey: .steps, in: c,
                debugDescription: "steps (\(steps)) must be >= warmup (\(warmup)): decay ends after warm-up")
        }
        guard minLR.isFinite, minLR >= 0, minLR <= lr else {
            throw DecodingError.dataCorruptedError(forKey: .minLR, in: c,
                debugDescription: "min_lr must lie in [0, lr = \(lr)], got \(minLR)")
        }
    }

    /// This schedule with `steps` filled in by the run's step count when it was left open.
    public func resolved(totalSteps: Int) -> LRSchedule {
        var copy = self
        if copy.steps == nil { copy.steps = max(totalSteps, warmup) }
        return copy
    }

    /// The learning rate for update `step` (0-based: the first update uses step 0).
    /// Computed in Double so boundary values are exact to Float rounding.
    public func lr(_ step: Int) -> Float {
        let peak = Double(lr), floor = Double(minLR)
        // 1) Linear warm-up: (step + 1) / (warmup + 1) of the peak, so step 0 already moves the weights
        //    and step `warmup` is the first at the peak (nanoGPT's formula).
        if step < warmup { return Float(peak * Double(step + 1) / Double(warmup + 1)) }
        if kind == .constant { return lr }
        precondition(steps != nil, "LRSchedule.lr: decay length unknown; call resolved(totalSteps:) first")
        let end = steps ?? warmup
        // 2) Past the end of decay: the floor.
        if step >= end { return minLR }
        // 3) In between: decay from the peak (ratio 0 at step == warmup) towards the floor (ratio 1 at `end`).
        let ratio = Double(step - warmup) / Double(end - warmup)
        let coefficient = kind == .linear ? 1 - ratio : 0.5 * (1 + cos(Double.pi * ratio))
        return Float(floor + coefficient * (peak - floor))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
