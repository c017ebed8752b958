// `streamline status`: each node cached, running, stopped (a resume point), failed (a log but no
// entry) or not run, and for nodes of the latest Slurm run of the spec (or `--run`) their job and
// its Slurm state. `--wait` reattaches to that run and follows it like an attached `run --executor slurm`.

import ArgumentParser
import Foundation
import Pipeline
import Stages

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each stage's state in the cache (cached, running, stopped, failed, not run) and its Slurm job's state.")

    @OptionGroup var options: PipelineOptions

    @OptionGroup var slurmRun: SlurmRunOption

    @Flag(help: "Follow the Slurm run until its jobs end, showing progress; fail if a stage failed.")
    var wait = false

    @Flag(help: "With --wait: print every event as a JSON line.")
    var json = false

    @Option(help: "With --wait: auto (bars in place on a terminal, plain lines when piped), tty or plain.")
    var progress: ProgressMode = .auto

    func run() async throws {
        let cache = Cache(root: options.cacheURL)
        let spec = try options.loadSpec()
        let statuses = PlanReport.statuses(try options.plan(cache, spec: spec).nodes, cache: cache)
        // Why optional without --run or --wait: a spec that never ran on Slurm still has a status.
        let record = slurmRun.name == nil && !wait ? try? slurmRun.load(cache: cache.root, spec: options.specURL)
            : try slurmRun.load(cache: cache.root, spec: options.specURL)
        let executor = options.slurmExecutor(spec.slurm, recordedConf: record?.slurmConf)
        if wait, let record {
            let display = RunDisplay(mode: json ? .json : .text, style: .forStandardOutput(mode: progress))
            let summary = await executor.watch(record, events: display.show)
            display.finish(summary)
            if !summary.succeeded { throw ExitCode.failure }
            return
        }
        printStates(statuses, cache: cache, record: record, client: executor.client)
    }

    /// "stopped after step K of N, resumes there", when an attempt left a resume point.
    func resumable(_ node: PlanNode, _ cache: Cache) -> String? {
        let url = cache.resumeURL(node.fingerprint)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let progress = resumePointProgress(at: url) else { return "stopped (unreadable resume point \(url.path))" }
        return "stopped after step \(progress.step) of \(progress.steps), resumes there"
    }

    /// One line per node: its state in the cache, or its Slurm job's state when `record` submitted it.
    func printStates(_ statuses: [NodeStatus], cache: Cache, record: SlurmRunRecord?, client: SlurmClient) {
        let jobs = Dictionary((record?.jobs ?? []).map { ($0.id, $0.job) }, uniquingKeysWith: { $1 })
        var infos: [SlurmJobID: SlurmJobInfo] = [:]
        var unknown = "not known to Slurm any more"
        do { infos = jobs.isEmpty ? [:] : try client.jobs(Array(jobs.values)) } catch {
            // Why not fail: the cache's view is still worth showing on a machine without Slurm.
            FileHandle.standardError.write(Data("warning: \(error)\n".utf8))
            unknown = "state unknown (squeue failed)"
        }
        let width = statuses.map(\.node.id.count).max() ?? 0
        for s in statuses {
            let attempted = FileManager.default.fileExists(atPath: cache.logURL(s.node.fingerprint).path)
            let stopped = s.cached ? nil : resumable(s.node, cache)
            var state = s.cached ? "cached" : cache.isLocked(s.node.fingerprint) ? "running"
                : stopped ?? (attempted ? "failed" : "not run")
            if !s.cached, let job = jobs[s.node.id] {
                let info = infos[job]
                state = "slurm job \(job) " + (info.map { "\($0.state)" + ($0.nodes.isEmpty ? "" : " on \($0.nodes)") } ?? unknown)
                // A job that ended (cancelled, out of time) may have left a resume point: say so.
                if let stopped, info?.state.isFinal ?? true { state += "; \(stopped)" }
            }
            print("\(s.node.id.padding(toLength: width, withPad: " ", startingAt: 0))  \(state)")
        }
    }
}
