// `streamline cache ls | verify | gc | export | import`: inspect and move cache entries.

import ArgumentParser
import Foundation
import Pipeline
import Stages

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "List, verify, clean, export and import cache entries.",
        subcommands: [List.self, Verify.self, GC.self, Export.self, Import.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List cache entries.")
        @OptionGroup var options: PipelineOptions
        func run() throws {
            for rec in Cache(root: options.cacheURL).allRecords() {
                print("\(rec.fingerprint.prefix(12))  \(rec.id)  \(rec.kind)  \(rec.finished)  \(rec.host)")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-hash every entry and report damage (exit 1 if any).")
        @OptionGroup var options: PipelineOptions
        func run() throws {
            let cache = Cache(root: options.cacheURL)
            let problems = cache.verify()
            for p in problems { print("damaged \(p.fingerprint.prefix(12)): \(p.problem)") }
            print("\(cache.allRecords().count) entries, \(problems.count) damaged")
            if !problems.isEmpty { throw ExitCode.failure }
        }
    }

    struct GC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc", abstract: "Remove damaged entries and abandoned scratch; with --older-than, also old entries no spec names.",
            discussion: """
                By default every readable entry is kept: a shared cache holds other specs' work and runs with \
                other -p values, which no single spec names. --older-than AGE also removes entries written \
                longer than AGE ago that the spec (at its -p values) and every --keep-spec do not name. \
                Resume points (a stopped training stage's state, CACHE/resume/) are kept while their stage is \
                unfinished, removed once its entry is published or a write was cut short, and treated like \
                entries by --older-than.
                """)
        @OptionGroup var options: PipelineOptions
        @Flag(help: "Only print what would be removed.")
        var dryRun = false
        @Flag(help: "Re-hash every entry's data (as verify does) and remove the damaged ones too.")
        var verify = false
        @Option(help: ArgumentHelp("Also remove entries not named by the specs and older than this (e.g. 30d, 12h, 0 = any age).",
                                   valueName: "age"))
        var olderThan: String?
        @Option(help: ArgumentHelp("Another spec whose entries are kept (repeatable; with --older-than).", valueName: "file"))
        var keepSpec: [String] = []
        func run() throws {
            let cache = Cache(root: options.cacheURL)
            var policy = Cache.GCPolicy.keepAll
            if let olderThan {
                guard let age = parseAge(olderThan) else {
                    throw ValidationError("--older-than '\(olderThan)' is not an age: write a number with s, m, h, d or w, e.g. 30d.")
                }
                // Without a spec file, only the named --keep-spec files protect entries.
                var keep = FileManager.default.fileExists(atPath: options.specURL.path) ? try options.plan(cache).nodes.map(\.fingerprint) : []
                for file in keepSpec {
                    var other = options
                    other.spec = file
                    other.param = []
                    keep += try other.plan(cache).nodes.map(\.fingerprint)
                }
                policy = .removeUnnamed(keep: Set(keep), olderThan: age)
            }
            for path in cache.gc(policy, dryRun: dryRun, rehash: verify) { print("\(dryRun ? "would remove" : "removed") \(path)") }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pack entries (by node id or fingerprint prefix) into a bundle file.")
        @OptionGroup var options: PipelineOptions
        @Option(name: .shortAndLong, help: "The bundle file to write.")
        var output: String
        @Argument(help: "Node ids (with --spec) or fingerprint prefixes.")
        var ids: [String]
        func run() throws {
            let cache = Cache(root: options.cacheURL)
            let plan = FileManager.default.fileExists(atPath: options.specURL.path) ? try options.plan(cache) : nil
            let fps = try ids.map { id in try plan?.node(id)?.fingerprint ?? cache.resolve(prefix: id) }
            try cache.export(fps, to: URL(fileURLWithPath: output))
            print("exported \(fps.count) entr\(fps.count == 1 ? "y" : "ies") to \(output)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify and add the entries of a bundle to the cache.")
        @OptionGroup var options: PipelineOptions
        @Argument(help: "The bundle file.")
        var bundle: String
        @Option(help: ArgumentHelp("Refuse a bundle that unpacks to more than this many GiB.", valueName: "GiB"))
        var maxSize: Int64 = BundleLimits.standard.maxBytes >> 30
        func run() throws {
            guard maxSize > 0, maxSize < 1 << 33 else { throw ValidationError("--max-size must be a positive number of GiB.") }
            let fps = try Cache(root: options.cacheURL).importBundle(URL(fileURLWithPath: bundle), registry: StageCatalog.registry,
                                                                     limits: BundleLimits(maxBytes: maxSize << 30))
            for fp in fps { print("imported \(fp.prefix(12))") }
        }
    }
}

/// Seconds in an age like `90s`, `30m`, `12h`, `7d`, `2w` or `0`; nil when malformed.
func parseAge(_ text: String) -> TimeInterval? {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
    let unit = text.last.flatMap { units[$0] }
    guard let value = Double(unit == nil ? text : String(text.dropLast())), value.isFinite, value >= 0 else { return nil }
    return value * (unit ?? 1)
}
