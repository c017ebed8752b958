// Hostile GGUF headers (issue 11, item 6): sizes that used to divide by zero, allocate from negative
// or huge counts, or pass silently (a non-positive ε or RoPE base) are refused with the key named,
// before any parameter is allocated. The files are written here, metadata only, by a minimal writer.

import Foundation
import Testing
@testable import Data

/// A metadata value the minimal writer can write.
enum Meta: Sendable {
    case int(Int), float(Float), string(String)
}

@Suite struct MalformedGGUFTests {
    /// A GGUF v3 file with no tensors and these int32 / float32 / string key-values.
    static func gguf(_ values: [(String, Meta)]) throws -> URL {
        var bytes = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: Array(s.utf8)) }
        bytes.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(0)
        u64(UInt64(values.count))
        for (key, value) in values {
            string(key)
            switch value {
            case let .int(v): u32(5); withUnsafeBytes(of: Int32(v).littleEndian) { bytes.append(contentsOf: $0) }
            case let .float(v): u32(6); withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case let .string(v): u32(8); string(v)
            }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("malformed-\(UUID().uuidString).gguf")
        try bytes.write(to: url)
        return url
    }

    static let valid: [(String, Meta)] = [
        ("general.architecture", .string("llama")), ("llama.embedding_length", .int(64)), ("llama.attention.head_count", .int(4)),
        ("llama.attention.head_count_kv", .int(2)), ("llama.attention.layer_norm_rms_epsilon", .float(1e-5)),
        ("llama.block_count", .int(2)), ("llama.feed_forward_length", .int(128)), ("llama.context_length", .int(256)),
        ("llama.vocab_size", .int(100)), ("llama.rope.freq_base", .float(10_000)),
    ]

    static func with(_ key: String, _ value: Meta) -> [(String, Meta)] {
        valid.map { $0.0 == key ? (key, value) : $0 }
    }

    @Test func theValidHeaderGivesItsConfig() throws {
        let config = try GGUFImport.config(of: try GGUFFile(url: try Self.gguf(Self.valid)))
        #expect(config.hiddenSize == 64 && config.layerCount == 2 && config.headDim == 16 && config.vocabSize == 100)
    }

    static let cases: [(String, Meta)] = [
        ("llama.attention.head_count", .int(0)), ("llama.attention.head_count", .int(-3)), ("llama.attention.head_count_kv", .int(0)),
        ("llama.attention.head_count_kv", .int(3)), ("llama.block_count", .int(-1)), ("llama.block_count", .int(100_000_000)),
        ("llama.feed_forward_length", .int(-5)), ("llama.embedding_length", .int(0)), ("llama.embedding_length", .int(200_000)),
        ("llama.context_length", .int(0)), ("llama.vocab_size", .int(-1)), ("llama.vocab_size", .int(200_000_000)),
        ("llama.attention.layer_norm_rms_epsilon", .float(0)), ("llama.attention.layer_norm_rms_epsilon", .float(.nan)),
        ("llama.rope.freq_base", .float(-1)), ("llama.attention.key_length", .int(0)),
    ]

    @Test(arguments: 0..<cases.count)
    func aBadSizeIsRefusedNamingItsKey(_ index: Int) throws {
        let (key, value) = Self.cases[index]
        let values = Self.valid.contains { $0.0 == key } ? Self.with(key, value) : Self.valid + [(key, value)]
        let file = try GGUFFile(url: try Self.gguf(values))
        #expect { try GGUFImport.config(of: file) } throws: { error in
            "\(error)".contains(key)
        }
    }
}
