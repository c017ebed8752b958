// The content digest of an external file or folder: what an import's `sha256`, a model store's
// `source` and every `.file`/`.files` parameter's fingerprint record. One definition, so those
// agree byte for byte.

import Crypto
import Foundation

public enum FileDigest {
    /// A file or folder that could not be read; `detail` says why.
    public struct Unreadable: Error, Sendable {
        public let path: String
        public let detail: String
    }

    /// SHA-256 (hex) of a file's bytes; for a folder, of every regular file's relative path (then a
    /// 0 byte) and bytes, in sorted path order. Read in 4 MiB chunks, never whole.
    public static func sha256(of path: String) throws(Unreadable) -> String {
        var hasher = SHA256()
        if isFolder(path) {
            for relative in try filesBelow(path) {
                hasher.update(data: Data(relative.utf8 + [0]))
                try hashFile(path + "/" + relative, into: &hasher)
            }
        } else {
            try hashFile(path, into: &hasher)
        }
        return hex(hasher.finalize())
    }

    /// Regular files below `folder` (symlinks followed), relative paths in sorted order.
    public static func filesBelow(_ folder: String) throws(Unreadable) -> [String] {
        guard let below = FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] else {
            throw Unreadable(path: folder, detail: "cannot list the folder")
        }
        return below.sorted().filter { relative in
            var s = stat()
            return stat(folder + "/" + relative, &s) == 0 && (s.st_mode & S_IFMT) != S_IFDIR
        }
    }

    static func isFolder(_ path: String) -> Bool {
        var s = stat()
        return stat(path, &s) == 0 && (s.st_mode & S_IFMT) == S_IFDIR
    }

    static func hashFile(_ path: String, into hasher: inout SHA256) throws(Unreadable) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Unreadable(path: path, detail: "cannot open it for reading; check permissions") }
        defer { try? handle.close() }
        while true {
            let chunk = handle.readData(ofLength: 1 << 22)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
    }
}
