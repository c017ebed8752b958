// Executors run a plan's uncached nodes in dependency order. `LocalExecutor` starts one
// `streamline stage ID --node FILE` process per node (the node file, NodeFile.swift, holds the planned
// node, so the process does not plan again), up to `jobs` at once, and reads their JSON-lines progress;
// SlurmExecutor (Slurm/SlurmExecutor.swift) implements the same protocol by submitting those
// commands as jobs.
// Decisions about what is cached come from the plan and the cache, not from the executor.

import Foundation

/// What a run reports as it goes; the CLI draws it (text, quiet or JSON lines).
public enum RunEvent: Sendable, Equatable {
    case cached(id: String)
    case started(id: String)
    case progress(id: String, StageProgress)
    /// `computed` is false when another runner finished it first (the stage found it cached).
    case finished(id: String, computed: Bool, seconds: Double)
    case failed(id: String, detail: String, log: String?)
    /// Not run, for `reason`.
    case skipped(id: String, reason: SkipReason)
    /// A batch scheduler's view of a node: its `job` id and `state` as text, e.g. "submitted",
    /// "pending (Dependency)", "running on n1" (Slurm; sent whenever the state changes).
    case scheduled(id: String, job: String, state: String)
}

/// Why a node of a run was not run.
public enum SkipReason: Sendable, Equatable {
    /// `ancestor`, upstream of the node (directly or through other skipped nodes), failed.
    case failedUpstream(String)
    /// The node does not depend on any failure, but the run stopped launching after `failure` failed
    /// (no `--keep-going`).
    case stopped(after: String)
    /// The run was interrupted (Ctrl-C, SIGTERM, `cancel`).
    case interrupted
    /// The run was interrupted and the stage stopped after update `step` of `steps`, leaving a resume
    /// point: the next run continues from there.
    case paused(step: Int, steps: Int)
}

/// Where a run's stages execute (`--executor`, or `executor:` in the spec).
public enum ExecutorKind: String, Sendable, CaseIterable, Codable {
    /// Child processes of the runner, on this machine.
    case local
    /// Slurm batch jobs chained by `afterok` dependencies (SlurmExecutor).
    case slurm
}

/// How to run: the same for every executor.
public struct RunOptions: Sendable {
    public var spec: URL
    public var cache: URL
    public var overrides: [String]
    public var jobs: Int
    /// Threads in all; each running stage gets `threads / jobs` (at least one).
    public var threads: Int
    public var keepGoing: Bool
    /// Minutes between a training stage's resume points (0: only when stopped).
    public var checkpointMinutes: Double
    /// The default of `checkpointMinutes`: at most ten minutes of training lost to a kill -9 or a crash.
    public static let defaultCheckpointMinutes = 10.0

    public init(spec: URL, cache: URL, overrides: [String] = [], jobs: Int = 1, threads: Int = 1, keepGoing: Bool = false,
                checkpointMinutes: Double = defaultCheckpointMinutes) {
        self.spec = spec
        self.cache = cache
        self.overrides = overrides
        self.jobs = max(1, jobs)
        self.threads = max(1, threads)
        self.keepGoing = keepGoing
        self.checkpointMinutes = max(0, checkpointMinutes)
    }

    /// The arguments of the stage process for `node` (after the executable) that runs the node
    /// planned in `nodeFile`: what the executors start.
    public func stageArguments(_ node: PlanNode, nodeFile: URL, threads: Int) -> [String] {
        ["stage", node.id, "--node", nodeFile.path] + commonStageArguments(threads)
    }

    /// The arguments of a stage process that plans `node` from the spec: the command a user runs by
    /// hand, and what `plan --executor slurm` prints.
    public func stageArguments(_ node: PlanNode, threads: Int) -> [String] {
        ["stage", node.id, "--spec", spec.path] + commonStageArguments(threads) + overrides.flatMap { ["-p", $0] }
    }

    private func commonStageArguments(_ threads: Int) -> [String] {
        ["--cache", cache.path, "--threads", String(threads), "--json"]
            + (checkpointMinutes == Self.defaultCheckpointMinutes ? [] : ["--checkpoint-minutes", "\(checkpointMinutes)"])
    }
}

/// The outcome of a run.
public struct RunSummary: Sendable, Equatable {
    public var cached: [String] = []
    public var computed: [String] = []
    public var failed: [String] = []
    public var skipped: [String] = []
    public var succeeded: Bool { failed.isEmpty && skipped.isEmpty }
}

public protocol Executor: Sendable {
    /// Runs `nodes` (a dependency-closed list in plan order; `cached` holds the ids already cached).
    func run(_ nodes: [PlanNode], cached: Set<String>, options: RunOptions,
             events: @escaping @Sendable (RunEvent) -> Void) async -> RunSummary
    /// Stops everything started (Ctrl-C): terminate children, which releases their locks.
    func cancel()
}

/// Runs each node as a child process of this machine: `EXECUTABLE stage ID --node FILE --cache …`.
public final class LocalExecutor: Executor, @unchecked Sendable {
    public let executable: URL
    private let lock = NSLock()
    private var running: [String: Process] = [:]
    private var cancelled = false

    public init(executable: URL) { self.executable = executable }

    public func cancel() {
        let children = lock.withLock {
            cancelled = true
            return Array(running.values)
        }
        for child in children where child.isRunning { child.terminate() }
    }

    private var isCancelled: Bool { lock.withLock { cancelled } }

    public func run(_ nodes: [PlanNode], cached: Set<String>, options: RunOptions,
                    events: @escaping @Sendable (RunEvent) -> Void) async -> RunSummary {
        var summary = RunSummary()
        var done = cached                 // finished ids (cached or computed)
        var blocked: [String: String] = [:]  // id → the failed ancestor that blocks it (itself when it failed)
        var pending = nodes.filter { !cached.contains($0.id) }
        for node in nodes where cached.contains(node.id) {
            summary.cached.append(node.id)
            events(.cached(id: node.id))
        }
        let perStage = max(1, options.threads / options.jobs)
        // The run's node files; a crashed runner's folder is a dead pid's scratch, which `cache gc` removes.
        let nodeFolder = options.cache.appendingPathComponent("scratch/nodes-\(UUID().uuidString.prefix(8)).\(hostName()).\(getpid())")
        defer { try? FileManager.default.removeItem(at: nodeFolder) }
        await withTaskGroup(of: ChildResult.self) { group in
            var active = 0
            var stopLaunching = false
            while true {
                // Launch every ready node up to the job limit, in plan order.
                var i = 0
                while i < pending.count, active < options.jobs, !stopLaunching, !isCancelled {
                    let node = pending[i]
                    if let failedUp = node.inputs.lazy.compactMap({ blocked[$0.upstream] }).first {
                        blocked[node.id] = failedUp
                        summary.skipped.append(node.id)
                        events(.skipped(id: node.id, reason: .failedUpstream(failedUp)))
                        pending.remove(at: i)
                        continue
                    }
                    guard node.inputs.allSatisfy({ done.contains($0.upstream) }) else { i += 1; continue }
                    pending.remove(at: i)
                    active += 1
                    events(.started(id: node.id))
                    let nodeFile = nodeFolder.appendingPathComponent("\(node.fingerprint).json")
                    group.addTask {
                        await self.runChild(node, of: nodes, nodeFile: nodeFile, threads: perStage, options: options, events: events)
                    }
                }
                guard active > 0, let child = await group.next() else { break }
                active -= 1
                if child.status == 0 {
                    done.insert(child.id)
                    if child.computed { summary.computed.append(child.id) } else { summary.cached.append(child.id) }
                    events(.finished(id: child.id, computed: child.computed, seconds: child.seconds))
                } else if isCancelled {
                    // Terminated by `cancel`: stopped, not broken (and perhaps resumable).
                    summary.skipped.append(child.id)
                    events(.skipped(id: child.id, reason: child.paused.map { .paused(step: $0.step, steps: $0.totalSteps) } ?? .interrupted))
                } else {
                    blocked[child.id] = child.id
                    summary.failed.append(child.id)
                    events(.failed(id: child.id, detail: child.detail, log: child.log))
                    if !options.keepGoing { stopLaunching = true }
                }
            }
        }
        // What never started: plan order puts every upstream first, so a failure propagates down
        // through the skipped nodes, and only a node that depends on none is merely stopped.
        for node in pending {
            let reason: SkipReason
            if let ancestor = node.inputs.lazy.compactMap({ blocked[$0.upstream] }).first {
                blocked[node.id] = ancestor
                reason = .failedUpstream(ancestor)
            } else if !isCancelled, let first = summary.failed.first {
                reason = .stopped(after: first)
            } else {
                reason = .interrupted
            }
            summary.skipped.append(node.id)
            events(.skipped(id: node.id, reason: reason))
        }
        return summary
    }

    /// What one stage process came to.
    private struct ChildResult: Sendable {
        var id: String
        var status: Int32
        var computed: Bool
        var seconds: Double
        /// For a failure: the stage's own error line (StageErrorText), and the log holding all it printed.
        var detail: String
        var log: String?
        /// Where a stopped stage left its resume point (its "stopped" message), if it did.
        var paused: StageProgress? = nil
    }

    /// Runs one stage process, tied to this runner (`RunnerWatch`), and waits for it. A failed stage's
    /// whole stderr is appended to its log, so the one line shown is never all there is.
    private func runChild(_ node: PlanNode, of nodes: [PlanNode], nodeFile: URL, threads: Int, options: RunOptions,
                          events: @escaping @Sendable (RunEvent) -> Void) async -> ChildResult {
        do { try NodeFile(node, from: nodes).write(to: nodeFile) } catch {
            return ChildResult(id: node.id, status: -1, computed: false, seconds: 0, detail: "\(error)", log: nil)
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = options.stageArguments(node, nodeFile: nodeFile, threads: threads)
        process.environment = ProcessInfo.processInfo.environment.merging(RunnerWatch.environment()) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let start = Date()
        do {
            try process.run()
        } catch {
            return ChildResult(id: node.id, status: -1, computed: false, seconds: 0,
                               detail: "could not start \(executable.path): \(error)", log: nil)
        }
        // A cancel that came between the start and this registration did not see the child: stop it now.
        if lock.withLock({ running[node.id] = process; return cancelled }) { process.terminate() }
        // Both pipes are drained on their own threads so a chatty child never blocks on a full pipe.
        let paused = UncheckedBox<StageProgress?>(nil)
        let result: (Bool, String) = await withCheckedContinuation { continuation in
            let errorText = UncheckedBox("")
            let errDone = DispatchSemaphore(value: 0)
            Thread {
                errorText.value = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                errDone.signal()
            }.start()
            Thread {
                var computed = false
                var buffer = Data()
                while true {
                    let chunk = out.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    while let nl = buffer.firstIndex(of: 10) {
                        let line = buffer[buffer.startIndex..<nl]
                        buffer.removeSubrange(buffer.startIndex...nl)
                        guard let msg = try? JSONDecoder().decode(StageMessage.self, from: line) else { continue }
                        switch msg.event {
                        case "progress": if let p = msg.progress { events(.progress(id: node.id, p)) }
                        case "done": computed = msg.computed ?? false
                        case "stopped": paused.value = msg.progress
                        default: break
                        }
                    }
                }
                process.waitUntilExit()
                errDone.wait()
                continuation.resume(returning: (computed, errorText.value))
            }.start()
        }
        lock.withLock { running[node.id] = nil }
        let signaled = process.terminationReason == .uncaughtSignal
        let status = signaled ? 128 + process.terminationStatus : process.terminationStatus
        let seconds = Date().timeIntervalSince(start)
        guard status != 0 else { return ChildResult(id: node.id, status: 0, computed: result.0, seconds: seconds, detail: "", log: nil) }
        let stderr = result.1
        let log = options.cache.appendingPathComponent("logs/\(node.fingerprint).log")
        let logged = stderr.isEmpty ? false : Self.append("stderr of the stage process (exit status \(status)):\n\(stderr)", to: log)
        return ChildResult(id: node.id, status: status, computed: false, seconds: seconds,
                           detail: StageErrorText.detail(stderr: stderr, status: process.terminationStatus, signaled: signaled),
                           log: logged || FileManager.default.fileExists(atPath: log.path) ? log.path : nil, paused: paused.value)
    }

    /// Appends `text` to the file at `url` (created with its folder if missing); false if it cannot.
    private static func append(_ text: String, to url: URL) -> Bool {
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        guard let handle = try? FileHandle(forWritingTo: url) else { return false }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
            return true
        } catch {
            return false
        }
    }
}

/// One JSON line a stage process prints on stdout.
public struct StageMessage: Codable, Sendable {
    /// "progress", "done", or "stopped" (stopped on request with a resume point; `progress` says where).
    public var event: String
    public var id: String
    public var progress: StageProgress?
    public var fingerprint: String?
    public var computed: Bool?
    public var outputs: [String: String]?

    public init(event: String, id: String, progress: StageProgress? = nil, fingerprint: String? = nil,
                computed: Bool? = nil, outputs: [String: String]? = nil) {
        self.event = event
        self.id = id
        self.progress = progress
        self.fingerprint = fingerprint
        self.computed = computed
        self.outputs = outputs
    }

    /// The message as one line of JSON (sorted keys).
    public var line: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A mutable box handed between threads where the hand-off is ordered by other means (join).
final class UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
