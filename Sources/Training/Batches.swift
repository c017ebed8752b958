// Training batches from tokens: B windows of T + 1 tokens become (tokens, targets), targets being the
// tokens shifted left by one. Sample j of a source is a pure function of (seed, j), so the batch for a
// given step is the same in an uninterrupted run and in a resumed one, and B = 4 with one micro-batch
// sees the same four windows as B = 1 with four. Not here: tokenising text (module Data).

import Tensor

/// One batch: tokens and next-token targets, both (B, T) row-major.
public struct TokenBatch: Sendable, Equatable {
    /// (B, T) input token ids.
    public var tokens: [Int32]
    /// (B, T) the token following each input token.
    public var targets: [Int32]
    /// B, sequences.
    public var B: Int
    /// T, tokens per sequence.
    public var T: Int

    public init(tokens: [Int32], targets: [Int32], B: Int, T: Int) {
        precondition(tokens.count == B * T && targets.count == B * T,
                     "TokenBatch: \(tokens.count) tokens and \(targets.count) targets for B \(B), T \(T)")
        self.tokens = tokens
        self.targets = targets
        self.B = B
        self.T = T
    }
}

/// A source of training samples numbered 0, 1, 2, …; the trainer asks for consecutive ranges.
public protocol BatchSource {
    /// T, tokens per sample.
    var T: Int { get }
    /// Samples first ..< first + count as one batch with B = count. Must be a pure function of its arguments.
    func batch(first: Int, count: Int) -> TokenBatch
}

/// Samples windows of T + 1 tokens from a token stream or from pre-cut windows, seeded and stateless.
public struct TokenSampler: BatchSource, Sendable {
    private enum Source: Sendable {
        /// Random offsets into one stream (with replacement): sample j starts at a uniform offset drawn
        /// from Philox stream j of the seed.
        case stream(seed: UInt64)
        /// Windows of exactly T + 1 tokens laid end to end; each epoch visits every window once, in a
        /// seeded permutation (seed nil: in order).
        case windows(count: Int, seed: UInt64?)
    }

    /// T, tokens per sample (windows hold T + 1).
    public let T: Int
    private let tokens: [Int32]
    private let source: Source

    /// Random windows anywhere in `tokens` (needs at least T + 1 tokens).
    public init(stream tokens: [Int32], T: Int, seed: UInt64) throws(TrainingError) {
        precondition(T > 0, "TokenSampler: T must be positive, got \(T)")
        guard tokens.count >= T + 1 else { throw .notEnoughTokens(have: tokens.count, needed: T + 1) }
        self.T = T
        self.tokens = tokens
        self.source = .stream(seed: seed)
    }

    /// Pre-cut windows of T + 1 tokens each, concatenated in `windows`; shuffled per epoch by `seed`,
    /// or taken in order when `seed` is nil.
    public init(windows: [Int32], T: Int, seed: UInt64?) throws(TrainingError) {
        precondition(T > 0, "TokenSampler: T must be positive, got \(T)")
        guard windows.count >= T + 1 else { throw .notEnoughTokens(have: windows.count, needed: T + 1) }
        guard windows.count % (T + 1) == 0 else { throw .ragged(count: windows.count, windowLength: T + 1) }
        self.T = T
        self.tokens = windows
        self.source = .windows(count: windows.count / (T + 1), seed: seed)
    }

    /// Number of distinct windows: pre-cut windows, or possible offsets in a stream.
    public var windowCount: Int {
        switch source {
        case .stream: tokens.count - T
        case let .windows(count, _): count
        }
    }

    /// Offset of sample j's first token in `tokens`.
    public func offset(ofSample j: Int) -> Int {
        switch source {
        case let .stream(seed):
            var rng = RNG(seed: seed, stream: UInt64(j))
            return rng.nextInt(below: tokens.count - T)
        case let .windows(count, seed):
            let epoch = j / count, slot = j % count
            return windowIndex(slot: slot, permutation: seed.map { epochPermutation(seed: $0, epoch: epoch, count: count) }) * (T + 1)
        }
    }

    public func batch(first: Int, count B: Int) -> TokenBatch {
        precondition(first >= 0 && B > 0, "TokenSampler.batch: bad range first \(first), count \(B)")
        var inputs = [Int32](repeating: 0, count: B * T)
        var targets = [Int32](repeating: 0, count: B * T)
        // Consecutive samples share an epoch: recompute the permutation only when the epoch changes.
        var cachedEpoch = -1
        var permutation: [Int]?
        for b in 0..<B {
            let j = first + b
            let start: Int
            switch source {
            case .stream:
                start = offset(ofSample: j)
            case let .windows(count, seed):
                if let seed, j / count != cachedEpoch {
                    cachedEpoch = j / count
                    permutation = epochPermutation(seed: seed, epoch: cachedEpoch, count: count)
                }
                start = windowIndex(slot: j % count, permutation: permutation) * (T + 1)
            }
            for t in 0..<T {
                inputs[b * T + t] = tokens[start + t]
                targets[b * T + t] = tokens[start + t + 1]
            }
        }
        return TokenBatch(tokens: inputs, targets: targets, B: B, T: T)
    }

    private func windowIndex(slot: Int, permutation: [Int]?) -> Int { permutation?[slot] ?? slot }

    /// The window order of `epoch`: stream `epoch` of the seed, so epochs differ and never depend on each other.
    private func epochPermutation(seed: UInt64, epoch: Int, count: Int) -> [Int] {
        var rng = RNG(seed: seed, stream: UInt64(epoch))
        return rng.permutation(count)
    }
}
