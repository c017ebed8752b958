// The interface every stage kind implements, and the registry the planner looks kinds up in.
// A kind declares its parameters (typed, with defaults, ranges and docs), its inputs and outputs
// (named tensor stores) and an implementation version; `run` reads input stores and writes output
// stores into the scratch folder the executor gives it. Scheduling, caching and fingerprints are
// not a kind's business: they live in the planner, cache and executors of this module.

import Foundation

/// A parameter value as written in a spec, after interpolation. Typed, so `1` and `"1"` differ.
public enum ParamValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    /// The value as a user would write it in YAML or on a command line (`0.25`, `dress`, `true`).
    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return "\(v)"  // Swift's shortest round-trip form: 0.25, 2.0, 1e-05
        case .string(let v): return v
        case .bool(let v): return v ? "true" : "false"
        }
    }

    /// The value as a number, when it is one (an int widens to double: `ratio: 1` is fine for a double).
    public var number: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }

    /// JSON writes the double 2.0 as `2`, which reads back as an integer; so an integral double is
    /// written `{"double": 2}` and every other value as its bare JSON scalar (the only form before).
    private enum TypeKey: String, CodingKey { case double }

    public init(from decoder: Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: TypeKey.self) {
            self = .double(try keyed.decode(Double.self, forKey: .double))
            return
        }
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        if case .double(let v) = self, v.rounded(.towardZero) == v {
            var c = encoder.container(keyedBy: TypeKey.self)
            try c.encode(v, forKey: .double)
        } else {
            try encodeScalar(to: encoder)
        }
    }

    /// The bare scalar, without the type marker: what fingerprints hash (they must never change) and
    /// what a stage's typed `Params` decode from.
    public func encodeScalar(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        }
    }
}

/// A ParamValue that encodes as its bare scalar.
struct ScalarParam: Encodable {
    var value: ParamValue
    func encode(to encoder: Encoder) throws { try value.encodeScalar(to: encoder) }
}

/// The type of a declared parameter, with its allowed values.
public enum ParamType: Sendable, Equatable {
    /// An integer, optionally limited to a closed range.
    case int(ClosedRange<Int>? = nil)
    /// A real number, optionally limited to a closed range.
    case double(ClosedRange<Double>? = nil)
    /// A string, optionally one of fixed choices.
    case string(choices: [String]? = nil)
    case bool
    /// A path to an external file or folder, relative to the spec's folder (`~` expanded). The stage
    /// receives the absolute path; the fingerprint gets the content digest, never the path.
    case file
    /// Comma-separated paths of files or folders (possibly none), each like `.file`. The stage
    /// receives the absolute paths joined by ", "; the fingerprint gets the digests in order.
    case files

    /// The JSON Schema type name.
    var schemaType: String {
        switch self {
        case .int: return "integer"
        case .double: return "number"
        case .string, .file, .files: return "string"
        case .bool: return "boolean"
        }
    }

    /// Whether values of this type name external files (resolved and content-hashed by the planner).
    public var isFile: Bool { self == .file || self == .files }
}

/// One parameter a stage kind reads. Every declared parameter (defaults included) enters the
/// stage's fingerprint, except one marked `omittedAtDefault` while it has its default value; an
/// undeclared one is an error in the spec.
public struct ParamDecl: Sendable {
    public var name: String
    public var type: ParamType
    /// nil = required.
    public var defaultValue: ParamValue?
    /// One line for `--help`, the schema and `validate --kinds`.
    public var doc: String
    /// A `.string` naming a folder that `streamline run` writes (export's `destination`), relative to
    /// the spec's folder, "" for none. The planner refuses two nodes that name one folder. Its text,
    /// not a digest, enters the fingerprint, as for any string.
    public var destination: Bool
    /// For a parameter added to a kind after specs and caches exist: at its default value (omitted or
    /// written out) it is left out of the node's parameters, so out of the fingerprint, and existing
    /// specs keep their cached results. The stage must read it as optional (absent = default).
    public var omittedAtDefault: Bool

    public init(_ name: String, _ type: ParamType, default defaultValue: ParamValue? = nil, destination: Bool = false,
                omittedAtDefault: Bool = false, doc: String) {
        precondition(!omittedAtDefault || defaultValue != nil, "ParamDecl \(name): omittedAtDefault needs a default")
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.destination = destination
        self.omittedAtDefault = omittedAtDefault
        self.doc = doc
    }

    /// Whether a node whose resolved value is `value` leaves this parameter out of its parameters
    /// (and fingerprint): an `omittedAtDefault` parameter at its default.
    public func isLeftOut(at value: ParamValue) -> Bool { omittedAtDefault && value == defaultValue }

    /// Checks `value` against the type; returns it normalised (an int given for a double becomes a
    /// double, so `ratio: 1` and `ratio: 1.0` fingerprint alike) or a description of what was expected.
    public func check(_ value: ParamValue) -> Result<ParamValue, ParamCheckFailure> {
        switch (type, value) {
        case (.int(let range), .int(let v)):
            if let range, !range.contains(v) { return .failure(.outOfRange("an integer in \(range)")) }
            return .success(value)
        case (.double(let range), _):
            guard let v = value.number else { return .failure(.wrongType("a number")) }
            if let range, !range.contains(v) { return .failure(.outOfRange("a number in \(range)")) }
            return .success(.double(v))
        case (.string(let choices), .string(let v)):
            if let choices, !choices.contains(v) {
                return .failure(.outOfRange("one of \(choices.joined(separator: ", "))"))
            }
            return .success(value)
        case (.bool, .bool):
            return .success(value)
        case (.file, .string(let v)):
            if v.trimmingCharacters(in: .whitespaces).isEmpty { return .failure(.wrongType("a path to a file or folder")) }
            return .success(value)
        case (.files, .string):
            return .success(value)
        case (.int, _): return .failure(.wrongType("an integer"))
        case (.string, _): return .failure(.wrongType("a string"))
        case (.bool, _): return .failure(.wrongType("true or false"))
        case (.file, _): return .failure(.wrongType("a path to a file or folder"))
        case (.files, _): return .failure(.wrongType("comma-separated paths of files or folders"))
        }
    }
}

/// Why a value does not fit a `ParamDecl`.
public enum ParamCheckFailure: Error, Sendable {
    case wrongType(String)
    case outOfRange(String)
}

/// A named input: a tensor store produced by another stage.
public struct InputDecl: Sendable {
    public var name: String
    /// The store kind expected ("model", "dataset", "metrics"…); "any" accepts every kind.
    public var storeKind: String
    public var doc: String
    /// A gather: the stage reads the output of every member of the referenced (swept) stage, or of
    /// each stage of a YAML list of references, in list then plan order, from
    /// `StageContext.gathered` (labelled) or `inputLists` (URLs only), and is not itself swept by
    /// those stages' variables (a report over a sweep).
    public var many: Bool
    /// A spec may leave it out: the node then has no such input (absent from `StageContext.inputs`)
    /// and nothing of it enters the fingerprint. E.g. evaluate's `dense` model, for speed-ups.
    public var optional: Bool

    public init(_ name: String, storeKind: String, doc: String, many: Bool = false, optional: Bool = false) {
        self.name = name
        self.storeKind = storeKind
        self.doc = doc
        self.many = many
        self.optional = optional
    }
}

/// A named output: one tensor store file the stage writes.
public struct OutputDecl: Sendable {
    public var name: String
    public var storeKind: String
    public var doc: String

    public init(_ name: String, storeKind: String, doc: String) {
        self.name = name
        self.storeKind = storeKind
        self.doc = doc
    }
}

/// A kind of stage. One type per kind, one file each in the Stages module, registered by one line.
public protocol StageKind: Sendable {
    /// The name used in specs, e.g. "prune" or "debug/sum".
    var name: String { get }
    /// The implementation version: bump it whenever the outputs for the same inputs may change, so
    /// every cached result of the old implementation is recomputed.
    var version: Int { get }
    /// One line on what the stage does.
    var doc: String { get }
    var params: [ParamDecl] { get }
    var inputs: [InputDecl] { get }
    var outputs: [OutputDecl] { get }
    /// Reads `context.inputs`, writes every store of `context.outputs`. Throws on failure; whatever it
    /// wrote is discarded by the executor.
    func run(_ context: StageContext) throws
}

/// Reports progress of a long stage; the runner draws it as a bar.
public struct StageProgress: Sendable, Codable, Equatable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Double?
    public var tokensPerSecond: Double?

    public init(step: Int, totalSteps: Int, loss: Double? = nil, tokensPerSecond: Double? = nil) {
        self.step = step
        self.totalSteps = totalSteps
        self.loss = loss
        self.tokensPerSecond = tokensPerSecond
    }
}

/// Everything a stage kind's `run` may use. Paths are absolute; outputs go into a scratch folder
/// that only becomes a cache entry after `run` returns and the digests are checked.
public struct StageContext: Sendable {
    /// The node id, e.g. `prune[ratio=0.25]`.
    public var stageID: String
    /// Every declared parameter, resolved (defaults filled in, types checked), except an
    /// `omittedAtDefault` one at its default.
    public var params: [String: ParamValue]
    /// The seed the spec gives this stage (part of the fingerprint).
    public var seed: UInt64
    /// Input name → the store file of the upstream output (an optional input the spec left out is absent).
    public var inputs: [String: URL]
    /// Gather input name (`InputDecl.many`) → every gathered upstream store with its labels, in list
    /// then plan order.
    public var gathered: [String: [GatheredInput]] = [:]
    /// Gather input name → the store files of `gathered[name]`, in the same order.
    public var inputLists: [String: [URL]] { gathered.mapValues { $0.map(\.url) } }
    /// Output name → where to write that store.
    public var outputs: [String: URL]
    /// Threads this stage may use.
    public var threads: Int
    /// Called with progress of long loops; cheap to call every step.
    public var progress: @Sendable (StageProgress) -> Void
    /// Appends a line to the stage's log.
    public var log: @Sendable (String) -> Void
    /// Where a long stage keeps the state to continue from, if it was stopped; nil when the caller
    /// offers none (the stage then runs start to end).
    public var resume: ResumePoint?

    public init(stageID: String, params: [String: ParamValue], seed: UInt64, inputs: [String: URL],
                outputs: [String: URL], threads: Int,
                progress: @escaping @Sendable (StageProgress) -> Void = { _ in },
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.stageID = stageID
        self.params = params
        self.seed = seed
        self.inputs = inputs
        self.outputs = outputs
        self.threads = threads
        self.progress = progress
        self.log = log
    }

    /// The parameters decoded as a kind's Codable `Params` struct (keys = declared names).
    public func decodeParams<P: Decodable>(_ type: P.Type) throws -> P {
        try JSONDecoder().decode(P.self, from: JSONEncoder().encode(params.mapValues(ScalarParam.init)))
    }
}

/// A node's resume point: one file in the cache (`Cache.resumeURL`), written by a stage that can
/// continue where it stopped (training: Stages/ResumableTraining.swift) and removed once the node's
/// entry is published.
public struct ResumePoint: Sendable {
    /// The file; it exists only while a stopped attempt left one.
    public var url: URL
    /// Seconds between writes while the stage runs (`--checkpoint-minutes`); nil: only when stopped.
    public var interval: Double?
    /// Where stop requests arrive (`GracefulStop.shared` in a stage process).
    public var stop: GracefulStop

    public init(url: URL, interval: Double?, stop: GracefulStop = .shared) {
        self.url = url
        self.interval = interval
        self.stop = stop
    }
}

/// One store a gather input read, with what labels it: which stage and sweep member produced it.
public struct GatheredInput: Sendable {
    /// The upstream output store file.
    public var url: URL
    /// The upstream stage name, e.g. `eval`.
    public var stage: String
    /// The upstream node id, e.g. `eval[ratio=0.25,method=dress]`.
    public var id: String
    /// The upstream node's sweep variables, in id order.
    public var variables: [(name: String, value: ParamValue)]

    public init(url: URL, stage: String, id: String, variables: [(name: String, value: ParamValue)]) {
        self.url = url
        self.stage = stage
        self.id = id
        self.variables = variables
    }

    /// The value of sweep variable `name`, when the upstream node has it.
    public func variable(_ name: String) -> ParamValue? { variables.first { $0.name == name }?.value }
}

/// The stage kinds a planner knows, by name. Built from the flat table in the Stages module.
public struct StageRegistry: Sendable {
    public let kinds: [String: any StageKind]

    public init(_ kinds: [any StageKind]) {
        var table: [String: any StageKind] = [:]
        for kind in kinds {
            precondition(table[kind.name] == nil, "stage kind \(kind.name) registered twice")
            table[kind.name] = kind
        }
        self.kinds = table
    }

    public subscript(name: String) -> (any StageKind)? { kinds[name] }

    /// Kind names in sorted order.
    public var names: [String] { kinds.keys.sorted() }
}
