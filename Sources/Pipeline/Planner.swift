// The planner: a pure function from a loaded spec (and the cache's known output digests) to the
// ordered list of stage nodes with their fingerprints. It expands sweeps, joins swept upstreams,
// resolves and checks parameters, and merges nodes whose fingerprints are equal. It runs nothing.
//
// Example: `data` is plain, `reg` sweeps ratio over [0.25, 0.5], `prune` reads `reg` and `data`,
// `report`-like `eval` reads `prune` and `data`.
//
//        data ──────────────┬───────────────┐
//         │                 │               │
//     reg[ratio=0.25]   reg[ratio=0.5]      │
//         │                 │               │
//     prune[ratio=0.25] prune[ratio=0.5] ◀──┘
//         │                 │
//     eval[ratio=0.25]  eval[ratio=0.5]
//
// Expected order (stage order of the file, members in sweep order, each after its inputs):
//   data, reg[ratio=0.25], reg[ratio=0.5], prune[ratio=0.25], prune[ratio=0.5],
//   eval[ratio=0.25], eval[ratio=0.5]
// A stage downstream of a swept stage inherits its sweep variables; two swept upstreams are joined
// on the variables they share. A sweep's own members are its grid's product × its zip's rows.
// A gather input (`InputDecl.many`, e.g. a report reading `[${stages.dense.metrics}, ${stages.eval.metrics}]`)
// joins nothing: it reads every node of each listed stage, in list then plan order, as inputs named
// `results[NODE-ID]`, so the labels the stage shows (stage names, sweep variables) are fingerprinted. The fingerprint of a node is the hash of its kind, version, every
// declared parameter (resolved, defaults included; an `omittedAtDefault` one only when it differs
// from its default, so a parameter added later leaves old fingerprints alone), the digests of its input stores and its seed;
// an input whose producer has not run yet contributes `pending:` + the producer's fingerprint.
// A `.file`/`.files` parameter is resolved to absolute paths (relative to the spec's folder, `~`
// expanded) for running, and enters the fingerprint as the content digest of what it names: editing a
// file re-runs its stages, moving the file or the whole project does not. A `.files` item may be a
// glob (`data/*.jsonl`, `**/*.txt`): it becomes the matched files, sorted, so a new file that starts
// to match re-runs the stage too. A missing file, or a glob matching nothing, is a located spec
// error, raised here, before anything runs.

import Foundation

/// One input of a node: which upstream node's output, and the digest that enters the fingerprint.
public struct PlanInput: Sendable, Codable, Equatable {
    public var name: String
    /// The upstream node id.
    public var upstream: String
    public var output: String
    /// The upstream output store digest, or `pending:<upstream fingerprint>.<output>` before it ran.
    public var digest: String

    public var isPending: Bool { digest.hasPrefix("pending:") }
}

/// One unit of work: a stage (or sweep member) with everything that defines its result.
public struct PlanNode: Sendable {
    /// `name` or `name[var=value,…]`.
    public var id: String
    /// Ids of members merged into this node because their fingerprints were equal.
    public var aliases: [String]
    public var stage: String
    public var kind: String
    public var version: Int
    /// Every declared parameter, resolved (defaults included, but not an `omittedAtDefault` one at its
    /// default; file parameters as absolute paths).
    public var params: [String: ParamValue]
    /// File parameter name → content digest of what it names; replaces the path in the fingerprint.
    public var fileDigests: [String: String] = [:]
    public var seed: UInt64
    public var inputs: [PlanInput]
    /// Sweep variables of this member, in id order.
    public var variables: [(name: String, value: ParamValue)]
    public var fingerprint: String
    public var location: SourceLocation
}

/// What a fingerprint is computed from. Field names are part of the hash: do not rename them.
public struct FingerprintMaterial: Codable, Sendable, Equatable {
    public var kind: String
    public var version: Int
    public var params: [String: ParamValue]
    /// Input name → store digest.
    public var inputs: [String: String]
    public var seed: UInt64
}

extension PlanNode {
    /// What the fingerprint hashes: file parameters contribute `content:<digest>`, never their paths.
    public var material: FingerprintMaterial {
        FingerprintMaterial(kind: kind, version: version, params: params, fileDigests: fileDigests, inputs: inputs, seed: seed)
    }
}

extension FingerprintMaterial {
    /// File parameters enter as `content:<digest>`; input names are unique (the planner makes them
    /// so; a record that repeats one keeps the first, and then fails the fingerprint check).
    init(kind: String, version: Int, params: [String: ParamValue], fileDigests: [String: String],
         inputs: [PlanInput], seed: UInt64) {
        self.init(kind: kind, version: version,
                  params: params.merging(fileDigests.mapValues { .string("content:" + $0) }) { $1 },
                  inputs: Dictionary(inputs.map { ($0.name, $0.digest) }) { first, _ in first }, seed: seed)
    }
}

/// An ordered DAG of nodes: every node comes after the nodes it reads.
public struct Plan: Sendable {
    public var nodes: [PlanNode]
    private var indexByID: [String: Int]

    init(nodes: [PlanNode]) {
        self.nodes = nodes
        var index: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            index[node.id] = i
            for alias in node.aliases { index[alias] = i }
        }
        self.indexByID = index
    }

    /// The node with this id or alias.
    public func node(_ id: String) -> PlanNode? { indexByID[id].map { nodes[$0] } }

    /// The node with this id or alias, or an error suggesting the closest id.
    public func requireNode(_ id: String) throws -> PlanNode {
        guard let node = node(id) else {
            throw PipelineError.unknownTarget(target: id, suggestion: suggestion(for: id, among: nodes.map(\.id)))
        }
        return node
    }

    /// The nodes `targets` need, in plan order: each a node id, an alias, or a stage name (all its
    /// members). No targets = every node.
    public func closure(of targets: [String]) throws -> [PlanNode] {
        if targets.isEmpty { return nodes }
        var wanted: [Int] = []
        for target in targets {
            var matched: [Int] = indexByID[target].map { [$0] } ?? []
            if matched.isEmpty { matched = nodes.indices.filter { nodes[$0].stage == target } }
            if matched.isEmpty {
                throw PipelineError.unknownTarget(target: target, suggestion:
                    suggestion(for: target, among: Array(Set(nodes.map(\.stage))).sorted() + nodes.map(\.id)))
            }
            wanted += matched
        }
        var keep = Set<Int>()
        var stack = wanted
        while let i = stack.popLast() {
            guard keep.insert(i).inserted else { continue }
            stack += nodes[i].inputs.map { indexByID[$0.upstream]! }
        }
        return keep.sorted().map { nodes[$0] }
    }
}

public enum Planner {
    /// Plans `spec`. `outputDigests(fingerprint)` gives the output store digests of a cached node
    /// (nil when not cached); it makes downstream fingerprints use real digests.
    public static func plan(_ spec: Spec, registry: StageRegistry,
                            outputDigests: (String) -> [String: String]? = { _ in nil }) throws -> Plan {
        var members: [String: [(vars: [(name: String, value: ParamValue)], nodeID: String)]] = [:]
        var nodes: [PlanNode] = []
        var byFingerprint: [String: Int] = [:]
        var nodeIndex: [String: Int] = [:]  // surviving node id → index in `nodes`
        var digestCache: [String: [String: String]?] = [:]
        var claimed: [String: (node: String, at: SourceLocation)] = [:]  // destination folder → its first writer
        let topParams = Dictionary(spec.params.map { ($0.name, $0.value.value) }, uniquingKeysWith: { $1 })

        for stage in topologicalOrder(spec) {
            let kind = registry[stage.kind.value]!
            // Join the members of every upstream stage on their shared sweep variables.
            var combos: [(vars: [(name: String, value: ParamValue)], up: [String: String])] = [([], [:])]
            let gathers = Set(kind.inputs.filter(\.many).map(\.name))
            let joined = uniqueUpstreams(stage.inputs.filter { !gathers.contains($0.name) })
            for upstream in joined {
                var next: [(vars: [(name: String, value: ParamValue)], up: [String: String])] = []
                for combo in combos {
                    for m in members[upstream]! where compatible(combo.vars, m.vars) {
                        var vars = combo.vars
                        for v in m.vars where !vars.contains(where: { $0.name == v.name }) { vars.append(v) }
                        var up = combo.up
                        up[upstream] = m.nodeID
                        next.append((vars, up))
                    }
                }
                combos = next
            }
            if combos.isEmpty {
                throw PipelineError.badSweep(at: stage.location, keyPath: "stages.\(stage.name).inputs",
                                             detail: "no member of its inputs agrees on the sweep variables they share, so it would never run")
            }
            if let sweep = stage.sweep {
                for v in sweep.variables where combos.first?.vars.contains(where: { $0.name == v.name }) == true {
                    throw PipelineError.badSweep(at: sweep.location, keyPath: "stages.\(stage.name).sweep",
                                                 detail: "variable '\(v.name)' is already swept by an upstream stage")
                }
                let own = expand(sweep)
                combos = combos.flatMap { c in own.map { (c.vars + $0, c.up) } }
            }
            var stageMembers: [(vars: [(name: String, value: ParamValue)], nodeID: String)] = []
            for combo in combos {
                let id = memberID(stage.name, combo.vars)
                let bindings = Dictionary(combo.vars.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
                var params: [String: ParamValue] = [:]
                var fileDigests: [String: String] = [:]
                for decl in kind.params {
                    let kp = "stages.\(stage.name).params.\(decl.name)"
                    let value: ParamValue, location: SourceLocation
                    if let given = stage.params.first(where: { $0.name == decl.name }) {
                        value = try checked(decl, try resolve(given.value, kp, bindings, topParams), given.value.location, kp)
                        location = given.value.location
                    } else if let d = decl.defaultValue {
                        (value, location) = (d, stage.location)
                    } else {
                        throw PipelineError.missingKey(at: stage.location, keyPath: "stages.\(stage.name).params",
                                                       key: decl.name)
                    }
                    if decl.isLeftOut(at: value) { continue }
                    if decl.type.isFile, case .string(let text) = value {
                        let (paths, digest) = try files(text, decl.type, spec.baseDirectory, location, kp)
                        params[decl.name] = .string(paths)
                        fileDigests[decl.name] = digest
                    } else {
                        params[decl.name] = value
                    }
                }
                var seed = spec.seed
                if let s = stage.seed {
                    let kp = "stages.\(stage.name).seed"
                    guard case .int(let v) = try resolve(s, kp, bindings, topParams), v >= 0 else {
                        throw PipelineError.wrongType(at: s.location, keyPath: kp, expected: "a non-negative integer",
                                                      found: "another value after interpolation")
                    }
                    seed = UInt64(v)
                }
                var inputs: [PlanInput] = []
                for input in stage.inputs {
                    // A gather reads every distinct node of each listed stage, in list then plan order,
                    // named `input[NODE-ID]`: the labels a report shows are part of the fingerprint.
                    let gather = gathers.contains(input.name)
                    let ids = gather ? members[input.stage]!.map(\.nodeID) : [combo.up[input.stage]!]
                    for upID in ids {
                        let name = gather ? gatherInputName(input.name, upID) : input.name
                        if gather && inputs.contains(where: { $0.name == name }) { continue }
                        let upFP = nodes[nodeIndex[upID]!].fingerprint
                        if digestCache[upFP] == nil { digestCache[upFP] = .some(outputDigests(upFP)) }
                        let digest = digestCache[upFP]!?[input.output] ?? "pending:\(upFP).\(input.output)"
                        inputs.append(PlanInput(name: name, upstream: upID, output: input.output, digest: digest))
                    }
                }
                var node = PlanNode(id: id, aliases: [], stage: stage.name, kind: kind.name, version: kind.version,
                                    params: params, fileDigests: fileDigests, seed: seed, inputs: inputs, variables: combo.vars,
                                    fingerprint: "", location: stage.location)
                node.fingerprint = try fingerprint(of: node.material)
                if let existing = byFingerprint[node.fingerprint] {
                    nodes[existing].aliases.append(id)
                    stageMembers.append((combo.vars, nodes[existing].id))
                } else {
                    for decl in kind.params where decl.destination {
                        guard case .string(let text)? = params[decl.name], !text.isEmpty else { continue }
                        let folder = path(text, relativeTo: spec.baseDirectory).path
                        let at = stage.params.first { $0.name == decl.name }?.value.location ?? stage.location
                        if let first = claimed[folder] {
                            throw PipelineError.sameDestination(at: at, keyPath: "stages.\(stage.name).params.\(decl.name)", node: id,
                                                                path: folder, other: first.node, otherAt: first.at)
                        }
                        claimed[folder] = (id, at)
                    }
                    byFingerprint[node.fingerprint] = nodes.count
                    nodeIndex[id] = nodes.count
                    nodes.append(node)
                    stageMembers.append((combo.vars, id))
                }
            }
            members[stage.name] = stageMembers
        }
        return Plan(nodes: nodes)
    }

    /// Resolves a `.file` path or `.files` list against `base` (nil: the working directory), expands
    /// the list's globs (FileGlob: sorted matched files; none is an error) and hashes the content: the absolute paths (joined by ", " for `.files`) and the digest for the
    /// fingerprint (`.files`: the canonical hash of the list of digests, in order).
    static func files(_ text: String, _ type: ParamType, _ base: URL?, _ location: SourceLocation,
                      _ keyPath: String) throws -> (paths: String, digest: String) {
        let items = type == .file ? [text.trimmingCharacters(in: .whitespaces)]
            : text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var paths: [String] = []
        var digests: [String] = []
        for item in items {
            let path = self.path(item, relativeTo: base).path
            if type == .files && FileGlob.isPattern(item) {
                let matched = FileGlob.expand(path)
                guard !matched.isEmpty else {
                    throw PipelineError.noMatch(at: location, keyPath: keyPath, pattern: item, resolved: path)
                }
                paths += matched
                digests += try matched.map(ContentDigest.of(path:))
                continue
            }
            guard FileManager.default.fileExists(atPath: path) else {
                throw PipelineError.missingFile(at: location, keyPath: keyPath, path: item, resolved: path)
            }
            paths.append(path)
            digests.append(try ContentDigest.of(path: path))
        }
        return type == .file ? (paths[0], digests[0]) : (paths.joined(separator: ", "), try fingerprint(of: digests))
    }

    /// A path as a spec writes it: `~` expanded, relative ones from `base` (nil: the working
    /// directory), standardized.
    public static func path(_ text: String, relativeTo base: URL?) -> URL {
        let expanded = NSString(string: text).expandingTildeInPath
        let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded)
            : (base ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).appendingPathComponent(expanded)
        return url.standardizedFileURL
    }

    /// `name` or `name[a=1,b=x]`.
    public static func memberID(_ stage: String, _ vars: [(name: String, value: ParamValue)]) -> String {
        vars.isEmpty ? stage : "\(stage)[" + vars.map { "\($0.name)=\($0.value)" }.joined(separator: ",") + "]"
    }

    /// Members of one sweep: the grid's product × the zip's rows (grid-major, each member's variables
    /// grid's then zip's), minus excluded, plus included.
    static func expand(_ sweep: SweepSpec) -> [[(name: String, value: ParamValue)]] {
        var out: [[(name: String, value: ParamValue)]] = [[]]
        for v in sweep.grid { out = out.flatMap { m in v.values.map { m + [(v.name, $0)] } } }
        if let rows = sweep.zip.first?.values.count {
            let zipped = (0..<rows).map { i in sweep.zip.map { ($0.name, $0.values[i]) } }
            out = out.flatMap { m in zipped.map { m + $0 } }
        }
        out.removeAll { m in
            sweep.exclude.contains { ex in ex.allSatisfy { k, v in m.contains { $0.name == k && $0.value == v } } }
        }
        for inc in sweep.include {
            let m = sweep.variables.map { ($0.name, inc[$0.name]!) }
            if !out.contains(where: { $0.map(\.value) == m.map(\.1) }) { out.append(m) }
        }
        return out
    }

    static func compatible(_ a: [(name: String, value: ParamValue)], _ b: [(name: String, value: ParamValue)]) -> Bool {
        for x in a { if let y = b.first(where: { $0.name == x.name }), y.value != x.value { return false } }
        return true
    }

    /// The name of one gathered input in a node: `results[eval[ratio=0.25]]`.
    public static func gatherInputName(_ input: String, _ upstreamID: String) -> String { "\(input)[\(upstreamID)]" }

    static func uniqueUpstreams(_ inputs: [(name: String, stage: String, output: String, location: SourceLocation)]) -> [String] {
        var seen: [String] = []
        for input in inputs where !seen.contains(input.stage) { seen.append(input.stage) }
        return seen
    }

    /// Stages in file order, each moved after the stages it reads (the loader has ruled out cycles).
    static func topologicalOrder(_ spec: Spec) -> [StageSpec] {
        var done = Set<String>()
        var order: [StageSpec] = []
        func visit(_ stage: StageSpec) {
            guard !done.contains(stage.name) else { return }
            done.insert(stage.name)
            for up in uniqueUpstreams(stage.inputs) { visit(spec.stage(named: up)!) }
            order.append(stage)
        }
        spec.stages.forEach(visit)
        return order
    }

    /// Interpolates `${…}`: a whole-value reference keeps the referenced value's type; references
    /// inside longer text are replaced by their text.
    static func resolve(_ raw: Located<RawParam>, _ keyPath: String, _ vars: [String: ParamValue],
                        _ params: [String: ParamValue]) throws -> ParamValue {
        guard case .template(let text) = raw.value else {
            if case .literal(let v) = raw.value { return v }
            fatalError("unreachable")
        }
        func lookup(_ expr: String) throws -> ParamValue {
            let parts = expr.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 2, parts[0] == "params", let v = params[parts[1]] { return v }
            if parts.count == 1, let v = vars[parts[0]] ?? params[parts[0]] { return v }
            if parts.first == "stages" {
                throw PipelineError.badReference(at: raw.location, keyPath: keyPath, text: "${\(expr)}",
                                                 detail: "stage outputs are inputs, not parameters: put it under 'inputs:'")
            }
            let known = Array(vars.keys) + Array(params.keys)
            let hint = suggestion(for: parts.last ?? expr, among: known).map { " (did you mean '\($0)'?)" } ?? ""
            throw PipelineError.badReference(at: raw.location, keyPath: keyPath, text: "${\(expr)}",
                                             detail: "no sweep variable or parameter of that name\(hint)")
        }
        let whole = reference(text)
        if !whole.isEmpty { return try lookup(whole.joined(separator: ".")) }
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw PipelineError.badReference(at: raw.location, keyPath: keyPath, text: text, detail: "'${' without '}'")
            }
            out += try lookup(String(rest[open.upperBound..<close])).description
            rest = rest[rest.index(after: close)...]
        }
        return .string(out + rest)
    }
}
