// How run output looks: redrawn in place with colour on a terminal, plain lines when piped or asked.
// Only the choice lives here (a pure function of the mode, isatty and the environment); drawing is
// ProgressBoard's and RunDisplay's.

import ArgumentParser
import Foundation

/// `--progress`: auto picks live on a terminal and plain otherwise.
enum ProgressMode: String, ExpressibleByArgument, CaseIterable, Sendable {
    case auto, tty, plain
}

/// The resolved look of one run's output.
struct TerminalStyle: Equatable, Sendable {
    /// Redraw one line per running stage in place (ANSI cursor movement) instead of appending lines.
    var live: Bool
    /// Green done, red failed, dim cached.
    var colour: Bool
    /// Columns a live line may use; longer lines are cut so a redraw never wraps.
    var width: Int

    static let plain = TerminalStyle(live: false, colour: false, width: 80)

    /// Colour only with a live display and never when NO_COLOR is set to anything non-empty (no-color.org).
    static func choose(mode: ProgressMode, isTTY: Bool, environment: [String: String], width: Int?) -> TerminalStyle {
        let live = mode == .tty || (mode == .auto && isTTY)
        let noColor = !(environment["NO_COLOR"] ?? "").isEmpty
        // TERM=dumb terminals cannot move the cursor, so auto stays plain there.
        let dumb = environment["TERM"] == "dumb" && mode == .auto
        return TerminalStyle(live: live && !dumb, colour: live && !dumb && !noColor, width: max(20, width ?? 80))
    }

    /// The style for standard output, which is where RunDisplay writes.
    static func forStandardOutput(mode: ProgressMode) -> TerminalStyle {
        choose(mode: mode, isTTY: isatty(STDOUT_FILENO) == 1, environment: ProcessInfo.processInfo.environment,
               width: terminalColumns(STDOUT_FILENO))
    }

    /// TIOCGWINSZ's column count, or nil when `descriptor` is not a terminal.
    static func terminalColumns(_ descriptor: Int32) -> Int? {
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }
}
