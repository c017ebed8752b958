// `streamline run --executor slurm` end to end on the private two-node cluster: the debug binary
// submits real jobs that run `streamline stage` against a cache in a temporary project. Shown here:
// a tiny DReSS sweep gives the same fingerprints and output digests as a local run, and a re-run
// submits only what is missing (detached, then followed by `status --wait`); a failure cancels its
// dependants, named by the runner (and without --keep-going, the jobs that have not started);
// `cancel` and Ctrl-C cancel exactly the run's jobs and leave no stage process; a cancelled
// fine-tune continues from its resume point in the next run; a local and a Slurm runner on one cache
// compute each stage once.

import Foundation
@testable import Pipeline
import Testing

/// The tiny pipeline: debug/tiny-lm → regularize → prune → finetune → evaluate, swept over 3 ratios
/// (13 nodes; about a second locally in a debug build).
let tinySweepSpec = """
    stages:
      tiny:
        kind: debug/tiny-lm
        params: {hidden: 16, layers: 1, heads: 2, kv_heads: 1, ffn: 32, sentences: 60, train_steps: 4}
      regularize:
        kind: regularize
        inputs: {model: "${stages.tiny.model}", data: "${stages.tiny.data}"}
        params: {ratio: "${ratio}", selection: last, lambda: 1.0, steps: 3, batch_size: 2, seq_len: 16, warmup: 0, samples: 20}
        sweep: {grid: {ratio: [0.25, 0.5, 0.75]}}
      prune:
        kind: prune
        inputs: {model: "${stages.regularize.model}", channels: "${stages.regularize.channels}"}
      finetune:
        kind: finetune
        inputs: {model: "${stages.prune.model}", data: "${stages.tiny.data}"}
        params: {lora_rank: 2, lora_alpha: 4, steps: 2, batch_size: 2, seq_len: 16, warmup: 0, samples: 10, sample_offset: 20}
      evaluate:
        kind: evaluate
        inputs: {model: "${stages.finetune.model}", data: "${stages.tiny.heldout}"}
        params: {window: 16}

    """

extension LocalSlurmClusterSuites {
    @Suite(.timeLimit(.minutes(3)))
    struct SlurmRunTests {
        let cluster: LocalSlurmCluster
        let project: URL

        init() throws {
            cluster = try LocalSlurmCluster.required()
            project = try cluster.freshFolder("project")
        }

        // MARK: Helpers

        /// Writes the project's pipeline.yaml.
        func writeSpec(_ yaml: String) throws {
            try yaml.write(to: project.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        }

        /// Runs the debug streamline binary in the project with the cluster's SLURM_CONF; waits for it.
        /// With `pidFile`, its PID is written there first (for signalling it).
        func streamline(_ arguments: [String], pidFile: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
            let binary = LocalSlurmCluster.repository.appendingPathComponent(".build/debug/streamline").path
            try #require(FileManager.default.isExecutableFile(atPath: binary),
                         "streamline binary missing at \(binary): run `swift build --product streamline` first")
            var environment = ProcessInfo.processInfo.environment
            environment["SLURM_CONF"] = cluster.client.configFile
            environment["STREAMLINE_CACHE"] = nil
            // Why a shell: `cd` into the project, where pipeline.yaml is the default spec.
            let line = "cd \(SlurmClient.shellQuoted(project.path)) && "
                + (pidFile.map { "echo $$ > \(SlurmClient.shellQuoted($0)) && " } ?? "") + "exec \(binary) "
                + arguments.map(SlurmClient.shellQuoted).joined(separator: " ")
            return try SlurmClient.spawn("/bin/sh", ["-c", line], environment: environment)
        }

        /// Runs `streamline` on a thread of its own; `wait()` returns its result.
        func start(_ arguments: [String], pidFile: String? = nil) -> Background {
            Background { try self.streamline(arguments, pidFile: pidFile) }
        }

        /// The latest run record of the project's spec in `cache`.
        func latestRun(_ cache: String) throws -> SlurmRunRecord {
            try SlurmRunRecord.load(in: project.appendingPathComponent(cache), run: nil,
                                    spec: project.appendingPathComponent("pipeline.yaml"))
        }

        /// The JSON-lines events of a `--json` transcript.
        func events(_ transcript: String) -> [[String: Any]] {
            transcript.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        /// Ids of the events named `event` (and, for "finished", with `computed`).
        func ids(_ transcript: String, _ event: String, computed: Bool? = nil) -> [String] {
            events(transcript).filter {
                $0["event"] as? String == event && (computed == nil || $0["computed"] as? Bool == computed)
            }.compactMap { $0["id"] as? String }
        }

        /// node id → "fingerprint output=digest …" for every entry of the cache `name`.
        func entries(_ name: String) -> [String: String] {
            Dictionary(uniqueKeysWithValues: Cache(root: project.appendingPathComponent(name)).allRecords().map { record in
                (record.id, ([record.fingerprint] + record.outputs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
                    .joined(separator: " "))
            })
        }

        /// PIDs of processes whose command line mentions `text` (stage processes of one cache).
        func processes(mentioning text: String) -> [Int32] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.compactMap(Int32.init).filter { pid in
                guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
                let words = String(decoding: data, as: UTF8.self).split(separator: "\0")
                return words.first?.hasSuffix("streamline") == true && words.contains { $0.contains(text) }
            }
        }

        /// Polls `condition` every 0.1 s for up to `seconds`; returns whether it came true.
        func eventually(seconds: Double = 30, _ condition: () throws -> Bool) rethrows -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try condition() { return true }
                usleep(100_000)
            }
            return try condition()
        }

        // MARK: Tests

        @Test func aSlurmRunMatchesALocalRunAndAReRunSubmitsOnlyWhatIsMissing() throws {
            try writeSpec(tinySweepSpec)
            let local = try streamline(["run", "--cache", "local", "--jobs", "2", "--quiet"])
            #expect(local.status == 0, "\(local.stderr)")

            // Part of the DAG first: everything up to finetune.
            let partial = try streamline(["run", "--executor", "slurm", "--cache", "slurm", "--json", "finetune"])
            #expect(partial.status == 0, "\(partial.stderr)")
            let ratios = ["0.25", "0.5", "0.75"]
            let upToFinetune = ["tiny"] + ["regularize", "prune", "finetune"].flatMap { stage in ratios.map { "\(stage)[ratio=\($0)]" } }
            #expect(try latestRun("slurm").jobs.map(\.id) == upToFinetune)
            #expect(ids(partial.stdout, "finished", computed: true).sorted() == upToFinetune.sorted())
            // Progress comes from the jobs' output files, as a local run reads it from the child's stdout.
            #expect(ids(partial.stdout, "progress").contains("regularize[ratio=0.5]"))
            #expect(ids(partial.stdout, "scheduled").contains("finetune[ratio=0.75]"))

            // The rest, detached: only the three evaluations go out; status --wait follows them.
            let detached = try streamline(["run", "--executor", "slurm", "--cache", "slurm", "--detach"])
            #expect(detached.status == 0, "\(detached.stderr)")
            let rest = try latestRun("slurm")
            let evaluations = ratios.map { "evaluate[ratio=\($0)]" }
            #expect(rest.jobs.map(\.id) == evaluations)
            #expect(rest.cached == upToFinetune)
            #expect(rest.jobs.allSatisfy { $0.after.isEmpty }, "cached inputs give no dependency")
            #expect(detached.stdout.contains("submitted 3 jobs as run \(rest.run)"))
            let followed = try streamline(["status", "--cache", "slurm", "--wait", "--json"])
            #expect(followed.status == 0, "\(followed.stderr)")
            #expect(ids(followed.stdout, "finished", computed: true).sorted() == evaluations)

            let slurmEntries = entries("slurm")
            #expect(slurmEntries.count == 13)
            #expect(slurmEntries == entries("local"))
            let plan = try streamline(["plan", "--executor", "slurm", "--cache", "slurm"])
            #expect(plan.stdout == "# nothing to submit: every stage is cached\n")
        }

        @Test func aFailedStageCancelsItsDependantsAndTheRunnerNamesThem() throws {
            try writeSpec("""
                stages:
                  ok: {kind: debug/constant, params: {rows: 1, cols: 1}}
                  broken: {kind: debug/fail, params: {message: "broken on purpose"}}
                  child: {kind: debug/scale, inputs: {x: "${stages.broken.out}"}}
                  grandchild: {kind: debug/sum, inputs: {a: "${stages.child.out}", b: "${stages.ok.out}"}}
                  independent: {kind: debug/sleep, params: {seconds: 1, steps: 2}}

                """)
            let result = try streamline(["run", "--executor", "slurm", "--keep-going", "--json"])
            #expect(result.status != 0)
            let failure = try #require(events(result.stdout).first { $0["event"] as? String == "failed" })
            #expect(failure["id"] as? String == "broken")
            let detail = failure["detail"] as? String ?? ""
            #expect(detail.contains("failed (NonZeroExitCode)") && detail.contains("broken on purpose"), "\(detail)")
            let log = try #require(failure["log"] as? String)
            #expect(try String(contentsOfFile: log, encoding: .utf8).contains("broken on purpose"))
            let skipped = events(result.stdout).filter { $0["event"] as? String == "skipped" }
            #expect(skipped.compactMap { $0["id"] as? String }.sorted() == ["child", "grandchild"])
            #expect(skipped.allSatisfy { $0["because"] as? String == "broken" })
            #expect(ids(result.stdout, "finished").sorted() == ["independent", "ok"])
            // Slurm itself cancelled the dependants (--kill-on-invalid-dep=yes), not the runner.
            let run = try latestRun(".streamline-cache")
            let job = Dictionary(uniqueKeysWithValues: run.jobs.map { ($0.id, $0.job) })
            let states = try cluster.client.states(of: run.jobs.map(\.job))
            #expect(states[job["child"]!] == .cancelled(reason: "DependencyNeverSatisfied"))
            #expect(states[job["grandchild"]!] == .cancelled(reason: "DependencyNeverSatisfied"))
            #expect(run.jobs.first { $0.id == "grandchild" }?.after == ["child", "ok"])
        }

        @Test func withoutKeepGoingAFailureCancelsWhatHasNotStartedAndLetsRunningStagesFinish() throws {
            try writeSpec("""
                stages:
                  broken: {kind: debug/fail}
                  slow: {kind: debug/sleep, params: {seconds: 4, steps: 2}}
                  later: {kind: debug/scale, inputs: {x: "${stages.slow.out}"}}

                """)
            let result = try streamline(["run", "--executor", "slurm", "--json"])
            #expect(result.status != 0)
            #expect(ids(result.stdout, "failed") == ["broken"])
            #expect(ids(result.stdout, "finished", computed: true) == ["slow"])
            let skipped = try #require(events(result.stdout).first { $0["event"] as? String == "skipped" })
            // `later` waits for `slow`, not `broken`: it was stopped, not blocked by a failure upstream.
            #expect(skipped["id"] as? String == "later" && skipped["stopped_after"] as? String == "broken" && skipped["because"] == nil)
            // The runner cancelled it while it waited for `slow`: Slurm kept the pending reason.
            let run = try latestRun(".streamline-cache")
            let later = try #require(run.jobs.first { $0.id == "later" })
            #expect(try cluster.client.states(of: [later.job])[later.job] == .cancelled(reason: "Dependency"))
        }

        @Test func cancelAndCtrlCCancelExactlyTheRunsJobsAndLeaveNoStageRunning() throws {
            try writeSpec("""
                stages:
                  nap: {kind: debug/sleep, params: {seconds: 60, steps: 60}}
                  after: {kind: debug/scale, inputs: {x: "${stages.nap.out}"}}

                """)
            let foreign = try cluster.client.submit(SlurmSubmission(name: "foreign", payload: .command("sleep 120"),
                                                                    output: "/dev/null"))
            defer { try? cluster.client.cancel([foreign]) }
            let cache = project.appendingPathComponent(".streamline-cache").path

            // Detached, then `streamline cancel`.
            #expect(try streamline(["run", "--executor", "slurm", "--detach"]).status == 0)
            let detached = try latestRun(".streamline-cache")
            #expect(eventually { !processes(mentioning: cache).isEmpty }, "the nap stage never started")
            let status = try streamline(["status"])
            #expect(status.stdout.contains("nap    slurm job \(detached.jobs[0].job) running on n"), "\(status.stdout)")
            #expect(status.stdout.contains("after  slurm job \(detached.jobs[1].job) pending (Dependency)"), "\(status.stdout)")
            let cancelled = try streamline(["cancel"])
            #expect(cancelled.stdout.contains("cancelled 2 of the 2 jobs of run \(detached.run)"), "\(cancelled.stdout)")
            #expect(try eventually { try cluster.client.states(of: detached.jobs.map(\.job)).values.allSatisfy(\.isFinal) },
                    "a job of the cancelled run is still pending or running")
            #expect(eventually { processes(mentioning: cache).isEmpty }, "a stage process outlived its cancelled job")

            // Attached, then Ctrl-C: the runner cancels its jobs and says it was interrupted.
            let pidFile = project.appendingPathComponent("runner.pid").path
            let runner = start(["run", "--executor", "slurm", "--json"], pidFile: pidFile)
            #expect(eventually {
                (try? latestRun(".streamline-cache").run) != detached.run && !processes(mentioning: cache).isEmpty
            }, "the attached run's nap stage never started")
            let attached = try latestRun(".streamline-cache")
            let pid = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            kill(pid, SIGINT)
            let interrupted = try runner.wait()
            #expect(interrupted.status != 0 && interrupted.stderr.contains("Interrupted."), "\(interrupted.stderr)")
            #expect(ids(interrupted.stdout, "skipped").sorted() == ["after", "nap"])
            #expect(events(interrupted.stdout).filter { $0["event"] as? String == "skipped" }.allSatisfy { $0["because"] as? String == "interrupt" })
            let states = try cluster.client.states(of: attached.jobs.map(\.job))
            #expect(attached.jobs.allSatisfy { states[$0.job]?.isFinal == true }, "\(states)")
            #expect(eventually { processes(mentioning: cache).isEmpty }, "a stage process outlived its cancelled job")
            // Neither cancel touched a job it did not submit.
            #expect(try cluster.client.states(of: [foreign])[foreign] == .running)
        }

        /// scancel sends the job SIGTERM (the job's shell `exec`s the stage): the fine-tune writes its
        /// resume point and the next run's job continues from it; the same holds for a time limit.
        @Test func aCancelledFineTuneJobContinuesInTheNextRun() throws {
            try writeSpec("""
                stages:
                  tiny:
                    kind: debug/tiny-lm
                    params: {hidden: 16, layers: 1, heads: 2, kv_heads: 1, ffn: 32, sentences: 60, train_steps: 4}
                  finetune:
                    kind: finetune
                    inputs: {model: "${stages.tiny.model}", data: "${stages.tiny.data}"}
                    params: {lora_rank: 0, steps: 400, batch_size: 2, seq_len: 16, warmup: 0}

                """)
            #expect(try streamline(["run", "--executor", "slurm", "--detach"]).status == 0)
            let run = try latestRun(".streamline-cache")
            let logs = project.appendingPathComponent(".streamline-cache/logs")
            func finetuneLog() -> String {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: logs.path)) ?? []
                return names.lazy.compactMap { try? String(contentsOf: logs.appendingPathComponent($0), encoding: .utf8) }
                    .first { $0.contains("kind finetune") } ?? ""
            }
            #expect(eventually(seconds: 90) { finetuneLog().contains("step 20/400") }, "the fine-tune never reached step 20")
            #expect(try streamline(["cancel"]).status == 0)
            #expect(try eventually { try cluster.client.states(of: run.jobs.map(\.job)).values.allSatisfy(\.isFinal) })
            #expect(eventually { finetuneLog().contains("stopped by SIGTERM after step") }, "\(finetuneLog().suffix(400))")
            let status = try streamline(["status"])
            #expect(status.stdout.contains("finetune  slurm job \(run.jobs[1].job) cancelled on n") && status.stdout.contains("; stopped after step"),
                    "\(status.stdout)")

            let rerun = try streamline(["run", "--executor", "slurm", "--json"])
            #expect(rerun.status == 0, "\(rerun.stderr)")
            #expect(ids(rerun.stdout, "finished", computed: true) == ["finetune"])
            #expect(finetuneLog().contains("resuming after step"), "\(finetuneLog().suffix(400))")
            let resume = project.appendingPathComponent(".streamline-cache/resume")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: resume.path)) ?? []).isEmpty)
        }

        @Test func aLocalAndASlurmRunnerTogetherComputeEachStageOnce() throws {
            try writeSpec("""
                stages:
                  slow:
                    kind: debug/sleep
                    params: {seconds: 0.8, steps: 2, value: "${v}"}
                    sweep: {grid: {v: [1, 2, 3, 4]}}

                """)
            let slurm = start(["run", "--executor", "slurm", "--json"])
            let local = try streamline(["run", "--json"])
            let remote = try slurm.wait()
            #expect(local.status == 0 && remote.status == 0, "\(local.stderr)\n\(remote.stderr)")
            let all = ["slow[v=1]", "slow[v=2]", "slow[v=3]", "slow[v=4]"]
            let computedLocally = ids(local.stdout, "finished", computed: true)
            let computedOnSlurm = ids(remote.stdout, "finished", computed: true)
            // Each stage is computed by exactly one runner; the other finds it cached.
            #expect((computedLocally + computedOnSlurm).sorted() == all, "local \(computedLocally), Slurm \(computedOnSlurm)")
            #expect((ids(local.stdout, "finished") + ids(local.stdout, "cached")).sorted() == all)
            #expect((ids(remote.stdout, "finished") + ids(remote.stdout, "cached")).sorted() == all)
            #expect(entries(".streamline-cache").count == 4)
        }
    }
}

/// A blocking call run on a thread of its own (not the test's), so two can run at once.
final class Background: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<(status: Int32, stdout: String, stderr: String), any Error>?

    init(_ work: @escaping @Sendable () throws -> (status: Int32, stdout: String, stderr: String)) {
        Thread { [self] in
            result = Result { try work() }
            done.signal()
        }.start()
    }

    /// Waits for the call and returns its result.
    func wait() throws -> (status: Int32, stdout: String, stderr: String) {
        done.wait()
        return try result!.get()
    }
}
