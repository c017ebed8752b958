// A read-only memory map of a whole file, shared by the checkpoint readers (GGUF, safetensors) so that
// a 100 MB checkpoint is paged in on demand instead of copied. Not a writer; not a general file API.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The bytes of one file, mapped read-only for the lifetime of this object.
final class MappedFile: @unchecked Sendable {
    /// The file's path, for error messages.
    let path: String
    /// First byte (nil for an empty file).
    let base: UnsafeRawPointer?
    /// File size in bytes.
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw DataError.unreadable(path: path, detail: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DataError.unreadable(path: path, detail: String(cString: strerror(errno)))
        }
        size = Int(info.st_size)
        if size == 0 { base = nil; return }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw DataError.unreadable(path: path, detail: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// Bytes `range` (precondition: inside the file; callers check against `size` and throw first).
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= size, "MappedFile: \(range) outside \(size) bytes")
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }
}
