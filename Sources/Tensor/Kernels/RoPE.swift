// Rotary position embedding, rotate-half convention (Hugging Face LLaMA): within each head, channel i
// and channel i + HD/2 (i < HD/2) form a pair rotated by angle pos · theta^(−2i/HD).
// Not the adjacent-pair (GGUF/Meta) convention: checkpoint import un-permutes Q and K rows instead.
//
// Shapes (legend in Tensor.swift): B batch, T tokens, NH heads, HD head dim. The public kernels are the
// fast ones; each has a plain-loop `…Reference` twin at the bottom of the file that the tests hold it to.

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
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    ropeApply(out: out, inp: inp, table: table, B: B, T: T, NH: NH, HD: HD, start: start, backward: false)
}

/// dinp += rotation⁻¹(dout) (the transpose of the forward rotation).
/// - dinp, dout: (B, T, NH, HD)
public func ropeBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, table: RopeTable,
                         B: Int, T: Int, NH: Int, HD: Int, start: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    ropeApply(out: dinp, inp: dout, table: table, B: B, T: T, NH: NH, HD: HD, start: start, backward: true)
}

/// The forward rotation written into `out`, or (backward) the inverse rotation added into it;
/// (b, t) rows in parallel.
@inline(__always)
func ropeApply(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, table: RopeTable,
               B: Int, T: Int, NH: Int, HD: Int, start: Int, backward: Bool) {
    ropeCheck(table, HD: HD, T: T, start: start, backward ? "ropeBackward" : "ropeForward")
    let half = HD / 2
    let cosTable = UnsafePointer(table.cos.data), sinTable = UnsafePointer(table.sin.data)
    Threading.parallelFor(B * T, minChunk: max(1, parallelGrain / max(NH * HD, 1))) { rows in
        for row in rows {
            let position = start + row % T
            let c = cosTable + position * half, s = sinTable + position * half
            for h in 0..<NH {
                let x = inp + (row * NH + h) * HD, y = out + (row * NH + h) * HD
                // Plain loops, one per case so no flag is tested inside: they vectorise on their own and
                // measured faster than SIMD16 at HD/2 = 32.
                if backward {
                    // The inverse rotation (sin negated), added.
                    for i in 0..<half {
                        let x1 = x[i], x2 = x[half + i]
                        y[i] += x1 * c[i] + x2 * s[i]
                        y[half + i] += x2 * c[i] - x1 * s[i]
                    }
                } else {
                    for i in 0..<half {
                        let x1 = x[i], x2 = x[half + i]
                        y[i] = x1 * c[i] - x2 * s[i]
                        y[half + i] = x2 * c[i] + x1 * s[i]
                    }
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
