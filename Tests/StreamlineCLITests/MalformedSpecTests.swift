// The malformed specs in Tests/PipelineTests/Fixtures/bad: each names its expected location and a
// phrase of the message in its first line (`# expect: LINE:COLUMN phrase`). Each must fail with
// exactly that location, in-process and through `streamline validate` and `run` (exit ≠ 0, no crash,
// nothing written to the cache). The .txt files there are what some fixtures include; the binary
// runs each fixture alone in a temporary folder, where such an include fails at the same place.
// Specs too large to commit (100,000 levels, 100,000 keys, past the size limit) are written here.

import Foundation
import StageTestSupport
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

@Test func thereAreAtLeastAHundredMalformedSpecs() {
    #expect(badFixtureNames().count >= 100)
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

/// Generated hostile specs through the binary: each ends with exit status 1 and a located error
/// (a crash would be a signal), in seconds; 100,000 keys load.
@Test func hostileSpecsTooLargeToCommitFailThroughTheBinary() throws {
    let stage = "stages:\n  a: {kind: debug/constant}\n"
    let specs: [(name: String, text: String, location: String?)] = [
        ("lists.yaml", "x-a: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n" + stage, "lists.yaml:1:"),
        ("maps.yaml", "x-a: " + String(repeating: "{a: ", count: 100_000) + String(repeating: "}", count: 100_000) + "\n" + stage, "maps.yaml:1:"),
        ("dashes.yaml", "x-a:\n" + String(repeating: "- ", count: 100_000) + "1\n" + stage, "dashes.yaml:2:"),
        ("chain.yaml", "x-a:\n- &a0 [1]\n" + (1..<100_000).map { "- &a\($0) [*a\($0 - 1)]\n" }.joined() + stage, "chain.yaml:"),
        ("big.yaml", String(repeating: "# " + String(repeating: "x", count: 98) + "\n", count: 50_000) + stage, "big.yaml:41528:"),
        ("keys.yaml", "params:\n" + (0..<100_000).map { "  k\($0): \($0)\n" }.joined() + stage, nil),
    ]
    let dir = try temporaryProject([:])
    defer { try? FileManager.default.removeItem(at: dir) }
    for spec in specs {
        try spec.text.write(to: dir.appendingPathComponent(spec.name), atomically: true, encoding: .utf8)
        let start = Date()
        let result = try streamline(["validate", "--spec", spec.name], in: dir)
        #expect(Date().timeIntervalSince(start) < 60, "\(spec.name)")
        if let location = spec.location {
            #expect(result.status == 1, "\(spec.name): status \(result.status), \(result.stderr.prefix(300))")
            #expect(result.stderr.contains(location), "\(spec.name): \(result.stderr.prefix(300))")
        } else {
            #expect(result.status == 0, "\(spec.name): \(result.stderr.prefix(300))")
        }
    }
}
