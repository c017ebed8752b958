// The run record of a Slurm submission: which node went out as which job, where its Slurm output
// files are and which submitted parents it waits for. It is written into the cache once everything
// is submitted, so that `streamline status` can reattach to a detached run and `streamline cancel`
// can cancel exactly its jobs, from any shell on any machine that sees the cache.
//
//     CACHE/runs/20261129-064501-250-3f2a.json
//
// It records; it neither submits nor watches (SlurmExecutor does both).

import Foundation

/// What one Slurm run submitted.
public struct SlurmRunRecord: Codable, Sendable, Equatable {
    /// One submitted node.
    public struct Job: Codable, Sendable, Equatable {
        /// The node id, e.g. "prune[ratio=0.25]".
        public var id: String
        /// The Slurm job id.
        public var job: SlurmJobID
        /// The job's standard output (the stage's JSON lines) and standard error files.
        public var output: String
        public var error: String
        /// Ids of the nodes of this run it depends on (`afterok`); cached inputs are not listed.
        public var after: [String]

        public init(id: String, job: SlurmJobID, output: String, error: String, after: [String]) {
            self.id = id
            self.job = job
            self.output = output
            self.error = error
            self.after = after
        }
    }

    /// The run's name: UTC time of submission (to the millisecond) and a random suffix, e.g. "20261129-064501-250-3f2a";
    /// names sort in submission order.
    public var run: String
    /// ISO 8601 UTC time of submission (nil in `init`: now).
    public var created: String
    /// Absolute path of the spec and the `-p` overrides the run used.
    public var spec: String
    public var overrides: [String]
    /// slurm.conf the jobs were submitted to (`SLURM_CONF` at submission), if set.
    public var slurmConf: String?
    /// Whether the run keeps going after a failure (`--keep-going`).
    public var keepGoing: Bool
    /// Node ids that were cached when the run was submitted.
    public var cached: [String]
    /// Submitted nodes in plan order (every parent before its dependants).
    public var jobs: [Job]
    /// Nodes that were not submitted, in plan order.
    public var notSubmitted: [Unsubmitted]

    /// A node that did not go out as a job.
    public struct Unsubmitted: Codable, Sendable, Equatable {
        public var id: String
        /// Why sbatch (or the dependency check before it) refused it; nil when it was skipped.
        public var error: String?
        /// The upstream node id that failed, or "interrupt"; nil when it failed itself.
        public var blockedBy: String?

        public init(id: String, error: String? = nil, blockedBy: String? = nil) {
            self.id = id
            self.error = error
            self.blockedBy = blockedBy
        }
    }

    public init(run: String = SlurmRunRecord.newRunName(), created: String? = nil, spec: String,
                overrides: [String], slurmConf: String?, keepGoing: Bool, cached: [String] = [], jobs: [Job] = [],
                notSubmitted: [Unsubmitted] = []) {
        self.run = run
        self.created = created ?? timestamp()
        self.spec = spec
        self.overrides = overrides
        self.slurmConf = slurmConf
        self.keepGoing = keepGoing
        self.cached = cached
        self.jobs = jobs
        self.notSubmitted = notSubmitted
    }

    /// A fresh run name from the current UTC time and 16 random bits.
    public static func newRunName() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss-SSS"
        return formatter.string(from: Date()) + "-" + String(format: "%04x", UInt16.random(in: 0...UInt16.max))
    }

    /// The folder of run records in the cache at `cache`.
    public static func folder(in cache: URL) -> URL { cache.appendingPathComponent("runs", isDirectory: true) }

    /// Writes the record as `CACHE/runs/RUN.json` (atomically: another shell may read it meanwhile).
    public func save(in cache: URL) throws {
        let url = Self.folder(in: cache).appendingPathComponent("\(run).json")
        try makeDirectory(url.deletingLastPathComponent())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { try encoder.encode(self).write(to: url, options: .atomic) } catch {
            throw PipelineError.io(operation: "write the run record", path: url.path, detail: "\(error)")
        }
    }

    /// The record named `run`, or (run nil) the latest one submitted for `spec`.
    public static func load(in cache: URL, run: String?, spec: URL) throws -> SlurmRunRecord {
        let folder = folder(in: cache)
        if let run {
            let url = folder.appendingPathComponent("\(run).json")
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw SlurmError.noRecordedRun(cache: cache.path, detail: "there is no run record \(url.path)")
            }
            return try decode(data, url)
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasSuffix(".json") }.sorted(by: >)
        for name in names {
            let url = folder.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else { continue }
            let record = try decode(data, url)
            if record.spec == spec.standardizedFileURL.path { return record }
        }
        throw SlurmError.noRecordedRun(cache: cache.path, detail: "no Slurm run of \(spec.path) is recorded there")
    }

    private static func decode(_ data: Data, _ url: URL) throws -> SlurmRunRecord {
        do { return try JSONDecoder().decode(SlurmRunRecord.self, from: data) } catch {
            throw PipelineError.io(operation: "read the run record", path: url.path, detail: "\(error)")
        }
    }
}
