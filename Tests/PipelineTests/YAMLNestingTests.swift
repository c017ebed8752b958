// The token pass that bounds a spec's nesting before Yams composes it (YAMLNesting.swift) must never
// say less than the depth Yams then builds, or a crafted text reaches the recursive composer. Checked
// against Yams itself on generated YAML (every feature the pass follows: indentation, indentless
// lists, flow collections and pair entries, simple and explicit keys, quoted, plain, multi-line and
// block scalars, comments, tags, anchors and aliases) and on random character soup.

import Foundation
@testable import Pipeline
import Testing
import Yams

/// SplitMix64: a seeded generator, so a failing document can be reproduced from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Lists and mappings on the deepest path of `node`, aliases expanded (what the composer and the
/// release of the tree recurse through).
func composedDepth(_ node: Node) -> Int {
    var deepest = 0
    var stack = [(node, 0)]
    while let (node, depth) = stack.popLast() {
        switch node {
        case .scalar: deepest = max(deepest, depth)
        case .mapping(let m):
            deepest = max(deepest, depth + 1)
            for (k, v) in m { stack += [(k, depth + 1), (v, depth + 1)] }
        case .sequence(let s):
            deepest = max(deepest, depth + 1)
            stack += s.map { ($0, depth + 1) }
        }
    }
    return deepest
}

func scannedBound(_ text: String) -> Int {
    var scanner = YAMLNestingScanner(Array(text.utf8))
    _ = scanner.firstTokenOver(Int.max)
    return scanner.highest
}

/// Random YAML documents built from the constructs the token pass must follow.
struct YAMLGenerator {
    var rng: SeededGenerator
    var anchors: [String] = []
    var anchorCount = 0

    init(seed: UInt64) { rng = SeededGenerator(state: seed) }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func pick(_ items: [String]) -> String { items.randomElement(using: &rng)! }
    func pad(_ n: Int) -> String { String(repeating: " ", count: n) }

    mutating func scalar() -> String {
        pick(["a", "b[c", "x]y", "w{", "it's", "'q [ ] { }'", "'it''s ['", "\"d{\\\"}[\"", "\"e\\\\\"", "-x", "?y", ":z", "a#b",
              "1.5", "~", "'multi\n  line ['", "\"two\n  [lines\""])
    }

    mutating func properties() -> String {
        var out = ""
        if chance(0.1) { out += pick(["!t ", "!!str ", "!<tag:x,1:[a]> ", "!a!b "]) }
        if chance(0.2) { anchorCount += 1; out += "&a\(anchorCount) " }
        return out
    }

    /// Registers the anchor in `props` once its node is written (an alias inside it would be undefined).
    mutating func written(_ props: String) {
        if let range = props.range(of: #"&a\d+"#, options: .regularExpression) { anchors.append(String(props[range].dropFirst())) }
    }

    mutating func alias() -> String? { anchors.isEmpty ? nil : "*" + anchors.randomElement(using: &rng)! }

    mutating func flow(_ depth: Int) -> String {
        if depth <= 0 || chance(0.3) {
            if chance(0.15), let a = alias() { return a }
            return scalar()
        }
        let props = properties()
        var items: [String] = []
        let mapping = chance(0.4)
        for _ in 0..<Int.random(in: 0...3, using: &rng) {
            if mapping || chance(0.2) { items.append(flow(depth - 1) + (chance(0.2) ? " : " : ": ") + flow(depth - 1)) }
            else { items.append(flow(depth - 1)) }
        }
        let sep = pick([", ", ",", ",\n  ", " , # c [\n "])
        let text = props + (mapping ? "{" : "[") + items.joined(separator: sep) + (mapping ? "}" : "]")
        written(props)
        return text
    }

    mutating func blockScalar(_ indent: Int) -> String {
        let header = pick(["|", ">", "|-", ">+", "|2", "|1-", "| # c ["])
        let step = header.contains("2") ? 2 : header.contains("1") ? 1 : Int.random(in: 1...3, using: &rng)
        var lines: [String] = []
        for _ in 0..<Int.random(in: 0...3, using: &rng) {
            lines.append(pick(["", pad(indent + step) + "[[[ - a: {", pad(indent + step) + "'\"#", pad(indent + step + 2) + "] }",
                               pad(indent + step) + "- x: *y"]))
        }
        return header + "\n" + lines.map { $0 + "\n" }.joined()
    }

    /// A value after `key:` or `- ` at `indent` (the column of that key or dash), ending with a newline.
    mutating func blockValue(_ indent: Int, _ depth: Int, afterKey: Bool) -> String {
        let choice = depth <= 0 ? Int.random(in: 0...1, using: &rng) : Int.random(in: 0...7, using: &rng)
        switch choice {
        case 0: return " " + properties() + scalar() + (chance(0.2) ? " # [ {" : "") + "\n"
        case 1: return " " + flow(depth) + "\n"
        case 2: return " " + blockScalar(indent)
        case 3: if let a = alias() { return " " + a + "\n" }; return " x\n"
        case 4:
            let props = properties()
            let text = (props.isEmpty ? "" : " " + props) + "\n" + mapping(indent + Int.random(in: 1...3, using: &rng), depth - 1)
            written(props)
            return text
        case 5:
            let props = properties()
            let text = (props.isEmpty ? "" : " " + props) + "\n" + sequence(indent + Int.random(in: 1...3, using: &rng), depth - 1)
            written(props)
            return text
        case 6 where afterKey: return "\n" + sequence(indent, depth - 1)  // indentless
        default: return " " + properties() + scalar() + "\n"
        }
    }

    mutating func key() -> String {
        pick(["k", "'k [x'", "\"k{\"", "[a, b]", "{a: 1}", "&k\(Int.random(in: 0...9, using: &rng)) k", "!t k", "k#x", "-k"])
            + (chance(0.1) ? " " : "")
    }

    mutating func mapping(_ indent: Int, _ depth: Int) -> String {
        var out = ""
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            if chance(0.1) {
                out += pad(indent) + "? " + flow(depth - 1) + "\n" + pad(indent) + ":" + blockValue(indent, depth - 1, afterKey: false)
            } else {
                out += pad(indent) + key() + ":" + blockValue(indent, depth - 1, afterKey: true)
            }
            if chance(0.1) { out += pad(Int.random(in: 0...indent + 2, using: &rng)) + "# comment [ {\n" }
        }
        return out
    }

    mutating func sequence(_ indent: Int, _ depth: Int) -> String {
        var out = ""
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            if chance(0.2) {  // compact: a mapping begun on the dash's line
                out += pad(indent) + "- " + key() + ":" + blockValue(indent + 2, depth - 1, afterKey: true)
            } else if chance(0.1) {
                out += pad(indent) + "- - " + scalar() + "\n"
            } else {
                out += pad(indent) + "-" + blockValue(indent, depth - 1, afterKey: false)
            }
        }
        return out
    }

    mutating func document() -> String {
        var text = chance(0.5) ? mapping(0, 6) : sequence(0, 6)
        // Mutations: most give invalid YAML (skipped), some valid YAML no generator rule writes.
        for _ in 0..<Int.random(in: 0...2, using: &rng) where !text.isEmpty && chance(0.3) {
            let i = text.index(text.startIndex, offsetBy: Int.random(in: 0..<text.count, using: &rng))
            if chance(0.5) { text.remove(at: i) } else { text.insert(contentsOf: pick([" ", "\n", "[", "]", ":", "- ", "'", "#"]), at: i) }
        }
        return text
    }
}

@Suite struct YAMLNestingTests {
    @Test func theBoundIsNeverBelowTheComposedDepthOfGeneratedYAML() {
        var composed = 0
        for seed in UInt64(0)..<3000 {
            var generator = YAMLGenerator(seed: seed)
            let text = generator.document()
            guard let node = try? Yams.compose(yaml: text) else { continue }
            composed += 1
            let depth = composedDepth(node), bound = scannedBound(text)
            #expect(bound >= depth, "seed \(seed): bound \(bound) < depth \(depth) for:\n\(text)")
        }
        #expect(composed > 1000)  // enough of them are valid YAML to mean something
    }

    @Test func theBoundIsNeverBelowTheComposedDepthOfCharacterSoup() {
        let alphabet = [" ", "  ", "\n", "[", "]", "{", "}", ",", ":", ": ", "- ", "-", "? ", "'", "\"", "#", " #", "&a ", "*a",
                        "!t ", "|", ">", "a", "b", "\t", "\\", "\r\n", "\u{85}", "---\n"]
        var rng = SeededGenerator(state: 42)
        var composed = 0
        for _ in 0..<20000 {
            let text = (0..<Int.random(in: 1...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()
            guard let node = try? Yams.compose(yaml: text) else { continue }
            composed += 1
            let depth = composedDepth(node), bound = scannedBound(text)
            #expect(bound >= depth, "bound \(bound) < depth \(depth) for: \(text.debugDescription)")
        }
        #expect(composed > 1000)
    }

    @Test func theBoundIsNeverBelowTheDepthOfAliasChains() {
        // Each link's anchored node holds an alias of the previous one, so whatever a link's shape
        // undercounts adds up along the chain: every shape must count at least its own level.
        let links = ["&A [P]", "&A {k: P}", "&A\n  k: P", "&A\n  P : v", "&A\n- P", "&A\n  - P", "&A [k: P]",
                     "&A\n  ? P\n  : v", "!t &A\n  k: P", "&A\n  [P, x]: v", "&A {P: v}", "&A\n  k:\n  - P",
                     "&A\n  - - P", "&A\n  - k: P", "&A [[P]: v]", "&A\n  'q': {k: [P]}", "&A\n  !t k: P",
                     "&A\n  k: # c\n    P"]
        var rng = SeededGenerator(state: 7)
        // A chain of each shape alone (slack from one shape must not hide another's undercount), then mixes.
        let chains = links.map { Array(repeating: $0, count: 30) }
            + (0..<200).map { _ in (0..<30).map { _ in links.randomElement(using: &rng)! } }
        for chain in chains {
            var text = "x-a0: &a0 1\n"
            for (n, link) in zip(1..., chain) {
                text += "x-a\(n): " + link.replacingOccurrences(of: "&A", with: "&a\(n)").replacingOccurrences(of: "P", with: "*a\(n - 1)") + "\n"
            }
            let node: Node?
            do { node = try Yams.compose(yaml: text) } catch {
                Issue.record("not valid YAML: \(error)\n\(text)")
                continue
            }
            let depth = composedDepth(node!), bound = scannedBound(text)
            #expect(bound >= depth, "bound \(bound) < depth \(depth) for:\n\(text)")
        }
    }

    @Test(arguments: [
        "a: foo\n  'x\nb: DEEP",            // a quote that continues a plain scalar starts nothing
        "a: foo\n  \"x\nb: DEEP",
        "a: it's [\nb: DEEP",                // a quote inside a plain scalar
        "a: x #' \nb: DEEP",                 // a quote in a comment
        "a: b#c'\nd: DEEP",                  // '#' without a blank before it is text
        "a: |\n  'x\n  [[[\nb: DEEP",       // a block scalar's lines
        "a: >2\n   'x\nb: DEEP",
        "a: !t'x DEEP",                       // a quote inside a tag
        "[a'b, DEEP]",                        // a quote inside a plain scalar in a flow
        "[foo\n'bar, DEEP]",                 // a flow scalar continued on the next line
        "a: \"x\\\"y\n [[[ \\\" \"\nb: DEEP",   // escaped quotes
        "a: 'it''s\n [[[ '\nb: DEEP",
        "- foo\n  'bar\n- DEEP",
        "[#x\nDEEP]",                        // a comment right after '['
        "a: foo\u{85}  'x\u{85}b: DEEP",     // NEL ends a line
        "a: foo\r  'x\rb: DEEP",             // so does a lone CR
        "a: foo\u{2028}  'x\u{2028}b: DEEP",
        "? 'k\n  [[['\n: DEEP",
        "a:\n- x\nb: DEEP",                  // an indentless list ends
        "&a x: y\nb: DEEP",
    ])
    func theBoundFollowsWhereScalarsAndCommentsEnd(_ template: String) throws {
        let text = template.replacingOccurrences(of: "DEEP", with: String(repeating: "[", count: 40) + String(repeating: "]", count: 40))
        let node = try #require(try Yams.compose(yaml: text), "not YAML: \(text.debugDescription)")
        let depth = composedDepth(node), bound = scannedBound(text)
        #expect(depth >= 40)
        #expect(bound >= depth, "bound \(bound) < depth \(depth) for \(text.debugDescription)")
    }

    @Test func theBoundStaysNearTheDepthOfRealSpecs() throws {
        // Within 2 × depth + 1 (aliases aside), so a legitimate spec is refused only past maxDepth.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let pipelines = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Pipelines").path)
            .filter { $0.hasSuffix(".yaml") }
        #expect(!pipelines.isEmpty)
        for name in pipelines {
            let text = try String(contentsOf: root.appendingPathComponent("Pipelines/\(name)"), encoding: .utf8)
            let depth = composedDepth(try #require(try Yams.compose(yaml: text))), bound = scannedBound(text)
            #expect(bound >= depth && bound <= 2 * depth + 1, "\(name): bound \(bound), depth \(depth)")
        }
    }
}
