// `streamline plan`: the nodes a run would execute, each cached or not and why.

import ArgumentParser
import Pipeline

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the stage DAG: every node, whether it is cached, and why it would run.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, dot, mermaid }

    @OptionGroup var options: PipelineOptions

    @Option(help: "Output format: text, json, dot (Graphviz) or mermaid.")
    var format: Format = .text

    @Argument(help: "Only this stage, sweep member or stage name, with what it needs.")
    var target: String?

    func run() throws {
        let cache = Cache(root: options.cacheURL)
        let statuses = PlanReport.statuses(try options.plan(cache).closure(of: target), cache: cache)
        switch format {
        case .text: print(PlanReport.text(statuses))
        case .json: print(PlanReport.json(statuses))
        case .dot: print(PlanReport.dot(statuses))
        case .mermaid: print(PlanReport.mermaid(statuses))
        }
    }
}
