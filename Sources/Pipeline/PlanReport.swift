// What `plan`, `explain` and `status` show: each node's cache state and why, rendered as text, JSON,
// Graphviz dot or Mermaid; and the field-by-field difference between a node and the nearest cached
// record of the same stage. Pure functions of a plan and a cache's records.

import Foundation

/// A node with its cache state.
public struct NodeStatus: Sendable {
    public var node: PlanNode
    public var cached: Bool
    /// "cached", "never run", "changed: params.factor", "waits for base"…
    public var reason: String
}

public enum PlanReport {
    /// The state of every node: cached when the cache holds an entry whose index checks out (a
    /// listing does not re-hash data; running a node does).
    public static func statuses(_ nodes: [PlanNode], cache: Cache) -> [NodeStatus] {
        let records = Dictionary(grouping: cache.allRecords(), by: \.stage)
        return nodes.map { node in
            if cache.lookup(node.fingerprint, rehash: false) != nil { return NodeStatus(node: node, cached: true, reason: "cached") }
            if let pending = node.inputs.first(where: \.isPending) {
                return NodeStatus(node: node, cached: false, reason: "waits for \(pending.upstream)")
            }
            if let (_, diffs) = nearest(node, among: records[node.stage] ?? []) {
                return NodeStatus(node: node, cached: false,
                                  reason: "changed: " + diffs.map(\.field).joined(separator: ", "))
            }
            return NodeStatus(node: node, cached: false, reason: "never run")
        }
    }

    /// One difference between a node and a record.
    public struct Difference: Sendable, Equatable {
        public var field: String
        public var was: String
        public var now: String
    }

    /// The record of the same stage with the fewest differences (same id wins ties), and those differences.
    public static func nearest(_ node: PlanNode, among records: [CacheRecord]) -> (CacheRecord, [Difference])? {
        let candidates = records.filter { $0.stage == node.stage && $0.kind == node.kind && $0.fingerprint != node.fingerprint }
        return candidates.map { ($0, differences(node, $0)) }
            .min { ($0.1.count, $0.0.id == node.id ? 0 : 1, $0.0.id) < ($1.1.count, $1.0.id == node.id ? 0 : 1, $1.0.id) }
    }

    /// Field-by-field: version, each param, seed, each input digest.
    public static func differences(_ node: PlanNode, _ rec: CacheRecord) -> [Difference] {
        var out: [Difference] = []
        if rec.version != node.version { out.append(Difference(field: "version", was: "\(rec.version)", now: "\(node.version)")) }
        for key in Set(rec.params.keys).union(node.params.keys).sorted() {
            // A file parameter differs by content; its path is not part of the fingerprint.
            if let now = node.fileDigests[key] {
                let was = rec.fileDigests[key]
                if was != now {
                    out.append(Difference(field: "params.\(key)", was: "content " + short(was ?? "(unknown)"),
                                          now: "content " + short(now)))
                }
                continue
            }
            guard rec.params[key] != node.params[key] else { continue }
            out.append(Difference(field: "params.\(key)", was: rec.params[key]?.description ?? "(absent)",
                                  now: node.params[key]?.description ?? "(absent)"))
        }
        if rec.seed != node.seed { out.append(Difference(field: "seed", was: "\(rec.seed)", now: "\(node.seed)")) }
        for input in node.inputs {
            let was = rec.inputs.first { $0.name == input.name }?.digest
            if was != input.digest {
                out.append(Difference(field: "inputs.\(input.name)", was: short(was ?? "(absent)"),
                                      now: input.isPending ? "not yet computed (\(input.upstream) runs first)" : short(input.digest)))
            }
        }
        // An optional input the record had and the spec now leaves out.
        for input in rec.inputs where !node.inputs.contains(where: { $0.name == input.name }) {
            out.append(Difference(field: "inputs.\(input.name)", was: short(input.digest), now: "(absent)"))
        }
        return out
    }

    /// `explain ID`: why the node runs (or that it is cached).
    public static func explain(_ node: PlanNode, cache: Cache) -> String {
        var lines = ["\(node.id)  (kind \(node.kind) v\(node.version), fingerprint \(short(node.fingerprint)))"]
        if let rec = cache.lookup(node.fingerprint, rehash: false) {
            lines.append("cached: computed \(rec.finished) on \(rec.host); nothing to do.")
            return lines.joined(separator: "\n")
        }
        guard let (rec, diffs) = nearest(node, among: cache.allRecords()) else {
            lines.append("will run: no cached record of stage '\(node.stage)' exists yet.")
            return lines.joined(separator: "\n")
        }
        lines.append("will run: differs from cached \(rec.id) (\(short(rec.fingerprint))) in \(diffs.count) field\(diffs.count == 1 ? "" : "s"):")
        for d in diffs { lines.append("  \(d.field): \(d.was) -> \(d.now)") }
        return lines.joined(separator: "\n")
    }

    /// `plan --format text`.
    public static func text(_ statuses: [NodeStatus]) -> String {
        let toRun = statuses.filter { !$0.cached }.count
        var lines = ["\(statuses.count) node\(statuses.count == 1 ? "" : "s"): \(statuses.count - toRun) cached, \(toRun) to run"]
        let width = statuses.map(\.node.id.count).max() ?? 0
        for s in statuses {
            let id = s.node.id.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append("  \(s.cached ? "cached" : "run   ")  \(id)  \(short(s.node.fingerprint))  \(s.reason)")
        }
        return lines.joined(separator: "\n")
    }

    /// `plan --format json`: one object per node, in plan order; parameters as bare JSON values.
    public static func json(_ statuses: [NodeStatus]) -> String {
        struct Row: Encodable {
            var id: String, stage: String, kind: String, fingerprint: String, cached: Bool, reason: String
            var params: [String: ScalarParam], seed: UInt64, inputs: [PlanInput], aliases: [String]
        }
        let rows = statuses.map { s in
            Row(id: s.node.id, stage: s.node.stage, kind: s.node.kind, fingerprint: s.node.fingerprint, cached: s.cached,
                reason: s.reason, params: s.node.params.mapValues(ScalarParam.init), seed: s.node.seed, inputs: s.node.inputs, aliases: s.node.aliases)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(rows)) ?? Data(), as: UTF8.self)
    }

    /// `plan --format dot` (Graphviz): cached nodes filled grey.
    public static func dot(_ statuses: [NodeStatus]) -> String {
        var lines = ["digraph pipeline {", "  rankdir=TB;", "  node [shape=box];"]
        for s in statuses {
            lines.append("  \(quote(s.node.id)) [label=\(quote(s.node.id + "\\n" + s.node.kind))\(s.cached ? ", style=filled, fillcolor=lightgrey" : "")];")
        }
        for s in statuses {
            for input in s.node.inputs {
                lines.append("  \(quote(input.upstream)) -> \(quote(s.node.id)) [label=\(quote(input.name))];")
            }
        }
        return (lines + ["}"]).joined(separator: "\n")
    }

    /// `plan --format mermaid`: a flowchart; node keys are n0, n1… because ids contain brackets.
    public static func mermaid(_ statuses: [NodeStatus]) -> String {
        let key = Dictionary(uniqueKeysWithValues: statuses.enumerated().map { ($1.node.id, "n\($0)") })
        var lines = ["flowchart TD"]
        for s in statuses {
            lines.append("  \(key[s.node.id]!)[\"\(s.node.id)<br/>\(s.node.kind)\(s.cached ? " (cached)" : "")\"]")
        }
        for s in statuses {
            for input in s.node.inputs {
                // Quoted: gather inputs are named `results[eval[ratio=0.25]]`, and brackets end an unquoted label.
                lines.append("  \(key[input.upstream] ?? input.upstream) -->|\"\(input.name)\"| \(key[s.node.id]!)")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
}

/// The first 12 hex digits of a fingerprint or digest: enough to tell entries apart by eye.
func short(_ digest: String) -> String {
    digest.hasPrefix("pending:") ? digest : String(digest.prefix(12))
}
