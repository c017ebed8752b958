// What the perplexity figure shows, on the SVG it writes: lines along a numeric axis, dots without
// connecting lines along a categorical one, one panel per evaluation set with its dense level, and
// legends that fit inside the picture by the renderer's own text-width estimate.

import Foundation
import Pipeline
@testable import Stages
import Training
import Testing

private func row(_ stage: String, _ dataset: String, _ perplexity: Double, _ vars: [(String, ParamValue)]) -> ReportRow {
    let id = vars.isEmpty ? stage : "\(stage)[\(vars.map { "\($0.0)=\($0.1)" }.joined(separator: ","))]"
    return ReportRow(stage: stage, id: id, variables: vars.map { ReportVariable(name: $0.0, value: $0.1) }, dataset: dataset,
                     perplexity: perplexity, parameters: 1000, hiddenSize: 16, flopsPerToken: 2000, tokensScored: 800)
}

/// Quality's shape: ratio × method on two evaluation sets, each with its dense row.
private func ratioSweep(x: String = "ratio") -> ReportContent {
    var rows: [ReportRow] = []
    for (stage, dataset, base) in [("tragedies", "text A", 30.0), ("python_howto", "text B", 14.0)] {
        rows.append(row("dense_" + stage, dataset, base, []))
        for ratio in [0.25, 0.5] {
            for (k, method) in ["rotation_ft", "a_method_with_a_rather_long_descriptive_name"].enumerated() {
                rows.append(row(stage, dataset, base * (1 + ratio) + Double(k), [("ratio", .double(ratio)), ("method", .string(method))]))
            }
        }
    }
    return ReportContent(title: "Perplexity against ratio", x: x, series: "method", rows: rows, regularization: [])
}

private func lines(_ svg: String, _ prefix: String) -> [Substring] { svg.split(separator: "\n").filter { $0.hasPrefix(prefix) } }

@Test func aNumericAxisDrawsLinesAndEachEvaluationSetGetsItsPanelWithTheDenseLevel() throws {
    let panels = ReportPlots.perplexityPanels(ratioSweep())
    #expect(panels.map(\.title) == ["tragedies", "python_howto"])
    #expect(panels.allSatisfy { $0.subtitle == "Perplexity against ratio" && $0.xCategories == nil })
    let svg = LinePlot.figure(panels)
    let elements = try #require(svgElements(Data(svg.utf8)), "not well-formed:\n\(svg)")
    #expect(elements.filter { $0 == "svg" }.count == 3)  // the figure and its two panels
    // Per panel: two methods and the dense level (dashed, named after its stage).
    #expect(elements.filter { $0 == "polyline" }.count == 6)
    #expect(svg.contains("<title>dense_tragedies</title>") && svg.contains("<title>dense_python_howto</title>"))
    #expect(lines(svg, "<polyline").filter { $0.contains(#"stroke-dasharray="7 4""#) }.count == 2)
    #expect(svg.contains("<title>rotation_ft</title>"))  // a method names itself, not "method=rotation_ft"
}

/// ratio-sweep's shape: each method's zip companions follow its ratio but differ between methods at one
/// ratio (nested prunes a prefix of a 50% ranking, per-ratio regularizes at the ratio itself). They fix
/// nothing the method and the axis do not, so each method is one line named by itself alone.
@Test func zipCompanionsFollowingEachMethodsRatioMakeOneLinePerMethod() throws {
    var rows = [row("dense_tragedies", "text A", 30, [])]
    for ratio in [0.1, 0.2, 0.3] {
        rows.append(row("tragedies", "text A", 40 + ratio, [("method", .string("nested")), ("ratio", .double(ratio)),
                                                              ("reg_ratio", .double(0.5)), ("prune_ratio", .double(ratio))]))
        rows.append(row("tragedies", "text A", 35 + ratio, [("method", .string("per_ratio")), ("ratio", .double(ratio)),
                                                              ("reg_ratio", .double(ratio)), ("prune_ratio", .double(0))]))
    }
    let content = ReportContent(title: "companions", x: "ratio", series: "method", rows: rows, regularization: [])
    let svg = LinePlot.figure(ReportPlots.perplexityPanels(content))
    #expect(lines(svg, "<polyline").count == 3, "two methods and the dense level")
    #expect(svg.contains("<title>nested</title>") && svg.contains("<title>per_ratio</title>"))
    #expect(!svg.contains("reg_ratio="))
}

@Test func aCategoricalAxisDrawsDotsWithoutConnectingLines() throws {
    let panels = ReportPlots.perplexityPanels(ratioSweep(x: "method"))
    #expect(panels.allSatisfy { $0.xCategories == ["rotation_ft", "a_method_with_a_rather_long_descriptive_name"] })
    let svg = LinePlot.figure(panels)
    #expect(svgElements(Data(svg.utf8)) != nil)
    // Only the dense levels are lines; each ratio is a group of dots.
    #expect(lines(svg, "<polyline").count == 2 && lines(svg, "<polyline").allSatisfy { $0.contains("dense_") })
    #expect(lines(svg, #"<g class="series""#).count == 4)
    #expect(svg.contains("<title>ratio=0.25</title>"))
    // Dots of one category sit side by side, not on top of each other.
    let firstPanel = svg.components(separatedBy: "</svg>")[0]
    let dots = lines(firstPanel, "<circle cx=").filter { $0.hasSuffix(#"r="4"/>"#) }.map { $0.split(separator: "\"")[1] }
    #expect(dots.count == 4 && Set(dots).count == 4)
}

@Test func legendLabelsFitInsideThePictureByTheTextWidthEstimate() throws {
    let long = "tragedies_unfinetuned · a_method_with_a_rather_long_descriptive_name · lambda=0.01"
    let plot = LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [
        PlotSeries(label: "short", points: [(0, 1), (1, 2)], color: 0),
        PlotSeries(label: long, points: [(0, 2), (1, 3)], color: 1),
    ])
    let svg = plot.svg()
    let viewBoxWidth = try #require(Double(svg.split(separator: "\"").drop { !$0.hasSuffix("viewBox=") }.dropFirst().first!
        .split(separator: " ")[2]))
    #expect(viewBoxWidth == plot.width)
    let legend = lines(svg, "<text x=").filter { $0.contains(">\(long)</text>") || $0.contains(">short</text>") }
    #expect(legend.count == 2)  // never cut with an ellipsis
    for entry in legend {
        let x = try #require(Double(entry.split(separator: "\"")[1]))
        let text = String(entry.split(separator: ">")[1].split(separator: "<")[0])
        #expect(x + LinePlot.textWidth(text, fontSize: 12) <= viewBoxWidth, "\(text)")
    }
    // A title longer than the plot widens the picture instead of running off it.
    let titled = LinePlot(title: String(repeating: "w", count: 90), xLabel: "x", yLabel: "y", series: plot.series)
    #expect(titled.width >= 12 + LinePlot.textWidth(titled.title, fontSize: 16))
}

@Test func regularizeLegendsNameTheMethodAndOnlyWhatTellsRunsApart() {
    func run(_ ratio: Double, _ method: String) -> LabelledCurves {
        LabelledCurves(stage: "regularize", variables: [ReportVariable(name: "ratio", value: .double(ratio)),
                                                        ReportVariable(name: "method", value: .string(method)),
                                                        ReportVariable(name: "reg", value: .string("dress"))],
                       curves: RegularizationCurves(initialEnergy: 0.5))
    }
    let runs = [run(0.25, "dress_lm"), run(0.5, "dress_lm"), run(0.25, "dress_fast")]
    #expect(ReportPlots.runLabels(runs, series: "method") == ["dress_lm · ratio=0.25", "dress_lm · ratio=0.5", "dress_fast · ratio=0.25"])
    #expect(ReportPlots.runLabels([run(0.25, "dress_lm")], series: "method") == ["dress_lm"])
    #expect(ReportPlots.runLabels([run(0.25, "dress_lm")], series: "absent") == ["regularize"])
}
