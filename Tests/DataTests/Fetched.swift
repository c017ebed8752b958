// Locates files the Makefile fetches (make models / testdata / corpora) and committed fixtures.
// A missing fetched file is a test FAILURE that says which make target to run, never a skip.

import Foundation
import Testing

enum Fetched {
    /// The repository root (this file is Tests/DataTests/Fetched.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static let smolLM2 = "models/smollm2/SmolLM2-135M-Instruct-Q4_1.gguf"
    static let gpt2Vocab = "third_party/llama.cpp/models/ggml-vocab-gpt-2.gguf"
    static let hamlet = "data/shakespeare/tragedies/hamlet.md"

    /// URL of fetched file `relative`; records a failure naming `target` when it is absent.
    static func file(_ relative: String, target: String) throws -> URL {
        let url = root.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            Issue.record("\(relative) is missing: run make \(target)")
            throw MissingFetchedFile(path: relative)
        }
        return url
    }

    /// A committed fixture under Tests/DataTests/Fixtures.
    static func fixture(_ name: String) -> URL {
        root.appendingPathComponent("Tests/DataTests/Fixtures").appendingPathComponent(name)
    }
}

struct MissingFetchedFile: Error, CustomStringConvertible {
    let path: String
    var description: String { "\(path) is missing: run make testdata (or make models / make corpora)" }
}
