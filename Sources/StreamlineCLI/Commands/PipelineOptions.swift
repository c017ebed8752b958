// Options shared by the pipeline commands (validate, plan, run, explain, stage, logs, status, cache),
// and the one place that turns them into a loaded spec, a plan and a cache.

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

    /// The plan, with input digests taken from the cache's records where the upstream is cached.
    func plan(_ cache: Cache) throws -> Plan {
        try Planner.plan(loadSpec(), registry: StageCatalog.registry) { cache.record($0)?.outputs }
    }
}

/// Writes one line to stdout unbuffered, so a reader on a pipe sees it at once.
func emitLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
