// The cache: hits and misses counted, corrupt entries are warned misses, gc, bundles, locks.

import Foundation
import Pipeline
import Testing

@Test func aSecondRunIsAllHitsWithCountedLookups() throws {
    let cache = Cache(root: try temporaryDirectory())
    let spec = try parse(documentedDAG)
    let first = try runAll(spec, cache: cache)
    #expect(first.allSatisfy { if case .computed = $0 { true } else { false } })
    let again = try runAll(spec, cache: cache)
    #expect(again.allSatisfy { if case .cached = $0 { true } else { false } })
    // The values flowed through the stores: eval[ratio=0.5] = (2·0.5 + 2)·10.
    let plan = try Planner.plan(spec, registry: testRegistry) { cache.record($0)?.outputs }
    let eval = plan.node("eval[ratio=0.5]")!
    #expect(try readScalarStore(cache.outputURL(eval.fingerprint, "out")) == 30)
    #expect(cache.verify().isEmpty)
}

@Test func aCorruptEntryIsAWarnedMissAndIsRecomputed() throws {
    let cache = Cache(root: try temporaryDirectory())
    let warnings = WarningLog()
    cache.warn = { warnings.append($0) }
    let spec = try parse("stages:\n  s: {kind: t/const, params: {value: 4}}\n")
    let record = try runAll(spec, cache: cache)[0].record
    let before = cache.counts
    // Replace the output with a valid store of other content: the record no longer matches.
    try writeScalarStore(5, to: cache.outputURL(record.fingerprint, "out"))
    #expect(cache.lookup(record.fingerprint) == nil)
    #expect(cache.counts.misses == before.misses + 1)
    #expect(warnings.lines.contains { $0.contains("is damaged") })
    #expect(cache.verify().map(\.fingerprint) == [record.fingerprint])
    let redo = try runAll(spec, cache: cache)[0]
    if case .computed = redo {} else { Issue.record("corrupt entry was not recomputed") }
    #expect(try readScalarStore(cache.outputURL(record.fingerprint, "out")) == 4)
    #expect(cache.verify().isEmpty)
}

@Test func aRunReHashesOnlyTheEntriesItWillRead() throws {
    let cache = Cache(root: try temporaryDirectory())
    let warnings = WarningLog()
    cache.warn = { warnings.append($0) }
    let spec = try parse("stages:\n  a: {kind: t/const, params: {value: 1234.5}}\n  b: {kind: t/scale, inputs: {x: \"${stages.a.out}\"}, params: {factor: 2}}\n")
    try runAll(spec, cache: cache)
    let plan = try Planner.plan(spec, registry: testRegistry) { cache.record($0)?.outputs }
    let (a, b) = (plan.node("a")!, plan.node("b")!)
    // Flip one bit of a's data in place: the index (and so the recorded digest) cannot show it.
    try flipOneBit(of: 1234.5, in: cache.outputURL(a.fingerprint, "out"))
    // b is cached, so nothing reads a: the run uses both entries without re-hashing (verify still finds a).
    #expect(Cache(root: cache.root).usableEntries(of: plan.nodes) == ["a", "b"])
    #expect(cache.verify().map(\.fingerprint) == [a.fingerprint])
    // Without b, a is read: its damage is a warned miss, so both run.
    try FileManager.default.removeItem(at: cache.entryURL(b.fingerprint))
    #expect(cache.usableEntries(of: plan.nodes).isEmpty)
    #expect(warnings.lines.contains { $0.contains(a.fingerprint) && $0.contains("is damaged") })
}

@Test func gcKeepsWhatIsReachedAndRemovesTheRest() throws {
    let cache = Cache(root: try temporaryDirectory())
    try runAll(try parse("stages:\n  s: {kind: t/const, params: {value: 1}}\n"), cache: cache)
    let kept = try runAll(try parse("stages:\n  s: {kind: t/const, params: {value: 2}}\n"), cache: cache)[0].record
    #expect(cache.gc(.removeUnnamed(keep: [kept.fingerprint], olderThan: 0), dryRun: true).count == 1)
    #expect(cache.allRecords().count == 2)
    #expect(cache.gc(.removeUnnamed(keep: [kept.fingerprint], olderThan: 0), dryRun: false).count == 1)
    #expect(cache.allRecords().map(\.fingerprint) == [kept.fingerprint])
}

@Test func bundlesCarryEntriesBetweenCaches() throws {
    let source = Cache(root: try temporaryDirectory())
    let records = try runAll(try parse(documentedDAG), cache: source).map(\.record)
    let bundle = try temporaryDirectory().appendingPathComponent("b.tar")
    try source.export(records.map(\.fingerprint), to: bundle)
    let target = Cache(root: try temporaryDirectory())
    #expect(Set(try target.importBundle(bundle, registry: testRegistry)) == Set(records.map(\.fingerprint)))
    #expect(target.verify().isEmpty)
    #expect(records.allSatisfy { target.lookup($0.fingerprint) == $0 })
    let junk = bundle.deletingLastPathComponent().appendingPathComponent("junk.tar")
    try Data("not a tar file".utf8).write(to: junk)
    #expect(throws: PipelineError.self) { try target.importBundle(junk, registry: testRegistry) }
}

@Test func aLockIsExclusiveAndFreedOnRelease() throws {
    let cache = Cache(root: try temporaryDirectory())
    let held = try cache.lock("ab12")
    // A second open file description in the same process conflicts with flock, like another process.
    let acquired = AcquiredFlag()
    // The lock says it is waiting just after its non-blocking attempt failed: the moment to check.
    let waiting = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
    cache.warn = { line in if line.contains("waiting") { waiting.signal() } }
    let thread = Thread {
        if let l = try? cache.lock("ab12") { acquired.set(); l.release() }
        done.signal()
    }
    thread.start()
    #expect(waiting.wait(timeout: .now() + 30) == .success, "the second lock never waited")
    #expect(!acquired.value)
    held.release()
    #expect(done.wait(timeout: .now() + 30) == .success)
    #expect(acquired.value)
}

final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

final class AcquiredFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.withLock { flag = true } }
    var value: Bool { lock.withLock { flag } }
}

@Test func anEntryWithNoOutputsIsAMissAndVerifyReportsIt() throws {
    let cache = Cache(root: try temporaryDirectory())
    cache.warn = { _ in }
    let spec = try parse("stages:\n  s: {kind: t/const, params: {value: 4}}\n")
    let record = try runAll(spec, cache: cache)[0].record
    try rewriteRecord(cache.entryURL(record.fingerprint)) { $0["outputs"] = [String: String]() }
    #expect(cache.lookup(record.fingerprint) == nil)
    #expect(cache.verify().map(\.problem) == ["the record lists no outputs"])
    // Not "cached": the next run recomputes it, so dependants get their input.
    let redo = try runAll(spec, cache: cache)[0]
    if case .computed = redo {} else { Issue.record("an entry without outputs was used") }
    #expect(cache.verify().isEmpty)
}

@Test func aFlippedByteInTheDataIsAWarnedMissAndIsRecomputed() throws {
    let cache = Cache(root: try temporaryDirectory())
    let warnings = WarningLog()
    cache.warn = { warnings.append($0) }
    let spec = try parse("stages:\n  s: {kind: t/const, params: {value: 1234.5}}\n")
    let record = try runAll(spec, cache: cache)[0].record
    #expect(cache.lookup(record.fingerprint) == record)
    // Flip one bit of the tensor's data in place: the store's index (and so its digest) is unchanged.
    let url = cache.outputURL(record.fingerprint, "out")
    try flipOneBit(of: 1234.5, in: url)
    // The same Cache already verified this entry once; the change is still seen.
    #expect(cache.lookup(record.fingerprint) == nil)
    #expect(warnings.lines.contains { $0.contains("is damaged") && $0.contains("is corrupted") })
    // The index cannot show it: gc finds it only when asked to re-hash.
    #expect(cache.gc(.keepAll, dryRun: true).isEmpty)
    #expect(cache.gc(.keepAll, dryRun: true, rehash: true).first?.contains(record.fingerprint) == true)
    let redo = try runAll(spec, cache: cache)[0]
    if case .computed = redo {} else { Issue.record("a corrupt entry was used") }
    #expect(try readScalarStore(url) == 1234.5)
}

@Test func gcKeepsEveryReadableEntryByDefaultAndOnlyOldUnnamedOnesByAge() throws {
    let cache = Cache(root: try temporaryDirectory())
    cache.warn = { _ in }
    let records = try (1...4).map { value in
        try runAll(try parse("stages:\n  s: {kind: t/const, params: {value: \(value)}}\n"), cache: cache)[0].record
    }
    let (old, young, named, damaged) = (records[0], records[1], records[2], records[3])
    try rewriteRecord(cache.entryURL(damaged.fingerprint)) { $0["outputs"] = [String: String]() }
    let tenDaysAgo = Date().addingTimeInterval(-10 * 86400)
    for rec in [old, named] {
        try FileManager.default.setAttributes([.modificationDate: tenDaysAgo],
                                              ofItemAtPath: cache.entryURL(rec.fingerprint).appendingPathComponent("record.json").path)
    }
    // Scratch of a live process (an import in progress holds no lock) stays; a dead one's goes.
    let scratch = cache.root.appendingPathComponent("scratch")
    let host = ProcessInfo.processInfo.hostName
    for pid in [getpid(), Int32.max - 1] {
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("import.\(host).\(pid)"), withIntermediateDirectories: true)
    }
    #expect(cache.gc(.keepAll, dryRun: true).filter { $0.hasPrefix("scratch/") } == ["scratch/import.\(host).\(Int32.max - 1)"])
    // Default: only what lookup would never use goes.
    var removed = cache.gc(.keepAll, dryRun: false)
    removed.removeAll { $0.hasPrefix("scratch/") }
    #expect(removed.count == 1 && removed[0].contains(damaged.fingerprint) && removed[0].contains("damaged: the record lists no outputs"))
    #expect(Set(cache.allRecords().map(\.fingerprint)) == Set([old, young, named].map(\.fingerprint)))
    // By age: the old entry no spec names; a dry run lists it and removes nothing.
    let policy = Cache.GCPolicy.removeUnnamed(keep: [named.fingerprint], olderThan: 7 * 86400)
    let wouldGo = cache.gc(policy, dryRun: true)
    #expect(wouldGo.count == 1 && wouldGo[0].contains(old.fingerprint))
    #expect(cache.allRecords().count == 3)
    #expect(cache.gc(policy, dryRun: false) == wouldGo)
    #expect(Set(cache.allRecords().map(\.fingerprint)) == Set([young, named].map(\.fingerprint)))
}

/// Flips the lowest bit of the first float equal to `value` in the file, in place (same size and index).
private func flipOneBit(of value: Float, in url: URL) throws {
    let pattern = withUnsafeBytes(of: value.bitPattern.littleEndian) { Data($0) }
    let at = try #require(try Data(contentsOf: url).range(of: pattern)).lowerBound
    let handle = try FileHandle(forUpdating: url)
    try handle.seek(toOffset: UInt64(at))
    try handle.write(contentsOf: Data([pattern[0] ^ 1]))
    try handle.close()
}
