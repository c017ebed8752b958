// `streamline explain ID`: why a node will run, as differences from the nearest cached record.

import ArgumentParser
import Pipeline

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain why a stage will run: which parameter or input digest differs from the nearest cached record.")

    @OptionGroup var options: PipelineOptions

    @Argument(help: "The node id, e.g. prune or prune[ratio=0.25].")
    var id: String

    func run() throws {
        let cache = Cache(root: options.cacheURL)
        let plan = try options.plan(cache)
        let node = try plan.requireNode(id)
        print(PlanReport.explain(node, cache: cache))
    }
}
