// The training loop on TinyLM: it learns, micro-batches accumulate to the same update as one big
// batch, a stopped and resumed run gives the same bits as an uninterrupted one, and reports and
// settings behave.

import Foundation
import Testing
import Tensor
@testable import Training

@Suite struct TrainerTests {
    /// A cyclic sequence over 6 tokens: every next token is determined by the current one.
    static let cycle: [Int32] = (0..<200).map { Int32($0 % 6) }

    static func config(steps: Int, B: Int, accumulation: Int = 1, clip: Float? = 1.0, freeze: [String] = []) -> TrainerConfig {
        TrainerConfig(steps: steps, batchSize: B, seqLen: 8, accumulation: accumulation, clipNorm: clip,
                      schedule: LRSchedule(kind: .cosine, lr: 0.05, warmup: 3, minLR: 0.005),
                      optimizer: AdamWConfig(weightDecay: 0.01), freeze: freeze)
    }

    @Test func learnsACyclicSequence() throws {
        let model = TinyLM(V: 6, C: 8, seed: 2)
        let trainer = try Trainer(model: model, config: Self.config(steps: 150, B: 4),
                                  batches: TokenSampler(stream: Self.cycle, T: 8, seed: 1))
        var reports: [StepReport] = []
        try trainer.run { reports.append($0) }
        #expect(reports.map(\.step) == Array(1...150))
        #expect(reports[0].loss > 1.0, "starts near ln 6 = 1.79")
        #expect(reports.last!.loss < 0.05, "final loss \(reports.last!.loss)")
        #expect(reports[0].lr == trainer.config.schedule.lr(0))
        #expect(reports.last!.lr == trainer.config.schedule.lr(149))
        #expect(reports.allSatisfy { $0.tokensPerSecond > 0 && $0.gradNorm > 0 && $0.eta >= 0 })
        #expect(reports.last!.eta == 0)
        #expect(reports[0].description.hasPrefix("step 1/150 | loss "))
    }

    @Test func fourMicroBatchesOfOneEqualOneBatchOfFour() throws {
        let big = TinyLM(V: 6, C: 8, seed: 3), small = TinyLM(V: 6, C: 8, seed: 3)
        let batches = try TokenSampler(stream: Self.cycle, T: 8, seed: 4)
        // A clip norm low enough to be active checks that the norm is taken of the averaged gradient.
        let one = try Trainer(model: big, config: Self.config(steps: 5, B: 4, clip: 0.5), batches: batches)
        let four = try Trainer(model: small, config: Self.config(steps: 5, B: 1, accumulation: 4, clip: 0.5), batches: batches)
        var oneReports: [StepReport] = [], fourReports: [StepReport] = []
        try one.run { oneReports.append($0) }
        try four.run { fourReports.append($0) }
        #expect(oneReports.contains { $0.gradNorm > 0.5 }, "clipping was active in some step")
        for (a, b) in zip(oneReports, fourReports) {
            #expect(abs(a.loss - b.loss) < 1e-5)
            #expect(abs(a.gradNorm - b.gradNorm) < 1e-5 * a.gradNorm)
        }
        let diff = maxAbsDiff(big.parameters.values.array, small.parameters.values.array)
        #expect(diff < 1e-5, "max parameter difference \(diff)")
        #expect(big.parameters.values.array != TinyLM(V: 6, C: 8, seed: 3).parameters.values.array)
    }

    @Test func resumedRunMatchesUninterruptedRunBitwise() throws {
        let batches = try TokenSampler(stream: Self.cycle, T: 8, seed: 8)
        let config = Self.config(steps: 10, B: 2, accumulation: 2, freeze: ["proj/b"])

        let straight = TinyLM(V: 6, C: 8, seed: 5)
        try Trainer(model: straight, config: config, batches: batches).run()

        let first = TinyLM(V: 6, C: 8, seed: 5)
        let firstTrainer = try Trainer(model: first, config: config, batches: batches)
        for _ in 0..<4 { try firstTrainer.step() }
        let savedState = firstTrainer.optimizer.state
        let savedValues = first.parameters.values.copy()

        let resumed = TinyLM(V: 6, C: 8, seed: 99)   // different initial values, overwritten by the load
        resumed.parameters.values.assign(savedValues)
        let resumedTrainer = try Trainer(model: resumed, config: config, batches: batches)
        try resumedTrainer.optimizer.restore(savedState)
        var steps: [Int] = []
        try resumedTrainer.run { steps.append($0.step) }
        #expect(steps == Array(5...10))
        let a = straight.parameters.values.array, b = resumed.parameters.values.array
        let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) of \(a.count) values differ, max difference \(maxAbsDiff(a, b))")
    }

    @Test func divergenceIsReportedBeforeTheUpdate() throws {
        let model = TinyLM(V: 6, C: 4, seed: 1)
        model.parameters.value("proj/b")[0] = .nan
        let trainer = try Trainer(model: model, config: Self.config(steps: 3, B: 1),
                                  batches: TokenSampler(stream: Self.cycle, T: 8, seed: 1))
        let before = model.parameters.value("proj/w").array
        #expect(throws: TrainingError.self) { try trainer.step() }
        #expect(model.parameters.value("proj/w").array == before)
        #expect(trainer.optimizer.step == 0)
    }

    @Test func settingsAreValidated() throws {
        let batches = try TokenSampler(stream: Self.cycle, T: 8, seed: 1)
        var bad = Self.config(steps: 3, B: 1)
        bad.accumulation = 0
        #expect(throws: TrainingError.invalidSetting(key: "accumulation", value: "0", reason: "must be >= 1")) {
            try Trainer(model: TinyLM(V: 6, C: 4, seed: 1), config: bad, batches: batches)
        }
        var mismatched = Self.config(steps: 3, B: 1)
        mismatched.seqLen = 16
        #expect(throws: TrainingError.self) { try Trainer(model: TinyLM(V: 6, C: 4, seed: 1), config: mismatched, batches: batches) }
        #expect(throws: TrainingError.self) {
            try Trainer(model: TinyLM(V: 6, C: 4, seed: 1), config: Self.config(steps: 3, B: 1, freeze: ["proj/bias"]), batches: batches)
        }
        let json = #"{"steps": 100, "batch_size": 4, "seq_len": 64, "accumulation": 2, "clip_norm": 1.0,"#
            + #" "schedule": {"kind": "cosine", "lr": 3e-4, "warmup": 10}, "freeze": ["embed/**"]}"#
        let decoded = try JSONDecoder().decode(TrainerConfig.self, from: Data(json.utf8))
        #expect(decoded == TrainerConfig(steps: 100, batchSize: 4, seqLen: 64, accumulation: 2, clipNorm: 1,
                                         schedule: LRSchedule(kind: .cosine, lr: 3e-4, warmup: 10), freeze: ["embed/**"]))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(TrainerConfig.self, from: Data(#"{"steps": 1, "batch_size": 0, "seq_len": 4, "schedule": {"kind": "constant", "lr": 1}}"#.utf8))
        }
    }
}
