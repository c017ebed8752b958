// The malformed specs in Tests/PipelineTests/Fixtures/bad: each names its expected location and a
// phrase of the message in its first line (`# expect: LINE:COLUMN phrase`). Each must fail with
// exactly that location, in-process and through `streamline validate` and `run` (exit ≠ 0, no crash,
// nothing written to the cache).

import Foundation
import Pipeline
import Stages
import Testing

let badFixtures = repositoryRoot.appendingPathComponent("Tests/PipelineTests/Fixtures/bad")

func badFixtureNames() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: badFixtures.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
}

/// (location, phrase) from a fixture's first line.
func expectation(_ name: String) throws -> (String, String) {
    let data = try Data(contentsOf: badFixtures.appendingPathComponent(name))
    let first = String(decoding: data.prefix { $0 != 10 }, as: UTF8.self)
    let parts = first.dropFirst("# expect: ".count).split(separator: " ", maxSplits: 1).map(String.init)
    return (parts[0], parts.count > 1 ? parts[1] : "")
}

@Test func thereAreAtLeastFortyMalformedSpecs() {
    #expect(badFixtureNames().count >= 40)
}

@Test(arguments: badFixtureNames())
func malformedSpecGivesLocatedError(_ name: String) throws {
    let (location, phrase) = try expectation(name)
    do {
        let spec = try Spec.load(url: badFixtures.appendingPathComponent(name), displayName: name,
                                 registry: StageCatalog.registry)
        _ = try Planner.plan(spec, registry: StageCatalog.registry)
        Issue.record("\(name) loaded without error")
    } catch let error as PipelineError {
        let text = error.description
        #expect(text.hasPrefix("\(name):\(location): "), "\(name): \(text)")
        #expect(text.contains(phrase), "\(name): \(text)")
    }
}

@Test func malformedSpecsFailThroughTheBinaryWithoutWritingTheCache() throws {
    let dir = try temporaryProject([:])
    for name in badFixtureNames() {
        let copy = dir.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: badFixtures.appendingPathComponent(name), to: copy)
        let (location, _) = try expectation(name)
        for command in ["validate", "run"] {
            let result = try streamline([command, "--spec", name], in: dir)
            #expect(result.status == 1, "\(name) \(command): status \(result.status)")
            #expect(result.stderr.contains("\(name):\(location):"), "\(name) \(command): \(result.stderr)")
        }
    }
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(".streamline-cache").path))
}
