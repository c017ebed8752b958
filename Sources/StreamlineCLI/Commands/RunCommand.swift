// `streamline run [TARGET]`: plan, skip what is cached, run the rest as stage processes on this
// machine or as Slurm jobs (`--executor slurm`, optionally `--detach`ed).

import ArgumentParser
import Foundation
import Pipeline
import Stages

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline (or some targets and what they need), reusing every cached stage.")

    @OptionGroup var options: PipelineOptions

    @Argument(help: "Stage names or sweep member ids, run with what they need; default: every stage.")
    var targets: [String] = []

    @Option(help: "Stages run at once (local runs; Slurm runs as many as the cluster allows).")
    var jobs: Int = 1

    @Option(help: "Threads in all, split between running stages (default: all cores; a Slurm job uses its CPUs).")
    var threads: Int?

    @Flag(help: "After a failure, keep running whatever does not depend on it.")
    var keepGoing = false

    @Option(help: ArgumentHelp(
        "Minutes between resume points of a training stage, so a crash or kill -9 loses at most that much "
        + "(0: write one only when stopped by Ctrl-C, SIGTERM or a Slurm time limit).", valueName: "minutes"))
    var checkpointMinutes: Double = RunOptions.defaultCheckpointMinutes

    @Flag(help: "Print only failures and the summary.")
    var quiet = false

    @Flag(help: "Print every event as a JSON line (for scripts and CI logs).")
    var json = false

    @Option(help: "auto: bars redrawn in place with colour on a terminal, plain lines when piped; tty or plain force one. NO_COLOR turns colour off.")
    var progress: ProgressMode = .auto

    @Option(help: "Where stages run: local (child processes) or slurm (batch jobs). Default: the spec's 'executor:', else local.")
    var executor: ExecutorKind?

    @Flag(help: "Slurm only: submit the jobs, record them in the cache and exit; follow with 'status --wait', stop with 'cancel'.")
    var detach = false

    func validate() throws {
        guard jobs >= 1, (threads ?? 1) >= 1 else { throw ValidationError("--jobs and --threads must be at least 1.") }
        guard checkpointMinutes >= 0, checkpointMinutes.isFinite else { throw ValidationError("--checkpoint-minutes must be a number >= 0.") }
        if detach, executor == .local { throw ValidationError("--detach needs --executor slurm: a local run cannot outlive its runner.") }
    }

    func run() async throws {
        let cache = Cache(root: options.cacheURL)
        let spec = try options.loadSpec()
        let nodes = try options.plan(cache, spec: spec).closure(of: targets)
        let cached = cache.usableEntries(of: nodes)
        let kind = executor ?? spec.executor ?? .local
        let runOptions = options.runOptions(jobs: jobs, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
                                            keepGoing: keepGoing, checkpointMinutes: checkpointMinutes)
        if detach, kind != .slurm { throw ValidationError("--detach needs --executor slurm (or 'executor: slurm' in the spec).") }
        let slurm = kind == .slurm ? options.slurmExecutor(spec.slurm) : nil
        let executor: any Executor = slurm ?? LocalExecutor(executable: runningExecutable)
        // Ctrl-C or SIGTERM: stop the children or cancel the submitted jobs (locks go with them) and report; re-running continues.
        let interrupted = InterruptFlag(cancelling: executor)
        defer { interrupted.stopListening() }
        let display = RunDisplay(mode: json ? .json : quiet ? .quiet : .text, style: .forStandardOutput(mode: progress))
        if detach, let slurm {
            let record = slurm.submit(nodes, cached: cached, options: runOptions, events: display.show)
            if !record.jobs.isEmpty { try record.save(in: cache.root) }
            display.detached(record)
            try interrupted.exitIfInterrupted()
            if !record.notSubmitted.isEmpty { throw ExitCode.failure }
            return
        }
        let summary = await executor.run(nodes, cached: cached, options: runOptions, events: display.show)
        display.finish(summary)
        if !interrupted.value { try ExportFolders.materialize(options.loadSpec(), specFile: options.specURL, targets: targets, cache: cache, log: json || quiet ? { _ in } : emitLine) }
        if !json && !interrupted.value { printReportTables(options, targets: targets) }
        try interrupted.exitIfInterrupted()
        if !summary.succeeded { throw ExitCode.failure }
    }
}

/// Set by the SIGINT and SIGTERM handlers, read once the run has stopped. From `init` until
/// `stopListening`, either signal records itself and cancels `executor` (its children are terminated
/// and waited for), instead of killing this process and orphaning them.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var received: Int32?
    private let sources: [DispatchSourceSignal]

    init(cancelling executor: any Executor) {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number)
        }
        for source in sources {
            let number = Int32(source.handle)
            source.setEventHandler { [self] in
                lock.withLock { received = received ?? number }
                executor.cancel()
            }
            source.resume()
        }
    }

    func stopListening() { for source in sources { source.cancel() } }
    var value: Bool { receivedSignal != nil }
    /// The first signal received, if any.
    var receivedSignal: Int32? { lock.withLock { received } }

    /// After an interrupted run: says so and exits as the shell expects of a process that stopped on
    /// that signal (130 for Ctrl-C, 143 for SIGTERM), having first stopped its stages.
    func exitIfInterrupted() throws {
        guard let number = receivedSignal else { return }
        FileHandle.standardError.write(Data("\(PipelineError.interrupted)\n".utf8))
        throw ExitCode(128 + number)
    }
}
