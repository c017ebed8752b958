// safetensors: F32/F16/BF16 files written byte by byte here, a sharded index, the F32 writer's round
// trip and the typed error for other dtypes.

import Foundation
import Tensor
import Testing
@testable import Data

/// Writes a safetensors file whose tensors are given as (name, dtype, shape, raw little-endian bytes).
func writeRawSafetensors(_ entries: [(String, String, [Int], [UInt8])], to url: URL) throws {
    var header: [String: Any] = [:]
    var offset = 0
    for (name, dtype, shape, bytes) in entries {
        header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes.count]] as [String: Any]
        offset += bytes.count
    }
    let json = try JSONSerialization.data(withJSONObject: header)
    var out = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(json)
    for (_, _, _, bytes) in entries { out.append(contentsOf: bytes) }
    try out.write(to: url)
}

@Suite struct SafetensorsTests {
    let values: [Float] = [1, -2.5, 0.375, 1024, -0.0078125, 3]

    @Test func readsF16AndBF16() throws {
        let dir = try makeTempDir("st-dtypes")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f16 = values.flatMap { v -> [UInt8] in let b = Float16(v).bitPattern; return [UInt8(b & 0xFF), UInt8(b >> 8)] }
        let bf16 = values.flatMap { v -> [UInt8] in let b = v.bitPattern >> 16; return [UInt8(b & 0xFF), UInt8(b >> 8)] }
        let f32 = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
        let url = dir.appendingPathComponent("m.safetensors")
        try writeRawSafetensors([("a", "F16", [2, 3], f16), ("b", "BF16", [3, 2], bf16), ("c", "F32", [6], f32)], to: url)
        let file = try SafetensorsFile(url: url)
        #expect(file.names == ["a", "b", "c"])
        let a = try file.tensor("a"), b = try file.tensor("b"), c = try file.tensor("c")
        #expect(a.shape == [2, 3] && a.array == values)  // every value is exact in half precision
        #expect(b.shape == [3, 2] && b.array == values)  // and in bfloat16
        #expect(c.array == values)
    }

    @Test func f32WriteReadRoundTrip() throws {
        let dir = try makeTempDir("st-roundtrip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = Tensor.randn([5, 7], seed: 1), y = Tensor.randn([3], seed: 2)
        let url = dir.appendingPathComponent("w.safetensors")
        try SafetensorsFile.write([("layer.x", x), ("y", y)], metadata: ["format": "pt"], to: url)
        let file = try SafetensorsFile(url: url)
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.tensor("layer.x").array == x.array)
        #expect(try file.tensor("y").shape == [3])
        // Header padded to 8 bytes: the first tensor starts aligned.
        #expect(file.tensors["layer.x"]!.byteRange.lowerBound % 8 == 0)
    }

    @Test func shardedIndex() throws {
        let dir = try makeTempDir("st-sharded")
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = Tensor.randn([4, 2], seed: 3), y = Tensor.randn([6], seed: 4)
        try SafetensorsFile.write([("x", x)], to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try SafetensorsFile.write([("y", y)], to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index = ["metadata": ["total_size": 56], "weight_map": ["x": "model-00001-of-00002.safetensors",
                                                                    "y": "model-00002-of-00002.safetensors"]] as [String: Any]
        try JSONSerialization.data(withJSONObject: index).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let checkpoint = try SafetensorsCheckpoint(folder: dir)
        #expect(checkpoint.names == ["x", "y"])
        #expect(try checkpoint.tensor("x").array == x.array)
        #expect(try checkpoint.tensor("y").array == y.array)
        #expect(throws: DataError.missingTensor(path: dir.path, name: "z")) { try checkpoint.tensor("z") }
    }

    @Test func otherDTypesAreNamedErrors() throws {
        let dir = try makeTempDir("st-i64")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.safetensors")
        try writeRawSafetensors([("ids", "I64", [1], [UInt8](repeating: 0, count: 8))], to: url)
        #expect(throws: DataError.unsupportedTensorType(path: url.path, tensor: "ids", type: "I64")) {
            try SafetensorsFile(url: url).tensor("ids")
        }
    }
}
