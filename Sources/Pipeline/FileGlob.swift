// Globs in `.files` parameters: `data/*.jsonl`, `corpora/**/*.txt`. A pattern is split at `/`;
// `**` as a whole component matches zero or more folders, any other component is an fnmatch(3)
// pattern (`*`, `?`, `[…]`) for one name. Matches are regular files only, hidden names (a leading
// `.`) are skipped unless the component itself starts with `.`, and the result is sorted by path
// bytes, so the planner's digest list — and so the fingerprint — is the same on every machine.
// Not here: resolving relative paths or reporting a pattern that matches nothing (Planner).

import Foundation

public enum FileGlob {
    /// Whether `text` is a pattern rather than a plain path.
    public static func isPattern(_ text: String) -> Bool { text.contains { "*?[".contains($0) } }

    /// Absolute paths of the regular files `pattern` (absolute, standardized) matches, sorted.
    public static func expand(_ pattern: String) -> [String] {
        let parts = pattern.split(separator: "/").map(String.init)
        // Walk from the longest prefix without wildcards: no need to list the whole disk.
        let fixed = parts.prefix { !isPattern($0) }
        let root = "/" + fixed.joined(separator: "/")
        var out: [String] = []
        var visited = Set<String>()
        walk(root, Array(parts.dropFirst(fixed.count))[...], into: &out, visited: &visited)
        return Array(Set(out)).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// `visited`: real paths of the folders `**` entered, so a symlink back up cannot loop.
    private static func walk(_ folder: String, _ rest: ArraySlice<String>, into out: inout [String], visited: inout Set<String>) {
        guard let head = rest.first else {
            if isRegularFile(folder) { out.append(folder) }
            return
        }
        let tail = rest.dropFirst()
        if head == "**" {
            guard visited.insert(URL(fileURLWithPath: folder).resolvingSymlinksInPath().path).inserted else { return }
            walk(folder, tail, into: &out, visited: &visited)  // zero folders
            for name in entries(folder, hidden: false) where isFolder(child(folder, name)) {
                walk(child(folder, name), rest, into: &out, visited: &visited)
            }
            return
        }
        for name in entries(folder, hidden: head.hasPrefix(".")) where fnmatch(head, name, 0) == 0 {
            walk(child(folder, name), tail, into: &out, visited: &visited)
        }
    }

    private static func child(_ folder: String, _ name: String) -> String {
        folder == "/" ? "/" + name : folder + "/" + name
    }

    private static func entries(_ folder: String, hidden: Bool) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { hidden || !$0.hasPrefix(".") }
    }

    private static func isFolder(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && !folder.boolValue
    }
}
