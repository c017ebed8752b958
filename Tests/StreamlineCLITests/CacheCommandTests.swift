// `streamline cache gc` on a cache shared by two specs: the default removes nothing either spec
// could name; --older-than removes what the specs passed do not name; --dry-run only lists.
// `streamline cache import` of a bundle whose record points outside the cache: refused, exit 1.

import Foundation
import StageTestSupport
import Testing

@Suite struct CacheCommandTests {
    @Test func gcKeepsAnotherSpecsEntriesUnlessAskedByAge() throws {
        let dir = try temporaryProject(["a.yaml": "stages:\n  c: {kind: debug/constant, params: {scale: 1}}\n",
                                        "b.yaml": "stages:\n  c: {kind: debug/constant, params: {scale: 2}}\n"])
        let cache = ["--cache", dir.appendingPathComponent("shared").path]
        for spec in ["a.yaml", "b.yaml"] { #expect(try streamline(["run", "-s", spec] + cache, in: dir).status == 0) }
        func entries() throws -> Int { try streamline(["cache", "ls"] + cache, in: dir).stdout.split(separator: "\n").count }

        // The old gc kept only a.yaml's nodes and removed b.yaml's work.
        let plain = try streamline(["cache", "gc", "-s", "a.yaml"] + cache, in: dir)
        #expect(plain.status == 0 && plain.stdout.isEmpty, "\(plain.stdout)\(plain.stderr)")
        #expect(try entries() == 2)

        let young = try streamline(["cache", "gc", "-s", "a.yaml", "--older-than", "1d"] + cache, in: dir)
        #expect(young.stdout.isEmpty)
        #expect(try entries() == 2)
        let kept = try streamline(["cache", "gc", "-s", "a.yaml", "--keep-spec", "b.yaml", "--older-than", "0"] + cache, in: dir)
        #expect(kept.stdout.isEmpty)
        #expect(try entries() == 2)

        let dry = try streamline(["cache", "gc", "-s", "a.yaml", "--older-than", "0", "--dry-run"] + cache, in: dir)
        #expect(dry.stdout.hasPrefix("would remove entries/") && dry.stdout.split(separator: "\n").count == 1, "\(dry.stdout)")
        #expect(try entries() == 2)
        let real = try streamline(["cache", "gc", "-s", "a.yaml", "--older-than", "0"] + cache, in: dir)
        #expect(real.stdout == dry.stdout.replacingOccurrences(of: "would remove", with: "removed"))
        #expect(try entries() == 1)

        let bad = try streamline(["cache", "gc", "--older-than", "soon"] + cache, in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("is not an age"))
    }

    @Test func importRefusesARecordPointingOutsideAndKeepsTheNeighbour() throws {
        let dir = try temporaryProject(["a.yaml": "stages:\n  c: {kind: debug/constant}\n"])
        let source = ["--cache", dir.appendingPathComponent("source").path]
        let target = ["--cache", dir.appendingPathComponent("target").path]
        #expect(try streamline(["run", "-s", "a.yaml"] + source, in: dir).status == 0)
        #expect(try streamline(["cache", "export", "-s", "a.yaml", "-o", "good.tar", "c"] + source, in: dir).status == 0)
        // The bundle of the issue: its record says "fingerprint": "../victim" (target/entries/../../victim).
        let tree = dir.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
        try tar(["-xf", dir.appendingPathComponent("good.tar").path, "-C", tree.path])
        let record = try #require(FileManager.default.subpaths(atPath: tree.path)?.first { $0.hasSuffix("record.json") })
        let url = tree.appendingPathComponent(record)
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        json["fingerprint"] = "../victim"
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        try tar(["-cf", dir.appendingPathComponent("evil.tar").path, "-C", tree.path, "entries"])
        let victim = dir.appendingPathComponent("victim/precious.txt")
        try FileManager.default.createDirectory(at: victim.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: victim)

        let evil = try streamline(["cache", "import", "evil.tar"] + target, in: dir)
        #expect(evil.status == 1 && evil.stderr.contains("names fingerprint '../victim'"), "\(evil.stderr)")
        #expect(FileManager.default.fileExists(atPath: victim.path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("victim.lock").path))
        let good = try streamline(["cache", "import", "good.tar"] + target, in: dir)
        #expect(good.status == 0 && good.stdout.hasPrefix("imported "), "\(good.stderr)")
    }

    private func tar(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar"] + arguments
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
