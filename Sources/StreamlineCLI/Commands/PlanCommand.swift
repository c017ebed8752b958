// `streamline plan`: the nodes a run would execute, each cached or not and why; with
// `--executor slurm`, the sbatch commands a Slurm run would submit, as a shell script.

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

    @Option(help: "slurm: print the sbatch commands 'run --executor slurm' would submit, as a shell script.")
    var executor: ExecutorKind?

    @Argument(help: "Only these stages or sweep members (ids or stage names), with what they need.")
    var targets: [String] = []

    func run() throws {
        let cache = Cache(root: options.cacheURL)
        let spec = try options.loadSpec()
        let nodes = try options.plan(cache, spec: spec).closure(of: targets)
        let statuses = PlanReport.statuses(nodes, cache: cache)
        if executor == .slurm {
            let cached = Set(statuses.filter(\.cached).map(\.node.id))
            print(try options.slurmExecutor(spec.slurm).script(nodes, cached: cached, options: options.runOptions()))
            return
        }
        switch format {
        case .text: print(PlanReport.text(statuses))
        case .json: print(PlanReport.json(statuses))
        case .dot: print(PlanReport.dot(statuses))
        case .mermaid: print(PlanReport.mermaid(statuses))
        }
    }
}
