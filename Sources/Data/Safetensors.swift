// safetensors: read F32, F16 and BF16 tensors (single files and sharded checkpoints with
// `model.safetensors.index.json`) to float32, and write float32 files. Knows nothing about models.
//
// Layout: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data; offsets are relative to the end of the header. Row-major, little-endian.

import Foundation
import Tensor

/// One tensor inside a safetensors file.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    /// Stored dtype, e.g. "BF16".
    public let dtype: String
    /// Row-major shape.
    public let shape: [Int]
    /// Absolute byte range in the file.
    public let byteRange: Range<Int>
    public var count: Int { shape.reduce(1, *) }
}

/// A memory-mapped safetensors file.
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    /// Tensors by name.
    public let tensors: [String: SafetensorsTensorInfo]
    /// The `__metadata__` strings.
    public let metadata: [String: String]
    private let file: MappedFile

    public init(url: URL) throws {
        path = url.path
        file = try MappedFile(path: path)
        var r = ByteReader(file: file, format: "safetensors")
        let headerLength = try r.count(of: "header length")
        let header = try r.take(headerLength)
        let dataStart = 8 + headerLength
        guard let json = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any] else {
            throw DataError.malformed(format: "safetensors", path: path, at: "header", detail: "not a JSON object")
        }
        var tensors: [String: SafetensorsTensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                for (k, v) in (value as? [String: Any]) ?? [:] { metadata[k] = v as? String }
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  offsets[0] <= offsets[1], dataStart + offsets[1] <= file.size else {
                throw DataError.malformed(format: "safetensors", path: path, at: "tensor \(name)",
                                          detail: "needs dtype, shape and data_offsets inside the file")
            }
            tensors[name] = SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape,
                                                  byteRange: (dataStart + offsets[0])..<(dataStart + offsets[1]))
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Tensor names in UTF-8 order.
    public var names: [String] { tensors.keys.sorted() }

    /// Tensor `name` converted to float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else { throw DataError.missingTensor(path: path, name: name) }
        let out = Tensor(zeros: info.shape)
        try read(info, into: out.data)
        return out
    }

    /// Converts `info` to float32 into `destination` (`info.count` floats).
    public func read(_ info: SafetensorsTensorInfo, into destination: UnsafeMutablePointer<Float>) throws {
        let width: Int
        switch info.dtype {
        case "F32": width = 4
        case "F16", "BF16": width = 2
        default: throw DataError.unsupportedTensorType(path: path, tensor: info.name, type: info.dtype)
        }
        guard info.byteRange.count == info.count * width else {
            throw DataError.malformed(format: "safetensors", path: path, at: "tensor \(info.name)",
                                      detail: "\(info.byteRange.count) bytes for \(info.count) \(info.dtype) values")
        }
        guard let src = file.bytes(info.byteRange).baseAddress else { return }
        switch info.dtype {
        case "F32": GGUFDequantize.blocks(.f32, from: src, count: info.count, into: destination)
        case "F16": GGUFDequantize.blocks(.f16, from: src, count: info.count, into: destination)
        default: GGUFDequantize.blocks(.bf16, from: src, count: info.count, into: destination)
        }
    }

    /// Writes `tensors` (name, float32 tensor) as an F32 safetensors file, tensors in the given order.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        let bytes = try encode(tensors, metadata: metadata)
        do { try bytes.write(to: url, options: .atomic) } catch {
            throw DataError.unwritable(path: url.path, detail: error.localizedDescription)
        }
    }

    /// The bytes of an F32 safetensors file holding `tensors` in the given order. The header is
    /// space-padded to a multiple of 8 bytes so every tensor starts aligned.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]] as [String: Any]
            offset += t.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var bytes = Data()
        bytes.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(json)
        for (_, t) in tensors { bytes.append(UnsafeBufferPointer(start: t.data, count: t.count)) }
        return bytes
    }
}

/// A Hugging Face checkpoint's weights: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json` (`weight_map`: tensor name -> shard file).
public final class SafetensorsCheckpoint: @unchecked Sendable {
    /// The folder.
    public let folder: URL
    private let shardByTensor: [String: SafetensorsFile]

    public init(folder: URL) throws {
        self.folder = folder
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        var map: [String: SafetensorsFile] = [:]
        if FileManager.default.fileExists(atPath: index.path) {
            guard let root = try? JSONSerialization.jsonObject(with: Data(contentsOf: index)) as? [String: Any],
                  let weightMap = root["weight_map"] as? [String: String] else {
                throw DataError.malformed(format: "safetensors index", path: index.path, at: "weight_map",
                                          detail: "not an object of tensor name -> shard file")
            }
            var shards: [String: SafetensorsFile] = [:]
            for (name, shard) in weightMap {
                if shards[shard] == nil { shards[shard] = try SafetensorsFile(url: folder.appendingPathComponent(shard)) }
                guard let file = shards[shard], file.tensors[name] != nil else {
                    throw DataError.missingTensor(path: folder.appendingPathComponent(shard).path, name: name)
                }
                map[name] = file
            }
        } else {
            let file = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
            for name in file.tensors.keys { map[name] = file }
        }
        shardByTensor = map
    }

    /// Every tensor name, in UTF-8 order.
    public var names: [String] { shardByTensor.keys.sorted() }

    /// Info of `name`, if present.
    public func info(_ name: String) -> SafetensorsTensorInfo? { shardByTensor[name]?.tensors[name] }

    /// Tensor `name` as float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let file = shardByTensor[name] else { throw DataError.missingTensor(path: folder.path, name: name) }
        return try file.tensor(name)
    }
}
