// Every spec shipped in Pipelines/ validates and plans with the built binary (after `make fetch`, as
// `make test` runs it), so a stage-kind change that breaks an example fails here, not for a user.
// wikitext2.yaml runs on the committed WikiText-2 test split by default; pointed at the train split,
// which no machine here has, it must fail with the located error that names the missing file.

import Foundation
import Testing

@Suite struct ShippedPipelinesTests {
    static let specs = ["dress-sweep.yaml", "dress-tiny.yaml", "example-sweep.yaml", "quality.yaml", "quickstart.yaml", "ratio-sweep.yaml", "smollm2-25.yaml", "smollm2-50.yaml", "wikitext2.yaml"]

    @Test func everyShippedSpecIsListedHere() throws {
        let shipped = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Pipelines").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(shipped == Self.specs.sorted())
    }

    @Test(arguments: specs)
    func validatesAndPlans(spec: String) throws {
        let path = "Pipelines/\(spec)"
        let validate = try streamline(["validate", "-s", path], in: repositoryRoot)
        #expect(validate.status == 0, "\(spec): \(validate.stdout)\(validate.stderr)")
        let plan = try streamline(["plan", "-s", path, "--cache", FileManager.default.temporaryDirectory.appendingPathComponent("shipped-\(UUID().uuidString)").path],
                                  in: repositoryRoot)
        #expect(plan.status == 0 && plan.stdout.contains("run "), "\(spec): \(plan.stdout)\(plan.stderr)")
    }

    @Test func wikitext2NamesTheMissingTrainSplit() throws {
        let result = try streamline(["validate", "-s", "Pipelines/wikitext2.yaml", "-p", "wikitext_train=../data/wikitext-2-raw/wiki.train.raw"],
                                    in: repositoryRoot)
        #expect(result.status != 0)
        #expect((result.stdout + result.stderr).contains("wikitext2.yaml:") && (result.stdout + result.stderr).contains("wiki.train.raw"))
    }
}
