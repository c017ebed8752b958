// What SlurmExecutor submits, without a cluster: the script `plan --executor slurm` prints (resources
// by kind, prologue, executable, dependencies only on uncached parents) and file names of job logs.
// The executor against a real cluster is SlurmRunTests.swift.

import Foundation
@testable import Pipeline
import Testing

struct SlurmExecutorTests {
    let yaml = """
        stages:
          base: {kind: t/const, params: {value: 2}}
          scaled:
            kind: t/scale
            inputs: {x: "${stages.base.out}"}
            params: {factor: "${f}"}
            sweep: {grid: {f: [2, 3]}}
          total: {kind: t/add, inputs: {a: "${stages.scaled.out}", b: "${stages.base.out}"}}

        """

    func executor() -> SlurmExecutor {
        SlurmExecutor(client: SlurmClient(configFile: nil, environment: [:]), executable: "/opt/streamline",
                      settings: SlurmSettings(defaults: SlurmResources(cpus: 2), byKind: ["t/add": SlurmResources(time: "10")],
                                              prologue: ["module load hdf5"]))
    }

    @Test func theScriptSubmitsUncachedNodesAfterTheirUncachedParents() throws {
        let plan = try Planner.plan(parse(yaml), registry: testRegistry)
        let options = RunOptions(spec: URL(fileURLWithPath: "/p/pipeline.yaml"), cache: URL(fileURLWithPath: "/c"), overrides: ["x=1"])
        let script = try executor().script(plan.nodes, cached: ["base"], options: options)
        func job(_ id: String, _ name: String, _ extra: String, _ dependency: String) -> String {
            let quotedName = id.contains("[") ? "'--job-name=streamline:\(id)'" : "--job-name=streamline:\(id)"
            let quotedID = id.contains("[") ? "'\\''\(id)'\\''" : id
            return "sbatch --parsable \(quotedName) --output=/c/logs/slurm/\(name).%j.out --error=/c/logs/slurm/\(name).%j.err "
                + "--cpus-per-task=2 \(extra)--kill-on-invalid-dep=yes \(dependency)'--wrap=module load hdf5 && exec /opt/streamline "
                + "stage \(quotedID) --spec /p/pipeline.yaml --cache /c --threads 2 --json -p x=1'"
        }
        #expect(script == """
            mkdir -p /c/logs/slurm
            scaled_1=$(\(job("scaled[f=2]", "scaled_f=2_", "", "")))
            scaled_2=$(\(job("scaled[f=3]", "scaled_f=3_", "", "")))
            total_1=$(\(job("total[f=2]", "total_f=2_", "--time=10 ", "\"--dependency=afterok:${scaled_1}\" ")))
            total_2=$(\(job("total[f=3]", "total_f=3_", "--time=10 ", "\"--dependency=afterok:${scaled_2}\" ")))
            """)
    }

    @Test func aFullyCachedPlanSubmitsNothing() throws {
        let plan = try Planner.plan(parse(yaml), registry: testRegistry)
        let script = try executor().script(plan.nodes, cached: Set(plan.nodes.map(\.id)),
                                           options: RunOptions(spec: URL(fileURLWithPath: "/p.yaml"), cache: URL(fileURLWithPath: "/c")))
        #expect(script == "# nothing to submit: every stage is cached")
    }

    /// `run --checkpoint-minutes` reaches every stage process, local or Slurm; the default adds nothing.
    @Test func aCheckpointIntervalReachesTheStageCommand() throws {
        let spec = URL(fileURLWithPath: "/p.yaml"), cache = URL(fileURLWithPath: "/c")
        let plan = try Planner.plan(parse(yaml), registry: testRegistry)
        let node = try #require(plan.nodes.first)
        let every = RunOptions(spec: spec, cache: cache, checkpointMinutes: 2.5)
        #expect(every.stageArguments(node, threads: 2).suffix(2) == ["--checkpoint-minutes", "2.5"])
        #expect(every.stageArguments(node, nodeFile: URL(fileURLWithPath: "/n.json"), threads: 2).suffix(2) == ["--checkpoint-minutes", "2.5"])
        #expect(try executor().script(plan.nodes, cached: [], options: every).contains("--json --checkpoint-minutes 2.5'"))
        let standard = RunOptions(spec: spec, cache: cache)
        #expect(!standard.stageArguments(node, threads: 2).contains("--checkpoint-minutes"))
        #expect(RunOptions(spec: spec, cache: cache, checkpointMinutes: -1).checkpointMinutes == 0, "a negative interval means never")
    }

    @Test func logFileNamesKeepOnlySafeCharacters() {
        #expect(SlurmExecutor.fileName("prune[ratio=0.25,method=dress]") == "prune_ratio=0.25_method=dress_")
        #expect(SlurmExecutor.fileName("a[x=50%]") == "a_x=50__")
    }
}
