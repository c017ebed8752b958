// Perplexity of a Decoder on a token stream, with the evaluation protocol recorded next to the number
// (window, stride, bos, the digests of tokenizer and text) so two perplexities are only compared
// when they were measured the same way. Used by `streamline eval` and the `evaluate` stage kind.
// It is here, in Model, because it runs the decoder (`negativeLogLikelihood`) and needs nothing
// else: token ids, a bos id and two digests are plain values, so neither Data (which runs no model)
// nor Stages is needed; its three failures are ModelError cases.
//
// Windowing follows Hugging Face's sliding-window convention: windows start at 0, stride, 2·stride…
// and hold up to `window` tokens; each window scores only the tokens no earlier window scored (its
// last end − previousEnd positions), each predicted from every token before it in the window. The
// first token of the text has no context and is never scored, so with stride == window (non-
// overlapping windows) each full window scores window − 1 tokens. With `bos`, every window is
// preceded by the tokenizer's bos id, which lets the first token of each window be scored too.
// The stream is the concatenation of the documents: windows cross document boundaries.

import Foundation

/// How a perplexity was measured.
public struct PerplexityProtocol: Codable, Sendable, Equatable {
    /// Text tokens per window.
    public var window: Int
    /// Tokens between window starts (≤ window).
    public var stride: Int
    /// Whether each window is preceded by bos.
    public var bos: Bool
    /// Only the first maxTokens tokens of the stream are used (nil = all).
    public var maxTokens: Int?
    /// `BPETokenizer.digest` of the tokenizer that made the ids.
    public var tokenizerDigest: String
    /// Digest of the text (sha256 of a file, or a dataset's text digest and selection).
    public var textDigest: String

    public init(window: Int, stride: Int? = nil, bos: Bool = false, maxTokens: Int? = nil,
                tokenizerDigest: String, textDigest: String) {
        self.window = window
        self.stride = stride ?? window
        self.bos = bos
        self.maxTokens = maxTokens
        self.tokenizerDigest = tokenizerDigest
        self.textDigest = textDigest
    }

    enum CodingKeys: String, CodingKey {
        case window, stride, bos, maxTokens = "max_tokens", tokenizerDigest = "tokenizer_digest", textDigest = "text_digest"
    }
}

/// A measured perplexity.
public struct PerplexityResult: Codable, Sendable, Equatable {
    /// exp(meanNLL).
    public var perplexity: Double
    /// Mean next-token negative log-likelihood (nats) over the scored tokens.
    public var meanNLL: Double
    public var tokensScored: Int
    public var windows: Int
    /// Wall time of the forward passes.
    public var seconds: Double
    /// Scored tokens per second.
    public var tokensPerSecond: Double
    public var evaluation: PerplexityProtocol

    enum CodingKeys: String, CodingKey {
        case perplexity, meanNLL = "mean_nll", tokensScored = "tokens_scored", windows, seconds,
             tokensPerSecond = "tokens_per_second", evaluation = "protocol"
    }
}

/// One window of the protocol: tokens[start..<end] is the input, the last `scored` of them are scored.
public struct PerplexityWindow: Sendable, Equatable {
    public var start: Int
    public var end: Int
    public var scored: Int
}

public enum Perplexity {
    /// The windows over a stream of `count` tokens (see the file header); `bos` makes the first
    /// token of each window scorable.
    public static func windows(count: Int, window: Int, stride: Int, bos: Bool) -> [PerplexityWindow] {
        precondition(window > 0 && stride > 0 && stride <= window, "Perplexity.windows: need 0 < stride ≤ window")
        var out: [PerplexityWindow] = []
        var previousEnd = 0
        var start = 0
        while start < count {
            let end = min(start + window, count)
            var scored = end - previousEnd
            if !bos { scored = min(scored, end - start - 1) }  // the first token of a window has no context
            if scored > 0 { out.append(PerplexityWindow(start: start, end: end, scored: scored)) }
            previousEnd = end
            if end == count { break }
            start += stride
        }
        return out
    }

    /// Evaluates `decoder` on `tokens` under `evaluation`, running `batch` equally long windows per
    /// forward pass. `progress(done, total)` is called after each batch. Throws when the stream is too
    /// short for a single scored token, a window exceeds the model's context, or bos is asked of a
    /// tokenizer without one (`bosID` nil).
    public static func evaluate(_ decoder: Decoder, tokens allTokens: [Int32], evaluation: PerplexityProtocol,
                                bosID: Int?, batch: Int = 1,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> PerplexityResult {
        let tokens = evaluation.maxTokens.map { Array(allTokens.prefix($0)) } ?? allTokens
        let prefix: [Int32]
        if evaluation.bos {
            guard let bosID else {
                throw ModelError.perplexityWithoutBOS
            }
            prefix = [Int32(bosID)]
        } else {
            prefix = []
        }
        guard evaluation.window + prefix.count <= decoder.config.maxPositions else {
            throw ModelError.perplexityWindowTooLong(positions: evaluation.window + prefix.count, context: decoder.config.maxPositions)
        }
        let windows = windows(count: tokens.count, window: evaluation.window, stride: evaluation.stride, bos: evaluation.bos)
        guard !windows.isEmpty else {
            throw ModelError.perplexityNothingToScore(text: evaluation.textDigest, tokens: tokens.count)
        }
        var sum = 0.0, count = 0
        let started = DispatchTime.now().uptimeNanoseconds
        var i = 0
        while i < windows.count {
            // Windows of equal length share a batch (all but possibly the last have length `window`).
            let T = windows[i].end - windows[i].start + prefix.count
            var group = [windows[i]]
            while group.count < batch, i + group.count < windows.count,
                  windows[i + group.count].end - windows[i + group.count].start + prefix.count == T {
                group.append(windows[i + group.count])
            }
            var inputs: [Int32] = [], targets: [Int32] = []  // inputs, targets: (B, T)
            inputs.reserveCapacity(group.count * T)
            targets.reserveCapacity(group.count * T)
            for w in group {
                let sequence = prefix + tokens[w.start..<w.end]
                inputs += sequence
                // Position t predicts sequence[t + 1]; only the last `scored` tokens are targets.
                for t in 0..<T {
                    targets.append(t + 1 < T && t + 1 >= T - w.scored ? sequence[t + 1] : -1)
                }
            }
            let (s, n) = decoder.negativeLogLikelihood(tokens: inputs, targets: targets, B: group.count, T: T)
            sum += s
            count += n
            i += group.count
            progress(i, windows.count)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let mean = sum / Double(count)
        return PerplexityResult(perplexity: exp(mean), meanNLL: mean, tokensScored: count, windows: windows.count,
                                seconds: seconds, tokensPerSecond: Double(count) / max(seconds, 1e-9),
                                evaluation: evaluation)
    }
}
