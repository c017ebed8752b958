// Token batches: targets are the next tokens, sampling is a pure function of (seed, sample number),
// epochs over pre-cut windows visit each window once, and short or ragged inputs are errors.

import Testing
@testable import Training

@Suite struct BatchesTests {
    let stream: [Int32] = (0..<100).map { Int32($0) }

    @Test func targetsAreTheNextTokens() throws {
        let sampler = try TokenSampler(stream: stream, T: 8, seed: 5)
        let batch = sampler.batch(first: 0, count: 3)
        #expect(batch.B == 3 && batch.T == 8)
        for b in 0..<3 {
            let start = Int(batch.tokens[b * 8])
            #expect(batch.tokens[(b * 8)..<(b * 8 + 8)].elementsEqual((start..<start + 8).map { Int32($0) }))
            #expect(batch.targets[(b * 8)..<(b * 8 + 8)].elementsEqual((start + 1..<start + 9).map { Int32($0) }))
        }
    }

    @Test func samplesAreAPureFunctionOfSeedAndNumber() throws {
        let sampler = try TokenSampler(stream: stream, T: 8, seed: 5)
        let four = sampler.batch(first: 8, count: 4)
        let singles = (8..<12).map { sampler.batch(first: $0, count: 1) }
        #expect(four.tokens == singles.flatMap(\.tokens))
        #expect(four.targets == singles.flatMap(\.targets))
        #expect(try TokenSampler(stream: stream, T: 8, seed: 5).batch(first: 8, count: 4) == four)
        let offsets = (0..<64).map { sampler.offset(ofSample: $0) }
        #expect(Set(offsets).count > 40, "offsets spread over the stream")
        #expect(offsets.allSatisfy { $0 >= 0 && $0 + 9 <= stream.count })
        #expect(try TokenSampler(stream: stream, T: 8, seed: 6).batch(first: 8, count: 4) != four)
    }

    @Test func windowEpochsVisitEveryWindowOnce() throws {
        let windows: [Int32] = (0..<(7 * 5)).map { Int32($0) }   // 7 windows of T + 1 = 5
        let sampler = try TokenSampler(windows: windows, T: 4, seed: 9)
        #expect(sampler.windowCount == 7)
        let firstEpoch = (0..<7).map { sampler.offset(ofSample: $0) / 5 }
        let secondEpoch = (7..<14).map { sampler.offset(ofSample: $0) / 5 }
        #expect(firstEpoch.sorted() == Array(0..<7))
        #expect(secondEpoch.sorted() == Array(0..<7))
        #expect(firstEpoch != secondEpoch)
        // A batch straddling the epoch boundary takes the same windows as single samples.
        let straddle = sampler.batch(first: 5, count: 4)
        #expect(straddle.tokens == (5..<9).flatMap { sampler.batch(first: $0, count: 1).tokens })
        let ordered = try TokenSampler(windows: windows, T: 4, seed: nil)
        #expect(ordered.batch(first: 8, count: 1).tokens == [5, 6, 7, 8])
        #expect(ordered.batch(first: 8, count: 1).targets == [6, 7, 8, 9])
    }

    @Test func shortOrRaggedInputsAreErrors() {
        #expect(throws: TrainingError.notEnoughTokens(have: 8, needed: 9)) {
            try TokenSampler(stream: Array(stream.prefix(8)), T: 8, seed: 1)
        }
        #expect(throws: TrainingError.ragged(count: 11, windowLength: 5)) {
            try TokenSampler(windows: Array(stream.prefix(11)), T: 4, seed: 1)
        }
    }
}
