// `streamline cache gc` on a cache shared by two specs: the default removes nothing either spec
// could name; --older-than removes what the specs passed do not name; --dry-run only lists.

import Foundation
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
}
