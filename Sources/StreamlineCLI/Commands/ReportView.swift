// ReportView: a cached report read back with the speed its evaluate stores measured, as `streamline
// report` and the end of `streamline run` show it. It walks the plan and the cache (`Cache`,
// `StageRunner.inputStores`), which is scheduling, so it is the CLI's; reading a report store
// (`ReportStore.read`) and building its content stay in Stages (Stages/Report/).

import Foundation
import Pipeline
import Stages

/// A report that cannot be shown: not in the cache, or no such report stage.
enum ReportViewError: Error, Sendable, CustomStringConvertible {
    /// The report node has not run (or its inputs changed since).
    case notCached(stage: String, spec: String)
    /// `--stage` names no report stage of the spec.
    case noReportStage(spec: String, stage: String?, available: [String])

    var description: String {
        switch self {
        case let .notCached(stage, spec):
            return "Report \(stage) is not in the cache (not run yet, or its inputs changed). Run it first: streamline run --spec \(spec)"
        case let .noReportStage(spec, stage, available):
            if let stage {
                return "\(spec) has no report stage named '\(stage)'. Its report stages: "
                    + (available.isEmpty ? "none" : available.joined(separator: ", ")) + "."
            }
            return "\(spec) has no report stage. Add one (kind: report, inputs: {results: [\"${stages.EVAL.metrics}\"]})."
        }
    }
}

/// A cached report as people see it: its content, its files, and the speed each evaluate store measured.
struct ReportView: Sendable {
    /// The report node's id.
    var id: String
    var content: ReportContent
    /// File name → bytes, as stored (tables without speed).
    var files: [String: Data]
    /// Evaluate node id → the speed it measured (rows without a measurement are absent).
    var speeds: [String: EvaluationSpeed]

    /// Reads the cached output of report node `node`; `spec` names the spec in the error when it is not cached.
    init(node: PlanNode, plan: Plan, registry: StageRegistry, cache: Cache, spec: String) throws {
        guard node.kind == ReportStage().name, let record = cache.lookup(node.fingerprint), !node.inputs.contains(where: \.isPending) else {
            throw ReportViewError.notCached(stage: node.id, spec: spec)
        }
        (content, files) = try ReportStore.read(cache.outputURL(record.fingerprint, "report"))
        id = node.id
        let gathered = try StageRunner.inputStores(of: node, plan: plan, registry: registry, cache: cache).gathered["results"] ?? []
        var speeds: [String: EvaluationSpeed] = [:]
        for input in gathered where content.rows.contains(where: { $0.id == input.id }) {
            speeds[input.id] = try EvaluationStore.read(input.url).speed
        }
        self.speeds = speeds
    }

    /// The files people get from `streamline report --out`: the tables with speed merged, and the plots.
    /// The perplexity figure is drawn afresh from the content, so a cached report shows today's drawing;
    /// the regularize curves are not in the content and come as stored.
    var shownFiles: [(name: String, bytes: Data)] {
        ReportFormat.allCases.map { ($0.fileName, Data(content.table($0, speeds: speeds).utf8)) }
            + ReportStore.plotNames.compactMap { name in
                if name == "perplexity.svg" { return ReportStore.perplexityFigure(content).map { (name, Data($0.utf8)) } }
                return files[name].map { (name, $0) }
            }
    }

    /// The report nodes of `plan` (or of stage `stage` only), in plan order.
    static func nodes(of plan: Plan, stage: String? = nil, spec: String) throws -> [PlanNode] {
        let reports = plan.nodes.filter { $0.kind == ReportStage().name }
        let chosen = reports.filter { stage == nil || $0.stage == stage }
        guard !chosen.isEmpty else {
            throw ReportViewError.noReportStage(spec: spec, stage: stage,
                                                available: reports.map(\.stage).firstOccurrences)
        }
        return chosen
    }
}
