// Rotate-half RoPE against a direct complex rotation, its inverse, and central differences.

import Foundation
import Testing
@testable import Tensor

@Suite struct RoPETests {
    let B = 2, T = 5, NH = 3, HD = 8
    let start = 4
    let theta: Float = 10_000
    var table: RopeTable { RopeTable(headDim: HD, theta: theta, maxPositions: 16) }

    /// Pair (i, i + HD/2) as the complex number x_i + i·x_{i+HD/2}, multiplied by e^{i·pos·θ^(−2i/HD)}.
    func reference(_ x: [Double], start: Int) -> [Double] {
        var out = x
        let half = HD / 2
        for b in 0..<B {
            for t in 0..<T {
                for h in 0..<NH {
                    let base = ((b * T + t) * NH + h) * HD
                    for i in 0..<half {
                        let angle = Double(start + t) * Foundation.pow(Double(theta), -2 * Double(i) / Double(HD))
                        let rotated = (x[base + i], x[base + i + half]) * (Foundation.cos(angle), Foundation.sin(angle))
                        out[base + i] = rotated.0
                        out[base + i + half] = rotated.1
                    }
                }
            }
        }
        return out
    }

    func forward(_ variant: Variant, out: Tensor, inp: Tensor, start: Int) {
        switch variant {
        case .fast: ropeForward(out: out.data, inp: inp.data, table: table, B: B, T: T, NH: NH, HD: HD, start: start)
        case .reference: ropeForwardReference(out: out.data, inp: inp.data, table: table, B: B, T: T, NH: NH, HD: HD, start: start)
        }
    }

    func backward(_ variant: Variant, dinp: Tensor, dout: Tensor, start: Int) {
        switch variant {
        case .fast: ropeBackward(dinp: dinp.data, dout: dout.data, table: table, B: B, T: T, NH: NH, HD: HD, start: start)
        case .reference:
            ropeBackwardReference(dinp: dinp.data, dout: dout.data, table: table, B: B, T: T, NH: NH, HD: HD, start: start)
        }
    }

    var count: Int { B * T * NH * HD }

    @Test(arguments: Variant.allCases) func forwardMatchesComplexRotation(variant: Variant) {
        let x = randomTensor(count, seed: 91)
        let out = zeros(count)
        forward(variant, out: out, inp: x, start: start)
        checkTensor("rope \(variant) out", out, reference(doubles(x), start: start), tolerance: 1e-6)
        // In place gives the same.
        let inPlace = x.copy()
        forward(variant, out: inPlace, inp: inPlace, start: start)
        #expect(inPlace.array == out.array)
        // Position 0 is the identity.
        let atZero = zeros(count)
        forward(variant, out: atZero, inp: x, start: 0)
        #expect(Array(atZero.array[0..<(NH * HD)]) == Array(x.array[0..<(NH * HD)]))
    }

    @Test(arguments: Variant.allCases) func backwardMatchesFiniteDifferencesAndInverts(variant: Variant) {
        let x = randomTensor(count, seed: 92), dout = randomTensor(count, seed: 93)
        let dinp = randomTensor(count, seed: 94)
        let dinp0 = dinp.array
        backward(variant, dinp: dinp, dout: dout, start: start)
        let numeric = numericGradient(at: doubles(x)) { weightedSum(reference($0, start: start), dout) }
        checkTensor("rope \(variant) dinp", added(dinp, since: dinp0), numeric, tolerance: gradientTolerance)
        // A rotation's backward is its inverse: backward(forward(x)) = x.
        let rotated = zeros(count), restored = zeros(count)
        forward(variant, out: rotated, inp: x, start: start)
        backward(variant, dinp: restored, dout: rotated, start: start)
        checkTensor("rope \(variant) inverse", restored, doubles(x), tolerance: 1e-6)
    }

    @Test func tableMatchesDoubleAnglesAtLargePositions() {
        let big = RopeTable(headDim: 64, theta: 100_000, maxPositions: 8192)
        var worst = 0.0
        for p in [1, 511, 4095, 8191] {
            for i in 0..<32 {
                let angle = Double(p) * Foundation.pow(100_000, -2 * Double(i) / 64)
                worst = max(worst, abs(Double(big.cos.data[p * 32 + i]) - Foundation.cos(angle)))
                worst = max(worst, abs(Double(big.sin.data[p * 32 + i]) - Foundation.sin(angle)))
            }
        }
        #expect(worst < 1e-6, "largest cos/sin error \(worst)")
    }
}

/// Complex product (a + ib)(c + id).
private func * (lhs: (Double, Double), rhs: (Double, Double)) -> (Double, Double) {
    (lhs.0 * rhs.0 - lhs.1 * rhs.1, lhs.0 * rhs.1 + lhs.1 * rhs.0)
}
