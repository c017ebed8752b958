// SIGINT and SIGTERM in a stage process. Outside a stoppable section they end the process at once,
// by the signal, as if no handler were installed. A loop that can stop cleanly (a training stage,
// which then writes its resume point) runs inside `stoppable { }`: while it does, a signal only
// records itself, and the loop reads `requested` after each step, saves and throws `StageStopped`.
// Why it matters: Ctrl-C, `streamline cancel` and a Slurm time limit (SIGTERM, then SIGKILL after
// KillWait, 30 s by default) all arrive as these signals, hours into a fine-tune.

import Foundation

public final class GracefulStop: @unchecked Sendable {
    /// The stage process's own, listening once `install()` ran.
    public static let shared = GracefulStop()

    private let lock = NSLock()
    private var sections = 0
    private var received: Int32?
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    /// Routes SIGINT and SIGTERM through this object from now on (call once, in the stage process).
    public func install() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in request(number) }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }

    /// Asks the process to stop, as signal `number` does: at once outside a stoppable section, after
    /// the current step inside one. Tests call it directly on an instance of their own.
    public func request(_ number: Int32) {
        let now = lock.withLock { () -> Bool in
            received = received ?? number
            return sections == 0
        }
        guard now else {
            FileHandle.standardError.write(Data("\(signalName(number)): stopping after this step, once the resume point is written (kill -9 stops at once).\n".utf8))
            return
        }
        guard self === Self.shared else { return }
        signal(number, SIG_DFL)
        kill(getpid(), number)
    }

    /// The first signal received, if any.
    public var requested: Int32? { lock.withLock { received } }

    /// Runs `body` as a section that stops itself: signals arriving meanwhile wait for it to read them.
    public func stoppable<T>(_ body: () throws -> T) rethrows -> T {
        lock.withLock { sections += 1 }
        defer { lock.withLock { sections -= 1 } }
        return try body()
    }
}

/// A stoppable stage ended early on request, its state saved (or not: `saved` says) for the next run.
public struct StageStopped: Error, Sendable, Equatable, CustomStringConvertible {
    public var signal: Int32
    /// Steps done and the run's total.
    public var step: Int
    public var steps: Int
    /// The resume point written, nil if writing it failed (`detail` says why).
    public var saved: URL?
    public var detail: String

    public init(signal: Int32, step: Int, steps: Int, saved: URL?, detail: String = "") {
        self.signal = signal
        self.step = step
        self.steps = steps
        self.saved = saved
        self.detail = detail
    }

    public var description: String {
        "stopped by \(signalName(signal)) after step \(step) of \(steps); "
            + (saved.map { "the next run continues from there (resume point \($0.path))" }
               ?? "no resume point was written (\(detail)), so the next run starts this stage over")
    }
}

/// "SIGTERM", "SIGINT", else "signal N".
func signalName(_ number: Int32) -> String {
    switch number {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    default: "signal \(number)"
    }
}
