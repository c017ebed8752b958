// Optional inputs (`InputDecl(optional: true)`): a spec may leave one out, and then the node has no
// such input: it loads, plans, explains and runs; given, it is an ordinary input. A missing required
// input is still an error, and the JSON schema does not require the optional one.

import Foundation
import Pipeline
import Testing

/// x + (y when given, else 0).
struct TestShift: StageKind {
    let name = "t/shift"
    let version = 1
    let doc = "x + y, y optional."
    let params: [ParamDecl] = []
    let inputs = [InputDecl("x", storeKind: "test", doc: "x"), InputDecl("y", storeKind: "test", doc: "y", optional: true)]
    let outputs = [OutputDecl("out", storeKind: "test", doc: "x + y")]
    func run(_ context: StageContext) throws {
        let y = try context.inputs["y"].map(readScalarStore) ?? 0
        try writeScalarStore(try readScalarStore(context.inputs["x"]!) + y, to: context.outputs["out"]!)
    }
}

/// A kind whose only input is optional.
struct TestMaybe: StageKind {
    let name = "t/maybe"
    let version = 1
    let doc = "y or 7."
    let params: [ParamDecl] = []
    let inputs = [InputDecl("y", storeKind: "test", doc: "y", optional: true)]
    let outputs = [OutputDecl("out", storeKind: "test", doc: "y or 7")]
    func run(_ context: StageContext) throws {
        try writeScalarStore(try context.inputs["y"].map(readScalarStore) ?? 7, to: context.outputs["out"]!)
    }
}

@Suite struct OptionalInputTests {
    let registry = StageRegistry([TestConst(), TestShift(), TestMaybe()])

    func spec(_ shiftInputs: String) throws -> Spec {
        try Spec.parse(yaml: """
            stages:
              a: {kind: t/const, params: {value: 2}}
              b: {kind: t/const, params: {value: 5}}
              s: {kind: t/shift, inputs: \(shiftInputs)}
              m: {kind: t/maybe}
            """, file: "p.yaml", registry: registry)
    }

    /// Runs every node in plan order in this process; returns node id → its output value.
    func run(_ spec: Spec, cache: Cache) throws -> [String: Float] {
        var values: [String: Float] = [:]
        var i = 0
        while true {
            let plan = try Planner.plan(spec, registry: registry) { cache.record($0)?.outputs }
            guard i < plan.nodes.count else { return values }
            let node = plan.nodes[i]
            _ = try StageRunner.run(node, plan: plan, registry: registry, cache: cache, threads: 1, toolVersion: "test")
            values[node.id] = try readScalarStore(cache.outputURL(try #require(cache.lookup(node.fingerprint)).fingerprint, "out"))
            i += 1
        }
    }

    @Test func anAbsentOptionalInputLeavesTheNodeWithoutIt() throws {
        let without = try spec(#"{x: "${stages.a.out}"}"#)
        let with = try spec(#"{x: "${stages.a.out}", y: "${stages.b.out}"}"#)
        let planWithout = try Planner.plan(without, registry: registry), planWith = try Planner.plan(with, registry: registry)
        #expect(try planWithout.requireNode("s").inputs.map(\.name) == ["x"])
        #expect(try planWith.requireNode("s").inputs.map(\.name) == ["x", "y"])
        #expect(try planWithout.requireNode("m").inputs.isEmpty)
        #expect(try planWithout.requireNode("s").fingerprint != planWith.requireNode("s").fingerprint)
        // `b` is not read by anything without y, so the target closure of `s` leaves it out.
        #expect(try planWithout.closure(of: ["s"]).map(\.id) == ["a", "s"])
        #expect(try planWith.closure(of: ["s"]).map(\.id) == ["a", "b", "s"])

        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = Cache(root: dir)
        let valuesWithout = try run(without, cache: cache)
        #expect(valuesWithout["s"] == 2 && valuesWithout["m"] == 7)
        #expect(try run(with, cache: cache)["s"] == 7)

        // explain: the node without y differs from the cached one with y in exactly that input.
        let node = try Planner.plan(without, registry: registry) { cache.record($0)?.outputs }.requireNode("s")
        let withRecord = try #require(cache.allRecords().first { $0.stage == "s" && $0.inputs.count == 2 })
        let differences = PlanReport.differences(node, withRecord)
        #expect(differences.map(\.field) == ["inputs.y"])
        #expect(differences.first?.now == "(absent)")
    }

    @Test func aMissingRequiredInputIsStillAnError() throws {
        #expect {
            try spec(#"{y: "${stages.b.out}"}"#)
        } throws: { error in
            guard case PipelineError.missingInput(_, _, let input, let kind) = error else { return false }
            return input == "x" && kind == "t/shift"
        }
    }

    @Test func theSchemaRequiresOnlyTheRequiredInputs() throws {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(PipelineSchema.json(registry: registry).utf8)) as? [String: Any])
        let defs = try #require(json["$defs"] as? [String: Any])
        func kind(_ name: String) throws -> (required: [String], inputsRequired: [String], inputs: [String]) {
            let def = try #require(defs[name] as? [String: Any])
            let inputs = try #require((def["properties"] as? [String: Any])?["inputs"] as? [String: Any])
            return (try #require(def["required"] as? [String]), try #require(inputs["required"] as? [String]),
                    try #require(inputs["properties"] as? [String: Any]).keys.sorted())
        }
        let shift = try kind("kind.t.shift"), maybe = try kind("kind.t.maybe")
        #expect(shift.required == ["kind", "inputs"] && shift.inputsRequired == ["x"] && shift.inputs == ["x", "y"])
        #expect(maybe.required == ["kind"] && maybe.inputsRequired.isEmpty && maybe.inputs == ["y"])
    }
}
