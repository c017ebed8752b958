// Slurm resources: accepted and rejected memory and time forms, decoding with the key path
// in errors, sbatch options, and the defaults < kind < stage override order.

import Foundation
@testable import Pipeline
import Testing

@Suite struct SlurmResourcesTests {
    @Test func memoryForms() {
        #expect(SlurmResources.megabytes("4G") == 4096)
        #expect(SlurmResources.megabytes("500M") == 500)
        #expect(SlurmResources.megabytes("500") == 500)
        #expect(SlurmResources.megabytes("2048K") == 2)
        #expect(SlurmResources.megabytes("1t") == 1_048_576)
        for bad in ["", "G", "0", "-4G", "4GB", "4.5G", "4 G", "lots", "٤G"] {
            #expect(SlurmResources.megabytes(bad) == nil, "\(bad.debugDescription) accepted")
        }
    }

    @Test func timeForms() {
        #expect(SlurmResources.seconds(ofTimeLimit: "90") == 5_400)
        #expect(SlurmResources.seconds(ofTimeLimit: "01:30:00") == 5_400)
        #expect(SlurmResources.seconds(ofTimeLimit: "100:00:05") == 360_005)
        #expect(SlurmResources.seconds(ofTimeLimit: "2-00:00:00") == 172_800)
        #expect(SlurmResources.seconds(ofTimeLimit: "1-2:03:04") == 93_784)
        for bad in ["", "0", "00:00:00", "10:00", "1:60:00", "1:00:60", "1:5:00", "2-10", "-1", "1-", "a", "1:00:00:00", "90m"] {
            #expect(SlurmResources.seconds(ofTimeLimit: bad) == nil, "\(bad.debugDescription) accepted")
        }
    }

    /// JSON stands in for the spec's YAML: both give integers for `time: 240` and `memory: 500`.
    func decode(_ json: String) throws -> SlurmSettings {
        try JSONDecoder().decode(SlurmSettings.self, from: Data(json.utf8))
    }

    @Test func decodesWithIntegersForTimeAndMemory() throws {
        let settings = try decode("""
            {"resources": {"cpus": 2, "memory": "4G", "time": "01:00:00", "partition": "short"},
             "kinds": {"dress/finetune": {"gres": "gpu:1", "time": 240}},
             "stages": {"prune": {"memory": 500, "extra_args": ["--qos=high"]}}}
            """)
        #expect(settings == SlurmSettings(
            defaults: SlurmResources(cpus: 2, memory: "4G", time: "01:00:00", partition: "short"),
            byKind: ["dress/finetune": SlurmResources(time: "240", gres: "gpu:1")],
            byStage: ["prune": SlurmResources(memory: "500", extraArguments: ["--qos=high"])]))
        let roundTrip = try JSONDecoder().decode(SlurmSettings.self, from: JSONEncoder().encode(settings))
        #expect(roundTrip == settings)
    }

    @Test func invalidValuesNameTheirKeyPath() {
        do {
            _ = try decode(#"{"stages": {"prune": {"memory": "4GB"}}}"#)
            Issue.record("memory 4GB accepted")
        } catch let DecodingError.dataCorrupted(context) {
            #expect(context.debugDescription.hasPrefix("stages.prune.memory: \"4GB\" is not a valid Slurm resource"))
            #expect(context.underlyingError as? SlurmError != nil)
        } catch {
            Issue.record("unexpected error \(error)")
        }
        #expect(throws: SlurmError.invalidResource(keyPath: "cpus", value: "0", expected: "a whole number of at least 1")) {
            try SlurmResources(cpus: 0).validate()
        }
        #expect(throws: SlurmError.self) { try SlurmResources(time: "10:00").validate() }
        #expect(throws: SlurmError.self) { try SlurmResources(partition: "a b").validate() }
        #expect(throws: SlurmError.self) { try SlurmResources(extraArguments: ["qos=high"]).validate() }
    }

    @Test func stageOverridesKindOverridesDefaults() {
        let settings = SlurmSettings(
            defaults: SlurmResources(cpus: 2, memory: "4G", time: "60", extraArguments: ["--qos=normal"]),
            byKind: ["dress/finetune": SlurmResources(cpus: 8, gres: "gpu:1", extraArguments: ["--qos=gpu"])],
            byStage: ["finetune-big": SlurmResources(memory: "32G", extraArguments: ["--exclusive"])])
        #expect(settings.resources(stage: "finetune-big", kind: "dress/finetune") == SlurmResources(
            cpus: 8, memory: "32G", time: "60", gres: "gpu:1", extraArguments: ["--qos=normal", "--qos=gpu", "--exclusive"]))
        #expect(settings.resources(stage: "prune", kind: "dress/prune") == settings.defaults)
    }

    @Test func sbatchArgumentsInFixedOrder() {
        let resources = SlurmResources(cpus: 4, memory: "8G", time: "02:00:00", partition: "gpu", account: "p1",
                                       gres: "gpu:a100:2", extraArguments: ["--qos=high"])
        #expect(resources.sbatchArguments == ["--partition=gpu", "--account=p1", "--cpus-per-task=4", "--mem=8G",
                                              "--time=02:00:00", "--gres=gpu:a100:2", "--qos=high"])
        #expect(SlurmResources().sbatchArguments == [])
    }
}
