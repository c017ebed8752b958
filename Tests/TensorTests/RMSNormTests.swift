// RMSNorm kernels against a Double reference and central differences (D ≠ C as in a pruned model).

import Testing
@testable import Tensor

@Suite struct RMSNormTests {
    let N = 5, C = 37, D = 40
    let eps: Float = 1e-5

    /// Independent Double RMSNorm: out = x / sqrt(Σx² / D + eps) · w.
    func reference(_ x: [Double], _ w: [Double], N: Int, C: Int, D: Int) -> [Double] {
        var out = [Double](repeating: 0, count: N * C)
        for n in 0..<N {
            let meanSquare = x[(n * C)..<(n * C + C)].reduce(0) { $0 + $1 * $1 } / Double(D)
            let r = 1 / (meanSquare + Double(eps)).squareRoot()
            for i in 0..<C { out[n * C + i] = x[n * C + i] * r * w[i] }
        }
        return out
    }

    func forward(_ variant: Variant, out: Tensor, rstd: Tensor, x: Tensor, w: Tensor, N: Int, C: Int, D: Int) {
        switch variant {
        case .fast: rmsnormForward(out: out.data, rstd: rstd.data, inp: x.data, weight: w.data, N: N, C: C, D: D, eps: eps)
        case .reference:
            rmsnormForwardReference(out: out.data, rstd: rstd.data, inp: x.data, weight: w.data, N: N, C: C, D: D, eps: eps)
        }
    }

    func backward(_ variant: Variant, dinp: Tensor, dweight: Tensor?, dout: Tensor, x: Tensor, w: Tensor, rstd: Tensor,
                  N: Int, C: Int, D: Int) {
        switch variant {
        case .fast:
            rmsnormBackward(dinp: dinp.data, dweight: dweight?.data, dout: dout.data, inp: x.data, weight: w.data,
                            rstd: rstd.data, N: N, C: C, D: D)
        case .reference:
            rmsnormBackwardReference(dinp: dinp.data, dweight: dweight?.data, dout: dout.data, inp: x.data, weight: w.data,
                                     rstd: rstd.data, N: N, C: C, D: D)
        }
    }

    @Test(arguments: Variant.allCases) func forwardMatchesDouble(variant: Variant) {
        let x = randomTensor(N * C, seed: 1, scale: 2), w = randomTensor(C, seed: 2)
        let out = zeros(N * C), rstd = zeros(N)
        forward(variant, out: out, rstd: rstd, x: x, w: w, N: N, C: C, D: D)
        checkTensor("rmsnorm \(variant) out", out, reference(doubles(x), doubles(w), N: N, C: C, D: D),
                    tolerance: forwardTolerance)
    }

    @Test(arguments: Variant.allCases) func backwardMatchesFiniteDifferences(variant: Variant) {
        let x = randomTensor(N * C, seed: 3), w = randomTensor(C, seed: 4), dout = randomTensor(N * C, seed: 5)
        let out = zeros(N * C), rstd = zeros(N)
        forward(variant, out: out, rstd: rstd, x: x, w: w, N: N, C: C, D: D)
        // Gradients start non-zero: the backward must add to them.
        let dinp = randomTensor(N * C, seed: 6), dweight = randomTensor(C, seed: 7)
        let dinp0 = dinp.array, dweight0 = dweight.array
        backward(variant, dinp: dinp, dweight: dweight, dout: dout, x: x, w: w, rstd: rstd, N: N, C: C, D: D)

        let xd = doubles(x), wd = doubles(w)
        let numDinp = numericGradient(at: xd) { weightedSum(reference($0, wd, N: N, C: C, D: D), dout) }
        let numDweight = numericGradient(at: wd) { weightedSum(reference(xd, $0, N: N, C: C, D: D), dout) }
        checkTensor("rmsnorm \(variant) dinp", added(dinp, since: dinp0), numDinp, tolerance: gradientTolerance)
        checkTensor("rmsnorm \(variant) dweight", added(dweight, since: dweight0), numDweight, tolerance: gradientTolerance)

        // Without dweight the input gradient is the same.
        let dinpOnly = tensor(dinp0)
        backward(variant, dinp: dinpOnly, dweight: nil, dout: dout, x: x, w: w, rstd: rstd, N: N, C: C, D: D)
        #expect(dinpOnly.array == dinp.array)
    }

    /// Rows wider than and not a multiple of the SIMD width, as in SmolLM2 (C = 576) plus a tail.
    @Test func fastMatchesReferenceOnWideRows() {
        let n = 7, c = 583
        let x = randomTensor(n * c, seed: 8, scale: 3), w = randomTensor(c, seed: 9), dout = randomTensor(n * c, seed: 10)
        let outF = zeros(n * c), rstdF = zeros(n), outR = zeros(n * c), rstdR = zeros(n)
        forward(.fast, out: outF, rstd: rstdF, x: x, w: w, N: n, C: c, D: c)
        forward(.reference, out: outR, rstd: rstdR, x: x, w: w, N: n, C: c, D: c)
        checkTensor("rmsnorm wide out", outF, outR, tolerance: 1e-5)
        checkTensor("rmsnorm wide rstd", rstdF, rstdR, tolerance: 1e-5)
        let dinpF = zeros(n * c), dweightF = zeros(c), dinpR = zeros(n * c), dweightR = zeros(c)
        backward(.fast, dinp: dinpF, dweight: dweightF, dout: dout, x: x, w: w, rstd: rstdR, N: n, C: c, D: c)
        backward(.reference, dinp: dinpR, dweight: dweightR, dout: dout, x: x, w: w, rstd: rstdR, N: n, C: c, D: c)
        checkTensor("rmsnorm wide dinp", dinpF, dinpR, tolerance: 1e-5)
        checkTensor("rmsnorm wide dweight", dweightF, dweightR, tolerance: 1e-5)
    }
}
