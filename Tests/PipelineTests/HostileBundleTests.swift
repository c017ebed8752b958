// The hostile-bundle corpus: every shape of bundle an attacker (or a damaged disk) could hand to
// `cache import`, built here at test time. Each must be refused with a clear error, leave the target
// cache exactly as it was, and touch nothing beside it (a `victim` folder and file wait there).

import Foundation
import Pipeline
import Testing

@Suite struct HostileBundleTests {
    /// A target cache with one entry of its own, a victim folder beside it, and a source cache with
    /// two genuine t/const entries (values 4 and 5) to build bundles from.
    struct Setup {
        let dir: URL
        let target: Cache
        let source: Cache
        let four: CacheRecord
        let five: CacheRecord
        var victim: URL { dir.appendingPathComponent("victim") }

        init() throws {
            dir = try temporaryDirectory()
            target = Cache(root: dir.appendingPathComponent("cache"))
            target.warn = { _ in }
            try runAll(try parse("stages:\n  s: {kind: t/const, params: {value: 3}}\n"), cache: target)
            source = Cache(root: dir.appendingPathComponent("source"))
            four = try runAll(try parse("stages:\n  s: {kind: t/const, params: {value: 4}}\n"), cache: source)[0].record
            five = try runAll(try parse("stages:\n  s: {kind: t/const, params: {value: 5}}\n"), cache: source)[0].record
            try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
            try Data("keep me".utf8).write(to: victim.appendingPathComponent("precious.txt"))
        }

        /// A copy of the source cache's entries to doctor before packing it with `tar`.
        func tree() throws -> URL {
            let tree = dir.appendingPathComponent("tree-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: source.root.appendingPathComponent("entries"), to: tree.appendingPathComponent("entries"))
            return tree
        }

        func entry(_ tree: URL, _ rec: CacheRecord) -> URL {
            tree.appendingPathComponent("entries/\(rec.fingerprint.prefix(2))/\(rec.fingerprint)")
        }

        /// Packs `tree` with the system tar (GNU or bsdtar, as `cache export` does), `extra` = e.g. ["-z"].
        func pack(_ tree: URL, _ extra: [String] = []) throws -> URL {
            let bundle = dir.appendingPathComponent("bundle-\(UUID().uuidString).tar")
            try runTool("tar", ["-cf", bundle.path] + extra + ["-C", tree.path, "entries"])
            return bundle
        }

        /// Imports `bundle` and checks that it is refused with `expected` in the message and that the
        /// target cache and the victim are exactly as before.
        func expectRefused(_ bundle: URL, _ expected: String, limits: BundleLimits = .standard,
                           sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
            let before = try snapshot(target.root), victimBefore = try snapshot(victim)
            let outside = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            do {
                _ = try target.importBundle(bundle, registry: testRegistry, limits: limits)
                Issue.record("bundle was imported, expected refusal with '\(expected)'", sourceLocation: sourceLocation)
            } catch let error as PipelineError {
                guard case .badBundle = error else {
                    Issue.record("expected badBundle, got \(error)", sourceLocation: sourceLocation)
                    return
                }
                #expect(error.description.contains(expected), "\(error)", sourceLocation: sourceLocation)
            }
            #expect(try snapshot(target.root) == before, "the target cache changed", sourceLocation: sourceLocation)
            #expect(try snapshot(victim) == victimBefore, "the victim changed", sourceLocation: sourceLocation)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == outside,
                    "something appeared beside the cache", sourceLocation: sourceLocation)
        }
    }

    // MARK: Names

    @Test func aRecordNamingAPathOutsideDeletesNothing() throws {
        let s = try Setup()
        let tree = try s.tree()
        // Old import built lock and entry paths from this: it removed ../victim and made victim.lock.
        try rewriteRecord(s.entry(tree, s.four)) { $0["fingerprint"] = "../victim"; $0["outputs"] = [String: String]() }
        try FileManager.default.removeItem(at: s.entry(tree, s.four).appendingPathComponent("out.h5"))
        try s.expectRefused(try s.pack(tree), "names fingerprint '../victim'")
    }

    @Test func memberNamesOutsideTheLayoutAreRefused() throws {
        let s = try Setup()
        let fp = s.four.fingerprint
        for (name, why) in [("../victim/x", "not a cache entry file"), ("/tmp/streamline-abs", "not a cache entry file"),
                            ("entries/\(fp.prefix(2))/../../victim/x", "not a cache entry file"),
                            ("entries/\(fp.prefix(2))/\(fp)/../../x.h5", "not a cache entry file"),
                            ("entries/zz/\(fp)/record.json", "not a cache entry file"),
                            ("entries/\(fp.prefix(2))/\(fp.uppercased())/record.json", "not a cache entry file"),
                            ("entries/\(fp.prefix(2))/\(fp)/.hidden.h5", "not a cache entry file"),
                            ("README", "not a cache entry file")] {
            try s.expectRefused(try writeTar(s.dir, [TarMember(name: name, data: Array("x".utf8))]), why)
        }
    }

    // MARK: File types and modes

    @Test func symlinkedEntryFoldersAndOutputsAreRefused() throws {
        let s = try Setup()
        let folder = try s.tree()
        let entry = s.entry(folder, s.four)
        try FileManager.default.removeItem(at: entry)
        try FileManager.default.createSymbolicLink(at: entry, withDestinationURL: s.victim)
        try s.expectRefused(try s.pack(folder), "symbolic link")

        let output = try s.tree()
        let out = s.entry(output, s.four).appendingPathComponent("out.h5")
        try FileManager.default.removeItem(at: out)
        try FileManager.default.createSymbolicLink(at: out, withDestinationURL: s.victim.appendingPathComponent("precious.txt"))
        try s.expectRefused(try s.pack(output), "symbolic link")

        // A target longer than a tar header's 100 bytes comes first as GNU's long link record ('K').
        let far = try s.tree()
        let farEntry = s.entry(far, s.four)
        try FileManager.default.removeItem(at: farEntry)
        try FileManager.default.createSymbolicLink(atPath: farEntry.path,
                                                   withDestinationPath: s.victim.path + "/" + String(repeating: "d", count: 120))
        try s.expectRefused(try s.pack(far, ["--format=gnu"]), "symbolic link")

        let fp = s.four.fingerprint
        try s.expectRefused(try writeTar(s.dir, [TarMember(name: "entries/\(fp.prefix(2))/\(fp)/out.h5", type: "1",
                                                           link: "../../../victim/precious.txt")]), "hard link")
    }

    @Test func setuidFilesAreRefused() throws {
        let s = try Setup()
        let tree = try s.tree()
        let out = s.entry(tree, s.four).appendingPathComponent("out.h5")
        #expect(chmod(out.path, 0o4755) == 0)
        try s.expectRefused(try s.pack(tree), "setuid or setgid")
        #expect(chmod(out.path, 0o2755) == 0)
        try s.expectRefused(try s.pack(tree), "setuid or setgid")
    }

    @Test func fifosAndDeviceNodesAreRefusedWithoutOpeningThem() throws {
        let s = try Setup()
        let tree = try s.tree()
        let out = s.entry(tree, s.four).appendingPathComponent("out.h5")
        try FileManager.default.removeItem(at: out)
        #expect(mkfifo(out.path, 0o644) == 0)
        // Old import hung here for ever: publishing fsyncs every file, and opening a FIFO blocks.
        try s.expectRefused(try s.pack(tree), "FIFO")

        try FileManager.default.removeItem(at: out)
        let fp = s.four.fingerprint
        // A real device node when we may make one (root), else the same member written by hand.
        if mknod(out.path, S_IFCHR | 0o644, 1 << 8 | 3) == 0 {
            try s.expectRefused(try s.pack(tree), "character device")
        }
        try s.expectRefused(try writeTar(s.dir, [TarMember(name: "entries/\(fp.prefix(2))/\(fp)/out.h5", type: "4")]), "block device")

        // A FIFO given as the bundle itself is refused at once, not waited on.
        let fifo = s.dir.appendingPathComponent("fifo.tar")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        try s.expectRefused(fifo, "not a regular file")
    }

    // MARK: Size

    @Test func decompressionBombsStopAtTheLimit() throws {
        let s = try Setup()
        let tree = try s.tree()
        // 32 MiB of zeros that gzip packs into ~32 KB; the limit is 8 MiB.
        let out = s.entry(tree, s.four).appendingPathComponent("out.h5")
        try Data(count: 32 << 20).write(to: out)
        let bundle = try s.pack(tree, ["-z"])
        let packed = try FileManager.default.attributesOfItem(atPath: bundle.path)[.size] as? Int ?? .max
        #expect(packed < 1 << 20)
        let started = Date()
        try s.expectRefused(bundle, "unpacks to more than 8388608 bytes", limits: BundleLimits(maxBytes: 8 << 20))
        #expect(Date().timeIntervalSince(started) < 5)

        // A header that claims 8 GiB is refused from the header alone: the archive holds no such data.
        let fp = s.four.fingerprint
        try s.expectRefused(try writeTar(s.dir, [TarMember(name: "entries/\(fp.prefix(2))/\(fp)/out.h5", size: 1 << 33 - 1)]),
                            "unpacks to more than", limits: BundleLimits(maxBytes: 1 << 30))
        // So are archives of too many members.
        let many = (0..<20).map { TarMember(name: "entries/\(fp.prefix(2))/\(fp)/o\($0).h5") }
        try s.expectRefused(try writeTar(s.dir, many), "more than 10 members", limits: BundleLimits(maxBytes: 1 << 20, maxMembers: 10))
    }

    // MARK: Poisoned entries

    @Test func aRelabelledEntryIsRefused() throws {
        let s = try Setup()
        let tree = try s.tree()
        // Entry "4" moved under a fingerprint its record does not give (here: entry 5's, rewritten).
        let fake = s.five.fingerprint
        try FileManager.default.removeItem(at: s.entry(tree, s.five))
        try FileManager.default.moveItem(at: s.entry(tree, s.four), to: s.entry(tree, s.five))
        try rewriteRecord(s.entry(tree, s.five)) { $0["fingerprint"] = fake }
        try s.expectRefused(try s.pack(tree), "relabelled or edited")
    }

    @Test func anotherStagesOutputUnderAGenuineRecordIsRefused() throws {
        let s = try Setup()
        let tree = try s.tree()
        let out = s.entry(tree, s.four).appendingPathComponent("out.h5")
        try FileManager.default.removeItem(at: out)
        try FileManager.default.copyItem(at: s.entry(tree, s.five).appendingPathComponent("out.h5"), to: out)
        try s.expectRefused(try s.pack(tree), "output 'out' has digest")

        // The same with the record edited to list it, digest and all, as an output the kind lacks.
        let renamed = try s.tree()
        let entry = s.entry(renamed, s.four)
        try FileManager.default.removeItem(at: entry.appendingPathComponent("out.h5"))
        try FileManager.default.copyItem(at: s.entry(renamed, s.five).appendingPathComponent("out.h5"),
                                         to: entry.appendingPathComponent("model.h5"))
        try rewriteRecord(entry) { $0["outputs"] = ["model": s.five.outputs["out"]!] }
        try s.expectRefused(try s.pack(renamed), "lists outputs [model], kind 't/const' declares [out]")
    }

    @Test func entriesWithMissingOrExtraOutputsAreRefused() throws {
        let s = try Setup()
        let none = try s.tree()
        try rewriteRecord(s.entry(none, s.four)) { $0["outputs"] = [String: String]() }
        try FileManager.default.removeItem(at: s.entry(none, s.four).appendingPathComponent("out.h5"))
        try s.expectRefused(try s.pack(none), "lists outputs [], kind 't/const' declares [out]")

        let missing = try s.tree()
        try FileManager.default.removeItem(at: s.entry(missing, s.four).appendingPathComponent("out.h5"))
        try s.expectRefused(try s.pack(missing), "output 'out'")

        let extra = try s.tree()
        try FileManager.default.copyItem(at: s.entry(extra, s.four).appendingPathComponent("out.h5"),
                                         to: s.entry(extra, s.four).appendingPathComponent("payload.h5"))
        try s.expectRefused(try s.pack(extra), "'payload.h5' is not one of its outputs")
    }

    @Test func oneBadEntryKeepsTheGoodOnesOut() throws {
        let s = try Setup()
        let tree = try s.tree()
        // Entry 5 is genuine; entry 4 is not. Nothing may be published.
        try FileManager.default.removeItem(at: s.entry(tree, s.four).appendingPathComponent("out.h5"))
        try s.expectRefused(try s.pack(tree), "output 'out'")
        #expect(s.target.lookup(s.five.fingerprint) == nil)
    }

    @Test func malformedArchivesAreRefused() throws {
        let s = try Setup()
        let fp = s.four.fingerprint
        let name = "entries/\(fp.prefix(2))/\(fp)/record.json"
        try s.expectRefused(try writeTar(s.dir, [TarMember(name: name), TarMember(name: name)]), "appears twice")
        var truncated = try Data(contentsOf: try writeTar(s.dir, [TarMember(name: name, data: Array(repeating: 65, count: 2000))]))
        truncated.removeLast(2000)
        let cut = s.dir.appendingPathComponent("cut.tar")
        try truncated.write(to: cut)
        try s.expectRefused(cut, "truncated")
        try s.expectRefused(try writeTar(s.dir, []), "holds no cache entry")
        let junk = s.dir.appendingPathComponent("junk.tar")
        try Data("not a tar file".utf8).write(to: junk)
        try s.expectRefused(junk, "not a tar archive")
        try Data([0x1f, 0x8b] + Array("not gzip data either".utf8)).write(to: junk)
        try s.expectRefused(junk, "gzip could not decompress it")
    }

    /// The genuine bundle still goes in, compressed or not, and the refusals above were not luck.
    @Test func aGenuineBundleIsImported() throws {
        let s = try Setup()
        // Every format and compression `tar` may write: extended (pax) headers are read, not refused.
        for (i, extra) in [[], ["-z"], ["-J"], ["-j"], ["--format=pax"], ["--format=ustar"], ["--format=gnu"]].enumerated() {
            let target = Cache(root: s.dir.appendingPathComponent("fresh-\(i)"))
            let tree = try s.tree()
            #expect(chmod(s.entry(tree, s.five).appendingPathComponent("out.h5").path, 0o777) == 0)
            let fps = try target.importBundle(try s.pack(tree, extra), registry: testRegistry)
            #expect(Set(fps) == [s.four.fingerprint, s.five.fingerprint])
            #expect(target.verify().isEmpty)
            #expect(try readScalarStore(target.outputURL(s.five.fingerprint, "out")) == 5)
            // Modes come from Streamline (0644 less the umask), not from the archive's 0777.
            let mode = try FileManager.default.attributesOfItem(atPath: target.outputURL(s.five.fingerprint, "out").path)[.posixPermissions]
            #expect((mode as? Int).map { $0 & ~0o644 } == 0)
        }
    }
}

// MARK: - Helpers

/// Every path under `root` (not following links) with its type, size and permissions.
func snapshot(_ root: URL) throws -> [String] {
    let fm = FileManager.default
    guard fm.fileExists(atPath: root.path) else { return [] }
    return try fm.subpathsOfDirectory(atPath: root.path).sorted().map { path in
        let a = try fm.attributesOfItem(atPath: root.appendingPathComponent(path).path)
        return "\(path) \(a[.type]!) \(a[.size]!) \(a[.posixPermissions]!)"
    }
}

/// Decodes an entry's record.json as a dictionary, lets `edit` change it, and writes it back.
func rewriteRecord(_ entry: URL, _ edit: (inout [String: Any]) -> Void) throws {
    let url = entry.appendingPathComponent("record.json")
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    edit(&json)
    try JSONSerialization.data(withJSONObject: json).write(to: url)
}

func runTool(_ tool: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(tool) \(arguments) failed")
}

/// One member of a hand-made tar archive: any name, type, mode and (declared) size.
struct TarMember {
    var name: String
    var type: Character = "0"
    var mode = 0o644
    var data: [UInt8] = []
    var link = ""
    /// The size the header claims (default: the data's); the data written is `data` either way.
    var size: Int64?
}

/// Writes a POSIX ustar archive of `members`.
func writeTar(_ dir: URL, _ members: [TarMember]) throws -> URL {
    var out: [UInt8] = []
    for m in members {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ at: Int, _ width: Int) { for (i, b) in text.utf8.prefix(width).enumerated() { h[at + i] = b } }
        func octal(_ v: Int64, _ at: Int, _ width: Int) { put(String(String(v, radix: 8).suffix(width - 1)).leftPad(width - 1), at, width) }
        let name = Array(m.name.utf8)
        if name.count > 100 {
            let cut = name[..<min(155, name.count - 1)].lastIndex(of: UInt8(ascii: "/"))!
            put(String(decoding: name[..<cut], as: UTF8.self), 345, 155)
            put(String(decoding: name[(cut + 1)...], as: UTF8.self), 0, 100)
        } else {
            put(m.name, 0, 100)
        }
        octal(Int64(m.mode), 100, 8); octal(0, 108, 8); octal(0, 116, 8)
        octal(m.size ?? Int64(m.data.count), 124, 12); octal(0, 136, 12)
        h[156] = m.type.asciiValue!
        put(m.link, 157, 100)
        put("ustar\0", 257, 6); put("00", 263, 2)
        for i in 148..<156 { h[i] = 32 }
        octal(Int64(h.reduce(0) { $0 + Int($1) }), 148, 7)
        out += h + m.data + [UInt8](repeating: 0, count: (512 - m.data.count % 512) % 512)
    }
    out += [UInt8](repeating: 0, count: 1024)
    let url = dir.appendingPathComponent("hand-\(UUID().uuidString).tar")
    try Data(out).write(to: url)
    return url
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
