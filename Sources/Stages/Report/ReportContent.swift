// What a `report` stage computes: one row per evaluate store and one per regularize run, each labelled
// by its upstream stage and sweep variables, and how those tables read as Markdown, CSV and JSON.
// The stored content is a function of the inputs only; speed (measured, not digested) is merged in
// when a table is shown (`speeds`), never stored. Plots are ReportPlots.swift; the stage and its
// store are ReportStage.swift.

import Foundation
import Pipeline

/// A sweep variable of an upstream node, e.g. ratio = 0.25.
public struct ReportVariable: Codable, Sendable, Equatable {
    public var name: String
    public var value: ParamValue

    public init(name: String, value: ParamValue) {
        self.name = name
        self.value = value
    }

    private enum CodingKeys: String, CodingKey { case name, value }

    /// The value as its bare scalar: reports are read by people and tools, which want `"lambda": 0`,
    /// and report stores keep the bytes they had before ParamValue learnt to mark integral doubles.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try value.encodeScalar(to: c.superEncoder(forKey: .value))
    }
}

/// One evaluate store: what model (its stage and sweep member) scored what on which text.
public struct ReportRow: Codable, Sendable, Equatable {
    /// The upstream stage name, e.g. `eval_heldout`.
    public var stage: String
    /// The upstream node id, e.g. `eval_heldout[ratio=0.25,method=dress]`.
    public var id: String
    public var variables: [ReportVariable]
    /// What text was scored (EvaluationMetrics.dataset).
    public var dataset: String
    public var perplexity: Double
    /// Parameter count (tied embedding once).
    public var parameters: Int
    /// Model width d.
    public var hiddenSize: Int
    /// Forward FLOPs per token at the evaluation window's mean context.
    public var flopsPerToken: Double
    public var tokensScored: Int

    enum CodingKeys: String, CodingKey {
        case stage, id, variables, dataset, perplexity, parameters, hiddenSize = "hidden_size",
             flopsPerToken = "flops_per_token", tokensScored = "tokens_scored"
    }
}

/// One regularize run: how far it emptied P, from the curves in its channel store.
public struct RegularizationRow: Codable, Sendable, Equatable {
    public var stage: String
    public var id: String
    public var variables: [ReportVariable]
    /// The rule that chose P, e.g. "last".
    public var selection: String
    /// |P|, of `hiddenSize` channels.
    public var removed: Int
    public var hiddenSize: Int
    /// Updates done (the last recorded point).
    public var steps: Int
    /// LM loss at the last recorded point.
    public var finalLoss: Double
    /// Relative slice energy of P before the first update and after the last (→ 0 as P empties).
    public var initialEnergy: Double
    public var finalEnergy: Double
    /// Held-out perplexity with P masked to zero, before the first update and after the last (nil
    /// without held-out checkpoints).
    public var maskedPerplexityBefore: Double?
    public var maskedPerplexityAfter: Double?

    enum CodingKeys: String, CodingKey {
        case stage, id, variables, selection, removed, hiddenSize = "hidden_size", steps, finalLoss = "final_loss",
             initialEnergy = "initial_energy", finalEnergy = "final_energy",
             maskedPerplexityBefore = "masked_perplexity_before", maskedPerplexityAfter = "masked_perplexity_after"
    }
}

/// The deterministic content of a report store.
public struct ReportContent: Codable, Sendable, Equatable {
    public var title: String
    /// The sweep variable on the plots' x axis, e.g. `ratio`.
    public var x: String
    /// The sweep variable that splits lines, e.g. `method`.
    public var series: String
    /// Evaluate stores, in gather order.
    public var rows: [ReportRow]
    /// Regularize runs (channel stores with curves), in gather order.
    public var regularization: [RegularizationRow]

    public init(title: String, x: String, series: String, rows: [ReportRow], regularization: [RegularizationRow]) {
        self.title = title
        self.x = x
        self.series = series
        self.rows = rows
        self.regularization = regularization
    }

    /// The values of `variables` under the column names `names` ("–" where a row lacks one).
    static func cells(_ variables: [ReportVariable], _ names: [String], missing: String = "–") -> [String] {
        names.map { name in variables.first { $0.name == name }?.value.description ?? missing }
    }

    /// The columns a person reads: `columns`, minus every variable that an earlier kept column
    /// determines in every row (a zip companion such as `ft_steps` beside `method`, or a variable with
    /// one value), so the Markdown table shows what tells rows apart. CSV and JSON keep them all.
    static func readableColumns(_ lists: [[ReportVariable]]) -> [String] {
        func value(_ list: [ReportVariable], _ name: String) -> ParamValue? { list.first { $0.name == name }?.value }
        func determines(_ u: String, _ v: String) -> Bool {
            var mapping: [ParamValue: ParamValue] = [:]
            for list in lists {
                guard let b = value(list, v) else { continue }
                guard let a = value(list, u) else { return false }
                if let seen = mapping[a], seen != b { return false }
                mapping[a] = b
            }
            return true
        }
        var kept: [String] = []
        for name in columns(lists) where !kept.contains(where: { determines($0, name) }) { kept.append(name) }
        return kept
    }

    /// Sweep variable names of `variables` lists, first seen first: the table's columns.
    static func columns(_ lists: [[ReportVariable]]) -> [String] {
        var names: [String] = []
        for list in lists { for v in list where !names.contains(v.name) { names.append(v.name) } }
        return names
    }
}

/// How `streamline report` prints a table.
public enum ReportFormat: String, CaseIterable, Sendable {
    case markdown, csv, json

    /// The file name of the table in this format.
    public var fileName: String {
        switch self {
        case .markdown: return "report.md"
        case .csv: return "report.csv"
        case .json: return "report.json"
        }
    }
}

// MARK: - Tables

extension ReportContent {
    /// The table in `format`; `speeds` (row id → measured speed) adds the speed-up columns.
    public func table(_ format: ReportFormat, speeds: [String: EvaluationSpeed] = [:]) -> String {
        switch format {
        case .markdown: return markdown(speeds: speeds)
        case .csv: return csv(speeds: speeds)
        case .json: return json(speeds: speeds)
        }
    }

    /// Aligned Markdown (readable as is in a terminal): the evaluation table with the datasets as
    /// footnotes D1, D2…, then the regularization table when there are runs.
    func markdown(speeds: [String: EvaluationSpeed]) -> String {
        var text = "## \(title)\n\n"
        let variables = Self.readableColumns(rows.map(\.variables))
        let datasets = rows.map(\.dataset).firstOccurrences
        let withSpeed = rows.contains { speeds[$0.id]?.prefillSpeedup != nil }
        if rows.isEmpty {
            text += "No evaluate results among the inputs.\n"
        } else {
            var header = ["stage"] + variables + ["data", "perplexity", "parameters", "FLOPs/token"]
            if withSpeed { header += ["prefill ×", "decode ×"] }
            let cells = rows.map { row -> [String] in
                var line = [row.stage] + Self.cells(row.variables, variables)
                line += ["D\(datasets.firstIndex(of: row.dataset)! + 1)", String(format: "%.2f", row.perplexity),
                         humanCount(Double(row.parameters)), humanCount(row.flopsPerToken)]
                if withSpeed {
                    let speed = speeds[row.id]
                    line += [speed?.prefillSpeedup.map { String(format: "%.2f", $0) } ?? "–",
                             speed?.decodeSpeedup.map { String(format: "%.2f", $0) } ?? "–"]
                }
                return line
            }
            text += markdownTable(header, cells, numeric: Set((1 + variables.count + 1)..<header.count))
            text += "\n" + datasets.enumerated().map { "D\($0.offset + 1): \($0.element)" }.joined(separator: "\n") + "\n"
            if withSpeed { text += "Speed-ups: the dense model's time / this model's, measured by each evaluate stage on its machine.\n" }
        }
        if !regularization.isEmpty {
            let names = Self.readableColumns(regularization.map(\.variables))
            let header = ["stage"] + names + ["selection", "P", "steps", "loss", "energy start", "energy end",
                                              "masked ppl start", "masked ppl end"]
            let cells = regularization.map { r -> [String] in
                let masked: [String] = [r.maskedPerplexityBefore, r.maskedPerplexityAfter].map { value in
                    value.map { String(format: "%.2f", $0) } ?? "–"
                }
                let numbers: [String] = [r.selection, "\(r.removed)/\(r.hiddenSize)", "\(r.steps)", String(format: "%.4f", r.finalLoss),
                                         String(format: "%.3e", r.initialEnergy), String(format: "%.3e", r.finalEnergy)]
                return [r.stage] + Self.cells(r.variables, names) + numbers + masked
            }
            text += "\n### Regularization\n\n" + markdownTable(header, cells, numeric: Set((names.count + 3)..<header.count))
            text += "\nEnergy: the relative energy of the slices of P (0.5: as strong as a kept channel; 0: empty).\n"
        }
        return text
    }

    /// One line per evaluate row, raw numbers; speed columns when `speeds` has any.
    func csv(speeds: [String: EvaluationSpeed]) -> String {
        let variables = Self.columns(rows.map(\.variables))
        let withSpeed = !speeds.isEmpty
        var header = ["stage", "id"] + variables + ["dataset", "perplexity", "parameters", "hidden_size", "flops_per_token", "tokens_scored"]
        if withSpeed { header += ["prefill_speedup", "decode_speedup", "prefill_seconds", "decode_tokens_per_second"] }
        var lines = [header.map(csvField).joined(separator: ",")]
        for row in rows {
            var fields = [row.stage, row.id] + Self.cells(row.variables, variables, missing: "")
            fields += [row.dataset, "\(row.perplexity)", "\(row.parameters)", "\(row.hiddenSize)", "\(row.flopsPerToken)", "\(row.tokensScored)"]
            if withSpeed {
                let s = speeds[row.id]
                fields += [s?.prefillSpeedup.map { "\($0)" } ?? "", s?.decodeSpeedup.map { "\($0)" } ?? "",
                           s.map { "\($0.prefillSeconds)" } ?? "", s.map { "\($0.decodeTokensPerSecond)" } ?? ""]
            }
            lines.append(fields.map(csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The content as pretty JSON with sorted keys; each row carries `speed` when `speeds` has it.
    func json(speeds: [String: EvaluationSpeed]) -> String {
        struct Row: Encodable {
            var row: ReportRow
            var speed: EvaluationSpeed?
            func encode(to encoder: Encoder) throws {
                try row.encode(to: encoder)
                enum Key: String, CodingKey { case speed }
                var c = encoder.container(keyedBy: Key.self)
                try c.encodeIfPresent(speed, forKey: .speed)
            }
        }
        struct View: Encodable {
            var title: String, x: String, series: String, rows: [Row], regularization: [RegularizationRow]
        }
        let view = View(title: title, x: x, series: series, rows: rows.map { Row(row: $0, speed: speeds[$0.id]) },
                        regularization: regularization)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain numbers and strings cannot fail.
        return String(decoding: (try? encoder.encode(view)) ?? Data(), as: UTF8.self) + "\n"
    }
}

/// A Markdown table with every column padded to its widest cell; `numeric` columns align right.
func markdownTable(_ header: [String], _ rows: [[String]], numeric: Set<Int>) -> String {
    let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max()! }
    func line(_ cells: [String]) -> String {
        "| " + cells.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return numeric.contains(c) ? pad + cell : cell + pad
        }.joined(separator: " | ") + " |"
    }
    let rules = widths.indices.map { c -> String in
        let dashes = String(repeating: "-", count: numeric.contains(c) ? widths[c] - 1 : widths[c])
        return numeric.contains(c) ? " \(dashes): " : " \(dashes) "
    }
    let rule = "|" + rules.joined(separator: "|") + "|"
    return ([line(header), rule] + rows.map(line)).joined(separator: "\n") + "\n"
}

extension Array where Element: Equatable {
    /// The elements without repeats, each where it first occurs (labels in the order rows give them).
    public var firstOccurrences: [Element] { reduce(into: []) { if !$0.contains($1) { $0.append($1) } } }
}

/// 134.5M, 24.3k, 1.21G: counts as people compare them.
func humanCount(_ v: Double) -> String {
    switch abs(v) {
    case 1e9...: return String(format: "%.2fG", v / 1e9)
    case 1e6...: return String(format: "%.1fM", v / 1e6)
    case 1e3...: return String(format: "%.1fk", v / 1e3)
    default: return String(format: "%.0f", v)
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
func csvField(_ text: String) -> String {
    text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
}
