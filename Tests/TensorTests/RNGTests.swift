import Testing
@testable import Tensor

@Suite struct RNGTests {
    @Test func sameSeedSameNumbers() {
        let a = Tensor.randn([1000], seed: 42), b = Tensor.randn([1000], seed: 42)
        #expect(a.array == b.array)
        let c = Tensor.randn([1000], seed: 43)
        #expect(a.array != c.array)
    }

    @Test func normalMoments() {
        let t = Tensor.randn([200_000], seed: 7)
        let xs = t.array.map(Double.init)
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        #expect(abs(mean) < 0.01)
        #expect(abs(variance - 1) < 0.02)
    }

    /// Philox4x32-10 known-answer test from the Random123 distribution (kat_vectors):
    /// counter = key = 0 gives 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
    @Test func philoxKnownAnswer() {
        let r = philox4x32(counter: (0, 0, 0, 0), key: (0, 0))
        #expect(r.0 == 0x6627_e8d5 && r.1 == 0xe169_c58d && r.2 == 0xbc57_ac4c && r.3 == 0x9b00_dbd8)
    }

    @Test func permutationIsPermutation() {
        var rng = RNG(seed: 1)
        let p = rng.permutation(100)
        #expect(p.sorted() == Array(0..<100))
        #expect(p != Array(0..<100))
    }
}
