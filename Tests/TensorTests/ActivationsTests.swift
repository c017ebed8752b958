// SiLU, GELU (tanh), ReLU and SwiGLU kernels against Double formulas and central differences.

import Foundation
import Testing
@testable import Tensor

@Suite struct ActivationsTests {
    enum Op: String, CaseIterable, Sendable { case silu, gelu, relu }

    static func reference(_ op: Op, _ x: Double) -> Double {
        switch op {
        case .silu: return x / (1 + Foundation.exp(-x))
        case .gelu: return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .relu: return max(x, 0)
        }
    }

    func forward(_ op: Op, _ variant: Variant, out: Tensor, inp: Tensor) {
        let n = inp.count
        switch (op, variant) {
        case (.silu, .fast): siluForward(out: out.data, inp: inp.data, N: n)
        case (.silu, .reference): siluForwardReference(out: out.data, inp: inp.data, N: n)
        case (.gelu, .fast): geluForward(out: out.data, inp: inp.data, N: n)
        case (.gelu, .reference): geluForwardReference(out: out.data, inp: inp.data, N: n)
        case (.relu, .fast): reluForward(out: out.data, inp: inp.data, N: n)
        case (.relu, .reference): reluForwardReference(out: out.data, inp: inp.data, N: n)
        }
    }

    func backward(_ op: Op, _ variant: Variant, dinp: Tensor, dout: Tensor, inp: Tensor) {
        let n = inp.count
        switch (op, variant) {
        case (.silu, .fast): siluBackward(dinp: dinp.data, dout: dout.data, inp: inp.data, N: n)
        case (.silu, .reference): siluBackwardReference(dinp: dinp.data, dout: dout.data, inp: inp.data, N: n)
        case (.gelu, .fast): geluBackward(dinp: dinp.data, dout: dout.data, inp: inp.data, N: n)
        case (.gelu, .reference): geluBackwardReference(dinp: dinp.data, dout: dout.data, inp: inp.data, N: n)
        case (.relu, .fast): reluBackward(dinp: dinp.data, dout: dout.data, inp: inp.data, N: n)
        case (.relu, .reference): reluBackwardReference(dinp: dinp.data, dout: dout.data, inp: inp.data, N: n)
        }
    }

    /// Inputs spanning the interesting range, kept 0.01 away from ReLU's kink so differences are smooth.
    func inputs(_ n: Int, seed: UInt64) -> Tensor {
        tensor(randomTensor(n, seed: seed, scale: 3).array.map { $0 + ($0 < 0 ? -0.01 : 0.01) })
    }

    /// Extremes where exp overflows or underflows and tanh saturates.
    let extremes = tensor([-1000, -100, -88, -30, -9, 9, 30, 88, 100, 1000])

    @Test(arguments: Op.allCases, Variant.allCases) func forwardMatchesDouble(op: Op, variant: Variant) {
        let x = inputs(203, seed: 31)
        let out = zeros(x.count)
        forward(op, variant, out: out, inp: x)
        checkTensor("\(op) \(variant) out", out, doubles(x).map { Self.reference(op, $0) }, tolerance: 1e-6)
        // In place: out aliases inp.
        let inPlace = x.copy()
        forward(op, variant, out: inPlace, inp: inPlace)
        #expect(inPlace.array == out.array)
        let outExtremes = zeros(extremes.count)
        forward(op, variant, out: outExtremes, inp: extremes)
        checkTensor("\(op) \(variant) extremes", outExtremes, doubles(extremes).map { Self.reference(op, $0) },
                    tolerance: 1e-6)
        let dinpExtremes = zeros(extremes.count)
        backward(op, variant, dinp: dinpExtremes, dout: tensor(Array(repeating: 1, count: extremes.count)), inp: extremes)
        #expect(dinpExtremes.array.allSatisfy { $0.isFinite }, "\(op) \(variant): gradient at extremes \(dinpExtremes.array)")
    }

    @Test(arguments: Op.allCases, Variant.allCases) func backwardMatchesFiniteDifferences(op: Op, variant: Variant) {
        let x = inputs(97, seed: 32), dout = randomTensor(x.count, seed: 33)
        let dinp = randomTensor(x.count, seed: 34)
        let dinp0 = dinp.array
        backward(op, variant, dinp: dinp, dout: dout, inp: x)
        let numeric = numericGradient(at: doubles(x)) { xs in weightedSum(xs.map { Self.reference(op, $0) }, dout) }
        checkTensor("\(op) \(variant) dinp", added(dinp, since: dinp0), numeric, tolerance: gradientTolerance)
    }

    @Test(arguments: Op.allCases) func fastMatchesReferenceOnLongVectors(op: Op) {
        let x = tensor(inputs(10_007, seed: 35).array + extremes.array), dout = randomTensor(x.count, seed: 36)
        let outF = zeros(x.count), outR = zeros(x.count), dinpF = zeros(x.count), dinpR = zeros(x.count)
        forward(op, .fast, out: outF, inp: x)
        forward(op, .reference, out: outR, inp: x)
        backward(op, .fast, dinp: dinpF, dout: dout, inp: x)
        backward(op, .reference, dinp: dinpR, dout: dout, inp: x)
        checkTensor("\(op) long out", outF, outR, tolerance: 1e-6)
        // 1e-5: the reference GELU gradient's 1 − tanh² loses digits near saturation; the fast one
        // (sigmoid form) does not, and both pass the finite-difference check above.
        checkTensor("\(op) long dinp", dinpF, dinpR, tolerance: 1e-5)
    }

    func swiglu(_ variant: Variant, out: Tensor, gate: Tensor, up: Tensor) {
        switch variant {
        case .fast: swigluForward(out: out.data, gate: gate.data, up: up.data, N: out.count)
        case .reference: swigluForwardReference(out: out.data, gate: gate.data, up: up.data, N: out.count)
        }
    }

    func swigluGrad(_ variant: Variant, dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor) {
        switch variant {
        case .fast: swigluBackward(dgate: dgate.data, dup: dup.data, dout: dout.data, gate: gate.data, up: up.data, N: dout.count)
        case .reference:
            swigluBackwardReference(dgate: dgate.data, dup: dup.data, dout: dout.data, gate: gate.data, up: up.data,
                                    N: dout.count)
        }
    }

    @Test(arguments: Variant.allCases) func swigluForwardAndBackward(variant: Variant) {
        let gate = inputs(131, seed: 37), up = randomTensor(gate.count, seed: 38), dout = randomTensor(gate.count, seed: 39)
        let n = gate.count
        func reference(_ g: [Double], _ u: [Double]) -> [Double] { zip(g, u).map { Self.reference(.silu, $0) * $1 } }
        let out = zeros(n)
        swiglu(variant, out: out, gate: gate, up: up)
        checkTensor("swiglu \(variant) out", out, reference(doubles(gate), doubles(up)), tolerance: 1e-6)

        let dgate = randomTensor(n, seed: 40), dup = randomTensor(n, seed: 41)
        let dgate0 = dgate.array, dup0 = dup.array
        swigluGrad(variant, dgate: dgate, dup: dup, dout: dout, gate: gate, up: up)
        let gd = doubles(gate), ud = doubles(up)
        checkTensor("swiglu \(variant) dgate", added(dgate, since: dgate0),
                    numericGradient(at: gd) { weightedSum(reference($0, ud), dout) }, tolerance: gradientTolerance)
        checkTensor("swiglu \(variant) dup", added(dup, since: dup0),
                    numericGradient(at: ud) { weightedSum(reference(gd, $0), dout) }, tolerance: gradientTolerance)
    }

    @Test func swigluFastMatchesReferenceOnLongVectors() {
        let n = 10_003
        let gate = randomTensor(n, seed: 42, scale: 4), up = randomTensor(n, seed: 43), dout = randomTensor(n, seed: 44)
        let outF = zeros(n), outR = zeros(n)
        swiglu(.fast, out: outF, gate: gate, up: up)
        swiglu(.reference, out: outR, gate: gate, up: up)
        checkTensor("swiglu long out", outF, outR, tolerance: 1e-6)
        let dgF = zeros(n), duF = zeros(n), dgR = zeros(n), duR = zeros(n)
        swigluGrad(.fast, dgate: dgF, dup: duF, dout: dout, gate: gate, up: up)
        swigluGrad(.reference, dgate: dgR, dup: duR, dout: dout, gate: gate, up: up)
        checkTensor("swiglu long dgate", dgF, dgR, tolerance: 1e-6)
        checkTensor("swiglu long dup", duF, duR, tolerance: 1e-6)
    }
}
