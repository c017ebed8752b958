// A small line-plot renderer that writes SVG text: title, axes with "nice" ticks (linear, or decades
// on a log axis), light grid lines, one polyline with point markers per series, dashed reference
// lines, and a legend to the right of the plot. On a categorical x axis measured series are dots only,
// side by side within a category (a grouped dot chart): a line between categories would claim an
// order that is not there. Panels stack vertically in one figure. It is deterministic (same plot ->
// same bytes) and knows nothing of reports or stores; ReportPlots.swift decides what to draw.
//
// Layout (pixels): the plot area is `plotWidth` wide, inset by `margin`; the legend column to its right
// is as wide as its longest label needs (by `textWidth`), so labels are never cut. Data coordinates
// map to the area after the domain is widened to whole ticks.

import Foundation

/// How a line is stroked.
public enum LineStyle: String, Sendable, Equatable {
    case solid, dotted, dashed, dashDot

    /// The SVG `stroke-dasharray`, nil for a solid line.
    var dashArray: String? {
        switch self {
        case .solid: return nil
        case .dotted: return "2 3"
        case .dashed: return "7 4"
        case .dashDot: return "8 3 2 3"
        }
    }

    /// Styles in the order lines of one colour get them.
    static let cycle: [LineStyle] = [.solid, .dotted, .dashDot, .dashed]
}

/// One line of a plot.
public struct PlotSeries: Sendable, Equatable {
    /// Legend text.
    public var label: String
    /// (x, y) in data units, drawn in the order given.
    public var points: [(x: Double, y: Double)]
    /// Index into the palette (lines that belong together share one).
    public var color: Int
    public var style: LineStyle
    /// A dot at every point (measured values); off for reference lines.
    public var markers: Bool

    public init(label: String, points: [(x: Double, y: Double)], color: Int, style: LineStyle = .solid, markers: Bool = true) {
        self.label = label
        self.points = points
        self.color = color
        self.style = style
        self.markers = markers
    }

    public static func == (a: PlotSeries, b: PlotSeries) -> Bool {
        a.label == b.label && a.color == b.color && a.style == b.style && a.markers == b.markers
            && a.points.map(\.x) == b.points.map(\.x) && a.points.map(\.y) == b.points.map(\.y)
    }
}

/// A line plot: what to draw, independent of how.
public struct LinePlot: Sendable, Equatable {
    public var title: String
    /// A line of small text under the title (what the line styles mean); empty = none.
    public var subtitle: String
    public var xLabel: String
    public var yLabel: String
    /// A logarithmic y axis (every y must be > 0).
    public var logY: Bool
    /// Text for x positions (categorical axes: x = 0, 1, 2… with these labels); nil = numeric ticks.
    public var xCategories: [String]?
    /// Whole-number x ticks only (update steps).
    public var xIntegers: Bool
    public var series: [PlotSeries]

    public init(title: String, subtitle: String = "", xLabel: String, yLabel: String, logY: Bool = false,
                xCategories: [String]? = nil, xIntegers: Bool = false, series: [PlotSeries]) {
        self.title = title
        self.subtitle = subtitle
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logY = logY
        self.xCategories = xCategories
        self.xIntegers = xIntegers
        self.series = series
    }

    /// Whether values spanning more than `ratio`× call for a log axis (all must be > 0).
    public static func wantsLogAxis(_ values: [Double], ratio: Double = 10) -> Bool {
        guard let lo = values.min(), let hi = values.max(), lo > 0 else { return false }
        return hi / lo > ratio
    }
}

// MARK: - Rendering

extension LinePlot {
    static let plotWidth = 570.0, height = 440.0, minimumLegendWidth = 210.0
    static let margin = (top: 50.0, right: 16.0, bottom: 56.0, left: 72.0)
    static let gridColor = "#e3e3e3", textColor = "#333333", frameColor = "#555555"
    /// Tableau 10: distinguishable, and still readable in grey print.
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                          "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    /// An estimate of `text`'s width in pixels at `fontSize`, generous for Helvetica/Arial (whose mean
    /// advance is about 0.55 em), so a label given this much room is not cut.
    public static func textWidth(_ text: String, fontSize: Double) -> Double { Double(text.count) * fontSize * 0.62 }

    /// The legend's font size: 12, or 10 when many entries must share the height.
    var legendFontSize: Double { legendSpacing < 14 ? 10 : 12 }
    /// 20 px per entry, closer when that would run past the bottom (many lines).
    var legendSpacing: Double { min(20, (Self.height - Self.margin.top - 16) / Double(max(1, series.count))) }
    /// Swatch (24 px), gap (6 px), the longest label, and a margin.
    var legendWidth: Double {
        max(Self.minimumLegendWidth, 4 + 30 + (series.map { Self.textWidth($0.label, fontSize: legendFontSize) }.max() ?? 0) + 12)
    }
    /// The whole picture's width: the plot and its legend, or the title's when that is longer.
    public var width: Double {
        max(Self.plotWidth + legendWidth, 2 * Self.titleX + max(Self.textWidth(title, fontSize: 16), Self.textWidth(subtitle, fontSize: 11)))
    }
    /// Titles start here, left-aligned, so a long one grows the picture to the right instead of being cut.
    static let titleX = 12.0

    /// The plot as a standalone SVG document.
    public func svg() -> String { render(rootAttributes: #"xmlns="http://www.w3.org/2000/svg""#) }

    /// Panels stacked top to bottom in one SVG document, each as a nested <svg> (one plot alone is just its document).
    public static func figure(_ panels: [LinePlot]) -> String {
        if panels.count == 1 { return panels[0].svg() }
        let width = panels.map(\.width).max() ?? 0, total = height * Double(panels.count)
        var out = [#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(n(width))" height="\#(n(total))" viewBox="0 0 \#(n(width)) \#(n(total))">"#,
                   #"<rect width="100%" height="100%" fill="white"/>"#]
        for (i, panel) in panels.enumerated() { out.append(panel.render(rootAttributes: #"x="0" y="\#(n(height * Double(i)))""#)) }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    private func render(rootAttributes: String) -> String {
        let m = Self.margin, width = self.width
        let area = (x0: m.left, x1: Self.plotWidth - m.right, y0: m.top, y1: Self.height - m.bottom)
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        let xAxis = xCategories.map { Axis.categories($0) } ?? Axis.linear(xs, integers: xIntegers)
        let yAxis = logY ? Axis.log(ys) : Axis.linear(ys)
        // Data sit `inset` pixels inside the frame, so points on the outer ticks are not cut by it.
        let inset = 8.0
        func px(_ x: Double) -> Double { area.x0 + inset + xAxis.fraction(x) * (area.x1 - area.x0 - 2 * inset) }
        func py(_ y: Double) -> Double { area.y1 - inset - yAxis.fraction(y) * (area.y1 - area.y0 - 2 * inset) }

        var out = [
            #"<svg \#(rootAttributes) width="\#(n(width))" height="\#(n(Self.height))" "#
                + #"viewBox="0 0 \#(n(width)) \#(n(Self.height))" font-family="Helvetica, Arial, sans-serif">"#,
            #"<rect width="100%" height="100%" fill="white"/>"#,
            #"<text x="\#(n(Self.titleX))" y="24" font-size="16" font-weight="bold">\#(escape(title))</text>"#,
        ]
        if !subtitle.isEmpty {
            out.append(#"<text x="\#(n(Self.titleX))" y="40" font-size="11" fill="\#(Self.textColor)">\#(escape(subtitle))</text>"#)
        }
        // Grid and ticks.
        out.append(#"<g stroke="\#(Self.gridColor)" stroke-width="1">"#)
        for t in xAxis.ticks { out.append(#"<line x1="\#(n(px(t.value)))" y1="\#(n(area.y0))" x2="\#(n(px(t.value)))" y2="\#(n(area.y1))"/>"#) }
        for t in yAxis.ticks { out.append(#"<line x1="\#(n(area.x0))" y1="\#(n(py(t.value)))" x2="\#(n(area.x1))" y2="\#(n(py(t.value)))"/>"#) }
        out.append("</g>")
        out.append(#"<g font-size="11" fill="\#(Self.textColor)">"#)
        for t in xAxis.ticks {
            out.append(#"<text x="\#(n(px(t.value)))" y="\#(n(area.y1 + 16))" text-anchor="middle">\#(escape(t.label))</text>"#)
        }
        for t in yAxis.ticks {
            out.append(#"<text x="\#(n(area.x0 - 6))" y="\#(n(py(t.value) + 4))" text-anchor="end">\#(escape(t.label))</text>"#)
        }
        out.append("</g>")
        out.append(#"<rect x="\#(n(area.x0))" y="\#(n(area.y0))" width="\#(n(area.x1 - area.x0))" height="\#(n(area.y1 - area.y0))" fill="none" stroke="\#(Self.frameColor)"/>"#)
        out.append(#"<text x="\#(n((area.x0 + area.x1) / 2))" y="\#(n(Self.height - 14))" text-anchor="middle" font-size="13">\#(escape(xLabel))</text>"#)
        let yMid = (area.y0 + area.y1) / 2
        out.append(#"<text x="18" y="\#(n(yMid))" text-anchor="middle" font-size="13" transform="rotate(-90 18 \#(n(yMid)))">\#(escape(yLabel))</text>"#)
        // Series, then the legend (same order and colours). Markers only while they stay readable.
        let maxMarkers = 40
        let dotted = series.enumerated().filter { isDots($0.element) }.map(\.offset)
        for (index, s) in series.enumerated() {
            let color = Self.palette[s.color % Self.palette.count]
            if let k = dotted.firstIndex(of: index) {
                // Side by side within a category, centred on it, so equal values do not hide each other.
                let step = min(0.15, 0.6 / Double(dotted.count)), offset = (Double(k) - Double(dotted.count - 1) / 2) * step
                out.append(#"<g class="series" fill="\#(color)"><title>\#(escape(s.label))</title>"#)
                for p in s.points { out.append(#"<circle cx="\#(n(px(p.x + offset)))" cy="\#(n(py(p.y)))" r="4"/>"#) }
                out.append("</g>")
                continue
            }
            let points = s.points.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
            let dash = s.style.dashArray.map { #" stroke-dasharray="\#($0)""# } ?? ""
            out.append(#"<polyline class="series" fill="none" stroke="\#(color)" stroke-width="2"\#(dash) points="\#(points)"><title>\#(escape(s.label))</title></polyline>"#)
            if s.markers && s.points.count <= maxMarkers {
                for p in s.points { out.append(#"<circle cx="\#(n(px(p.x)))" cy="\#(n(py(p.y)))" r="3" fill="\#(color)"/>"#) }
            }
        }
        let lx = Self.plotWidth + 4
        let spacing = legendSpacing
        out.append(#"<g font-size="\#(n(legendFontSize))">"#)
        for (i, s) in series.enumerated() {
            let y = area.y0 + 8 + Double(i) * spacing, color = Self.palette[s.color % Self.palette.count]
            let dash = s.style.dashArray.map { #" stroke-dasharray="\#($0)""# } ?? ""
            if !isDots(s) {
                out.append(#"<line x1="\#(n(lx))" y1="\#(n(y))" x2="\#(n(lx + 24))" y2="\#(n(y))" stroke="\#(color)" stroke-width="2"\#(dash)/>"#)
            }
            if s.markers { out.append(#"<circle cx="\#(n(lx + 12))" cy="\#(n(y))" r="\#(isDots(s) ? 4 : 3)" fill="\#(color)"/>"#) }
            out.append(#"<text x="\#(n(lx + 30))" y="\#(n(y + 4))">\#(escape(s.label))</text>"#)
        }
        out.append("</g>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// Whether `s` is drawn as dots without a line: a measured series along a categorical axis.
    func isDots(_ s: PlotSeries) -> Bool { xCategories != nil && s.markers }
}

/// An axis: the data domain after widening to whole ticks, and where the ticks are.
struct Axis {
    var lo: Double
    var hi: Double
    var log: Bool
    var ticks: [(value: Double, label: String)]

    /// Position of `v` along the axis, 0 at `lo` and 1 at `hi`.
    func fraction(_ v: Double) -> Double {
        let (a, b, x) = log ? (Foundation.log10(lo), Foundation.log10(hi), Foundation.log10(v)) : (lo, hi, v)
        return b > a ? (x - a) / (b - a) : 0.5
    }

    /// About six ticks at 1, 2, 2.5 or 5 × 10^k (`integers`: whole steps of 1, 2 or 5 × 10^k), the
    /// domain widened to the outer ones.
    static func linear(_ values: [Double], integers: Bool = false) -> Axis {
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        // A flat series still gets a readable axis around its value.
        if hi - lo < 1e-12 * max(1, abs(hi)) { (lo, hi) = lo == 0 ? (-1, 1) : (lo - abs(lo) * 0.1, hi + abs(hi) * 0.1) }
        let raw = max((hi - lo) / 6, integers ? 1 : 0), magnitude = pow(10, floor(Foundation.log10(raw)))
        let mantissas: [Double] = integers && magnitude < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]
        let step = mantissas.map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let first = floor(lo / step + 1e-9) * step, last = ceil(hi / step - 1e-9) * step
        let decimals = max(0, Int(-floor(Foundation.log10(step) + 1e-9)) + (abs(step / magnitude - 2.5) < 1e-9 ? 1 : 0))
        let count = Int(((last - first) / step).rounded())
        let ticks = (0...count).map { i -> (Double, String) in
            let v = first + Double(i) * step
            return (v, String(format: "%.\(decimals)f", abs(v) < step * 1e-9 ? 0 : v))
        }
        return Axis(lo: first, hi: last, log: false, ticks: ticks)
    }

    /// Whole decades around the values; 2× and 5× ticks too when they span two decades or fewer,
    /// and every other decade labelled when they span more than eight.
    static func log(_ values: [Double]) -> Axis {
        let positive = values.filter { $0 > 0 }
        let lo = floor(Foundation.log10(positive.min() ?? 1)), hi = max(lo + 1, ceil(Foundation.log10(positive.max() ?? 10)))
        let every = hi - lo > 8 ? 2 : 1
        var ticks: [(Double, String)] = []
        for k in Int(lo)...Int(hi) where (k - Int(lo)) % every == 0 {
            ticks.append((pow(10, Double(k)), power(k)))
            if hi - lo <= 2 && k < Int(hi) {
                for m in [2.0, 5.0] { ticks.append((m * pow(10, Double(k)), plain(m * pow(10, Double(k))))) }
            }
        }
        return Axis(lo: pow(10, lo), hi: pow(10, hi), log: true, ticks: ticks)
    }

    /// Evenly spaced labelled positions 0, 1, 2…, half a step of room at both ends.
    static func categories(_ labels: [String]) -> Axis {
        Axis(lo: -0.5, hi: Double(labels.count) - 0.5, log: false,
             ticks: labels.enumerated().map { (Double($0.offset), $0.element) })
    }

    /// 10^k as people read it: 0.01, 1, 1000, or 10⁻⁵ / 10⁶ beyond that.
    static func power(_ k: Int) -> String {
        if (-3...4).contains(k) { return plain(pow(10, Double(k))) }
        let superscripts: [Character: Character] = ["-": "⁻", "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴",
                                                    "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹"]
        return "10" + String(String(k).map { superscripts[$0]! })
    }

    /// A tick value without trailing zeros: 0.002, 20, 5000.
    static func plain(_ v: Double) -> String {
        var text = String(format: "%.6f", v)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

/// A coordinate with two decimals at most (small files, stable text).
private func n(_ v: Double) -> String { Axis.plain((v * 100).rounded() / 100 + 0) }  // + 0: no "-0"

/// Text safe inside an XML element or attribute.
func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
