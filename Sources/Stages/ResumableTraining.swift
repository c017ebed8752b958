// A training stage that survives being stopped. It writes the loop's whole state (parameters,
// AdamW moments, update count, a regularization run's curves: Trainer+Checkpoint.swift) to the
// node's resume point every `interval` seconds and when a signal asks it to stop, and a later
// attempt at the same node (same fingerprint, so same inputs, parameters and seed) continues from it.
// Batches and learning rate are functions of the update count and the model is fp32 throughout, so a
// resumed stage publishes the same bytes as one that never stopped (StagesTests/ResumableTrainingTests.swift).
// Not here: where the file lives and when it is removed (Pipeline: Cache.resumeURL, StageRunner).

import Foundation
import Model
import Pipeline
import TensorStore
import Training

/// Runs `trainer` to its last step, calling `report` after each; continues from `context.resume`'s
/// file if an earlier attempt left one. Throws `StageStopped` when asked to stop (state saved),
/// TrainingError when training fails.
func trainResumably(_ trainer: Trainer<Decoder>, context: StageContext, report: (StepReport) -> Void) throws {
    try runResumably(trainer, context: context) { report(try trainer.step()) }
}

/// Calls `update` until `run` has done all its updates, with `context.resume`'s resume point: continued
/// from when it exists, written every interval and when a stop is requested (then `StageStopped`).
/// `begin` runs once the state is in place (after a resume, `run.updatesDone` says where it stands).
func runResumably(_ run: some ResumableRun, context: StageContext, begin: () throws -> Void = {},
                  update: () throws -> Void) throws {
    guard let point = context.resume else {
        try begin()
        while run.updatesDone < run.totalUpdates { try update() }
        return
    }
    let steps = run.totalUpdates
    if FileManager.default.fileExists(atPath: point.url.path) {
        do {
            try run.resume(from: point.url, verify: true)
        } catch {
            throw DReSSStageError.failed(stage: context.stageID, step: "resuming from \(point.url.path)",
                                         underlying: "\(error). Delete that file to start this stage over")
        }
        context.log("resuming after step \(run.updatesDone) of \(steps) from \(point.url.path)")
    }
    try begin()
    var lastWrite = ContinuousClock.now
    try point.stop.stoppable {
        while run.updatesDone < steps {
            try update()
            if let signal = point.stop.requested {
                var stopped = StageStopped(signal: signal, step: run.updatesDone, steps: steps, saved: nil)
                do { try writeResumePoint(run, to: point.url); stopped.saved = point.url } catch {
                    stopped.detail = "\(error)"
                }
                throw stopped
            }
            if let interval = point.interval, run.updatesDone < steps,
               ContinuousClock.now - lastWrite >= .seconds(interval) {
                // A failed write costs only the protection it would have given: say so and train on.
                do {
                    let start = ContinuousClock.now
                    try writeResumePoint(run, to: point.url)
                    context.log(String(format: "resume point written after step %d (%.1f s)", run.updatesDone,
                                       Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000))
                } catch {
                    context.log("could not write the resume point after step \(run.updatesDone): \(error)")
                }
                lastWrite = ContinuousClock.now
            }
        }
    }
}

/// Writes the run's state beside `url`, flushes it to disk and renames it into place, so the
/// file at `url` is always a complete state (a kill mid-write leaves the previous one).
private func writeResumePoint(_ run: some ResumableRun, to url: URL) throws {
    let folder = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let partial = folder.appendingPathComponent("\(url.lastPathComponent).\(getpid()).partial")
    defer { try? FileManager.default.removeItem(at: partial) }
    try run.saveCheckpoint(to: partial)
    let handle = try FileHandle(forUpdating: partial)
    try handle.synchronize()
    try handle.close()
    guard rename(partial.path, url.path) == 0 else {
        throw PipelineError.io(operation: "rename the resume point into", path: url.path, detail: String(cString: strerror(errno)))
    }
}

/// Where the training state at `url` stands: updates done and the run's total (nil if unreadable).
public func resumePointProgress(at url: URL) -> (step: Int, steps: Int)? {
    guard let reader = try? TensorStoreReader(url: url, expectingKind: Trainer<Decoder>.checkpointKind),
          let state = try? reader.metadata(AdamW.stateMetadataKey, as: AdamWStateRecord.self),
          let config = try? reader.metadata(Trainer<Decoder>.configMetadataKey, as: TrainerConfig.self) else { return nil }
    return (state.step, config.steps)
}
