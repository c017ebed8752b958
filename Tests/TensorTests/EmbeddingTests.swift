// Embedding gather and scatter-add, including repeated ids and a deterministic summation order.

import Testing
@testable import Tensor

@Suite struct EmbeddingTests {
    let rows = 11, C = 37
    /// Repeated ids (3 four times, 7 twice) exercise the scatter-add.
    let ids: [Int32] = [3, 7, 3, 0, 10, 3, 7, 1, 3]

    func forward(_ variant: Variant, out: Tensor, table: Tensor) {
        switch variant {
        case .fast: embeddingForward(out: out.data, ids: ids, table: table.data, N: ids.count, C: C)
        case .reference: embeddingForwardReference(out: out.data, ids: ids, table: table.data, N: ids.count, C: C)
        }
    }

    func backward(_ variant: Variant, dtable: Tensor, dout: Tensor) {
        switch variant {
        case .fast: embeddingBackward(dtable: dtable.data, dout: dout.data, ids: ids, N: ids.count, C: C)
        case .reference: embeddingBackwardReference(dtable: dtable.data, dout: dout.data, ids: ids, N: ids.count, C: C)
        }
    }

    func reference(_ table: [Double]) -> [Double] {
        ids.flatMap { id in table[(Int(id) * C)..<(Int(id) * C + C)] }
    }

    @Test(arguments: Variant.allCases) func forwardGathersRows(variant: Variant) {
        let table = randomTensor(rows * C, seed: 61)
        let out = randomTensor(ids.count * C, seed: 62)  // overwritten, whatever it held
        forward(variant, out: out, table: table)
        checkTensor("embedding \(variant) out", out, reference(doubles(table)), tolerance: 0)
    }

    @Test(arguments: Variant.allCases) func backwardMatchesFiniteDifferences(variant: Variant) {
        let table = randomTensor(rows * C, seed: 63), dout = randomTensor(ids.count * C, seed: 64)
        let dtable = randomTensor(rows * C, seed: 65)
        let dtable0 = dtable.array
        backward(variant, dtable: dtable, dout: dout)
        let numeric = numericGradient(at: doubles(table)) { weightedSum(reference($0), dout) }
        checkTensor("embedding \(variant) dtable", added(dtable, since: dtable0), numeric, tolerance: gradientTolerance)
        // Rows no id names are untouched.
        for r in 0..<rows where !ids.contains(Int32(r)) {
            #expect(Array(dtable.array[(r * C)..<(r * C + C)]) == Array(dtable0[(r * C)..<(r * C + C)]))
        }
    }

    @Test func backwardIsBitwiseReproducibleAndMatchesReference() {
        let n = 4_000, width = 67, vocab = 50
        let manyIds = (0..<n).map { Int32(($0 * 7919) % vocab) }
        let dout = randomTensor(n * width, seed: 66)
        let a = zeros(vocab * width), b = zeros(vocab * width), r = zeros(vocab * width)
        embeddingBackward(dtable: a.data, dout: dout.data, ids: manyIds, N: n, C: width)
        embeddingBackward(dtable: b.data, dout: dout.data, ids: manyIds, N: n, C: width)
        embeddingBackwardReference(dtable: r.data, dout: dout.data, ids: manyIds, N: n, C: width)
        #expect(a.array == b.array)
        // Same order of additions as the reference loop, so the same bits.
        #expect(a.array == r.array)
    }
}
