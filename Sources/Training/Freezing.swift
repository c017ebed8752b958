// Freezing parameters by name: glob patterns over the canonical parameter names (ModelConfig.swift)
// turned into a per-parameter trainable mask that the optimiser and the gradient clipper obey.
// This file decides WHICH parameters train; it does not touch values, gradients or moments.
//
// Pattern syntax, matched segment by segment on '/'-separated names:
//   '*'   inside a segment matches any run of characters within that segment (`layers/*/attn/w*`)
//   '**'  as a whole segment matches zero or more segments (`embed/**`, `**/lora_a`)

import Tensor
import TensorStore

/// A glob over '/'-separated parameter names, e.g. `layers/*/attn/*` or `embed/**`.
public struct NamePattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern as written.
    public let text: String
    private let segments: [Substring]

    public init(_ text: String) {
        self.text = text
        self.segments = text.split(separator: "/", omittingEmptySubsequences: false)
    }

    public var description: String { text }

    /// Whether `name` matches the whole pattern.
    public func matches(_ name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return Self.match(segments[...], parts[...])
    }

    private static func match(_ pattern: ArraySlice<Substring>, _ name: ArraySlice<Substring>) -> Bool {
        guard let head = pattern.first else { return name.isEmpty }
        if head == "**" {
            // Try every split point: '**' swallows name[..<k] for k = 0 ... name.count.
            var rest = name
            while true {
                if match(pattern.dropFirst(), rest) { return true }
                if rest.isEmpty { return false }
                rest = rest.dropFirst()
            }
        }
        guard let first = name.first, segmentMatches(Array(head.utf8), Array(first.utf8)) else { return false }
        return match(pattern.dropFirst(), name.dropFirst())
    }

    /// Wildcard match inside one segment ('*' = any run of bytes), iterative with one backtrack point.
    private static func segmentMatches(_ p: [UInt8], _ s: [UInt8]) -> Bool {
        let star = UInt8(ascii: "*")
        var pi = 0, si = 0
        var starAt = -1, resumeAt = 0
        while si < s.count {
            if pi < p.count, p[pi] == star {
                starAt = pi; resumeAt = si; pi += 1
            } else if pi < p.count, p[pi] == s[si] {
                pi += 1; si += 1
            } else if starAt >= 0 {
                pi = starAt + 1; resumeAt += 1; si = resumeAt
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == star { pi += 1 }
        return pi == p.count
    }
}

/// Which parameters of one or more parameter sets are trainable: `flags[s][i]` for parameter i of set s.
public struct TrainableMask: Sendable, Equatable {
    /// Per set, per parameter (layout order): true = trainable.
    public var flags: [[Bool]]

    /// Everything trainable.
    public init(allOf sets: [ParameterSet]) {
        flags = sets.map { Array(repeating: true, count: $0.specs.count) }
    }

    /// Everything trainable except parameters matching any of `freeze`.
    /// Throws `unknownParameterPattern` for a pattern that matches no parameter in any set, since a
    /// typo would otherwise silently train what the user meant to freeze.
    public init(sets: [ParameterSet], freeze: [String]) throws(TrainingError) {
        self.init(allOf: sets)
        for text in freeze {
            let pattern = NamePattern(text)
            var matched = false
            for (s, set) in sets.enumerated() {
                for (i, spec) in set.specs.enumerated() where pattern.matches(spec.name) {
                    flags[s][i] = false
                    matched = true
                }
            }
            if !matched {
                throw .unknownParameterPattern(pattern: text, closest: Spelling.nearest(to: text, in: sets.flatMap(\.names)))
            }
        }
    }

    /// Number of trainable scalars across `sets` (the sets this mask was built for).
    public func trainableCount(_ sets: [ParameterSet]) -> Int {
        var n = 0
        for (s, set) in sets.enumerated() {
            for (i, spec) in set.specs.enumerated() where flags[s][i] { n += spec.count }
        }
        return n
    }
}
