// Rotary position embedding, rotate-half convention (Hugging Face LLaMA): within each head, channel i
// and channel i + HD/2 (i < HD/2) form a pair rotated by angle pos · theta^(−2i/HD).
// Not the adjacent-pair (GGUF/Meta) convention: checkpoint import un-permutes Q and K rows instead.

import Foundation

/// cos and sin of every (position, pair) angle, computed once in Double.
public struct RopeTable: Sendable {
    /// Head dimension HD (even).
    public let headDim: Int
    /// Base of the frequencies (LLaMA 1e4, SmolLM2 1e5).
    public let theta: Float
    /// Positions 0..<maxPositions are covered.
    public let maxPositions: Int
    /// cos: (maxPositions, HD/2)
    public let cos: Tensor
    /// sin: (maxPositions, HD/2)
    public let sin: Tensor

    public init(headDim: Int, theta: Float, maxPositions: Int) {
        precondition(headDim > 0 && headDim % 2 == 0, "RopeTable: head dimension must be even and positive, got \(headDim)")
        precondition(maxPositions >= 0, "RopeTable: negative maxPositions \(maxPositions)")
        self.headDim = headDim
        self.theta = theta
        self.maxPositions = maxPositions
        let half = headDim / 2
        cos = Tensor(zeros: [maxPositions, half])
        sin = Tensor(zeros: [maxPositions, half])
        for i in 0..<half {
            // Double angles: pos · freq reaches ~1e4 radians, where float32 keeps only ~1e-3 of phase.
            let freq = Foundation.pow(Double(theta), -2 * Double(i) / Double(headDim))
            for p in 0..<maxPositions {
                let angle = Double(p) * freq
                cos.data[p * half + i] = Float(Foundation.cos(angle))
                sin.data[p * half + i] = Float(Foundation.sin(angle))
            }
        }
    }
}

/// Rotates every head of every token; out may alias inp.
/// - out, inp: (B, T, NH, HD)
/// - positions start..<start+T (must be < table.maxPositions)
public func ropeForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, table: RopeTable,
                        B: Int, T: Int, NH: Int, HD: Int, start: Int) {
    ropeApply(out: out, inp: inp, table: table, B: B, T: T, NH: NH, HD: HD, start: start, inverse: false, accumulate: false)
}

/// dinp += rotation⁻¹(dout) (the transpose of the forward rotation).
/// - dinp, dout: (B, T, NH, HD)
public func ropeBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, table: RopeTable,
                         B: Int, T: Int, NH: Int, HD: Int, start: Int) {
    ropeApply(out: dinp, inp: dout, table: table, B: B, T: T, NH: NH, HD: HD, start: start, inverse: true, accumulate: true)
}

/// The rotation (or its inverse, sin negated), written or added into `out`; (b, t) rows in parallel.
@inline(__always)
func ropeApply(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, table: RopeTable,
               B: Int, T: Int, NH: Int, HD: Int, start: Int, inverse: Bool, accumulate: Bool) {
    ropeCheck(table, HD: HD, T: T, start: start, inverse ? "ropeBackward" : "ropeForward")
    let half = HD / 2
    let cosTable = UnsafePointer(table.cos.data), sinTable = UnsafePointer(table.sin.data)
    Threading.parallelFor(B * T, minChunk: max(1, parallelGrain / max(NH * HD, 1))) { rows in
        for row in rows {
            let position = start + row % T
            let c = cosTable + position * half, s = sinTable + position * half
            for h in 0..<NH {
                let x = inp + (row * NH + h) * HD, y = out + (row * NH + h) * HD
                vectorLoop(0..<half) { i, count in
                    let cv = load16(c + i, count), sv = inverse ? -load16(s + i, count) : load16(s + i, count)
                    let x1 = load16(x + i, count), x2 = load16(x + half + i, count)
                    var y1 = x1 * cv - x2 * sv, y2 = x2 * cv + x1 * sv
                    if accumulate {
                        y1 += load16(y + i, count)
                        y2 += load16(y + half + i, count)
                    }
                    store16(y1, y + i, count)
                    store16(y2, y + half + i, count)
                }
            }
        }
    }
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

@inline(__always)
func ropeCheck(_ table: RopeTable, HD: Int, T: Int, start: Int, _ op: String) {
    precondition(table.headDim == HD, "\(op): table is for head dim \(table.headDim), got HD = \(HD)")
    precondition(start >= 0 && start + T <= table.maxPositions,
                 "\(op): positions \(start)..<\(start + T) exceed the table's \(table.maxPositions)")
}

/// Plain-loop `ropeForward`.
public func ropeForwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, table: RopeTable,
                                 B: Int, T: Int, NH: Int, HD: Int, start: Int) {
    ropeCheck(table, HD: HD, T: T, start: start, "ropeForward")
    let half = HD / 2
    for b in 0..<B {
        for t in 0..<T {
            let c = table.cos.data + (start + t) * half, s = table.sin.data + (start + t) * half
            for h in 0..<NH {
                let base = ((b * T + t) * NH + h) * HD
                for i in 0..<half {
                    let x1 = inp[base + i], x2 = inp[base + i + half]
                    out[base + i] = x1 * c[i] - x2 * s[i]
                    out[base + i + half] = x2 * c[i] + x1 * s[i]
                }
            }
        }
    }
}

/// Plain-loop `ropeBackward`.
public func ropeBackwardReference(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, table: RopeTable,
                                  B: Int, T: Int, NH: Int, HD: Int, start: Int) {
    ropeCheck(table, HD: HD, T: T, start: start, "ropeBackward")
    let half = HD / 2
    for b in 0..<B {
        for t in 0..<T {
            let c = table.cos.data + (start + t) * half, s = table.sin.data + (start + t) * half
            for h in 0..<NH {
                let base = ((b * T + t) * NH + h) * HD
                for i in 0..<half {
                    let g1 = dout[base + i], g2 = dout[base + i + half]
                    dinp[base + i] += g1 * c[i] + g2 * s[i]
                    dinp[base + i + half] += g2 * c[i] - g1 * s[i]
                }
            }
        }
    }
}
