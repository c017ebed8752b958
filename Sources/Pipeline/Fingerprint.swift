// Fingerprints: SHA-256 over a canonical, typed encoding of an Encodable value, in the manner of
// SwiftPM's HashEncoder. Every leaf is written with its type name, every keyed field with its name,
// keyed containers in sorted key order (so dictionaries hash the same in every process), lists with
// their length. Values that are places or moments — URL, Date — and non-finite numbers throw
// `PipelineError.unhashable`: a fingerprint is a value, never a place.

import Crypto
import Foundation
import TensorStore

/// Hashes `value` canonically; the lowercase hex SHA-256.
public func fingerprint<T: Encodable>(of value: T) throws -> String {
    let encoder = HashEncoder()
    try encoder.encodeValue(value, path: [])
    return hex(SHA256.hash(data: Array(encoder.root.canonical().utf8)))
}

/// The tree a value encodes into; rendered canonically once complete.
final class HashNode {
    enum Content {
        case leaf(type: String, text: String)
        case keyed([String: HashNode])
        case unkeyed([HashNode])
        case empty
    }
    var content: Content = .empty

    func canonical() -> String {
        switch content {
        case .empty: return "nil"
        case .leaf(let type, let text): return "\(type)(\(text.utf8.count):\(text))"
        case .keyed(let fields):
            // Byte-wise key order: the same on every platform and locale.
            let keys = fields.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            return "{" + keys.map { "\($0.utf8.count):\($0)=\(fields[$0]!.canonical())" }.joined(separator: ",") + "}"
        case .unkeyed(let items):
            return "[\(items.count):" + items.map { $0.canonical() }.joined(separator: ",") + "]"
        }
    }
}

final class HashEncoder: Encoder {
    var codingPath: [CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var root = HashNode()

    init(node: HashNode = HashNode(), path: [CodingKey] = []) {
        self.root = node
        self.codingPath = path
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .keyed = root.content {} else { root.content = .keyed([:]) }
        return KeyedEncodingContainer(KeyedHash<Key>(node: root, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        if case .unkeyed = root.content {} else { root.content = .unkeyed([]) }
        return UnkeyedHash(node: root, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { SingleHash(node: root, codingPath: codingPath) }

    /// Encodes `value` into `root`, refusing types that are not content.
    func encodeValue<T: Encodable>(_ value: T, path: [CodingKey]) throws {
        try Self.encode(value, into: root, path: path)
    }

    static func encode<T: Encodable>(_ value: T, into node: HashNode, path: [CodingKey]) throws {
        let field = path.map(\.stringValue).joined(separator: ".")
        switch value {
        case is URL, is Date: throw PipelineError.unhashable(field: field, type: String(describing: T.self))
        case let v as String: node.content = .leaf(type: "String", text: v)
        case let v as Bool: node.content = .leaf(type: "Bool", text: v ? "true" : "false")
        case let v as Double:
            guard v.isFinite else { throw PipelineError.unhashable(field: field, type: "Double(\(v))") }
            node.content = .leaf(type: "Double", text: String(v.bitPattern, radix: 16))
        case let v as Float:
            guard v.isFinite else { throw PipelineError.unhashable(field: field, type: "Float(\(v))") }
            node.content = .leaf(type: "Float", text: String(v.bitPattern, radix: 16))
        case let v as any FixedWidthInteger: node.content = .leaf(type: String(describing: T.self), text: "\(v)")
        default:
            let sub = HashEncoder(node: node, path: path)
            // A ParamValue hashes as its bare scalar, as it did before its Codable kept the type.
            if let param = value as? ParamValue { try param.encodeScalar(to: sub) } else { try value.encode(to: sub) }
            // A composite is tagged with its type name, so two types with equal fields differ.
            let inner = HashNode()
            inner.content = node.content
            let tagged = HashNode()
            tagged.content = .keyed(["$type": leaf(String(describing: T.self)), "$value": inner])
            node.content = tagged.content
        }
    }

    static func leaf(_ text: String) -> HashNode {
        let n = HashNode()
        n.content = .leaf(type: "String", text: text)
        return n
    }
}

private struct KeyedHash<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: HashNode
    var codingPath: [CodingKey]

    private func child(_ key: Key) -> HashNode {
        let n = HashNode()
        if case .keyed(var fields) = node.content {
            fields[key.stringValue] = n
            node.content = .keyed(fields)
        }
        return n
    }

    mutating func encodeNil(forKey key: Key) throws { _ = child(key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try HashEncoder.encode(value, into: child(key), path: codingPath + [key])
    }
    mutating func nestedContainer<NK: CodingKey>(keyedBy keyType: NK.Type, forKey key: Key) -> KeyedEncodingContainer<NK> {
        HashEncoder(node: child(key), path: codingPath + [key]).container(keyedBy: NK.self)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        HashEncoder(node: child(key), path: codingPath + [key]).unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder { HashEncoder(node: child(Key(stringValue: "super")!), path: codingPath) }
    mutating func superEncoder(forKey key: Key) -> Encoder { HashEncoder(node: child(key), path: codingPath + [key]) }
}

private struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ i: Int) { stringValue = "\(i)"; intValue = i }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.init(intValue) }
}

private struct UnkeyedHash: UnkeyedEncodingContainer {
    let node: HashNode
    var codingPath: [CodingKey]
    var count: Int {
        if case .unkeyed(let items) = node.content { return items.count }
        return 0
    }

    private func append() -> HashNode {
        let n = HashNode()
        if case .unkeyed(var items) = node.content {
            items.append(n)
            node.content = .unkeyed(items)
        }
        return n
    }

    mutating func encodeNil() throws { _ = append() }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [IndexKey(count)]
        try HashEncoder.encode(value, into: append(), path: path)
    }
    mutating func nestedContainer<NK: CodingKey>(keyedBy keyType: NK.Type) -> KeyedEncodingContainer<NK> {
        HashEncoder(node: append(), path: codingPath).container(keyedBy: NK.self)
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        HashEncoder(node: append(), path: codingPath).unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder { HashEncoder(node: append(), path: codingPath) }
}

private struct SingleHash: SingleValueEncodingContainer {
    let node: HashNode
    var codingPath: [CodingKey]
    mutating func encodeNil() throws { node.content = .empty }
    mutating func encode<T: Encodable>(_ value: T) throws { try HashEncoder.encode(value, into: node, path: codingPath) }
}
