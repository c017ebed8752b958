// The pipeline commands end to end through the built binary: golden plan and explain output, help
// text, concurrent runners, killed runners, failures with --keep-going, and a stage run by hand in a
// second cache after importing its inputs.

import Foundation
import StageTestSupport
import Testing

/// Replaces every 12-hex-digit fingerprint or digest prefix with `<fp>` (they depend on store bytes).
func maskDigests(_ text: String) -> String {
    text.replacingOccurrences(of: #"\b[0-9a-f]{12}\b"#, with: "<fp>", options: .regularExpression)
}

/// A chain with a sweep; `out` reads one field (`factor`) that the golden tests edit.
let goldenSpec = """
    params: {ratio: 0.5}
    stages:
      base:
        kind: debug/constant
        params: {rows: 3, cols: 2}
      reg:
        kind: debug/scale
        inputs: {x: "${stages.base.out}"}
        params: {factor: "${ratio}"}
        sweep: {grid: {ratio: [0.25, 0.5]}}
      out:
        kind: debug/scale
        inputs: {x: "${stages.reg.out}"}
        params: {factor: 2}

    """

@Test func planIsGoldenBeforeAnyRun() throws {
    let dir = try temporaryProject(["pipeline.yaml": goldenSpec])
    let result = try streamline(["plan"], in: dir)
    #expect(result.status == 0)
    // Before any run, fingerprints depend only on kinds, params and seeds: they are literal here.
    #expect(result.stdout == """
        5 nodes: 0 cached, 5 to run
          run     base             9891eb5c06c5  never run
          run     reg[ratio=0.25]  3adea012086f  waits for base
          run     reg[ratio=0.5]   6c9aa99f00fd  waits for base
          run     out[ratio=0.25]  88987582745c  waits for reg[ratio=0.25]
          run     out[ratio=0.5]   8413e7040b96  waits for reg[ratio=0.5]

        """)
}

@Test func planAndExplainAreGoldenAfterAOneFieldEdit() throws {
    let dir = try temporaryProject(["pipeline.yaml": goldenSpec])
    #expect(try streamline(["run", "--quiet"], in: dir).status == 0)
    try goldenSpec.replacingOccurrences(of: "factor: 2}", with: "factor: 3}")
        .write(to: dir.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
    let plan = try streamline(["plan"], in: dir)
    #expect(maskDigests(plan.stdout) == """
        5 nodes: 3 cached, 2 to run
          cached  base             <fp>  cached
          cached  reg[ratio=0.25]  <fp>  cached
          cached  reg[ratio=0.5]   <fp>  cached
          run     out[ratio=0.25]  <fp>  changed: params.factor
          run     out[ratio=0.5]   <fp>  changed: params.factor

        """)
    let explain = try streamline(["explain", "out[ratio=0.25]"], in: dir)
    #expect(maskDigests(explain.stdout) == """
        out[ratio=0.25]  (kind debug/scale v1, fingerprint <fp>)
        will run: differs from cached out[ratio=0.25] (<fp>) in 1 field:
          params.factor: 2.0 -> 3.0

        """)
    let cachedExplain = try streamline(["explain", "base"], in: dir)
    #expect(cachedExplain.stdout.contains("cached: computed"))
}

@Test func planFormatsDescribeTheSameGraph() throws {
    let dir = try temporaryProject(["pipeline.yaml": goldenSpec])
    let dot = try streamline(["plan", "--format", "dot"], in: dir).stdout
    #expect(dot.hasPrefix("digraph pipeline {"))
    #expect(dot.contains("  \"reg[ratio=0.5]\" -> \"out[ratio=0.5]\" [label=\"x\"];"))
    let mermaid = try streamline(["plan", "--format", "mermaid"], in: dir).stdout
    #expect(mermaid.contains("  n0 -->|\"x\"| n1"))
    let json = try streamline(["plan", "--format", "json", "out[ratio=0.5]"], in: dir).stdout
    let rows = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
    #expect(rows.map { $0["id"] as? String } == ["base", "reg[ratio=0.5]", "out[ratio=0.5]"])
    #expect(rows.allSatisfy { $0["cached"] as? Bool == false })
}

@Test func runATargetRunsOnlyWhatItNeedsAndOverridesApply() throws {
    let spec = goldenSpec.replacingOccurrences(of: "    sweep: {grid: {ratio: [0.25, 0.5]}}\n", with: "")
    let dir = try temporaryProject(["pipeline.yaml": spec])
    let first = try streamline(["run", "--json", "reg"], in: dir)
    #expect(finishedCounts(first.stdout).computed == ["base", "reg"])
    let overridden = try streamline(["run", "--json", "-p", "ratio=0.75"], in: dir)
    #expect(finishedCounts(overridden.stdout).computed == ["reg", "out"])
    #expect(finishedCounts(overridden.stdout).cached == ["base"])
    let bad = try streamline(["run", "-p", "ratoi=1"], in: dir)
    #expect(bad.status == 1 && bad.stderr.contains("Did you mean 'ratio'?"))
}

@Test func planHelpIsVerbatim() throws {
    let result = try streamline(["plan", "--help"], in: repositoryRoot)
    #expect(result.stdout == """
        OVERVIEW: Show the stage DAG: every node, whether it is cached, and why it
        would run.

        USAGE: streamline plan [--spec <spec>] [--cache <cache>] [-p <name=value> ...] [--format <format>] [--executor <executor>] [<targets> ...]

        ARGUMENTS:
          <targets>               Only these stages or sweep members (ids or stage
                                  names), with what they need.

        OPTIONS:
          -s, --spec <spec>       The pipeline spec (YAML). (default: pipeline.yaml)
          --cache <cache>         The cache folder (default: $STREAMLINE_CACHE, else
                                  .streamline-cache beside the spec).
          -p <name=value>         Override a top-level parameter, e.g. -p ratio=0.3
                                  (repeatable).
          --format <format>       Output format: text, json, dot (Graphviz) or mermaid.
                                  (values: text, json, dot, mermaid; default: text)
          --executor <executor>   slurm: print the sbatch commands 'run --executor
                                  slurm' would submit, as a shell script. (values:
                                  local, slurm)
          --version               Show the version.
          -h, --help              Show help information.


        """)
}

/// Counts `finished` events with computed = true/false in a `run --json` transcript.
func finishedCounts(_ jsonLines: String) -> (computed: [String], cached: [String]) {
    var computed: [String] = [], cached: [String] = []
    for line in jsonLines.split(separator: "\n") {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let id = object["id"] as? String else { continue }
        if object["event"] as? String == "finished" {
            if object["computed"] as? Bool == true { computed.append(id) } else { cached.append(id) }
        } else if object["event"] as? String == "cached" {
            cached.append(id)
        }
    }
    return (computed, cached)
}

@Test func twoRunnersOnOneCacheComputeEveryStageOnce() throws {
    let spec = """
        stages:
          slow:
            kind: debug/sleep
            params: {seconds: 0.6, steps: 3, value: "${v}"}
            sweep: {grid: {v: [1, 2, 3]}}
          other: {kind: debug/sleep, params: {seconds: 0.3, steps: 1, value: 9}}

        """
    let dir = try temporaryProject(["pipeline.yaml": spec])
    let first = try startStreamline(["run", "--json", "--jobs", "2"], in: dir)
    let second = try startStreamline(["run", "--json", "--jobs", "2"], in: dir)
    let out1 = String(decoding: first.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let out2 = String(decoding: second.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    first.process.waitUntilExit()
    second.process.waitUntilExit()
    #expect(first.process.terminationStatus == 0 && second.process.terminationStatus == 0)
    let a = finishedCounts(out1), b = finishedCounts(out2)
    // Each of the four nodes is computed by exactly one runner; the other sees it cached.
    #expect((a.computed + b.computed).sorted() == ["other", "slow[v=1]", "slow[v=2]", "slow[v=3]"])
    #expect(a.computed.count + a.cached.count == 4 && b.computed.count + b.cached.count == 4)
    let list = try streamline(["cache", "ls"], in: dir)
    #expect(list.stdout.split(separator: "\n").count == 4)
}

@Test func aRunnerKilledMidStageResumesAndTheCacheVerifies() throws {
    let spec = """
        stages:
          a: {kind: debug/sleep, params: {seconds: 2, steps: 4, value: 1}}
          b: {kind: debug/sleep, params: {seconds: 2, steps: 4, value: 2}}
          c: {kind: debug/constant}
          d:
            kind: debug/sum
            inputs: {a: "${stages.c.out}", b: "${stages.c.out}"}

        """
    let dir = try temporaryProject(["pipeline.yaml": spec])
    // Three crashes at moments read from the runner's own events, each inside a running stage (a
    // progress event comes from the stage process, which then sleeps 0.5 s per step): its first step,
    // its second, and the first step of a stage started after another finished.
    for moments in [[#""step":1"#], [#""step":2"#], [#""event":"finished""#, #""step":1"#]] {
        let running = try startStreamline(["run", "--json"], in: dir)
        var seen = ""
        func reached() -> Bool {
            var rest = Substring(seen)
            for moment in moments {
                guard let found = rest.range(of: moment) else { return false }
                rest = rest[found.upperBound...]
            }
            return true
        }
        while !reached() {
            let chunk = running.stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        let moment = moments.joined(separator: " then ")
        // SIGKILL the runner and the stage process it started: both die mid-stage, as in a crash.
        let runner = running.process.processIdentifier
        let children = childProcesses(of: runner)
        #expect(!children.isEmpty, "no stage process running at \(moment): \(seen)")
        kill(runner, SIGKILL)
        for child in children { kill(child, SIGKILL) }
        running.process.waitUntilExit()
    }
    let rerun = try streamline(["run", "--json"], in: dir)
    #expect(rerun.status == 0, "\(rerun.stdout) \(rerun.stderr)")
    let verify = try streamline(["cache", "verify"], in: dir)
    #expect(verify.status == 0)
    #expect(verify.stdout.hasSuffix("4 entries, 0 damaged\n"))
    let again = try streamline(["run", "--json"], in: dir)
    #expect(finishedCounts(again.stdout).cached.sorted() == ["a", "b", "c", "d"])
    // Abandoned scratch folders are visible to gc and removed by it.
    _ = try streamline(["cache", "gc"], in: dir)
    let scratch = dir.appendingPathComponent(".streamline-cache/scratch")
    #expect(((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []).isEmpty)
}

/// Starts `run` on a 30 s sleep stage and waits (up to 10 s on a loaded machine) until its stage
/// process runs; returns the runner and that process.
func startSleepingRun(in dir: URL) throws -> (runner: RunningCommand, stage: Int32?) {
    let running = try startStreamline(["run"], in: dir)
    var children: [Int32] = []
    for _ in 0..<200 where children.isEmpty {
        usleep(50_000)
        children = childProcesses(of: running.process.processIdentifier)
    }
    usleep(300_000)
    return (running, children.first)
}

@Test(arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
func ctrlCAndSIGTERMStopTheStageReleaseItsLockAndExitAsTheShellExpects(_ signal: Int32, _ status: Int32) throws {
    let dir = try temporaryProject(["pipeline.yaml": "stages:\n  a: {kind: debug/sleep, params: {seconds: 30, steps: 300}}\n"])
    let (running, stage) = try startSleepingRun(in: dir)
    let child = try #require(stage, "the stage process never started")
    kill(running.process.processIdentifier, signal)
    let out = String(decoding: running.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let err = String(decoding: running.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    running.process.waitUntilExit()
    #expect(running.process.terminationReason == .exit && running.process.terminationStatus == status)
    #expect(err.contains("Interrupted."))
    #expect(out.contains("skipped  a (interrupted)") && !out.contains("FAILED"), "\(out)")
    usleep(100_000)
    #expect(kill(child, 0) != 0, "stage process \(child) still alive")
    // Not cached, not running (its lock is free): the attempt is recorded as failed.
    #expect(try streamline(["status"], in: dir).stdout == "a  failed\n")
}

@Test func aStageWhoseRunnerIsKilledStopsAndNeverPublishes() throws {
    let dir = try temporaryProject(["pipeline.yaml": "stages:\n  a: {kind: debug/sleep, params: {seconds: 2, steps: 20}}\n"])
    let (running, stage) = try startSleepingRun(in: dir)
    let child = try #require(stage, "the stage process never started")
    // Only the runner dies (as by the OOM killer): its stage process is not told.
    kill(running.process.processIdentifier, SIGKILL)
    running.process.waitUntilExit()
    var alive = true
    for _ in 0..<40 where alive {
        usleep(50_000)
        alive = kill(child, 0) == 0 && !isZombie(child)
    }
    #expect(!alive, "stage process \(child) outlived its runner")
    // Past the moment the stage would have finished: nothing was published.
    sleep(3)
    #expect(try streamline(["cache", "ls"], in: dir).stdout.isEmpty)
}

/// Whether `pid` has exited but not been reaped (its parent is gone and init has not waited yet).
func isZombie(_ pid: Int32) -> Bool {
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
}

@Test func aFailedStageShowsItsOwnErrorLineNotTheLibraryNoiseAroundIt() throws {
    // 40 diagnostics before the error and more at exit, as HDF5 prints on a failed write.
    let dir = try temporaryProject(["pipeline.yaml": "stages:\n  bad: {kind: debug/fail, params: {message: boom, noise: 40}}\n"])
    let result = try streamline(["run"], in: dir)
    #expect(result.status == 1)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    let failed = try #require(lines.firstIndex { $0.hasPrefix("FAILED") }, "\(result.stdout)")
    #expect(lines[failed].hasPrefix("FAILED   bad: Stage 'bad' failed: boom. This is a debug/test stage kind; remove it from real pipelines. Its log: "))
    #expect(!lines[failed].contains("HDF5"))
    let log = try #require(lines[failed + 1].split(separator: " ").last.map(String.init), "no log line")
    #expect(lines[failed + 1].hasPrefix("         log: "))
    // The log holds everything the stage printed, the diagnostics included.
    let text = try String(contentsOfFile: log, encoding: .utf8)
    #expect(text.contains("about to fail") && text.contains("H5FD__sec2_write") && text.contains("Error: Stage 'bad' failed: boom"))
}

@Test func aSkippedStageNamesTheFailedStageItDependsOnOrSaysTheRunStopped() throws {
    let spec = """
        stages:
          bad: {kind: debug/fail}
          child: {kind: debug/scale, inputs: {x: "${stages.bad.out}"}}
          grandchild: {kind: debug/scale, inputs: {x: "${stages.child.out}"}}
          other: {kind: debug/constant}
          later: {kind: debug/scale, inputs: {x: "${stages.other.out}"}}

        """
    let dir = try temporaryProject(["pipeline.yaml": spec])
    let result = try streamline(["run"], in: dir)
    #expect(result.status == 1)
    #expect(result.stdout.contains("skipped  child (needs bad, which failed)"), "\(result.stdout)")
    #expect(result.stdout.contains("skipped  grandchild (needs bad, which failed)"))
    #expect(result.stdout.contains("skipped  later (not started: the run stopped after bad failed; --keep-going runs it)"))
    let json = try streamline(["run", "--json"], in: dir)
    let skipped = json.stdout.split(separator: "\n").compactMap { line in
        try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }.filter { $0["event"] as? String == "skipped" }
    #expect(skipped.first { $0["id"] as? String == "grandchild" }?["because"] as? String == "bad")
    let later = skipped.first { $0["id"] as? String == "later" }
    #expect(later?["stopped_after"] as? String == "bad" && later?["because"] == nil)
}

@Test func keepGoingRunsWhatDoesNotDependOnAFailureAndKeepsItsLog() throws {
    let spec = """
        stages:
          bad: {kind: debug/fail, params: {message: "boom"}}
          after: {kind: debug/scale, inputs: {x: "${stages.bad.out}"}}
          fine: {kind: debug/constant}

        """
    let dir = try temporaryProject(["pipeline.yaml": spec])
    let result = try streamline(["run", "--keep-going"], in: dir)
    #expect(result.status == 1)
    #expect(result.stdout.contains("FAILED   bad: "))
    #expect(result.stdout.contains("skipped  after (needs bad, which failed)"))
    #expect(result.stdout.contains("done     fine"))
    let logs = try streamline(["logs", "bad"], in: dir)
    #expect(logs.stdout.contains("about to fail"))
    #expect(logs.stdout.contains("boom"))
    let status = try streamline(["status"], in: dir)
    #expect(status.stdout == "bad    failed\nafter  not run\nfine   cached\n")
}

@Test func aStageRunByHandInASecondCacheMatchesANormalRun() throws {
    let dir = try temporaryProject(["pipeline.yaml": sweepSpec])
    #expect(try streamline(["run", "--quiet"], in: dir).status == 0)
    let target = "total[ratio=0.25]"
    let normal = try streamline(["stage", target, "--json"], in: dir)
    let bundle = dir.appendingPathComponent("inputs.bundle").path
    #expect(try streamline(["cache", "export", "-o", bundle, "base", "reg[ratio=0.25]"], in: dir).status == 0)
    // A second cache elsewhere, as on another machine: import the inputs, run the one stage by hand.
    let other = dir.appendingPathComponent("elsewhere/cache").path
    let missing = try streamline(["stage", target, "--cache", other], in: dir)
    #expect(missing.status == 1)
    #expect(missing.stderr.contains("needs input 'a' from 'reg[ratio=0.25]'"))
    #expect(try streamline(["cache", "import", bundle, "--cache", other], in: dir).status == 0)
    let byHand = try streamline(["stage", target, "--cache", other, "--json"], in: dir)
    #expect(byHand.status == 0, "\(byHand.stderr)")
    func done(_ text: String) throws -> [String: Any] {
        let line = text.split(separator: "\n").last.map(String.init) ?? ""
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
    }
    let n = try done(normal.stdout), h = try done(byHand.stdout)
    #expect(n["computed"] as? Bool == false && h["computed"] as? Bool == true)
    #expect(n["fingerprint"] as? String == h["fingerprint"] as? String)
    #expect(n["outputs"] as? [String: String] == h["outputs"] as? [String: String])
}

/// The direct children of `pid` (from /proc, every thread's list).
func childProcesses(of pid: Int32) -> [Int32] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.flatMap { task -> [Int32] in
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0) }
    }
}
