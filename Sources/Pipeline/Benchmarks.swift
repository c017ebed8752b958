// Benchmarks the lead's `streamline bench` calls: planning cost of a large sweep. Measured by
// `bench`, never asserted by timed tests.

import Foundation

public enum PipelineBenchmarks {
    /// Plans a sweep of `members` ratios over a five-stage chain (about 4·members + 1 nodes) with the
    /// given registry, which must hold `debug/constant` and `debug/scale`. Returns (nodes, seconds).
    public static func planSweep(members: Int, registry: StageRegistry) throws -> (nodes: Int, seconds: Double) {
        let values = (0..<members).map { String(format: "%.4f", Double($0) / Double(members)) }.joined(separator: ", ")
        let yaml = """
            stages:
              base: {kind: debug/constant}
              reg:
                kind: debug/scale
                inputs: {x: "${stages.base.out}"}
                params: {factor: "${ratio}"}
                sweep: {grid: {ratio: [\(values)]}}
              prune: {kind: debug/scale, inputs: {x: "${stages.reg.out}"}, params: {factor: 2}}
              finetune: {kind: debug/scale, inputs: {x: "${stages.prune.out}"}, params: {factor: 3}}
              evaluate: {kind: debug/scale, inputs: {x: "${stages.finetune.out}"}, params: {factor: 4}}
            """
        let start = Date()
        let spec = try Spec.parse(yaml: yaml, file: "bench.yaml", registry: registry)
        let plan = try Planner.plan(spec, registry: registry)
        return (plan.nodes.count, Date().timeIntervalSince(start))
    }
}
