// A training stage stopped part-way (a signal) or killed (only its last periodic resume point left)
// continues on the next attempt and publishes the same bytes as an attempt that never stopped, for
// full fine-tuning, LoRA, distillation and regularization (plain and nested); a damaged resume point
// is a clear error naming the file.

import Foundation
import StageTestSupport
import Testing
import Data
import Pipeline
import Stages
import TensorStore

@Suite struct ResumableTrainingTests {
    static let training: [String: ParamValue] = ["steps": .int(8), "seq_len": .int(16), "lr": .double(1e-2)]
    static let variants: [[String: ParamValue]] = [
        ["lora_rank": .int(0)],
        ["lora_rank": .int(4)],
        ["lora_rank": .int(0), "loss": .string("mix"), "kd_weight": .double(0.5)],
    ]

    /// The output store's digest (content, provenance included) of one fine-tune.
    static func finetune(_ variant: [String: ParamValue], tiny: [String: URL], in dir: URL, resume: ResumePoint? = nil,
                         atStep: @escaping @Sendable (Int) -> Void = { _ in },
                         log: @escaping @Sendable (String) -> Void = { _ in }) throws -> String {
        let out = try runKind(FinetuneStage(), params: training.merging(variant) { $1 },
                              inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir, resume: resume,
                              progress: { atStep($0.step) }, log: log)
        return try TensorStoreReader.digest(ofStoreAt: out["model"]!)
    }

    @Test(arguments: variants.indices) func aStageStoppedBySignalResumesToTheSameBytes(variant: Int) throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let whole = try Self.finetune(Self.variants[variant], tiny: tiny, in: dir)

        let url = dir.appendingPathComponent("resume/point.h5")
        let stop = GracefulStop()
        #expect {
            _ = try Self.finetune(Self.variants[variant], tiny: tiny, in: dir, resume: ResumePoint(url: url, interval: nil, stop: stop),
                                  atStep: { if $0 == 3 { stop.request(SIGTERM) } })
        } throws: { error in
            guard let stopped = error as? StageStopped else { return false }
            return stopped.step == 3 && stopped.steps == 8 && stopped.saved == url && stopped.signal == SIGTERM
                && stopped.description.contains("after step 3 of 8")
        }
        #expect(FileManager.default.fileExists(atPath: url.path))

        let lines = LineBox()
        let resumed = try Self.finetune(Self.variants[variant], tiny: tiny, in: dir,
                                        resume: ResumePoint(url: url, interval: nil, stop: GracefulStop()),
                                        atStep: { lines.append("step \($0)") }, log: { lines.append($0) })
        #expect(resumed == whole, "a resumed fine-tune must publish the bytes of an uninterrupted one")
        #expect(lines.all.contains { $0.hasPrefix("resuming after step 3 of 8 from \(url.path)") }, "\(lines.all)")
        #expect(!lines.all.contains("step 3") && lines.all.contains("step 4"), "steps 1-3 are not trained again")
    }

    /// A kill -9 leaves only the last periodic resume point: the next attempt continues from it.
    @Test func aKilledStageResumesFromItsLastPeriodicPoint() throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let whole = try Self.finetune(Self.variants[0], tiny: tiny, in: dir)

        let url = dir.appendingPathComponent("resume/point.h5"), kept = dir.appendingPathComponent("kept.h5")
        // Interval 0: a point after every step but the last. At step 6's report the file holds step 5.
        let periodic = try Self.finetune(Self.variants[0], tiny: tiny, in: dir, resume: ResumePoint(url: url, interval: 0, stop: GracefulStop()),
                                         atStep: { if $0 == 6 { try? FileManager.default.copyItem(at: url, to: kept) } })
        #expect(periodic == whole, "writing resume points changes nothing in the result")
        // The runner removes the point once the entry is published; here, in-process, the test does.
        try FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: kept, to: url)

        let lines = LineBox()
        let resumed = try Self.finetune(Self.variants[0], tiny: tiny, in: dir, resume: ResumePoint(url: url, interval: nil, stop: GracefulStop()),
                                        log: { lines.append($0) })
        #expect(resumed == whole)
        #expect(lines.all.contains { $0.hasPrefix("resuming after step 5 of 8") }, "\(lines.all)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        #expect(leftovers == ["point.h5"], "no partial writes are left behind: \(leftovers)")
    }

    /// Regularize resumes too: the model and the channel store, curves and held-out checkpoints
    /// included, come out as from an attempt that never stopped; plain and nested (a ratio sweep's run).
    @Test(arguments: [false, true]) func aStoppedRegularizationResumesToTheSameBytes(nested: Bool) throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let params: [String: ParamValue] = ["steps": .int(8), "seq_len": .int(16), "lr": .double(1e-2), "lambda": .double(0.05),
                                            "log_every": .int(1), "eval_every": .int(2), "heldout_fraction": .double(0.2)]
            .merging(nested ? ["ratios": .string("0.125,0.25")] : [:]) { $1 }
        func regularize(_ resume: ResumePoint? = nil, atStep: @escaping @Sendable (Int) -> Void = { _ in },
                        log: @escaping @Sendable (String) -> Void = { _ in }) throws -> [String] {
            let out = try runKind(RegularizeStage(), params: params, inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir,
                                  resume: resume, progress: { atStep($0.step) }, log: log)
            return try ["model", "channels"].map { try TensorStoreReader.digest(ofStoreAt: out[$0]!) }
        }
        let whole = try regularize()
        let url = dir.appendingPathComponent("resume/point.h5")
        let stop = GracefulStop()
        #expect(throws: StageStopped.self) {
            _ = try regularize(ResumePoint(url: url, interval: nil, stop: stop), atStep: { if $0 == 5 { stop.request(SIGINT) } })
        }
        let lines = LineBox()
        let resumed = try regularize(ResumePoint(url: url, interval: nil, stop: GracefulStop()), log: { lines.append($0) })
        #expect(resumed == whole, "model and channel store (curves included) as from an uninterrupted run")
        #expect(lines.all.contains { $0.hasPrefix("resuming after step 5 of 8") }, "\(lines.all)")
        #expect(!lines.all.contains { $0.hasPrefix("eval step 0 ") }, "the checkpoint before the first update is not measured again")
    }

    @Test func aDamagedResumePointIsAnErrorNamingTheFile() throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let url = dir.appendingPathComponent("point.h5")
        try Data("not a store".utf8).write(to: url)
        #expect {
            _ = try Self.finetune(Self.variants[0], tiny: tiny, in: dir, resume: ResumePoint(url: url, interval: nil, stop: GracefulStop()))
        } throws: { error in
            "\(error)".contains("resuming from \(url.path)") && "\(error)".contains("Delete that file to start this stage over")
        }
    }

    /// A stop requested outside a stoppable section (a test's own instance) is only recorded; inside
    /// one it waits for the section to read it.
    @Test func aStopRequestIsRecordedOnce() {
        let stop = GracefulStop()
        #expect(stop.requested == nil)
        stop.stoppable { stop.request(SIGINT) }
        stop.request(SIGTERM)
        #expect(stop.requested == SIGINT, "the first signal is the one reported")
    }
}

/// Lines collected from `@Sendable` callbacks.
final class LineBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
