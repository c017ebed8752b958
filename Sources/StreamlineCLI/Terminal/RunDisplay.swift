// RunDisplay: how `run` and `status --wait` show run events: plain lines, a live board on a terminal
// (ProgressBoard draws it, TerminalStyle chooses it), or JSON lines.

import Foundation
import Pipeline

/// Draws run events: one line per state change and, on a terminal, a live board of running stages
/// redrawn in place (plain mode prints a bar line instead, at most once a second, and the last step);
/// or JSON lines.
final class RunDisplay: @unchecked Sendable {
    enum Mode { case text, quiet, json }
    let mode: Mode
    let style: TerminalStyle
    private let lock = NSLock()
    private var lastBar: [String: Date] = [:]
    private var started: [String: Date] = [:]
    private var running: [String] = []
    private var latest: [String: StageProgress] = [:]
    /// Steps a stage had done before this run's attempt (its first report's step − 1: a resumed stage).
    private var stepsBefore: [String: Int] = [:]
    private var boardHeight = 0
    private var lastDraw = Date.distantPast
    /// Where text goes: standard output, or a test's buffer.
    private let write: @Sendable (String) -> Void

    init(mode: Mode, style: TerminalStyle = .plain,
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) {
        self.mode = mode
        self.style = mode == .text ? style : .plain
        self.write = write
    }

    func show(_ event: RunEvent) {
        lock.withLock {
            if mode == .json { writeLine(jsonLine(event)); return }
            switch event {
            case .cached(let id): if mode == .text { say(paint("cached   \(id)", ANSI.dim)) }
            case .started(let id):
                started[id] = Date()
                running.append(id)
                if mode == .text { say("start    \(id)") }
            case .progress(let id, let p):
                guard mode == .text else { return }
                if stepsBefore[id] == nil { stepsBefore[id] = max(0, p.step - 1) }
                if style.live {
                    latest[id] = p
                    // A redraw per report would flood a slow terminal; ten a second reads as smooth.
                    guard p.step == p.totalSteps || Date().timeIntervalSince(lastDraw) >= 0.1 else { return }
                    say()
                    return
                }
                // At most one bar line per stage per second, and always the last step: readable in a CI log,
                // and a fast run still shows that it got to the end.
                guard p.step == p.totalSteps || Date().timeIntervalSince(lastBar[id] ?? .distantPast) >= 1 else { return }
                lastBar[id] = Date()
                writeLine("  \(id)  \(ProgressBoard.bar(p, elapsed: Date().timeIntervalSince(started[id] ?? Date()), stepsBefore: stepsBefore[id] ?? 0))")
            case .finished(let id, let computed, let seconds):
                stopped(id)
                let line = "\(computed ? "done  " : "cached")   \(id)  (\(String(format: "%.1f", seconds)) s)"
                if mode == .text { say(paint(line, computed ? ANSI.green : ANSI.dim)) }
            case .failed(let id, let detail, let log):
                stopped(id)
                say(paint("FAILED   \(id): \(detail)", ANSI.red) + (log.map { "\n         log: \($0)" } ?? ""))
            case .skipped(let id, let reason):
                stopped(id)
                guard mode == .text else { return }
                switch reason {
                case .failedUpstream(let ancestor): say("skipped  \(id) (needs \(ancestor), which failed)")
                case .stopped(let failure):
                    say("skipped  \(id) (not started: the run stopped after \(failure) failed; --keep-going runs it)")
                case .interrupted: say("skipped  \(id) (interrupted)")
                case .paused(let step, let steps):
                    say("stopped  \(id) after step \(step) of \(steps) (interrupted; the next run continues from there)")
                }
            case .scheduled(let id, let job, let state):
                if mode == .text { say("slurm    \(id)  job \(job) \(state)") }
            }
        }
    }

    func finish(_ s: RunSummary) {
        if mode == .json { return }
        let failed = "\(s.failed.count) failed"
        lock.withLock {
            say("\(s.computed.count) computed, \(s.cached.count) cached, \(s.failed.isEmpty ? failed : paint(failed, ANSI.red)), "
                + "\(s.skipped.count) skipped")
        }
    }

    private func stopped(_ id: String) {
        running.removeAll { $0 == id }
        latest[id] = nil
    }

    private func writeLine(_ text: String) { write(text + "\n") }

    private func paint(_ text: String, _ colour: (String) -> String) -> String { style.colour ? colour(text) : text }

    /// Prints `line` (if any) above the live board and redraws the board; without a live board, just the line.
    private func say(_ line: String? = nil) {
        guard style.live else {
            if let line { writeLine(line) }
            return
        }
        let now = Date()
        let board = ProgressBoard.lines(running.map { RunningStage(id: $0, progress: latest[$0],
                                                                   elapsed: now.timeIntervalSince(started[$0] ?? now),
                                                                   stepsBefore: stepsBefore[$0] ?? 0) },
                                        width: style.width)
        var text = boardHeight > 0 ? ANSI.up(boardHeight) + ANSI.clearBelow : ""
        if let line { text += line + "\n" }
        text += board.map { $0 + "\n" }.joined()
        write(text)
        boardHeight = board.count
        lastDraw = now
    }

    /// After `run --detach`: what went out and how to follow it.
    func detached(_ record: SlurmRunRecord) {
        if mode == .json {
            let object: [String: Any] = ["event": "detached", "run": record.run, "jobs": record.jobs.count]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            writeLine(String(decoding: data, as: UTF8.self))
            return
        }
        writeLine("submitted \(record.jobs.count) jobs as run \(record.run) (\(record.cached.count) cached, "
                 + "\(record.notSubmitted.count) not submitted); follow with 'streamline status --wait', stop with 'streamline cancel'")
    }

    func jsonLine(_ event: RunEvent) -> String {
        var object: [String: Any] = [:]
        switch event {
        case .cached(let id): object = ["event": "cached", "id": id]
        case .started(let id): object = ["event": "started", "id": id]
        case .progress(let id, let p):
            object = ["event": "progress", "id": id, "step": p.step, "total": p.totalSteps]
            if let loss = p.loss { object["loss"] = loss }
            if let tps = p.tokensPerSecond { object["tokens_per_second"] = tps }
        case .finished(let id, let computed, let seconds):
            object = ["event": "finished", "id": id, "computed": computed, "seconds": seconds]
        case .failed(let id, let detail, let log):
            object = ["event": "failed", "id": id, "detail": detail]
            if let log { object["log"] = log }
        case .skipped(let id, let reason):
            object = ["event": "skipped", "id": id]
            switch reason {
            case .failedUpstream(let ancestor): object["because"] = ancestor
            case .stopped(let failure): object["stopped_after"] = failure
            case .interrupted: object["because"] = "interrupt"
            case .paused(let step, let steps): object.merge(["because": "interrupt", "resumes_after": step, "total": steps]) { $1 }
            }
        case .scheduled(let id, let job, let state): object = ["event": "scheduled", "id": id, "job": job, "state": state]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
