// `streamline bench pipeline`: planning cost of a 1,000-member sweep, and the wall time of a no-op
// `streamline run` over a fully cached 50-stage pipeline, process start included (issue 4's targets:
// both under 1 s).

import ArgumentParser
import Foundation
import Pipeline
import Stages

extension BenchCommand {
    struct PipelineRuns: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pipeline",
            abstract: "Plan a 1,000-member sweep in process; time a no-op run of a cached 50-stage pipeline.")

        @Option(help: "Sweep members to plan.")
        var members: Int = 1000

        @Option(help: "Stages in the cached chain.")
        var stages: Int = 50

        func run() throws {
            let planned = try PipelineBenchmarks.planSweep(members: members, registry: StageCatalog.registry)
            print("plan \(members)-member sweep: \(planned.nodes) nodes in \(planned.seconds.formatted(3)) s  (target < 1 s)")

            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-bench-\(getpid())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            var yaml = "stages:\n  s0: {kind: debug/constant}\n"
            for i in 1..<stages {
                yaml += "  s\(i): {kind: debug/scale, inputs: {x: \"${stages.s\(i - 1).out}\"}, params: {factor: 1.5}}\n"
            }
            let spec = dir.appendingPathComponent("chain.yaml")
            try yaml.write(to: spec, atomically: true, encoding: .utf8)

            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let cold = try Measure.seconds { try runQuietly(executable, spec: spec) }
            let warm = try Measure.median(minRuns: 3, minSeconds: 0) { try runQuietly(executable, spec: spec) }
            print("run \(stages)-stage chain: cold \(cold.formatted(2)) s, fully cached \(warm.formatted(3)) s wall incl. process start  (target < 1 s)")
        }

        private func runQuietly(_ executable: URL, spec: URL) throws {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["run", "--spec", spec.path, "--quiet"]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw ValidationError("bench pipeline: `streamline run` exited with \(process.terminationStatus)")
            }
        }
    }
}
