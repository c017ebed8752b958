// GGUF version 3 writer: metadata key/values and float32 tensors encoded as F32, F16 or Q8_0. The
// layout is the one GGUF.swift reads (see its header): "GGUF", u32 version, u64 tensor count, u64 kv
// count, kvs, tensor infos, zero padding to `general.alignment` (32), data with every tensor starting
// at a multiple of 32. Knows nothing about architectures (GGUFExport.swift names the tensors).

import Foundation
import Tensor

/// The tensor types the writer encodes; raw values are the `--dtype` / stage `dtype` names.
public enum GGUFFloat: String, Sendable, CaseIterable {
    case float32, float16, q8_0

    /// The ggml type a weight matrix is stored as.
    public var ggml: GGMLType {
        switch self {
        case .float32: .f32
        case .float16: .f16
        case .q8_0: .q8_0
        }
    }
}

/// A GGUF file being assembled in memory.
public struct GGUFWriter {
    /// ggml's default alignment; the reader takes it when `general.alignment` is absent.
    static let alignment = 32
    /// Weights per Q8_0 block (one float16 scale + 32 int8).
    static let q8Block = 32

    private var metadata: [(key: String, value: GGUFValue)] = []
    private var tensors: [(name: String, shape: [Int], type: GGMLType, bytes: Data)] = []

    public init() {}

    /// Adds a metadata key (written in the order added).
    public mutating func set(_ key: String, _ value: GGUFValue) {
        metadata.append((key, value))
    }

    /// Adds `tensor` (row-major, shape as Streamline writes it) encoded as `type`.
    public mutating func add(_ name: String, _ tensor: Tensor, as type: GGMLType) throws {
        let values = UnsafeBufferPointer(start: tensor.data, count: tensor.count)
        var bytes = Data()
        switch type {
        case .f32:
            bytes.append(values)
        case .f16:
            var halves = [UInt16](repeating: 0, count: values.count)
            for i in values.indices {
                halves[i] = Float16(values[i]).bitPattern
                if values[i].isFinite && halves[i] & 0x7FFF == 0x7C00 {
                    throw DataError.notExportable(detail: "tensor \(name) holds \(values[i]), beyond float16's ±65504; export as float32 or q8_0")
                }
            }
            halves.withUnsafeBufferPointer { bytes.append($0) }
        case .q8_0:
            precondition(tensor.count % Self.q8Block == 0, "GGUFWriter: Q8_0 needs rows of a multiple of 32")
            bytes = Self.quantizeQ8_0(values)
        default:
            preconditionFailure("GGUFWriter: does not encode \(type.name)")
        }
        tensors.append((name, tensor.shape, type, bytes))
    }

    /// ggml's Q8_0: per 32 weights, d = max|x| / 127 stored as float16, q = round(x / d) as int8
    /// (halves away from zero, as ggml's roundf).
    static func quantizeQ8_0(_ values: UnsafeBufferPointer<Float>) -> Data {
        var out = Data(capacity: values.count / q8Block * 34)
        var block = [UInt8](repeating: 0, count: 34)
        for start in stride(from: 0, to: values.count, by: q8Block) {
            var amax: Float = 0
            for i in start..<start + q8Block { amax = max(amax, abs(values[i])) }
            let d = amax / 127, inverse: Float = d == 0 ? 0 : 1 / d
            let bits = Float16(d).bitPattern
            block[0] = UInt8(bits & 0xFF)
            block[1] = UInt8(bits >> 8)
            for i in 0..<q8Block {
                block[2 + i] = UInt8(bitPattern: Int8((values[start + i] * inverse).rounded(.toNearestOrAwayFromZero)))
            }
            out.append(contentsOf: block)
        }
        return out
    }

    /// The file's bytes.
    public func encode() -> Data {
        var out = Data()
        out.append(contentsOf: Array("GGUF".utf8))
        append(UInt32(3), to: &out)
        append(UInt64(tensors.count), to: &out)
        append(UInt64(metadata.count), to: &out)
        for (key, value) in metadata {
            appendString(key, to: &out)
            append(Self.typeCode(value), to: &out)
            appendValue(value, to: &out)
        }
        var offset = 0
        for t in tensors {
            appendString(t.name, to: &out)
            append(UInt32(t.shape.count), to: &out)
            // ne[0] is the contiguous dimension: the shape reversed.
            for n in t.shape.reversed() { append(UInt64(n), to: &out) }
            append(t.type.rawValue, to: &out)
            append(UInt64(offset), to: &out)
            offset += Self.padded(t.bytes.count)
        }
        out.append(Data(count: Self.padded(out.count) - out.count))
        for t in tensors {
            out.append(t.bytes)
            out.append(Data(count: Self.padded(t.bytes.count) - t.bytes.count))
        }
        return out
    }

    static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// GGUF value type codes (gguf_type).
    static func typeCode(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    private func append<T: FixedWidthInteger>(_ v: T, to out: inout Data) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private func appendString(_ s: String, to out: inout Data) {
        let utf8 = Array(s.utf8)
        append(UInt64(utf8.count), to: &out)
        out.append(contentsOf: utf8)
    }

    private func appendValue(_ value: GGUFValue, to out: inout Data) {
        switch value {
        case .uint8(let v): append(v, to: &out)
        case .int8(let v): append(v, to: &out)
        case .uint16(let v): append(v, to: &out)
        case .int16(let v): append(v, to: &out)
        case .uint32(let v): append(v, to: &out)
        case .int32(let v): append(v, to: &out)
        case .uint64(let v): append(v, to: &out)
        case .int64(let v): append(v, to: &out)
        case .float32(let v): append(v.bitPattern, to: &out)
        case .float64(let v): append(v.bitPattern, to: &out)
        case .bool(let v): append(UInt8(v ? 1 : 0), to: &out)
        case .string(let v): appendString(v, to: &out)
        case .array(let items):
            // An empty array still needs an element type; string is what llama.cpp's lists hold.
            append(items.first.map(Self.typeCode) ?? 8, to: &out)
            append(UInt64(items.count), to: &out)
            for item in items { appendValue(item, to: &out) }
        }
    }
}
