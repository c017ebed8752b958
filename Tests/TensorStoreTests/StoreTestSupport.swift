// Helpers shared by the TensorStore tests: scratch folders, running tools, capturing stderr.

import Foundation
import Tensor
@testable import TensorStore

/// A fresh empty folder under the system temporary directory, deleted by `remove()`.
struct ScratchFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("store-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    /// Every entry in the folder, hidden ones included.
    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: url.path).sorted() }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Runs `executable` with `arguments`; returns exit status and stdout.
func run(_ executable: String, _ arguments: [String], stdin: Data? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// sha256sum(1) of `data`: an implementation of SHA-256 independent of swift-crypto.
func coreutilsSHA256(_ data: Data, in folder: ScratchFolder) throws -> String {
    let file = folder.file("sha-input-\(UUID().uuidString)")
    try data.write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    let (status, output) = try run("/usr/bin/sha256sum", [file.path])
    precondition(status == 0, "sha256sum failed")
    return String(output.prefix(64))
}

/// Runs `body` with this process's stderr redirected to a file; returns what was written there.
func capturingStderr(_ body: () throws -> Void) throws -> String {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: file) }
    fflush(nil)   // every C stream, so nothing buffered earlier lands in the capture
    let saved = dup(2)
    let fd = open(file.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    dup2(fd, 2)
    close(fd)
    defer {
        fflush(nil)
        dup2(saved, 2)
        close(saved)
    }
    try body()
    fflush(nil)
    return try String(contentsOf: file, encoding: .utf8)
}

/// A small store with nested names, every dtype, a scalar and an empty tensor.
struct SampleStore {
    let wq = Tensor.randn([3, 4], seed: 1)
    let embedding = Tensor.randn([16, 8], seed: 2)
    let scalar = Tensor(shape: [], values: [2.5])
    let empty = Tensor(zeros: [0, 3])
    let tokens: [Int32] = [5, -1, 2_000_000_000, 0, 7, 9]
    let offsets: [Int64] = [0, 1 << 40, -3]
    let mask: [UInt8] = [0, 1, 255, 128]
    let config = SampleConfig(name: "toy", layers: 2, width: 8, eps: 1e-5, tags: ["a/b", "ü"])

    /// Writes the sample to `url`; returns the store digest.
    @discardableResult
    func write(to url: URL, provenance: StoreProvenance = StoreProvenance(toolVersion: "test"),
               reversed: Bool = false) throws -> String {
        let writer = try TensorStoreWriter(url: url, kind: "model", provenance: provenance)
        var steps: [() throws -> Void] = [
            { try writer.write("layers/0/attn/wq", wq) },
            { try writer.write("embedding", embedding) },
            { try writer.write("scale", scalar) },
            { try writer.write("layers/1/empty", empty) },
            { try writer.write("data/tokens", tokens, shape: [2, 3]) },
            { try writer.write("data/offsets", offsets, shape: [3]) },
            { try writer.write("data/mask", mask, shape: [4]) },
            { try writer.setMetadata("model_config", config) },
            { try writer.setMetadata("note", "hello") },
        ]
        if reversed { steps.reverse() }
        for step in steps { try step() }
        return try writer.commit()
    }
}

struct SampleConfig: Codable, Equatable {
    var name: String
    var layers: Int
    var width: Int
    var eps: Float
    var tags: [String]
}
