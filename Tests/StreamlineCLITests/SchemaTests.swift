// Schemas/pipeline.schema.json against the Swift loader: the file is what the registry generates;
// good specs pass both; every malformed spec the schema can express fails both. The check runs
// python3's `jsonschema` (Debian python3-jsonschema + python3-yaml, or pip) over the fixtures.

import Foundation
import Pipeline
import Stages
import Testing

let schemaURL = repositoryRoot.appendingPathComponent("Schemas/pipeline.schema.json")
let goodFixtures = repositoryRoot.appendingPathComponent("Tests/PipelineTests/Fixtures/good")

/// Malformed specs only the loader can reject: references, cycles, duplicate keys (YAML parsers
/// keep the last), interpolated values, zip lengths, include files, sweep bindings and members,
/// nesting past the limit (`x-` keys are free in the schema), non-finite numbers (JSON Schema
/// cannot exclude NaN) and shared destinations.
let beyondSchema: Set<String> = [
    "duplicate-key.yaml", "duplicate-stage.yaml", "include-missing.yaml", "interpolated-out-of-range.yaml",
    "interpolated-wrong-type.yaml", "self-cycle.yaml", "stage-ref-in-param.yaml", "sweep-exclude-unknown-var.yaml",
    "sweep-include-partial.yaml", "sweep-var-reswept.yaml", "sweep-zip-unequal.yaml", "three-cycle.yaml",
    "two-cycle.yaml", "unknown-output-ref.yaml", "unknown-stage-ref.yaml", "unresolved-param-ref.yaml",
    "sweep-grid-zip-same-var.yaml", "sweep-zip-duplicate-row.yaml", "gather-list-repeats-stage.yaml",
    "alias-list-bomb.yaml", "duplicate-grid-variable.yaml", "duplicate-input-key.yaml", "duplicate-param-key.yaml",
    "export-same-destination.yaml", "export-same-destination-sweep.yaml", "gather-list-unknown-stage.yaml",
    "include-dev-zero.yaml", "include-directory.yaml", "include-invalid-yaml.yaml", "include-secret.yaml",
    "include-self.yaml", "key-null.yaml", "nest-block-deep.yaml", "nest-dashes.yaml", "nest-flow-65.yaml",
    "nest-mapping-deep.yaml", "nest-through-aliases.yaml", "param-inf.yaml", "param-nan.yaml",
    "seed-unknown-reference.yaml", "slurm-unknown-stage.yaml", "sweep-exclude-all.yaml", "sweep-exclude-all-zip.yaml",
    "sweep-no-common-member.yaml", "sweep-value-inf.yaml", "top-param-neg-inf.yaml",
]

/// Malformed specs the schema check skips: PyYAML expands `<<` merges eagerly, so this one keeps it
/// busy for many minutes (the loader stops it at the value limit: MalformedSpecTests).
let parserBombs: Set<String> = ["merge-bomb.yaml"]

@Test func theSchemaFileIsWhatTheRegistryGenerates() throws {
    let onDisk = try String(contentsOf: schemaURL, encoding: .utf8)
    #expect(onDisk == PipelineSchema.json(registry: StageCatalog.registry),
            "regenerate with: swift run streamline validate --schema > Schemas/pipeline.schema.json")
}

@Test func theStageReferenceIsWhatTheKindsDeclare() throws {
    let onDisk = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/stages.md"), encoding: .utf8)
    #expect(onDisk == StageReference.markdown(StageCatalog.kinds),
            "regenerate with: swift run streamline validate --kinds --markdown > docs/stages.md")
    // What a reader looks for: every kind has a section, and a choice parameter lists its choices.
    for kind in StageCatalog.kinds { #expect(onDisk.contains("\n## \(kind.name)\n"), "no section for \(kind.name)") }
    #expect(onDisk.contains("| `format` | `text`, `jsonl`, `wikitext` | `text` |"))
}

/// Validates each file with python's jsonschema; file name → valid.
func schemaVerdicts(_ files: [URL]) throws -> [String: Bool] {
    let script = """
        import json, sys, yaml, jsonschema
        v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
        for path in sys.argv[2:]:
            try:
                ok = not list(v.iter_errors(yaml.safe_load(open(path, 'rb').read().decode('utf-8'))))
            except (yaml.YAMLError, UnicodeDecodeError, ValueError):
                ok = False
            print(path.rsplit('/', 1)[-1], ok)
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, schemaURL.path] + files.map(\.path)
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0,
            "python3 with jsonschema and PyYAML is needed (apt-get install python3-jsonschema python3-yaml): \(errors)")
    var verdicts: [String: Bool] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ")
        verdicts[String(parts[0])] = parts[1] == "True"
    }
    return verdicts
}

@Test func schemaAndLoaderAgreeOnGoodAndBadSpecs() throws {
    let good = try FileManager.default.contentsOfDirectory(atPath: goodFixtures.path).filter { $0.hasSuffix(".yaml") }.sorted()
    #expect(!good.isEmpty)
    let goodVerdicts = try schemaVerdicts(good.map { goodFixtures.appendingPathComponent($0) })
    for name in good {
        #expect(goodVerdicts[name] == true, "schema rejects good spec \(name)")
        let spec = try Spec.load(url: goodFixtures.appendingPathComponent(name), registry: StageCatalog.registry)
        _ = try Planner.plan(spec, registry: StageCatalog.registry)
    }
    let bad = badFixtureNames().filter { !parserBombs.contains($0) }
    let badVerdicts = try schemaVerdicts(bad.map { badFixtures.appendingPathComponent($0) })
    for name in bad {
        // The loader rejects every one (MalformedSpecTests); the schema all but the listed ones.
        #expect(badVerdicts[name] == beyondSchema.contains(name), "\(name): schema says valid = \(String(describing: badVerdicts[name]))")
    }
}
