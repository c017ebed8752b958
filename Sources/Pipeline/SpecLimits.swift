// What a spec file may be, so that a broken or hostile one (a file that is not a spec, 100,000
// nested lists, an alias bomb) ends in a located error instead of a crash, a hang or gigabytes of
// memory. A hand-written pipeline is kilobytes, a handful of levels deep and a few hundred values;
// the limits are far above that and far below what hurts.
//
// Order of the checks (SpecLoader.compose): the file is a regular file and at most `maxBytes`
// (read no further); the text nests at most `maxDepth` deep by a pass over its tokens
// (YAMLNesting.swift), before Yams composes it recursively; the composed document, every alias and
// `<<` merge expanded where it is used, nests at most `maxDepth` deep and holds at most
// `maxValues` values (an iterative walk that stops at the limit, so a bomb costs at most that).

import Foundation
import Yams

public enum SpecLimits {
    /// The most bytes a spec file (or an included fragment) may have: 4 MiB.
    public static let maxBytes = 4 << 20
    /// The most lists and mappings one value may sit in, aliases expanded (the root mapping is 1).
    public static let maxDepth = 64
    /// The most values (scalars, lists, mappings, keys included) a document may expand to, each use
    /// of an alias or merge counting its whole value again.
    public static let maxValues = 1_000_000
    /// Where the token pass (YAMLNesting.swift) refuses a text: its bound is at most about 3 × the
    /// depth (2 × without aliases), so past this the depth is past `maxDepth`; below it, Yams recurses
    /// at most this deep. Depths between the two are refused exactly, after composing.
    static let nestingGuard = 4 * maxDepth
}

/// Which of `SpecLimits` a spec passed.
public enum SpecLimit: Sendable, Equatable {
    case bytes, depth, values

    var problem: String {
        switch self {
        case .bytes: return "the file is larger than \(SpecLimits.maxBytes >> 20) MiB"
        case .depth: return "this value is nested more than \(SpecLimits.maxDepth) lists or mappings deep (aliases expanded)"
        case .values: return "the document expands to more than \(grouped(SpecLimits.maxValues)) values "
            + "(each use of an alias or '<<' merge counts its whole value again)"
        }
    }

    var advice: String {
        switch self {
        case .bytes: return "A spec is a few kilobytes: check that this is the file you meant"
        case .depth: return "A spec needs a few levels: flatten the structure"
        case .values: return "Use fewer or smaller aliases"
        }
    }
}

/// 1000000 as "1,000,000".
private func grouped(_ n: Int) -> String {
    var digits = String(n), out = ""
    while digits.count > 3 { out = "," + digits.suffix(3) + out; digits.removeLast(3) }
    return digits + out
}

extension SpecLoader {
    /// The bytes of the spec file at `url`, refused unless it is a regular file of at most
    /// `SpecLimits.maxBytes` (a FIFO or device would block or never end).
    func readSpecFile(_ url: URL, displayName: String) throws -> Data {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused by fstat below.
        let fd = open(url.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw PipelineError.unreadableFile(path: displayName, detail: "no such file or it cannot be read")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw PipelineError.unreadableFile(path: displayName, detail: "not a regular file")
        }
        let data = (try? handle.read(upToCount: SpecLimits.maxBytes + 1)) ?? Data()
        guard data.count <= SpecLimits.maxBytes else {
            throw PipelineError.specLimit(at: location(ofByte: SpecLimits.maxBytes, in: data), limit: .bytes)
        }
        return data
    }

    /// The line and column of byte `offset` of `data` in this file.
    func location(ofByte offset: Int, in data: some Collection<UInt8>) -> SourceLocation {
        var line = 1, column = 1
        for byte in data.prefix(offset) {
            if byte == 10 { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return SourceLocation(file: file, line: line, column: column)
    }

    /// Composes `yaml` with Yams once it is known to be within the limits, and checks the result.
    func compose(_ yaml: String) throws -> Node? {
        if yaml.utf8.count > SpecLimits.maxBytes {
            throw PipelineError.specLimit(at: location(ofByte: SpecLimits.maxBytes, in: yaml.utf8), limit: .bytes)
        }
        try checkYAMLNesting(yaml, file: file)
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch let error as YamlError {
            throw yamlError(error)
        }
        if let root { try checkExpansion(root) }
        return root
    }

    /// Walks the document as the loader reads it, every alias and merge expanded, without recursion,
    /// and stops at the first value past `maxDepth` or at `maxValues`. A value reached through an
    /// alias carries the location of the anchored original; the count is charged to the top-level
    /// key it is under, which is where that error points.
    func checkExpansion(_ root: Node) throws {
        var stack: [(node: Node, depth: Int, top: Node)] = []
        if case .mapping(let m) = root {
            for (key, value) in m.reversed() { stack += [(value, 2, key), (key, 2, key)] }
        } else {
            stack.append((root, 1, root))
        }
        var values = 1
        while let (node, depth, top) = stack.popLast() {
            values += 1
            guard values <= SpecLimits.maxValues else { throw PipelineError.specLimit(at: loc(top), limit: .values) }
            switch node {
            case .scalar: continue
            case .mapping(let m):
                guard depth <= SpecLimits.maxDepth else { throw PipelineError.specLimit(at: loc(node), limit: .depth) }
                for (key, value) in m.reversed() { stack += [(value, depth + 1, top), (key, depth + 1, top)] }
            case .sequence(let s):
                guard depth <= SpecLimits.maxDepth else { throw PipelineError.specLimit(at: loc(node), limit: .depth) }
                for item in s.reversed() { stack.append((item, depth + 1, top)) }
            }
        }
    }
}
