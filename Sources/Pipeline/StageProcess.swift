// The contract between a runner and the stage processes it starts (`streamline stage ID`), beyond
// their arguments: what of a failed stage's stderr the runner shows, and how a stage process notices
// that its runner is gone so that it stops instead of publishing for a run that no longer exists.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one line a runner shows for a failed stage process.
public enum StageErrorText {
    /// The stage's own typed error: the first line it printed after ArgumentParser's `Error: `.
    /// Libraries (HDF5's error stack, the Swift runtime) print around it, so the tail of stderr is
    /// usually someone else's last words.
    public static func firstErrorLine(_ stderr: String) -> String? {
        for line in stderr.split(whereSeparator: \.isNewline) where line.hasPrefix("Error: ") {
            let text = line.dropFirst("Error: ".count).trimmingCharacters(in: .whitespaces)
            if !text.isEmpty { return text }
        }
        return nil
    }

    /// The error line if there is one, else the first non-empty line; with the signal that ended the
    /// process when it was killed (`status` is the signal number then), or the exit status when silent.
    public static func detail(stderr: String, status: Int32, signaled: Bool) -> String {
        let first = firstErrorLine(stderr)
            ?? stderr.split(whereSeparator: \.isNewline).lazy.map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
        let line = first.map { String($0.prefix(2000)) }
        guard signaled else { return line ?? "exit status \(status) with no error message" }
        let name = strsignal(status).map { String(cString: $0) } ?? "signal \(status)"
        return (line.map { "\($0) (then killed by \(name))" }) ?? "killed by \(name) (signal \(status)) before printing an error"
    }
}

/// Ties a stage process to the runner that started it: the runner passes its pid in the environment;
/// the stage process ends itself once its parent is another process (the runner died, even by
/// SIGKILL, and the orphan was re-parented), and never publishes after that.
/// Why not prctl(PR_SET_PDEATHSIG): it fires when the spawning *thread* exits, and the runner spawns
/// from a pool thread that may be retired while the stage still runs; it is also Linux only.
public enum RunnerWatch {
    static let variable = "STREAMLINE_RUNNER_PID"

    /// The environment entries a runner adds for its stage processes.
    public static func environment() -> [String: String] { [variable: String(getpid())] }

    /// The pid of the runner that started this process, if a runner did.
    static var runner: pid_t? { ProcessInfo.processInfo.environment[variable].flatMap { pid_t($0) } }

    /// Whether this process was started by a runner that has since gone.
    public static var runnerIsGone: Bool {
        guard let runner else { return false }
        return getppid() != runner
    }

    /// When started by a runner: checks now, then every `interval` seconds on a thread of its own, and
    /// ends this process (exit status 1, no atexit handlers, so no library flushes half-written files)
    /// once the runner is gone. Its lock goes with it; its scratch folder is left for `cache gc`.
    public static func start(interval: Double = 0.2) {
        guard runner != nil else { return }
        if runnerIsGone { stop() }
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: interval)
                if runnerIsGone { stop() }
            }
        }
        thread.start()
    }

    private static func stop() -> Never {
        let message = "Error: the runner that started this stage (pid \(runner ?? 0)) is gone; stopping without publishing. "
            + "Run the pipeline again to compute it.\n"
        FileHandle.standardError.write(Data(message.utf8))
        _exit(1)
    }
}
