// Every failure the TensorStore module reports: what went wrong, where, and what to do next.
// HDF5's own error stack is never printed; its innermost message is folded into `detail` fields.

/// An error reading, writing or verifying a tensor store.
public enum TensorStoreError: Error, Sendable, Equatable {
    /// No file at `path`.
    case fileNotFound(path: String)
    /// The file exists but is not HDF5 (plain text, random bytes, a directory…).
    case notHDF5(path: String, detail: String)
    /// An HDF5 file that HDF5 cannot open (truncated or damaged).
    case unreadable(path: String, detail: String)
    /// A readable HDF5 file that Streamline did not write (no store marker, or a malformed one).
    case notAStore(path: String, detail: String)
    /// A store of another kind than the caller needs (e.g. a dataset where a model was expected).
    case wrongKind(path: String, expected: String, found: String)
    /// A store written by a newer Streamline with a format this build does not know.
    case unsupportedFormatVersion(path: String, found: Int, supported: Int)
    /// A dataset inside the store that a store cannot hold or that lacks its digest.
    case invalidTensor(path: String, name: String, detail: String)
    /// The requested tensor is not in the store.
    case missingTensor(path: String, name: String, available: [String], suggestion: String?)
    /// The tensor exists with another shape than the caller expects.
    case shapeMismatch(path: String, name: String, expected: [Int], found: [Int])
    /// The tensor exists with another element type than the caller asked for.
    case dtypeMismatch(path: String, name: String, expected: TensorDType, found: TensorDType)
    /// The tensor's data no longer hashes to the digest recorded when it was written.
    case digestMismatch(path: String, name: String, recorded: String, computed: String)
    /// The store digest recorded at commit differs from the one its tensors and metadata give now.
    case storeDigestMismatch(path: String, recorded: String, computed: String)
    /// The requested metadata key is not in the store.
    case missingMetadata(path: String, key: String, available: [String])
    /// A metadata value could not be encoded or decoded as the requested type.
    case metadataCoding(path: String, key: String, detail: String)
    /// A tensor name, kind or metadata key breaks the naming rules.
    case invalidName(name: String, detail: String)
    /// The writer already holds a tensor (or group) under this name.
    case nameConflict(path: String, name: String, existing: String)
    /// `values.count` does not match the shape given for a tensor being written.
    case countMismatch(name: String, shape: [Int], count: Int)
    /// The writer was used after `commit()` or `abandon()`.
    case writerClosed(path: String)
    /// An HDF5 call failed while reading or writing (disk full, permissions…).
    case hdf5(operation: String, path: String, detail: String)
    /// A file-system call failed (create, fsync, rename…).
    case io(operation: String, path: String, detail: String)
}

extension TensorStoreError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "No tensor store at \(path). Check the path, or run the stage that produces it."
        case .notHDF5(let path, let detail):
            return "\(path) is not an HDF5 file (\(detail)). Point at a store written by Streamline (.h5)."
        case .unreadable(let path, let detail):
            return "\(path) is an HDF5 file that cannot be opened (\(detail)); it is probably truncated or "
                + "damaged. Delete it and re-run the stage that wrote it."
        case .notAStore(let path, let detail):
            return "\(path) is an HDF5 file but not a Streamline tensor store (\(detail)). "
                + "Only files written by Streamline's TensorStoreWriter open as stores; convert other checkpoints first."
        case .wrongKind(let path, let expected, let found):
            return "\(path) is a '\(found)' store, but a '\(expected)' store is needed here. "
                + "Check which stage output is wired to this input."
        case .unsupportedFormatVersion(let path, let found, let supported):
            return "\(path) uses store format version \(found); this build reads up to version \(supported). "
                + "Update Streamline, or re-create the store with this version."
        case .invalidTensor(let path, let name, let detail):
            return "Tensor '\(name)' in \(path) is not a valid store tensor: \(detail). "
                + "The file was probably edited outside Streamline; re-create it."
        case .missingTensor(let path, let name, let available, let suggestion):
            let hint = suggestion.map { " Did you mean '\($0)'?" } ?? ""
            let shown = available.prefix(12).joined(separator: ", ")
            let more = available.count > 12 ? ", … (\(available.count) in all)" : ""
            let list = available.isEmpty ? "the store holds no tensors" : "it holds: \(shown)\(more)"
            return "No tensor '\(name)' in \(path); \(list).\(hint) "
                + "Run `streamline inspect \(path)` to list every tensor."
        case .shapeMismatch(let path, let name, let expected, let found):
            return "Tensor '\(name)' in \(path) has shape \(found), expected \(expected). "
                + "The store was written for another configuration; check the model config it records."
        case .dtypeMismatch(let path, let name, let expected, let found):
            return "Tensor '\(name)' in \(path) holds \(found), but \(expected) was requested. "
                + "Read it with the accessor for \(found)."
        case .digestMismatch(let path, let name, let recorded, let computed):
            return "Tensor '\(name)' in \(path) is corrupted: its data hashes to \(computed.prefix(16))…, "
                + "but \(recorded.prefix(16))… was recorded when it was written. "
                + "Delete the store and re-run the stage that produced it."
        case .storeDigestMismatch(let path, let recorded, let computed):
            return "The store digest of \(path) no longer matches its contents (recorded \(recorded.prefix(16))…, "
                + "now \(computed.prefix(16))…): tensors or metadata were changed after it was written. "
                + "Delete the store and re-run the stage that produced it."
        case .missingMetadata(let path, let key, let available):
            let list = available.isEmpty ? "it has none" : "it has: \(available.joined(separator: ", "))"
            return "No metadata '\(key)' in \(path); \(list). Check the key, or the stage that wrote the store."
        case .metadataCoding(let path, let key, let detail):
            return "Metadata '\(key)' of \(path) could not be converted: \(detail). "
                + "Check that the type you read it as matches the type it was written as."
        case .invalidName(let name, let detail):
            return "Invalid store name '\(name)': \(detail). "
                + "Use '/'-separated parts such as layers/3/attn/wq (keys and kinds: letters, digits, _ - .)."
        case .nameConflict(let path, let name, let existing):
            return "Cannot write '\(name)' to \(path): '\(existing)' is already written and one would have to be "
                + "both a tensor and a group. Rename one of them."
        case .countMismatch(let name, let shape, let count):
            return "Tensor '\(name)': \(count) values given for shape \(shape) "
                + "(\(shape.reduce(1, *)) elements). Pass as many values as the shape holds."
        case .writerClosed(let path):
            return "The store writer for \(path) was already committed or abandoned. Create a new writer."
        case .hdf5(let operation, let path, let detail):
            return "HDF5 could not \(operation) in \(path): \(detail). "
                + "Check free disk space and permissions of the folder."
        case .io(let operation, let path, let detail):
            return "Could not \(operation) \(path): \(detail). Check free disk space and permissions of the folder."
        }
    }
}
