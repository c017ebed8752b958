// The `report` stage kind: gathers evaluate results (metrics stores) and regularize runs (channel
// stores with curves) across sweeps into tables (Markdown, CSV, JSON) and SVG plots, written as one
// `report` store (ReportStore.swift). The store holds only what the inputs determine; timing never
// enters it. Its errors are here too.

import Foundation
import Pipeline
import TensorStore
import Training

/// A failure of the report stage or of reading a report store (showing a cached report is the CLI's: ReportViewError).
public enum ReportError: Error, Sendable, CustomStringConvertible {
    /// A gathered store is neither an evaluate nor a channel store.
    case unsupportedInput(stage: String, upstream: String, kind: String)
    /// A report store without a file the stage always writes.
    case missingFile(path: String, name: String)

    public var description: String {
        switch self {
        case let .unsupportedInput(stage, upstream, kind):
            return "Stage \(stage): input 'results' from \(upstream) is a '\(kind)' store; a report reads evaluate "
                + "(metrics) and regularize (channels) stores. Remove \(upstream) from the list."
        case let .missingFile(path, name):
            return "The report store \(path) has no file '\(name)'. Delete its cache entry (streamline cache gc) and run again."
        }
    }
}

/// `report`: tables and plots of evaluate and regularize results across sweeps.
public struct ReportStage: StageKind {
    public init() {}
    public let name = "report"
    public let version = 2   // 2: a zip's companions of the series no longer split its lines in the stored plot
    public let doc = "Gathers evaluate results and regularize curves across sweeps into a table (Markdown, CSV, JSON) and SVG plots."
    public let params = [
        ParamDecl("x", .string(), default: .string("ratio"), doc: "Sweep variable on the perplexity plot's x axis."),
        ParamDecl("series", .string(), default: .string("method"), doc: "Sweep variable whose values get one line each (per evaluate stage)."),
        ParamDecl("title", .string(), default: .string(""), doc: "Title of the table and the perplexity plot; empty = 'Perplexity against X'."),
    ]
    public let inputs = [InputDecl("results", storeKind: "any", doc: "Evaluate metrics and regularize channels stores; a list gathers every member of each.",
                                   many: true)]
    public let outputs = [OutputDecl("report", storeKind: ReportStore.storeKind, doc: "The tables and plots as files, and the content as metadata.")]

    struct Params: Decodable { var x: String; var series: String; var title: String }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        var rows: [ReportRow] = [], regularization: [RegularizationRow] = [], runs: [LabelledCurves] = []
        for input in context.gathered["results", default: []] {
            let variables = input.variables.map { ReportVariable(name: $0.name, value: $0.value) }
            let kind = try TensorStoreReader(url: input.url).kind
            switch kind {
            case EvaluationStore.storeKind:
                let m = try EvaluationStore.read(input.url).metrics
                rows.append(ReportRow(stage: input.stage, id: input.id, variables: variables, dataset: m.dataset, perplexity: m.perplexity,
                                      parameters: m.parameters, hiddenSize: m.hiddenSize, flopsPerToken: m.flopsPerToken,
                                      tokensScored: m.tokensScored))
            case ChannelStore.storeKind:
                let store = try ChannelStore(store: input.url)
                // A `select` store has no run to show.
                guard let curves = store.curves, let last = curves.points.last else {
                    context.log("\(input.id): channel set without regularization curves; not in the report")
                    continue
                }
                regularization.append(RegularizationRow(
                    stage: input.stage, id: input.id, variables: variables, selection: store.selection,
                    removed: store.channels.pruned.count, hiddenSize: store.channels.hiddenSize, steps: last.step,
                    finalLoss: Double(last.loss), initialEnergy: curves.initialEnergy, finalEnergy: last.energy,
                    maskedPerplexityBefore: curves.evaluations.first?.maskedPerplexity,
                    maskedPerplexityAfter: curves.evaluations.count > 1 ? curves.evaluations.last?.maskedPerplexity : nil))
                runs.append(LabelledCurves(stage: input.stage, variables: variables, curves: curves))
            default:
                throw ReportError.unsupportedInput(stage: context.stageID, upstream: input.id, kind: kind)
            }
        }
        let content = ReportContent(title: p.title.isEmpty ? "Perplexity against \(p.x)" : p.title, x: p.x, series: p.series,
                                    rows: rows, regularization: regularization)
        try ReportStore.write(content, runs: runs, to: context.outputs["report"]!)
        context.log("\(rows.count) evaluate rows, \(regularization.count) regularize runs")
    }
}
