// `streamline run [TARGET]`: plan, skip what is cached, run the rest as stage processes on this
// machine or as Slurm jobs (`--executor slurm`, optionally `--detach`ed).

import ArgumentParser
import Foundation
import Pipeline
import Stages

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline (or one target and what it needs), reusing every cached stage.")

    @OptionGroup var options: PipelineOptions

    @Argument(help: "A stage name or sweep member id; default: every stage.")
    var target: String?

    @Option(help: "Stages run at once (local runs; Slurm runs as many as the cluster allows).")
    var jobs: Int = 1

    @Option(help: "Threads in all, split between running stages (default: all cores; a Slurm job uses its CPUs).")
    var threads: Int?

    @Flag(help: "After a failure, keep running whatever does not depend on it.")
    var keepGoing = false

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
        if detach, executor == .local { throw ValidationError("--detach needs --executor slurm: a local run cannot outlive its runner.") }
    }

    func run() async throws {
        let cache = Cache(root: options.cacheURL)
        let spec = try options.loadSpec()
        let nodes = try options.plan(cache, spec: spec).closure(of: target)
        let cached = cache.usableEntries(of: nodes)
        let kind = executor ?? spec.executor ?? .local
        let runOptions = options.runOptions(jobs: jobs, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
                                            keepGoing: keepGoing)
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
        if !interrupted.value { try ExportFolders.materialize(options.loadSpec(), target: target, cache: cache, log: json || quiet ? { _ in } : emitLine) }
        if !json && !interrupted.value { printReportTables(options, target: target) }
        try interrupted.exitIfInterrupted()
        if !summary.succeeded { throw ExitCode.failure }
    }
}

/// Draws run events: one line per state change and, on a terminal, a live board of running stages
/// redrawn in place (plain mode prints a bar line instead, at most once a second, and the last step);
/// or JSON lines.
final class RunDisplay: @unchecked Sendable {
    enum Mode { case text, quiet, json }
    let mode: Mode
    let style: TerminalStyle
    private let lock = NSLock()
    private var lastBar: [String: Date] = [:]
    private var started: [String: Date] = [:]
    private var running: [String] = []
    private var latest: [String: StageProgress] = [:]
    private var boardHeight = 0
    private var lastDraw = Date.distantPast
    /// Where text goes: standard output, or a test's buffer.
    private let write: @Sendable (String) -> Void

    init(mode: Mode, style: TerminalStyle = .plain,
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) {
        self.mode = mode
        self.style = mode == .text ? style : .plain
        self.write = write
    }

    func show(_ event: RunEvent) {
        lock.withLock {
            if mode == .json { writeLine(jsonLine(event)); return }
            switch event {
            case .cached(let id): if mode == .text { say(paint("cached   \(id)", ANSI.dim)) }
            case .started(let id):
                started[id] = Date()
                running.append(id)
                if mode == .text { say("start    \(id)") }
            case .progress(let id, let p):
                guard mode == .text else { return }
                if style.live {
                    latest[id] = p
                    // A redraw per report would flood a slow terminal; ten a second reads as smooth.
                    guard p.step == p.totalSteps || Date().timeIntervalSince(lastDraw) >= 0.1 else { return }
                    say()
                    return
                }
                // At most one bar line per stage per second, and always the last step: readable in a CI log,
                // and a fast run still shows that it got to the end.
                guard p.step == p.totalSteps || Date().timeIntervalSince(lastBar[id] ?? .distantPast) >= 1 else { return }
                lastBar[id] = Date()
                writeLine("  \(id)  \(ProgressBoard.bar(p, elapsed: Date().timeIntervalSince(started[id] ?? Date())))")
            case .finished(let id, let computed, let seconds):
                stopped(id)
                let line = "\(computed ? "done  " : "cached")   \(id)  (\(String(format: "%.1f", seconds)) s)"
                if mode == .text { say(paint(line, computed ? ANSI.green : ANSI.dim)) }
            case .failed(let id, let detail, let log):
                stopped(id)
                say(paint("FAILED   \(id): \(detail)", ANSI.red) + (log.map { "\n         log: \($0)" } ?? ""))
            case .skipped(let id, let reason):
                stopped(id)
                guard mode == .text else { return }
                switch reason {
                case .failedUpstream(let ancestor): say("skipped  \(id) (needs \(ancestor), which failed)")
                case .stopped(let failure):
                    say("skipped  \(id) (not started: the run stopped after \(failure) failed; --keep-going runs it)")
                case .interrupted: say("skipped  \(id) (interrupted)")
                }
            case .scheduled(let id, let job, let state):
                if mode == .text { say("slurm    \(id)  job \(job) \(state)") }
            }
        }
    }

    func finish(_ s: RunSummary) {
        if mode == .json { return }
        let failed = "\(s.failed.count) failed"
        lock.withLock {
            say("\(s.computed.count) computed, \(s.cached.count) cached, \(s.failed.isEmpty ? failed : paint(failed, ANSI.red)), "
                + "\(s.skipped.count) skipped")
        }
    }

    private func stopped(_ id: String) {
        running.removeAll { $0 == id }
        latest[id] = nil
    }

    private func writeLine(_ text: String) { write(text + "\n") }

    private func paint(_ text: String, _ colour: (String) -> String) -> String { style.colour ? colour(text) : text }

    /// Prints `line` (if any) above the live board and redraws the board; without a live board, just the line.
    private func say(_ line: String? = nil) {
        guard style.live else {
            if let line { writeLine(line) }
            return
        }
        let now = Date()
        let board = ProgressBoard.lines(running.map { RunningStage(id: $0, progress: latest[$0],
                                                                   elapsed: now.timeIntervalSince(started[$0] ?? now)) },
                                        width: style.width)
        var text = boardHeight > 0 ? ANSI.up(boardHeight) + ANSI.clearBelow : ""
        if let line { text += line + "\n" }
        text += board.map { $0 + "\n" }.joined()
        write(text)
        boardHeight = board.count
        lastDraw = now
    }

    /// After `run --detach`: what went out and how to follow it.
    func detached(_ record: SlurmRunRecord) {
        if mode == .json {
            let object: [String: Any] = ["event": "detached", "run": record.run, "jobs": record.jobs.count]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            writeLine(String(decoding: data, as: UTF8.self))
            return
        }
        writeLine("submitted \(record.jobs.count) jobs as run \(record.run) (\(record.cached.count) cached, "
                 + "\(record.notSubmitted.count) not submitted); follow with 'streamline status --wait', stop with 'streamline cancel'")
    }

    func jsonLine(_ event: RunEvent) -> String {
        var object: [String: Any] = [:]
        switch event {
        case .cached(let id): object = ["event": "cached", "id": id]
        case .started(let id): object = ["event": "started", "id": id]
        case .progress(let id, let p):
            object = ["event": "progress", "id": id, "step": p.step, "total": p.totalSteps]
            if let loss = p.loss { object["loss"] = loss }
            if let tps = p.tokensPerSecond { object["tokens_per_second"] = tps }
        case .finished(let id, let computed, let seconds):
            object = ["event": "finished", "id": id, "computed": computed, "seconds": seconds]
        case .failed(let id, let detail, let log):
            object = ["event": "failed", "id": id, "detail": detail]
            if let log { object["log"] = log }
        case .skipped(let id, let reason):
            object = ["event": "skipped", "id": id]
            switch reason {
            case .failedUpstream(let ancestor): object["because"] = ancestor
            case .stopped(let failure): object["stopped_after"] = failure
            case .interrupted: object["because"] = "interrupt"
            }
        case .scheduled(let id, let job, let state): object = ["event": "scheduled", "id": id, "job": job, "state": state]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
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
