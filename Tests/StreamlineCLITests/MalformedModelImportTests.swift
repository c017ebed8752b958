// Issue 11, item 6: every malformed model file of MalformedModelCorpus is refused by `streamline
// import` with exit status 1 and its expected message: no signal (no division by zero, no trap, no
// precondition) and no allocation sized from an unchecked header, because the process runs under an
// address-space cap far below what any such allocation asks for (the valid files import under it).

import Foundation
import StageTestSupport
import Testing

@Suite struct MalformedModelImportTests {
    /// Virtual memory cap in KiB (`ulimit -v`): the debug binary with OpenBLAS's buffers fits, the
    /// terabytes a 200k × 200k tensor or a 2^40-token vocabulary would ask for do not.
    static let capKiB = 3 * 1024 * 1024

    /// Runs `streamline import SOURCE --out OUT` under the cap.
    static func importCapped(_ source: URL, in folder: URL) throws -> CommandResult {
        let binary = try streamlineBinary()
        return try runProcess("/bin/sh", ["-c", "ulimit -v \(capKiB) && exec \"$0\" import \"$1\" --out \"$2\"",
                                          binary.path, source.path, folder.appendingPathComponent("out.h5").path])
    }

    @Test func theValidFilesImportUnderTheCap() throws {
        for make in [MalformedModelCorpus.hf(), MalformedModelCorpus.gguf()] {
            let folder = try temporaryProject([:])
            defer { try? FileManager.default.removeItem(at: folder) }
            let result = try Self.importCapped(try make(folder), in: folder)
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    @Test(arguments: MalformedModelCorpus.all)
    func aMalformedFileIsRefusedWithItsMessage(_ model: MalformedModel) throws {
        let folder = try temporaryProject([:])
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try Self.importCapped(try model.make(folder), in: folder)
        #expect(result.status == 1, "\(model.name): status \(result.status) (a signal shows as 128 + its number)\n\(result.stderr)")
        #expect(result.stderr.hasPrefix("Error: ") && result.stderr.contains(model.expected),
                "\(model.name): expected '\(model.expected)' in\n\(result.stderr)")
    }
}

/// Runs `executable ARGS` and waits; a signal shows as status 128 + its number.
func runProcess(_ executable: String, _ arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return CommandResult(status: status, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
}
