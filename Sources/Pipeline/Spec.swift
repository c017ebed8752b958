// The pipeline spec as loaded from YAML, every value with its source location, and the loader.
// The loader checks structure (keys, types), stage kinds, parameter names, literal values,
// references and cycles; values containing `${…}` (stage params, seeds, inputs: top-level params
// and sweep values are taken as written) are checked after interpolation by the planner.
// It is not the planner: sweeps are expanded and fingerprints computed in Planner.swift.
// What a file may be before any of this (size, nesting, expanded values): SpecLimits.swift.
//
//     # yaml-language-server: $schema=../Schemas/pipeline.schema.json
//     x-small: &small {rows: 2}          # keys starting with x- are free (anchors)
//     include: [shared.yaml]            # fragments: their params and stages merge in (this file wins)
//     params: {ratio: 0.25, steps: 40}  # overridable with -p ratio=0.3
//     seed: 7                            # default seed of every stage
//     executor: slurm                    # where `run` executes stages (default local; --executor wins)
//     slurm: {resources: {cpus: 2}}      # Slurm resources per kind and stage (Slurm/SlurmSettingsLoader.swift)
//     stages:
//       base:
//         kind: debug/constant
//         params: {rows: 4, cols: 4}
//       prune:
//         kind: debug/scale
//         inputs: {x: "${stages.base.out}"}  # a dependency comes only from a reference
//         params: {factor: "${ratio}"}       # a whole-value ${…} keeps its type
//         sweep:                         # members: grid product × zip rows, grid variables first
//           grid: {ratio: [0.25, 0.5]}
//           zip: {method: [dress, direct], selection: [last, magnitude]}
//           exclude: [{ratio: 0.5, method: direct}]
//       total:
//         kind: debug/total                  # a gather input takes one reference or a list of them
//         inputs: {xs: ["${stages.base.out}", "${stages.prune.out}"]}

import Foundation
import Yams

/// A value with the place it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    public var location: SourceLocation
}

/// A parameter as written: a typed literal, or text with `${…}` to interpolate per sweep member.
public enum RawParam: Sendable, Equatable {
    case literal(ParamValue)
    case template(String)
}

/// A sweep declared on a stage: every member binds each variable to one value. Members are the
/// grid's product × the zip's rows (grid-major), minus `exclude`, plus `include`.
public struct SweepSpec: Sendable {
    /// `grid:` variables in the order written: every combination of their values.
    public var grid: [(name: String, values: [ParamValue])]
    /// `zip:` variables in the order written: the i-th values together (equal lengths).
    public var zip: [(name: String, values: [ParamValue])]
    /// Extra members (full bindings), appended after the product.
    public var include: [[String: ParamValue]]
    /// Members matching any of these partial bindings are dropped.
    public var exclude: [[String: ParamValue]]
    public var location: SourceLocation

    /// Every variable, grid's then zip's: the order of member ids.
    public var variables: [(name: String, values: [ParamValue])] { grid + zip }
}

/// One stage as written under `stages:`.
public struct StageSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var kind: Located<String>
    /// Parameters in the order written.
    public var params: [(name: String, value: Located<RawParam>)]
    /// Input name → referenced stage and output, in the order written. A gather input
    /// (`InputDecl.many`) given a list has one entry per listed reference, under the same name.
    public var inputs: [(name: String, stage: String, output: String, location: SourceLocation)]
    public var sweep: SweepSpec?
    public var seed: Located<RawParam>?
}

/// A loaded, checked pipeline spec.
public struct Spec: Sendable {
    /// The spec file as the user named it (for messages only).
    public var file: String
    /// Top-level parameters in the order written (after includes and `-p` overrides).
    public var params: [(name: String, value: Located<ParamValue>)]
    public var seed: UInt64
    /// Stages in the order written; includes' stages first.
    public var stages: [StageSpec]
    /// The folder `.file`/`.files` parameters are relative to: the spec file's folder (nil: the
    /// working directory).
    public var baseDirectory: URL? = nil
    /// `executor:`, the default of `run --executor`; nil when the spec does not say.
    public var executor: ExecutorKind? = nil
    /// The `slurm:` section (empty when absent).
    public var slurm = SlurmSettings()
    /// Stage names under `slurm.stages`, where they were written (checked against `stages:`).
    var slurmStageKeys: [(name: String, location: SourceLocation)] = []

    public func stage(named name: String) -> StageSpec? { stages.first { $0.name == name } }
}

// MARK: - Loading

extension Spec {
    /// Loads and checks the spec at `url`. `overrides` are `NAME=VALUE` texts (from `-p`).
    public static func load(url: URL, displayName: String? = nil, overrides: [String] = [],
                            registry: StageRegistry) throws -> Spec {
        var loader = SpecLoader(registry: registry)
        var spec = try loader.load(url: url, displayName: displayName ?? url.path, depth: 0)
        try spec.applyOverrides(overrides)
        try loader.checkReferences(spec)
        return spec
    }

    /// Loads a spec from text (tests, stdin). Includes resolve relative to `baseDirectory`.
    public static func parse(yaml: String, file: String, baseDirectory: URL? = nil, overrides: [String] = [],
                             registry: StageRegistry) throws -> Spec {
        var loader = SpecLoader(registry: registry)
        var spec = try loader.parse(yaml: yaml, file: file, baseDirectory: baseDirectory, depth: 0)
        try spec.applyOverrides(overrides)
        try loader.checkReferences(spec)
        return spec
    }

    mutating func applyOverrides(_ overrides: [String]) throws {
        for text in overrides {
            guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
                throw PipelineError.badOverride(text: text, detail: "no '=' after a parameter name")
            }
            let name = String(text[..<eq]), raw = String(text[text.index(after: eq)...])
            guard let i = params.firstIndex(where: { $0.name == name }) else {
                throw PipelineError.unknownParam(at: nil, keyPath: "-p", name: name,
                                                 suggestion: suggestion(for: name, among: params.map(\.name)))
            }
            let value = scalarValue(raw)
            if case .double(let v) = value, !v.isFinite {
                throw PipelineError.badOverride(text: text, detail: "\(raw) is not a finite number")
            }
            if case .string(let s) = value, s.contains("${") {
                throw PipelineError.badOverride(text: text, detail: "a value given with -p is not interpolated; write the value itself")
            }
            params[i].value.value = value
        }
    }
}

/// A YAML scalar's text typed the way YAML 1.1 core rules would type it.
func scalarValue(_ text: String) -> ParamValue {
    if let node = try? Yams.compose(yaml: text), case .scalar = node, let v = typedScalar(node) { return v }
    return .string(text)
}

/// The resolved tag of a node (`Tag.name` itself is not public in Yams).
func tagName(_ node: Node) -> Tag.Name { Tag.Name(rawValue: node.tag.description) }

/// The typed value of a scalar node, or nil for null.
func typedScalar(_ node: Node) -> ParamValue? {
    switch tagName(node) {
    case .int: return node.int.map(ParamValue.int) ?? .string(node.string ?? "")
    case .float: return node.float.map(ParamValue.double) ?? .string(node.string ?? "")
    case .bool: return node.bool.map(ParamValue.bool) ?? .string(node.string ?? "")
    case .null: return nil
    default: return .string(node.string ?? "")
    }
}

struct SpecLoader {
    let registry: StageRegistry
    var file = ""

    init(registry: StageRegistry) { self.registry = registry }

    static let topKeys = ["include", "params", "seed", "stages", "executor", "slurm"]
    static let stageKeys = ["kind", "params", "inputs", "sweep", "seed", "doc"]
    static let sweepKeys = ["grid", "zip", "include", "exclude"]

    mutating func load(url: URL, displayName: String, depth: Int) throws -> Spec {
        file = displayName
        let data = try readSpecFile(url, displayName: displayName)
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineError.yamlSyntax(at: SourceLocation(file: displayName, line: 1, column: 1),
                                           detail: "the file is not UTF-8 text")
        }
        return try parse(yaml: text, file: displayName, baseDirectory: url.deletingLastPathComponent(), depth: depth)
    }

    mutating func parse(yaml: String, file: String, baseDirectory: URL?, depth: Int) throws -> Spec {
        self.file = file
        guard !yaml.contains("\u{0}") else {
            throw PipelineError.yamlSyntax(at: SourceLocation(file: file, line: 1, column: 1), detail: "the file is not UTF-8 text")
        }
        let root = try compose(yaml)
        let start = SourceLocation(file: file, line: 1, column: 1)
        guard let root else {
            throw PipelineError.wrongType(at: start, keyPath: "(root)", expected: "a mapping with 'stages:'",
                                          found: "an empty file")
        }
        // Top-level keys starting with `x-` are free: a place for YAML anchors shared by stages.
        let top = try mapping(root, "(root)").filter { !$0.key.hasPrefix("x-") }
        try allowKeys(top, Self.topKeys, "(root)")
        var spec = Spec(file: file, params: [], seed: 0, stages: [], baseDirectory: baseDirectory)
        // A parameter set again (by a later include or this file) keeps its place and takes the new value.
        var paramIndex: [String: Int] = [:]
        func setParam(_ entry: (name: String, value: Located<ParamValue>)) {
            if let i = paramIndex[entry.name] { spec.params[i] = entry; return }
            paramIndex[entry.name] = spec.params.count
            spec.params.append(entry)
        }
        if let inc = top.first(where: { $0.key == "include" }) {
            guard depth < 8 else {
                throw PipelineError.includeFailed(at: loc(inc.value), keyPath: "include", path: file,
                                                  detail: "includes nest more than 8 deep (an include cycle?)")
            }
            for (i, item) in try sequence(inc.value, "include").enumerated() {
                let path = try string(item, "include[\(i)]")
                let url = path.hasPrefix("/") || baseDirectory == nil ? URL(fileURLWithPath: path)
                    : baseDirectory!.appendingPathComponent(path)
                var sub = SpecLoader(registry: registry)
                let fragment: Spec
                do { fragment = try sub.load(url: url, displayName: path, depth: depth + 1) } catch let error as PipelineError {
                    throw PipelineError.includeFailed(at: loc(item), keyPath: "include[\(i)]", path: path, detail: withoutContent(error))
                }
                fragment.params.forEach(setParam)
                spec.stages += fragment.stages
                spec.seed = fragment.seed
                spec.takeSettings(of: fragment)
            }
        }
        let me = self
        for (key, keyNode, value) in top {
            switch key {
            case "params":
                for (name, _, v) in try mapping(value, "params") {
                    guard let pv = try me.uninterpolated(v, "params.\(name)") else {
                        throw PipelineError.wrongType(at: me.loc(v), keyPath: "params.\(name)",
                                                      expected: "a number, string or boolean", found: "null")
                    }
                    setParam((name: name, value: Located(value: pv, location: me.loc(v))))
                }
            case "seed":
                guard case .int(let s)? = try literal(value, "seed"), s >= 0 else {
                    throw PipelineError.wrongType(at: loc(value), keyPath: "seed", expected: "a non-negative integer",
                                                  found: describe(value))
                }
                spec.seed = UInt64(s)
            case "stages":
                let stages = try mapping(value, "stages")
                if stages.isEmpty {
                    throw PipelineError.wrongType(at: loc(value), keyPath: "stages", expected: "at least one stage",
                                                  found: "an empty mapping")
                }
                // This file's stages replace included ones of the same name (a name is one key here).
                let names = Set(stages.map(\.key))
                spec.stages.removeAll { names.contains($0.name) }
                for (name, nameNode, body) in stages { spec.stages.append(try self.stage(name, nameNode, body)) }
            case "executor", "slurm":
                try settings(key, value, into: &spec)
            default:
                _ = keyNode
            }
        }
        if !top.contains(where: { $0.key == "stages" }) && depth == 0 {
            throw PipelineError.missingKey(at: loc(root), keyPath: "(root)", key: "stages")
        }
        return spec
    }

    func stage(_ name: String, _ nameNode: Node, _ body: Node) throws -> StageSpec {
        let path = "stages.\(name)"
        guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_-]*$"#, options: .regularExpression) != nil else {
            throw PipelineError.wrongType(at: loc(nameNode), keyPath: path,
                                          expected: "a stage name of letters, digits, '_' and '-'", found: "'\(name)'")
        }
        let map = try mapping(body, path)
        try allowKeys(map, Self.stageKeys, path)
        guard let kindEntry = map.first(where: { $0.key == "kind" }) else {
            throw PipelineError.missingKey(at: loc(body), keyPath: path, key: "kind")
        }
        let kindName = try string(kindEntry.value, "\(path).kind")
        guard let kind = registry[kindName] else {
            throw PipelineError.unknownKind(at: loc(kindEntry.value), keyPath: "\(path).kind", kind: kindName,
                                            suggestion: suggestion(for: kindName, among: registry.names))
        }
        var stage = StageSpec(name: name, location: loc(nameNode),
                              kind: Located(value: kindName, location: loc(kindEntry.value)),
                              params: [], inputs: [], sweep: nil, seed: nil)
        for (key, _, value) in map {
            switch key {
            case "params":
                let declared = kind.params.map(\.name)
                for (pname, pnode, v) in try mapping(value, "\(path).params") {
                    let kp = "\(path).params.\(pname)"
                    guard let decl = kind.params.first(where: { $0.name == pname }) else {
                        throw PipelineError.unknownKey(at: loc(pnode), keyPath: "\(path).params", key: pname,
                                                       allowed: declared, suggestion: suggestion(for: pname, among: declared))
                    }
                    let raw = try self.raw(v, kp)
                    if case .literal(let lit) = raw { _ = try checked(decl, lit, loc(v), kp) }
                    stage.params.append((pname, Located(value: raw, location: loc(v))))
                }
            case "inputs":
                let declared = kind.inputs.map(\.name)
                for (iname, inode, v) in try mapping(value, "\(path).inputs") {
                    let kp = "\(path).inputs.\(iname)"
                    guard declared.contains(iname) else {
                        throw PipelineError.unknownKey(at: loc(inode), keyPath: "\(path).inputs", key: iname,
                                                       allowed: declared, suggestion: suggestion(for: iname, among: declared))
                    }
                    // A gather input may name several stages: a list, read in the order written.
                    let many = kind.inputs.first { $0.name == iname }!.many
                    let items: [(node: Node, path: String)]
                    if case .sequence = v, many {
                        items = try sequence(v, kp).enumerated().map { ($1, "\(kp)[\($0)]") }
                        if items.isEmpty {
                            throw PipelineError.wrongType(at: loc(v), keyPath: kp, expected: "at least one reference", found: "an empty list")
                        }
                    } else if case .sequence = v {
                        throw PipelineError.wrongType(at: loc(v), keyPath: kp, expected: "one '${stages.STAGE.OUTPUT}' (only a gather input takes a list)",
                                                      found: "a list")
                    } else {
                        items = [(v, kp)]
                    }
                    for (item, itemPath) in items {
                        let text = try string(item, itemPath)
                        let parts = reference(text)
                        guard parts.count == 3, parts[0] == "stages" else {
                            let form = many ? "'${stages.STAGE.OUTPUT}' or a list of them" : "exactly '${stages.STAGE.OUTPUT}'"
                            throw PipelineError.badReference(at: loc(item), keyPath: itemPath, text: text, detail: "an input must be \(form)")
                        }
                        // Each stage once: its nodes are the gathered stores' labels, which must be unique.
                        if stage.inputs.contains(where: { $0.name == iname && $0.stage == parts[1] }) {
                            throw PipelineError.duplicateKey(at: loc(item), keyPath: kp, key: parts[1])
                        }
                        stage.inputs.append((iname, parts[1], parts[2], loc(item)))
                    }
                }
            case "sweep":
                stage.sweep = try sweep(value, "\(path).sweep")
            case "seed":
                let raw = try self.raw(value, "\(path).seed")
                if case .literal(let lit) = raw, case .int(let s) = lit, s < 0 {
                    throw PipelineError.outOfRange(at: loc(value), keyPath: "\(path).seed", value: String(s),
                                                   expected: "a non-negative integer")
                }
                if case .literal(let lit) = raw, case .int = lit {} else if case .literal = raw {
                    throw PipelineError.wrongType(at: loc(value), keyPath: "\(path).seed", expected: "an integer",
                                                  found: describe(value))
                }
                stage.seed = Located(value: raw, location: loc(value))
            case "doc":
                _ = try string(value, "\(path).doc")
            default: break
            }
        }
        for input in kind.inputs where !input.optional && !stage.inputs.contains(where: { $0.name == input.name }) {
            throw PipelineError.missingInput(at: loc(body), keyPath: "\(path).inputs", input: input.name, kind: kindName)
        }
        return stage
    }

    func sweep(_ node: Node, _ path: String) throws -> SweepSpec {
        let map = try mapping(node, path)
        try allowKeys(map, Self.sweepKeys, path)
        guard map.contains(where: { $0.key == "grid" || $0.key == "zip" }) else {
            throw PipelineError.badSweep(at: loc(node), keyPath: path, detail: "give 'grid', 'zip' or both")
        }
        var sweep = SweepSpec(grid: [], zip: [], include: [], exclude: [], location: loc(node))
        for (modeKey, _, varsNode) in map where modeKey == "grid" || modeKey == "zip" {
            let kp = "\(path).\(modeKey)"
            // A zip column may repeat a value (two methods with the same selection); a grid axis may not.
            let variables = try sweepVariables(varsNode, kp, taken: sweep.variables.map(\.name), unique: modeKey == "grid")
            if modeKey == "grid" { sweep.grid = variables; continue }
            if Set(variables.map(\.values.count)).count > 1 {
                let counts = variables.map { "\($0.name): \($0.values.count)" }.joined(separator: ", ")
                throw PipelineError.badSweep(at: loc(varsNode), keyPath: kp, detail: "zip lists differ in length (\(counts))")
            }
            let rows = (0..<variables[0].values.count).map { i in variables.map { $0.values[i] } }
            for (i, row) in rows.enumerated() {
                if let j = rows[..<i].firstIndex(of: row) {
                    throw PipelineError.badSweep(at: loc(varsNode), keyPath: kp,
                                                 detail: "zip rows \(j + 1) and \(i + 1) are equal (\(row.map(\.description).joined(separator: ", ")))")
                }
            }
            sweep.zip = variables
        }
        let names = sweep.variables.map(\.name)
        for key in ["include", "exclude"] {
            guard let entry = map.first(where: { $0.key == key }) else { continue }
            for (i, item) in try sequence(entry.value, "\(path).\(key)").enumerated() {
                var binding: [String: ParamValue] = [:]
                for (vname, vnode, v) in try mapping(item, "\(path).\(key)[\(i)]") {
                    guard names.contains(vname) else {
                        throw PipelineError.unknownKey(at: loc(vnode), keyPath: "\(path).\(key)[\(i)]", key: vname,
                                                       allowed: names, suggestion: suggestion(for: vname, among: names))
                    }
                    guard let pv = try uninterpolated(v, "\(path).\(key)[\(i)].\(vname)") else {
                        throw PipelineError.badSweep(at: loc(v), keyPath: "\(path).\(key)[\(i)]", detail: "null is not a sweep value")
                    }
                    binding[vname] = pv
                }
                if key == "include" && binding.count != names.count {
                    throw PipelineError.badSweep(at: loc(item), keyPath: "\(path).include[\(i)]",
                                                 detail: "an included member must bind every variable (\(names.joined(separator: ", ")))")
                }
                if key == "include" { sweep.include.append(binding) } else { sweep.exclude.append(binding) }
            }
            if key == "exclude" && Planner.expand(sweep).isEmpty {
                throw PipelineError.badSweep(at: loc(entry.value), keyPath: "\(path).exclude",
                                             detail: "it removes every member, so the stage would never run; drop an entry or the stage")
            }
        }
        return sweep
    }

    /// The variables of one `grid:` or `zip:` mapping; `taken` are names the other one already binds;
    /// `unique`: a value may appear once per variable.
    func sweepVariables(_ node: Node, _ path: String, taken: [String], unique: Bool) throws -> [(name: String, values: [ParamValue])] {
        let vars = try mapping(node, path)
        if vars.isEmpty { throw PipelineError.badSweep(at: loc(node), keyPath: path, detail: "no variables") }
        var out: [(name: String, values: [ParamValue])] = []
        for (name, nameNode, list) in vars {
            let kp = "\(path).\(name)"
            guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                throw PipelineError.badSweep(at: loc(nameNode), keyPath: kp, detail: "'\(name)' is not a variable name")
            }
            if taken.contains(name) {
                throw PipelineError.badSweep(at: loc(nameNode), keyPath: kp,
                                             detail: "variable '\(name)' is in both 'grid' and 'zip'; keep it in one")
            }
            let items = try sequence(list, kp)
            if items.isEmpty { throw PipelineError.badSweep(at: loc(list), keyPath: kp, detail: "an empty list of values") }
            var values: [ParamValue] = []
            for (i, item) in items.enumerated() {
                guard let v = try uninterpolated(item, "\(kp)[\(i)]") else {
                    throw PipelineError.badSweep(at: loc(item), keyPath: "\(kp)[\(i)]", detail: "null is not a sweep value")
                }
                if unique && values.contains(v) {
                    throw PipelineError.badSweep(at: loc(item), keyPath: "\(kp)[\(i)]", detail: "value \(v) appears twice")
                }
                values.append(v)
            }
            out.append((name, values))
        }
        return out
    }

    /// Checks that every referenced stage and output exists and that references form no cycle.
    func checkReferences(_ spec: Spec) throws {
        let names = spec.stages.map(\.name)
        try checkSlurmStages(spec)
        for stage in spec.stages {
            for input in stage.inputs {
                let kp = "stages.\(stage.name).inputs.\(input.name)"
                guard let up = spec.stage(named: input.stage) else {
                    throw PipelineError.unknownStage(at: input.location, keyPath: kp, name: input.stage,
                                                     suggestion: suggestion(for: input.stage, among: names))
                }
                let outputs = registry[up.kind.value]!.outputs.map(\.name)
                guard outputs.contains(input.output) else {
                    throw PipelineError.unknownOutput(at: input.location, keyPath: kp, stage: input.stage,
                                                      output: input.output, available: outputs)
                }
            }
        }
        // Depth-first search with an explicit path, so a cycle is reported as the loop it is.
        var state: [String: Int] = [:]  // 1 = on the path, 2 = done
        func visit(_ name: String, _ path: [String]) throws {
            if state[name] == 2 { return }
            let stage = spec.stage(named: name)!
            if state[name] == 1 {
                let loop = Array(path[path.firstIndex(of: name)!...]) + [name]
                throw PipelineError.cycle(at: stage.location, path: loop)
            }
            state[name] = 1
            for input in stage.inputs { try visit(input.stage, path + [name]) }
            state[name] = 2
        }
        for stage in spec.stages { try visit(stage.name, []) }
    }

    // MARK: Node helpers

    func loc(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar:
            switch tagName(node) {
            case .null: return "null"
            case .int: return "the integer \(node.string ?? "")"
            case .float: return "the number \(node.string ?? "")"
            case .bool: return "the boolean \(node.string ?? "")"
            default: return "the string '\(node.string ?? "")'"
            }
        }
    }

    /// A mapping's entries with string keys, in order. `<<` merge keys add the keys this mapping
    /// does not write itself; a key written twice is an error.
    func mapping(_ node: Node, _ path: String) throws -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let m) = node else {
            throw PipelineError.wrongType(at: loc(node), keyPath: path, expected: "a mapping", found: describe(node))
        }
        var out: [(key: String, keyNode: Node, value: Node)] = []
        var merged: [(key: String, keyNode: Node, value: Node)] = []
        var seen = Set<String>()  // linear: 100,000 keys must not take minutes
        for (k, v) in m {
            if tagName(k) == .merge {
                let sources: [Node]
                if case .sequence(let s) = v { sources = Array(s) } else { sources = [v] }
                for source in sources { merged += try mapping(source, path) }
                continue
            }
            guard case .scalar = k, let key = k.string, tagName(k) != .null else {
                throw PipelineError.wrongType(at: loc(k), keyPath: path, expected: "a plain key", found: describe(k))
            }
            guard seen.insert(key).inserted else {
                throw PipelineError.duplicateKey(at: loc(k), keyPath: path, key: key)
            }
            out.append((key, k, v))
        }
        // Merged keys fill in what this mapping does not write; of several sources, the first wins.
        for entry in merged where seen.insert(entry.key).inserted { out.append(entry) }
        return out
    }

    func sequence(_ node: Node, _ path: String) throws -> [Node] {
        guard case .sequence(let s) = node else {
            throw PipelineError.wrongType(at: loc(node), keyPath: path, expected: "a list", found: describe(node))
        }
        return Array(s)
    }

    func string(_ node: Node, _ path: String) throws -> String {
        guard case .scalar = node, tagName(node) == .str, let s = node.string, !s.isEmpty else {
            throw PipelineError.wrongType(at: loc(node), keyPath: path, expected: "a non-empty string", found: describe(node))
        }
        return s
    }

    /// A scalar value (nil for null); mappings and lists are not parameter values, and neither are
    /// .inf and .nan (no stage takes them, and a fingerprint cannot hold them).
    func literal(_ node: Node, _ path: String) throws -> ParamValue? {
        guard case .scalar = node else {
            throw PipelineError.wrongType(at: loc(node), keyPath: path, expected: "a number, string or boolean",
                                          found: describe(node))
        }
        let value = typedScalar(node)
        if case .double(let v)? = value, !v.isFinite {
            throw PipelineError.wrongType(at: loc(node), keyPath: path, expected: "a finite number", found: describe(node))
        }
        return value
    }

    /// A literal where `${…}` is not interpolated (top-level params, sweep values): text with `${`
    /// would silently stay as written, so it is an error.
    func uninterpolated(_ node: Node, _ path: String) throws -> ParamValue? {
        let value = try literal(node, path)
        if case .string(let s)? = value, s.contains("${") {
            throw PipelineError.badReference(at: loc(node), keyPath: path, text: s,
                                             detail: "only stage params, seeds and inputs are interpolated; write the value itself here")
        }
        return value
    }

    func raw(_ node: Node, _ path: String) throws -> RawParam {
        guard let v = try literal(node, path) else {
            throw PipelineError.wrongType(at: loc(node), keyPath: path, expected: "a number, string or boolean",
                                          found: "null")
        }
        if case .string(let s) = v, s.contains("${") { return .template(s) }
        return .literal(v)
    }

    func allowKeys(_ map: [(key: String, keyNode: Node, value: Node)], _ allowed: [String], _ path: String) throws {
        for entry in map where !allowed.contains(entry.key) {
            throw PipelineError.unknownKey(at: loc(entry.keyNode), keyPath: path, key: entry.key, allowed: allowed,
                                           suggestion: suggestion(for: entry.key, among: allowed))
        }
    }

    /// What is wrong with an included file, without a word of its text: an include may name any
    /// file (`include: [/etc/shadow]`), and an error that quotes it would print what it holds.
    func withoutContent(_ error: PipelineError) -> String {
        let what: String
        switch error {
        case .unreadableFile(_, let detail): return detail
        case .yamlSyntax: what = "is not valid YAML"
        case .wrongType: what = "has a value of the wrong type"
        case .unknownKey: what = "has a key a spec does not have"
        case .duplicateKey: what = "has a key written twice"
        case .includeFailed: what = "has an include that fails"
        case .specLimit(_, let limit): what = "is past a limit: \(limit.problem)"
        default: what = "is not a valid spec fragment"
        }
        let at = error.location.map { "line \($0.line), column \($0.column) " } ?? ""
        return "its \(at)\(what) (its text is not shown here, since an include may name any file; "
            + "'streamline validate -s' on the file itself shows it)"
    }

    func yamlError(_ error: YamlError) -> PipelineError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return .yamlSyntax(at: SourceLocation(file: file, line: mark.line, column: mark.column), detail: problem)
        case .reader(let problem, let offset, _, _):
            return .yamlSyntax(at: SourceLocation(file: file, line: 1, column: 1),
                               detail: "\(problem)" + (offset.map { " at byte \($0)" } ?? ""))
        default:
            return .yamlSyntax(at: SourceLocation(file: file, line: 1, column: 1), detail: "\(error)")
        }
    }
}

/// Checks a literal against its declaration and normalises it, or throws a located error.
func checked(_ decl: ParamDecl, _ value: ParamValue, _ location: SourceLocation, _ keyPath: String) throws -> ParamValue {
    switch decl.check(value) {
    case .success(let v): return v
    case .failure(.wrongType(let expected)):
        throw PipelineError.wrongType(at: location, keyPath: keyPath, expected: expected, found: "'\(value)'")
    case .failure(.outOfRange(let expected)):
        throw PipelineError.outOfRange(at: location, keyPath: keyPath, value: value.description, expected: expected)
    }
}

/// The dotted parts of a text that is exactly one `${a.b.c}`, or [] when it is not.
func reference(_ text: String) -> [String] {
    guard text.hasPrefix("${"), text.hasSuffix("}"), text.count > 3 else { return [] }
    let inner = text.dropFirst(2).dropLast()
    guard !inner.contains("$"), !inner.contains("{"), !inner.contains("}") else { return [] }
    return inner.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
}
