// SlurmClient against a real private cluster (two slurmd nodes, started by scripts/slurm-local.sh):
// afterok chains, failure propagation, cancelling, placement on both nodes, dependency checks. Then
// the rendering of sbatch commands, which needs no cluster.

import Foundation
@testable import Pipeline
import Testing

extension LocalSlurmClusterSuites {
    @Suite(.timeLimit(.minutes(1)))
    struct SlurmClusterTests {
        let cluster: LocalSlurmCluster
        let work: URL

        init() throws {
            cluster = try LocalSlurmCluster.required()
            work = try cluster.freshFolder("work")
        }

        func job(_ name: String, _ command: String, after: [SlurmJobID] = [],
                 resources: SlurmResources = SlurmResources(cpus: 1)) -> SlurmSubmission {
            SlurmSubmission(name: name, payload: .command(command), resources: resources, dependencies: after,
                            output: work.appendingPathComponent("\(name).log").path, workingDirectory: work.path)
        }

        @Test func chainOfThreeRunsInOrder() async throws {
            // Each job sleeps before appending: a dependant that started early would append first.
            let a = try cluster.client.submit(job("a", "sleep 0.5; echo a >> order.txt"))
            let b = try cluster.client.submit(job("b", "sleep 0.2; echo b >> order.txt", after: [a]))
            let c = try cluster.client.submit(job("c", "echo c >> order.txt", after: [b]))
            let states = try await cluster.waitUntilFinal([a, b, c])
            #expect(states == [a: .completed, b: .completed, c: .completed])
            let order = try String(contentsOf: work.appendingPathComponent("order.txt"), encoding: .utf8)
            #expect(order == "a\nb\nc\n")
        }

        @Test func failedParentCancelsItsDependants() async throws {
            let parent = try cluster.client.submit(job("parent", "exit 3"))
            let child = try cluster.client.submit(job("child", "echo ran > child.txt", after: [parent]))
            let grandchild = try cluster.client.submit(job("grandchild", "echo ran > grandchild.txt", after: [child]))
            let states = try await cluster.waitUntilFinal([parent, child, grandchild])
            #expect(states[parent] == .failed(reason: "NonZeroExitCode"))
            #expect(states[child] == .cancelled(reason: "DependencyNeverSatisfied"))
            #expect(states[grandchild] == .cancelled(reason: "DependencyNeverSatisfied"))
            #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("child.txt").path))
            #expect(throws: SlurmError.failedDependency(job: parent, state: .failed(reason: "NonZeroExitCode"))) {
                try cluster.client.checkDependencies([parent])
            }
        }

        @Test func dependencyChecksAcceptCompletedAndRejectUnknownJobs() async throws {
            let done = try cluster.client.submit(job("done", "true"))
            let running = try cluster.client.submit(job("running", "sleep 30"))
            _ = try await cluster.waitUntil([done, running]) { $0[done] == .completed && $0[running] == .running }
            try cluster.client.checkDependencies([done, running])
            // Slurm numbers jobs from 1 in this fresh cluster; this id was never handed out.
            let unknown = SlurmJobID("987654")
            #expect(throws: SlurmError.unknownDependency(job: unknown)) {
                try cluster.client.checkDependencies([done, unknown])
            }
            #expect(try cluster.client.states(of: [unknown]).isEmpty)
            try cluster.client.cancel([running])
        }

        @Test func cancelLeavesNothingRunning() async throws {
            // Each job records the PID of its shell, so the test can see the processes themselves end.
            let first = try cluster.client.submit(job("sleep1", "echo $$ > sleep1.pid; sleep 60"))
            let second = try cluster.client.submit(job("sleep2", "echo $$ > sleep2.pid; sleep 60"))
            let waiting = try cluster.client.submit(job("waiting", "true", after: [first, second]))
            // Cancel whatever happens below, so a failed check leaves no job holding a node's CPUs for
            // the tests after it.
            var cancelled = false
            defer { if !cancelled { try? cluster.client.cancel([first, second, waiting]) } }
            let started = try await cluster.waitUntil([first, second]) { $0[first] == .running && $0[second] == .running }
            #expect(started[first] == .running && started[second] == .running)
            // Slurm reports RUNNING as soon as the job is launched, a moment before its shell has written
            // the PID file: wait for the files (seconds at most) rather than race them.
            let pidFiles = ["sleep1.pid", "sleep2.pid"].map { work.appendingPathComponent($0) }
            let written = Date().addingTimeInterval(15)
            func readPID(_ url: URL) -> Int32? {
                (try? String(contentsOf: url, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            while pidFiles.contains(where: { readPID($0) == nil }), Date() < written { try await Task.sleep(for: .milliseconds(50)) }
            let pids = try pidFiles.map { try #require(readPID($0), "job never wrote \($0.lastPathComponent)") }
            try cluster.client.cancel([first, second, waiting])
            cancelled = true
            let states = try await cluster.waitUntilFinal([first, second, waiting])
            for id in [first, second, waiting] {
                guard case .cancelled = try #require(states[id]) else {
                    Issue.record("job \(id) is \(String(describing: states[id])), expected cancelled")
                    continue
                }
            }
            // With proctrack/linuxproc the job's processes get SIGTERM, then SIGKILL after KillWait (2 s).
            let deadline = Date().addingTimeInterval(5)
            while pids.contains(where: { kill($0, 0) == 0 }), Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
            for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) of a cancelled job is still alive") }
        }

        @Test func jobsRunOnBothNodes() async throws {
            // Each node has 4 CPUs: two 4-CPU jobs at once cannot share a node.
            let whole = SlurmResources(cpus: 4)
            // Each job waits (up to 20 s) until the other has started, so they overlap however slowly
            // the second is submitted; a job that ran alone could land on the first node again.
            func meet(_ me: String, _ other: String) -> String {
                "echo $SLURMD_NODENAME > \(me).node; for i in $(seq 200); do [ -f \(other).node ] && break; sleep 0.1; done"
            }
            let x = try cluster.client.submit(job("x", meet("x", "y"), resources: whole))
            let y = try cluster.client.submit(job("y", meet("y", "x"), resources: whole))
            let states = try await cluster.waitUntilFinal([x, y])
            #expect(states == [x: .completed, y: .completed])
            let nodes = try ["x.node", "y.node"].map {
                try String(contentsOf: work.appendingPathComponent($0), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(Set(nodes) == ["n1", "n2"])
            let info = try cluster.client.jobs([x, y])
            #expect(Set([info[x]?.nodes, info[y]?.nodes]) == Set(["n1", "n2"]))
        }

        @Test func environmentAndLogPathsReachTheJob() async throws {
            var submission = job("env", "echo \"$STREAMLINE_TEST_VALUE\"; echo oops >&2")
            submission.environment = ["STREAMLINE_TEST_VALUE": "it's here"]
            submission.error = work.appendingPathComponent("env.err").path
            let id = try cluster.client.submit(submission)
            #expect(try await cluster.waitUntilFinal([id]) == [id: .completed])
            #expect(try String(contentsOf: work.appendingPathComponent("env.log"), encoding: .utf8) == "it's here\n")
            #expect(try String(contentsOf: work.appendingPathComponent("env.err"), encoding: .utf8) == "oops\n")
        }

        @Test func impossibleRequestIsRejectedWithSlurmsMessage() throws {
            // Memory, not CPUs: sbatch queues a job asking for too many CPUs, but refuses impossible memory.
            let tooBig = job("big", "true", resources: SlurmResources(memory: "100000G"))
            do {
                let id = try cluster.client.submit(tooBig)
                try cluster.client.cancel([id])
                Issue.record("sbatch accepted 100000G of memory")
            } catch let error {
                guard case let .commandFailed(command, status, stderr) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(command.hasPrefix("sbatch --parsable --job-name=big"))
                #expect(status != 0)
                #expect(stderr.contains("Batch job submission failed"))
            }
        }
    }
}

@Suite struct SlurmRenderingTests {
    let client = SlurmClient(configFile: "/shared/slurm.conf", environment: ["PATH": "/usr/bin"])

    @Test func sbatchLineShowsEveryOptionQuoted() throws {
        let submission = SlurmSubmission(
            name: "streamline:prune[ratio=0.5]",
            payload: .command("streamline stage 'prune[ratio=0.5]' --cache /shared/cache"),
            resources: SlurmResources(cpus: 4, memory: "8G", time: "01:30:00", partition: "short", account: "proj1",
                                      gres: "gpu:1", extraArguments: ["--qos=high"]),
            dependencies: ["41", "42"], output: "/shared/cache/logs/ab.log", workingDirectory: "/shared/work",
            environment: ["STREAMLINE_THREADS": "4"])
        let line = try client.sbatchLine(submission)
        #expect(line == """
            SLURM_CONF=/shared/slurm.conf STREAMLINE_THREADS=4 sbatch --parsable '--job-name=streamline:prune[ratio=0.5]' \
            --chdir=/shared/work --output=/shared/cache/logs/ab.log --partition=short --account=proj1 --cpus-per-task=4 \
            --mem=8G --time=01:30:00 --gres=gpu:1 --qos=high --kill-on-invalid-dep=yes --dependency=afterok:41:42 \
            '--wrap=streamline stage '\\''prune[ratio=0.5]'\\'' --cache /shared/cache'
            """)
    }

    @Test func sbatchArgumentsAreWhatSubmitPasses() throws {
        let submission = SlurmSubmission(name: "a", payload: .script(path: "/tmp/job.sh"))
        #expect(try client.sbatchArguments(for: submission)
            == ["--parsable", "--job-name=a", "--kill-on-invalid-dep=yes", "/tmp/job.sh"])
    }

    @Test func sbatchLinesChainJobsThroughShellVariables() throws {
        let jobs: [(variable: String, submission: SlurmSubmission)] = [
            ("train", SlurmSubmission(name: "train", payload: .command("streamline stage train"))),
            ("prune", SlurmSubmission(name: "prune", payload: .command("streamline stage prune"),
                                      dependencies: [.shellVariable("train")])),
            ("eval", SlurmSubmission(name: "eval", payload: .command("streamline stage eval"),
                                     dependencies: [.shellVariable("train"), .shellVariable("prune")])),
        ]
        let script = try SlurmClient(environment: [:]).sbatchLines(jobs)
        #expect(script == """
            train=$(sbatch --parsable --job-name=train --kill-on-invalid-dep=yes '--wrap=streamline stage train')
            prune=$(sbatch --parsable --job-name=prune --kill-on-invalid-dep=yes "--dependency=afterok:${train}" '--wrap=streamline stage prune')
            eval=$(sbatch --parsable --job-name=eval --kill-on-invalid-dep=yes "--dependency=afterok:${train}:${prune}" '--wrap=streamline stage eval')
            """)
    }

    @Test func renderedScriptRunsUnderTheShell() throws {
        // The rendered lines run under /bin/sh with sbatch defined as a function that logs its
        // arguments and prints a made-up id (a function, not a file: no executable to write first).
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fake-sbatch-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let jobs: [(variable: String, submission: SlurmSubmission)] = [
            ("a", SlurmSubmission(name: "it's", payload: .command("echo \"$HOME\" 'x'"))),
            ("b", SlurmSubmission(name: "b", payload: .command("true"), dependencies: [.shellVariable("a"), "7"])),
        ]
        let fake = "sbatch() { for a in \"$@\"; do printf '[%s]' \"$a\" >> \"$LOG\"; done; echo >> \"$LOG\"; echo 5; }\n"
        let result = try SlurmClient.spawn("/bin/sh", ["-c", fake + SlurmClient(environment: [:]).sbatchLines(jobs)],
                                           environment: ["LOG": log.path, "PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(lines.first == "[--parsable][--job-name=it's][--kill-on-invalid-dep=yes][--wrap=echo \"$HOME\" 'x']")
        #expect(lines.last == "[--parsable][--job-name=b][--kill-on-invalid-dep=yes][--dependency=afterok:5:7][--wrap=true]")
    }

    @Test func invalidSubmissionsAreRejectedBeforeSbatchRuns() {
        let good = SlurmSubmission(name: "a", payload: .command("true"))
        var emptyName = good
        emptyName.name = ""
        var badVariable = good
        badVariable.environment = ["1X": "y"]
        var badDependency = good
        badDependency.dependencies = ["12;rm"]
        var badMemory = good
        badMemory.resources.memory = "lots"
        #expect(throws: SlurmError.invalidSubmission(field: "name", value: "", expected: "a non-empty single line")) {
            try client.sbatchLine(emptyName)
        }
        #expect(throws: SlurmError.self) { try client.sbatchLine(badVariable) }
        #expect(throws: SlurmError.self) { try client.sbatchLine(badDependency) }
        #expect(throws: SlurmError.self) { try client.sbatchLine(badMemory) }
        var standIn = good
        standIn.dependencies = [.shellVariable("x")]
        #expect(throws: SlurmError.self) { try client.submit(standIn) }
        #expect(throws: SlurmError.self) {
            try client.sbatchLines([("b", standIn)])  // x is not assigned by an earlier line
        }
    }

    @Test func missingToolsSayHowToInstallThem() {
        let client = SlurmClient(environment: ["PATH": "/nonexistent"])
        #expect(throws: SlurmError.toolNotFound(tool: "sbatch", searched: ["/nonexistent"])) {
            try client.submit(SlurmSubmission(name: "a", payload: .command("true")))
        }
        let text = SlurmError.toolNotFound(tool: "sbatch", searched: ["/nonexistent"]).description
        #expect(text.hasSuffix("install slurm-wlm (or load your cluster's Slurm module), or run scripts/slurm-local.sh install"))
    }
}
