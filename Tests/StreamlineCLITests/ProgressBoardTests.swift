// The terminal display: the live board as exact lines for given states and a width, and the choice
// between live-with-colour and plain lines (piped output, --progress plain and NO_COLOR).

import Foundation
@testable import Pipeline
@testable import StreamlineCLI
import Testing

@Test func theBoardDrawsOneLinePerRunningStageWithStepLossRateAndETA() {
    let lines = ProgressBoard.lines([
        RunningStage(id: "finetune", progress: StageProgress(step: 23, totalSteps: 46, loss: 3.21, tokensPerSecond: 1234.4), elapsed: 10),
        RunningStage(id: "regularize", progress: nil, elapsed: 2),
    ], width: 120)
    #expect(lines == [
        "  finetune  [##########..........] step 23/46 loss 3.2100 1234 tok/s ETA 10s",
        "  regularize  running (2s)",
    ])
}

/// A stage resumed after step 168 of 1440 that has done 41 steps in 123 s: the ETA is 3 s per step
/// for the 1231 left, not the rate of 209 steps in 123 s.
@Test func aResumedStagesETACountsOnlyTheStepsThisAttemptDid() {
    let progress = StageProgress(step: 209, totalSteps: 1440)
    let resumed = ProgressBoard.lines([RunningStage(id: "finetune", progress: progress, elapsed: 123, stepsBefore: 168)], width: 120)
    #expect(resumed == ["  finetune  [##..................] step 209/1440 ETA 3693s"])
    let fresh = ProgressBoard.bar(StageProgress(step: 41, totalSteps: 1440), elapsed: 123)
    #expect(fresh.hasSuffix("ETA 4197s"))
}

@Test func boardLinesAreCutToTheTerminalWidthWithAnEllipsis() {
    let stage = RunningStage(id: "finetune", progress: StageProgress(step: 46, totalSteps: 46, loss: 3.21), elapsed: 5)
    let lines = ProgressBoard.lines([stage], width: 30)
    #expect(lines == ["  finetune  [################…"])
    #expect(lines[0].count == 30)
    #expect(ProgressBoard.lines([stage], width: 200)[0] == "  finetune  [####################] step 46/46 loss 3.2100 ETA 0s")
}

@Test func pipedOutputAndNoColorChoosePlainLinesWithoutEscapeCodes() {
    let piped = TerminalStyle.choose(mode: .auto, isTTY: false, environment: [:], width: nil)
    #expect(piped == TerminalStyle(live: false, colour: false, width: 80))
    let terminal = TerminalStyle.choose(mode: .auto, isTTY: true, environment: ["TERM": "xterm"], width: 100)
    #expect(terminal == TerminalStyle(live: true, colour: true, width: 100))
    let noColor = TerminalStyle.choose(mode: .auto, isTTY: true, environment: ["NO_COLOR": "1"], width: 100)
    #expect(noColor.live && !noColor.colour)
    // An empty NO_COLOR does not count (no-color.org).
    #expect(TerminalStyle.choose(mode: .auto, isTTY: true, environment: ["NO_COLOR": ""], width: 100).colour)
    #expect(TerminalStyle.choose(mode: .plain, isTTY: true, environment: [:], width: 100) == TerminalStyle(live: false, colour: false, width: 100))
    #expect(TerminalStyle.choose(mode: .tty, isTTY: false, environment: [:], width: nil).live)
    #expect(!TerminalStyle.choose(mode: .auto, isTTY: true, environment: ["TERM": "dumb"], width: 100).live)
}

/// Everything a display wrote, for tests.
private final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private var parts: [String] = []
    func append(_ text: String) { lock.withLock { parts.append(text) } }
    var text: String { lock.withLock { parts.joined() } }
}

private func drive(_ style: TerminalStyle) -> String {
    let captured = Captured()
    let display = RunDisplay(mode: .text, style: style, write: captured.append)
    for event: RunEvent in [.cached(id: "import"), .started(id: "finetune"),
                            .progress(id: "finetune", StageProgress(step: 46, totalSteps: 46, loss: 3.2)),
                            .finished(id: "finetune", computed: true, seconds: 1.5)] {
        display.show(event)
    }
    display.finish(RunSummary(cached: ["import"], computed: ["finetune"]))
    return captured.text
}

@Test func plainLinesCarryNoEscapeCodesAndShowTheLastStep() {
    let noColor = TerminalStyle.choose(mode: .auto, isTTY: false, environment: ["NO_COLOR": "1"], width: nil)
    let text = drive(noColor)
    #expect(!text.contains("\u{1B}"))
    #expect(text.contains("  finetune  [####################] step 46/46 loss 3.2000"))
    #expect(text.hasSuffix("1 computed, 1 cached, 0 failed, 0 skipped\n"))
}

@Test func aLiveDisplayRedrawsInPlaceAndColoursStates() {
    let text = drive(TerminalStyle(live: true, colour: true, width: 80))
    #expect(text.contains("\u{1B}[1A\r\u{1B}[J"))  // back over the one-line board before the next line
    #expect(text.contains("\u{1B}[32mdone     finetune  (1.5 s)\u{1B}[0m"))
    #expect(text.contains("\u{1B}[2mcached   import\u{1B}[0m"))
    #expect(!text.contains("step 46/46\n  finetune"))  // no appended bar lines
    #expect(text.hasSuffix("1 computed, 1 cached, 0 failed, 0 skipped\n"))
}
