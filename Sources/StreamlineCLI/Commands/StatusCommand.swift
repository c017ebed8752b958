// `streamline status`: each node cached, failed (a log but no entry) or not run.

import ArgumentParser
import Foundation
import Pipeline

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each stage's state in the cache: cached, running, failed (see 'logs') or not run.")

    @OptionGroup var options: PipelineOptions

    func run() throws {
        let cache = Cache(root: options.cacheURL)
        let statuses = PlanReport.statuses(try options.plan(cache).nodes, cache: cache)
        let width = statuses.map(\.node.id.count).max() ?? 0
        for s in statuses {
            let attempted = FileManager.default.fileExists(atPath: cache.logURL(s.node.fingerprint).path)
            let state = s.cached ? "cached" : cache.isLocked(s.node.fingerprint) ? "running"
                : attempted ? "failed" : "not run"
            print("\(s.node.id.padding(toLength: width, withPad: " ", startingAt: 0))  \(state)")
        }
    }
}
