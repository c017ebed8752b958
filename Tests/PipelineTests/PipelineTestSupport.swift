// Tiny stage kinds for Pipeline's own tests (the Pipeline module cannot see the Stages module):
// `t/const` writes [value], `t/add` writes a + b, `t/scale` writes x · factor. One float each.

import Foundation
import Pipeline
import TensorStore

func writeScalarStore(_ value: Float, to url: URL) throws {
    let writer = try TensorStoreWriter(url: url, kind: "test")
    try writer.write("v", [value], shape: [1])
    _ = try writer.commit()
}

func readScalarStore(_ url: URL) throws -> Float {
    try TensorStoreReader(url: url).values("v", as: Float.self).values[0]
}

struct TestConst: StageKind {
    let name = "t/const"
    let version = 1
    let doc = "Writes [value]."
    let params = [ParamDecl("value", .double(), default: .double(1), doc: "The value."),
                  ParamDecl("label", .string(choices: ["a", "b"]), default: .string("a"), doc: "Unused label.")]
    let inputs: [InputDecl] = []
    let outputs = [OutputDecl("out", storeKind: "test", doc: "[value]")]
    func run(_ context: StageContext) throws {
        try writeScalarStore(Float(context.params["value"]!.number!), to: context.outputs["out"]!)
    }
}

struct TestScale: StageKind {
    let name = "t/scale"
    let version = 1
    let doc = "x · factor."
    let params = [ParamDecl("factor", .double(0...100), default: .double(1), doc: "The factor.")]
    let inputs = [InputDecl("x", storeKind: "test", doc: "x")]
    let outputs = [OutputDecl("out", storeKind: "test", doc: "x · factor")]
    func run(_ context: StageContext) throws {
        let x = try readScalarStore(context.inputs["x"]!)
        try writeScalarStore(x * Float(context.params["factor"]!.number!), to: context.outputs["out"]!)
    }
}

struct TestAdd: StageKind {
    let name = "t/add"
    let version = 1
    let doc = "a + b."
    let params: [ParamDecl] = []
    let inputs = [InputDecl("a", storeKind: "test", doc: "a"), InputDecl("b", storeKind: "test", doc: "b")]
    let outputs = [OutputDecl("out", storeKind: "test", doc: "a + b")]
    func run(_ context: StageContext) throws {
        let a = try readScalarStore(context.inputs["a"]!), b = try readScalarStore(context.inputs["b"]!)
        try writeScalarStore(a + b, to: context.outputs["out"]!)
    }
}

/// A gather: the sum of every member's value.
struct TestTotal: StageKind {
    let name = "t/total"
    let version = 1
    let doc = "Σ xs."
    let params: [ParamDecl] = []
    let inputs = [InputDecl("xs", storeKind: "test", doc: "every member", many: true)]
    let outputs = [OutputDecl("out", storeKind: "test", doc: "Σ xs")]
    func run(_ context: StageContext) throws {
        try writeScalarStore(try context.inputLists["xs"]!.map(readScalarStore).reduce(0, +), to: context.outputs["out"]!)
    }
}

let testRegistry = StageRegistry([TestConst(), TestScale(), TestAdd(), TestTotal()])

func parse(_ yaml: String, file: String = "p.yaml", overrides: [String] = []) throws -> Spec {
    try Spec.parse(yaml: yaml, file: file, overrides: overrides, registry: testRegistry)
}

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-pipeline-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Runs every node of `plan` in order in this process (what the executor does with processes),
/// re-planning after each so downstream fingerprints see real digests.
@discardableResult
func runAll(_ spec: Spec, cache: Cache) throws -> [StageOutcome] {
    var outcomes: [StageOutcome] = []
    var i = 0
    while true {
        let plan = try Planner.plan(spec, registry: testRegistry) { cache.record($0)?.outputs }
        guard i < plan.nodes.count else { return outcomes }
        outcomes.append(try StageRunner.run(plan.nodes[i], plan: plan, registry: testRegistry, cache: cache,
                                            threads: 1, toolVersion: "test"))
        i += 1
    }
}

/// The pipeline of the planner's documentation: data → reg (ratio sweep) → prune (reads reg and data) → eval.
let documentedDAG = """
    params: {ratio: 0.25}
    stages:
      data: {kind: t/const, params: {value: 2}}
      reg:
        kind: t/scale
        inputs: {x: "${stages.data.out}"}
        params: {factor: "${ratio}"}
        sweep: {grid: {ratio: [0.25, 0.5]}}
      prune:
        kind: t/add
        inputs: {a: "${stages.reg.out}", b: "${stages.data.out}"}
      eval:
        kind: t/scale
        inputs: {x: "${stages.prune.out}"}
        params: {factor: 10}
    """
