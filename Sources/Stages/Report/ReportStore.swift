// The `report` store: the files and content a report stage writes, and reading them back. Building
// the content is ReportStage.swift's; finding a report in the cache and merging in the speed its
// evaluate stores measured is scheduling, so it lives in the CLI (StreamlineCLI/Commands/ReportView.swift).

import Foundation
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
    public static func perplexityFigure(_ content: ReportContent) -> String? {
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
