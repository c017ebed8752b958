// Training batches from several token sources mixed by weight (issue 10: calibration and training
// text that is not one genre). Which source sample j comes from is a smooth weighted round robin
// over whole-number shares of the weights: it repeats every Σ shares samples, so over each period
// every source gets exactly its share, and the sources interleave evenly inside a period instead of
// in blocks. Within a source, its k-th sample is that source's own `TokenSampler` sample k, so
// everything stays a pure function of (seed, j) like the plain sampler (resume, accumulation).
// Not here: storing the sources (Data's TokenDataset) or cutting held-out windows (the stages).

import Tensor

/// The source of every sample of a mixture: a smooth weighted round robin over integer shares.
/// After n samples source i has drawn c_i with n·p_i − (k − 1) < c_i < n·p_i + 1 (k sources, p_i its
/// share): its balance n·shares_i − c_i·period stays above −period because it is only charged when
/// it is the largest, hence ≥ period/k, and the k balances sum to 0.
public struct SourceSchedule: Sendable, Equatable {
    /// Whole-number shares of the weights, reduced by their gcd: each period of Σ shares samples
    /// takes shares[i] samples from source i.
    public let shares: [Int]
    /// Source of each slot of one period.
    private let order: [Int]
    /// For each slot, how many earlier slots of the period have the same source.
    private let rank: [Int]

    /// Largest period: finer weights are an error rather than a large table.
    public static let maxPeriod = 1_000_000

    /// Shares of `weights` (every one finite and > 0): the weights themselves when all are whole
    /// numbers, else the weights' fractions of 10,000 rounded by largest remainder (each at least
    /// 1); then divided by their gcd.
    public init(weights: [Double]) throws(TrainingError) {
        let text = weights.map { "\($0)" }.joined(separator: ", ")
        guard !weights.isEmpty, weights.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw .invalidSetting(key: "weights", value: text, reason: "need one positive number per source")
        }
        var shares: [Int]
        if weights.allSatisfy({ $0 == $0.rounded() && $0 <= Double(Self.maxPeriod) }) {
            shares = weights.map { Int($0) }
        } else {
            let total = weights.reduce(0, +), exact = weights.map { $0 / total * 10_000 }
            shares = exact.map { max(1, Int($0)) }
            // Largest remainders first (lower index on ties) until the shares reach 10,000.
            let remainder = exact.map { $0 - $0.rounded(.down) }
            let byRemainder = exact.indices.sorted { remainder[$0] > remainder[$1] || (remainder[$0] == remainder[$1] && $0 < $1) }
            for i in byRemainder.prefix(max(0, 10_000 - shares.reduce(0, +))) { shares[i] += 1 }
        }
        let divisor = shares.reduce(0) { gcd($0, $1) }
        shares = shares.map { $0 / divisor }
        let period = shares.reduce(0, +)
        guard period <= Self.maxPeriod else {
            throw .invalidSetting(key: "weights", value: text,
                                  reason: "whole-number weights summing to \(period) need too long a schedule; use smaller whole numbers (at most \(Self.maxPeriod) in total)")
        }
        // Smooth weighted round robin: every slot each source gains its share, the one furthest
        // ahead is taken and pays the period. After a full period every balance is 0 again.
        var balance = [Int](repeating: 0, count: shares.count), seen = balance
        var order: [Int] = [], rank: [Int] = []
        order.reserveCapacity(period)
        rank.reserveCapacity(period)
        for _ in 0..<period {
            var best = 0
            for i in shares.indices {
                balance[i] += shares[i]
                if balance[i] > balance[best] { best = i }
            }
            balance[best] -= period
            order.append(best)
            rank.append(seen[best])
            seen[best] += 1
        }
        self.shares = shares
        self.order = order
        self.rank = rank
    }

    /// Samples per period (Σ shares).
    public var period: Int { order.count }

    /// The source of sample j and its number among that source's samples (0, 1, 2, … per source).
    public func source(ofSample j: Int) -> (source: Int, index: Int) {
        precondition(j >= 0, "SourceSchedule: sample \(j) is negative")
        let slot = j % period, source = order[slot]
        return (source, j / period * shares[source] + rank[slot])
    }

    /// How many of samples 0..<n come from `source`.
    public func count(source: Int, inFirst n: Int) -> Int {
        n / period * shares[source] + order[..<(n % period)].reduce(0) { $0 + ($1 == source ? 1 : 0) }
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

/// Samples of several `TokenSampler`s interleaved by a `SourceSchedule`: sample j is sample
/// `index` of source `source` of `schedule.source(ofSample: j)`.
public struct MixedSampler: BatchSource, Sendable {
    /// T, tokens per sample (the same for every source).
    public let T: Int
    public let sources: [TokenSampler]
    public let schedule: SourceSchedule

    /// One sampler per share of `schedule`, all with the same T.
    public init(sources: [TokenSampler], schedule: SourceSchedule) throws(TrainingError) {
        guard sources.count == schedule.shares.count else {
            throw .invalidSetting(key: "weights", value: "\(schedule.shares.count) weights",
                                  reason: "there are \(sources.count) sources; give one weight per source")
        }
        guard let T = sources.first?.T, sources.allSatisfy({ $0.T == T }) else {
            throw .invalidSetting(key: "seq_len", value: sources.map { "\($0.T)" }.joined(separator: ", "),
                                  reason: "every source must cut samples of the same length")
        }
        self.T = T
        self.sources = sources
        self.schedule = schedule
    }

    /// The seed of source i's sampler: `seed` itself for source 0, so a mixture of one source draws
    /// exactly what the plain sampler would; the others are spread by the golden-ratio increment.
    public static func sourceSeed(_ seed: UInt64, source i: Int) -> UInt64 {
        seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15
    }

    public func batch(first: Int, count B: Int) -> TokenBatch {
        precondition(first >= 0 && B > 0, "MixedSampler.batch: bad range first \(first), count \(B)")
        var tokens: [Int32] = [], targets: [Int32] = []
        tokens.reserveCapacity(B * T)
        targets.reserveCapacity(B * T)
        for j in first..<(first + B) {
            let (source, index) = schedule.source(ofSample: j)
            let one = sources[source].batch(first: index, count: 1)
            tokens += one.tokens
            targets += one.targets
        }
        return TokenBatch(tokens: tokens, targets: targets, B: B, T: T)
    }
}
