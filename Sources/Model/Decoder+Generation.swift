// Autoregressive generation with a key/value cache: prefill runs a prompt's tokens in one forward,
// decode steps run one new token per sequence and attend over everything cached. Batches of
// equally long prompts decode together. Not the math of a layer (Decoder.swift).

import Foundation
import Tensor

/// Keys and values of every layer for B sequences, filled from position 0 up to `length`.
public final class KVCache {
    /// B, sequences decoded together.
    public let batch: Int
    /// Positions the cache can hold.
    public let capacity: Int
    /// Positions filled so far (the next token's position).
    public private(set) var length = 0
    /// keys, values: per layer (B, capacity, NKV, HD), after RoPE
    let keys: [Tensor]
    let values: [Tensor]

    init(config: ModelConfig, batch: Int, capacity: Int) {
        self.batch = batch
        self.capacity = capacity
        keys = config.layers.map { Tensor(zeros: [batch, capacity, $0.kvHeads, config.headDim]) }
        values = config.layers.map { Tensor(zeros: [batch, capacity, $0.kvHeads, config.headDim]) }
    }

    /// Forgets every cached position (the buffers are reused).
    public func reset() { length = 0 }

    /// Copies layer l's new keys and values, (B·T, NKV·HD) rows at the start of `k` and `v`, to
    /// positions length..<length+T.
    func append(layer l: Int, k: Tensor, v: Tensor, T: Int) {
        precondition(length + T <= capacity, "KVCache: \(length + T) positions exceed its capacity \(capacity)")
        let width = keys[l].count / (batch * capacity)
        for b in 0..<batch {
            let dst = (b * capacity + length) * width, src = b * T * width
            (keys[l].data + dst).update(from: k.data + src, count: T * width)
            (values[l].data + dst).update(from: v.data + src, count: T * width)
        }
    }

    func advance(by T: Int) { length += T }
}

extension Decoder {
    /// An empty cache for `batch` sequences of up to `capacity` positions (default maxPositions).
    public func makeCache(batch: Int, capacity: Int? = nil) -> KVCache {
        let capacity = min(capacity ?? config.maxPositions, config.maxPositions)
        return KVCache(config: config, batch: batch, capacity: capacity)
    }

    /// Runs T new tokens per sequence (row-major (B, T) ids, positions cache.length..<cache.length+T)
    /// and appends their keys and values to the cache. Prefill is one call with the prompts, decoding
    /// is one call per token with T = 1. Returns the logits of every new position (B, T, V) when
    /// `allPositions`, else those of the last one (B, V).
    public func step(tokens: [Int32], B: Int, T: Int, cache: KVCache, allPositions: Bool = false) -> Tensor {
        precondition(cache.batch == B, "Decoder.step: cache holds \(cache.batch) sequences, got B = \(B)")
        let top = inferenceForward(tokens, B: B, T: T, cache: cache)
        let C = config.hiddenSize, V = config.vocabSize
        let rows: Tensor
        if allPositions || T == 1 {
            rows = top
        } else {
            rows = Tensor(zeros: [B, C])
            for b in 0..<B { (rows.data + b * C).update(from: top.data + (b * T + T - 1) * C, count: C) }
        }
        let out = Tensor(zeros: allPositions ? [B, T, V] : [B, V])
        linearForward(out: out.data, inp: rows.data, weight: lmHead.value.data, bias: nil, N: out.count / V, IN: C, OUT: V)
        return out
    }

    /// Continues `prompt` by up to `maxNewTokens` tokens and returns only the new ones. Greedy when
    /// `temperature` is 0, otherwise samples softmax(logits / temperature), restricted to the `topK`
    /// most likely tokens when given, from Philox stream 0 of `seed`. Stops after emitting `stopAt`
    /// (included) or when the context reaches maxPositions.
    public func generate(prompt: [Int32], maxNewTokens: Int, temperature: Float = 0, topK: Int? = nil,
                         seed: UInt64 = 0, stopAt: Int32? = nil) -> [Int32] {
        generate(prompts: [prompt], maxNewTokens: maxNewTokens, temperature: temperature, topK: topK,
                 seed: seed, stopAt: stopAt)[0]
    }

    /// `generate(prompt:…)` for B equally long prompts decoded as one batch; sequence b samples from
    /// stream `firstStream` + b of `seed`. A sequence that emitted `stopAt` stops growing; the batch
    /// stops when all have. `banned` tokens are never produced (e.g. special tokens, so sampled text
    /// runs on as one document).
    public func generate(prompts: [[Int32]], maxNewTokens: Int, temperature: Float = 0, topK: Int? = nil,
                         seed: UInt64 = 0, firstStream: UInt64 = 0, stopAt: Int32? = nil, banned: [Int32] = [],
                         afterStep: (Int) -> Void = { _ in }) -> [[Int32]] {
        let B = prompts.count, P = prompts.first?.count ?? 0
        precondition(B > 0 && P > 0 && prompts.allSatisfy { $0.count == P },
                     "Decoder.generate: needs at least one prompt, all non-empty and of equal length")
        precondition(P < config.maxPositions, "Decoder.generate: prompt of \(P) tokens leaves no room below maxPositions \(config.maxPositions)")
        precondition(banned.allSatisfy { $0 >= 0 && Int($0) < config.vocabSize } && Set(banned).count < config.vocabSize,
                     "Decoder.generate: banned token ids must lie in 0..<\(config.vocabSize) and leave at least one token")
        let cache = makeCache(batch: B, capacity: min(config.maxPositions, P + maxNewTokens))
        var logits = step(tokens: prompts.flatMap { $0 }, B: B, T: P, cache: cache)
        var rngs = (0..<B).map { RNG(seed: seed, stream: firstStream + UInt64($0)) }
        var generated = [[Int32]](repeating: [], count: B)
        var finished = [Bool](repeating: false, count: B)
        let V = config.vocabSize
        for produced in 0..<maxNewTokens {
            var next: [Int32] = []
            for b in 0..<B {
                for id in banned { logits.data[b * V + Int(id)] = -.infinity }
                let token = sampleToken(logits.data + b * V, V: V, temperature: temperature, topK: topK, rng: &rngs[b])
                next.append(token)
                if !finished[b] {
                    generated[b].append(token)
                    finished[b] = token == stopAt
                }
            }
            afterStep(produced + 1)
            if finished.allSatisfy({ $0 }) || cache.length == cache.capacity { break }
            logits = step(tokens: next, B: B, T: 1, cache: cache)
        }
        return generated
    }

    /// The ids of the k largest of `logits[0..<count]`, largest first, ties to the lower id (so the
    /// order does not depend on a sort's stability). One pass that keeps the k best so far, ascending:
    /// O(count) comparisons once the k-th best has settled, where sorting the vocabulary per sampled
    /// token cost more than the decode step itself.
    static func largest(_ logits: UnsafePointer<Float>, count: Int, k: Int) -> [Int] {
        func before(_ a: Int, _ b: Int) -> Bool { logits[a] < logits[b] || (logits[a] == logits[b] && a > b) }  // a ranks below b
        var kept: [Int] = []   // ascending by rank: kept[0] is the weakest of the k best
        kept.reserveCapacity(k + 1)
        for id in 0..<count {
            if kept.count == k, !before(kept[0], id) { continue }
            var lo = 0, hi = kept.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if before(kept[mid], id) { lo = mid + 1 } else { hi = mid }
            }
            kept.insert(id, at: lo)
            if kept.count > k { kept.removeFirst() }
        }
        return kept.reversed()
    }

    /// argmax (temperature 0) or a sample from softmax(logits / temperature) over the topK largest.
    func sampleToken(_ logits: UnsafePointer<Float>, V: Int, temperature: Float, topK: Int?, rng: inout RNG) -> Int32 {
        if temperature <= 0 {
            var best = 0
            for i in 1..<V where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        var candidates = Array(0..<V)
        if let topK, topK < V {
            candidates = Self.largest(logits, count: V, k: max(1, topK))
        }
        let maxLogit = candidates.map { logits[$0] }.max() ?? 0
        let weights = candidates.map { exp(Double((logits[$0] - maxLogit) / temperature)) }
        var threshold = Double(rng.nextUniform()) * weights.reduce(0, +)
        for (i, w) in zip(candidates, weights) {
            threshold -= w
            if threshold < 0 { return Int32(i) }
        }
        return Int32(candidates.last ?? 0)
    }
}
