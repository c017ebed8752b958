// Residual add, its backward, and the in-place helpers; the residual connection through a matrix
// (SliceGPT's shortcut) against a Double reference and central differences.

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

    // MARK: - Through a matrix

    let rows = 5, width = 7

    /// out = inp1·Wᵀ + inp2 in Double.
    func matrixReference(_ x: [Double], _ w: [Double], _ branch: [Double]) -> [Double] {
        (0..<(rows * width)).map { k in
            let n = k / width, o = k % width
            return branch[k] + (0..<width).reduce(0) { $0 + x[n * width + $1] * w[o * width + $1] }
        }
    }

    @Test(arguments: Variant.allCases) func matrixForwardMatchesDoubleAndMayAccumulateIntoTheBranch(variant: Variant) {
        let x = randomTensor(rows * width, seed: 61), w = randomTensor(width * width, seed: 62), branch = randomTensor(rows * width, seed: 63)
        let expected = matrixReference(doubles(x), doubles(w), doubles(branch))
        let out = randomTensor(rows * width, seed: 64)  // overwritten, whatever it held
        switch variant {
        case .fast: residualMatrixForward(out: out.data, inp1: x.data, weight: w.data, inp2: branch.data, N: rows, C: width)
        case .reference: residualMatrixForwardReference(out: out.data, inp1: x.data, weight: w.data, inp2: branch.data, N: rows, C: width)
        }
        checkTensor("residual matrix \(variant) out", out, expected, tolerance: forwardTolerance)
        if variant == .fast {
            // out = inp2: how the decoder adds the shortcut to the block's output in place.
            residualMatrixForward(out: branch.data, inp1: x.data, weight: w.data, inp2: branch.data, N: rows, C: width)
            checkTensor("residual matrix into the branch", branch, expected, tolerance: forwardTolerance)
        }
    }

    @Test(arguments: Variant.allCases) func matrixBackwardMatchesFiniteDifferences(variant: Variant) {
        let x = randomTensor(rows * width, seed: 65), w = randomTensor(width * width, seed: 66), branch = randomTensor(rows * width, seed: 67)
        let dout = randomTensor(rows * width, seed: 68)
        let dx = randomTensor(rows * width, seed: 69), dw = randomTensor(width * width, seed: 70), dbranch = randomTensor(rows * width, seed: 71)
        let dx0 = dx.array, dw0 = dw.array, dbranch0 = dbranch.array
        switch variant {
        case .fast:
            residualMatrixBackward(dinp1: dx.data, dweight: dw.data, dinp2: dbranch.data, dout: dout.data, inp1: x.data, weight: w.data, N: rows, C: width)
        case .reference:
            residualMatrixBackwardReference(dinp1: dx.data, dweight: dw.data, dinp2: dbranch.data, dout: dout.data, inp1: x.data,
                                            weight: w.data, N: rows, C: width)
        }
        let xd = doubles(x), wd = doubles(w), bd = doubles(branch)
        checkTensor("residual matrix \(variant) dinp1", added(dx, since: dx0),
                    numericGradient(at: xd) { weightedSum(matrixReference($0, wd, bd), dout) }, tolerance: gradientTolerance)
        checkTensor("residual matrix \(variant) dweight", added(dw, since: dw0),
                    numericGradient(at: wd) { weightedSum(matrixReference(xd, $0, bd), dout) }, tolerance: gradientTolerance)
        checkTensor("residual matrix \(variant) dinp2", added(dbranch, since: dbranch0),
                    numericGradient(at: bd) { weightedSum(matrixReference(xd, wd, $0), dout) }, tolerance: gradientTolerance)
    }
}
