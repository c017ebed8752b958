// The spec's run settings, read by the spec loader: `executor:` (local or slurm) and the `slurm:`
// section (resources by default, by kind and by stage; a prologue; the executable on the nodes).
// Every value is checked here, with the line and key path of a bad one; the meaning of the values
// is SlurmResources.swift's. Stage names under `slurm.stages` are checked once every stage (from
// includes too) is known.
//
//     executor: slurm
//     slurm:
//       resources: {cpus: 2, memory: 4G, time: "01:00:00", partition: short, account: proj1}
//       kinds: {finetune: {gres: "gpu:1", time: 240}}
//       stages: {prune: {memory: 500M, extra_args: ["--qos=high"]}}
//       prologue: ["module load hdf5 openblas"]
//       executable: /shared/bin/streamline

import Foundation
import Yams

extension SpecLoader {
    static let slurmKeys = ["resources", "kinds", "stages", "prologue", "executable"]
    static let resourceKeys = ["cpus", "memory", "time", "partition", "account", "gres", "extra_args"]

    /// Reads the top-level `executor` or `slurm` entry into `spec`.
    func settings(_ key: String, _ value: Node, into spec: inout Spec) throws {
        if key == "executor" {
            let text = try string(value, "executor")
            guard let kind = ExecutorKind(rawValue: text) else {
                throw PipelineError.wrongType(at: loc(value), keyPath: "executor",
                                              expected: ExecutorKind.allCases.map(\.rawValue).joined(separator: " or "),
                                              found: describe(value))
            }
            spec.executor = kind
            return
        }
        let map = try mapping(value, "slurm")
        try allowKeys(map, Self.slurmKeys, "slurm")
        var settings = SlurmSettings()
        spec.slurmStageKeys = []
        for (name, _, body) in map {
            let path = "slurm.\(name)"
            switch name {
            case "resources":
                settings.defaults = try resources(body, path)
            case "kinds":
                for (kind, kindNode, entry) in try mapping(body, path) {
                    guard registry[kind] != nil else {
                        throw PipelineError.unknownKind(at: loc(kindNode), keyPath: path, kind: kind,
                                                        suggestion: suggestion(for: kind, among: registry.names))
                    }
                    settings.byKind[kind] = try resources(entry, "\(path).\(kind)")
                }
            case "stages":
                for (stage, stageNode, entry) in try mapping(body, path) {
                    settings.byStage[stage] = try resources(entry, "\(path).\(stage)")
                    spec.slurmStageKeys.append((stage, loc(stageNode)))
                }
            case "prologue":
                settings.prologue = try sequence(body, path).enumerated().map { try string($1, "\(path)[\($0)]") }
            default:
                let executable = try string(body, path)
                guard executable.hasPrefix("/") else {
                    throw PipelineError.wrongType(at: loc(body), keyPath: path, expected: "an absolute path",
                                                  found: describe(body))
                }
                settings.executable = executable
            }
        }
        spec.slurm = settings
    }

    /// One resources mapping; `path` names it in errors (e.g. "slurm.kinds.prune").
    func resources(_ node: Node, _ path: String) throws -> SlurmResources {
        let map = try mapping(node, path)
        try allowKeys(map, Self.resourceKeys, path)
        var result = SlurmResources()
        var locations: [String: SourceLocation] = [:]
        for (key, _, value) in map {
            let keyPath = "\(path).\(key)"
            locations[key] = loc(value)
            switch key {
            case "cpus":
                guard case .int(let cpus)? = try literal(value, keyPath) else {
                    throw PipelineError.wrongType(at: loc(value), keyPath: keyPath, expected: "a whole number of CPUs",
                                                  found: describe(value))
                }
                result.cpus = cpus
            case "memory", "time":
                // Why a number or text: YAML reads `memory: 500` and `time: 90` as integers.
                let text: String
                switch try literal(value, keyPath) {
                case .int(let n)?: text = String(n)
                case .string(let s)?: text = s
                default:
                    throw PipelineError.wrongType(at: loc(value), keyPath: keyPath,
                                                  expected: key == "memory" ? "a size like 4G or 500M" : "a time limit like 90 or \"01:30:00\"",
                                                  found: describe(value))
                }
                if key == "memory" { result.memory = text } else { result.time = text }
            case "extra_args":
                result.extraArguments = try sequence(value, keyPath).enumerated().map { i, item in
                    locations["extra_args[\(i)]"] = loc(item)
                    return try string(item, "\(keyPath)[\(i)]")
                }
            default:
                let text = try string(value, keyPath)
                switch key {
                case "partition": result.partition = text
                case "account": result.account = text
                default: result.gres = text
                }
            }
        }
        do { try result.validate() } catch {
            guard case let .invalidResource(keyPath, value, expected) = error else { throw error }
            throw PipelineError.wrongType(at: locations[keyPath] ?? loc(node), keyPath: "\(path).\(keyPath)",
                                          expected: expected, found: "'\(value)'")
        }
        return result
    }

    /// Every stage named under `slurm.stages` must be a stage of the spec.
    func checkSlurmStages(_ spec: Spec) throws {
        let names = spec.stages.map(\.name)
        for (name, location) in spec.slurmStageKeys where !names.contains(name) {
            throw PipelineError.unknownStage(at: location, keyPath: "slurm.stages", name: name,
                                             suggestion: suggestion(for: name, among: names))
        }
    }
}

extension Spec {
    /// Takes an included fragment's settings; what the including file writes itself comes later
    /// and replaces them.
    mutating func takeSettings(of fragment: Spec) {
        if let executor = fragment.executor { self.executor = executor }
        if fragment.slurm != SlurmSettings() {
            slurm = fragment.slurm
            slurmStageKeys = fragment.slurmStageKeys
        }
    }
}
