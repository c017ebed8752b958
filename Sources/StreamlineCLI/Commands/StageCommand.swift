// `streamline stage ID`: run one node in this process against the cache. The runner starts one of
// these per node with `--node FILE`, the node it planned (Pipeline/NodeFile.swift); a user runs it by
// hand with `--spec`, planning the spec here, on any machine that sees (or imported) the inputs.

import ArgumentParser
import Foundation
import Pipeline
import Stages
import TensorStore
import Tensor

struct StageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage",
        abstract: "Run one stage (or sweep member) now, if it is not cached; its inputs must be cached.")

    @OptionGroup var options: PipelineOptions

    @Argument(help: "The node id, e.g. prune[ratio=0.25].")
    var id: String

    @Option(help: "Threads the stage may use.")
    var threads: Int = 1

    @Flag(help: "Print progress and the result as JSON lines (what the runner reads).")
    var json = false

    @Option(help: ArgumentHelp(
        "Minutes between resume points of a training stage (0: only when stopped by SIGINT or SIGTERM).", valueName: "minutes"))
    var checkpointMinutes: Double = RunOptions.defaultCheckpointMinutes

    @Option(name: .customLong("node"), help: ArgumentHelp(
        "Run the node planned in this node file, as 'streamline run' does, instead of planning the spec.", valueName: "file"))
    var nodeFile: String?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1.") }
        guard checkpointMinutes >= 0, checkpointMinutes.isFinite else { throw ValidationError("--checkpoint-minutes must be a number >= 0.") }
        if nodeFile != nil, !options.param.isEmpty {
            throw ValidationError("-p does not apply with --node: the node file holds the resolved parameters.")
        }
    }

    func run() throws {
        // Started by a runner: end with it, never publish for a run that is gone.
        RunnerWatch.start()
        // SIGINT/SIGTERM: a training stage saves its resume point first; any other stage ends at once.
        GracefulStop.shared.install()
        let cache = Cache(root: options.cacheURL)
        let plan: Plan, node: PlanNode
        if let nodeFile {
            let url = URL(fileURLWithPath: nodeFile)
            (plan, node) = try NodeFile.read(url).plan(for: id, path: url.path, registry: StageCatalog.registry, cache: cache)
        } else {
            plan = try options.plan(cache)
            node = try plan.requireNode(id)
        }
        Threading.configure(threads: threads)
        let json = self.json, nodeID = node.id
        let outcome: StageOutcome
        do {
            outcome = try StageRunner.run(node, plan: plan, registry: StageCatalog.registry, cache: cache, threads: threads,
                                          toolVersion: StreamlineVersion.string,
                                          checkpointEvery: checkpointMinutes > 0 ? checkpointMinutes * 60 : nil) { p in
                if json { emitLine(StageMessage(event: "progress", id: nodeID, progress: p).line) }
            }
        } catch let error as PipelineError {
            // Stopped on request: exit as a process ended by that signal would, after saying where it stopped.
            guard case .stageStopped(_, let stopped) = error else { throw error }
            if json, stopped.saved != nil {
                emitLine(StageMessage(event: "stopped", id: node.id, progress: StageProgress(step: stopped.step, totalSteps: stopped.steps)).line)
            }
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(128 + stopped.signal)
        }
        let rec = outcome.record
        var computed = false
        if case .computed = outcome { computed = true }
        if json {
            emitLine(StageMessage(event: "done", id: node.id, fingerprint: rec.fingerprint, computed: computed,
                               outputs: rec.outputs).line)
        } else {
            print("\(node.id): \(computed ? "computed" : "already cached"), fingerprint \(rec.fingerprint)")
            for (name, digest) in rec.outputs.sorted(by: { $0.key < $1.key }) { print("  \(name)  \(digest)") }
        }
    }
}
