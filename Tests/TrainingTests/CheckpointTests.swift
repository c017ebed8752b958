// Saving and resuming through HDF5 stores: a run stopped after k steps, saved, loaded into a fresh
// model and continued gives the same bits as an uninterrupted run; mismatches and bad files are errors.

import Foundation
import Testing
import Tensor
import TensorStore
@testable import Training

@Suite struct CheckpointTests {
    static let cycle: [Int32] = (0..<120).map { Int32(($0 * 5) % 7) }

    static func config() -> TrainerConfig {
        TrainerConfig(steps: 9, batchSize: 2, seqLen: 6, accumulation: 2, clipNorm: 0.8,
                      schedule: LRSchedule(kind: .linear, lr: 0.03, warmup: 2, minLR: 0.001),
                      optimizer: AdamWConfig(beta2: 0.95, weightDecay: 0.05), freeze: ["embed"])
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-training-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func resumeFromAStoreGivesTheSameBitsAsOneRun() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let batches = try TokenSampler(stream: Self.cycle, T: 6, seed: 11)

        let straight = TinyLM(V: 7, C: 5, seed: 21)
        let straightTrainer = try Trainer(model: straight, config: Self.config(), batches: batches)
        try straightTrainer.run()

        let stopped = TinyLM(V: 7, C: 5, seed: 21)
        let first = try Trainer(model: stopped, config: Self.config(), batches: batches)
        for _ in 0..<4 { try first.step() }
        let checkpoint = folder.appendingPathComponent("state.h5")
        try first.saveCheckpoint(to: checkpoint)

        let reader = try TensorStoreReader(url: checkpoint)
        #expect(reader.kind == "training_state")
        #expect(reader.names.contains("optimizer/m/0") && reader.names.contains("parameters/0/proj/w"))
        #expect(try reader.metadata(AdamW.stateMetadataKey, as: AdamWStateRecord.self).step == 4)
        #expect(try reader.metadata("trainer_config", as: TrainerConfig.self) == first.config)

        let fresh = TinyLM(V: 7, C: 5, seed: 1234)
        let second = try Trainer(model: fresh, config: Self.config(), batches: batches)
        try second.resume(from: checkpoint, verify: true)
        #expect(second.optimizer.step == 4)
        try second.run()
        let a = straight.parameters.values.array, b = fresh.parameters.values.array
        let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) of \(a.count) values differ, max difference \(maxAbsDiff(a, b))")
        #expect(second.optimizer.moments.array.map(\.bitPattern) == straightTrainer.optimizer.moments.array.map(\.bitPattern))
    }

    @Test func optimizerStoreRoundTripsAndSameStateGivesSameDigest() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let set = ParameterSet([ParameterSpec("w", [3, 4]), ParameterSpec("b", [4])])
        var rng = RNG(seed: 2)
        set.grads.fillNormal(&rng)
        let optimizer = AdamW(sets: [set])
        optimizer.update(lr: 0.01)
        optimizer.update(lr: 0.01)
        let digest1 = try optimizer.save(to: folder.appendingPathComponent("a.h5"))
        let digest2 = try optimizer.save(to: folder.appendingPathComponent("b.h5"))
        #expect(digest1 == digest2)

        let loaded = AdamW(sets: [ParameterSet([ParameterSpec("w", [3, 4]), ParameterSpec("b", [4])])])
        try loaded.load(from: folder.appendingPathComponent("a.h5"), verify: true)
        #expect(loaded.step == 2)
        #expect(loaded.moments.array == optimizer.moments.array)

        let other = AdamW(sets: [ParameterSet([ParameterSpec("w", [3, 4]), ParameterSpec("bias", [4])])])
        #expect(throws: TrainingError.stateMismatch(what: "parameter set 0", expected: "bias [4]", found: "b [4]")) {
            try other.load(from: folder.appendingPathComponent("a.h5"))
        }
    }

    @Test func missingOrForeignFilesAreStoreErrors() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let optimizer = AdamW(sets: [ParameterSet([ParameterSpec("w", [2])])])
        let missing = folder.appendingPathComponent("none.h5")
        do {
            try optimizer.load(from: missing)
            Issue.record("loading a missing file succeeded")
        } catch {
            guard case let .store(path, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(path == missing.path)
        }
        // Another kind of store, and an optimiser store without the state record: reported, not crashed on.
        let foreign = folder.appendingPathComponent("model.h5")
        let writer = try TensorStoreWriter(url: foreign, kind: "model")
        try writer.write("w", Tensor(zeros: [2]))
        try writer.commit()
        #expect(throws: TrainingError.self) { try optimizer.load(from: foreign) }
        let empty = folder.appendingPathComponent("empty.h5")
        let emptyWriter = try TensorStoreWriter(url: empty, kind: AdamW.storeKind)
        try emptyWriter.commit()
        do {
            try optimizer.load(from: empty)
            Issue.record("loading a store without optimiser state succeeded")
        } catch {
            #expect(error.description.contains(AdamW.stateMetadataKey), "\(error)")
        }
    }
}
