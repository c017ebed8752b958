// The report stage in-process, over hand-made evaluate and channel stores: the rows and their labels,
// the Markdown/CSV/JSON tables, the plots (one polyline per line, log axis past 10×), speed kept out
// of the stored bytes but merged when shown, and a store of another kind refused.

import Data
import Foundation
import StageTestSupport
#if canImport(FoundationXML)
import FoundationXML  // XMLParser on Linux
#endif
import Model
import Pipeline
import Stages
import TensorStore
import Testing
import Training

/// Writes an evaluate-like metrics store; `speed` goes to the provenance, as evaluate does.
func writeMetricsStore(_ url: URL, perplexity: Double, parameters: Int, dataset: String = "2 documents, 900 tokens, all, text abc",
                       speed: EvaluationSpeed? = nil) throws {
    let evaluation = PerplexityProtocol(window: 32, tokenizerDigest: "tok", textDigest: "text")
    let metrics = EvaluationMetrics(perplexity: perplexity, meanNLL: log(perplexity), tokensScored: 800, windows: 25,
                                    evaluation: evaluation, parameters: parameters, hiddenSize: parameters / 100, layers: 2,
                                    flopsPerToken: Double(2 * parameters), dataset: dataset)
    var provenance = StoreProvenance()
    if let speed {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        provenance.extra["speed"] = String(decoding: try encoder.encode(speed), as: UTF8.self)
    }
    let writer = try TensorStoreWriter(url: url, kind: EvaluationStore.storeKind, provenance: provenance)
    try writer.setMetadata("metrics", metrics)
    try writer.write("perplexity", [Float(perplexity)], shape: [1])
    try writer.commit()
}

/// A channel store with curves whose energy halves every logged step (decoded from JSON: the curve
/// types are made by training, not by hand).
func writeChannelStore(_ url: URL, removed: Int, steps: Int = 4) throws {
    let points = (1...steps).map { s -> [String: Any] in
        let loss: Double = 3 - 0.1 * Double(s), energy: Double = 0.5 / pow(2, Double(s))
        return ["step": s * 10, "loss": loss, "penalty": 1.0, "lambda": 0.1, "lr": 1e-3, "energy": energy, "gradNorm": 1.0]
    }
    let evaluations: [[String: Any]] = [["step": 0, "loss": 3.0, "maskedLoss": 4.0], ["step": steps * 10, "loss": 2.5, "maskedLoss": 2.6]]
    let json = try JSONSerialization.data(withJSONObject: ["points": points, "evaluations": evaluations, "initial_energy": 0.5])
    let curves = try JSONDecoder().decode(RegularizationCurves.self, from: json)
    try ChannelStore(channels: try ChannelSet(hiddenSize: 16, pruned: Array((16 - removed)..<16)), selection: "last",
                     curves: curves).write(to: url)
}

/// Runs the report kind on `inputs` (labelled stores) with `params`; returns its output store.
func runReport(_ inputs: [GatheredInput], params: [String: ParamValue] = [:], in dir: URL) throws -> URL {
    let kind = ReportStage()
    var resolved: [String: ParamValue] = [:]
    for decl in kind.params { resolved[decl.name] = params[decl.name] ?? decl.defaultValue }
    let out = dir.appendingPathComponent("report-\(UUID().uuidString).h5")
    var context = StageContext(stageID: "report", params: resolved, seed: 0, inputs: [:], outputs: ["report": out], threads: 1)
    context.gathered = ["results": inputs]
    try kind.run(context)
    return out
}

/// A dense evaluation, a ratio × method sweep of evaluations and two regularize runs.
func sweepInputs(in dir: URL, speedFactor: Double = 1) throws -> [GatheredInput] {
    var inputs: [GatheredInput] = []
    func speed(_ s: Double) -> EvaluationSpeed {
        EvaluationSpeed(threads: 1, prefillTokens: 32, decodeBatch: 2, decodeTokens: 8, repeats: 1, prefillSeconds: 1 / s,
                        decodeTokensPerSecond: 100 * s, dense: DenseSpeed(prefillSeconds: 1, decodeTokensPerSecond: 100))
    }
    let dense = dir.appendingPathComponent("dense.h5")
    try writeMetricsStore(dense, perplexity: 10, parameters: 4000)
    inputs.append(GatheredInput(url: dense, stage: "eval_dense", id: "eval_dense", variables: []))
    for ratio in [0.25, 0.5] {
        for (method, base) in [("dress", 11.0), ("direct", 20.0)] {
            let id = "eval[ratio=\(ratio),method=\(method)]"
            let url = dir.appendingPathComponent("\(id).h5")
            try writeMetricsStore(url, perplexity: base * (1 + ratio), parameters: Int(4000 * (1 - ratio)),
                                  speed: speed((1 + ratio) * speedFactor))
            inputs.append(GatheredInput(url: url, stage: "eval", id: id,
                                        variables: [("ratio", .double(ratio)), ("method", .string(method))]))
        }
    }
    for ratio in [0.25, 0.5] {
        let url = dir.appendingPathComponent("reg\(ratio).h5")
        try writeChannelStore(url, removed: Int(16 * ratio))
        inputs.append(GatheredInput(url: url, stage: "regularize", id: "regularize[ratio=\(ratio)]", variables: [("ratio", .double(ratio))]))
    }
    return inputs
}

/// Parses `svg` with XMLParser; returns the element names in document order (nil when not well-formed).
func svgElements(_ svg: Data) -> [String]? {
    final class Collector: NSObject, XMLParserDelegate {
        var names: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) { names.append(name) }
    }
    let parser = XMLParser(data: svg), collector = Collector()
    parser.delegate = collector
    return parser.parse() ? collector.names : nil
}

@Test func aReportHasOneRowPerEvaluateStoreAndOnePerRegularizeRun() throws {
    let dir = try temporaryProject([:])
    let (content, files) = try ReportStore.read(try runReport(try sweepInputs(in: dir), in: dir))
    #expect(content.title == "Perplexity against ratio")
    #expect(content.rows.map(\.id) == ["eval_dense", "eval[ratio=0.25,method=dress]", "eval[ratio=0.25,method=direct]",
                                       "eval[ratio=0.5,method=dress]", "eval[ratio=0.5,method=direct]"])
    #expect(content.rows.map(\.stage) == ["eval_dense", "eval", "eval", "eval", "eval"])
    let expected: [Double] = [10, 11 * 1.25, 20 * 1.25, 11 * 1.5, 20 * 1.5]
    #expect(content.rows.map(\.perplexity) == expected)
    #expect(content.rows.map(\.parameters) == [4000, 3000, 3000, 2000, 2000])
    #expect(content.rows[2].variables == [ReportVariable(name: "ratio", value: .double(0.25)), ReportVariable(name: "method", value: .string("direct"))])
    #expect(content.rows.allSatisfy { $0.dataset == "2 documents, 900 tokens, all, text abc" && $0.flopsPerToken == Double(2 * $0.parameters) })
    #expect(content.regularization.map(\.id) == ["regularize[ratio=0.25]", "regularize[ratio=0.5]"])
    let run = content.regularization[1]
    #expect(run.removed == 8 && run.hiddenSize == 16 && run.steps == 40 && run.selection == "last")
    #expect(run.initialEnergy == 0.5 && run.finalEnergy == 0.5 / 16)
    #expect(abs(run.maskedPerplexityBefore! - exp(4)) < 1e-9 && abs(run.maskedPerplexityAfter! - exp(2.6)) < 1e-9)
    #expect(Set(files.keys) == ["report.md", "report.csv", "report.json", "perplexity.svg", "regularize-loss.svg", "regularize-energy.svg"])

    let markdown = String(decoding: files["report.md"]!, as: UTF8.self)
    #expect(markdown.contains("| stage      | ratio | method | data | perplexity | parameters | FLOPs/token |"))
    #expect(markdown.contains("| eval       | 0.25  | direct | D1   |      25.00 |       3.0k |        6.0k |"))
    #expect(markdown.contains("| eval_dense | –     | –      | D1   |      10.00 |       4.0k |        8.0k |"))
    #expect(markdown.contains("D1: 2 documents, 900 tokens, all, text abc"))
    #expect(markdown.contains("| regularize | 0.5   | last      | 8/16 |    40 |"))
    #expect(!markdown.contains("prefill"))  // speed is never stored
    let csv = String(decoding: files["report.csv"]!, as: UTF8.self).split(separator: "\n")
    #expect(csv.first == "stage,id,ratio,method,dataset,perplexity,parameters,hidden_size,flops_per_token,tokens_scored")
    #expect(csv[3] == #"eval,"eval[ratio=0.25,method=direct]",0.25,direct,"2 documents, 900 tokens, all, text abc",25.0,3000,30,6000.0,800"#)
    let json = try JSONSerialization.jsonObject(with: files["report.json"]!) as? [String: Any]
    #expect((json?["rows"] as? [[String: Any]])?.count == 5)
    #expect((json?["regularization"] as? [[String: Any]])?.first?["final_energy"] as? Double == 0.5 / 16)
}

@Test func thePlotsAreWellFormedSVGWithOnePolylinePerLine() throws {
    let dir = try temporaryProject([:])
    let (_, files) = try ReportStore.read(try runReport(try sweepInputs(in: dir), in: dir))
    // Perplexity: dress and direct of stage eval, and the dense reference line.
    let perplexity = try #require(svgElements(files["perplexity.svg"]!))
    #expect(perplexity.first == "svg")
    #expect(perplexity.filter { $0 == "polyline" }.count == 3)
    let text = String(decoding: files["perplexity.svg"]!, as: UTF8.self)
    for label in ["<title>dress</title>", "<title>direct</title>", "<title>eval_dense</title>", ">Perplexity against ratio</text>"] {
        #expect(text.contains(label), "\(label)")
    }
    #expect(text.contains("stroke-dasharray=\"7 4\""))  // the reference line is dashed
    // Loss: each run's training loss and its masked held-out loss; energy: one line per run.
    #expect(svgElements(files["regularize-loss.svg"]!)?.filter { $0 == "polyline" }.count == 4)
    let energy = String(decoding: files["regularize-energy.svg"]!, as: UTF8.self)
    #expect(svgElements(files["regularize-energy.svg"]!)?.filter { $0 == "polyline" }.count == 2)
    #expect(energy.contains(">0.01</text>") && energy.contains(">1</text>"))  // decades of a log axis
}

@Test func theSeriesParameterSplitsLinesAndWideRangesGetALogAxis() throws {
    let dir = try temporaryProject([:])
    // Perplexities 10…30: linear. Split by ratio along method instead: categorical x, one line per ratio.
    let swapped = try ReportStore.read(try runReport(try sweepInputs(in: dir), params: ["x": .string("method"), "series": .string("ratio")], in: dir))
    let text = String(decoding: swapped.files["perplexity.svg"]!, as: UTF8.self)
    #expect(text.contains("<title>ratio=0.25</title>") && text.contains("<title>ratio=0.5</title>"))
    #expect(text.contains(">dress</text>") && text.contains(">direct</text>"))  // category ticks
    #expect(!text.contains("log scale"))
    // A collapsed model (perplexity 5000 against 10): the axis goes logarithmic.
    let inputs = try sweepInputs(in: dir)
    try writeMetricsStore(inputs[4].url, perplexity: 5000, parameters: 2000)
    let wide = try ReportStore.read(try runReport(inputs, in: dir))
    let wideText = String(decoding: wide.files["perplexity.svg"]!, as: UTF8.self)
    #expect(wideText.contains("perplexity (log scale)") && wideText.contains(">1000</text>"))
}

@Test func aThirdSweepVariableGetsItsOwnLinesNotAZigzag() throws {
    let dir = try temporaryProject([:])
    var inputs: [GatheredInput] = []
    for ratio in [0.25, 0.5] {
        for method in ["dress", "direct"] {
            for lambda in [0.01, 0.1] {
                let id = "eval[ratio=\(ratio),method=\(method),lambda=\(lambda)]"
                let url = dir.appendingPathComponent("\(id).h5")
                try writeMetricsStore(url, perplexity: 10 + ratio + lambda, parameters: 1000)
                inputs.append(GatheredInput(url: url, stage: "eval", id: id, variables: [
                    ("ratio", .double(ratio)), ("method", .string(method)), ("lambda", .double(lambda))]))
            }
        }
    }
    let (_, files) = try ReportStore.read(try runReport(inputs, in: dir))
    let text = String(decoding: files["perplexity.svg"]!, as: UTF8.self)
    #expect(svgElements(files["perplexity.svg"]!)?.filter { $0 == "polyline" }.count == 4)
    for label in ["dress · lambda=0.01", "dress · lambda=0.1", "direct · lambda=0.01", "direct · lambda=0.1"] {
        #expect(text.contains("<title>\(label)</title>"), "\(label)")
    }
    // Each line has one point per ratio: two x positions, never two points at one x.
    let lines = text.split(separator: "\n").filter { $0.hasPrefix("<polyline") }
    #expect(lines.allSatisfy { line in
        let points = line.split(separator: "\"").drop { !$0.hasSuffix("points=") }.dropFirst().first ?? ""
        let xs = points.split(separator: " ").map { $0.split(separator: ",")[0] }
        return xs.count == 2 && xs[0] != xs[1]
    })
}

@Test func legendsNameOnlyTheVariablesThatTellLinesApart() throws {
    // dress-sweep's shape: ratio × zip(method, selection, ft_steps); ft_steps follows method and selection.
    let dir = try temporaryProject([:])
    var inputs: [GatheredInput] = []
    for ratio in [0.25, 0.5] {
        for (method, selection, steps) in [("dress", "last", 10), ("none", "last", 40), ("none", "magnitude", 40)] {
            let id = "eval[ratio=\(ratio),method=\(method),selection=\(selection),ft_steps=\(steps)]"
            let url = dir.appendingPathComponent("\(id).h5")
            try writeMetricsStore(url, perplexity: 10 + ratio, parameters: 1000)
            inputs.append(GatheredInput(url: url, stage: "eval", id: id, variables: [
                ("ratio", .double(ratio)), ("method", .string(method)), ("selection", .string(selection)), ("ft_steps", .int(steps))]))
        }
    }
    let text = String(decoding: try ReportStore.read(try runReport(inputs, in: dir)).files["perplexity.svg"]!, as: UTF8.self)
    let titles = text.split(separator: "\n").filter { $0.hasPrefix("<polyline") }.map { $0.split(separator: ">")[2].split(separator: "<")[0] }
    #expect(titles == ["dress · selection=last", "none · selection=last", "none · selection=magnitude"])
}

@Test func aReportOfHundredsOfRowsRoundTrips() throws {
    // Metadata lives in HDF5 attributes: a big sweep's content must still fit and read back.
    let dir = try temporaryProject([:])
    let dataset = String(repeating: "a long dataset description, ", count: 8)
    var inputs: [GatheredInput] = []
    for i in 0..<400 {
        let url = dir.appendingPathComponent("m\(i).h5")
        try writeMetricsStore(url, perplexity: 10 + Double(i), parameters: 1000 + i, dataset: dataset)
        inputs.append(GatheredInput(url: url, stage: "eval", id: "eval[step=\(i)]", variables: [("step", .int(i)), ("method", .string("m\(i % 4)"))]))
    }
    let (content, files) = try ReportStore.read(try runReport(inputs, params: ["x": .string("step")], in: dir))
    #expect(content.rows.count == 400 && content.rows.last?.parameters == 1399)
    #expect(String(decoding: files["report.json"]!, as: UTF8.self).count > 64 * 1024)
    #expect(svgElements(files["perplexity.svg"]!)?.filter { $0 == "polyline" }.count == 4)
}

@Test func speedStaysOutOfTheStoreButIsMergedWhenShown() throws {
    let dir = try temporaryProject([:])
    let slow = try runReport(try sweepInputs(in: dir.appendingPathComponent("a"), speedFactor: 1), in: dir)
    let fast = try runReport(try sweepInputs(in: dir.appendingPathComponent("b"), speedFactor: 2), in: dir)
    // Different timings, same content: the same store digest (a cache hit for the report's consumers).
    #expect(try TensorStoreReader.digest(ofStoreAt: slow) == TensorStoreReader.digest(ofStoreAt: fast))
    let content = try ReportStore.read(fast).content
    let speeds = ["eval[ratio=0.5,method=dress]": EvaluationSpeed(threads: 1, prefillTokens: 32, decodeBatch: 2, decodeTokens: 8, repeats: 1,
                                                                 prefillSeconds: 0.5, decodeTokensPerSecond: 150,
                                                                 dense: DenseSpeed(prefillSeconds: 1, decodeTokensPerSecond: 100))]
    let shown = content.table(.markdown, speeds: speeds)
    #expect(shown.contains("| prefill × | decode × |"))
    #expect(shown.contains("|      16.50 |       2.0k |        4.0k |      2.00 |     1.50 |"))
    #expect(shown.contains("|      10.00 |       4.0k |        8.0k |         – |        – |"))
    #expect(content.table(.csv, speeds: speeds).contains(",2.0,1.5,0.5,150.0\n"))
}

@Test func aStoreOfAnotherKindIsRefusedWithItsName() throws {
    let dir = try temporaryProject([:])
    let url = dir.appendingPathComponent("x.h5")
    let writer = try TensorStoreWriter(url: url, kind: "dataset")
    try writer.write("tokens", [Int32(1)], shape: [1])
    try writer.commit()
    #expect {
        _ = try runReport([GatheredInput(url: url, stage: "data", id: "data", variables: [])], in: dir)
    } throws: { error in
        "\(error)".contains("input 'results' from data is a 'dataset' store") && "\(error)".contains("Remove data from the list")
    }
}

/// The Markdown table leaves out a sweep variable that an earlier column determines (a zip companion)
/// but keeps one that varies on its own; CSV keeps every variable.
@Test func markdownHidesZipCompanionsButCSVKeepsThem() throws {
    func row(_ method: String, _ selection: String, _ steps: Int) throws -> ReportRow {
        let json = """
        {"stage": "eval", "id": "eval[method=\(method),selection=\(selection),ft_steps=\(steps)]",
         "variables": [{"name": "method", "value": "\(method)"}, {"name": "selection", "value": "\(selection)"},
                       {"name": "ft_steps", "value": \(steps)}],
         "dataset": "text", "perplexity": 10, "parameters": 100, "hidden_size": 8, "flops_per_token": 200, "tokens_scored": 64}
        """
        return try JSONDecoder().decode(ReportRow.self, from: Data(json.utf8))
    }
    let rows = [try row("dress", "last", 10), try row("dress", "activation", 10), try row("none", "last", 40)]
    let content = ReportContent(title: "t", x: "method", series: "selection", rows: rows, regularization: [])
    let markdown = content.table(.markdown)
    #expect(markdown.contains("| stage | method | selection  | data |"), "\(markdown)")
    #expect(!markdown.contains("ft_steps"))
    #expect(content.table(.csv).contains("ft_steps"))
}
