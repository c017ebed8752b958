// Content digests of external files that `.file`/`.files` parameters name: the planner puts these
// into fingerprints instead of paths, so editing a file re-runs its stages and moving it does not.
// A file's digest is the SHA-256 of its bytes; a folder's, of every regular file below it (relative
// path, a NUL byte, the bytes) in sorted path order — the same as `ModelStore.contentDigest(of:)`.
// Each distinct file is hashed once per process: results are memoised by absolute path, size and
// modification time (for a folder: of every file below it), so planning a sweep stays fast.
// Not here: deciding which parameters are files (ParamType) or resolving relative paths (Planner).

import Foundation
import Synchronization
import TensorStore

public enum ContentDigest {
    /// The lowercase hex SHA-256 of the file or folder at the absolute `path`. Throws
    /// `PipelineError.io` when it cannot be read.
    public static func of(path: String) throws -> String {
        let key = try memoKey(path)
        if let known = memo.withLock({ $0[key] }) { return known }
        let digest = try compute(path)
        memo.withLock { $0[key] = digest }
        return digest
    }

    /// Absolute path + size + mtime of the file, or of every file below a folder.
    private static let memo = Mutex<[String: String]>([:])

    private static func memoKey(_ path: String) throws -> String {
        guard let top = status(path) else { throw readError(path, "no such file or folder") }
        if !top.isFolder { return "f\t\(path)\t\(top.stamp)" }
        var key = "d\t\(path)"
        for (relative, stamp) in try filesBelow(path) { key += "\n\(relative)\t\(stamp)" }
        return key
    }

    private static func compute(_ path: String) throws -> String {
        do {
            return try FileDigest.sha256(of: path)
        } catch {
            throw readError(error.path, error.detail)
        }
    }

    /// Regular files below `folder`, by relative path in sorted order, with their size/mtime stamps.
    private static func filesBelow(_ folder: String) throws -> [(String, String)] {
        guard let below = FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] else {
            throw readError(folder, "cannot list the folder")
        }
        return below.sorted().compactMap { relative in
            guard let s = status(folder + "/" + relative), !s.isFolder else { return nil }
            return (relative, s.stamp)
        }
    }

    private static func status(_ path: String) -> (isFolder: Bool, stamp: String)? {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        let isFolder = (s.st_mode & S_IFMT) == S_IFDIR
        return (isFolder, "\(s.st_size)\t\(s.st_mtim.tv_sec).\(s.st_mtim.tv_nsec)")
    }

    private static func readError(_ path: String, _ detail: String) -> PipelineError {
        .io(operation: "hash the content of", path: path, detail: detail)
    }
}
