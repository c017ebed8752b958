// `streamline validate`: load and plan a spec without running or caching anything.

import ArgumentParser
import Pipeline
import Stages

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a pipeline spec: syntax, keys, kinds, parameters, references and sweeps.")

    @OptionGroup var options: PipelineOptions

    @Flag(help: "List the stage kinds with their parameters, inputs and outputs instead.")
    var kinds = false

    @Flag(help: "With --kinds: the stage reference as Markdown (docs/stages.md).")
    var markdown = false

    @Flag(help: "Print the JSON Schema of pipeline specs (Schemas/pipeline.schema.json) instead.")
    var schema = false

    func run() throws {
        if schema {
            print(PipelineSchema.json(registry: StageCatalog.registry), terminator: "")
            return
        }
        if kinds && markdown {
            print(StageReference.markdown(StageCatalog.kinds), terminator: "")
            return
        }
        if kinds {
            for kind in StageCatalog.kinds.sorted(by: { $0.name < $1.name }) {
                print("\(kind.name) (v\(kind.version)): \(kind.doc)")
                for p in kind.params { print("  param \(p.name) = \(p.defaultValue?.description ?? "(required)"): \(p.doc)") }
                for i in kind.inputs { print("  input \(i.name) (\(i.storeKind)): \(i.doc)") }
                for o in kind.outputs { print("  output \(o.name) (\(o.storeKind)): \(o.doc)") }
            }
            return
        }
        let spec = try options.loadSpec()
        let plan = try Planner.plan(spec, registry: StageCatalog.registry)
        print("\(options.spec): valid, \(spec.stages.count) stages, \(plan.nodes.count) nodes")
    }
}
