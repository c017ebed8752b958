// TensorStoreReader: opens a finished store, lists its tensors and metadata without reading data,
// reads tensors straight into Tensor storage (optionally re-hashing them), and verifies digests.
// Reads are suspicious: anything a file can get wrong is a typed TensorStoreError, never a crash.

import CHDF5
import Foundation
import Tensor

/// Read access to one store. Opening reads only the index (names, dtypes, shapes, digests,
/// metadata); tensor data is read on request.
///
/// Thread-safe: every property is immutable after `init`, and every HDF5 call takes the
/// process-wide HDF5 lock, so one reader may be shared between tasks.
public final class TensorStoreReader: @unchecked Sendable {
    /// The store's location.
    public let url: URL
    /// What the store is ("model", "dataset", …).
    public let kind: String
    /// On-disk layout version.
    public let formatVersion: Int
    /// Every tensor, in UTF-8 name order.
    public let tensors: [TensorInfo]
    /// Content metadata keys, in UTF-8 order.
    public let metadataKeys: [String]
    /// Who made the store; nil when the record is missing or unreadable (it is informational only).
    public let provenance: StoreProvenance?
    /// The store digest recorded at commit.
    public let recordedDigest: String
    /// The store digest recomputed from the recorded tensor digests and metadata (cheap: no tensor
    /// data is read). Equals `recordedDigest` unless the file was changed after it was written.
    public let digest: String

    private let file: hid_t
    private let infoByName: [String: TensorInfo]
    private let metadataByKey: [String: String]

    /// Opens the store at `url`. Throws `TensorStoreError` (`fileNotFound`, `notHDF5`,
    /// `unreadable`, `notAStore`, `unsupportedFormatVersion`, `invalidTensor`).
    public init(url: URL) throws {
        self.url = url.standardizedFileURL
        let path = self.url.path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw TensorStoreError.fileNotFound(path: path)
        }
        if isFolder.boolValue { throw TensorStoreError.notHDF5(path: path, detail: "it is a folder") }
        let index = try HDF5.locked { () throws -> StoreIndex in
            let signature = H5Fis_hdf5(path)
            if signature == 0 { throw TensorStoreError.notHDF5(path: path, detail: "no HDF5 signature in the file") }
            if signature < 0 { throw TensorStoreError.unreadable(path: path, detail: HDF5.errorStackSummary()) }
            let fapl = HDF5.fileAccessList()
            defer { H5Pclose(fapl) }
            let file = H5Fopen(path, streamline_h5f_acc_rdonly(), fapl)
            guard file >= 0 else { throw TensorStoreError.unreadable(path: path, detail: HDF5.errorStackSummary()) }
            do {
                return try StoreIndex.read(file: file, path: path)
            } catch {
                H5Fclose(file)
                throw error
            }
        }
        file = index.file
        kind = index.kind
        formatVersion = index.formatVersion
        tensors = index.tensors
        infoByName = Dictionary(uniqueKeysWithValues: index.tensors.map { ($0.name, $0) })
        metadataByKey = index.metadata
        metadataKeys = index.metadata.keys.sorted(by: utf8Less)
        provenance = index.provenanceJSON.flatMap { try? JSONDecoder().decode(StoreProvenance.self, from: Data($0.utf8)) }
        recordedDigest = index.recordedDigest
        digest = StoreDigest.compute(kind: index.kind, metadata: index.metadata,
                                     tensorDigests: infoByName.mapValues(\.digest))
    }

    /// Opens the store at `url` and checks that it is a store of `kind`; throws `wrongKind` if not.
    public convenience init(url: URL, expectingKind kind: String) throws {
        try self.init(url: url)
        guard self.kind == kind else {
            throw TensorStoreError.wrongKind(path: self.url.path, expected: kind, found: self.kind)
        }
    }

    deinit {
        let file = self.file
        _ = try? HDF5.locked { H5Fclose(file) }
    }

    /// The store digest of the store at `url`, for cache keys. Cheap: reads the index, not the data.
    /// Throws `storeDigestMismatch` when the recorded digest disagrees with the file's contents.
    public static func digest(ofStoreAt url: URL) throws -> String {
        let reader = try TensorStoreReader(url: url)
        guard reader.digest == reader.recordedDigest else {
            throw TensorStoreError.storeDigestMismatch(path: reader.url.path, recorded: reader.recordedDigest,
                                                       computed: reader.digest)
        }
        return reader.digest
    }

    // MARK: - Index

    /// Tensor names, in UTF-8 order.
    public var names: [String] { tensors.map(\.name) }

    /// Whether a tensor called `name` exists.
    public func contains(_ name: String) -> Bool { infoByName[name] != nil }

    /// What the store records about `name`; throws `missingTensor` (with a did-you-mean) if absent.
    public func info(_ name: String) throws -> TensorInfo {
        guard let info = infoByName[name] else {
            throw TensorStoreError.missingTensor(path: url.path, name: name, available: names,
                                                 suggestion: Spelling.closest(to: name, among: names))
        }
        return info
    }

    // MARK: - Tensor data

    /// Reads float32 tensor `name` into new storage. With `expectedShape`, a different shape throws
    /// `shapeMismatch`; with `verify`, the data is re-hashed and a difference throws `digestMismatch`.
    public func tensor(_ name: String, expectedShape: [Int]? = nil, verify: Bool = false) throws -> Tensor {
        let info = try checked(name, dtype: .float32, expectedShape: expectedShape)
        let tensor = Tensor(zeros: info.shape)
        try read(info, into: UnsafeMutableRawBufferPointer(start: tensor.data, count: tensor.byteCount), verify: verify)
        return tensor
    }

    /// Reads float32 tensor `name` into existing memory; `destination.shape` must equal the stored shape.
    public func read(_ name: String, into destination: Tensor, verify: Bool = false) throws {
        let info = try checked(name, dtype: .float32, expectedShape: destination.shape)
        try read(info, into: UnsafeMutableRawBufferPointer(start: destination.data, count: destination.byteCount),
                 verify: verify)
    }

    /// Reads tensor `name` as `T` values (row-major) with its shape, e.g. `values("tokens", as: Int32.self)`.
    public func values<T: TensorStoreScalar>(_ name: String, as type: T.Type, expectedShape: [Int]? = nil,
                                             verify: Bool = false) throws -> (values: [T], shape: [Int]) {
        let info = try checked(name, dtype: T.dtype, expectedShape: expectedShape)
        let values = try [T](unsafeUninitializedCapacity: info.count) { buffer, initialized in
            try read(info, into: UnsafeMutableRawBufferPointer(buffer), verify: verify)
            initialized = info.count
        }
        return (values, info.shape)
    }

    /// Reads int32 tensor `name` (token ids, index sets) with its shape.
    public func int32s(_ name: String, expectedShape: [Int]? = nil, verify: Bool = false) throws
        -> (values: [Int32], shape: [Int]) {
        try values(name, as: Int32.self, expectedShape: expectedShape, verify: verify)
    }

    private func checked(_ name: String, dtype: TensorDType, expectedShape: [Int]?) throws -> TensorInfo {
        let info = try info(name)
        guard info.dtype == dtype else {
            throw TensorStoreError.dtypeMismatch(path: url.path, name: name, expected: dtype, found: info.dtype)
        }
        if let expectedShape, expectedShape != info.shape {
            throw TensorStoreError.shapeMismatch(path: url.path, name: name, expected: expectedShape, found: info.shape)
        }
        return info
    }

    /// Reads the data of `info` into `buffer` (exactly `info.byteCount` bytes), then optionally re-hashes it.
    private func read(_ info: TensorInfo, into buffer: UnsafeMutableRawBufferPointer, verify: Bool) throws {
        precondition(buffer.count == info.byteCount, "TensorStoreReader: buffer of \(buffer.count) bytes for \(info.byteCount)")
        try readData(info, into: buffer.baseAddress)
        if verify { try check(info, UnsafeRawBufferPointer(buffer)) }
    }

    private func readData(_ info: TensorInfo, into buffer: UnsafeMutableRawPointer?) throws {
        guard info.count > 0 else { return }
        let (file, path) = (self.file, url.path)
        // The HDF5 lock needs a Sendable closure result only; the buffer is ours until we return.
        let destination = UncheckedSendableBox(buffer)
        try HDF5.locked {
            let dataset = H5Dopen2(file, info.name, streamline_h5p_default())
            guard dataset >= 0 else {
                throw TensorStoreError.hdf5(operation: "open tensor '\(info.name)'", path: path, detail: HDF5.errorStackSummary())
            }
            defer { H5Dclose(dataset) }
            guard H5Dread(dataset, info.dtype.memoryType, streamline_h5s_all(), streamline_h5s_all(),
                          streamline_h5p_default(), destination.value) >= 0 else {
                throw TensorStoreError.hdf5(operation: "read tensor '\(info.name)'", path: path, detail: HDF5.errorStackSummary())
            }
        }
    }

    private func check(_ info: TensorInfo, _ bytes: UnsafeRawBufferPointer) throws {
        let computed = TensorDigest.compute(dtype: info.dtype, shape: info.shape, bytes: bytes)
        guard computed == info.digest else {
            throw TensorStoreError.digestMismatch(path: url.path, name: info.name, recorded: info.digest, computed: computed)
        }
    }

    // MARK: - Verification

    /// Re-hashes every tensor and checks the store digest; throws the first problem found
    /// (`digestMismatch` naming the tensor, or `storeDigestMismatch`).
    public func verify() throws {
        if let first = try verificationProblems().first { throw first }
    }

    /// Every integrity problem in the store (empty when intact): one `digestMismatch` per corrupted
    /// tensor, then `storeDigestMismatch` if the recorded store digest is off. Throws only when data
    /// cannot be read at all.
    public func verificationProblems() throws -> [TensorStoreError] {
        var problems: [TensorStoreError] = []
        // One scratch buffer sized for the largest tensor, reused for all of them.
        let largest = tensors.map(\.byteCount).max() ?? 0
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(largest, 1), alignment: 4096)
        defer { scratch.deallocate() }
        for info in tensors {
            let buffer = UnsafeMutableRawBufferPointer(start: scratch, count: info.byteCount)
            do {
                try read(info, into: buffer, verify: true)
            } catch let error as TensorStoreError {
                guard case .digestMismatch = error else { throw error }
                problems.append(error)
            }
        }
        if digest != recordedDigest {
            problems.append(.storeDigestMismatch(path: url.path, recorded: recordedDigest, computed: digest))
        }
        return problems
    }

    // MARK: - Metadata

    /// Decodes content metadata `key` as `T`, e.g. `metadata("model_config", as: ModelConfig.self)`.
    public func metadata<T: Decodable>(_ key: String, as type: T.Type) throws -> T {
        let json = try metadataJSON(key)
        do {
            return try JSONDecoder().decode(T.self, from: Data(json.utf8))
        } catch {
            throw TensorStoreError.metadataCoding(path: url.path, key: key, detail: "\(error)")
        }
    }

    /// The canonical JSON text of content metadata `key`.
    public func metadataJSON(_ key: String) throws -> String {
        guard let json = metadataByKey[key] else {
            throw TensorStoreError.missingMetadata(path: url.path, key: key, available: metadataKeys)
        }
        return json
    }
}

/// What opening a store reads: the root attributes and, per dataset, dtype, shape and digest.
private struct StoreIndex: Sendable {
    var file: hid_t
    var kind: String
    var formatVersion: Int
    var recordedDigest: String
    var provenanceJSON: String?
    var metadata: [String: String]
    var tensors: [TensorInfo]

    /// Reads the index of open file `file` (call inside `HDF5.locked`).
    static func read(file: hid_t, path: String) throws -> StoreIndex {
        let root = H5Gopen2(file, "/", streamline_h5p_default())
        guard root >= 0 else { throw TensorStoreError.unreadable(path: path, detail: HDF5.errorStackSummary()) }
        defer { H5Gclose(root) }
        guard let marker = HDF5.readStringAttribute(root, StoreFormat.markerAttribute) else {
            throw TensorStoreError.notAStore(path: path, detail: "its root group has no '\(StoreFormat.markerAttribute)' attribute")
        }
        guard marker == StoreFormat.markerValue else {
            throw TensorStoreError.notAStore(path: path, detail: "'\(StoreFormat.markerAttribute)' is '\(marker)'")
        }
        guard let version = HDF5.readIntAttribute(root, StoreFormat.versionAttribute) else {
            throw TensorStoreError.notAStore(path: path, detail: "no integer '\(StoreFormat.versionAttribute)' attribute")
        }
        guard version <= StoreFormat.version else {
            throw TensorStoreError.unsupportedFormatVersion(path: path, found: Int(version), supported: StoreFormat.version)
        }
        guard let kind = HDF5.readStringAttribute(root, StoreFormat.kindAttribute),
              let recordedDigest = HDF5.readStringAttribute(root, StoreFormat.digestAttribute) else {
            throw TensorStoreError.notAStore(path: path, detail: "the kind or digest attribute is missing")
        }
        var metadata: [String: String] = [:]
        for name in HDF5.attributeNames(root) where name.hasPrefix(StoreFormat.metadataPrefix) {
            let key = String(name.dropFirst(StoreFormat.metadataPrefix.count))
            guard let json = HDF5.readStringAttribute(root, name) else {
                throw TensorStoreError.notAStore(path: path, detail: "metadata attribute '\(name)' is not a string")
            }
            metadata[key] = json
        }
        return StoreIndex(file: file, kind: kind, formatVersion: Int(version), recordedDigest: recordedDigest,
                          provenanceJSON: HDF5.readStringAttribute(root, StoreFormat.provenanceAttribute),
                          metadata: metadata, tensors: try readTensors(file: file, path: path))
    }

    /// Visits every object in the file and describes each dataset.
    private static func readTensors(file: hid_t, path: String) throws -> [TensorInfo] {
        final class Found { var datasets: [String] = [] }
        let found = Found()
        let status = withExtendedLifetime(found) {
            H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, { _, name, info, context in
                guard let name, let info, let context else { return -1 }
                if info.pointee.type == H5O_TYPE_DATASET {
                    Unmanaged<Found>.fromOpaque(context).takeUnretainedValue().datasets.append(String(cString: name))
                }
                return 0
            }, Unmanaged.passUnretained(found).toOpaque(), UInt32(H5O_INFO_BASIC))
        }
        guard status >= 0 else { throw TensorStoreError.unreadable(path: path, detail: HDF5.errorStackSummary()) }
        return try found.datasets.sorted(by: utf8Less).map { try describe(file: file, path: path, name: $0) }
    }

    private static func describe(file: hid_t, path: String, name: String) throws -> TensorInfo {
        let dataset = H5Dopen2(file, name, streamline_h5p_default())
        guard dataset >= 0 else {
            throw TensorStoreError.invalidTensor(path: path, name: name, detail: HDF5.errorStackSummary())
        }
        defer { H5Dclose(dataset) }
        let type = H5Dget_type(dataset)
        defer { H5Tclose(type) }
        guard let dtype = TensorDType.from(hdf5: type) else {
            throw TensorStoreError.invalidTensor(path: path, name: name,
                                                 detail: "its element type (class \(H5Tget_class(type).rawValue), \(H5Tget_size(type)) bytes) is not float32, int32, int64 or uint8")
        }
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0, H5Sget_simple_extent_type(space) != H5S_NULL else {
            throw TensorStoreError.invalidTensor(path: path, name: name, detail: "it has no dataspace")
        }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        H5Sget_simple_extent_dims(space, &dims, nil)
        guard let digest = HDF5.readStringAttribute(dataset, StoreFormat.tensorDigestAttribute) else {
            throw TensorStoreError.invalidTensor(path: path, name: name,
                                                 detail: "it has no '\(StoreFormat.tensorDigestAttribute)' digest attribute")
        }
        return TensorInfo(name: name, dtype: dtype, shape: dims.map { Int($0) }, digest: digest)
    }
}
