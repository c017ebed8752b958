// Global-norm clipping: the returned norm, the scaling, the pre-scale for accumulation, frozen
// parameters left out, and the same bits for any thread count.

import Testing
import Tensor
@testable import Training

@Suite(.serialized) struct GradientClippingTests {
    func twoParameters() -> ParameterSet {
        let set = ParameterSet([ParameterSpec("a", [2]), ParameterSpec("b", [1, 2])])
        set.grads.assign(Tensor(shape: [4], values: [3, 0, 0, 4]))   // ‖g‖ = 5
        return set
    }

    @Test func returnsTheNormAndLeavesSmallGradientsAlone() {
        let set = twoParameters()
        let norm = clipGradients([set], mask: TrainableMask(allOf: [set]), maxNorm: 10)
        #expect(norm == 5)
        #expect(set.grads.array == [3, 0, 0, 4])
    }

    @Test func scalesLargeGradientsToTheLimit() {
        let set = twoParameters()
        let norm = clipGradients([set], mask: TrainableMask(allOf: [set]), maxNorm: 1)
        #expect(norm == 5)
        let after = gradientNorm([set], mask: TrainableMask(allOf: [set]))
        #expect(abs(after - 1) < 1e-6)
        #expect(abs(set.grads[flat: 0] - 0.6) < 1e-6 && abs(set.grads[flat: 3] - 0.8) < 1e-6)
    }

    @Test func preScaleAppliesBeforeTheNorm() {
        let set = twoParameters()
        let norm = clipGradients([set], mask: TrainableMask(allOf: [set]), maxNorm: nil, scale: 0.25)
        #expect(norm == 1.25)
        #expect(set.grads.array == [0.75, 0, 0, 1])
    }

    @Test func frozenGradientsAreNeitherCountedNorScaled() throws {
        let set = twoParameters()
        let mask = try TrainableMask(sets: [set], freeze: ["b"])
        let norm = clipGradients([set], mask: mask, maxNorm: 1)
        #expect(norm == 3)
        #expect(set.grads[flat: 3] == 4)
        #expect(abs(set.grads[flat: 0] - Float(3 / (3 + 1e-6))) < 1e-6, "scaled to norm 1")
    }

    @Test func normIsTheSameForOneAndTwoThreads() {
        let set = ParameterSet([ParameterSpec("w", [700, 300]), ParameterSpec("v", [13])])
        var rng = RNG(seed: 3)
        set.grads.fillNormal(&rng)
        let mask = TrainableMask(allOf: [set])
        let before = Threading.threads
        defer { Threading.configure(threads: before) }
        Threading.configure(threads: 1)
        let one = gradientNorm([set], mask: mask)
        Threading.configure(threads: 2)
        let two = gradientNorm([set], mask: mask)
        #expect(one.bitPattern == two.bitPattern)
        var reference = 0.0
        for x in set.grads.array { reference += Double(x) * Double(x) }
        #expect(abs(one - reference.squareRoot()) < 1e-9 * one)
    }
}
