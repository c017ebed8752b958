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
            commandName: "gc", abstract: "Remove entries the spec no longer reaches, and abandoned scratch.")
        @OptionGroup var options: PipelineOptions
        @Flag(help: "Only print what would be removed.")
        var dryRun = false
        func run() throws {
            let cache = Cache(root: options.cacheURL)
            let keep = Set(try options.plan(cache).nodes.map(\.fingerprint))
            for path in cache.gc(keep: keep, dryRun: dryRun) { print("\(dryRun ? "would remove" : "removed") \(path)") }
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

