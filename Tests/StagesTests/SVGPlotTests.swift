// The SVG line-plot renderer: well-formed XML, one polyline per series with its colour and stroke,
// readable tick values on linear, whole-number and log axes, escaped text.

import Foundation
import Stages
import Testing

@Test func aPlotIsWellFormedWithOnePolylinePerSeriesAndEscapedText() throws {
    let plot = LinePlot(title: "A <b> & \"c\"", xLabel: "ratio", yLabel: "perplexity", series: [
        PlotSeries(label: "dress", points: [(0.25, 6), (0.5, 9)], color: 0),
        PlotSeries(label: "direct", points: [(0.25, 22), (0.5, 40)], color: 1, style: .dotted),
        PlotSeries(label: "dense", points: [(0.25, 5.5), (0.5, 5.5)], color: 2, style: .dashed, markers: false),
    ])
    let svg = plot.svg()
    let elements = try #require(svgElements(Data(svg.utf8)), "not well-formed:\n\(svg)")
    #expect(elements.filter { $0 == "polyline" }.count == 3)
    #expect(elements.filter { $0 == "circle" }.count == 4 + 2)  // points of the two measured lines + their legend dots
    #expect(svg.contains(">A &lt;b&gt; &amp; &quot;c&quot;</text>"))
    #expect(svg.contains(##"stroke="#4e79a7""##) && svg.contains(#"stroke-dasharray="2 3""#))
    #expect(plot.svg() == svg)  // deterministic
}

@Test func axesGetNiceTicks() throws {
    func ticks(_ plot: LinePlot, _ axis: String) -> [String] {
        // Tick labels are the <text> of the 11px group: x labels are centred, y labels end-anchored.
        let anchor = axis == "x" ? "middle" : "end"
        return plot.svg().split(separator: "\n").filter { $0.contains("text-anchor=\"\(anchor)\">") && !$0.contains("font-size") }
            .map { String($0.split(separator: ">")[1].split(separator: "<")[0]) }
    }
    let linear = LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [PlotSeries(label: "s", points: [(0.25, 18.9), (0.5, 25.3)], color: 0)])
    #expect(ticks(linear, "y") == ["18", "20", "22", "24", "26"])
    #expect(ticks(linear, "x") == ["0.25", "0.30", "0.35", "0.40", "0.45", "0.50"])
    let steps = LinePlot(title: "t", xLabel: "x", yLabel: "y", xIntegers: true,
                         series: [PlotSeries(label: "s", points: [(2, 1), (3, 2)], color: 0)])
    #expect(ticks(steps, "x") == ["2", "3"])
    let log = LinePlot(title: "t", xLabel: "x", yLabel: "y", logY: true, xIntegers: true,
                       series: [PlotSeries(label: "s", points: [(0, 0.5), (200, 3e-7)], color: 0)])
    #expect(ticks(log, "y") == ["10⁻⁷", "10⁻⁶", "10⁻⁵", "10⁻⁴", "0.001", "0.01", "0.1", "1"])
    #expect(ticks(log, "x") == ["0", "50", "100", "150", "200"])
    #expect(LinePlot.wantsLogAxis([5, 51]) && !LinePlot.wantsLogAxis([5, 49]) && !LinePlot.wantsLogAxis([0, 100]))
}

@Test func aLongLegendStaysInsideThePicture() throws {
    let series = (0..<30).map { PlotSeries(label: "line \($0)", points: [(0, Double($0)), (1, Double($0) + 1)], color: $0) }
    let svg = LinePlot(title: "t", xLabel: "x", yLabel: "y", series: series).svg()
    // Legend entries are the texts starting right of the plot area.
    let ys = svg.split(separator: "\n").filter { $0.hasPrefix("<text x=\"604\"") }.compactMap { line in
        Double(line.split(separator: "\"")[3])
    }
    #expect(ys.count == 30)
    #expect(ys.allSatisfy { $0 < 440 } && ys == ys.sorted())
    #expect(svg.contains("#4e79a7") && svg.contains("#bab0ac"))  // all ten palette colours, then again
}
