// GGUF (versions 2 and 3) reader: header, metadata key/values of every type, tensor infos, alignment,
// and float32 dequantisation of F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors. The file is memory
// mapped; nothing is copied until a tensor is asked for. Not a writer, and it knows nothing about
// model architectures (GGUFImport.swift maps llama tensors to Streamline's names).
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 kv count, kvs, tensor infos,
// padding to `general.alignment` (default 32), data. A string is u64 length + UTF-8 bytes. A tensor
// info is name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset (from the data start).
// ne[0] is the contiguous dimension, so a matrix with ne = [in, out] reads as row-major (out, in):
// `GGUFTensorInfo.shape` is ne reversed.

import Foundation
import Tensor

/// One metadata value. Integers keep their width so that a file can be described exactly.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    /// An array of values, all of one type.
    case array([GGUFValue])

    /// The value as an integer, if it is one of the integer types.
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a Double, if it is numeric.
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return int.map(Double.init)
        }
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }
    /// An array of strings (e.g. `tokenizer.ggml.tokens`), nil if any element is not a string.
    public var strings: [String]? {
        guard let a = array else { return nil }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for v in a { guard let s = v.string else { return nil }; out.append(s) }
        return out
    }
    /// An array of integers (e.g. `tokenizer.ggml.token_type`), nil if any element is not an integer.
    public var ints: [Int]? {
        guard let a = array else { return nil }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for v in a { guard let i = v.int else { return nil }; out.append(i) }
        return out
    }
}

/// ggml tensor storage types (numbering from ggml.h). Only some dequantise; the rest name themselves in errors.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35

    /// The name ggml prints, e.g. "Q4_1".
    public var name: String { String(describing: self).uppercased() }

    /// (weights per block, bytes per block) for the types this reader dequantises.
    var blockLayout: (weights: Int, bytes: Int)? {
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q8_0: return (32, 34)
        case .q4_0: return (32, 18)
        case .q4_1: return (32, 20)
        default: return nil
        }
    }
}

/// Where and how one tensor is stored.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// GGUF name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// Row-major shape (ne reversed): a weight matrix is (out, in).
    public let shape: [Int]
    /// Raw ggml type number (may be one `GGMLType` does not know).
    public let typeCode: UInt32
    /// Byte offset of the first block, from the start of the file.
    public let fileOffset: Int

    /// Number of scalars.
    public var count: Int { shape.reduce(1, *) }
    /// The ggml type, if known.
    public var type: GGMLType? { GGMLType(rawValue: typeCode) }
    /// "Q4_1", or "ggml type 99" for unknown numbers.
    public var typeName: String { type?.name ?? "ggml type \(typeCode)" }
}

/// A GGUF file opened for reading.
public final class GGUFFile: @unchecked Sendable {
    /// Where it was read from.
    public let path: String
    /// 2 or 3.
    public let version: Int
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Metadata values by key.
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment` (default 32).
    public let alignment: Int
    /// Offset of the data section in the file.
    public let dataOffset: Int

    private let file: MappedFile
    private let tensorIndex: [String: Int]

    /// Opens and parses the header, metadata and tensor infos of `url`; tensor data stays on disk.
    public init(url: URL) throws {
        path = url.path
        file = try MappedFile(path: path)
        var r = ByteReader(file: file, format: "GGUF")
        let magic = try r.u32()
        guard magic == 0x4655_4747 else {  // "GGUF" read little-endian
            throw DataError.malformed(format: "GGUF", path: path, at: "offset 0", detail: "magic is not 'GGUF'")
        }
        let version = Int(try r.u32())
        guard version == 2 || version == 3 else {
            throw DataError.malformed(format: "GGUF", path: path, at: "offset 4",
                                      detail: "version \(version); this reader supports versions 2 and 3")
        }
        self.version = version
        let tensorCount = try r.count(of: "tensor count")
        let kvCount = try r.count(of: "metadata count")
        var keys: [String] = []
        var values: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try r.string()
            let type = try r.u32()
            values[key] = try r.value(type: type, key: key)
            keys.append(key)
        }
        metadataKeys = keys
        metadata = values
        if let a = values["general.alignment"] {
            guard let n = a.int, n > 0, n & (n - 1) == 0 else {
                throw DataError.malformed(format: "GGUF", path: path, at: "general.alignment",
                                          detail: "\(a) is not a positive power of two")
            }
            alignment = n
        } else {
            alignment = 32  // GGUF's default when the key is absent
        }
        var infos: [(name: String, shape: [Int], type: UInt32, offset: Int)] = []
        for _ in 0..<tensorCount {
            let name = try r.string()
            let dims = Int(try r.u32())
            guard dims <= 8 else {
                throw DataError.malformed(format: "GGUF", path: path, at: "tensor \(name)", detail: "\(dims) dimensions")
            }
            var ne: [Int] = []
            for _ in 0..<dims { ne.append(try r.count(of: "dimension of \(name)")) }
            let type = try r.u32()
            let offset = try r.count(of: "offset of \(name)")
            infos.append((name, ne.reversed(), type, offset))
        }
        dataOffset = (r.position + alignment - 1) / alignment * alignment
        var tensors: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for info in infos {
            let t = GGUFTensorInfo(name: info.name, shape: info.shape, typeCode: info.type,
                                   fileOffset: dataOffset + info.offset)
            index[t.name] = tensors.count
            tensors.append(t)
        }
        self.tensors = tensors
        tensorIndex = index
    }

    /// The info of tensor `name`, if present.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// Tensor `name` dequantised to a new float32 tensor of its row-major shape.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensorInfo(name) else { throw DataError.missingTensor(path: path, name: name) }
        let out = Tensor(zeros: info.shape)
        try read(info, into: out.data)
        return out
    }

    /// Dequantises `info`'s data into `destination` (`info.count` floats), in parallel over blocks.
    public func read(_ info: GGUFTensorInfo, into destination: UnsafeMutablePointer<Float>) throws {
        guard let type = info.type, let layout = type.blockLayout else {
            throw DataError.unsupportedTensorType(path: path, tensor: info.name, type: info.typeName)
        }
        guard info.count % layout.weights == 0 else {
            throw DataError.malformed(format: "GGUF", path: path, at: "tensor \(info.name)",
                                      detail: "\(info.count) weights is not a whole number of \(type.name) blocks")
        }
        let blocks = info.count / layout.weights
        let byteCount = blocks * layout.bytes
        guard info.fileOffset + byteCount <= file.size else {
            throw DataError.malformed(format: "GGUF", path: path, at: "tensor \(info.name)",
                                      detail: "data ends past the end of the file")
        }
        guard let source = file.bytes(info.fileOffset..<(info.fileOffset + byteCount)).baseAddress else { return }
        // Chunks of whole blocks: disjoint outputs per thread.
        let dst = UncheckedSendableBox(destination)
        Threading.parallelFor(blocks, minChunk: 16_384) { range in
            GGUFDequantize.blocks(type, from: source + range.lowerBound * layout.bytes, count: range.count,
                                  into: dst.value + range.lowerBound * layout.weights)
        }
    }
}

/// The block dequantisers, exposed so tests can check each against a hand-computed block.
public enum GGUFDequantize {
    /// Dequantises `count` blocks of `type` at `source` into `count * weightsPerBlock` floats.
    /// Precondition: `type` is one of F32, F16, BF16, Q8_0, Q4_0, Q4_1.
    public static func blocks(_ type: GGMLType, from source: UnsafeRawPointer, count: Int,
                              into out: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count { out[i] = halfAt(source, i * 2) }
        case .bf16:
            for i in 0..<count {
                out[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
            }
        case .q8_0:
            // 34 bytes: f16 d, i8 qs[32]; w = d·q.
            for b in 0..<count {
                let block = source + b * 34, o = out + b * 32
                let d = halfAt(block, 0)
                let qs = (block + 2).assumingMemoryBound(to: Int8.self)
                for j in 0..<32 { o[j] = d * Float(qs[j]) }
            }
        case .q4_0:
            // 18 bytes: f16 d, u8 qs[16]; w[j] = (lo(qs[j]) − 8)·d, w[j+16] = (hi(qs[j]) − 8)·d.
            for b in 0..<count {
                let block = source + b * 18, o = out + b * 32
                let d = halfAt(block, 0)
                let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    o[j] = Float(Int32(qs[j] & 0x0F) - 8) * d
                    o[j + 16] = Float(Int32(qs[j] >> 4) - 8) * d
                }
            }
        case .q4_1:
            // 20 bytes: f16 d, f16 m, u8 qs[16]; w[j] = lo(qs[j])·d + m, w[j+16] = hi(qs[j])·d + m.
            for b in 0..<count {
                let block = source + b * 20, o = out + b * 32
                let d = halfAt(block, 0), m = halfAt(block, 2)
                let qs = (block + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    o[j] = Float(qs[j] & 0x0F) * d + m
                    o[j + 16] = Float(qs[j] >> 4) * d + m
                }
            }
        default:
            preconditionFailure("GGUFDequantize: \(type.name) has no dequantiser; callers check blockLayout first")
        }
    }

    /// The IEEE half at byte `offset` (unaligned), as Float.
    @inline(__always)
    static func halfAt(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }
}

/// Bounds-checked little-endian cursor over a mapped file; every overrun is a `malformed` error.
struct ByteReader {
    let file: MappedFile
    let format: String
    private(set) var position = 0

    init(file: MappedFile, format: String) {
        self.file = file
        self.format = format
    }

    private func fail(_ detail: String) -> DataError {
        .malformed(format: format, path: file.path, at: "offset \(position)", detail: detail)
    }

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, position + n <= file.size else { throw fail("needs \(n) bytes past the end of the file") }
        defer { position += n }
        return file.bytes(position..<(position + n))
    }

    mutating func scalar<T: FixedWidthInteger>(_: T.Type) throws -> T {
        T(littleEndian: try take(MemoryLayout<T>.size).loadUnaligned(as: T.self))
    }

    mutating func u32() throws -> UInt32 { try scalar(UInt32.self) }

    /// A u64 used as a count or offset: must fit the file, so a corrupt header fails fast.
    mutating func count(of what: String) throws -> Int {
        let v = try scalar(UInt64.self)
        guard v <= UInt64(file.size) || what.hasPrefix("dimension") && v <= UInt64(Int32.max) else {
            throw fail("\(what) is \(v), larger than the file")
        }
        return Int(v)
    }

    mutating func string() throws -> String {
        let n = try count(of: "string length")
        return String(decoding: try take(n), as: UTF8.self)
    }

    mutating func value(type: UInt32, key: String) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try scalar(UInt8.self))
        case 1: return .int8(try scalar(Int8.self))
        case 2: return .uint16(try scalar(UInt16.self))
        case 3: return .int16(try scalar(Int16.self))
        case 4: return .uint32(try scalar(UInt32.self))
        case 5: return .int32(try scalar(Int32.self))
        case 6: return .float32(Float(bitPattern: try scalar(UInt32.self)))
        case 7: return .bool(try scalar(UInt8.self) != 0)
        case 8: return .string(try string())
        case 9:
            let elementType = try u32()
            let n = try count(of: "array length of \(key)")
            var values: [GGUFValue] = []
            values.reserveCapacity(n)
            for _ in 0..<n { values.append(try value(type: elementType, key: key)) }
            return .array(values)
        case 10: return .uint64(try scalar(UInt64.self))
        case 11: return .int64(try scalar(Int64.self))
        case 12: return .float64(Double(bitPattern: try scalar(UInt64.self)))
        default: throw fail("metadata '\(key)' has unknown value type \(type)")
        }
    }
}
