// The spec's `executor:` and `slurm:` keys: what they load into, and a located error for each kind
// of mistake (bad value, unknown key, kind or stage).

import Foundation
@testable import Pipeline
import Testing

struct SlurmSettingsLoaderTests {
    let stages = """
        stages:
          base: {kind: t/const}
          scaled: {kind: t/scale, inputs: {x: "${stages.base.out}"}}

        """

    @Test func loadsExecutorResourcesOverridesPrologueAndExecutable() throws {
        let spec = try parse("""
            executor: slurm
            slurm:
              resources: {cpus: 2, memory: 4G, time: 90, partition: short, account: proj1}
              kinds: {t/scale: {gres: "gpu:1", time: "02:00:00"}}
              stages: {base: {memory: 500, extra_args: ["--qos=high"]}}
              prologue: ["module load hdf5", "source /opt/env.sh"]
              executable: /shared/bin/streamline
            """ + "\n" + stages)
        #expect(spec.executor == .slurm)
        #expect(spec.slurm == SlurmSettings(
            defaults: SlurmResources(cpus: 2, memory: "4G", time: "90", partition: "short", account: "proj1"),
            byKind: ["t/scale": SlurmResources(time: "02:00:00", gres: "gpu:1")],
            byStage: ["base": SlurmResources(memory: "500", extraArguments: ["--qos=high"])],
            prologue: ["module load hdf5", "source /opt/env.sh"], executable: "/shared/bin/streamline"))
        #expect(spec.slurm.resources(stage: "scaled", kind: "t/scale")
            == SlurmResources(cpus: 2, memory: "4G", time: "02:00:00", partition: "short", account: "proj1", gres: "gpu:1"))
    }

    @Test func withoutSettingsTheExecutorIsUnsetAndSlurmEmpty() throws {
        let spec = try parse(stages)
        #expect(spec.executor == nil)
        #expect(spec.slurm == SlurmSettings())
    }

    /// The error text of loading `settings` above the stages.
    func error(_ settings: String) -> String {
        do {
            _ = try parse(settings + "\n" + stages)
            return "loaded"
        } catch {
            return "\(error)"
        }
    }

    @Test func badValuesAreLocatedWithTheirKeyPath() {
        #expect(error("executor: cloud").hasPrefix("p.yaml:1:11: 'executor' must be local or slurm, found the string 'cloud'"))
        #expect(error("slurm:\n  resources: {memory: 4X}").hasPrefix(
            "p.yaml:2:23: 'slurm.resources.memory' must be a positive whole number with an optional K, M, G or T suffix"))
        #expect(error("slurm:\n  stages: {base: {time: \"10:00\"}}").hasPrefix("p.yaml:2:25: 'slurm.stages.base.time' must be minutes"))
        #expect(error("slurm:\n  resources: {cpus: 0}").contains("'slurm.resources.cpus' must be a whole number of at least 1, found '0'"))
        #expect(error("slurm:\n  resources: {cpus: two}").contains("'slurm.resources.cpus' must be a whole number of CPUs"))
        #expect(error("slurm:\n  resources: {extra_args: [\"--qos=high\", qos]}").hasPrefix(
            "p.yaml:2:42: 'slurm.resources.extra_args[1]' must be an sbatch option starting with '-'"))
        #expect(error("slurm:\n  executable: bin/streamline").contains("'slurm.executable' must be an absolute path"))
    }

    @Test func unknownKeysKindsAndStagesAreLocated() {
        #expect(error("slurm:\n  resource: {cpus: 1}").hasPrefix("p.yaml:2:3: unknown key 'resource' in 'slurm'. Did you mean 'resources'?"))
        #expect(error("slurm:\n  resources: {cpu: 1}").contains("unknown key 'cpu' in 'slurm.resources'. Did you mean 'cpus'?"))
        #expect(error("slurm:\n  kinds: {t/scal: {cpus: 1}}").hasPrefix("p.yaml:2:11: 'slurm.kinds' names unknown stage kind 't/scal'."))
        #expect(error("slurm:\n  stages: {scaled2: {cpus: 1}}").hasPrefix(
            "p.yaml:2:12: 'slurm.stages' refers to unknown stage 'scaled2'. Did you mean 'scaled'?"))
    }
}
