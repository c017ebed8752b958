// Content digests: what exactly is hashed for one tensor and for a whole store.
//
// The pipeline cache keys on these, so they depend only on content: dtype, shape, element bytes,
// tensor names, the store kind and its canonical content metadata. Never on paths, times, host,
// HDF5 layout (chunking, object addresses, attribute order) or provenance.
// Both definitions are plain byte streams so they can be reproduced outside Swift, e.g. in Python:
//
//     tensor: sha256(b"streamline.tensor.v1\n" + b"float32\n" + b"3,4\n" + a.astype("<f4").tobytes())
//     store:  sha256(b"streamline.store.v1\n" + b"kind\tmodel\n"
//                    + for each metadata key in UTF-8 order: b"metadata\t" + key + b"\t" + json + b"\n"
//                    + for each tensor name in UTF-8 order:  b"tensor\t" + name + b"\t" + hex + b"\n")

import Crypto
import Foundation

/// The SHA-256 content digest of one tensor.
public enum TensorDigest {
    /// Digest (lowercase hex) of `bytes` holding `shape.product` elements of `dtype`, little-endian.
    public static func compute(dtype: TensorDType, shape: [Int], bytes: UnsafeRawBufferPointer) -> String {
        var hasher = SHA256()
        hasher.update(data: Data(header(dtype: dtype, shape: shape).utf8))
        if bytes.count > 0 { hasher.update(bufferPointer: bytes) }
        return hex(hasher.finalize())
    }

    /// The text that precedes the element bytes: format tag, dtype, comma-separated shape.
    static func header(dtype: TensorDType, shape: [Int]) -> String {
        "streamline.tensor.v1\n\(dtype.rawValue)\n\(shape.map(String.init).joined(separator: ","))\n"
    }
}

/// The SHA-256 content digest of a whole store.
public enum StoreDigest {
    /// Digest (lowercase hex) over kind, canonical metadata JSON per key and tensor digests per name.
    public static func compute(kind: String, metadata: [String: String], tensorDigests: [String: String]) -> String {
        var text = "streamline.store.v1\nkind\t\(kind)\n"
        for key in metadata.keys.sorted(by: utf8Less) {
            text += "metadata\t\(key)\t\(metadata[key]!)\n"
        }
        for name in tensorDigests.keys.sorted(by: utf8Less) {
            text += "tensor\t\(name)\t\(tensorDigests[name]!)\n"
        }
        return hex(SHA256.hash(data: Data(text.utf8)))
    }
}

/// Byte-wise UTF-8 order: the same on every platform and locale (Swift's `<` on String compares
/// Unicode canonical forms, which is fine but harder to reproduce outside Swift).
func utf8Less(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}

/// Lowercase hex of `digest`'s bytes; the one encoder for every digest Streamline prints or keys on
/// (a byte table, because String(format:) per byte costs a third of planning a large sweep).
public func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in digest {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Canonical JSON: keys sorted, no whitespace, slashes unescaped. The same value gives the same text.
enum CanonicalJSON {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// Rules for names that end up in digests and HDF5 paths.
enum StoreNames {
    /// Why a tensor name is invalid, or nil when it is fine. Names are `/`-separated groups; no
    /// empty, `.` or `..` parts; no control characters (tabs and newlines delimit the digest text).
    static func problem(tensorName name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "it contains a control character (tab, newline, …)"
        }
        for part in name.split(separator: "/", omittingEmptySubsequences: false) {
            if part.isEmpty { return "it has an empty part (leading, trailing or double '/')" }
            if part == "." || part == ".." { return "it has a '\(part)' part" }
        }
        return nil
    }

    /// Why a kind or metadata key is invalid: letters, digits, `_`, `-` and `.` only.
    static func problem(key: String) -> String? {
        if key.isEmpty { return "it is empty" }
        let allowed = key.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "_-.".unicodeScalars.contains($0)
        }
        return allowed ? nil : "use only ASCII letters, digits, '_', '-' and '.'"
    }
}
