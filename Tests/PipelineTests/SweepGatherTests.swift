// Sweeps with both `grid:` and `zip:`, gather inputs given a list of stages, the labels a gather
// hands its stage (`StageContext.gathered`), and labels entering the fingerprint.

import Foundation
import Pipeline
import Testing
import TensorStore

/// Writes the labels it was given as metadata (`ids`, `stages`, `variables`) and the values' sum:
/// what a report reads, made visible to the test.
struct TestLabels: StageKind {
    let name = "t/labels"
    let version = 1
    let doc = "Labels of every gathered store."
    let params: [ParamDecl] = []
    let inputs = [InputDecl("xs", storeKind: "any", doc: "every member of each listed stage", many: true)]
    let outputs = [OutputDecl("out", storeKind: "test", doc: "Σ xs, with the labels as metadata")]
    func run(_ context: StageContext) throws {
        let xs = context.gathered["xs"]!
        #expect(xs.map(\.url) == context.inputLists["xs"])
        let writer = try TensorStoreWriter(url: context.outputs["out"]!, kind: "test")
        try writer.write("v", [try xs.map { try readScalarStore($0.url) }.reduce(0, +)], shape: [1])
        try writer.setMetadata("ids", xs.map(\.id))
        try writer.setMetadata("stages", xs.map(\.stage))
        try writer.setMetadata("variables", xs.map { $0.variables.map { "\($0.name)=\($0.value)" }.joined(separator: ",") })
        _ = try writer.commit()
    }
}

let labelRegistry = StageRegistry([TestConst(), TestScale(), TestAdd(), TestTotal(), TestLabels()])

func planLabels(_ yaml: String, _ cache: Cache? = nil) throws -> Plan {
    try Planner.plan(Spec.parse(yaml: yaml, file: "p.yaml", registry: labelRegistry), registry: labelRegistry) {
        cache?.record($0)?.outputs
    }
}

/// Runs every node in plan order in this process, re-planning after each (like `runAll`).
func runLabels(_ yaml: String, cache: Cache) throws -> Plan {
    var i = 0
    while true {
        let plan = try planLabels(yaml, cache)
        guard i < plan.nodes.count else { return plan }
        _ = try StageRunner.run(plan.nodes[i], plan: plan, registry: labelRegistry, cache: cache, threads: 1, toolVersion: "test")
        i += 1
    }
}

@Test func gridTimesZipKeepsGridVariablesFirstAndGridMajorOrder() throws {
    func ids(_ sweep: String) throws -> [String] {
        try Planner.plan(parse("""
            stages:
              s: {kind: t/const, params: {value: "${v}", label: "${l}"}, sweep: \(sweep)}
            """), registry: testRegistry).nodes.map(\.id)
    }
    // zip written first: ids still list the grid variable first.
    #expect(try ids("{zip: {l: [a, b], w: [1, 2]}, grid: {v: [1, 2, 3]}}") == [
        "s[v=1,l=a,w=1]", "s[v=1,l=b,w=2]", "s[v=2,l=a,w=1]", "s[v=2,l=b,w=2]", "s[v=3,l=a,w=1]", "s[v=3,l=b,w=2]",
    ])
    #expect(try ids("{grid: {v: [1, 2]}, zip: {l: [a, b], w: [1, 2]}, exclude: [{v: 2, l: b}]}")
        == ["s[v=1,l=a,w=1]", "s[v=1,l=b,w=2]", "s[v=2,l=a,w=1]"])
    #expect(try ids("{grid: {v: [1]}, zip: {l: [a], w: [1]}, include: [{v: 9, l: b, w: 5}]}")
        == ["s[v=1,l=a,w=1]", "s[v=9,l=b,w=5]"])
    // A zip column may repeat a value as long as the rows differ (methods sharing a selection rule).
    #expect(try ids("{zip: {l: [a, a, b], v: [1, 2, 2]}}") == ["s[l=a,v=1]", "s[l=a,v=2]", "s[l=b,v=2]"])
    let plan = try Planner.plan(parse("""
        stages:
          s: {kind: t/const, params: {value: "${v}", label: "${l}"}, sweep: {grid: {v: [1, 2]}, zip: {l: [a, b]}}}
        """), registry: testRegistry)
    #expect(plan.node("s[v=2,l=b]")!.params == ["value": .double(2), "label": .string("b")])
}

@Test func badGridZipCombinationsAreLocated() throws {
    func failure(_ sweep: String) -> String {
        do {
            _ = try parse("stages:\n  s: {kind: t/const, sweep: \(sweep)}\n")
            return "loaded"
        } catch { return "\(error)" }
    }
    #expect(failure("{grid: {v: [1, 2]}, zip: {v: [3, 4]}}").hasPrefix("p.yaml:2:55: 'stages.s.sweep.zip.v': variable 'v' is in both"))
    #expect(failure("{grid: {v: [1]}, zip: {a: [1, 2], b: [1]}}").hasPrefix("p.yaml:2:51: 'stages.s.sweep.zip': zip lists differ in length (a: 2, b: 1)"))
    #expect(failure("{zip: {a: [1, 2, 1], b: [3, 4, 3]}}").contains("zip rows 1 and 3 are equal (1, 3)"))
    #expect(failure("{grid: {v: [1, 1]}}").contains("value 1 appears twice"))
    #expect(failure("{grid: {v: [1]}, zip: {a: [1]}, include: [{v: 2}]}").contains("bind every variable (v, a)"))
}

/// eval sweeps ratio; dense is plain; `report` gathers [dense, eval] in that order.
let listGather = """
    stages:
      data: {kind: t/const, params: {value: 2}}
      dense: {kind: t/scale, inputs: {x: "${stages.data.out}"}, params: {factor: 1}}
      eval:
        kind: t/scale
        inputs: {x: "${stages.data.out}"}
        params: {factor: "${ratio}"}
        sweep: {grid: {ratio: [0.25, 0.5]}}
      report:
        kind: t/labels
        inputs: {xs: ["${stages.dense.out}", "${stages.eval.out}"]}
    """

@Test func aListGatherReadsEveryMemberOfEachStageInListThenPlanOrder() throws {
    let plan = try planLabels(listGather)
    let report = plan.node("report")!
    #expect(report.variables.isEmpty)
    #expect(report.inputs.map(\.name) == ["xs[dense]", "xs[eval[ratio=0.25]]", "xs[eval[ratio=0.5]]"])
    #expect(report.inputs.map(\.upstream) == ["dense", "eval[ratio=0.25]", "eval[ratio=0.5]"])

    let cache = Cache(root: try temporaryDirectory())
    let done = try runLabels(listGather, cache: cache)
    let node = done.node("report")!
    let reader = try TensorStoreReader(url: cache.outputURL(node.fingerprint, "out"))
    // What the stage saw in its context is what inputStores gives (the `streamline stage` path).
    #expect(try reader.metadata("ids", as: [String].self) == ["dense", "eval[ratio=0.25]", "eval[ratio=0.5]"])
    #expect(try reader.metadata("stages", as: [String].self) == ["dense", "eval", "eval"])
    #expect(try reader.metadata("variables", as: [String].self) == ["", "ratio=0.25", "ratio=0.5"])
    #expect(try reader.values("v", as: Float.self).values == [2 + 0.5 + 1])
    let (single, gathered) = try StageRunner.inputStores(of: node, plan: done, registry: labelRegistry, cache: cache)
    #expect(single.isEmpty)
    #expect(gathered["xs"]!.map(\.id) == ["dense", "eval[ratio=0.25]", "eval[ratio=0.5]"])
    #expect(gathered["xs"]![2].variable("ratio") == .double(0.5))
    #expect(gathered["xs"]![1].url == cache.outputURL(done.node("eval[ratio=0.25]")!.fingerprint, "out"))
}

@Test func aGatherOfAStageAndItsDownstreamJoinsNothing() throws {
    // The same stage gathered and read directly: the direct read joins (sweeps), the gather does not.
    let plan = try planLabels("""
        stages:
          a: {kind: t/const, params: {value: "${v}"}, sweep: {grid: {v: [1, 2]}}}
          b: {kind: t/scale, inputs: {x: "${stages.a.out}"}}
          r: {kind: t/labels, inputs: {xs: ["${stages.b.out}", "${stages.a.out}"]}}
        """)
    #expect(plan.node("r")!.inputs.map(\.upstream) == ["b[v=1]", "b[v=2]", "a[v=1]", "a[v=2]"])
}

@Test func renamingOrRelabellingAGatheredStageChangesTheFingerprint() throws {
    let cache = Cache(root: try temporaryDirectory())
    let done = try runLabels(listGather, cache: cache)
    let before = done.node("report")!
    // The same computation under another stage name: the upstream is a cache hit (a stage's name is
    // not in its fingerprint) and its digest is equal, but the report's labels differ.
    let renamed = listGather.replacingOccurrences(of: "eval", with: "evaluation")
    let afterRename = try planLabels(renamed, cache)
    #expect(afterRename.node("evaluation[ratio=0.25]")!.fingerprint == done.node("eval[ratio=0.25]")!.fingerprint)
    #expect(afterRename.node("report")!.inputs.map(\.digest) == before.inputs.map(\.digest))
    #expect(afterRename.node("report")!.fingerprint != before.fingerprint)
    // The sweep variable renamed: same values, same digests, other labels.
    let relabelled = listGather.replacingOccurrences(of: "ratio", with: "p")
    let afterRelabel = try planLabels(relabelled, cache).node("report")!
    #expect(afterRelabel.inputs.map(\.digest) == before.inputs.map(\.digest))
    #expect(afterRelabel.fingerprint != before.fingerprint)
    // Unchanged spec: unchanged fingerprint (a cache hit).
    #expect(try planLabels(listGather, cache).node("report")!.fingerprint == before.fingerprint)
}
