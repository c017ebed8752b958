// Fingerprints: canonical, typed, and only of content — a parameter change moves that stage and
// what is downstream of it, nothing else; file names and folders move nothing.

import Foundation
import Pipeline
import Testing

@Test func canonicalEncodingIgnoresDictionaryOrderButNotTypesOrNames() throws {
    var a: [String: ParamValue] = [:], b: [String: ParamValue] = [:]
    for i in 0..<50 { a["k\(i)"] = .int(i) }
    for i in (0..<50).reversed() { b["k\(i)"] = .int(i) }
    #expect(try fingerprint(of: a) == fingerprint(of: b))
    #expect(try fingerprint(of: ["x": ParamValue.int(1)]) != fingerprint(of: ["x": ParamValue.double(1)]))
    #expect(try fingerprint(of: ["x": ParamValue.int(1)]) != fingerprint(of: ["y": ParamValue.int(1)]))
    #expect(try fingerprint(of: ["x": ParamValue.string("1")]) != fingerprint(of: ["x": ParamValue.int(1)]))
    #expect(try fingerprint(of: [1, 2]) != fingerprint(of: [[1], [2]]))
}

@Test func pathsTimesAndNonFiniteNumbersAreUnhashable() {
    struct WithPath: Encodable { var model = URL(fileURLWithPath: "/tmp/m.h5") }
    struct WithTime: Encodable { var when = Date() }
    #expect(throws: PipelineError.self) { try fingerprint(of: WithPath()) }
    #expect(throws: PipelineError.self) { try fingerprint(of: WithTime()) }
    #expect(throws: PipelineError.self) { try fingerprint(of: [Double.nan]) }
}

func fingerprints(_ yaml: String, file: String = "p.yaml", overrides: [String] = []) throws -> [String: String] {
    let plan = try Planner.plan(parse(yaml, file: file, overrides: overrides), registry: testRegistry)
    return Dictionary(uniqueKeysWithValues: plan.nodes.map { ($0.id, $0.fingerprint) })
}

@Test func aParameterChangeMovesThatStageAndDownstreamOnly() throws {
    let before = try fingerprints(documentedDAG)
    let after = try fingerprints(documentedDAG.replacingOccurrences(of: "[0.25, 0.5]", with: "[0.25, 0.75]"))
    let changed = Set(before.keys.filter { before[$0] != after[$0] })
    #expect(changed == ["reg[ratio=0.5]", "prune[ratio=0.5]", "eval[ratio=0.5]"])
    let leaf = try fingerprints(documentedDAG.replacingOccurrences(of: "factor: 10", with: "factor: 11"))
    #expect(Set(before.keys.filter { before[$0] != leaf[$0] }) == ["eval[ratio=0.25]", "eval[ratio=0.5]"])
    // A default written out explicitly is the same parameter value.
    let explicit = try fingerprints(documentedDAG.replacingOccurrences(of: "{value: 2}", with: "{value: 2, label: a}"))
    #expect(explicit == before)
    // The seed is part of every fingerprint.
    let seeded = try fingerprints("seed: 1\n" + documentedDAG)
    #expect(before.keys.allSatisfy { before[$0] != seeded[$0] })
}

@Test func renamingTheSpecOrMovingCacheAndProjectChangesNothing() throws {
    #expect(try fingerprints(documentedDAG, file: "p.yaml") == fingerprints(documentedDAG, file: "elsewhere/renamed.yaml"))
    // Run in one project folder, copy project and cache elsewhere: same fingerprints, all hits.
    let first = try temporaryDirectory()
    let cache = Cache(root: first.appendingPathComponent("cache"))
    let spec = try parse(documentedDAG)
    try runAll(spec, cache: cache)
    let ran = try Planner.plan(spec, registry: testRegistry) { cache.record($0)?.outputs }
    let second = try temporaryDirectory().appendingPathComponent("moved")
    try FileManager.default.copyItem(at: first, to: second)
    let moved = Cache(root: second.appendingPathComponent("cache"))
    let replanned = try Planner.plan(parse(documentedDAG, file: "moved/other.yaml"), registry: testRegistry) {
        moved.record($0)?.outputs
    }
    #expect(ran.nodes.map(\.fingerprint) == replanned.nodes.map(\.fingerprint))
    #expect(replanned.nodes.allSatisfy { moved.lookup($0.fingerprint) != nil })
    #expect(moved.counts.hits == 7 && moved.counts.misses == 0)
}
