// The JSON Schema (draft 2020-12) of pipeline specs, generated from the stage registry so that each
// kind's declared parameters, inputs and defaults appear in editors. `Schemas/pipeline.schema.json`
// is this output for the built-in kinds (a test keeps them equal); the loader enforces the same
// rules plus what a schema cannot say (references resolve, no cycles, zip lengths, interpolation,
// the limits of SpecLimits, finite numbers, one folder per destination).
// Editors pick it up from a first line `# yaml-language-server: $schema=PATH/pipeline.schema.json`.

import Foundation

public enum PipelineSchema {
    /// The schema as pretty-printed JSON with sorted keys (stable, diffable).
    public static func json(registry: StageRegistry) -> String {
        let data = try? JSONSerialization.data(withJSONObject: schema(registry: registry),
                                               options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data ?? Data(), as: UTF8.self) + "\n"
    }

    static func schema(registry: StageRegistry) -> [String: Any] {
        let scalar: [String: Any] = ["$ref": "#/$defs/literal"]
        var defs: [String: Any] = [
            // Top-level params and sweep values are taken as written: `${` there is an error.
            "literal": ["type": ["number", "string", "boolean"], "not": ["type": "string", "pattern": #"\$\{"#],
                        "description": "A value as written; ${…} is interpolated only in stage params, seeds and inputs."],
            "interpolated": ["type": "string", "pattern": #"\$\{[^}]+\}"#,
                             "description": "A ${NAME}, ${params.NAME} or text containing them."],
            "reference": ["type": "string", "pattern": #"^\$\{stages\.[^.${}]+\.[^.${}]+\}$"#,
                          "description": "An upstream output: ${stages.STAGE.OUTPUT}."],
            "binding": ["type": "object", "additionalProperties": scalar],
            "sweep": [
                "type": "object", "additionalProperties": false,
                "minProperties": 1, "maxProperties": 4,
                "anyOf": [["required": ["grid"]], ["required": ["zip"]]],
                "description": "Members: the grid's product × the zip's rows (grid variables first in member ids).",
                "properties": [
                    "grid": ["$ref": "#/$defs/gridVariables", "description": "Every combination of the values."],
                    "zip": ["$ref": "#/$defs/zipVariables", "description": "The i-th values together; equal lengths."],
                    "include": ["type": "array", "items": ["$ref": "#/$defs/binding"], "description": "Extra members."],
                    "exclude": ["type": "array", "items": ["$ref": "#/$defs/binding"], "description": "Members to drop."],
                ],
            ],
            "gridVariables": sweepVariables(unique: true),
            // A zip column may repeat a value (two methods sharing a selection rule); rows stay distinct.
            "zipVariables": sweepVariables(unique: false),
            "slurmResources": slurmResourcesSchema,
        ]
        var branches: [[String: Any]] = []
        for name in registry.names {
            let kind = registry[name]!
            let key = "kind." + name.replacingOccurrences(of: "/", with: ".")
            defs[key] = kindSchema(kind)
            branches.append(["if": ["properties": ["kind": ["const": name]]], "then": ["$ref": "#/$defs/\(key)"]])
        }
        return [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Streamline pipeline",
            "description": "A Streamline pipeline spec. First line for editors: "
                + "# yaml-language-server: $schema=Schemas/pipeline.schema.json",
            "type": "object",
            "additionalProperties": false,
            "required": ["stages"],
            "patternProperties": ["^x-": ["description": "Free: a place for YAML anchors shared by stages."]],
            "properties": [
                "include": ["type": "array", "items": ["type": "string", "minLength": 1],
                            "description": "Spec fragments whose params and stages merge in; this file wins."],
                "params": ["type": "object", "additionalProperties": scalar,
                           "description": "Parameters for ${…}; override with -p NAME=VALUE."],
                "seed": ["type": "integer", "minimum": 0, "description": "Default seed of every stage."],
                "executor": ["enum": ExecutorKind.allCases.map(\.rawValue),
                             "description": "Where 'streamline run' executes stages by default; --executor wins."],
                "slurm": slurmSchema(registry: registry),
                "stages": [
                    "type": "object", "minProperties": 1,
                    "propertyNames": ["pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"],
                    "additionalProperties": [
                        "type": "object", "required": ["kind"],
                        "properties": ["kind": ["enum": registry.names]],
                        "allOf": branches,
                    ],
                ],
            ],
            "$defs": defs,
        ]
    }

    /// `grid:`/`zip:`: variable name → non-empty list of scalars.
    static func sweepVariables(unique: Bool) -> [String: Any] {
        var list: [String: Any] = ["type": "array", "minItems": 1, "items": ["$ref": "#/$defs/literal"]]
        if unique { list["uniqueItems"] = true }
        return ["type": "object", "minProperties": 1, "propertyNames": ["pattern": "^[A-Za-z_][A-Za-z0-9_]*$"],
                "additionalProperties": list]
    }

    /// The `slurm:` section (Slurm/SlurmSettingsLoader.swift checks the same and more).
    static func slurmSchema(registry: StageRegistry) -> [String: Any] {
        let resources: [String: Any] = ["$ref": "#/$defs/slurmResources"]
        return [
            "type": "object", "additionalProperties": false,
            "description": "Slurm settings for 'run --executor slurm': resources by default, by kind, by stage (stage wins).",
            "properties": [
                "resources": ["$ref": "#/$defs/slurmResources", "description": "Resources of every stage's job."],
                "kinds": ["type": "object", "propertyNames": ["enum": registry.names], "additionalProperties": resources,
                          "description": "Overrides by stage kind."],
                "stages": ["type": "object", "additionalProperties": resources,
                           "description": "Overrides by stage name (win over kinds)."],
                "prologue": ["type": "array", "items": ["type": "string", "minLength": 1],
                             "description": "Shell commands each job runs before the stage, e.g. module loads."],
                "executable": ["type": "string", "pattern": "^/",
                               "description": "Absolute path of streamline on the compute nodes (default: the running one)."],
            ],
        ]
    }

    static var slurmResourcesSchema: [String: Any] { [
        "type": "object", "additionalProperties": false,
        "properties": [
            "cpus": ["type": "integer", "minimum": 1, "description": "--cpus-per-task; also the stage's threads."],
            "memory": ["anyOf": [["type": "integer", "minimum": 1], ["type": "string", "pattern": "^[0-9]+[KMGTkmgt]?$"]],
                       "description": "--mem: megabytes, or with a K, M, G or T suffix (4G)."],
            "time": ["anyOf": [["type": "integer", "minimum": 1],
                               ["type": "string", "pattern": "^([0-9]+|([0-9]+-)?[0-9]+:[0-5][0-9]:[0-5][0-9])$"]],
                     "description": "--time: minutes, HH:MM:SS or D-HH:MM:SS."],
            "partition": ["type": "string", "pattern": "^\\S+$", "description": "--partition."],
            "account": ["type": "string", "pattern": "^\\S+$", "description": "--account."],
            "gres": ["type": "string", "pattern": "^\\S+$", "description": "--gres, e.g. gpu:1."],
            "extra_args": ["type": "array", "items": ["type": "string", "pattern": "^-"],
                           "description": "Further sbatch options, passed last (e.g. --qos=high)."],
        ],
    ] }

    static func kindSchema(_ kind: any StageKind) -> [String: Any] {
        var params: [String: Any] = [:]
        for p in kind.params {
            var literal: [String: Any] = ["type": p.type.schemaType]
            switch p.type {
            case .int(let r?): literal["minimum"] = r.lowerBound; literal["maximum"] = r.upperBound
            case .double(let r?): literal["minimum"] = r.lowerBound; literal["maximum"] = r.upperBound
            case .string(let choices?): literal["enum"] = choices
            default: break
            }
            var entry: [String: Any] = ["description": p.doc, "anyOf": [literal, ["$ref": "#/$defs/interpolated"]]]
            if let d = p.defaultValue { entry["default"] = jsonValue(d) }
            params[p.name] = entry
        }
        var inputs: [String: Any] = [:]
        for i in kind.inputs {
            let what = i.many ? "s of every member; one reference or a list" : i.optional ? ", optional" : ""
            let description = "\(i.doc) (\(i.storeKind) store\(what))"
            inputs[i.name] = i.many
                ? ["anyOf": [["$ref": "#/$defs/reference"], ["type": "array", "minItems": 1, "items": ["$ref": "#/$defs/reference"]]],
                   "description": description]
                : ["$ref": "#/$defs/reference", "description": description]
        }
        let requiredInputs = kind.inputs.filter { !$0.optional }.map(\.name)
        var required = ["kind"]
        if !requiredInputs.isEmpty { required.append("inputs") }
        return [
            "description": kind.doc, "type": "object", "additionalProperties": false, "required": required,
            "properties": [
                "kind": ["const": kind.name],
                "doc": ["type": "string"],
                "seed": ["anyOf": [["type": "integer", "minimum": 0], ["$ref": "#/$defs/interpolated"]]],
                "sweep": ["$ref": "#/$defs/sweep"],
                "params": ["type": "object", "additionalProperties": false, "properties": params],
                "inputs": ["type": "object", "additionalProperties": false, "required": requiredInputs,
                           "properties": inputs],
            ],
        ]
    }

    static func jsonValue(_ v: ParamValue) -> Any {
        switch v {
        case .int(let x): return x
        case .double(let x): return x
        case .string(let x): return x
        case .bool(let x): return x
        }
    }
}
