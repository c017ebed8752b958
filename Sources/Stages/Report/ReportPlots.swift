// Which plots a report draws, as LinePlot values (SVGPlot.swift renders them): per evaluation set, a
// panel of perplexity against the `x` sweep variable with one line per evaluate stage and `series` value (colour = series value,
// stroke = stage), rows without `x` (the dense model) as dashed reference lines; and, per regularize
// run, the LM loss (with the held-out loss of the P-masked model, dotted) and the relative slice
// energy of P (log axis) against the update step.

import Foundation
import Pipeline
import Training

/// One regularize run's curves with the label its lines get.
struct LabelledCurves {
    var stage: String
    var variables: [ReportVariable]
    var curves: RegularizationCurves
}

enum ReportPlots {
    /// A line's legend text: the sweep variables (and the stage when several stages share the plot).
    static func label(stage: String, variables: [ReportVariable], withStage: Bool) -> String {
        let vars = variables.map { "\($0.name)=\($0.value)" }.joined(separator: ", ")
        if vars.isEmpty { return stage }
        return withStage ? "\(stage) \(vars)" : vars
    }

    /// One perplexity plot per evaluation set (rows scoring the same text, the dense reference among
    /// them), titled by the stages that scored it; empty without evaluate rows. Perplexities of
    /// different texts are not comparable, so they never share an axis.
    static func perplexityPanels(_ content: ReportContent) -> [LinePlot] {
        let datasets = content.rows.map(\.dataset).firstOccurrences
        return datasets.compactMap { dataset in
            var panel = content
            panel.rows = content.rows.filter { $0.dataset == dataset }
            guard var plot = perplexity(panel) else { return nil }
            if datasets.count > 1 {
                // The evaluation set leads (bold); the report's title follows as the subtitle.
                let measured = panel.rows.filter { row in row.variables.contains { $0.name == content.x } }
                plot.subtitle = plot.title
                plot.title = (measured.isEmpty ? panel.rows : measured).map(\.stage).firstOccurrences.joined(separator: " · ")
            }
            return plot
        }
    }

    /// Perplexity against `content.x`; nil without evaluate rows.
    static func perplexity(_ content: ReportContent) -> LinePlot? {
        guard !content.rows.isEmpty else { return nil }
        let onAxis = content.rows.filter { row in row.variables.contains { $0.name == content.x } }
        func xValue(_ row: ReportRow) -> ParamValue { row.variables.first { $0.name == content.x }!.value }
        // Categorical when some x is not a number (or no row has x: one position per row).
        let numeric = !onAxis.isEmpty && onAxis.allSatisfy { xValue($0).number != nil }
        let categories: [String]? = numeric ? nil : onAxis.isEmpty ? content.rows.map(\.id)
            : onAxis.map { xValue($0).description }.firstOccurrences
        func position(_ row: ReportRow) -> Double {
            if onAxis.isEmpty { return Double(content.rows.firstIndex(of: row)!) }
            return numeric ? xValue(row).number! : Double(categories!.firstIndex(of: xValue(row).description)!)
        }

        // One line per stage and binding of every variable but x, first seen first; points in x order.
        // The legend names a line by the series variable and only those other variables needed to
        // tell lines apart (a zip's companions of `method` add nothing), plus its stage when several
        // stages share the plot. Colour says that name, the stroke says the stage.
        let rows = onAxis.isEmpty ? content.rows : onAxis
        func value(_ row: ReportRow, _ name: String) -> String? { row.variables.first { $0.name == name }?.value.description }
        // A variable fixed by the series and x together says nothing the line and the axis do not:
        // quickstart's basis beside method, or a sweep's zip companions (ratio-sweep's reg_ratio and
        // prune_ratio differ between methods at one ratio, but each method's follow its ratio).
        func followsX(_ name: String) -> Bool {
            !onAxis.isEmpty && Dictionary(grouping: onAxis, by: { (value($0, content.series) ?? "") + "\u{0}" + xValue($0).description })
                .values.allSatisfy { Set($0.map { value($0, name) }).count <= 1 }
        }
        let written = rows.flatMap { $0.variables.map(\.name) }.filter { $0 != content.x && !(followsX($0) && $0 != content.series) }.firstOccurrences
        let names = written.filter { $0 == content.series } + written.filter { $0 != content.series }  // series first
        func identity(_ row: ReportRow, _ vars: [String]) -> String { vars.map { value(row, $0) ?? "" }.joined(separator: "\u{0}") }
        func distinct(_ vars: [String]) -> Int { rows.map { $0.stage + "\u{1}" + identity($0, vars) }.firstOccurrences.count }
        var shown: [String] = []
        for name in names where distinct(shown) < distinct(names) && distinct(shown + [name]) > distinct(shown) { shown.append(name) }
        let groups = rows.map { identity($0, shown) }.firstOccurrences
        let lineStages = rows.map(\.stage).firstOccurrences
        var lines: [(key: String, label: String, color: Int, style: LineStyle, rows: [ReportRow])] = []
        for row in rows {
            let key = row.stage + "\u{1}" + identity(row, names)
            if let i = lines.firstIndex(where: { $0.key == key }) { lines[i].rows.append(row); continue }
            // A method name says itself; a number needs its variable's name ("ratio=0.25").
            let named = shown.compactMap { name in
                value(row, name).map { v in name == content.series && Double(v) == nil && v != "true" && v != "false" ? v : "\(name)=\(v)" }
            }
            let label = ((lineStages.count > 1 || named.isEmpty ? [row.stage] : []) + named).joined(separator: " · ")
            let stageIndex = lineStages.firstIndex(of: row.stage)!
            let (color, style) = groups.count > 1
                ? (groups.firstIndex(of: identity(row, shown))!, LineStyle.cycle[stageIndex % LineStyle.cycle.count])
                : (stageIndex, LineStyle.solid)
            lines.append((key, label, color, style, [row]))
        }
        var series = lines.map { line in
            PlotSeries(label: line.label, points: line.rows.map { (position($0), $0.perplexity) }.sorted { $0.x < $1.x },
                       color: line.color, style: line.style)
        }
        // Rows off the axis (a dense evaluation): a dashed line across the whole axis, in colours after the lines'.
        if !onAxis.isEmpty {
            let xs = series.flatMap { $0.points.map(\.x) }
            let (lo, hi) = (xs.min()!, xs.max()!)
            var color = (lines.map(\.color).max() ?? -1) + 1
            for row in content.rows where !onAxis.contains(row) {
                let label = label(stage: row.stage, variables: row.variables, withStage: true)
                series.append(PlotSeries(label: label, points: [(lo, row.perplexity), (hi, row.perplexity)], color: color,
                                         style: .dashed, markers: false))
                color += 1
            }
        }
        let logY = LinePlot.wantsLogAxis(content.rows.map(\.perplexity))
        return LinePlot(title: content.title, xLabel: onAxis.isEmpty ? "evaluation" : content.x,
                        yLabel: "perplexity" + (logY ? " (log scale)" : ""), logY: logY, xCategories: categories, series: series)
    }

    /// Each regularize run's legend text: the `series` variable's text value by itself, then only the
    /// variables whose values differ between runs ("dress_lm · ratio=0.25"), and the stage when several
    /// stages share the plot (or nothing else tells runs apart).
    static func runLabels(_ runs: [LabelledCurves], series: String) -> [String] {
        let withStage = Set(runs.map(\.stage)).count > 1
        func value(_ run: LabelledCurves, _ name: String) -> String? { run.variables.first { $0.name == name }?.value.description }
        let names = runs.flatMap { $0.variables.map(\.name) }.firstOccurrences
            .filter { name in name == series || Set(runs.map { value($0, name) }).count > 1 }
        let ordered = names.filter { $0 == series } + names.filter { $0 != series }
        return runs.map { run in
            let named = ordered.compactMap { name in
                value(run, name).map { v in name == series && Double(v) == nil ? v : "\(name)=\(v)" }
            }
            return ((withStage || named.isEmpty ? [run.stage] : []) + named).joined(separator: " · ")
        }
    }

    /// LM loss against the update step, one line per run, and its held-out loss with P masked to zero
    /// at the checkpoints (dotted, same colour); nil without runs.
    static func loss(_ runs: [LabelledCurves], series seriesName: String) -> LinePlot? {
        guard !runs.isEmpty else { return nil }
        let labels = runLabels(runs, series: seriesName)
        var series: [PlotSeries] = []
        for (i, run) in runs.enumerated() {
            let label = labels[i]
            series.append(PlotSeries(label: label, points: run.curves.points.map { (Double($0.step), Double($0.loss)) }, color: i))
            if !run.curves.evaluations.isEmpty {
                series.append(PlotSeries(label: label + " · P masked",
                                         points: run.curves.evaluations.map { (Double($0.step), $0.maskedLoss) }, color: i, style: .dotted))
            }
        }
        return LinePlot(title: "Regularization: LM loss",
                        subtitle: "solid: training loss · dotted: held-out loss with the channels of P set to zero",
                        xLabel: "update step", yLabel: "loss (nats/token)", xIntegers: true, series: series)
    }

    /// Relative slice energy of P against the update step (step 0: before training), log axis;
    /// nil without runs. Points at exactly zero energy cannot sit on a log axis and are left out.
    static func energy(_ runs: [LabelledCurves], series seriesName: String) -> LinePlot? {
        guard !runs.isEmpty else { return nil }
        let labels = runLabels(runs, series: seriesName)
        let series = runs.enumerated().map { i, run in
            let points = [(0.0, run.curves.initialEnergy)] + run.curves.points.map { (Double($0.step), $0.energy) }
            return PlotSeries(label: labels[i], points: points.filter { $0.1 > 0 }, color: i)
        }
        return LinePlot(title: "Regularization: energy left in the slices of P", xLabel: "update step",
                        yLabel: "relative slice energy (log scale)", logY: true, xIntegers: true, series: series)
    }
}
