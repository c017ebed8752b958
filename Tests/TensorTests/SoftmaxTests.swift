// Row softmax against a Double reference, including rows whose logits would overflow exp.

import Foundation
import Testing
@testable import Tensor

@Suite struct SoftmaxTests {
    func reference(_ x: [Double], N: Int, V: Int) -> [Double] {
        var out = x
        for n in 0..<N {
            let row = x[(n * V)..<(n * V + V)]
            let m = row.max() ?? 0
            let sum = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            for i in 0..<V { out[n * V + i] = Foundation.exp(x[n * V + i] - m) / sum }
        }
        return out
    }

    func forward(_ variant: Variant, out: Tensor, inp: Tensor, N: Int, V: Int) {
        switch variant {
        case .fast: softmaxForward(out: out.data, inp: inp.data, N: N, V: V)
        case .reference: softmaxForwardReference(out: out.data, inp: inp.data, N: N, V: V)
        }
    }

    @Test(arguments: Variant.allCases, [1, 7, 16, 300]) func matchesDouble(variant: Variant, V: Int) {
        let N = 5
        // Row 1 is shifted by +1000: naive exp would overflow.
        var values = randomTensor(N * V, seed: 101, scale: 4).array
        for i in V..<(2 * V) { values[i] += 1000 }
        let x = tensor(values), out = zeros(N * V)
        forward(variant, out: out, inp: x, N: N, V: V)
        checkTensor("softmax \(variant) V=\(V)", out, reference(doubles(x), N: N, V: V), tolerance: 1e-5)
        // In place.
        let inPlace = x.copy()
        forward(variant, out: inPlace, inp: inPlace, N: N, V: V)
        checkTensor("softmax \(variant) in place V=\(V)", inPlace, out, tolerance: 0)
    }

    /// Vocabulary-sized rows (and a tail). Compared with Double: the plain loop's running float sum
    /// over 49k terms is itself off by ~5e-5, the 16-lane sum much less.
    @Test(arguments: Variant.allCases) func vocabularyRows(variant: Variant) {
        let N = 3, V = 49_157
        let x = randomTensor(N * V, seed: 102, scale: 5)
        let out = zeros(N * V)
        forward(variant, out: out, inp: x, N: N, V: V)
        checkTensor("softmax \(variant) vocabulary rows", out, reference(doubles(x), N: N, V: V),
                    tolerance: variant == .fast ? 1e-5 : 1e-4)
    }
}
