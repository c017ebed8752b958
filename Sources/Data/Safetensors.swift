// safetensors: read F32, F16 and BF16 tensors (single files and sharded checkpoints with
// `model.safetensors.index.json`) to float32, and write F32, BF16 or F16 files (rounded to nearest,
// ties to even, as torch's `.to(dtype)` does). Knows nothing about models.
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

    /// Opens `url` and checks its header against the file before anything is allocated from it: every
    /// tensor has a known dtype, a shape whose byte size equals its range, and a range inside the data
    /// section that no other tensor's overlaps (so no header byte is ever read as a weight).
    public init(url: URL) throws {
        path = url.path
        file = try MappedFile(path: path)
        var r = ByteReader(file: file, format: "safetensors")
        let headerLength = try r.count(of: "header length")
        // The format caps the header at 100 MB; a larger one is parsed into memory for nothing.
        guard headerLength <= Self.maxHeaderBytes else {
            throw DataError.malformed(format: "safetensors", path: path, at: "offset 0",
                                      detail: "header length \(headerLength) is above the format's limit of \(Self.maxHeaderBytes) bytes")
        }
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
            tensors[name] = try Self.info(name, value, dataStart: dataStart, fileSize: file.size, path: path)
        }
        let byStart = tensors.values.filter { !$0.byteRange.isEmpty }.sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound {
            throw DataError.malformed(format: "safetensors", path: path, at: "tensor \(b.name)",
                                      detail: "its bytes overlap those of tensor \(a.name)")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The format's header size limit.
    static let maxHeaderBytes = 100_000_000

    /// Bytes per element of every dtype the format defines (only F32, F16 and BF16 convert to float32).
    static let dtypeWidths = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                              "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1]

    /// One header entry, checked: known dtype, non-negative dimensions whose product does not overflow,
    /// 0 ≤ begin ≤ end inside the file, and end − begin equal to the element count times the dtype width.
    private static func info(_ name: String, _ value: Any, dataStart: Int, fileSize: Int, path: String) throws -> SafetensorsTensorInfo {
        func refuse(_ detail: String) -> DataError { .malformed(format: "safetensors", path: path, at: "tensor \(name)", detail: detail) }
        guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
              let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
            throw refuse("needs dtype, shape and data_offsets [begin, end]")
        }
        guard let width = dtypeWidths[dtype] else { throw refuse("unknown dtype '\(dtype)'") }
        var count = 1
        for d in shape {
            guard d >= 0 else { throw refuse("shape \(shape) has a negative dimension") }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw refuse("shape \(shape) has more elements than can be addressed") }
            count = product
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end, end <= fileSize - dataStart else {
            throw refuse("data_offsets [\(begin), \(end)] are not a range inside the \(fileSize - dataStart) data bytes")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: width)
        guard !overflow, bytes == end - begin else {
            throw refuse("\(end - begin) bytes for shape \(shape) of \(dtype), which needs \(overflow ? "more" : "\(bytes)")")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<(dataStart + end))
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
        // The byte length was checked against the shape when the header was read.
        guard ["F32", "F16", "BF16"].contains(info.dtype) else {
            throw DataError.unsupportedTensorType(path: path, tensor: info.name, type: info.dtype)
        }
        guard let src = file.bytes(info.byteRange).baseAddress else { return }
        switch info.dtype {
        case "F32": GGUFDequantize.blocks(.f32, from: src, count: info.count, into: destination)
        case "F16": GGUFDequantize.blocks(.f16, from: src, count: info.count, into: destination)
        default: GGUFDequantize.blocks(.bf16, from: src, count: info.count, into: destination)
        }
    }

    /// Writes `tensors` (name, float32 tensor) as a safetensors file, tensors in the given order.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], dtype: SafetensorsFloat = .float32,
                             metadata: [String: String] = [:], to url: URL) throws {
        let bytes = try encode(tensors, dtype: dtype, metadata: metadata)
        do { try bytes.write(to: url, options: .atomic) } catch {
            throw DataError.unwritable(path: url.path, detail: error.localizedDescription)
        }
    }

    /// The bytes of a safetensors file holding `tensors` in the given order, in `dtype`. The header is
    /// space-padded to a multiple of 8 bytes so every tensor starts aligned. Throws when a finite value
    /// is beyond the range of `dtype` (float16 ends at 65504).
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], dtype: SafetensorsFloat = .float32,
                              metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            let size = t.count * dtype.byteWidth
            header[name] = ["dtype": dtype.code, "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var bytes = Data()
        bytes.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(json)
        for (name, t) in tensors {
            let values = UnsafeBufferPointer(start: t.data, count: t.count)
            guard dtype != .float32 else { bytes.append(values); continue }
            var halves = [UInt16](repeating: 0, count: t.count)
            for i in 0..<t.count {
                halves[i] = dtype == .bfloat16 ? SafetensorsFloat.bfloat16Bits(values[i]) : Float16(values[i]).bitPattern
                if values[i].isFinite && halves[i] & 0x7FFF == dtype.infinityBits {
                    throw DataError.notExportable(detail: "tensor \(name) holds \(values[i]), beyond the range of \(dtype.rawValue); export as float32"
                                                  + (dtype == .float16 ? " or bfloat16" : ""))
                }
            }
            halves.withUnsafeBufferPointer { bytes.append($0) }
        }
        return bytes
    }
}

/// The float types `SafetensorsFile.encode` writes; raw values are the names config.json's `dtype` uses.
public enum SafetensorsFloat: String, Sendable, CaseIterable {
    case float32, bfloat16, float16

    /// The header's dtype code.
    public var code: String {
        switch self {
        case .float32: "F32"
        case .bfloat16: "BF16"
        case .float16: "F16"
        }
    }

    public var byteWidth: Int { self == .float32 ? 4 : 2 }

    /// The bits of +infinity (bfloat16, float16), which a finite weight must not round to.
    var infinityBits: UInt16 { self == .bfloat16 ? 0x7F80 : 0x7C00 }

    /// `x` rounded to bfloat16 (the upper 16 bits of a float32), to nearest with ties to even: adding
    /// 0x7FFF plus the kept part's lowest bit carries into the upper half exactly when the dropped
    /// half is above the midpoint, or at it with an odd kept part. For finite `x` only.
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
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
                // Shards are files beside the index: a path in the map would read from elsewhere.
                guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                    throw DataError.malformed(format: "safetensors index", path: index.path, at: "weight_map.\(name)",
                                              detail: "'\(shard)' is not a file name in the checkpoint's folder")
                }
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
