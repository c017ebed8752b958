// TensorStoreWriter: builds one store in a private temporary file next to the target and moves it
// into place atomically on commit (write, close, fsync, rename, fsync the folder). Until then the
// target path is untouched; an abandoned or failed writer deletes its temporary file.
// It does not read stores (TensorStoreReader) and knows nothing of models or pipelines.

import CHDF5
import Foundation
import Tensor

/// Writes named tensors and metadata into a new store at `url`.
///
///     let writer = try TensorStoreWriter(url: out, kind: "model")
///     try writer.setMetadata("model_config", config)
///     try writer.write("layers/0/attn/wq", wq)
///     let digest = try writer.commit()
///
/// Not thread-safe: use one writer from one thread at a time (HDF5 calls are serialised anyway).
public final class TensorStoreWriter {
    /// Where the store appears on `commit()`. An existing file there is replaced.
    public let url: URL
    /// What the store is: "model", "dataset", "channels", "metrics", "optimizer", …
    public let kind: String
    /// The temporary file (same folder, hidden name) that becomes `url` on commit.
    public let temporaryURL: URL

    private var file: hid_t
    private var finished = false
    private var tensorDigests: [String: String] = [:]
    private var groups: Set<String> = []
    private var metadata: [String: String] = [:]
    private var provenance: StoreProvenance

    /// Starts a store of `kind` that will be moved to `url` by `commit()`. Creates the folder if needed.
    public init(url: URL, kind: String, provenance: StoreProvenance = StoreProvenance()) throws {
        if let problem = StoreNames.problem(key: kind) { throw TensorStoreError.invalidName(name: kind, detail: problem) }
        self.url = url.standardizedFileURL
        self.kind = kind
        self.provenance = provenance
        let folder = self.url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw TensorStoreError.io(operation: "create the folder for", path: self.url.path, detail: "\(error)")
        }
        // Hidden, unique per process and writer, in the target folder so rename(2) is atomic.
        let unique = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        temporaryURL = folder.appendingPathComponent(".\(self.url.lastPathComponent).tmp-\(getpid())-\(unique)")
        let temporaryPath = temporaryURL.path
        file = try HDF5.locked {
            let fapl = HDF5.fileAccessList()
            defer { H5Pclose(fapl) }
            let id = H5Fcreate(temporaryPath, streamline_h5f_acc_excl(), streamline_h5p_default(), fapl)
            guard id >= 0 else {
                throw TensorStoreError.hdf5(operation: "create a temporary file", path: temporaryPath,
                                            detail: HDF5.errorStackSummary())
            }
            return id
        }
    }

    deinit { abandon() }

    // MARK: - Tensors

    /// Writes a float32 tensor (its shape and elements) under `name`, e.g. `layers/3/attn/wq`.
    public func write(_ name: String, _ tensor: Tensor) throws {
        try writeRaw(name, dtype: .float32, shape: tensor.shape,
                     bytes: UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount))
    }

    /// Writes `values` (row-major, `shape.product` of them) under `name`; e.g. int32 token ids.
    public func write<T: TensorStoreScalar>(_ name: String, _ values: [T], shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), values.count == shape.reduce(1, *) else {
            throw TensorStoreError.countMismatch(name: name, shape: shape, count: values.count)
        }
        try values.withUnsafeBytes { bytes in
            try writeRaw(name, dtype: T.dtype, shape: shape, bytes: bytes)
        }
    }

    /// Names written so far, in UTF-8 order.
    public var names: [String] { tensorDigests.keys.sorted(by: utf8Less) }

    /// The core write: checks the name, hashes the bytes (outside the HDF5 lock), then creates any
    /// missing groups and one contiguous dataset with its digest attribute. A failed HDF5 call
    /// abandons the whole store, because the file may now hold a half-written dataset.
    /// Why not hash on a second thread while HDF5 writes: measured on this 2-core machine under
    /// build load, it gained nothing (both halves compete for the same cores) and cost a thread hop.
    private func writeRaw(_ name: String, dtype: TensorDType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        let newGroups = try checkNewTensor(name)
        let digest = TensorDigest.compute(dtype: dtype, shape: shape, bytes: bytes)
        do {
            try createDataset(name, dtype: dtype, shape: shape, bytes: bytes, digest: digest, newGroups: newGroups)
        } catch {
            abandon()
            throw error
        }
        tensorDigests[name] = digest
        groups.formUnion(newGroups)
    }

    private func createDataset(_ name: String, dtype: TensorDType, shape: [Int], bytes: UnsafeRawBufferPointer,
                               digest: String, newGroups: [String]) throws {
        let (file, path) = (self.file, temporaryURL.path)
        try HDF5.locked {
            func fail(_ operation: String) -> TensorStoreError {
                .hdf5(operation: operation, path: path, detail: HDF5.errorStackSummary())
            }
            // Object modification times off: same content, same bytes, whenever it is written.
            let gcpl = H5Pcreate(streamline_h5p_group_create())
            defer { H5Pclose(gcpl) }
            H5Pset_obj_track_times(gcpl, false)
            for group in newGroups {
                let id = H5Gcreate2(file, group, streamline_h5p_default(), gcpl, streamline_h5p_default())
                guard id >= 0 else { throw fail("create group '\(group)'") }
                H5Gclose(id)
            }
            let dcpl = H5Pcreate(streamline_h5p_dataset_create())
            defer { H5Pclose(dcpl) }
            H5Pset_obj_track_times(dcpl, false)
            // Contiguous (the default layout, no chunks, no filters): raw disk speed both ways.
            let dims = shape.map { hsize_t($0) }
            let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil)
            guard space >= 0 else { throw fail("describe the shape \(shape) of '\(name)'") }
            defer { H5Sclose(space) }
            let dataset = H5Dcreate2(file, name, dtype.fileType, space, streamline_h5p_default(), dcpl,
                                     streamline_h5p_default())
            guard dataset >= 0 else { throw fail("create dataset '\(name)'") }
            defer { H5Dclose(dataset) }
            if bytes.count > 0 {
                guard H5Dwrite(dataset, dtype.memoryType, streamline_h5s_all(), streamline_h5s_all(),
                               streamline_h5p_default(), bytes.baseAddress) >= 0
                else { throw fail("write tensor '\(name)'") }
            }
            guard HDF5.writeStringAttribute(dataset, StoreFormat.tensorDigestAttribute, digest)
            else { throw fail("record the digest of '\(name)'") }
        }
    }

    /// Validates `name` against the naming rules and what is already written; returns the groups
    /// (outermost first) that must be created for it.
    private func checkNewTensor(_ name: String) throws -> [String] {
        guard !finished else { throw TensorStoreError.writerClosed(path: url.path) }
        if let problem = StoreNames.problem(tensorName: name) {
            throw TensorStoreError.invalidName(name: name, detail: problem)
        }
        if tensorDigests[name] != nil {
            throw TensorStoreError.invalidName(name: name, detail: "a tensor with this name is already written")
        }
        if groups.contains(name) {
            let inside = tensorDigests.keys.filter { $0.hasPrefix(name + "/") }.sorted(by: utf8Less).first ?? name
            throw TensorStoreError.nameConflict(path: url.path, name: name, existing: inside)
        }
        let parts = name.split(separator: "/")
        var newGroups: [String] = []
        for depth in 1..<parts.count {
            let group = parts[..<depth].joined(separator: "/")
            if tensorDigests[group] != nil {
                throw TensorStoreError.nameConflict(path: url.path, name: name, existing: group)
            }
            if !groups.contains(group) { newGroups.append(group) }
        }
        return newGroups
    }

    // MARK: - Metadata

    /// Records `value` as canonical JSON under `key` (e.g. "model_config"). Content metadata is part
    /// of the store digest; setting a key again replaces its value.
    public func setMetadata<T: Encodable>(_ key: String, _ value: T) throws {
        guard !finished else { throw TensorStoreError.writerClosed(path: url.path) }
        if let problem = StoreNames.problem(key: key) { throw TensorStoreError.invalidName(name: key, detail: problem) }
        do {
            metadata[key] = try CanonicalJSON.encode(value)
        } catch EncodingError.invalidValue(let bad, let context) {
            // JSON has no NaN or infinity: say which field, not EncodingError's dump.
            let field = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            throw TensorStoreError.metadataCoding(path: url.path, key: key,
                                                  detail: "'\(field)' is \(bad), not a finite number; the computation that produced it diverged")
        } catch {
            throw TensorStoreError.metadataCoding(path: url.path, key: key, detail: "\(error)")
        }
    }

    /// Replaces the provenance record (not part of the digest).
    public func setProvenance(_ provenance: StoreProvenance) {
        self.provenance = provenance
    }

    // MARK: - Finishing

    /// Records kind, metadata, provenance and the store digest, then moves the file to `url`
    /// atomically. Returns the store digest. On failure nothing appears at `url`.
    @discardableResult
    public func commit() throws -> String {
        guard !finished else { throw TensorStoreError.writerClosed(path: url.path) }
        let digest = StoreDigest.compute(kind: kind, metadata: metadata, tensorDigests: tensorDigests)
        do {
            try writeRootAttributes(digest: digest, provenanceJSON: try CanonicalJSON.encode(provenance))
            try closeFile()
            try syncFile(temporaryURL.path)
            guard rename(temporaryURL.path, url.path) == 0 else {
                throw TensorStoreError.io(operation: "rename the finished store to", path: url.path,
                                          detail: String(cString: strerror(errno)))
            }
            finished = true
            // The rename itself must reach the disk too, or a crash could bring the old name back.
            try syncFile(url.deletingLastPathComponent().path)
        } catch {
            abandon()
            throw error
        }
        return digest
    }

    /// Discards everything written: closes and deletes the temporary file. Safe to call twice.
    public func abandon() {
        guard !finished else { return }
        finished = true
        try? closeFile()
        unlink(temporaryURL.path)
    }

    /// Deletes temporary files that crashed or killed writers left in `folder` (hidden files named
    /// `.<store>.tmp-<pid>-<hex>`) and that have not been modified for `age` seconds; returns their
    /// names. Live writers touch their file as they write, so the default day leaves them alone.
    @discardableResult
    public static func removeStaleTemporaryFiles(in folder: URL, olderThan age: TimeInterval = 86_400) -> [String] {
        let fileManager = FileManager.default
        guard let entries = try? fileManager.contentsOfDirectory(atPath: folder.path) else { return [] }
        let cutoff = Date().addingTimeInterval(-age)
        var removed: [String] = []
        for name in entries.sorted() where isTemporaryName(name) {
            let path = folder.appendingPathComponent(name).path
            guard let modified = (try? fileManager.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                  modified < cutoff, unlink(path) == 0 else { continue }
            removed.append(name)
        }
        return removed
    }

    /// Whether `name` has the shape of a writer's temporary file: `.<store>.tmp-<pid>-<hex>`.
    static func isTemporaryName(_ name: String) -> Bool {
        guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards),
              marker.lowerBound > name.index(after: name.startIndex) else { return false }
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[0].allSatisfy(\.isNumber)
            && !parts[1].isEmpty && parts[1].allSatisfy(\.isHexDigit)
    }

    private func writeRootAttributes(digest: String, provenanceJSON: String) throws {
        let (file, path, kind, metadata) = (self.file, temporaryURL.path, self.kind, self.metadata)
        try HDF5.locked {
            let root = H5Gopen2(file, "/", streamline_h5p_default())
            guard root >= 0 else {
                throw TensorStoreError.hdf5(operation: "open the root group", path: path, detail: HDF5.errorStackSummary())
            }
            defer { H5Gclose(root) }
            var ok = HDF5.writeStringAttribute(root, StoreFormat.markerAttribute, StoreFormat.markerValue)
                && HDF5.writeIntAttribute(root, StoreFormat.versionAttribute, Int64(StoreFormat.version))
                && HDF5.writeStringAttribute(root, StoreFormat.kindAttribute, kind)
                && HDF5.writeStringAttribute(root, StoreFormat.digestAttribute, digest)
                && HDF5.writeStringAttribute(root, StoreFormat.provenanceAttribute, provenanceJSON)
            for key in metadata.keys.sorted(by: utf8Less) where ok {
                ok = HDF5.writeStringAttribute(root, StoreFormat.metadataPrefix + key, metadata[key]!)
            }
            guard ok else {
                throw TensorStoreError.hdf5(operation: "write the store attributes", path: path,
                                            detail: HDF5.errorStackSummary())
            }
        }
    }

    private func closeFile() throws {
        guard file >= 0 else { return }
        let (id, path) = (file, temporaryURL.path)
        file = -1
        try HDF5.locked {
            guard H5Fclose(id) >= 0 else {
                throw TensorStoreError.hdf5(operation: "close", path: path, detail: HDF5.errorStackSummary())
            }
        }
    }
}

/// fsync(2) on a file or folder, so data (or a rename) survives a crash.
func syncFile(_ path: String) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
        throw TensorStoreError.io(operation: "open for fsync", path: path, detail: String(cString: strerror(errno)))
    }
    defer { close(fd) }
    guard fsync(fd) == 0 else {
        throw TensorStoreError.io(operation: "fsync", path: path, detail: String(cString: strerror(errno)))
    }
}
