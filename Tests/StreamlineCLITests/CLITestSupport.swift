// Helpers for tests that run the built `streamline` binary: locate it, run it, make temp projects.

import Foundation
import Testing

/// The repository root (this file is Tests/StreamlineCLITests/CLITestSupport.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The debug `streamline` binary; `make test` builds it before `swift test`. A binary older than an
/// object file of the modules it links is refused: `swift test` alone recompiles those modules for
/// the tests but does not relink the executable they run, which would then test yesterday's code.
func streamlineBinary() throws -> URL {
    let url = repositoryRoot.appendingPathComponent(".build/debug/streamline")
    guard FileManager.default.isExecutableFile(atPath: url.path) else {
        Issue.record("streamline binary missing at \(url.path): run `swift build --product streamline` first")
        throw CLITestFailure.binaryMissing
    }
    if let built = modificationDate(url), let (object, compiled) = newestLinkedObject, compiled > built {
        Issue.record("\(url.path) is older than \(object): run `swift build --product streamline` (or make test)")
        throw CLITestFailure.binaryStale
    }
    return url
}

/// The most recently compiled object file of the non-test modules in .build/debug (looked up once).
let newestLinkedObject: (path: String, date: Date)? = {
    let build = repositoryRoot.appendingPathComponent(".build/debug")
    let modules = (try? FileManager.default.contentsOfDirectory(atPath: build.path)) ?? []
    var newest: (path: String, date: Date)?
    for module in modules where module.hasSuffix(".build") && !module.hasSuffix("Tests.build") {
        let folder = build.appendingPathComponent(module)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasSuffix(".o") {
            let file = folder.appendingPathComponent(name)
            if let date = modificationDate(file), date > (newest?.date ?? .distantPast) { newest = (file.path, date) }
        }
    }
    return newest
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

/// A fresh temporary folder holding `files` (name → text).
func temporaryProject(_ files: [String: String]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
    return dir
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
