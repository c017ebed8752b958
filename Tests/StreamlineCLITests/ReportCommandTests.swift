// `streamline report` and the report tables at the end of `streamline run`, through the built binary,
// on a tiny swept pipeline: a grid × zip sweep of pruned models, their evaluations (with speed against
// the dense model), a regularize sweep, and a report gathering a list of those stages.

import Foundation
import StageTestSupport
#if canImport(FoundationXML)
import FoundationXML  // XMLParser on Linux
#endif
import Pipeline
import Stages
import Testing

/// Parses `svg` with XMLParser; returns the element names in document order (nil when not well-formed).
/// A copy of StagesTests' (ReportStageTests.swift): test targets cannot share files.
private func svgElements(_ svg: Data) -> [String]? {
    final class Collector: NSObject, XMLParserDelegate {
        var names: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) { names.append(name) }
    }
    let parser = XMLParser(data: svg), collector = Collector()
    parser.delegate = collector
    return parser.parse() ? collector.names : nil
}

/// tiny-lm → select (ratio grid × (method, selection) zip) → prune → eval (speed vs dense);
/// eval_dense; regularize over ratio; report over [eval_dense, eval, regularize].
let reportSpec = """
    x-speed: &speed {window: 32, prefill_tokens: 16, decode_batch: 2, decode_tokens: 4, speed_repeats: 1}
    stages:
      tiny:
        kind: debug/tiny-lm
        params: {hidden: 16, layers: 1, heads: 2, kv_heads: 1, ffn: 32, sentences: 80, train_steps: 10}
      regularize:
        kind: regularize
        inputs: {model: "${stages.tiny.model}", data: "${stages.tiny.data}"}
        params: {ratio: "${ratio}", lambda: 1.0, steps: 6, batch_size: 2, seq_len: 16, lr: 0.03, warmup: 1, log_every: 2,
                 eval_every: 3, heldout_fraction: 0.1}
        sweep: {grid: {ratio: [0.25, 0.5]}}
      select:
        kind: select
        inputs: {model: "${stages.tiny.model}"}
        params: {ratio: "${ratio}", selection: "${selection}"}
        sweep:
          grid: {ratio: [0.25, 0.5]}
          zip: {method: [direct, magnitude], selection: [last, magnitude]}
      prune:
        kind: prune
        inputs: {model: "${stages.tiny.model}", channels: "${stages.select.channels}"}
      eval_dense:
        kind: evaluate
        inputs: {model: "${stages.tiny.model}", data: "${stages.tiny.heldout}"}
        params: {window: 32, speed: false}
      eval:
        kind: evaluate
        inputs: {model: "${stages.prune.model}", data: "${stages.tiny.heldout}", dense: "${stages.tiny.model}"}
        params: *speed
      report:
        kind: report
        inputs: {results: ["${stages.eval_dense.metrics}", "${stages.eval.metrics}", "${stages.regularize.channels}"]}
        params: {title: "Tiny sweep"}

    """

@Suite(.serialized) struct ReportCommandTests {
    static let evalIDs = ["eval_dense", "eval[ratio=0.25,method=direct,selection=last]", "eval[ratio=0.25,method=magnitude,selection=magnitude]",
                          "eval[ratio=0.5,method=direct,selection=last]", "eval[ratio=0.5,method=magnitude,selection=magnitude]"]

    @Test func reportNeedsARunThenPrintsTheSweepFromTheCache() throws {
        let dir = try temporaryProject(["pipeline.yaml": reportSpec])
        let early = try streamline(["report"], in: dir)
        #expect(early.status == 1 && early.stderr.contains("Report report is not in the cache") && early.stderr.contains("streamline run --spec pipeline.yaml"),
                "\(early.stderr)")

        // The run ends with the table.
        let run = try streamline(["run", "--quiet"], in: dir)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("## Tiny sweep\n"))
        #expect(run.stdout.contains("| stage      | ratio | method    | data | perplexity | parameters | FLOPs/token | prefill × | decode × |"))

        // The rows are the evaluate stores', in list then plan order, with their numbers.
        let json = try streamline(["report", "--format", "json"], in: dir)
        #expect(json.status == 0, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let rows = try #require(object?["rows"] as? [[String: Any]])
        #expect(rows.map { $0["id"] as? String } == Self.evalIDs)
        let cache = Cache(root: dir.appendingPathComponent(".streamline-cache"))
        let plan = try Planner.plan(Spec.load(url: dir.appendingPathComponent("pipeline.yaml"), registry: StageCatalog.registry),
                                    registry: StageCatalog.registry) { cache.record($0)?.outputs }
        for row in rows {
            let node = plan.node(row["id"] as! String)!
            let (metrics, speed) = try EvaluationStore.read(cache.outputURL(node.fingerprint, "metrics"))
            // (JSONSerialization may read the last bit of a double differently.)
            #expect(abs(try #require(row["perplexity"] as? Double) - metrics.perplexity) <= 1e-12 * metrics.perplexity)
            #expect(row["parameters"] as? Int == metrics.parameters)
            // Speed is merged when shown: the dense evaluation measured none, the pruned ones did.
            let shown = row["speed"] as? [String: Any]
            #expect((shown == nil) == (node.stage == "eval_dense") && (speed == nil) == (node.stage == "eval_dense"))
            if let speedup = speed?.decodeSpeedup {
                #expect(abs(try #require(shown?["decode_speedup"] as? Double) - speedup) <= 1e-12 * speedup)
            }
        }
        let regularization = try #require(object?["regularization"] as? [[String: Any]])
        #expect(regularization.map { $0["id"] as? String } == ["regularize[ratio=0.25]", "regularize[ratio=0.5]"])
        #expect(regularization.map { $0["removed"] as? Int } == [4, 8])

        let csv = try streamline(["report", "--format", "csv", "--stage", "report"], in: dir).stdout.split(separator: "\n")
        #expect(csv.count == 1 + 5)
        #expect(csv[0].hasPrefix("stage,id,ratio,method,selection,dataset,perplexity,parameters,hidden_size,flops_per_token,tokens_scored,prefill_speedup"))

        // --out: the tables (with speed) and the three plots, all well-formed SVG.
        let out = try streamline(["report", "--out", "shown"], in: dir)
        #expect(out.status == 0 && out.stdout.contains("| eval       | 0.5   | magnitude | D1   |"))
        let folder = dir.appendingPathComponent("shown")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["perplexity.svg", "regularize-energy.svg", "regularize-loss.svg", "report.csv", "report.json", "report.md"])
        for svg in names where svg.hasSuffix(".svg") {
            #expect(svgElements(try Data(contentsOf: folder.appendingPathComponent(svg)))?.contains("polyline") == true, "\(svg)")
        }
        #expect(try String(contentsOf: folder.appendingPathComponent("report.md"), encoding: .utf8).contains("prefill ×"))

        // A second run is all hits and prints the same table.
        let again = try streamline(["run", "--quiet"], in: dir)
        #expect(again.stdout.contains("0 computed") && again.stdout.contains("## Tiny sweep"))
    }

    @Test func reportNamesTheReportStagesItKnows() throws {
        let dir = try temporaryProject(["pipeline.yaml": reportSpec, "plain.yaml": sweepSpec])
        let wrong = try streamline(["report", "--stage", "eval"], in: dir)
        #expect(wrong.status == 1 && wrong.stderr.contains("has no report stage named 'eval'. Its report stages: report."), "\(wrong.stderr)")
        let none = try streamline(["report", "--spec", "plain.yaml"], in: dir)
        #expect(none.status == 1 && none.stderr.contains("plain.yaml has no report stage. Add one (kind: report"), "\(none.stderr)")
    }

    @Test func reportHelpIsVerbatim() throws {
        let result = try streamline(["report", "--help"], in: repositoryRoot)
        #expect(result.stdout == """
            OVERVIEW: Print the table of a pipeline's report stage(s) from the cache; --out
            also writes the tables and plots.

            USAGE: streamline report [--spec <spec>] [--cache <cache>] [-p <name=value> ...] [--stage <stage>] [--format <format>] [--out <out>]

            OPTIONS:
              -s, --spec <spec>       The pipeline spec (YAML). (default: pipeline.yaml)
              --cache <cache>         The cache folder (default: $STREAMLINE_CACHE, else
                                      .streamline-cache beside the spec).
              -p <name=value>         Override a top-level parameter, e.g. -p ratio=0.3
                                      (repeatable).
              --stage <stage>         Only the report stage of this name (default: every
                                      report stage).
              --format <format>       Table format: markdown, csv or json. (values:
                                      markdown, csv, json; default: markdown)
              --out <out>             Write report.md, report.csv, report.json and the SVG
                                      plots into this folder (one subfolder per report node
                                      when there are several).
              --version               Show the version.
              -h, --help              Show help information.


            """)
    }
}
