// Globs in `.files` parameters and parameters added with `omittedAtDefault`. A glob becomes its
// matched regular files in sorted path order (`*` within a folder, `**` across folders, hidden names
// skipped); the fingerprint follows the matched files' content, so editing one or adding a file that
// starts to match re-runs the stage, and a glob matching nothing is a located spec error. A
// parameter added later leaves the fingerprints of specs that do not set it (or set its default) alone.

import Foundation
import Pipeline
import Testing

/// `t/bytes` as it was before it learnt `mode`, and after.
private struct BytesWithMode: StageKind {
    let name = "t/bytes"
    let version = 1
    let doc = "Σ bytes of the files, with a mode added later."
    let params = TestBytes().params + [ParamDecl("mode", .string(choices: ["plain", "fancy"]), default: .string("plain"),
                                                 omittedAtDefault: true, doc: "Added later.")]
    let inputs: [InputDecl] = []
    let outputs = TestBytes().outputs
    func run(_ context: StageContext) throws { try TestBytes().run(context) }
}

/// A project with `corpus/b.jsonl`, `corpus/a.jsonl`, `corpus/notes.txt`, `corpus/deep/er/c.jsonl`
/// and a hidden `corpus/.d.jsonl`; `p.yaml` reads `texts` through the bytes kind.
private func globProject(texts: String, extra: String = "") throws -> URL {
    let dir = try temporaryDirectory().appendingPathComponent("project")
    let corpus = dir.appendingPathComponent("corpus")
    try FileManager.default.createDirectory(at: corpus.appendingPathComponent("deep/er"), withIntermediateDirectories: true)
    for (name, text) in ["b.jsonl": "b", "a.jsonl": "a", "notes.txt": "n", "deep/er/c.jsonl": "c", ".d.jsonl": "d"] {
        try text.write(to: corpus.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    try writeGlobSpec(in: dir, texts: texts, extra: extra)
    return dir
}

private func writeGlobSpec(in dir: URL, texts: String, extra: String = "") throws {
    try """
        stages:
          bytes:
            kind: t/bytes
            params:
              source: corpus/notes.txt
              texts: "\(texts)"\(extra)
        """.write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
}

private func bytesNode(_ dir: URL, _ kind: any StageKind = TestBytes()) throws -> PlanNode {
    let registry = StageRegistry([kind])
    let spec = try Spec.load(url: dir.appendingPathComponent("p.yaml"), displayName: "p.yaml", registry: registry)
    return try Planner.plan(spec, registry: registry) { _ in nil }.node("bytes")!
}

@Suite struct FileGlobTests {
    @Test func globsExpandToSortedFiles() throws {
        let dir = try globProject(texts: "corpus/*.jsonl, corpus/**/*.jsonl")
        let root = dir.standardizedFileURL.path + "/corpus/"
        // `*` stays in its folder; `**` matches zero or more folders; the hidden file is skipped.
        #expect(try bytesNode(dir).params["texts"] == .string(
            ["a.jsonl", "b.jsonl", "a.jsonl", "b.jsonl", "deep/er/c.jsonl"].map { root + $0 }.joined(separator: ", ")))
        #expect(FileGlob.expand(root + "*.json?") == ["a.jsonl", "b.jsonl"].map { root + $0 })
        #expect(FileGlob.expand(root + ".*.jsonl") == [root + ".d.jsonl"])
        #expect(FileGlob.expand(root + "[b-z]*") == [root + "b.jsonl", root + "notes.txt"])
        #expect(!FileGlob.isPattern("corpus/a.jsonl") && FileGlob.isPattern("corpus/[ab].jsonl"))
        // A symlink back up the tree is walked once, not forever.
        try FileManager.default.createSymbolicLink(atPath: root + "deep/up", withDestinationPath: root)
        #expect(FileGlob.expand(root + "**/c.jsonl") == [root + "deep/er/c.jsonl"])
    }

    @Test func theFingerprintFollowsTheMatchedFiles() throws {
        let dir = try globProject(texts: "corpus/**/*.jsonl")
        let before = try bytesNode(dir).fingerprint
        #expect(try bytesNode(dir).fingerprint == before)
        try "c2".write(to: dir.appendingPathComponent("corpus/deep/er/c.jsonl"), atomically: false, encoding: .utf8)
        let edited = try bytesNode(dir).fingerprint
        #expect(edited != before)
        try "e".write(to: dir.appendingPathComponent("corpus/deep/e.jsonl"), atomically: true, encoding: .utf8)
        let added = try bytesNode(dir).fingerprint
        #expect(added != edited)
        // A file the glob does not match changes nothing.
        try "x".write(to: dir.appendingPathComponent("corpus/deep/x.txt"), atomically: true, encoding: .utf8)
        #expect(try bytesNode(dir).fingerprint == added)
    }

    @Test func aGlobMatchingNothingIsALocatedError() throws {
        let dir = try globProject(texts: "corpus/a.jsonl, corpus/*.parquet")
        #expect { try bytesNode(dir) } throws: { error in
            guard case .noMatch(let at, let keyPath, let pattern, _) = error as? PipelineError else { return false }
            return at.file == "p.yaml" && at.line == 6 && at.column == 14 && keyPath == "stages.bytes.params.texts"
                && pattern == "corpus/*.parquet" && "\(error)".hasPrefix("p.yaml:6:14: ") && "\(error)".contains("matches no file")
        }
    }

    @Test func aParameterOmittedAtItsDefaultKeepsOldFingerprints() throws {
        let dir = try globProject(texts: "corpus/a.jsonl")
        let old = try bytesNode(dir, TestBytes())
        let new = try bytesNode(dir, BytesWithMode())
        #expect(new.fingerprint == old.fingerprint && new.params["mode"] == nil)
        try writeGlobSpec(in: dir, texts: "corpus/a.jsonl", extra: "\n      mode: plain")
        #expect(try bytesNode(dir, BytesWithMode()).fingerprint == old.fingerprint)
        try writeGlobSpec(in: dir, texts: "corpus/a.jsonl", extra: "\n      mode: fancy")
        let fancy = try bytesNode(dir, BytesWithMode())
        #expect(fancy.fingerprint != old.fingerprint && fancy.params["mode"] == .string("fancy"))
    }
}
