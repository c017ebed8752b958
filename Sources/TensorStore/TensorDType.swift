// Element types a store can hold, the Swift scalars that map onto them, and the per-tensor summary
// (`TensorInfo`) a reader gives without touching tensor data.

import CHDF5

#if _endian(big)
// Digests are defined over little-endian bytes and data is written straight from memory.
#error("TensorStore assumes a little-endian host; add byte swapping before porting.")
#endif

/// The element type of a stored tensor.
public enum TensorDType: String, Codable, Sendable, CaseIterable {
    /// Model weights, activations, optimiser moments (`Tensor`).
    case float32
    /// Token ids and index sets (e.g. pruned channels).
    case int32
    /// Counters and offsets that can pass 2^31 (e.g. token positions in a large corpus).
    case int64
    /// Raw bytes and masks.
    case uint8

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float32, .int32: 4
        case .int64: 8
        case .uint8: 1
        }
    }

    /// Little-endian type used in the file (the same bytes on every machine).
    var fileType: hid_t {
        switch self {
        case .float32: streamline_h5t_ieee_f32le()
        case .int32: streamline_h5t_std_i32le()
        case .int64: streamline_h5t_std_i64le()
        case .uint8: streamline_h5t_std_u8le()
        }
    }

    /// The native type of the Swift scalar in memory.
    var memoryType: hid_t {
        switch self {
        case .float32: streamline_h5t_native_float()
        case .int32: streamline_h5t_native_int32()
        case .int64: streamline_h5t_native_int64()
        case .uint8: streamline_h5t_native_uint8()
        }
    }

    /// The dtype an HDF5 dataset type maps to, or nil when a store cannot hold it (float64, strings…).
    static func from(hdf5 type: hid_t) -> TensorDType? {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT where size == 4: return .float32
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch (size, signed) {
            case (4, true): return .int32
            case (8, true): return .int64
            case (1, false): return .uint8
            default: return nil
            }
        default: return nil
        }
    }
}

/// A Swift scalar type that maps onto one `TensorDType`.
public protocol TensorStoreScalar: Sendable {
    static var dtype: TensorDType { get }
}
extension Float: TensorStoreScalar { public static var dtype: TensorDType { .float32 } }
extension Int32: TensorStoreScalar { public static var dtype: TensorDType { .int32 } }
extension Int64: TensorStoreScalar { public static var dtype: TensorDType { .int64 } }
extension UInt8: TensorStoreScalar { public static var dtype: TensorDType { .uint8 } }

/// What a store records about one tensor, known without reading its data.
public struct TensorInfo: Sendable, Hashable, Codable {
    /// Full name with `/` between groups, e.g. `layers/3/attn/wq`.
    public let name: String
    public let dtype: TensorDType
    /// Row-major sizes, outermost first; `[]` is a scalar.
    public let shape: [Int]
    /// SHA-256 (lowercase hex) of dtype, shape and little-endian bytes; see `TensorDigest`.
    public let digest: String

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Size of the data in bytes.
    public var byteCount: Int { count * dtype.byteWidth }
}
