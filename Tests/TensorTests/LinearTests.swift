// Linear layer (sgemm) against a Double reference, central differences, and the plain-loop version.

import Testing
@testable import Tensor

@Suite struct LinearTests {
    let N = 6, IN = 13, OUT = 9

    func reference(_ x: [Double], _ w: [Double], _ b: [Double]?) -> [Double] {
        var out = [Double](repeating: 0, count: N * OUT)
        for n in 0..<N {
            for o in 0..<OUT {
                var acc = b?[o] ?? 0
                for i in 0..<IN { acc += x[n * IN + i] * w[o * IN + i] }
                out[n * OUT + o] = acc
            }
        }
        return out
    }

    func forward(_ variant: Variant, out: Tensor, x: Tensor, w: Tensor, b: Tensor?) {
        switch variant {
        case .fast: linearForward(out: out.data, inp: x.data, weight: w.data, bias: b?.data, N: N, IN: IN, OUT: OUT)
        case .reference: linearForwardReference(out: out.data, inp: x.data, weight: w.data, bias: b?.data, N: N, IN: IN, OUT: OUT)
        }
    }

    func backward(_ variant: Variant, dinp: Tensor?, dweight: Tensor?, dbias: Tensor?, dout: Tensor, x: Tensor, w: Tensor) {
        switch variant {
        case .fast:
            linearBackward(dinp: dinp?.data, dweight: dweight?.data, dbias: dbias?.data, dout: dout.data, inp: x.data,
                           weight: w.data, N: N, IN: IN, OUT: OUT)
        case .reference:
            linearBackwardReference(dinp: dinp?.data, dweight: dweight?.data, dbias: dbias?.data, dout: dout.data,
                                    inp: x.data, weight: w.data, N: N, IN: IN, OUT: OUT)
        }
    }

    @Test(arguments: Variant.allCases, [true, false]) func forwardMatchesDouble(variant: Variant, withBias: Bool) {
        let x = randomTensor(N * IN, seed: 71), w = randomTensor(OUT * IN, seed: 72), b = randomTensor(OUT, seed: 73)
        let out = randomTensor(N * OUT, seed: 74)  // overwritten, whatever it held
        forward(variant, out: out, x: x, w: w, b: withBias ? b : nil)
        checkTensor("linear \(variant) out (bias \(withBias))", out,
                    reference(doubles(x), doubles(w), withBias ? doubles(b) : nil), tolerance: forwardTolerance)
    }

    @Test(arguments: Variant.allCases) func backwardMatchesFiniteDifferences(variant: Variant) {
        let x = randomTensor(N * IN, seed: 75), w = randomTensor(OUT * IN, seed: 76), b = randomTensor(OUT, seed: 77)
        let dout = randomTensor(N * OUT, seed: 78)
        let dinp = randomTensor(N * IN, seed: 79), dweight = randomTensor(OUT * IN, seed: 80), dbias = randomTensor(OUT, seed: 81)
        let dinp0 = dinp.array, dweight0 = dweight.array, dbias0 = dbias.array
        backward(variant, dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, x: x, w: w)
        let xd = doubles(x), wd = doubles(w), bd = doubles(b)
        checkTensor("linear \(variant) dinp", added(dinp, since: dinp0),
                    numericGradient(at: xd) { weightedSum(reference($0, wd, bd), dout) }, tolerance: gradientTolerance)
        checkTensor("linear \(variant) dweight", added(dweight, since: dweight0),
                    numericGradient(at: wd) { weightedSum(reference(xd, $0, bd), dout) }, tolerance: gradientTolerance)
        checkTensor("linear \(variant) dbias", added(dbias, since: dbias0),
                    numericGradient(at: bd) { weightedSum(reference(xd, wd, $0), dout) }, tolerance: gradientTolerance)

        // Each gradient alone equals the same gradient computed with the others.
        let dinpOnly = tensor(dinp0), dweightOnly = tensor(dweight0), dbiasOnly = tensor(dbias0)
        backward(variant, dinp: dinpOnly, dweight: nil, dbias: nil, dout: dout, x: x, w: w)
        backward(variant, dinp: nil, dweight: dweightOnly, dbias: nil, dout: dout, x: x, w: w)
        backward(variant, dinp: nil, dweight: nil, dbias: dbiasOnly, dout: dout, x: x, w: w)
        #expect(dinpOnly.array == dinp.array)
        #expect(dweightOnly.array == dweight.array)
        #expect(dbiasOnly.array == dbias.array)
    }
}
