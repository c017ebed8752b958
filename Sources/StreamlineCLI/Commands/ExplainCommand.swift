// `streamline explain ID`: why a node will run, as differences from the nearest cached record.

import ArgumentParser
import Pipeline

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain why a stage will run: which parameter or input digest differs from the nearest cached record.")

    @OptionGroup var target: NodeArguments

    func run() throws {
        let (cache, node) = try target.resolve()
        print(PlanReport.explain(node, cache: cache))
    }
}
