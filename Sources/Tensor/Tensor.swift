// Tensor: float32 values in contiguous, page-aligned storage with a row-major shape.
//
// Shape letters used by every kernel in Streamline (llm.c style), passed as trailing Ints in this order:
//   B batch, T tokens (sequence), C hidden width d, NH query heads, NKV key/value heads, HD head dim,
//   F FFN width, V vocabulary, L layers. Elementwise kernels take a single N.
//
// A Tensor is a view: `storage` may be shared by many tensors (rows, reshapes) without copying.
// It has reference semantics like a numpy array; `copy()` makes an independent tensor.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Page-aligned, zero-initialised float32 memory, freed when the last view goes away.
public final class TensorStorage: @unchecked Sendable {
    /// First element; aligned to 4096 bytes so SIMD loads and HDF5/IO buffers are happy.
    public let base: UnsafeMutablePointer<Float>
    /// Number of floats allocated.
    public let count: Int

    public init(count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let status = posix_memalign(&raw, 4096, bytes)
        guard status == 0, let raw else {
            fatalError("TensorStorage: could not allocate \(bytes) bytes (posix_memalign returned \(status))")
        }
        memset(raw, 0, bytes)
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    deinit { free(base) }
}

/// A float32 tensor: a shape over a window of shared storage.
public struct Tensor: Sendable, CustomStringConvertible {
    /// Row-major sizes, outermost first. An empty shape is a scalar.
    public let shape: [Int]
    /// The memory this view reads and writes.
    public let storage: TensorStorage
    /// Offset in floats of element 0 inside `storage`.
    public let offset: Int

    /// A new zero-filled tensor.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
        self.offset = 0
    }

    /// A new tensor holding `values` (row-major), which must have exactly shape.product elements.
    public init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "Tensor: \(values.count) values for shape \(shape) (\(count) elements)")
        values.withUnsafeBufferPointer { src in
            if let p = src.baseAddress { data.update(from: p, count: values.count) }
        }
    }

    /// A tensor filled with one value.
    public init(shape: [Int], repeating value: Float) {
        self.init(zeros: shape)
        if value != 0 { data.update(repeating: value, count: count) }
    }

    /// A view over existing storage. `offset + shape.product` must fit inside the storage.
    public init(storage: TensorStorage, offset: Int, shape: [Int]) {
        let n = shape.reduce(1, *)
        precondition(offset >= 0 && offset + n <= storage.count,
                     "Tensor view [\(offset), \(offset + n)) is outside storage of \(storage.count) floats")
        self.storage = storage
        self.offset = offset
        self.shape = shape
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// Pointer to element 0. Writing through it writes every view that shares the storage.
    public var data: UnsafeMutablePointer<Float> { storage.base + offset }
    /// Size in bytes of the elements this view covers.
    public var byteCount: Int { count * MemoryLayout<Float>.stride }

    /// The same elements under another shape (no copy). One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "Tensor.reshaped: cannot infer -1 in \(newShape) from \(shape)")
            resolved[hole] = count / known
        }
        precondition(resolved.reduce(1, *) == count, "Tensor.reshaped: \(shape) (\(count) elements) cannot become \(newShape)")
        return Tensor(storage: storage, offset: offset, shape: resolved)
    }

    /// Elements [lower, upper) along the first axis, as a view.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "Tensor.rows: \(range) out of bounds for shape \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(storage: storage, offset: offset + range.lowerBound * inner,
                      shape: [range.count] + shape.dropFirst())
    }

    /// Index `i` along the first axis, as a view with one dimension fewer.
    public func row(_ i: Int) -> Tensor {
        precondition(rank >= 1 && i >= 0 && i < shape[0], "Tensor.row: \(i) out of bounds for shape \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(storage: storage, offset: offset + i * inner, shape: Array(shape.dropFirst()))
    }

    /// An independent copy with its own storage.
    public func copy() -> Tensor {
        let out = Tensor(zeros: shape)
        out.data.update(from: data, count: count)
        return out
    }

    /// Copies `other` (same element count) into this tensor's memory.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "Tensor.assign: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// Sets every element to zero.
    public func zero() { data.update(repeating: 0, count: count) }

    /// The elements as an array (row-major).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Flat element access (row-major index).
    public subscript(flat i: Int) -> Float {
        get { data[i] }
        nonmutating set { data[i] = newValue }
    }

    /// Element access by multi-index.
    public subscript(_ index: Int...) -> Float {
        get { data[flatIndex(index)] }
        nonmutating set { data[flatIndex(index)] = newValue }
    }

    @inline(__always)
    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == rank, "Tensor: \(index.count) indices for rank-\(rank) tensor \(shape)")
        var flat = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "Tensor: index \(index) out of bounds for shape \(shape)")
            flat = flat * n + i
        }
        return flat
    }

    public var description: String {
        let preview = UnsafeBufferPointer(start: data, count: min(count, 6)).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape): [\(preview)\(count > 6 ? ", …" : "")])"
    }
}
