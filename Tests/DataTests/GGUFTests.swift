// GGUF: each dequantiser against a hand-computed block, and the real SmolLM2 file's metadata and
// tensor table (design.md's config values).

import Foundation
import Testing
@testable import Data

@Suite struct GGUFTests {
    /// Little-endian bytes of an IEEE half.
    private func half(_ x: Float) -> [UInt8] {
        let bits = Float16(x).bitPattern
        return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
    }

    private func dequantize(_ type: GGMLType, _ bytes: [UInt8], blocks: Int = 1, weights: Int = 32) -> [Float] {
        var out = [Float](repeating: .nan, count: weights)
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { GGUFDequantize.blocks(type, from: src.baseAddress!, count: blocks, into: $0.baseAddress!) }
        }
        return out
    }

    @Test func q4_1Block() {
        // d = 0.5, m = -1; qs[j] = lo j, hi 15 - j  ->  w[j] = 0.5 j - 1, w[j+16] = 0.5 (15 - j) - 1.
        let qs = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let w = dequantize(.q4_1, half(0.5) + half(-1) + qs)
        for j in 0..<16 {
            #expect(w[j] == 0.5 * Float(j) - 1)
            #expect(w[j + 16] == 0.5 * Float(15 - j) - 1)
        }
    }

    @Test func q4_0Block() {
        // d = 0.25; qs[j] = lo j, hi 15 - j  ->  w[j] = (j - 8)/4, w[j+16] = (7 - j)/4.
        let qs = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let w = dequantize(.q4_0, half(0.25) + qs)
        for j in 0..<16 {
            #expect(w[j] == Float(j - 8) * 0.25)
            #expect(w[j + 16] == Float(7 - j) * 0.25)
        }
    }

    @Test func q8_0Block() {
        // d = 0.125, q = -128, -120, ..., 120: w = q / 8.
        let qs = (0..<32).map { Int8(-128 + 8 * $0) }
        let w = dequantize(.q8_0, half(0.125) + qs.map { UInt8(bitPattern: $0) })
        for j in 0..<32 { #expect(w[j] == Float(-128 + 8 * j) / 8) }
    }

    @Test func floatTypes() {
        let values: [Float] = [1.5, -2.25, 0, 65504, 1e-3, -7]
        let f32 = dequantize(.f32, values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) },
                             blocks: 6, weights: 6)
        #expect(f32 == values)
        let f16 = dequantize(.f16, values.flatMap(half), blocks: 6, weights: 6)
        #expect(f16 == values.map { Float(Float16($0)) })
        // bf16 = the top 16 bits of the float32.
        let bf16 = dequantize(.bf16, values.flatMap { v -> [UInt8] in let b = v.bitPattern >> 16; return [UInt8(b & 0xFF), UInt8(b >> 8)] },
                              blocks: 6, weights: 6)
        #expect(bf16 == values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) })
    }

    @Test func smolLM2Metadata() throws {
        let file = try GGUFFile(url: Fetched.file(Fetched.smolLM2, target: "models"))
        #expect(file.version == 3)
        #expect(file.alignment == 32)
        #expect(file.tensors.count == 272)
        #expect(file.metadata["general.architecture"]?.string == "llama")
        #expect(file.metadata["llama.block_count"]?.int == 30)
        #expect(file.metadata["tokenizer.ggml.tokens"]?.strings?.count == 49152)
        #expect(file.metadata["tokenizer.ggml.pre"]?.string == "smollm")
        let q = try #require(file.tensorInfo("blk.0.attn_q.weight"))
        #expect(q.shape == [576, 576] && q.type == .q4_1)
        let k = try #require(file.tensorInfo("blk.0.attn_k.weight"))
        #expect(k.shape == [192, 576])
        #expect(file.tensorInfo("token_embd.weight")?.type == .q8_0)
        #expect(file.tensorInfo("token_embd.weight")?.shape == [49152, 576])
        #expect(file.tensorInfo("output.weight") == nil)
    }

    @Test func unsupportedTypeIsNamed() throws {
        let file = try GGUFFile(url: Fetched.file(Fetched.smolLM2, target: "models"))
        let info = try #require(file.tensorInfo("blk.0.attn_q.weight"))
        let fake = GGUFTensorInfo(name: info.name, shape: info.shape, typeCode: GGMLType.q6_K.rawValue, fileOffset: info.fileOffset)
        var out = [Float](repeating: 0, count: 1)
        #expect(throws: DataError.unsupportedTensorType(path: file.path, tensor: info.name, type: "Q6_K")) {
            try out.withUnsafeMutableBufferPointer { try file.read(fake, into: $0.baseAddress!) }
        }
    }

    @Test func rejectsNonGGUF() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("not-gguf-\(UUID().uuidString)")
        try Data("GGML and then some bytes".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: DataError.self) { try GGUFFile(url: url) }
    }
}
