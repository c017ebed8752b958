// Options shared by the pipeline commands (validate, plan, run, explain, stage, logs, status, cancel,
// cache), and the one place that turns them into a loaded spec, a plan, a cache and an executor.

import ArgumentParser
import Foundation
import Pipeline
import Stages

struct PipelineOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "The pipeline spec (YAML).")
    var spec: String = "pipeline.yaml"

    @Option(help: "The cache folder (default: $STREAMLINE_CACHE, else .streamline-cache beside the spec).")
    var cache: String?

    @Option(name: .short, help: ArgumentHelp("Override a top-level parameter, e.g. -p ratio=0.3 (repeatable).",
                                              valueName: "name=value"))
    var param: [String] = []

    var specURL: URL { URL(fileURLWithPath: spec).standardizedFileURL }

    var cacheURL: URL {
        if let cache { return URL(fileURLWithPath: cache).standardizedFileURL }
        if let env = ProcessInfo.processInfo.environment["STREAMLINE_CACHE"], !env.isEmpty {
            return URL(fileURLWithPath: env).standardizedFileURL
        }
        return specURL.deletingLastPathComponent().appendingPathComponent(".streamline-cache")
    }

    func loadSpec() throws -> Spec {
        try Spec.load(url: specURL, displayName: spec, overrides: param, registry: StageCatalog.registry)
    }

    /// The plan (of `spec`, default: the loaded spec), with input digests taken from the cache's
    /// records where the upstream is cached.
    func plan(_ cache: Cache, spec: Spec? = nil) throws -> Plan {
        try Planner.plan(spec ?? loadSpec(), registry: StageCatalog.registry) { cache.record($0)?.outputs }
    }

    /// How a run of these options runs its stages (threads and jobs apply to local runs).
    func runOptions(jobs: Int = 1, threads: Int = 1, keepGoing: Bool = false,
                    checkpointMinutes: Double = RunOptions.defaultCheckpointMinutes) -> RunOptions {
        RunOptions(spec: specURL, cache: cacheURL, overrides: param, jobs: jobs, threads: threads, keepGoing: keepGoing,
                   checkpointMinutes: checkpointMinutes)
    }

    /// A Slurm executor with the spec's `slurm:` settings, the Slurm tools on PATH and `SLURM_CONF`
    /// from the environment, else `recordedConf` (the one a recorded run was submitted to).
    func slurmExecutor(_ settings: SlurmSettings, recordedConf: String? = nil) -> SlurmExecutor {
        let environment = ProcessInfo.processInfo.environment
        let conf = environment["SLURM_CONF"].flatMap { $0.isEmpty ? nil : $0 } ?? recordedConf
        return SlurmExecutor(client: SlurmClient(configFile: conf, environment: environment),
                             executable: runningExecutable.path, settings: settings)
    }
}

/// The pipeline options and one node id: what `explain` and `logs` read.
struct NodeArguments: ParsableArguments {
    @OptionGroup var options: PipelineOptions

    @Argument(help: "The node id, e.g. prune or prune[ratio=0.25].")
    var id: String

    /// The cache and the planned node the id names (a typed error with the nearest ids when none).
    func resolve() throws -> (Cache, PlanNode) {
        let cache = Cache(root: options.cacheURL)
        return (cache, try options.plan(cache).requireNode(id))
    }
}

/// `--run NAME`: which recorded Slurm run `status` and `cancel` mean.
struct SlurmRunOption: ParsableArguments {
    @Option(name: .customLong("run"), help: "The Slurm run, as named by 'run --detach' (default: the latest Slurm run of this spec).")
    var name: String?

    func load(cache: URL, spec: URL) throws -> SlurmRunRecord {
        try SlurmRunRecord.load(in: cache, run: name, spec: spec)
    }
}

/// This process's executable, absolute and without symlinks: what stage processes and jobs run.
let runningExecutable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()

extension ExecutorKind: ExpressibleByArgument {}

/// Writes one line to stdout unbuffered, so a reader on a pipe sees it at once.
func emitLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
