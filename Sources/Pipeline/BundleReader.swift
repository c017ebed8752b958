// Unpacking a cache bundle that may be hostile. A bundle is a tar file (optionally gzip, xz, bzip2
// or zstd compressed) that `cache export` wrote; this file reads it member by member, itself, so
// every member is judged before a byte of it is written:
//
//   - only regular files and folders (no links, devices, FIFOs; no setuid/setgid bits);
//   - only the names of the cache layout: entries/, entries/ab/, entries/ab/<64 hex>/ and, inside an
//     entry, record.json, log.txt and OUTPUT.h5 (no `..`, no absolute paths, no other files);
//   - the declared sizes add up to at most `BundleLimits.maxBytes`, checked from each header before
//     its data is read, so a decompression bomb stops at the limit;
//   - files are created by this process, new (O_EXCL), 0644, inside the staging folder only.
//
// Why not `tar -x`: it follows the archive's types, modes, owners and names, and its size is known
// only after everything is on disk.

import Foundation

/// Limits on what a bundle may unpack to.
public struct BundleLimits: Sendable, Equatable {
    /// Total bytes of every member's data once decompressed.
    public var maxBytes: Int64
    /// Members (files, folders, extended headers) in the archive.
    public var maxMembers: Int

    public init(maxBytes: Int64, maxMembers: Int = 100_000) {
        self.maxBytes = maxBytes
        self.maxMembers = maxMembers
    }

    /// 64 GiB: room for a float32 7B-parameter model (28 GB) with its pruned and finetuned copies.
    public static let standard = BundleLimits(maxBytes: 64 << 30)
}

/// Reads a bundle into `staging` (an empty folder this process made). Throws `badBundle` on the first
/// member that breaks a rule; what was written so far stays in `staging` for the caller to remove.
func unpackBundle(_ bundle: URL, into staging: URL, limits: BundleLimits) throws {
    func refuse(_ detail: String) -> PipelineError { .badBundle(path: bundle.path, detail: detail) }
    let stream = try BundleStream(bundle)
    defer { stream.finish() }
    var total: Int64 = 0
    var members = 0
    var disk = statvfs()
    let free = statvfs(staging.path, &disk) == 0 ? Int64(disk.f_bavail) * Int64(disk.f_frsize) : .max
    var longName: String?
    var paxName: String?
    var paxSize: Int64?
    while true {
        let next: [UInt8]?
        do { next = try stream.read(512, allowEnd: true) } catch PipelineError.badBundle(_, "the archive is truncated") where members == 0 {
            throw refuse("it is not a tar archive")
        }
        guard let block = next else { throw refuse(members == 0 ? "it is empty" : "the archive ends without its end marker") }
        if block.allSatisfy({ $0 == 0 }) { return }
        guard let header = TarHeader(block) else {
            throw refuse(members == 0 ? "it is not a tar archive" : "member \(members + 1) has a damaged tar header")
        }
        members += 1
        guard members <= limits.maxMembers else { throw refuse("it has more than \(limits.maxMembers) members") }
        let size = paxSize ?? header.size
        let name = paxName ?? longName ?? header.name
        (longName, paxName, paxSize) = (nil, nil, nil)
        guard size >= 0 else { throw refuse("'\(name)' has an invalid size") }
        // Metadata members are small; cap them so they cannot be a bomb of their own. GNU's long link
        // name ('K') is read past like the rest: the link it names is refused for what it is.
        switch header.type {
        case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            guard size <= 1 << 20 else { throw refuse("an extended header of \(size) bytes") }
            let data = try stream.read(Int(size), allowEnd: false)!
            try stream.skip(padding(size))
            total += size
            if header.type == UInt8(ascii: "L") {
                longName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            } else if header.type == UInt8(ascii: "x") {
                guard let fields = paxFields(data) else { throw refuse("a malformed extended header") }
                paxName = fields["path"]
                if let s = fields["size"] {
                    guard let n = Int64(s), n >= 0 else { throw refuse("an extended header with size '\(s)'") }
                    paxSize = n
                }
            }
            continue
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"), UInt8(ascii: "5"):
            break
        default:
            throw refuse("'\(name)' is a \(header.typeDescription); a bundle holds only regular files and folders")
        }
        guard header.mode & 0o6000 == 0 else { throw refuse("'\(name)' has the setuid or setgid bit") }
        let isFolder = header.type == UInt8(ascii: "5")
        guard let relative = bundleMemberPath(name, isFolder: isFolder) else {
            throw refuse("'\(name)' is not a cache entry file (expected entries/ab/<64 hex digits>/record.json, log.txt or OUTPUT.h5)")
        }
        let (sum, overflow) = total.addingReportingOverflow(size)
        guard !overflow, sum <= limits.maxBytes else {
            throw refuse("it unpacks to more than \(limits.maxBytes) bytes (at '\(name)'); raise the limit with --max-size if you trust it")
        }
        guard sum <= free else {
            throw refuse("it unpacks to more than the \(free) bytes free on the cache's disk (at '\(name)'); free space first")
        }
        total = sum
        let target = staging.appendingPathComponent(relative)
        if isFolder {
            guard size == 0 else { throw refuse("folder '\(name)' has data") }
            try makeDirectory(target)
            continue
        }
        if relative.hasSuffix("/record.json"), size > 16 << 20 { throw refuse("'\(name)' is \(size) bytes, too large for a record") }
        try makeDirectory(target.deletingLastPathComponent())
        // O_EXCL: a name twice in the archive is refused, and nothing that exists is ever opened.
        let fd = open(target.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw errno == EEXIST ? refuse("'\(name)' appears twice")
                : PipelineError.io(operation: "create", path: target.path, detail: errnoText())
        }
        defer { close(fd) }
        try stream.copy(size, to: fd, path: target.path)
        try stream.skip(padding(size))
    }
}

/// Bytes after a member's data up to the next 512-byte block.
private func padding(_ size: Int64) -> Int64 { (512 - size % 512) % 512 }

/// The staging-relative path a member may be written to, or nil when the name is not part of the
/// cache layout. Every component is checked, so the result never leaves the staging folder.
func bundleMemberPath(_ rawName: String, isFolder: Bool) -> String? {
    var name = Substring(rawName)
    while name.hasPrefix("./") { name = name.dropFirst(2) }
    if isFolder, name.hasSuffix("/") { name = name.dropLast() }
    let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard (1...4).contains(parts.count), parts[0] == "entries", !(isFolder && parts.count == 4),
          !isFolder || parts.count < 4, isFolder || parts.count == 4 else { return nil }
    if parts.count >= 2 { guard parts[1].count == 2, isLowercaseHex(parts[1]) else { return nil } }
    if parts.count >= 3 { guard isFingerprint(parts[2]), parts[2].hasPrefix(parts[1]) else { return nil } }
    if parts.count == 4 { guard isEntryFileName(parts[3]) else { return nil } }
    return parts.joined(separator: "/")
}

/// record.json, log.txt or OUTPUT.h5 where OUTPUT is a plain name (letters, digits, `_`, `-`, `.`
/// not first): no separators, no hidden files.
func isEntryFileName(_ name: String) -> Bool {
    if name == "record.json" || name == "log.txt" { return true }
    guard name.hasSuffix(".h5") else { return false }
    let stem = name.dropLast(3)
    return !stem.isEmpty && !stem.hasPrefix(".")
        && stem.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)) }
}

/// Exactly 64 lowercase hex digits: the only shape a fingerprint has.
public func isFingerprint(_ text: String) -> Bool { text.utf8.count == 64 && isLowercaseHex(text) }

func isLowercaseHex(_ text: String) -> Bool {
    !text.isEmpty && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
}

/// `len key=value\n` records of a pax extended header; nil when malformed.
private func paxFields(_ data: [UInt8]) -> [String: String]? {
    var fields: [String: String] = [:]
    var rest = data[...]
    while !rest.isEmpty {
        guard let space = rest.firstIndex(of: UInt8(ascii: " ")),
              let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
              length > space - rest.startIndex, length <= rest.count else { return nil }
        let record = rest[(space + 1)..<(rest.startIndex + length)]
        guard record.last == UInt8(ascii: "\n"), let eq = record.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        fields[String(decoding: record[record.startIndex..<eq], as: UTF8.self)] =
            String(decoding: record[(eq + 1)..<(record.endIndex - 1)], as: UTF8.self)
        rest = rest[(rest.startIndex + length)...]
    }
    return fields
}

/// One 512-byte tar header (ustar, GNU or v7), checksum verified.
private struct TarHeader {
    var name: String
    var mode: Int64
    var size: Int64
    var type: UInt8

    init?(_ b: [UInt8]) {
        var sum = 0
        for (i, byte) in b.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(byte) }
        guard let recorded = Self.number(b[148..<156]), recorded == sum,
              let mode = Self.number(b[100..<108]), let size = Self.number(b[124..<136]) else { return nil }
        func text(_ r: Range<Int>) -> String { String(decoding: b[r].prefix { $0 != 0 }, as: UTF8.self) }
        // POSIX ustar keeps a name prefix in 345..<500; GNU ("ustar  ") uses those bytes for times.
        let posix = b[257..<263].elementsEqual("ustar\0".utf8)
        let prefix = posix ? text(345..<500) : ""
        self.name = prefix.isEmpty ? text(0..<100) : prefix + "/" + text(0..<100)
        self.mode = mode
        self.size = size
        self.type = b[156]
    }

    /// Octal (NUL/space terminated) or GNU base-256 (high bit of the first byte set, positive only).
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        if let first = field.first, first & 0x80 != 0 {
            guard first == 0x80 else { return nil }
            var value: Int64 = 0
            for byte in field.dropFirst() {
                guard value <= Int64.max >> 8 else { return nil }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var digits = 0
        for byte in field.drop(while: { $0 == 32 }) {
            if byte == 0 || byte == 32 { break }
            guard (48...55).contains(byte), value <= Int64.max >> 3 else { return nil }
            value = value << 3 | Int64(byte - 48)
            digits += 1
        }
        return digits > 0 || field.allSatisfy({ $0 == 0 || $0 == 32 }) ? value : nil
    }

    var typeDescription: String {
        switch type {
        case UInt8(ascii: "1"): "hard link"
        case UInt8(ascii: "2"): "symbolic link"
        case UInt8(ascii: "3"): "character device"
        case UInt8(ascii: "4"): "block device"
        case UInt8(ascii: "6"): "FIFO"
        default: "member of tar type '\(String(UnicodeScalar(type)))'"
        }
    }
}

/// The bundle's bytes in order, decompressed by the system's gzip/xz/bzip2/zstd when the file starts
/// with their magic number. Read once, never seeked, so a decompressor's pipe works like the file.
private final class BundleStream {
    private let fd: Int32
    private let file: FileHandle
    private var decompressor: Process?
    private let path: String

    init(_ url: URL) throws {
        path = url.path
        // O_NONBLOCK: opening a FIFO given as the bundle must not wait for a writer.
        let raw = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard raw >= 0 else { throw PipelineError.io(operation: "open bundle", path: path, detail: errnoText()) }
        var info = stat()
        guard fstat(raw, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(raw)
            throw PipelineError.badBundle(path: path, detail: "it is not a regular file")
        }
        _ = fcntl(raw, F_SETFL, fcntl(raw, F_GETFL) & ~O_NONBLOCK)
        file = FileHandle(fileDescriptor: raw, closeOnDealloc: true)
        var magic = [UInt8](repeating: 0, count: 6)
        let got = pread(raw, &magic, 6, 0)
        let tool: String? = switch magic.prefix(max(got, 0)) {
        case let m where m.starts(with: [0x1f, 0x8b]): "gzip"
        case let m where m.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]): "xz"
        case let m where m.starts(with: Array("BZh".utf8)): "bzip2"
        case let m where m.starts(with: [0x28, 0xb5, 0x2f, 0xfd]): "zstd"
        default: nil
        }
        guard let tool else { fd = raw; return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool, "-dc"]
        process.standardInput = file
        process.standardError = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch {
            throw PipelineError.io(operation: "run \(tool) to decompress", path: path, detail: "\(error)")
        }
        decompressor = process
        fd = pipe.fileHandleForReading.fileDescriptor
        pipeReader = pipe.fileHandleForReading
    }

    private var pipeReader: FileHandle?

    /// Exactly `count` bytes; nil at a clean end of stream when `allowEnd`.
    func read(_ count: Int, allowEnd: Bool) throws -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress! + got, count - got) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let failure = decompressionFailure()
                if n == 0, got == 0, allowEnd, failure == nil { return nil }
                throw PipelineError.badBundle(path: path, detail: failure ?? "the archive is truncated")
            }
            got += n
        }
        return out
    }

    /// Once the bytes end: why the decompressor stopped, when it failed.
    private func decompressionFailure() -> String? {
        guard let process = decompressor, let tool = process.arguments?.first else { return nil }
        process.waitUntilExit()
        switch process.terminationStatus {
        case 0: return nil
        case 127: return "it is \(tool)-compressed and \(tool) is not on PATH; install it or decompress the bundle first"
        case let status: return "\(tool) could not decompress it (exit \(status)); the file is damaged"
        }
    }

    func skip(_ count: Int64) throws {
        var left = count
        while left > 0 {
            let n = Int(min(left, 1 << 20))
            _ = try read(n, allowEnd: false)
            left -= Int64(n)
        }
    }

    /// Copies `count` bytes to `out` in 1 MiB pieces.
    func copy(_ count: Int64, to out: Int32, path target: String) throws {
        var left = count
        while left > 0 {
            let chunk = try read(Int(min(left, 1 << 20)), allowEnd: false)!
            var done = 0
            while done < chunk.count {
                let n = chunk.withUnsafeBytes { write(out, $0.baseAddress! + done, chunk.count - done) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw PipelineError.io(operation: "write", path: target, detail: errnoText()) }
                done += n
            }
            left -= Int64(chunk.count)
        }
    }

    /// Stops the decompressor (it may still be writing: the archive's end marker comes before its padding).
    func finish() {
        guard let process = decompressor else { return }
        try? pipeReader?.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        decompressor = nil
    }
}
