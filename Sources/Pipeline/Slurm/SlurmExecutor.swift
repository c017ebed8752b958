// SlurmExecutor: runs a plan's uncached nodes as Slurm batch jobs. Each node becomes one job running
// the same `streamline stage ID --node FILE --cache …` a local run starts as a child process (its node
// file in CACHE/runs/RUN/, which the job's machine must see like the rest of the cache), chained to
// the jobs of its uncached parents by `afterok` (with `--kill-on-invalid-dep=yes`, so a failure
// cancels its dependants); a node whose inputs are all cached gets no dependency. Then it polls
// squeue and turns job states into the same RunEvents a local run sends, reading each running job's
// output file for the stage's JSON-lines progress. The per-fingerprint lock in the shared cache keeps
// two runners (local or Slurm, on any node) from computing a stage twice.
//
// It is split so each half can run alone: `submit` sends everything and returns a run record (what
// `--detach` saves), `watch` follows a run record (what `streamline status --wait` does later from
// another process). It does not plan, and it does not decide what is cached.
//
// Files of a job, beside the local stage logs:
//     CACHE/logs/slurm/ID.JOB.out   the stage's stdout: JSON lines (progress, then "done")
//     CACHE/logs/slurm/ID.JOB.err   its stderr: the error text when it fails
//     CACHE/logs/FINGERPRINT.log    the stage's own log, as in local runs

import Foundation

/// Runs nodes as Slurm jobs through a `SlurmClient`.
public final class SlurmExecutor: Executor, @unchecked Sendable {
    public let client: SlurmClient
    /// The streamline executable the jobs run, absolute (`settings.executable` wins when set).
    public let executable: String
    /// Resources, prologue and executable from the spec's `slurm:` section.
    public let settings: SlurmSettings
    /// Seconds between two squeue polls while watching.
    public let pollInterval: Double
    /// Called with a one-line warning (a run record that could not be written, squeue hiccups).
    public var warn: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("warning: " + $0 + "\n").utf8)) }

    private let lock = NSLock()
    private var submitted: [SlurmJobID] = []
    private var cancelRequested = false

    public init(client: SlurmClient, executable: String, settings: SlurmSettings = SlurmSettings(), pollInterval: Double = 0.5) {
        self.client = client
        self.executable = executable
        self.settings = settings
        self.pollInterval = pollInterval
    }

    // MARK: - What a node becomes

    /// The folder of the jobs' output files in the cache at `cache`.
    public static func logFolder(_ cache: URL) -> URL { cache.appendingPathComponent("logs/slurm", isDirectory: true) }

    /// The job of `node`, waiting for `dependencies`, running the node planned in `nodeFile` (nil: the
    /// stage plans it from the spec). Its output paths keep Slurm's `%j` (job id).
    public func submission(for node: PlanNode, nodeFile: URL? = nil, after dependencies: [SlurmJobID],
                           options: RunOptions) -> SlurmSubmission {
        let resources = settings.resources(stage: node.stage, kind: node.kind)
        // Why cpus: the stage uses as many threads as Slurm gives it CPUs, and Slurm's default is one.
        let threads = resources.cpus ?? 1
        let arguments = nodeFile.map { options.stageArguments(node, nodeFile: $0, threads: threads) }
            ?? options.stageArguments(node, threads: threads)
        let command = ([settings.executable ?? executable] + arguments)
            .map(SlurmClient.shellQuoted).joined(separator: " ")
        // Why `exec`: the stage process replaces the job's shell, so a cancel's SIGTERM reaches it directly.
        let line = (settings.prologue + ["exec " + command]).joined(separator: " && ")
        let base = Self.logFolder(options.cache).appendingPathComponent(Self.fileName(node.id)).path
        return SlurmSubmission(name: "streamline:" + node.id, payload: .command(line), resources: resources,
                               dependencies: dependencies, output: base + ".%j.out", error: base + ".%j.err")
    }

    /// The shell script that submits every node not in `cached`, as `streamline plan --executor slurm`
    /// prints it: a `mkdir` of the log folder, then one `VARIABLE=$(sbatch …)` line per node. Its
    /// stages plan from the spec: printing a script writes no node files.
    public func script(_ nodes: [PlanNode], cached: Set<String>, options: RunOptions) throws(SlurmError) -> String {
        var variables: [String: String] = [:]
        var perStage: [String: Int] = [:]
        var jobs: [(variable: String, submission: SlurmSubmission)] = []
        for node in nodes where !cached.contains(node.id) {
            perStage[node.stage, default: 0] += 1
            let variable = String(node.stage.map { $0 == "-" ? "_" : $0 }) + "_\(perStage[node.stage]!)"
            variables[node.id] = variable
            let dependencies = Self.parents(of: node, cached: cached).compactMap { variables[$0] }.map(SlurmJobID.shellVariable)
            jobs.append((variable, submission(for: node, after: dependencies, options: options)))
        }
        guard !jobs.isEmpty else { return "# nothing to submit: every stage is cached" }
        return "mkdir -p \(SlurmClient.shellQuoted(Self.logFolder(options.cache).path))\n" + (try client.sbatchLines(jobs))
    }

    /// The distinct upstream ids of `node` that are not cached, in input order.
    static func parents(of node: PlanNode, cached: Set<String>) -> [String] {
        var seen = Set<String>()
        return node.inputs.map(\.upstream).filter { !cached.contains($0) && seen.insert($0).inserted }
    }

    /// `id` as a file name: characters other than letters, digits, '.', '=', '-' become '_'
    /// (also '%', which Slurm would expand in an output path).
    static func fileName(_ id: String) -> String {
        String(id.map { $0.isASCII && ($0.isLetter || $0.isNumber || ".=-".contains($0)) ? $0 : "_" })
    }

    // MARK: - Running

    public func run(_ nodes: [PlanNode], cached: Set<String>, options: RunOptions,
                    events: @escaping @Sendable (RunEvent) -> Void) async -> RunSummary {
        let record = submit(nodes, cached: cached, options: options, events: events)
        // Why only with jobs: a run that found everything cached must not hide the last real one from `status`.
        if !record.jobs.isEmpty {
            do { try record.save(in: options.cache) } catch {
                warn("\(error); `streamline status` and `cancel` will not find run \(record.run)")
            }
        }
        return await watch(record, events: events)
    }

    /// Cancels every job this executor submitted (and any it submits from now on); nothing else.
    public func cancel() {
        let jobs = lock.withLock {
            cancelRequested = true
            return submitted
        }
        do { try client.cancel(jobs) } catch { warn("could not cancel jobs \(jobs.map(\.rawValue).joined(separator: ",")): \(error)") }
    }

    private var isCancelled: Bool { lock.withLock { cancelRequested } }

    /// Notes a submitted job; cancels it at once when a cancel came while sbatch ran.
    private func register(_ job: SlurmJobID) {
        let cancelNow = lock.withLock {
            submitted.append(job)
            return cancelRequested
        }
        if cancelNow { try? client.cancel([job]) }
    }

    /// Submits every node of `nodes` not in `cached`, in plan order, each after its uncached parents'
    /// jobs, checking right before each sbatch that those jobs are known and not failed. Sends
    /// `cached` and `scheduled` ("submitted") events, and `failed`/`skipped` for what could not go out.
    /// Without keep-going, nothing more is submitted after a refused submission.
    public func submit(_ nodes: [PlanNode], cached: Set<String>, options: RunOptions,
                       events: @escaping @Sendable (RunEvent) -> Void) -> SlurmRunRecord {
        var record = SlurmRunRecord(spec: options.spec.standardizedFileURL.path, overrides: options.overrides,
                                    slurmConf: client.configFile ?? client.environment["SLURM_CONF"],
                                    keepGoing: options.keepGoing, cached: nodes.map(\.id).filter(cached.contains))
        for id in record.cached { events(.cached(id: id)) }
        var jobOf: [String: SlurmJobID] = [:]
        var blocked: [String: String] = [:]  // node id → the failed (or refused) upstream
        var firstRefused: String?
        var folderError: (any Error)?
        do { try makeDirectory(Self.logFolder(options.cache)) } catch { folderError = error }
        for node in nodes where !cached.contains(node.id) {
            let parents = Self.parents(of: node, cached: cached)
            let because: SkipReason? = isCancelled ? .interrupted
                : parents.lazy.compactMap { blocked[$0] }.first.map(SkipReason.failedUpstream)
                    ?? (options.keepGoing ? nil : firstRefused.map { .stopped(after: $0) })
            if let because {
                if case .failedUpstream(let ancestor) = because { blocked[node.id] = ancestor }
                record.notSubmitted.append(.init(id: node.id, blockedBy: because.recorded))
                events(.skipped(id: node.id, reason: because))
                continue
            }
            let dependencies = parents.compactMap { jobOf[$0] }
            let nodeFile = SlurmRunRecord.folder(in: options.cache).appendingPathComponent("\(record.run)/\(node.fingerprint).json")
            let submission = submission(for: node, nodeFile: nodeFile, after: dependencies, options: options)
            do {
                if let folderError { throw folderError }
                try NodeFile(node, from: nodes).write(to: nodeFile)
                try client.checkDependencies(dependencies)
                let job = try client.submit(submission)
                register(job)
                jobOf[node.id] = job
                record.jobs.append(.init(id: node.id, job: job,
                                         output: submission.output!.replacingOccurrences(of: "%j", with: job.rawValue),
                                         error: submission.error!.replacingOccurrences(of: "%j", with: job.rawValue),
                                         after: parents))
                events(.scheduled(id: node.id, job: job.rawValue, state: "submitted"))
            } catch {
                blocked[node.id] = node.id
                firstRefused = firstRefused ?? node.id
                record.notSubmitted.append(.init(id: node.id, error: "\(error)"))
                events(.failed(id: node.id, detail: "not submitted: \(error)", log: nil))
            }
        }
        return record
    }

    /// What the watcher knows about one job.
    private struct Tracker {
        var job: SlurmRunRecord.Job
        var shown = ""                 // the state text last sent
        var started: Date?
        var computed: Bool?            // from the stage's "done" line
        var offset: UInt64 = 0         // bytes of the output file already read
        var partial = Data()           // an incomplete last line
        var finalPolls = 0             // polls since the job completed without a "done" line yet
        var isFinal = false
    }

    /// Follows the jobs of `record` until every one has ended, sending their state changes, progress
    /// and outcomes. Without keep-going, the first failure cancels the run's jobs that have not
    /// started (running ones finish), as a local run stops launching. Jobs Slurm cancelled because a
    /// parent failed are reported as skipped, naming the failed upstream.
    public func watch(_ record: SlurmRunRecord, events: @escaping @Sendable (RunEvent) -> Void) async -> RunSummary {
        var summary = RunSummary()
        summary.cached = record.cached
        var blocked: [String: String] = [:]  // node id → the failed upstream (itself when it failed)
        var firstFailure: String?
        for item in record.notSubmitted {
            if let because = item.blockedBy { summary.skipped.append(item.id); blocked[item.id] = because }
            else { summary.failed.append(item.id); blocked[item.id] = item.id; firstFailure = firstFailure ?? item.id }
        }
        var trackers = record.jobs.map { Tracker(job: $0) }
        let watchStart = Date()
        // Without keep-going, a failure (here, a refused submission) stops the run: `mustStop` asks for
        // it, `stopping` says it was done (the pending jobs were cancelled).
        var mustStop = !record.keepGoing && firstFailure != nil
        var stopping = false
        var squeueFailures = 0
        func fail(_ tracker: inout Tracker, _ detail: String, log: String?) {
            tracker.isFinal = true
            blocked[tracker.job.id] = tracker.job.id
            firstFailure = firstFailure ?? tracker.job.id
            if !record.keepGoing { mustStop = true }
            summary.failed.append(tracker.job.id)
            events(.failed(id: tracker.job.id, detail: detail, log: log))
        }
        func finish(_ tracker: inout Tracker, computed: Bool) {
            tracker.isFinal = true
            // A job that ran between two polls was never seen running; every finish follows a start.
            if tracker.started == nil { events(.started(id: tracker.job.id)) }
            if computed { summary.computed.append(tracker.job.id) } else { summary.cached.append(tracker.job.id) }
            events(.finished(id: tracker.job.id, computed: computed,
                             seconds: Date().timeIntervalSince(tracker.started ?? watchStart)))
        }
        while trackers.contains(where: { !$0.isFinal }) {
            let infos: [SlurmJobID: SlurmJobInfo]
            do {
                infos = try client.jobs(trackers.filter { !$0.isFinal }.map(\.job.job))
                squeueFailures = 0
            } catch {
                // Why tolerate a few: a busy controller times out now and then; 20 polls in a row is an outage.
                squeueFailures += 1
                if squeueFailures < 20 {
                    try? await Task.sleep(nanoseconds: UInt64(pollInterval * 1e9))
                    continue
                }
                for i in trackers.indices where !trackers[i].isFinal {
                    fail(&trackers[i], "cannot follow Slurm job \(trackers[i].job.job): \(error)", log: nil)
                }
                break
            }
            for i in trackers.indices where !trackers[i].isFinal {
                let job = trackers[i].job
                readProgress(&trackers[i], events: events)
                guard let info = infos[job.job] else {
                    // Gone from squeue: it ended longer ago than the cluster's MinJobAge.
                    if let computed = trackers[i].computed { finish(&trackers[i], computed: computed) } else {
                        fail(&trackers[i], "Slurm no longer knows job \(job.job) (it ended longer ago than MinJobAge) "
                             + "and its output has no result; run again to redo it", log: job.error)
                    }
                    continue
                }
                switch info.state {
                case .pending, .unknown:
                    show(&trackers[i], info.state.description, events: events)
                case .running:
                    show(&trackers[i], info.nodes.isEmpty ? "running" : "running on \(info.nodes)", events: events)
                    if trackers[i].started == nil {
                        trackers[i].started = Date()
                        events(.started(id: job.id))
                    }
                case .completed:
                    // Why wait a few polls: on a shared filesystem the output file may lag the job's end.
                    if trackers[i].computed == nil, trackers[i].finalPolls < 4 {
                        trackers[i].finalPolls += 1
                    } else {
                        finish(&trackers[i], computed: trackers[i].computed ?? false)
                    }
                case .cancelled(let reason):
                    let skip: SkipReason? = job.after.lazy.compactMap({ blocked[$0] }).first.map(SkipReason.failedUpstream)
                        ?? (isCancelled ? .interrupted : stopping ? firstFailure.map { .stopped(after: $0) } : nil)
                    if let skip {
                        trackers[i].isFinal = true
                        if case .failedUpstream(let ancestor) = skip { blocked[job.id] = ancestor }
                        summary.skipped.append(job.id)
                        events(.skipped(id: job.id, reason: skip))
                    } else {
                        fail(&trackers[i], "Slurm job \(job.job) was cancelled by scancel or `streamline cancel`, not by this "
                             + "runner" + (reason.isEmpty ? "" : " (\(reason))"), log: job.error)
                    }
                case .failed, .timeout, .nodeFail, .outOfMemory:
                    let tail = Self.tail(of: job.error)
                    fail(&trackers[i], "Slurm job \(job.job) \(info.state)" + (info.nodes.isEmpty ? "" : " on \(info.nodes)")
                         + (tail.isEmpty ? "" : ": \(tail)"), log: job.error)
                }
            }
            if mustStop, !stopping {
                stopping = true
                cancelPending(trackers, states: infos)
            }
            if trackers.contains(where: { !$0.isFinal }) { try? await Task.sleep(nanoseconds: UInt64(pollInterval * 1e9)) }
        }
        return summary
    }

    /// Cancels the run's open jobs that `states` shows pending.
    private func cancelPending(_ trackers: [Tracker], states: [SlurmJobID: SlurmJobInfo]) {
        let pending = trackers.filter { tracker in
            guard !tracker.isFinal, case .pending? = states[tracker.job.job]?.state else { return false }
            return true
        }.map(\.job.job)
        do { try client.cancel(pending) } catch { warn("could not cancel pending jobs after a failure: \(error)") }
    }

    private func show(_ tracker: inout Tracker, _ state: String, events: @Sendable (RunEvent) -> Void) {
        guard state != tracker.shown else { return }
        tracker.shown = state
        events(.scheduled(id: tracker.job.id, job: tracker.job.job.rawValue, state: state))
    }

    /// Reads what the job's output file gained since the last call: progress lines become events,
    /// the "done" line sets `computed`.
    private func readProgress(_ tracker: inout Tracker, events: @Sendable (RunEvent) -> Void) {
        guard let handle = FileHandle(forReadingAtPath: tracker.job.output) else { return }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: tracker.offset)) != nil, let data = try? handle.readToEnd(), !data.isEmpty else { return }
        tracker.offset += UInt64(data.count)
        tracker.partial.append(data)
        while let newline = tracker.partial.firstIndex(of: 10) {
            let line = tracker.partial[tracker.partial.startIndex..<newline]
            tracker.partial.removeSubrange(tracker.partial.startIndex...newline)
            guard let message = try? JSONDecoder().decode(StageMessage.self, from: line) else { continue }
            if let progress = message.progress { events(.progress(id: tracker.job.id, progress)) }
            if message.event == "done" { tracker.computed = message.computed ?? false }
        }
    }

    /// The last 2,000 characters of a job's error file, trimmed ("" when it is missing or empty).
    /// What a failed job's error file says: the stage's own error line (StageErrorText), else its end.
    static func tail(of path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return StageErrorText.firstErrorLine(text) ?? String(text.trimmingCharacters(in: .whitespacesAndNewlines).suffix(2000))
    }
}

extension SkipReason {
    /// The text a run record keeps for a node that was not submitted: the failed or refused node it
    /// waited for, or "interrupt".
    var recorded: String {
        switch self {
        case .failedUpstream(let id), .stopped(after: let id): return id
        case .interrupted, .paused: return "interrupt"
        }
    }
}
