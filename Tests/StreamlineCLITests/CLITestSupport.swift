// Helpers for tests that run the built `streamline` binary: locate it, run it, make temp projects.

import Foundation
import Testing

/// The repository root (this file is Tests/StreamlineCLITests/CLITestSupport.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Where `swift build` writes the debug `streamline` binary.
let debugBinary = repositoryRoot.appendingPathComponent(".build/debug/streamline")

/// The debug `streamline` binary; `make test` builds it before `swift test`. A stale binary is refused
/// with a test failure saying how to rebuild, rather than run, which would test yesterday's code: see
/// `staleBinaryReason`.
func streamlineBinary() throws -> URL {
    let url = debugBinary
    guard FileManager.default.isExecutableFile(atPath: url.path) else {
        Issue.record("streamline binary missing at \(url.path): run `swift build --product streamline` (or make test) first")
        throw CLITestFailure.binaryMissing
    }
    if let reason = staleBinaryReason {
        Issue.record("\(reason): run `swift build --product streamline` (or make test)")
        throw CLITestFailure.binaryStale
    }
    return url
}

/// Why the debug binary is stale (nil when it is not), worked out once per test process from mtimes:
/// - it is older than an object file of the modules it links (every module but the targets under
///   Tests/ and the plugins' host tools, `*-tool.build`, which a plain `swift build` also builds):
///   `swift test` alone recompiles those modules for the tests but does not relink the
///   executable they run;
/// - it is older than a source under Sources/ (Swift, C, headers, module maps; not the READMEs, which
///   no build reads) that changed after the last build looked at its module: an edit not built yet,
///   e.g. `swift test --skip-build`. A build rewrites a module's dependency files (`*.d` in
///   `.build/debug/MODULE.build`) whenever it looks at the module, even when the sources' contents are
///   unchanged and it compiles and links nothing, so a file only touched (a checkout, a stash) stops
///   counting after one `swift build` instead of failing the tests for good. (Other files there, such
///   as output-file-map.json, are rewritten by any `swift test`, even with --skip-build.)
let staleBinaryReason: String? = {
    let fm = FileManager.default
    let binary = debugBinary
    guard let built = modificationDate(binary) else { return nil }
    let build = repositoryRoot.appendingPathComponent(".build/debug")
    var lookedAt: [String: Date] = [:]  // module → its newest dependency or object file
    var newestObject: (path: String, date: Date)?
    let tests = repositoryRoot.appendingPathComponent("Tests")
    for folder in (try? fm.contentsOfDirectory(atPath: build.path)) ?? []
    where folder.hasSuffix(".build") && !folder.hasSuffix("Tests.build") && !folder.hasSuffix("-tool.build") {
        let module = String(folder.dropLast(".build".count))
        // Test-only targets (the test targets, SwiftPM's generated test runner, the support library
        // under Tests/) are not linked into the binary.
        if fm.fileExists(atPath: tests.appendingPathComponent(module).path) { continue }
        for name in (try? fm.contentsOfDirectory(atPath: build.appendingPathComponent(folder).path)) ?? [] {
            let file = build.appendingPathComponent(folder).appendingPathComponent(name)
            guard name.hasSuffix(".d") || name.hasSuffix(".o"), let date = modificationDate(file) else { continue }
            lookedAt[module] = max(lookedAt[module] ?? .distantPast, date)
            if name.hasSuffix(".o"), date > (newestObject?.date ?? .distantPast) { newestObject = (file.path, date) }
        }
    }
    if let newestObject, newestObject.date > built { return "\(binary.path) is older than \(newestObject.path)" }
    let lookedAtAny = lookedAt.values.max() ?? .distantPast  // for a module without a folder (system libraries)
    let sources = repositoryRoot.appendingPathComponent("Sources")
    let compiled: Set<String> = ["swift", "c", "h", "modulemap"]
    let walk = fm.enumerator(at: sources, includingPropertiesForKeys: [.contentModificationDateKey])
    while let file = walk?.nextObject() as? URL {
        guard compiled.contains(file.pathExtension), let date = modificationDate(file), date > built else { continue }
        let module = file.pathComponents.dropFirst(sources.pathComponents.count).first ?? ""
        if date > (lookedAt[module] ?? lookedAtAny) {
            return "\(binary.path) is older than \(file.path), which no build has looked at since it changed"
        }
    }
    return nil
}()

func modificationDate(_ url: URL) -> Date? {
    try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate
}

enum CLITestFailure: Error { case binaryMissing, binaryStale }

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `streamline ARGS` in `directory` and waits for it.
@discardableResult
func streamline(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws -> CommandResult {
    let process = try startStreamline(arguments, in: directory, environment: environment)
    let out = process.stdout.fileHandleForReading.readDataToEndOfFile()
    let err = process.stderr.fileHandleForReading.readDataToEndOfFile()
    process.process.waitUntilExit()
    return CommandResult(status: process.process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                         stderr: String(decoding: err, as: UTF8.self))
}

struct RunningCommand {
    var process: Process
    var stdout: Pipe
    var stderr: Pipe
}

func startStreamline(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws -> RunningCommand {
    let process = Process()
    process.executableURL = try streamlineBinary()
    process.arguments = arguments
    process.currentDirectoryURL = directory
    var env = ProcessInfo.processInfo.environment
    env["STREAMLINE_CACHE"] = nil
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    return RunningCommand(process: process, stdout: out, stderr: err)
}

/// Runs `scripts/SCRIPT ARGS` with the Python of `make pyenv` (.build/pyenv, which holds gguf, numpy,
/// safetensors and tokenizers) and requires it to exit 0; the failure message carries its stderr.
func runPyenvScript(_ script: String, _ arguments: [String]) throws {
    let python = repositoryRoot.appendingPathComponent(".build/pyenv/bin/python")
    guard FileManager.default.isExecutableFile(atPath: python.path) else {
        Issue.record("\(python.path) is missing: run make pyenv (a venv with gguf, numpy, safetensors, tokenizers)")
        throw CLITestFailure.binaryMissing
    }
    let process = Process()
    process.executableURL = python
    process.arguments = [repositoryRoot.appendingPathComponent("scripts/" + script).path] + arguments
    let err = Pipe()
    process.standardError = err
    try process.run()
    let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "\(script) failed: \(message)")
}

/// A small swept pipeline of debug kinds used by several tests.
let sweepSpec = """
    params: {ratio: 0.5}
    stages:
      base:
        kind: debug/constant
        params: {rows: 3, cols: 2}
      reg:
        kind: debug/scale
        inputs: {x: "${stages.base.out}"}
        params: {factor: "${ratio}"}
        sweep: {grid: {ratio: [0.25, 0.5]}}
      total:
        kind: debug/sum
        inputs: {a: "${stages.reg.out}", b: "${stages.base.out}"}

    """
