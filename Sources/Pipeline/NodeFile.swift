// The node file: what a runner hands each stage process instead of the spec. It holds the node to run
// and every node upstream of it, as planned (typed parameters, file digests, inputs, seed,
// fingerprint), so `streamline stage ID --node FILE` runs the node without reading YAML, planning or
// re-hashing files. Executors write it into the cache (named by the planned fingerprint):
//
//     CACHE/scratch/nodes-RANDOM.HOST.PID/FP.json   a local run's; removed at its end, else by `cache gc`
//     CACHE/runs/RUN/FP.json                        a Slurm run's; kept beside its run record RUN.json
//
// A runner plans before its upstream stages ran, so an input may still be `pending:`. The stage
// process resolves such inputs from the cache's records as the planner would, but only after checking
// that every node's recorded fingerprint is the one its own material gives: an edited file is
// refused, never cached under a key that does not describe it. The file paths a node's parameters
// name are not hashed again: a stage runs on the files as they were when its runner planned.

import Foundation

public struct NodeFile: Codable, Sendable {
    /// In plan order, every node after the nodes it reads; the node to run is the last.
    public var nodes: [PlanNode]

    /// `node` and its upstream closure in `plan` (any dependency-closed list in plan order).
    public init(_ node: PlanNode, from plan: [PlanNode]) throws {
        nodes = try Plan(nodes: plan).closure(of: [node.id])
    }

    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try makeDirectory(url.deletingLastPathComponent())
            try encoder.encode(self).write(to: url, options: .atomic)
        } catch {
            throw PipelineError.io(operation: "write the node file", path: url.path, detail: "\(error)")
        }
    }

    public static func read(_ url: URL) throws -> NodeFile {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw PipelineError.badNodeFile(path: url.path, detail: "there is no readable file there")
        }
        do { return try JSONDecoder().decode(NodeFile.self, from: data) } catch {
            throw PipelineError.badNodeFile(path: url.path, detail: "it is not a node file (\(error))")
        }
    }

    /// The plan to run `id` from, with inputs that were pending at planning resolved against `cache`;
    /// refuses a node this binary's kinds would compute differently and any node whose material does
    /// not give its recorded fingerprint. `path` names the file in errors.
    public func plan(for id: String, path: String, registry: StageRegistry, cache: Cache) throws -> (plan: Plan, node: PlanNode) {
        guard let target = nodes.last, target.id == id || target.aliases.contains(id) else {
            throw PipelineError.badNodeFile(path: path, detail: "it holds node '\(nodes.last?.id ?? "none")', not '\(id)'")
        }
        var resolved: [String: PlanNode] = [:]
        var order: [PlanNode] = []
        for var node in nodes {
            guard let kind = registry[node.kind] else {
                throw PipelineError.badNodeFile(path: path, detail: "node '\(node.id)' has kind '\(node.kind)', which this streamline does not know")
            }
            guard kind.version == node.version else {
                throw PipelineError.badNodeFile(path: path, detail: "node '\(node.id)' was planned for version \(node.version) of kind "
                                                + "'\(node.kind)', this streamline has version \(kind.version)")
            }
            let recomputed = try fingerprint(of: node.material)
            guard recomputed == node.fingerprint else {
                throw PipelineError.tamperedNodeFile(path: path, id: node.id, recorded: node.fingerprint, recomputed: recomputed)
            }
            for i in node.inputs.indices {
                let input = node.inputs[i]
                guard let upstream = resolved[input.upstream] else {
                    throw PipelineError.badNodeFile(path: path, detail: "node '\(node.id)' reads '\(input.upstream)', which the file does not hold before it")
                }
                if let digest = cache.record(upstream.fingerprint)?.outputs[input.output] {
                    node.inputs[i].digest = digest
                } else if input.isPending {
                    node.inputs[i].digest = "pending:\(upstream.fingerprint).\(input.output)"
                }
            }
            node.fingerprint = try fingerprint(of: node.material)
            resolved[node.id] = node
            order.append(node)
        }
        return (Plan(nodes: order), order[order.count - 1])
    }
}

extension PlanNode: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, aliases, stage, kind, version, params, fileDigests, seed, inputs, variables, fingerprint, location
    }

    /// A sweep variable; the tuple in `variables` is not Codable.
    private struct Variable: Codable {
        var name: String
        var value: ParamValue
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), aliases: try c.decode([String].self, forKey: .aliases),
                  stage: try c.decode(String.self, forKey: .stage), kind: try c.decode(String.self, forKey: .kind),
                  version: try c.decode(Int.self, forKey: .version), params: try c.decode([String: ParamValue].self, forKey: .params),
                  fileDigests: try c.decode([String: String].self, forKey: .fileDigests), seed: try c.decode(UInt64.self, forKey: .seed),
                  inputs: try c.decode([PlanInput].self, forKey: .inputs),
                  variables: try c.decode([Variable].self, forKey: .variables).map { ($0.name, $0.value) },
                  fingerprint: try c.decode(String.self, forKey: .fingerprint),
                  location: try c.decode(SourceLocation.self, forKey: .location))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(aliases, forKey: .aliases)
        try c.encode(stage, forKey: .stage)
        try c.encode(kind, forKey: .kind)
        try c.encode(version, forKey: .version)
        try c.encode(params, forKey: .params)
        try c.encode(fileDigests, forKey: .fileDigests)
        try c.encode(seed, forKey: .seed)
        try c.encode(inputs, forKey: .inputs)
        try c.encode(variables.map { Variable(name: $0.name, value: $0.value) }, forKey: .variables)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(location, forKey: .location)
    }
}
