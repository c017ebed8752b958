// A private Slurm cluster for tests: `scripts/slurm-local.sh install` then `start DIR` in a fresh
// temporary folder, once per suite that carries the `.localSlurmCluster` trait, and `stop DIR` after
// the suite even when a test fails. When the cluster cannot start the suite fails with the script's
// message (it is never skipped). Tests reach it through `LocalSlurmCluster.current`.
// Every suite that needs a cluster is nested in `LocalSlurmClusterSuites`, so one cluster serves
// them all.

import Foundation
@testable import Pipeline
import Testing

/// A running private cluster: its folder and a client pointed at it.
struct LocalSlurmCluster: Sendable {
    /// The folder holding slurm.conf, munge, spool, logs and the daemons' PIDs.
    var directory: URL
    var client: SlurmClient

    @TaskLocal static var current: LocalSlurmCluster?

    /// The repository root, found from this file's path (Tests/PipelineTests/Slurm/).
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The repository's scripts/slurm-local.sh.
    static let script = repository.appendingPathComponent("scripts/slurm-local.sh")

    struct ScriptFailed: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var output: String
        var description: String {
            "`\(command)` exited with status \(status):\n\(output)\nThe Slurm tests need Debian's slurm-wlm and munge "
                + "and root (as in CI): run `scripts/slurm-local.sh install` as root, then the tests again."
        }
    }

    /// The cluster of the enclosing `LocalSlurmClusterSuites`; a test outside it fails with this message.
    static func required() throws -> LocalSlurmCluster {
        try #require(current, "the .localSlurmCluster trait did not provide a cluster: nest the suite in LocalSlurmClusterSuites")
    }

    /// A new folder named `prefix-` and 8 random characters inside the cluster's folder: it goes when
    /// the cluster stops, after the cluster's jobs, which may still write into it.
    func freshFolder(_ prefix: String) throws -> URL {
        let folder = directory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Runs the script with `arguments`; returns its output or throws `ScriptFailed`.
    @discardableResult
    static func runScript(_ arguments: [String]) throws -> String {
        let result = try SlurmClient.spawn("/bin/bash", [script.path] + arguments,
                                           environment: ProcessInfo.processInfo.environment)
        guard result.status == 0 else {
            throw ScriptFailed(command: "slurm-local.sh " + arguments.joined(separator: " "),
                               status: result.status, output: result.stdout + result.stderr)
        }
        return result.stdout
    }

    /// Polls until every job in `ids` is final (or `seconds` pass) and returns their last states.
    func waitUntilFinal(_ ids: [SlurmJobID], seconds: Double = 20) async throws -> [SlurmJobID: SlurmJobState] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let states = try client.states(of: ids)
            if ids.allSatisfy({ states[$0]?.isFinal == true }) || Date() > deadline { return states }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Polls until `condition` holds for the states of `ids` (or `seconds` pass).
    func waitUntil(_ ids: [SlurmJobID], seconds: Double = 20,
                   _ condition: ([SlurmJobID: SlurmJobState]) -> Bool) async throws -> [SlurmJobID: SlurmJobState] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let states = try client.states(of: ids)
            if condition(states) || Date() > deadline { return states }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Starts a private cluster around a suite and stops it afterwards.
struct LocalSlurmClusterTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("streamline-slurm-\(UUID().uuidString.prefix(8))")
        try LocalSlurmCluster.runScript(["install"])
        do {
            try LocalSlurmCluster.runScript(["start", directory.path])
        } catch {
            _ = try? LocalSlurmCluster.runScript(["stop", directory.path])
            throw error
        }
        let cluster = LocalSlurmCluster(
            directory: directory,
            client: SlurmClient(configFile: directory.appendingPathComponent("slurm.conf").path))
        do {
            try await LocalSlurmCluster.$current.withValue(cluster) { try await function() }
        } catch {
            _ = try? LocalSlurmCluster.runScript(["stop", directory.path])
            throw error
        }
        try LocalSlurmCluster.runScript(["stop", directory.path])
        try? FileManager.default.removeItem(at: directory)
    }
}

extension Trait where Self == LocalSlurmClusterTrait {
    /// Runs the suite against a private two-node Slurm cluster started by scripts/slurm-local.sh.
    static var localSlurmCluster: Self { Self() }
}

/// The suites that need a cluster are nested in this one (`extension LocalSlurmClusterSuites`), so
/// that one cluster, started once, serves them all; `.serialized` keeps one suite's jobs from
/// competing with another's for the two nodes.
@Suite(.serialized, .localSlurmCluster)
struct LocalSlurmClusterSuites {}
