// `streamline report`: the tables of a spec's report stage(s) from the cache, with the speed the
// evaluate stages measured merged in; `--out DIR` also writes the tables and the SVG plots. And
// `printReportTables`, which `streamline run` calls at its end.

import ArgumentParser
import Foundation
import Pipeline
import Stages

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print the table of a pipeline's report stage(s) from the cache; --out also writes the tables and plots.")

    @OptionGroup var options: PipelineOptions

    @Option(help: "Only the report stage of this name (default: every report stage).")
    var stage: String?

    @Option(help: "Table format: markdown, csv or json.")
    var format: ReportFormat = .markdown

    @Option(help: "Write report.md, report.csv, report.json and the SVG plots into this folder (one subfolder per report node when there are several).")
    var out: String?

    func run() throws {
        let cache = Cache(root: options.cacheURL)
        let plan = try options.plan(cache)
        let nodes = try ReportView.nodes(of: plan, stage: stage, spec: options.spec)
        for node in nodes {
            let view = try ReportView(node: node, plan: plan, registry: StageCatalog.registry, cache: cache, spec: options.spec)
            if nodes.count > 1 && format == .markdown { print("# \(node.id)\n") }
            print(view.content.table(format, speeds: view.speeds), terminator: "")
            guard let out else { continue }
            let base = URL(fileURLWithPath: out)
            let folder = nodes.count > 1 ? base.appendingPathComponent(node.id) : base
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (name, bytes) in view.shownFiles { try bytes.write(to: folder.appendingPathComponent(name), options: .atomic) }
            FileHandle.standardError.write(Data("wrote \(view.shownFiles.map(\.name).joined(separator: ", ")) into \(folder.path)\n".utf8))
        }
    }
}

extension ReportFormat: ExpressibleByArgument {}

/// After `streamline run`: prints the Markdown table of every cached report node the run's targets
/// needed (re-planned, so the reports see their inputs' real digests). Prints nothing for a spec
/// without report stages; a report that did not run is said on stderr, not thrown: the run's own
/// summary already tells why.
func printReportTables(_ options: PipelineOptions, targets: [String]) {
    do {
        let cache = Cache(root: options.cacheURL)
        let plan = try options.plan(cache)
        for node in try plan.closure(of: targets) where node.kind == ReportStage().name {
            guard let view = try? ReportView(node: node, plan: plan, registry: StageCatalog.registry, cache: cache, spec: options.spec) else {
                FileHandle.standardError.write(Data("report \(node.id): not computed in this run\n".utf8))
                continue
            }
            emitLine("\n" + view.content.table(.markdown, speeds: view.speeds))
        }
    } catch {
        FileHandle.standardError.write(Data("report tables: \(error)\n".utf8))
    }
}
