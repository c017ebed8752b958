// Issue 11, item 8: a store write that fails (a full disk, a file-size limit) ends the stage with the
// system's message and exit status 1. It used to end in a segfault: HDF5's exit handler flushed the
// file whose close had just failed.

import Foundation
import StageTestSupport
import Testing

@Suite struct WriteFailureTests {
    /// 120 × 128 floats: the data fits in 64 KiB, the metadata written when the file closes does not.
    static let spec = "stages:\n  big: {kind: debug/constant, params: {rows: 120, cols: 128}}\n"

    /// `streamline ARGS` in `dir` through /bin/sh, after `limits` (shell commands).
    static func run(_ arguments: [String], in dir: URL, limits: String) throws -> CommandResult {
        let binary = try streamlineBinary()
        return try runProcess("/bin/sh", ["-c", "cd \"$1\" && \(limits) && shift && exec \"$0\" \"$@\"", binary.path, dir.path] + arguments)
    }

    static func expectCleanFailure(_ result: CommandResult, saying message: String) {
        #expect(result.status == 1, "status \(result.status) (a signal shows as 128 + its number)\n\(result.stdout)\n\(result.stderr)")
        let failed = result.stdout.split(separator: "\n").first { $0.hasPrefix("FAILED   big: ") } ?? ""
        #expect(failed.contains(message) && !failed.contains("killed by"), "\(result.stdout)")
    }

    @Test func aFileSizeLimitEndsTheStageWithTheSystemsMessageAndStatus1() throws {
        let dir = try temporaryProject(["pipeline.yaml": Self.spec])
        defer { try? FileManager.default.removeItem(at: dir) }
        // 128 blocks of 512 bytes; SIGXFSZ ignored, so the write fails with EFBIG as on a full disk.
        let result = try Self.run(["run"], in: dir, limits: "trap '' XFSZ && ulimit -f 128")
        Self.expectCleanFailure(result, saying: "File too large")
        #expect(try streamline(["cache", "ls"], in: dir).stdout.isEmpty)
        // The stage process itself, as Slurm or a user runs it: status 1, the message, no signal.
        let stage = try Self.run(["stage", "big"], in: dir, limits: "trap '' XFSZ && ulimit -f 128")
        #expect(stage.status == 1 && stage.stderr.contains("File too large"), "status \(stage.status)\n\(stage.stderr)")
    }

    @Test(.enabled(if: TmpfsMount.available, "mounting a tmpfs needs root"))
    func aFullDiskSaysNoSpaceLeftOnDevice() throws {
        let dir = try temporaryProject(["pipeline.yaml": Self.spec])
        let disk = dir.appendingPathComponent("disk")
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        try TmpfsMount.mount(disk, kibibytes: 64)
        defer {
            TmpfsMount.unmount(disk)
            try? FileManager.default.removeItem(at: dir)
        }
        let result = try Self.run(["run", "--cache", disk.appendingPathComponent("cache").path], in: dir, limits: "true")
        Self.expectCleanFailure(result, saying: "No space left on device")
    }
}

/// A small tmpfs for a real full disk; available where this process may mount (root in its namespace).
enum TmpfsMount {
    static func mount(_ folder: URL, kibibytes: Int) throws {
        let result = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=\(kibibytes)k", "tmpfs", folder.path])
        guard result.status == 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSLocalizedDescriptionKey: result.stderr]) }
    }

    static func unmount(_ folder: URL) { _ = try? runProcess("/bin/umount", [folder.path]) }

    static let available: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-tmpfs-probe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)) != nil,
              (try? mount(probe, kibibytes: 16)) != nil else { return false }
        unmount(probe)
        return true
    }()
}
