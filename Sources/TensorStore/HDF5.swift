// The one door to the HDF5 C library: a process-wide lock, per-thread error silencing, error-stack
// capture, and the few attribute and type helpers the store reader and writer share.
// This file knows nothing about tensors or digests; it only makes HDF5 safe and quiet to call.

import CHDF5
import Synchronization

enum HDF5 {
    /// The serial HDF5 build is not thread-safe: every HDF5 call in the process goes through this lock.
    private static let mutex = Mutex<Void>(())

    /// Starts the library without its exit handler. That handler flushes and closes whatever is still
    /// open at exit; after a close that failed (disk full) it flushes the half-closed file again and
    /// segfaults, turning a clean error and exit status 1 into a crash. Every store is closed (or
    /// abandoned and deleted) explicitly, so the handler has nothing left to do.
    private static let library: Void = {
        H5dont_atexit()
        H5open()
    }()

    /// Runs `body` (which may call HDF5) while holding the process-wide HDF5 lock.
    ///
    /// Silencing is re-applied on every entry because `H5Eset_auto2` is per thread and callers may
    /// arrive on any thread; it is a cheap call next to any file operation.
    static func locked<R: Sendable>(_ body: () throws -> R) throws -> R {
        _ = library
        return try mutex.withLock { _ in
            streamline_h5_silence_errors()
            defer { H5Eclear2(streamline_h5e_default()) }
            return try body()
        }
    }

    /// The innermost messages on this thread's HDF5 error stack (most specific first), then clears it.
    /// Call right after a failed HDF5 call, inside `locked`.
    static func errorStackSummary() -> String {
        final class Messages { var lines: [String] = [] }
        let messages = Messages()
        withExtendedLifetime(messages) {
            _ = H5Ewalk2(streamline_h5e_default(), H5E_WALK_UPWARD, { _, error, context in
                guard let error, let context, let text = error.pointee.desc else { return 0 }
                let box = Unmanaged<Messages>.fromOpaque(context).takeUnretainedValue()
                box.lines.append(String(cString: text))
                return 0
            }, Unmanaged.passUnretained(messages).toOpaque())
        }
        H5Eclear2(streamline_h5e_default())
        // The innermost two messages say what went wrong; the rest is the API call chain. A failed
        // system call's own words (`error message = 'No space left on device'`) lead, on one line.
        let useful = messages.lines.filter { !$0.isEmpty }.prefix(2)
            .map { $0.split(whereSeparator: \.isNewline).joined(separator: " ") }
        guard !useful.isEmpty else { return "no detail from HDF5" }
        let text = useful.joined(separator: "; ")
        guard let start = text.range(of: "error message = '"),
              let end = text[start.upperBound...].firstIndex(of: "'") else { return text }
        // The driver's message goes on with times, buffers and offsets: keep what failed, not those.
        let what = useful.map { line in line.range(of: ": time = ").map { String(line[..<$0.lowerBound]) } ?? line }
        return "\(text[start.upperBound..<end]) (\(what.joined(separator: "; ")))"
    }

    /// A file-access property list with HDF5's flock-based file locking off.
    ///
    /// Why: our stores are immutable once renamed into place (writers use a private temporary
    /// file), so the lock protects nothing, and flock fails on some network file systems used by
    /// Slurm clusters.
    static func fileAccessList() -> hid_t {
        let fapl = H5Pcreate(streamline_h5p_file_access())
        H5Pset_file_locking(fapl, false, true)
        return fapl
    }

    // MARK: - Attributes

    /// A variable-length UTF-8 string type (h5py reads it as `str`). Caller closes it.
    static func utf8StringType() -> hid_t {
        let type = H5Tcopy(streamline_h5t_c_s1())
        H5Tset_size(type, streamline_h5t_variable())
        H5Tset_cset(type, H5T_CSET_UTF8)
        return type
    }

    /// Writes a scalar string attribute `name` on object `object`. Returns false on HDF5 failure.
    static func writeStringAttribute(_ object: hid_t, _ name: String, _ value: String) -> Bool {
        let type = utf8StringType()
        defer { H5Tclose(type) }
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let attribute = H5Acreate2(object, name, type, space, streamline_h5p_default(), streamline_h5p_default())
        guard attribute >= 0 else { return false }
        defer { H5Aclose(attribute) }
        return value.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            return H5Awrite(attribute, type, &pointer) >= 0
        }
    }

    /// Writes a scalar 64-bit integer attribute. Returns false on HDF5 failure.
    static func writeIntAttribute(_ object: hid_t, _ name: String, _ value: Int64) -> Bool {
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let attribute = H5Acreate2(object, name, streamline_h5t_std_i64le(), space,
                                   streamline_h5p_default(), streamline_h5p_default())
        guard attribute >= 0 else { return false }
        defer { H5Aclose(attribute) }
        var v = value
        return H5Awrite(attribute, streamline_h5t_native_int64(), &v) >= 0
    }

    /// Names of every attribute on `object`, in name order.
    static func attributeNames(_ object: hid_t) -> [String] {
        final class Names { var list: [String] = [] }
        let names = Names()
        withExtendedLifetime(names) {
            var index: hsize_t = 0
            _ = H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, context in
                guard let name, let context else { return 0 }
                Unmanaged<Names>.fromOpaque(context).takeUnretainedValue().list.append(String(cString: name))
                return 0
            }, Unmanaged.passUnretained(names).toOpaque())
        }
        return names.list
    }

    /// Opens attribute `name` of `object` with its file type for `body`; nil if the attribute is absent.
    private static func withAttribute<T>(_ object: hid_t, _ name: String, _ body: (_ attribute: hid_t, _ fileType: hid_t) -> T?) -> T? {
        guard H5Aexists(object, name) > 0 else { return nil }
        let attribute = H5Aopen(object, name, streamline_h5p_default())
        guard attribute >= 0 else { return nil }
        defer { H5Aclose(attribute) }
        let fileType = H5Aget_type(attribute)
        defer { H5Tclose(fileType) }
        return body(attribute, fileType)
    }

    /// Reads scalar string attribute `name` (variable or fixed length); nil if absent or not a string.
    static func readStringAttribute(_ object: hid_t, _ name: String) -> String? {
        withAttribute(object, name) { attribute, fileType in
            guard H5Tget_class(fileType) == H5T_STRING else { return nil }
            if H5Tis_variable_str(fileType) > 0 {
                let memoryType = utf8StringType()
                defer { H5Tclose(memoryType) }
                var pointer: UnsafeMutablePointer<CChar>?
                guard H5Aread(attribute, memoryType, &pointer) >= 0, let pointer else { return nil }
                defer { H5free_memory(pointer) }
                return String(cString: pointer)
            }
            // Fixed-length strings (h5py writes these for numpy bytes): read into a NUL-terminated
            // memory type one byte longer, so a string that fills its whole width is not cut short.
            let size = H5Tget_size(fileType)
            let memoryType = H5Tcopy(streamline_h5t_c_s1())
            defer { H5Tclose(memoryType) }
            H5Tset_size(memoryType, size + 1)
            var bytes = [UInt8](repeating: 0, count: size + 1)
            guard H5Aread(attribute, memoryType, &bytes) >= 0 else { return nil }
            let end = bytes.firstIndex(of: 0) ?? size
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    /// Reads a scalar integer attribute; nil if absent or not an integer.
    static func readIntAttribute(_ object: hid_t, _ name: String) -> Int64? {
        withAttribute(object, name) { attribute, fileType in
            guard H5Tget_class(fileType) == H5T_INTEGER else { return nil }
            var value: Int64 = 0
            guard H5Aread(attribute, streamline_h5t_native_int64(), &value) >= 0 else { return nil }
            return value
        }
    }
}
