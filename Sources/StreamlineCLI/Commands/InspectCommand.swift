// `streamline inspect STORE`: what a tensor store holds (kind, digest, metadata, provenance, every
// tensor with dtype, shape, size and digest) and, with --verify, whether its data is intact.
// Presentation only: everything it shows comes from TensorStoreReader.

import ArgumentParser
import Foundation
import TensorStore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what an HDF5 tensor store holds: kind, digest, metadata, provenance and tensors.",
        discussion: """
            Every stage reads and writes tensor stores (.h5 files). This prints the store's kind \
            (model, dataset, …), its content digest (what the pipeline cache keys on), its content \
            metadata such as the model configuration, where it came from, and one line per tensor.

            --verify re-reads every tensor and checks it against the digest recorded when it was \
            written; the exit status is 1 if anything is corrupted.

            Examples:
              streamline inspect runs/model.h5
              streamline inspect runs/model.h5 --verify
              streamline inspect runs/model.h5 --json > model.json
            """)

    @Argument(help: "Path to the store (an .h5 file written by Streamline).")
    var store: String

    @Flag(help: "Re-hash every tensor and compare with the digests recorded when it was written.")
    var verify = false

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let reader = try TensorStoreReader(url: URL(fileURLWithPath: store))
        let problems = verify ? try reader.verificationProblems() : nil
        if json {
            print(try jsonReport(reader, problems: problems))
        } else {
            print(textReport(reader))
            if let problems { print(verificationText(reader, problems)) }
        }
        if let problems, !problems.isEmpty { throw ExitCode.failure }
    }

    // MARK: - Text

    private func textReport(_ reader: TensorStoreReader) -> String {
        var lines = ["store     \(reader.url.path)",
                     "kind      \(reader.kind)",
                     "format    streamline tensor store v\(reader.formatVersion)",
                     "digest    \(reader.digest)"]
        if reader.digest != reader.recordedDigest {
            lines.append("          (recorded at commit: \(reader.recordedDigest); run with --verify)")
        }
        lines.append("")
        lines.append(reader.metadataKeys.isEmpty ? "metadata  (none)" : "metadata")
        for key in reader.metadataKeys {
            let value = (try? reader.metadataJSON(key)).map(prettyJSON) ?? "?"
            lines.append("  \(key): " + value.replacingOccurrences(of: "\n", with: "\n  "))
        }
        if let p = reader.provenance {
            lines.append("provenance")
            lines.append("  written by \(p.tool) \(p.toolVersion) on \(p.host) at \(p.createdAt)")
            lines.append("  command    \(p.command.joined(separator: " "))")
            for key in p.extra.keys.sorted() { lines.append("  \(key): \(p.extra[key]!)") }
        }
        let elements = reader.tensors.reduce(0) { $0 + $1.count }
        let bytes = reader.tensors.reduce(0) { $0 + $1.byteCount }
        lines.append("")
        lines.append("tensors   \(reader.tensors.count), \(grouped(elements)) elements, \(byteSize(bytes))")
        lines.append(contentsOf: tensorTable(reader.tensors))
        return lines.joined(separator: "\n")
    }

    private func tensorTable(_ tensors: [TensorInfo]) -> [String] {
        let rows = tensors.map { [$0.name, $0.dtype.rawValue, shapeText($0.shape), byteSize($0.byteCount), String($0.digest.prefix(12))] }
        let header = ["name", "dtype", "shape", "size", "digest"]
        let widths = (0..<header.count).map { column in ([header] + rows).map { $0[column].count }.max()! }
        return ([header] + rows).map { row in
            let cells = zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
            return String(("  " + cells.joined(separator: "  ")).reversed().drop(while: { $0 == " " }).reversed())
        }
    }

    private func verificationText(_ reader: TensorStoreReader, _ problems: [TensorStoreError]) -> String {
        guard !problems.isEmpty else { return "\nverify    OK: all \(reader.tensors.count) tensors match their digests" }
        return (["\nverify    CORRUPTED: \(problems.count) problem(s)"] + problems.map { "  \($0)" }).joined(separator: "\n")
    }

    // MARK: - JSON

    private struct Report: Encodable {
        struct Tensor: Encodable { let name: String, dtype: String, shape: [Int], bytes: Int, digest: String }
        let path: String, kind: String, formatVersion: Int, digest: String, recordedDigest: String
        let metadata: [String: JSONFragment]
        let provenance: StoreProvenance?
        let tensors: [Tensor]
        let totalElements: Int, totalBytes: Int
        let verified: Bool?
        let problems: [String]?
    }

    private func jsonReport(_ reader: TensorStoreReader, problems: [TensorStoreError]?) throws -> String {
        var metadata: [String: JSONFragment] = [:]
        for key in reader.metadataKeys { metadata[key] = JSONFragment(text: try reader.metadataJSON(key)) }
        let report = Report(
            path: reader.url.path, kind: reader.kind, formatVersion: reader.formatVersion,
            digest: reader.digest, recordedDigest: reader.recordedDigest, metadata: metadata,
            provenance: reader.provenance,
            tensors: reader.tensors.map { .init(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape,
                                                bytes: $0.byteCount, digest: $0.digest) },
            totalElements: reader.tensors.reduce(0) { $0 + $1.count },
            totalBytes: reader.tensors.reduce(0) { $0 + $1.byteCount },
            verified: problems.map(\.isEmpty), problems: problems?.map { "\($0)" })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}

/// Stored metadata JSON, re-encoded as a value (not a string) inside the inspect report.
private struct JSONFragment: Encodable {
    let text: String
    func encode(to encoder: any Encoder) throws {
        let value = try JSONDecoder().decode(AnyJSON.self, from: Data(text.utf8))
        try value.encode(to: encoder)
    }
}

/// Any JSON value, decoded and encoded without a schema.
private enum AnyJSON: Codable {
    case null, bool(Bool), integer(Int), number(Double), string(String), array([AnyJSON]), object([String: AnyJSON])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .integer(i) }   // before Double: keeps big ints exact
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([AnyJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: AnyJSON].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .integer(let i): try c.encode(i)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// Indented JSON for people; the text itself if it does not parse.
private func prettyJSON(_ text: String) -> String {
    guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
          let data = try? JSONSerialization.data(withJSONObject: object,
                                                 options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
    else { return text }
    return String(decoding: data, as: UTF8.self)
}

private func shapeText(_ shape: [Int]) -> String { shape.isEmpty ? "scalar" : "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// 134515008 -> "134,515,008".
private func grouped(_ n: Int) -> String {
    let digits = Array(String(n))
    return String(digits.enumerated().flatMap { i, d in (i > 0 && (digits.count - i) % 3 == 0) ? [",", d] : [d] })
}

/// Bytes in decimal units: "538.1 MB".
private func byteSize(_ bytes: Int) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(bytes), unit = 0
    while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
    return unit == 0 ? "\(bytes) B" : "\(String(format: "%.1f", value)) \(units[unit])"
}
