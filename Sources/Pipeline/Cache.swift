// The content-addressed cache: one entry per fingerprint, sharded by its first two hex digits.
//
//     CACHE/entries/ab/abcd…/record.json   what produced it, output digests, host, times, memory
//     CACHE/entries/ab/abcd…/OUTPUT.h5     one tensor store per declared output
//     CACHE/entries/ab/abcd…/log.txt       the stage's log
//     CACHE/locks/ab/abcd….lock            per-fingerprint lock (flock), holder "pid host" inside
//     CACHE/scratch/abcd….HOST.PID/        work in progress; never read, removed later
//     CACHE/resume/abcd….h5                a stopped stage's state to continue from; removed on publish
//     CACHE/logs/abcd….log                 the latest attempt's log, kept when a stage fails
//     CACHE/logs/slurm/ID.JOB.out|err      a Slurm job's stdout and stderr (Slurm/SlurmExecutor.swift)
//     CACHE/runs/RUN.json                  what a Slurm run submitted (Slurm/SlurmRunRecord.swift)
//
// Writes are atomic (scratch folder, fsync, rename); reads are suspicious (a hit re-hashes every
// output's data, once per run, and compares it with the record; a mismatch is a warned miss).
// Paths are built only from names checked to be 64-hex fingerprints; bundles are unpacked by
// BundleReader.swift and checked entry by entry before anything is published. This file knows
// nothing about how stages are scheduled.

import Foundation
import TensorStore

/// What the cache keeps about one finished node (read a record.json with `init(json:)`).
public struct CacheRecord: Codable, Sendable, Equatable {
    public var fingerprint: String
    /// The node id and stage name it was produced for (informational; not part of the key).
    public var id: String
    public var stage: String
    public var kind: String
    public var version: Int
    public var params: [String: ParamValue]
    /// File parameter name → content digest (`PlanNode.fileDigests`), for explaining re-runs.
    public var fileDigests: [String: String] = [:]
    public var seed: UInt64
    public var inputs: [PlanInput]
    /// Output name → store digest.
    public var outputs: [String: String]
    public var toolVersion: String
    public var host: String
    public var pid: Int32
    /// ISO 8601 UTC.
    public var started: String
    public var finished: String
    public var peakMemoryBytes: Int
}

extension CacheRecord {
    /// Reads a record.json. A record written before ParamValue kept its type has an integral double
    /// as a bare `2` and says "double" in `paramTypes`; without that its fingerprint check would fail.
    public init(json: Data) throws {
        self = try JSONDecoder().decode(CacheRecord.self, from: json)
        struct Legacy: Decodable { var paramTypes: [String: String]? }
        for (name, type) in try JSONDecoder().decode(Legacy.self, from: json).paramTypes ?? [:] where type == "double" {
            if let number = params[name]?.number { params[name] = .double(number) }
        }
    }
}

extension CacheRecord {
    /// The fingerprint the record's own fields give; a genuine record's equals `fingerprint`.
    public func recomputedFingerprint() throws -> String {
        try Pipeline.fingerprint(of: FingerprintMaterial(kind: kind, version: version, params: params, fileDigests: fileDigests,
                                                         inputs: inputs, seed: seed))
    }
}

/// A held per-fingerprint lock; released by `release()` or when the process dies (flock semantics:
/// the kernel drops a dead holder's lock, so a crashed holder is taken over without any clean-up).
public final class CacheLock: @unchecked Sendable {
    private var fd: Int32
    init(fd: Int32) { self.fd = fd }
    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }
    deinit { release() }
}

public final class Cache: @unchecked Sendable {
    public let root: URL
    /// Called with a one-line warning (corrupt entry, waiting for a lock held elsewhere).
    public var warn: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("warning: " + $0 + "\n").utf8)) }
    private let counter = NSLock()
    private var hitCount = 0
    private var missCount = 0
    /// Fingerprint → the identity of its output files when they were last re-hashed by this instance.
    private var verified: [String: [FileIdentity?]] = [:]

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// Hits and misses counted by `lookup`.
    public var counts: (hits: Int, misses: Int) {
        counter.lock(); defer { counter.unlock() }
        return (hitCount, missCount)
    }

    public func entryURL(_ fp: String) -> URL {
        root.appendingPathComponent("entries/\(fp.prefix(2))/\(fp)", isDirectory: true)
    }
    public func outputURL(_ fp: String, _ output: String) -> URL { entryURL(fp).appendingPathComponent("\(output).h5") }
    public func logURL(_ fp: String) -> URL { root.appendingPathComponent("logs/\(fp).log") }
    /// The resume point of `fp` (GracefulStop.swift, ResumePoint): read and written under its lock.
    public func resumeURL(_ fp: String) -> URL { root.appendingPathComponent("resume/\(fp).h5") }

    /// The record of an entry, unverified (cheap: one small JSON file); nil when absent or unreadable.
    public func record(_ fp: String) -> CacheRecord? {
        guard let data = FileManager.default.contents(atPath: entryURL(fp).appendingPathComponent("record.json").path)
        else { return nil }
        return try? CacheRecord(json: data)
    }

    /// The verified record of an entry: every output's data is re-hashed and its store digest must
    /// equal the recorded one. A damaged entry is reported through `warn` and counted as a miss.
    /// `rehash: false` checks the index only (for listings such as `status`, never before use).
    ///
    /// Cost, measured with `streamline bench store` (debug build, 2 busy cores): re-hashing a 538 MB
    /// store takes 0.71 s (754 MB/s), its index 9.8 ms. So an entry is re-hashed once per Cache
    /// instance (one runner, one stage process) while its files keep inode, size and change time:
    /// a run pays about 1.3 s per GB it reads, a stage once more for the inputs it reads anyway.
    public func lookup(_ fp: String, rehash: Bool = true) -> CacheRecord? {
        let found: CacheRecord?
        if let rec = record(fp) {
            let files = rec.outputs.keys.sorted().map { FileIdentity(outputURL(fp, $0)) }
            let known = !rehash || counter.withLock { verified[fp] == files && !files.contains(nil) }
            if let problem = rec.fingerprint != fp ? "record names fingerprint \(rec.fingerprint)" : problem(in: rec, deep: !known) {
                warn(PipelineError.corruptEntry(fingerprint: fp, detail: problem).description)
                found = nil
            } else {
                if rehash { counter.withLock { verified[fp] = files } }
                found = rec
            }
        } else {
            found = nil
        }
        counter.lock()
        if found != nil { hitCount += 1 } else { missCount += 1 }
        counter.unlock()
        return found
    }

    /// The ids of `nodes` (a plan closure) whose entries a run can use without computing them.
    /// Only entries that a stage of this run will read are re-hashed (once, as `lookup` does): a fully
    /// cached re-run reads no data, so it checks the index alone and costs milliseconds, not a second
    /// per GB. A damaged entry that would be read is a warned miss and joins the work, and then the
    /// entries it reads are checked in turn. Entries no one reads are left to `cache verify`.
    public func usableEntries(of nodes: [PlanNode]) -> Set<String> {
        var usable = Set(nodes.filter { lookup($0.fingerprint, rehash: false) != nil }.map(\.id))
        let byID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var checked = Set<String>()
        var toRun = nodes.filter { !usable.contains($0.id) }
        while let node = toRun.popLast() {
            for input in node.inputs where usable.contains(input.upstream) && !checked.contains(input.upstream) {
                checked.insert(input.upstream)
                guard let upstream = byID[input.upstream], lookup(upstream.fingerprint) == nil else { continue }
                usable.remove(upstream.id)
                toRun.append(upstream)
            }
        }
        return usable
    }

    /// What is wrong with an entry, or nil. `deep` re-hashes every tensor instead of the index only.
    func problem(in rec: CacheRecord, deep: Bool) -> String? {
        // No stage kind has zero outputs: such an entry would be a hit that dependants cannot read.
        if rec.outputs.isEmpty { return "the record lists no outputs" }
        for (name, recorded) in rec.outputs.sorted(by: { $0.key < $1.key }) {
            let url = outputURL(rec.fingerprint, name)
            do {
                let reader = try TensorStoreReader(url: url)
                if reader.digest != recorded || reader.recordedDigest != recorded {
                    return "output '\(name)' has digest \(reader.digest.prefix(12)), the record says \(recorded.prefix(12))"
                }
                if deep { try reader.verify() }
            } catch {
                return "output '\(name)': \(error)"
            }
        }
        return nil
    }

    /// Every folder under entries/<shard>/, whatever it holds, sorted by name.
    func entryFolders() -> [(name: String, url: URL)] {
        let entries = root.appendingPathComponent("entries")
        let shards = (try? FileManager.default.contentsOfDirectory(atPath: entries.path)) ?? []
        return shards.flatMap { shard -> [(name: String, url: URL)] in
            let dir = entries.appendingPathComponent(shard)
            return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).map { ($0, dir.appendingPathComponent($0)) }
        }.sorted { $0.name < $1.name }
    }

    /// Every entry's record, sorted by stage then id. Only records that name their own folder: a
    /// record's fingerprint is never used to build a path before that check.
    public func allRecords() -> [CacheRecord] {
        entryFolders().map(\.name).filter(isFingerprint).compactMap { fp in record(fp).flatMap { $0.fingerprint == fp ? $0 : nil } }
            .sorted { ($0.stage, $0.id, $0.fingerprint) < ($1.stage, $1.id, $1.fingerprint) }
    }

    /// The fingerprint of the single entry starting with `prefix`.
    public func resolve(prefix: String) throws -> String {
        let matches = allRecords().map(\.fingerprint).filter { $0.hasPrefix(prefix.lowercased()) }
        guard matches.count == 1 else { throw PipelineError.noSuchEntry(fingerprint: prefix) }
        return matches[0]
    }

    /// Re-hashes every entry; (fingerprint, problem) for each damaged one. Unreadable records count too.
    public func verify() -> [(fingerprint: String, problem: String)] {
        entryFolders().compactMap { folder in damage(folder, deep: true).map { (folder.name, $0) } }
    }

    /// What is wrong with an entry folder, or nil; `deep` re-hashes the data.
    func damage(_ folder: (name: String, url: URL), deep: Bool) -> String? {
        let fp = folder.name
        guard isFingerprint(fp), folder.url == entryURL(fp) else { return "the folder name is not a fingerprint of its shard" }
        guard let rec = record(fp) else { return "record.json missing or unreadable" }
        if rec.fingerprint != fp { return "record names fingerprint \(rec.fingerprint)" }
        return problem(in: rec, deep: deep)
    }

    // MARK: Locks

    /// Blocks until this process holds the lock of `fp`. Writes "pid host" into the lock file so a
    /// waiter can say whom it waits for.
    public func lock(_ fp: String) throws -> CacheLock {
        try requireSafeName(fp, fingerprint: false)
        let url = root.appendingPathComponent("locks/\(fp.prefix(2))/\(fp).lock")
        try makeDirectory(url.deletingLastPathComponent())
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PipelineError.io(operation: "open lock", path: url.path, detail: errnoText()) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            warn("stage \(fp.prefix(12)) is being computed by \(holder.map { "pid/host \($0)" } ?? "another process"); waiting")
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    close(fd)
                    throw PipelineError.io(operation: "lock", path: url.path, detail: errnoText())
                }
            }
        }
        ftruncate(fd, 0)
        let holder = "\(getpid()) \(hostName())\n"
        _ = holder.withCString { write(fd, $0, strlen($0)) }
        return CacheLock(fd: fd)
    }

    /// Whether some process holds the lock of `fp` right now (a stage is being computed).
    public func isLocked(_ fp: String) -> Bool {
        let url = root.appendingPathComponent("locks/\(fp.prefix(2))/\(fp).lock")
        let fd = open(url.path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
        return true
    }

    // MARK: Publishing

    /// A fresh scratch folder for `fp`. Call with the lock of `fp` held: any older scratch of the same
    /// fingerprint belongs to a dead attempt and is removed.
    public func makeScratch(_ fp: String) throws -> URL {
        let dir = root.appendingPathComponent("scratch")
        try makeDirectory(dir)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix(fp + ".") {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(name))
        }
        let url = dir.appendingPathComponent("\(fp).\(hostName()).\(getpid())", isDirectory: true)
        try makeDirectory(url)
        return url
    }

    /// Moves a complete scratch folder into place as the entry of `fp`: fsync every file and the
    /// folder, then one rename. A damaged entry already there is moved aside first.
    public func publish(scratch: URL, fingerprint fp: String) throws {
        try requireSafeName(fp, fingerprint: true)
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: scratch.path) { try fsyncPath(scratch.appendingPathComponent(name)) }
        try fsyncPath(scratch)
        let dest = entryURL(fp)
        try makeDirectory(dest.deletingLastPathComponent())
        if fm.fileExists(atPath: dest.path) {
            let aside = root.appendingPathComponent("scratch/\(fp).replaced.\(getpid())")
            try? fm.removeItem(at: aside)
            try? fm.moveItem(at: dest, to: aside)
            try? fm.removeItem(at: aside)
        }
        guard rename(scratch.path, dest.path) == 0 else {
            throw PipelineError.io(operation: "publish", path: dest.path, detail: errnoText())
        }
        try fsyncPath(dest.deletingLastPathComponent())
    }

    /// Paths are built from fingerprints: refuse anything but hex (with `fingerprint`, exactly 64 digits),
    /// so no name can reach outside the cache.
    private func requireSafeName(_ fp: String, fingerprint: Bool) throws {
        guard fingerprint ? isFingerprint(fp) : isLowercaseHex(fp) else {
            throw PipelineError.io(operation: "use the cache entry name", path: fp,
                                   detail: "not \(fingerprint ? "a fingerprint (64 lowercase hex digits)" : "lowercase hex")")
        }
    }

    // MARK: Garbage collection

    /// Which undamaged entries `gc` removes.
    public enum GCPolicy: Sendable, Equatable {
        /// None: a shared cache holds other specs' work and other `-p` values' (the default).
        case keepAll
        /// Entries not in `keep` whose record.json was written more than `olderThan` seconds ago
        /// (0: every entry not in `keep`, whatever its age).
        case removeUnnamed(keep: Set<String>, olderThan: TimeInterval)
    }

    /// Removes damaged entries (no readable record, a record naming another fingerprint, no outputs,
    /// an output missing or disagreeing with its index: what `lookup` never uses), the entries
    /// `policy` selects, scratch folders no live process owns, and resume points that are stale (their
    /// entry is published), cut short, or (by `policy`) unnamed and old. Entries being computed are left
    /// alone. `rehash` also re-hashes every entry's data (as `verify` does) to find damage the index
    /// cannot show. Returns what was (with `dryRun`, would be) removed, as cache-relative paths with why.
    public func gc(_ policy: GCPolicy, dryRun: Bool, rehash: Bool = false, now: Date = Date()) -> [String] {
        let fm = FileManager.default
        var removed: [String] = []
        for folder in entryFolders() {
            let relative = "entries/\(folder.url.deletingLastPathComponent().lastPathComponent)/\(folder.name)"
            if isLowercaseHex(folder.name), isLocked(folder.name) { continue }
            var why = damage(folder, deep: rehash).map { "damaged: \($0)" }
            if why == nil, case .removeUnnamed(let keep, let age) = policy, !keep.contains(folder.name) {
                let written = (try? fm.attributesOfItem(atPath: folder.url.appendingPathComponent("record.json").path))?[.modificationDate] as? Date
                let seconds = now.timeIntervalSince(written ?? .distantPast)
                if seconds >= age { why = "\(record(folder.name)?.id ?? "?"), not named, \(String(format: "%.1f", seconds / 86400)) days old" }
            }
            guard let why else { continue }
            removed.append("\(relative)  \(why)")
            if !dryRun { try? fm.removeItem(at: folder.url) }
        }
        let scratch = root.appendingPathComponent("scratch")
        for name in ((try? fm.contentsOfDirectory(atPath: scratch.path)) ?? []).sorted() {
            let fp = String(name.prefix { $0 != "." })
            guard !isLocked(fp), !isOwnedByLiveProcess(name) else { continue }
            removed.append("scratch/\(name)")
            if !dryRun { try? fm.removeItem(at: scratch.appendingPathComponent(name)) }
        }
        // Resume points are hours of training: kept unless their entry is published, a write was
        // cut short, or the policy removes unnamed work of that age.
        let resume = root.appendingPathComponent("resume")
        for name in ((try? fm.contentsOfDirectory(atPath: resume.path)) ?? []).sorted() {
            let fp = String(name.prefix { $0 != "." })
            guard isFingerprint(fp), !isLocked(fp) else { continue }
            let url = resume.appendingPathComponent(name)
            var why: String?
            if name != "\(fp).h5" {
                why = "an unfinished write"
            } else if record(fp) != nil {
                why = "its entry is published"
            } else if case .removeUnnamed(let keep, let age) = policy, !keep.contains(fp) {
                let written = (try? fm.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
                let seconds = now.timeIntervalSince(written ?? .distantPast)
                if seconds >= age { why = "not named, \(String(format: "%.1f", seconds / 86400)) days old" }
            }
            guard let why else { continue }
            removed.append("resume/\(name)  \(why)")
            if !dryRun { try? fm.removeItem(at: url) }
        }
        return removed
    }

    /// Whether a scratch name `PREFIX.HOST.PID` belongs to a live process of this host (an import
    /// in progress holds no fingerprint lock while it unpacks and checks).
    private func isOwnedByLiveProcess(_ name: String) -> Bool {
        let suffix = ".\(hostName()).", parts = name.split(separator: ".")
        guard let pid = parts.last.flatMap({ Int32($0) }), name.hasSuffix(suffix + String(pid)) else { return false }
        return pid == getpid() || kill(pid, 0) == 0 || errno == EPERM
    }

    // MARK: Bundles

    /// Packs the entries of `fingerprints` into one tar file at `bundle`.
    public func export(_ fingerprints: [String], to bundle: URL) throws {
        for fp in fingerprints where lookup(fp) == nil { throw PipelineError.noSuchEntry(fingerprint: fp) }
        let paths = fingerprints.map { "entries/\($0.prefix(2))/\($0)" }
        try runTar(["-cf", bundle.path, "-C", root.path] + paths, what: bundle.path)
    }

    /// Unpacks a bundle into a staging folder inside scratch (`unpackBundle` judges every member
    /// before writing it), checks every entry (`checkImported`), and only when all pass publishes
    /// each atomically under its lock. A refused bundle leaves the cache as it was. Returns the
    /// imported fingerprints.
    public func importBundle(_ bundle: URL, registry: StageRegistry, limits: BundleLimits = .standard) throws -> [String] {
        let staging = root.appendingPathComponent("scratch/import.\(hostName()).\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        try makeDirectory(staging)
        defer { try? FileManager.default.removeItem(at: staging) }
        try unpackBundle(bundle, into: staging, limits: limits)
        let staged = Cache(root: staging)
        let folders = staged.entryFolders()
        guard !folders.isEmpty else { throw PipelineError.badBundle(path: bundle.path, detail: "it holds no cache entry") }
        let records = try folders.map { try staged.checkImported($0, registry: registry, bundle: bundle) }
        for rec in records {
            let lock = try self.lock(rec.fingerprint)
            defer { lock.release() }
            if lookup(rec.fingerprint) == nil {
                try publish(scratch: staged.entryURL(rec.fingerprint), fingerprint: rec.fingerprint)
            }
        }
        return records.map(\.fingerprint)
    }

    /// The record of a staged entry once it has proved genuine: its fingerprint recomputed from its
    /// own fields names its folder, its kind is known at this version, it holds exactly the outputs
    /// the kind declares, and every output re-hashes to the digest the record lists.
    private func checkImported(_ folder: (name: String, url: URL), registry: StageRegistry, bundle: URL) throws -> CacheRecord {
        let fp = folder.name
        func refuse(_ detail: String) -> PipelineError { .badBundle(path: bundle.path, detail: "entry \(fp.prefix(12)): \(detail)") }
        guard let rec = record(fp) else { throw refuse("no readable record.json") }
        guard rec.fingerprint == fp else { throw refuse("its record names fingerprint '\(rec.fingerprint)', not its folder") }
        guard Set(rec.inputs.map(\.name)).count == rec.inputs.count else { throw refuse("its record repeats an input name") }
        let recomputed = (try? rec.recomputedFingerprint()) ?? "none"
        guard recomputed == fp else {
            throw refuse("its record's fields give fingerprint \(recomputed.prefix(12)), not its folder's (relabelled or edited)")
        }
        guard let kind = registry[rec.kind] else { throw refuse("stage kind '\(rec.kind)' is unknown to this streamline") }
        guard kind.version == rec.version else {
            throw refuse("made by version \(rec.version) of '\(rec.kind)', this streamline has version \(kind.version), so it would never be used")
        }
        let declared = kind.outputs.map(\.name).sorted()
        guard rec.outputs.keys.sorted() == declared else {
            throw refuse("its record lists outputs [\(rec.outputs.keys.sorted().joined(separator: ", "))], "
                         + "kind '\(rec.kind)' declares [\(declared.joined(separator: ", "))]")
        }
        let allowed = Set(["record.json", "log.txt"] + declared.map { "\($0).h5" })
        for file in (try? FileManager.default.contentsOfDirectory(atPath: folder.url.path)) ?? [] where !allowed.contains(file) {
            throw refuse("'\(file)' is not one of its outputs")
        }
        if let problem = problem(in: rec, deep: true) { throw refuse(problem) }
        return rec
    }

    private func runTar(_ arguments: [String], what: String) throws {
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar"] + arguments
        // macOS tar would add ._ files of extended attributes, which import refuses as foreign names.
        tar.environment = ProcessInfo.processInfo.environment.merging(["COPYFILE_DISABLE": "1"]) { $1 }
        let errors = Pipe()
        tar.standardError = errors
        do { try tar.run() } catch { throw PipelineError.io(operation: "run tar for", path: what, detail: "\(error)") }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else {
            throw PipelineError.badBundle(path: what, detail: "tar: " + message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}

// MARK: - Small system helpers

func makeDirectory(_ url: URL) throws {
    do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
        throw PipelineError.io(operation: "create folder", path: url.path, detail: "\(error)")
    }
}

/// fsyncs a regular file or folder. Anything else is refused before it is opened: opening a FIFO
/// blocks until a writer comes, and a symlink could lead outside the cache.
func fsyncPath(_ url: URL) throws {
    var info = stat()
    guard lstat(url.path, &info) == 0 else { throw PipelineError.io(operation: "stat for fsync", path: url.path, detail: errnoText()) }
    guard [S_IFREG, S_IFDIR].contains(info.st_mode & S_IFMT) else {
        throw PipelineError.io(operation: "fsync", path: url.path, detail: "not a regular file or folder")
    }
    let fd = open(url.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw PipelineError.io(operation: "open for fsync", path: url.path, detail: errnoText()) }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw PipelineError.io(operation: "fsync", path: url.path, detail: errnoText()) }
}

/// What identifies a file's current contents without reading them: a rewrite, a replacement or an
/// in-place edit changes the change time (or the inode).
struct FileIdentity: Equatable {
    var device: UInt64, inode: UInt64, size: Int64, changed: Int, changedNanoseconds: Int

    init?(_ url: URL) {
        var info = stat()
        guard stat(url.path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        #if canImport(Darwin)
        (changed, changedNanoseconds) = (info.st_ctimespec.tv_sec, info.st_ctimespec.tv_nsec)
        #else
        (changed, changedNanoseconds) = (info.st_ctim.tv_sec, info.st_ctim.tv_nsec)
        #endif
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

func hostName() -> String { ProcessInfo.processInfo.hostName }

/// Now, ISO 8601 UTC.
func timestamp() -> String { ISO8601DateFormatter().string(from: Date()) }
