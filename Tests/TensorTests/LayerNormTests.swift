// LayerNorm kernels against a Double reference and central differences (D ≠ C as in a pruned model).

import Testing
@testable import Tensor

@Suite struct LayerNormTests {
    let N = 4, C = 29, D = 32
    let eps: Float = 1e-5

    /// Independent Double LayerNorm with divisor D for both moments.
    func reference(_ x: [Double], _ w: [Double], _ b: [Double], N: Int, C: Int, D: Int) -> [Double] {
        var out = [Double](repeating: 0, count: N * C)
        for n in 0..<N {
            let row = Array(x[(n * C)..<(n * C + C)])
            let mean = row.reduce(0, +) / Double(D)
            let variance = row.reduce(0) { $0 + $1 * $1 } / Double(D) - mean * mean
            let r = 1 / (variance + Double(eps)).squareRoot()
            for i in 0..<C { out[n * C + i] = (row[i] - mean) * r * w[i] + b[i] }
        }
        return out
    }

    func forward(_ variant: Variant, out: Tensor, mean: Tensor, rstd: Tensor, x: Tensor, w: Tensor, b: Tensor,
                 N: Int, C: Int, D: Int) {
        switch variant {
        case .fast:
            layernormForward(out: out.data, mean: mean.data, rstd: rstd.data, inp: x.data, weight: w.data, bias: b.data,
                             N: N, C: C, D: D, eps: eps)
        case .reference:
            layernormForwardReference(out: out.data, mean: mean.data, rstd: rstd.data, inp: x.data, weight: w.data,
                                      bias: b.data, N: N, C: C, D: D, eps: eps)
        }
    }

    func backward(_ variant: Variant, dinp: Tensor, dweight: Tensor?, dbias: Tensor?, dout: Tensor, x: Tensor, w: Tensor,
                  mean: Tensor, rstd: Tensor, N: Int, C: Int, D: Int) {
        switch variant {
        case .fast:
            layernormBackward(dinp: dinp.data, dweight: dweight?.data, dbias: dbias?.data, dout: dout.data, inp: x.data,
                              weight: w.data, mean: mean.data, rstd: rstd.data, N: N, C: C, D: D)
        case .reference:
            layernormBackwardReference(dinp: dinp.data, dweight: dweight?.data, dbias: dbias?.data, dout: dout.data,
                                       inp: x.data, weight: w.data, mean: mean.data, rstd: rstd.data, N: N, C: C, D: D)
        }
    }

    @Test(arguments: Variant.allCases) func forwardMatchesDouble(variant: Variant) {
        // An offset mean checks that the mean is subtracted, not only the scale.
        let x = Tensor(shape: [N * C], values: randomTensor(N * C, seed: 11, scale: 2).array.map { $0 + 3 })
        let w = randomTensor(C, seed: 12), b = randomTensor(C, seed: 13)
        let out = zeros(N * C), mean = zeros(N), rstd = zeros(N)
        forward(variant, out: out, mean: mean, rstd: rstd, x: x, w: w, b: b, N: N, C: C, D: D)
        checkTensor("layernorm \(variant) out", out, reference(doubles(x), doubles(w), doubles(b), N: N, C: C, D: D),
                    tolerance: 1e-5)
    }

    @Test(arguments: Variant.allCases) func backwardMatchesFiniteDifferences(variant: Variant) {
        let x = randomTensor(N * C, seed: 14), w = randomTensor(C, seed: 15), b = randomTensor(C, seed: 16)
        let dout = randomTensor(N * C, seed: 17)
        let out = zeros(N * C), mean = zeros(N), rstd = zeros(N)
        forward(variant, out: out, mean: mean, rstd: rstd, x: x, w: w, b: b, N: N, C: C, D: D)
        let dinp = randomTensor(N * C, seed: 18), dweight = randomTensor(C, seed: 19), dbias = randomTensor(C, seed: 20)
        let dinp0 = dinp.array, dweight0 = dweight.array, dbias0 = dbias.array
        backward(variant, dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, x: x, w: w, mean: mean, rstd: rstd,
                 N: N, C: C, D: D)

        let xd = doubles(x), wd = doubles(w), bd = doubles(b)
        let numDinp = numericGradient(at: xd) { weightedSum(reference($0, wd, bd, N: N, C: C, D: D), dout) }
        let numDweight = numericGradient(at: wd) { weightedSum(reference(xd, $0, bd, N: N, C: C, D: D), dout) }
        let numDbias = numericGradient(at: bd) { weightedSum(reference(xd, wd, $0, N: N, C: C, D: D), dout) }
        checkTensor("layernorm \(variant) dinp", added(dinp, since: dinp0), numDinp, tolerance: gradientTolerance)
        checkTensor("layernorm \(variant) dweight", added(dweight, since: dweight0), numDweight, tolerance: gradientTolerance)
        checkTensor("layernorm \(variant) dbias", added(dbias, since: dbias0), numDbias, tolerance: gradientTolerance)

        let dinpOnly = tensor(dinp0)
        backward(variant, dinp: dinpOnly, dweight: nil, dbias: nil, dout: dout, x: x, w: w, mean: mean, rstd: rstd,
                 N: N, C: C, D: D)
        #expect(dinpOnly.array == dinp.array)
    }

    @Test func fastMatchesReferenceOnWideRows() {
        let n = 6, c = 771
        let x = randomTensor(n * c, seed: 21, scale: 3), w = randomTensor(c, seed: 22), b = randomTensor(c, seed: 23)
        let dout = randomTensor(n * c, seed: 24)
        let outF = zeros(n * c), meanF = zeros(n), rstdF = zeros(n)
        let outR = zeros(n * c), meanR = zeros(n), rstdR = zeros(n)
        forward(.fast, out: outF, mean: meanF, rstd: rstdF, x: x, w: w, b: b, N: n, C: c, D: c)
        forward(.reference, out: outR, mean: meanR, rstd: rstdR, x: x, w: w, b: b, N: n, C: c, D: c)
        checkTensor("layernorm wide out", outF, outR, tolerance: 1e-5)
        checkTensor("layernorm wide mean", meanF, meanR, tolerance: 1e-5)
        checkTensor("layernorm wide rstd", rstdF, rstdR, tolerance: 1e-5)
        let dinpF = zeros(n * c), dweightF = zeros(c), dbiasF = zeros(c)
        let dinpR = zeros(n * c), dweightR = zeros(c), dbiasR = zeros(c)
        backward(.fast, dinp: dinpF, dweight: dweightF, dbias: dbiasF, dout: dout, x: x, w: w, mean: meanR, rstd: rstdR,
                 N: n, C: c, D: c)
        backward(.reference, dinp: dinpR, dweight: dweightR, dbias: dbiasR, dout: dout, x: x, w: w, mean: meanR,
                 rstd: rstdR, N: n, C: c, D: c)
        checkTensor("layernorm wide dinp", dinpF, dinpR, tolerance: 1e-5)
        checkTensor("layernorm wide dweight", dweightF, dweightR, tolerance: 1e-5)
        checkTensor("layernorm wide dbias", dbiasF, dbiasR, tolerance: 1e-5)
    }
}
