// The live part of a run on a terminal: one line per running stage, redrawn in place. A pure
// function from stage states and a width to lines, so tests can compare exact text.

import Foundation
import Pipeline

/// One running stage as the board shows it.
struct RunningStage: Equatable, Sendable {
    var id: String
    /// The latest report, nil until the stage sends one (prune and select never do).
    var progress: StageProgress?
    /// Seconds since the stage started (for the ETA).
    var elapsed: Double
    /// Steps done before this attempt (a stage resumed after step 168 reports 169 first), so the ETA
    /// divides the time by the steps this attempt did.
    var stepsBefore: Int = 0
}

enum ProgressBoard {
    /// Lines for the running stages in the order given, each cut to `width` columns.
    static func lines(_ stages: [RunningStage], width: Int) -> [String] {
        stages.map { stage in
            let detail = stage.progress.map { bar($0, elapsed: stage.elapsed, stepsBefore: stage.stepsBefore) }
                ?? String(format: "running (%.0fs)", stage.elapsed)
            return truncate("  \(stage.id)  \(detail)", to: width)
        }
    }

    /// `[####................] step 9/46 loss 3.2100 1234 tok/s ETA 41s`: shared by the live board and plain lines.
    static func bar(_ p: StageProgress, elapsed: Double, stepsBefore: Int = 0) -> String {
        let fraction = min(1, Double(p.step) / Double(max(1, p.totalSteps)))
        let filled = Int(fraction * 20)
        let done = p.step - stepsBefore
        let eta = done > 0 ? elapsed / Double(done) * Double(max(0, p.totalSteps - p.step)) : 0
        var text = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "]"
        text += " step \(p.step)/\(p.totalSteps)"
        if let loss = p.loss { text += String(format: " loss %.4f", loss) }
        if let tps = p.tokensPerSecond { text += String(format: " %.0f tok/s", tps) }
        return text + String(format: " ETA %.0fs", eta)
    }

    /// At most `width` characters; a cut line ends in "…" so the reader sees it was cut.
    static func truncate(_ line: String, to width: Int) -> String {
        guard line.count > width else { return line }
        return String(line.prefix(max(0, width - 1))) + "…"
    }
}

/// ANSI sequences the live display uses, and nothing else.
enum ANSI {
    static func up(_ lines: Int) -> String { lines > 0 ? "\u{1B}[\(lines)A\r" : "\r" }
    static let clearBelow = "\u{1B}[J"
    static func green(_ s: String) -> String { "\u{1B}[32m\(s)\u{1B}[0m" }
    static func red(_ s: String) -> String { "\u{1B}[31m\(s)\u{1B}[0m" }
    static func dim(_ s: String) -> String { "\u{1B}[2m\(s)\u{1B}[0m" }
}
