// Cross-entropy per-row losses and dlogits against Double references and central differences,
// with ignored targets (−1) and dlogits written over the logits.

import Foundation
import Testing
@testable import Tensor

@Suite struct CrossEntropyTests {
    let N = 6, V = 23
    /// Rows 2 and 5 are ignored.
    let targets: [Int32] = [4, 0, -1, 22, 9, -1]

    func reference(_ logits: [Double]) -> [Double] { reference(logits, targets: targets, N: N, V: V) }

    func reference(_ logits: [Double], targets: [Int32], N: Int, V: Int) -> [Double] {
        (0..<N).map { n in
            let target = Int(targets[n])
            if target < 0 { return 0 }
            let row = logits[(n * V)..<(n * V + V)]
            let m = row.max() ?? 0
            return Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) }) + m - logits[n * V + target]
        }
    }

    func forward(_ variant: Variant, losses: Tensor, logits: Tensor) {
        switch variant {
        case .fast: crossEntropyForward(losses: losses.data, logits: logits.data, targets: targets, N: N, V: V)
        case .reference: crossEntropyForwardReference(losses: losses.data, logits: logits.data, targets: targets, N: N, V: V)
        }
    }

    func backward(_ variant: Variant, dlogits: Tensor, logits: Tensor, dlosses: Tensor) {
        switch variant {
        case .fast:
            crossEntropyBackward(dlogits: dlogits.data, logits: logits.data, targets: targets, dlosses: dlosses.data, N: N, V: V)
        case .reference:
            crossEntropyBackwardReference(dlogits: dlogits.data, logits: logits.data, targets: targets, dlosses: dlosses.data,
                                          N: N, V: V)
        }
    }

    @Test(arguments: Variant.allCases) func forwardMatchesDouble(variant: Variant) {
        var values = randomTensor(N * V, seed: 111, scale: 3).array
        for i in 0..<V { values[i] += 500 }  // a row that would overflow a naive exp
        let logits = tensor(values), losses = randomTensor(N, seed: 112)
        forward(variant, losses: losses, logits: logits)
        checkTensor("cross-entropy \(variant) losses", losses, reference(doubles(logits)), tolerance: 1e-5)
        #expect(losses.array[2] == 0 && losses.array[5] == 0)
    }

    @Test(arguments: Variant.allCases) func backwardMatchesFiniteDifferences(variant: Variant) {
        let logits = randomTensor(N * V, seed: 113, scale: 2), dlosses = randomTensor(N, seed: 114)
        let dlogits = randomTensor(N * V, seed: 115)  // overwritten, whatever it held
        backward(variant, dlogits: dlogits, logits: logits, dlosses: dlosses)
        let numeric = numericGradient(at: doubles(logits)) { weightedSum(reference($0), dlosses) }
        checkTensor("cross-entropy \(variant) dlogits", dlogits, numeric, tolerance: gradientTolerance)
        #expect(dlogits.array[(2 * V)..<(3 * V)].allSatisfy { $0 == 0 })
        // Written over the logits themselves.
        let shared = logits.copy()
        backward(variant, dlogits: shared, logits: shared, dlosses: dlosses)
        #expect(shared.array == dlogits.array)
    }

    /// Vocabulary-sized rows against Double: the plain loop's running float sum over 49k terms is
    /// itself off by ~2e-5, the 16-lane sum much less.
    @Test func fastMatchesDoubleOnVocabularyRows() {
        let n = 4, v = 49_157
        let manyTargets: [Int32] = [0, 49_156, -1, 12_345]
        let logits = randomTensor(n * v, seed: 116, scale: 4), dlosses = randomTensor(n, seed: 117)
        let lossF = zeros(n), lossR = zeros(n), dF = zeros(n * v), dR = zeros(n * v)
        crossEntropyForward(losses: lossF.data, logits: logits.data, targets: manyTargets, N: n, V: v)
        crossEntropyForwardReference(losses: lossR.data, logits: logits.data, targets: manyTargets, N: n, V: v)
        crossEntropyBackward(dlogits: dF.data, logits: logits.data, targets: manyTargets, dlosses: dlosses.data, N: n, V: v)
        crossEntropyBackwardReference(dlogits: dR.data, logits: logits.data, targets: manyTargets, dlosses: dlosses.data,
                                      N: n, V: v)
        let expected = reference(doubles(logits), targets: manyTargets, N: n, V: v)
        checkTensor("cross-entropy vocabulary losses (fast)", lossF, expected, tolerance: 1e-6)
        checkTensor("cross-entropy vocabulary losses (reference)", lossR, expected, tolerance: 1e-5)
        checkTensor("cross-entropy vocabulary dlogits", dF, dR, tolerance: 1e-4)
    }
}
