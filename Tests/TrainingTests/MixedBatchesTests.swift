// Mixed batches: the weighted schedule gives every source exactly its share per period, at every
// prefix is never a sample ahead of its proportion nor k − 1 behind (k sources), numbers each
// source's samples 0, 1, 2, …,
// and the mixed sampler is a pure function of (seed, sample number) whose one-source case is the
// plain sampler.

import Testing
@testable import Training

@Suite struct MixedBatchesTests {
    @Test func wholeWeightsGiveExactCountsOverARun() throws {
        let schedule = try SourceSchedule(weights: [2, 1, 1])
        #expect(schedule.shares == [2, 1, 1] && schedule.period == 4)
        let sources = (0..<400).map { schedule.source(ofSample: $0).source }
        #expect([0, 1, 2].map { s in sources.filter { $0 == s }.count } == [200, 100, 100])
        // Interleaved, not in blocks: every run of 4 consecutive samples, wherever it starts, has 2, 1, 1.
        for start in 0...396 {
            let run = sources[start..<(start + 4)]
            #expect([0, 1, 2].map { s in run.filter { $0 == s }.count } == [2, 1, 1], "samples \(start)..<\(start + 4)")
        }
        // Weights are reduced by their gcd: 6:3:3 is the same schedule.
        #expect(try SourceSchedule(weights: [6, 3, 3]) == schedule)
    }

    @Test(arguments: [[5.0, 3, 2], [0.5, 0.3, 0.2], [1, 1, 1], [7, 1], [1, 2.5], [3, 1, 4, 1, 5], [6, 36, 8, 36, 36, 7, 36]])
    func everyPrefixStaysCloseToItsShare(weights: [Double]) throws {
        let schedule = try SourceSchedule(weights: weights)
        let total = Double(schedule.shares.reduce(0, +))
        var counts = [Int](repeating: 0, count: weights.count)
        for n in 1...min(3 * schedule.period, 30_000) {
            counts[schedule.source(ofSample: n - 1).source] += 1
            for (s, share) in schedule.shares.enumerated() {
                let lead = Double(counts[s]) - Double(n) * Double(share) / total
                #expect(lead < 1 && -lead < Double(max(1, weights.count - 1)), "weights \(weights), source \(s) after \(n): \(lead)")
                if n % 97 == 0 { #expect(schedule.count(source: s, inFirst: n) == counts[s]) }
            }
            if n % schedule.period == 0 { #expect(counts == schedule.shares.map { $0 * n / schedule.period }) }
        }
    }

    @Test func fractionalWeightsRoundToTenThousandths() throws {
        // 1 : 2.5 = 2857.14… : 7142.86… of 10,000; the larger remainder gets the spare unit.
        #expect(try SourceSchedule(weights: [1, 2.5]).shares == [2857, 7143])
        #expect(try SourceSchedule(weights: [0.5, 0.3, 0.2]).shares == [5, 3, 2])
    }

    @Test func eachSourceNumbersItsSamplesInOrder() throws {
        let schedule = try SourceSchedule(weights: [3, 1, 2])
        var next = [0, 0, 0]
        for j in 0..<(5 * schedule.period) {
            let (source, index) = schedule.source(ofSample: j)
            #expect(index == next[source], "sample \(j)")
            next[source] += 1
        }
    }

    @Test func badWeightsAreErrorsThatSayWhatToGive() {
        for weights in [[], [1, 0], [1, -2], [Double.nan, 1], [Double.infinity]] {
            #expect(throws: TrainingError.self) { try SourceSchedule(weights: weights) }
        }
        #expect { try SourceSchedule(weights: [1_000_000, 1]) } throws: { "\($0)".contains("smaller whole numbers") }
        #expect { try SourceSchedule(weights: [1, 0]) } throws: { "\($0)".contains("one positive number per source") }
    }

    /// Source s's tokens are 1000·s + 0..<200, so every window says where it came from.
    static func samplers(_ count: Int, T: Int, seed: UInt64) throws -> [TokenSampler] {
        try (0..<count).map { s in
            try TokenSampler(stream: (0..<200).map { Int32(1000 * s + $0) }, T: T, seed: MixedSampler.sourceSeed(seed, source: s))
        }
    }

    @Test func mixedBatchesFollowTheScheduleAndArePure() throws {
        let T = 6, schedule = try SourceSchedule(weights: [2, 1])
        let sampler = try MixedSampler(sources: try Self.samplers(2, T: T, seed: 9), schedule: schedule)
        let batch = sampler.batch(first: 0, count: 30)
        let rowSources = (0..<30).map { Int(batch.tokens[$0 * T]) / 1000 }
        #expect(rowSources == (0..<30).map { schedule.source(ofSample: $0).source })
        #expect(rowSources.filter { $0 == 0 }.count == 20 && rowSources.filter { $0 == 1 }.count == 10)
        for b in 0..<30 {
            #expect(batch.targets[b * T..<(b + 1) * T].elementsEqual(batch.tokens[b * T..<(b + 1) * T].map { $0 + 1 }))
        }
        // Sample j is the same whatever batch it is asked in (resume, accumulation) and for the same seed.
        let middle = sampler.batch(first: 11, count: 4)
        #expect(middle.tokens == Array(batch.tokens[(11 * T)..<(15 * T)]))
        let again = try MixedSampler(sources: try Self.samplers(2, T: T, seed: 9), schedule: schedule)
        #expect(again.batch(first: 0, count: 30) == batch)
        let otherSeed = try MixedSampler(sources: try Self.samplers(2, T: T, seed: 10), schedule: schedule)
        #expect(otherSeed.batch(first: 0, count: 30) != batch)
    }

    @Test func aMixtureOfOneSourceIsThePlainSampler() throws {
        let stream = (0..<300).map { Int32($0) }
        let plain = try TokenSampler(stream: stream, T: 8, seed: 4)
        let mixed = try MixedSampler(sources: [try TokenSampler(stream: stream, T: 8, seed: MixedSampler.sourceSeed(4, source: 0))],
                                     schedule: try SourceSchedule(weights: [1]))
        #expect(mixed.batch(first: 3, count: 10) == plain.batch(first: 3, count: 10))
    }

    @Test func sourcesMustMatchTheScheduleAndLength() throws {
        let two = try SourceSchedule(weights: [1, 1])
        #expect(throws: TrainingError.self) { try MixedSampler(sources: try Self.samplers(3, T: 4, seed: 1), schedule: two) }
        let mismatched = [try TokenSampler(stream: Array(0..<50), T: 4, seed: 1), try TokenSampler(stream: Array(0..<50), T: 5, seed: 1)]
        #expect(throws: TrainingError.self) { try MixedSampler(sources: mismatched, schedule: two) }
    }
}
