// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11): the value at position i of a
// stream depends only on (seed, stream, i), so results are the same on any machine, for any thread
// count and any order of filling.

/// One Philox4x32-10 block: four 32-bit words from a 128-bit counter and a 64-bit key.
@inline(__always)
public func philox4x32(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
    var (c0, c1, c2, c3) = counter
    var (k0, k1) = key
    for _ in 0..<10 {
        let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
        let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
        let n0 = UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0
        let n2 = UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1
        c1 = UInt32(truncatingIfNeeded: p1)
        c3 = UInt32(truncatingIfNeeded: p0)
        c0 = n0
        c2 = n2
        k0 = k0 &+ 0x9E37_79B9
        k1 = k1 &+ 0xBB67_AE85
    }
    return (c0, c1, c2, c3)
}

/// A seeded stream of random numbers. `stream` separates independent uses of one seed
/// (e.g. one stream per parameter tensor); `position` is how many 32-bit words were drawn.
public struct RNG: Sendable {
    public let seed: UInt64
    public let stream: UInt64
    public private(set) var position: UInt64 = 0

    public init(seed: UInt64, stream: UInt64 = 0) {
        self.seed = seed
        self.stream = stream
    }

    /// The 32-bit word at `index` of this stream (pure: does not advance).
    @inline(__always)
    public func word(at index: UInt64) -> UInt32 {
        let block = philox4x32(
            counter: (UInt32(truncatingIfNeeded: index >> 2), UInt32(truncatingIfNeeded: index >> 34),
                      UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
        switch index & 3 {
        case 0: return block.0
        case 1: return block.1
        case 2: return block.2
        default: return block.3
        }
    }

    /// Next 32 random bits.
    public mutating func nextUInt32() -> UInt32 {
        defer { position &+= 1 }
        return word(at: position)
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    public mutating func nextUniform() -> Float {
        Float(nextUInt32() >> 8) * (1.0 / 16_777_216.0)
    }

    /// Uniform integer in 0..<upperBound (unbiased by rejection).
    public mutating func nextInt(below upperBound: Int) -> Int {
        precondition(upperBound > 0 && upperBound <= Int(UInt32.max), "RNG.nextInt: bound \(upperBound) out of range")
        let bound = UInt32(upperBound)
        let limit = UInt32.max - UInt32.max % bound
        while true {
            let r = nextUInt32()
            if r < limit { return Int(r % bound) }
        }
    }

    /// Standard normal (Box–Muller on two uniforms in (0, 1]).
    public mutating func nextNormal() -> Float {
        let u1 = (Float(nextUInt32() >> 8) + 1) * (1.0 / 16_777_216.0)
        let u2 = Float(nextUInt32() >> 8) * (1.0 / 16_777_216.0)
        return (-2 * logf(u1)).squareRoot() * cosf(2 * Float.pi * u2)
    }

    /// A seeded Fisher–Yates permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                p.swapAt(i, nextInt(below: i + 1))
            }
        }
        return p
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// Fills with N(mean, std²) from `rng`, element i taking words 2i and 2i+1 of the stream.
    public func fillNormal(_ rng: inout RNG, mean: Float = 0, std: Float = 1) {
        let p = data
        for i in 0..<count { p[i] = mean + std * rng.nextNormal() }
    }

    /// Fills with U[low, high) from `rng`.
    public func fillUniform(_ rng: inout RNG, low: Float = 0, high: Float = 1) {
        let p = data
        for i in 0..<count { p[i] = low + (high - low) * rng.nextUniform() }
    }

    /// A new tensor of N(mean, std²) values drawn from stream `stream` of `seed`.
    public static func randn(_ shape: [Int], seed: UInt64, stream: UInt64 = 0, mean: Float = 0, std: Float = 1) -> Tensor {
        let t = Tensor(zeros: shape)
        var rng = RNG(seed: seed, stream: stream)
        t.fillNormal(&rng, mean: mean, std: std)
        return t
    }
}
