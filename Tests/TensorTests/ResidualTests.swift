// Residual add, its backward, and the in-place helpers.

import Testing
@testable import Tensor

@Suite struct ResidualTests {
    let n = 1_003

    @Test(arguments: Variant.allCases) func forwardAddsAndMayAlias(variant: Variant) {
        let a = randomTensor(n, seed: 51), b = randomTensor(n, seed: 52)
        // Float sums: one rounding, so the result must be exact.
        let expected = zip(a.array, b.array).map { Double($0 + $1) }
        func forward(out: Tensor, inp1: Tensor) {
            switch variant {
            case .fast: residualForward(out: out.data, inp1: inp1.data, inp2: b.data, N: n)
            case .reference: residualForwardReference(out: out.data, inp1: inp1.data, inp2: b.data, N: n)
            }
        }
        let out = zeros(n)
        forward(out: out, inp1: a)
        checkTensor("residual \(variant) out", out, expected, tolerance: 0)
        // out aliasing inp1 (the residual stream updated in place).
        let stream = a.copy()
        forward(out: stream, inp1: stream)
        checkTensor("residual \(variant) in place", stream, expected, tolerance: 0)
    }

    @Test(arguments: Variant.allCases) func backwardAccumulatesIntoBoth(variant: Variant) {
        let dout = randomTensor(n, seed: 53), d1 = randomTensor(n, seed: 54), d2 = randomTensor(n, seed: 55)
        let d10 = d1.array, d20 = d2.array
        switch variant {
        case .fast: residualBackward(dinp1: d1.data, dinp2: d2.data, dout: dout.data, N: n)
        case .reference: residualBackwardReference(dinp1: d1.data, dinp2: d2.data, dout: dout.data, N: n)
        }
        // The sum is linear, so its finite-difference gradient is dout exactly: compare with dout.
        checkTensor("residual \(variant) dinp1", added(d1, since: d10), doubles(dout), tolerance: 1e-6)
        checkTensor("residual \(variant) dinp2", added(d2, since: d20), doubles(dout), tolerance: 1e-6)
    }

    @Test func addAndScaleInPlace() {
        let a = randomTensor(n, seed: 56), b = randomTensor(n, seed: 57)
        let out = a.copy()
        addInPlace(out: out.data, inp: b.data, N: n)
        let sums = zip(a.array, b.array).map { $0 + $1 }
        checkTensor("addInPlace", out, sums.map(Double.init), tolerance: 0)
        scaleInPlace(out: out.data, scale: -0.5, N: n)
        checkTensor("scaleInPlace", out, sums.map { Double($0 * -0.5) }, tolerance: 0)
    }
}
