// Runs one planned node in this process: what `streamline stage ID` does, on this machine or any
// other that sees the cache. Checks that every input is cached, takes the node's lock, re-checks the
// cache (another runner may have finished it meanwhile), runs the kind into a scratch folder,
// checks the outputs and publishes the entry atomically. Scheduling many nodes is Executor.swift.

import Foundation
import TensorStore

public enum StageOutcome: Sendable {
    /// Another process had already produced the entry.
    case cached(CacheRecord)
    /// This call computed and published it.
    case computed(CacheRecord)

    public var record: CacheRecord {
        switch self { case .cached(let r), .computed(let r): return r }
    }
}

public enum StageRunner {
    /// Runs `node` (planned against `cache`, so its inputs carry real digests when cached). A stage that
    /// can resume writes its state every `checkpointEvery` seconds (nil: only when stopped, `stop`) and
    /// continues from what an earlier attempt left.
    public static func run(_ node: PlanNode, plan: Plan, registry: StageRegistry, cache: Cache, threads: Int,
                           toolVersion: String, checkpointEvery: Double? = RunOptions.defaultCheckpointMinutes * 60,
                           stop: GracefulStop = .shared,
                           progress: @escaping @Sendable (StageProgress) -> Void = { _ in }) throws -> StageOutcome {
        let (inputURLs, gathered) = try inputStores(of: node, plan: plan, registry: registry, cache: cache)
        let fp = node.fingerprint
        let lock = try cache.lock(fp)
        defer { lock.release() }
        if let rec = cache.lookup(fp) { return .cached(rec) }

        let kind = registry[node.kind]!
        let scratch = try cache.makeScratch(fp)
        try makeDirectory(cache.logURL(fp).deletingLastPathComponent())
        let resume = ResumePoint(url: cache.resumeURL(fp), interval: checkpointEvery, stop: stop)
        // A resumed attempt's log continues the stopped one's, so the log holds every step.
        let resuming = FileManager.default.fileExists(atPath: resume.url.path)
        let log = LogFile(url: cache.logURL(fp), append: resuming)
        let started = timestamp()
        log.write("stage \(node.id) fingerprint \(fp) kind \(kind.name) v\(kind.version) on \(hostName()) pid \(getpid())")
        var outputs: [String: URL] = [:]
        for o in kind.outputs { outputs[o.name] = scratch.appendingPathComponent("\(o.name).h5") }
        var context = StageContext(stageID: node.id, params: node.params, seed: node.seed, inputs: inputURLs,
                                   outputs: outputs, threads: threads, progress: progress, log: { log.write($0) })
        context.gathered = gathered
        context.resume = resume
        do {
            try kind.run(context)
        } catch let stopped as StageStopped {
            log.write(stopped.description)
            try? FileManager.default.removeItem(at: scratch)
            throw PipelineError.stageStopped(stage: node.id, stopped)
        } catch {
            log.write("failed: \(error)")
            try? FileManager.default.removeItem(at: scratch)
            throw PipelineError.stageFailed(stage: node.id, detail: "\(error)", log: cache.logURL(fp).path)
        }
        var digests: [String: String] = [:]
        for o in kind.outputs {
            do { digests[o.name] = try TensorStoreReader.digest(ofStoreAt: outputs[o.name]!) } catch {
                log.write("failed: output '\(o.name)': \(error)")
                try? FileManager.default.removeItem(at: scratch)
                throw PipelineError.stageFailed(stage: node.id, detail: "output '\(o.name)' is not a valid store: \(error)",
                                                log: cache.logURL(fp).path)
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let record = CacheRecord(fingerprint: fp, id: node.id, stage: node.stage, kind: node.kind, version: node.version,
                                 params: node.params, fileDigests: node.fileDigests, seed: node.seed, inputs: node.inputs, outputs: digests,
                                 toolVersion: toolVersion, host: hostName(), pid: getpid(), started: started,
                                 finished: timestamp(), peakMemoryBytes: usage.ru_maxrss * 1024)
        log.write("done: outputs \(digests.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.prefix(12))" }.joined(separator: " "))")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(record).write(to: scratch.appendingPathComponent("record.json"))
            try FileManager.default.copyItem(at: cache.logURL(fp), to: scratch.appendingPathComponent("log.txt"))
        } catch {
            throw PipelineError.io(operation: "write record into", path: scratch.path, detail: "\(error)")
        }
        // A stage whose runner died (Ctrl-C, kill) must not publish for a run that no longer exists.
        if RunnerWatch.runnerIsGone {
            try? FileManager.default.removeItem(at: scratch)
            throw PipelineError.runnerGone(stage: node.id)
        }
        try cache.publish(scratch: scratch, fingerprint: fp)
        try? FileManager.default.removeItem(at: resume.url)
        return .computed(record)
    }
}

extension StageRunner {
    /// The cached input stores of `node`: single inputs by name, and gather inputs with the labels of
    /// each gathered node, in the node's input order (list then plan order). Throws when an input is
    /// not cached yet.
    public static func inputStores(of node: PlanNode, plan: Plan, registry: StageRegistry,
                                   cache: Cache) throws -> (inputs: [String: URL], gathered: [String: [GatheredInput]]) {
        let gathers = registry[node.kind]!.inputs.filter(\.many).map(\.name)
        var inputs: [String: URL] = [:]
        var gathered: [String: [GatheredInput]] = [:]
        for input in node.inputs {
            let upstream = plan.node(input.upstream)!
            guard !input.isPending, cache.lookup(upstream.fingerprint) != nil else {
                throw PipelineError.missingCachedInput(stage: node.id, input: input.name, upstream: upstream.id,
                                                       fingerprint: upstream.fingerprint)
            }
            let url = cache.outputURL(upstream.fingerprint, input.output)
            if let gather = gathers.first(where: { input.name == Planner.gatherInputName($0, input.upstream) }) {
                gathered[gather, default: []].append(GatheredInput(url: url, stage: upstream.stage, id: upstream.id,
                                                                   variables: upstream.variables))
            } else {
                inputs[input.name] = url
            }
        }
        // A gather whose stages have no members still reads an (empty) list.
        for name in gathers where gathered[name] == nil { gathered[name] = [] }
        return (inputs, gathered)
    }
}

/// Appends timestamped lines to a log file (the file is created on first use).
final class LogFile: @unchecked Sendable {
    private let handle: FileHandle?
    private let lock = NSLock()

    init(url: URL, append: Bool = false) {
        if !append || !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        handle = try? FileHandle(forWritingTo: url)
        if append { _ = try? handle?.seekToEnd() }
    }

    func write(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        handle?.write(Data("\(timestamp()) \(line)\n".utf8))
    }
}
