// `streamline logs ID`: the log of a node's latest attempt (kept even when it failed).

import ArgumentParser
import Foundation
import Pipeline

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the log of a stage's latest attempt (also kept when it failed).")

    @OptionGroup var target: NodeArguments

    func run() throws {
        let (cache, node) = try target.resolve()
        let url = cache.logURL(node.fingerprint)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ValidationError("No log for \(node.id) yet (looked for \(url.path)); it has not been run with these inputs.")
        }
        print(text, terminator: "")
    }
}
