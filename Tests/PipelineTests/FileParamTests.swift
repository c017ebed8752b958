// File parameters (`.file`, `.files`): the planner hands stages absolute paths resolved from the spec's
// folder, and fingerprints the content of what they name. Editing a file re-runs its stage and
// everything downstream; renaming it (with the spec updated) or moving the whole project re-runs
// nothing; a missing file is a located spec error raised before anything runs; `explain` names the
// changed content. Digests are checked against sha256sum(1), an implementation independent of ours.

import Foundation
import Pipeline
import Testing

/// Writes the total byte count of `source` and every file of `texts` (folders: every file below).
struct TestBytes: StageKind {
    let name = "t/bytes"
    let version = 1
    let doc = "Σ bytes of the files."
    let params = [ParamDecl("source", .file, doc: "One file or folder."),
                  ParamDecl("texts", .files, default: .string(""), doc: "More files or folders.")]
    let inputs: [InputDecl] = []
    let outputs = [OutputDecl("out", storeKind: "test", doc: "Σ bytes")]
    func run(_ context: StageContext) throws {
        guard case .string(let source) = context.params["source"], case .string(let texts) = context.params["texts"] else {
            throw PipelineError.unhashable(field: "params", type: "not a string")
        }
        var total = 0
        for path in [source] + texts.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            precondition(path.hasPrefix("/"), "file parameters reach the stage as absolute paths")
            let below = FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []
            for file in below.isEmpty ? [path] : below.map({ path + "/" + $0 }) {
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: file, isDirectory: &isFolder), !isFolder.boolValue {
                    total += try Data(contentsOf: URL(fileURLWithPath: file)).count
                }
            }
        }
        try writeScalarStore(Float(total), to: context.outputs["out"]!)
    }
}

private let fileRegistry = StageRegistry([TestConst(), TestScale(), TestBytes()])

/// A project: `a.txt`, `b.txt`, a folder `more/` of two files, and `p.yaml` reading them.
private func project(source: String = "a.txt") throws -> URL {
    let dir = try temporaryDirectory().appendingPathComponent("project")
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("more/sub"), withIntermediateDirectories: true)
    try "alpha\n".write(to: dir.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
    try "beta beta\n".write(to: dir.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)
    try "one\n".write(to: dir.appendingPathComponent("more/x.txt"), atomically: true, encoding: .utf8)
    try "two\n".write(to: dir.appendingPathComponent("more/sub/y.txt"), atomically: true, encoding: .utf8)
    try writeSpec(in: dir, source: source)
    return dir
}

private func writeSpec(in dir: URL, source: String) throws {
    try """
        stages:
          c:
            kind: t/const
          bytes:
            kind: t/bytes
            params:
              source: \(source)
              texts: b.txt, more
          scaled:
            kind: t/scale
            inputs: {x: "${stages.bytes.out}"}
        """.write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
}

private func plan(_ dir: URL, cache: Cache? = nil) throws -> Plan {
    let spec = try Spec.load(url: dir.appendingPathComponent("p.yaml"), displayName: "p.yaml", registry: fileRegistry)
    return try Planner.plan(spec, registry: fileRegistry) { cache?.record($0)?.outputs }
}

private func fingerprints(_ plan: Plan) -> [String: String] {
    Dictionary(uniqueKeysWithValues: plan.nodes.map { ($0.id, $0.fingerprint) })
}

/// sha256sum(1) of the bytes in `data`.
private func sha256sum(_ data: Data) throws -> String {
    let file = try temporaryDirectory().appendingPathComponent("bytes")
    try data.write(to: file)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    process.arguments = [file.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(String(decoding: out, as: UTF8.self).prefix(64))
}

@Test func fileParametersReachTheStageAsAbsolutePathsAndHashAsContent() throws {
    let dir = try project()
    let node = try plan(dir).node("bytes")!
    let root = dir.standardizedFileURL.path
    #expect(node.params["source"] == .string(root + "/a.txt"))
    #expect(node.params["texts"] == .string(root + "/b.txt, " + root + "/more"))
    #expect(node.fileDigests["source"] == (try sha256sum(Data("alpha\n".utf8))))
    // A folder: each file's relative path, NUL, bytes, in sorted path order.
    let folder = try sha256sum(Data("sub/y.txt\u{0}two\nx.txt\u{0}one\n".utf8))
    #expect(try ContentDigest.of(path: root + "/more") == folder)
    // The fingerprint material holds content digests, never the paths.
    let material = String(decoding: try JSONEncoder().encode(node.material), as: UTF8.self)
    #expect(!material.contains(root) && material.contains("content:"))
}

@Test func editingAFileChangesItsStageAndDownstreamOnly() throws {
    let dir = try project()
    let before = fingerprints(try plan(dir))
    // Same size, new bytes: the per-process memo must notice the new modification time.
    try "gamma gamma\n".write(to: dir.appendingPathComponent("b.txt"), atomically: false, encoding: .utf8)
    let afterB = fingerprints(try plan(dir))
    #expect(afterB["c"] == before["c"])
    #expect(afterB["bytes"] != before["bytes"] && afterB["scaled"] != before["scaled"])
    // A file inside a listed folder counts too.
    try "three\n".write(to: dir.appendingPathComponent("more/sub/y.txt"), atomically: false, encoding: .utf8)
    let afterY = fingerprints(try plan(dir))
    #expect(afterY["bytes"] != afterB["bytes"] && afterY["scaled"] != afterB["scaled"] && afterY["c"] == before["c"])
}

@Test func renamingAFileOrMovingTheProjectChangesNothing() throws {
    let dir = try project()
    let before = fingerprints(try plan(dir))
    try FileManager.default.moveItem(at: dir.appendingPathComponent("a.txt"), to: dir.appendingPathComponent("renamed.txt"))
    try writeSpec(in: dir, source: "renamed.txt")
    #expect(fingerprints(try plan(dir)) == before)
    let moved = try temporaryDirectory().appendingPathComponent("elsewhere")
    try FileManager.default.moveItem(at: dir, to: moved)
    #expect(fingerprints(try plan(moved)) == before)
    // An absolute path to the same bytes is the same content.
    try writeSpec(in: moved, source: moved.appendingPathComponent("renamed.txt").path)
    #expect(fingerprints(try plan(moved)) == before)
}

@Test func aMissingFileIsALocatedErrorAndNothingRuns() throws {
    let dir = try project(source: "nope.txt")
    let cache = Cache(root: dir.appendingPathComponent("cache"))
    let spec = try Spec.load(url: dir.appendingPathComponent("p.yaml"), displayName: "p.yaml", registry: fileRegistry)
    var thrown: PipelineError?
    do { _ = try Planner.plan(spec, registry: fileRegistry) { cache.record($0)?.outputs } } catch let e as PipelineError { thrown = e }
    guard case .missingFile(let at, let keyPath, let path, _)? = thrown else {
        Issue.record("expected missingFile, got \(String(describing: thrown))")
        return
    }
    #expect(at.file == "p.yaml" && at.line == 7 && at.column == 15)
    #expect(keyPath == "stages.bytes.params.source" && path == "nope.txt")
    #expect(thrown!.description.contains("p.yaml:7:15") && thrown!.description.contains("no such file"))
    #expect(cache.allRecords().isEmpty)
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("cache").path))
    // A missing entry of a list is located the same way.
    try FileManager.default.removeItem(at: dir.appendingPathComponent("more"))
    try writeSpec(in: dir, source: "a.txt")
    #expect { try plan(dir) } throws: { error in
        guard case .missingFile(let at, let keyPath, let path, _) = error as? PipelineError else { return false }
        return at.line == 8 && keyPath == "stages.bytes.params.texts" && path == "more"
    }
}

@Test func explainNamesTheChangedContent() throws {
    let dir = try project()
    let cache = Cache(root: try temporaryDirectory().appendingPathComponent("cache"))
    let first = try plan(dir, cache: cache)
    let ran = try StageRunner.run(first.node("bytes")!, plan: first, registry: fileRegistry, cache: cache,
                                  threads: 1, toolVersion: "test")
    #expect(try readScalarStore(cache.outputURL(ran.record.fingerprint, "out")) == 6 + 10 + 4 + 4)
    let oldDigest = first.node("bytes")!.fileDigests["texts"]!
    try "beta beta beta\n".write(to: dir.appendingPathComponent("b.txt"), atomically: false, encoding: .utf8)
    let second = try plan(dir, cache: cache)
    let node = second.node("bytes")!
    let newDigest = node.fileDigests["texts"]!
    let text = PlanReport.explain(node, cache: cache)
    #expect(text.contains("params.texts: content \(oldDigest.prefix(12)) -> content \(newDigest.prefix(12))"), "\(text)")
    #expect(!text.contains("params.source"), "\(text)")
    let status = PlanReport.statuses([node], cache: cache)[0]
    #expect(!status.cached && status.reason == "changed: params.texts")
}
