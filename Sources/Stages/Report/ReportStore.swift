// The `report` store (the files and content a report stage writes) and ReportView: a cached report
// read back with the speed its evaluate stores measured, as `streamline report` and the end of
// `streamline run` show it. Building the content is ReportStage.swift's.

import Foundation
import Pipeline
import TensorStore

/// The `report` store: metadata `report` (ReportContent) and each file as a uint8 tensor `files/NAME`.
public enum ReportStore {
    public static let storeKind = "report"
    /// File names of the plots, in the order written (a plot without data is not written).
    public static let plotNames = ["perplexity.svg", "regularize-loss.svg", "regularize-energy.svg"]

    /// Every file of the report: the tables (without speed) and the plots that have data.
    static func files(_ content: ReportContent, runs: [LabelledCurves]) -> [(name: String, text: String)] {
        var files = ReportFormat.allCases.map { ($0.fileName, content.table($0)) }
        let plots = [perplexityFigure(content), ReportPlots.loss(runs, series: content.series)?.svg(),
                     ReportPlots.energy(runs, series: content.series)?.svg()]
        for (name, svg) in zip(plotNames, plots) { if let svg { files.append((name, svg)) } }
        return files
    }

    /// perplexity.svg: one panel per evaluation set; nil without evaluate rows.
    static func perplexityFigure(_ content: ReportContent) -> String? {
        let panels = ReportPlots.perplexityPanels(content)
        return panels.isEmpty ? nil : LinePlot.figure(panels)
    }

    static func write(_ content: ReportContent, runs: [LabelledCurves], to url: URL) throws {
        let writer = try TensorStoreWriter(url: url, kind: storeKind)
        do {
            try writer.setMetadata("report", content)
            for (name, text) in files(content, runs: runs) {
                let bytes = Array(text.utf8)
                try writer.write("files/" + name, bytes, shape: [bytes.count])
            }
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// The content and the files (name → bytes) of the store at `url`.
    public static func read(_ url: URL) throws -> (content: ReportContent, files: [String: Data]) {
        let reader = try TensorStoreReader(url: url, expectingKind: storeKind)
        var files: [String: Data] = [:]
        for name in reader.names where name.hasPrefix("files/") {
            files[String(name.dropFirst("files/".count))] = Data(try reader.values(name, as: UInt8.self, verify: true).values)
        }
        for format in ReportFormat.allCases where files[format.fileName] == nil {
            throw ReportError.missingFile(path: url.path, name: format.fileName)
        }
        return (try reader.metadata("report", as: ReportContent.self), files)
    }
}

/// A cached report as people see it: its content, its files, and the speed each evaluate store measured.
public struct ReportView: Sendable {
    /// The report node's id.
    public var id: String
    public var content: ReportContent
    /// File name → bytes, as stored (tables without speed).
    public var files: [String: Data]
    /// Evaluate node id → the speed it measured (rows without a measurement are absent).
    public var speeds: [String: EvaluationSpeed]

    /// Reads the cached output of report node `node`; `spec` names the spec in the error when it is not cached.
    public init(node: PlanNode, plan: Plan, registry: StageRegistry, cache: Cache, spec: String) throws {
        guard node.kind == ReportStage().name, let record = cache.lookup(node.fingerprint), !node.inputs.contains(where: \.isPending) else {
            throw ReportError.notCached(stage: node.id, spec: spec)
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
    public var shownFiles: [(name: String, bytes: Data)] {
        ReportFormat.allCases.map { ($0.fileName, Data(content.table($0, speeds: speeds).utf8)) }
            + ReportStore.plotNames.compactMap { name in
                if name == "perplexity.svg" { return ReportStore.perplexityFigure(content).map { (name, Data($0.utf8)) } }
                return files[name].map { (name, $0) }
            }
    }

    /// The report nodes of `plan` (or of stage `stage` only), in plan order.
    public static func nodes(of plan: Plan, stage: String? = nil, spec: String) throws -> [PlanNode] {
        let reports = plan.nodes.filter { $0.kind == ReportStage().name }
        let chosen = reports.filter { stage == nil || $0.stage == stage }
        guard !chosen.isEmpty else {
            throw ReportError.noReportStage(spec: spec, stage: stage,
                                            available: reports.map(\.stage).firstOccurrences)
        }
        return chosen
    }
}
