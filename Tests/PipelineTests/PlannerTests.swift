// The planner: order, sweeps (grid, zip, include, exclude), member ids, merged nodes, interpolation.

import Foundation
import Pipeline
import Testing

@Test func documentedDAGPlansInTheDocumentedOrder() throws {
    let plan = try Planner.plan(parse(documentedDAG), registry: testRegistry)
    #expect(plan.nodes.map(\.id) == ["data", "reg[ratio=0.25]", "reg[ratio=0.5]", "prune[ratio=0.25]",
                                     "prune[ratio=0.5]", "eval[ratio=0.25]", "eval[ratio=0.5]"])
    let prune = plan.node("prune[ratio=0.5]")!
    #expect(prune.inputs.map(\.upstream) == ["reg[ratio=0.5]", "data"])
    #expect(plan.node("reg[ratio=0.5]")!.params["factor"] == .double(0.5))
    #expect(try plan.closure(of: ["eval[ratio=0.25]"]).map(\.id) == ["data", "reg[ratio=0.25]", "prune[ratio=0.25]", "eval[ratio=0.25]"])
    #expect(try plan.closure(of: ["reg"]).count == 3)
    #expect(throws: PipelineError.self) { try plan.closure(of: ["evl"]) }
    // Several targets: the union of what each needs, in plan order; one unknown name fails them all.
    #expect(try plan.closure(of: ["eval[ratio=0.25]", "prune[ratio=0.5]"]).map(\.id)
        == ["data", "reg[ratio=0.25]", "reg[ratio=0.5]", "prune[ratio=0.25]", "prune[ratio=0.5]", "eval[ratio=0.25]"])
    #expect(throws: PipelineError.self) { try plan.closure(of: ["eval[ratio=0.25]", "evl"]) }
}

@Test func gridZipIncludeAndExcludeExpandAsWritten() throws {
    func ids(_ sweep: String) throws -> [String] {
        try Planner.plan(parse("""
            stages:
              s: {kind: t/const, params: {value: "${v}", label: "${l}"}, sweep: \(sweep)}
            """), registry: testRegistry).nodes.map(\.id)
    }
    #expect(try ids("{grid: {v: [1, 2], l: [a, b]}}") == ["s[v=1,l=a]", "s[v=1,l=b]", "s[v=2,l=a]", "s[v=2,l=b]"])
    #expect(try ids("{zip: {v: [1, 2], l: [a, b]}}") == ["s[v=1,l=a]", "s[v=2,l=b]"])
    #expect(try ids("{grid: {v: [1, 2], l: [a, b]}, exclude: [{l: b}]}") == ["s[v=1,l=a]", "s[v=2,l=a]"])
    #expect(try ids("{zip: {v: [1], l: [a]}, include: [{v: 3, l: b}]}") == ["s[v=1,l=a]", "s[v=3,l=b]"])
}

@Test func membersWithEqualFingerprintsAreOneNode() throws {
    // `label` is swept but `value` is what differs; a sweep variable the stage does not read merges.
    let plan = try Planner.plan(parse("""
        stages:
          s: {kind: t/const, params: {value: 3}, sweep: {grid: {unused: [1, 2, 3]}}}
          t: {kind: t/scale, inputs: {x: "${stages.s.out}"}, params: {factor: 2}}
        """), registry: testRegistry)
    #expect(plan.nodes.map(\.id) == ["s[unused=1]", "t[unused=1]"])
    #expect(plan.nodes[0].aliases == ["s[unused=2]", "s[unused=3]"])
    #expect(plan.node("t[unused=3]")?.id == "t[unused=1]")
}

@Test func interpolationKeepsTypesAndOverridesApply() throws {
    let yaml = """
        params: {ratio: 0.25, tag: b}
        stages:
          s: {kind: t/const, params: {value: "${params.ratio}", label: "${tag}"}}
        """
    let node = try Planner.plan(parse(yaml, overrides: ["ratio=0.5", "tag=a"]), registry: testRegistry).nodes[0]
    #expect(node.params == ["value": .double(0.5), "label": .string("a")])
    #expect(throws: PipelineError.self) { try parse(yaml, overrides: ["ratoi=1"]) }
    #expect(throws: PipelineError.self) { try parse(yaml, overrides: ["ratio"]) }
}

@Test func includeMergesFragmentsAndTheIncludingFileWins() throws {
    let dir = try temporaryDirectory()
    try "params: {v: 1, w: 5}\nstages:\n  a: {kind: t/const, params: {value: \"${w}\"}}\n"
        .write(to: dir.appendingPathComponent("shared.yaml"), atomically: true, encoding: .utf8)
    let spec = try Spec.parse(yaml: "include: [shared.yaml]\nparams: {v: 2}\nstages:\n  b: {kind: t/const, params: {value: \"${v}\"}}\n",
                              file: "main.yaml", baseDirectory: dir, registry: testRegistry)
    let plan = try Planner.plan(spec, registry: testRegistry)
    #expect(plan.nodes.map(\.id) == ["a", "b"])
    #expect(plan.node("a")!.params["value"] == .double(5))
    #expect(plan.node("b")!.params["value"] == .double(2))
}

@Test func aGatherInputReadsEveryMemberAndIsNotSwept() throws {
    let yaml = documentedDAG + """

          report:
            kind: t/total
            inputs: {xs: "${stages.eval.out}"}
        """
    let plan = try Planner.plan(parse(yaml), registry: testRegistry)
    let report = plan.node("report")!
    #expect(plan.nodes.last?.id == "report")
    #expect(report.inputs.map(\.name) == ["xs[eval[ratio=0.25]]", "xs[eval[ratio=0.5]]"])
    #expect(report.inputs.map(\.upstream) == ["eval[ratio=0.25]", "eval[ratio=0.5]"])
    let cache = Cache(root: try temporaryDirectory())
    try runAll(try parse(yaml), cache: cache)
    let done = try Planner.plan(parse(yaml), registry: testRegistry) { cache.record($0)?.outputs }.node("report")!
    // (2·0.25 + 2)·10 + (2·0.5 + 2)·10
    #expect(try readScalarStore(cache.outputURL(done.fingerprint, "out")) == 55)
}
