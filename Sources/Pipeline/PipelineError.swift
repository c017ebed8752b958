// Every failure the Pipeline module reports: a spec that does not load, a plan that cannot be made,
// a cache that is damaged or a stage that fails. Each says where (file:line:column and key path),
// what was expected, and ends with what to do next.

import Foundation
import TensorStore

/// A position in a spec file. Lines and columns count from 1.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The spec file as the user named it (never part of a fingerprint).
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// An error loading, planning, caching or running a pipeline.
public enum PipelineError: Error, Sendable, Equatable {
    /// The file could not be read (missing, unreadable, not UTF-8).
    case unreadableFile(path: String, detail: String)
    /// The YAML itself is malformed.
    case yamlSyntax(at: SourceLocation, detail: String)
    /// A value has the wrong type (`expected` says which).
    case wrongType(at: SourceLocation, keyPath: String, expected: String, found: String)
    /// A key that this place does not allow.
    case unknownKey(at: SourceLocation, keyPath: String, key: String, allowed: [String], suggestion: String?)
    /// The same key twice in one mapping, or a stage name defined twice.
    case duplicateKey(at: SourceLocation, keyPath: String, key: String)
    /// A required key is absent.
    case missingKey(at: SourceLocation, keyPath: String, key: String)
    /// `kind:` names no registered stage kind.
    case unknownKind(at: SourceLocation, keyPath: String, kind: String, suggestion: String?)
    /// A reference or target names no stage.
    case unknownStage(at: SourceLocation?, keyPath: String, name: String, suggestion: String?)
    /// A reference names an output the upstream kind does not declare.
    case unknownOutput(at: SourceLocation, keyPath: String, stage: String, output: String, available: [String])
    /// A stage kind needs an input the stage does not give.
    case missingInput(at: SourceLocation, keyPath: String, input: String, kind: String)
    /// A parameter the stage kind (or the spec's `params`) does not declare.
    case unknownParam(at: SourceLocation?, keyPath: String, name: String, suggestion: String?)
    /// A value outside its declared range or choices.
    case outOfRange(at: SourceLocation, keyPath: String, value: String, expected: String)
    /// A `${…}` expression that cannot be resolved.
    case badReference(at: SourceLocation, keyPath: String, text: String, detail: String)
    /// An `include:` entry that cannot be loaded.
    case includeFailed(at: SourceLocation, keyPath: String, path: String, detail: String)
    /// Stages that depend on each other in a loop (`path` starts and ends with the same stage).
    case cycle(at: SourceLocation, path: [String])
    /// A malformed sweep (lists of unequal length in `zip`, empty lists, bad include/exclude).
    case badSweep(at: SourceLocation, keyPath: String, detail: String)
    /// A spec file past one of `SpecLimits` (size, nesting, values after expanding aliases).
    case specLimit(at: SourceLocation, limit: SpecLimit)
    /// Two nodes that would write the same folder (`ParamDecl.destination`): `at` is the second.
    case sameDestination(at: SourceLocation, keyPath: String, node: String, path: String, other: String, otherAt: SourceLocation)
    /// A command-line `-p name=value` that is not of that form.
    case badOverride(text: String, detail: String)
    /// A value that cannot be part of a fingerprint (a path, a time, a non-finite number…).
    case unhashable(field: String, type: String)
    /// A plan target (stage name or member id) that the plan does not contain.
    case unknownTarget(target: String, suggestion: String?)
    /// `streamline stage` was asked to run a node whose input is not in the cache.
    case missingCachedInput(stage: String, input: String, upstream: String, fingerprint: String)
    /// A cache entry whose files do not match its record.
    case corruptEntry(fingerprint: String, detail: String)
    /// No cache entry for the fingerprint (or unique prefix) given.
    case noSuchEntry(fingerprint: String)
    /// A `.file`/`.files` parameter names a path that does not exist (`resolved`: the absolute path).
    case missingFile(at: SourceLocation, keyPath: String, path: String, resolved: String)
    /// A glob in a file-list parameter matches no regular file.
    case noMatch(at: SourceLocation, keyPath: String, pattern: String, resolved: String)
    /// A file-system operation on the cache failed.
    case io(operation: String, path: String, detail: String)
    /// A stage's `run` threw or its process exited non-zero.
    case stageFailed(stage: String, detail: String, log: String?)
    /// A bundle file that is not one `cache export` wrote, or that breaks a rule of import.
    case badBundle(path: String, detail: String)
    /// A stage stopped on request (SIGINT, SIGTERM) after saving (or failing to save) its resume point.
    case stageStopped(stage: String, StageStopped)
    /// The run was interrupted (Ctrl-C).
    case interrupted
    /// A stage process whose runner died before it could publish.
    case runnerGone(stage: String)
    /// A node file (`streamline stage --node`) that cannot be read or does not hold the node asked for.
    case badNodeFile(path: String, detail: String)
    /// A node file whose recorded fingerprint is not the one its own material gives: it was edited.
    case tamperedNodeFile(path: String, id: String, recorded: String, recomputed: String)
}

extension PipelineError: CustomStringConvertible {
    public var description: String {
        func mean(_ s: String?) -> String { s.map { " Did you mean '\($0)'?" } ?? "" }
        func at(_ l: SourceLocation?) -> String { l.map { "\($0): " } ?? "" }
        switch self {
        case .unreadableFile(let path, let detail):
            return "Cannot read \(path): \(detail). Check the path and that the file is UTF-8 text."
        case .yamlSyntax(let l, let detail):
            return "\(l): YAML syntax error: \(detail). Fix the YAML at that position (indentation, quotes, colons)."
        case .wrongType(let l, let k, let expected, let found):
            return "\(l): '\(k)' must be \(expected), found \(found). Change the value at that position."
        case .unknownKey(let l, let k, let key, let allowed, let s):
            return "\(l): unknown key '\(key)' in '\(k)'.\(mean(s)) Allowed here: \(allowed.joined(separator: ", "))."
        case .duplicateKey(let l, let k, let key):
            return "\(l): '\(key)' appears twice in '\(k)'. Keep one of them."
        case .missingKey(let l, let k, let key):
            return "\(l): '\(k)' needs the key '\(key)'. Add '\(key): …' there."
        case .unknownKind(let l, let k, let kind, let s):
            return "\(l): '\(k)' names unknown stage kind '\(kind)'.\(mean(s)) "
                + "Run 'streamline validate --kinds' to list the kinds."
        case .unknownStage(let l, let k, let name, let s):
            return "\(at(l))'\(k)' refers to unknown stage '\(name)'.\(mean(s)) Use the name of a stage under 'stages:'."
        case .unknownOutput(let l, let k, let stage, let output, let available):
            return "\(l): '\(k)': stage '\(stage)' has no output '\(output)'. "
                + "Its outputs are: \(available.joined(separator: ", "))."
        case .missingInput(let l, let k, let input, let kind):
            return "\(l): '\(k)': kind '\(kind)' needs input '\(input)'. "
                + "Add 'inputs: {\(input): ${stages.NAME.OUTPUT}}'."
        case .unknownParam(let l, let k, let name, let s):
            return "\(at(l))'\(k)': unknown parameter '\(name)'.\(mean(s)) "
                + "Only parameters the stage kind declares (or the spec's top-level 'params') are allowed."
        case .outOfRange(let l, let k, let value, let expected):
            return "\(l): '\(k)' = \(value) is out of range: expected \(expected). Choose a value in that range."
        case .badReference(let l, let k, let text, let detail):
            return "\(l): '\(k)': cannot resolve '\(text)': \(detail). "
                + "Write ${params.NAME}, ${NAME} (sweep variable or param) or ${stages.STAGE.OUTPUT}."
        case .includeFailed(let l, let k, let path, let detail):
            return "\(l): '\(k)': cannot include '\(path)': \(detail). Paths are relative to the including file."
        case .cycle(let l, let path):
            return "\(l): stages depend on each other in a cycle: \(path.joined(separator: " -> ")). "
                + "Remove one of these references."
        case .badSweep(let l, let k, let detail):
            return "\(l): '\(k)': \(detail). A sweep is 'grid: {VAR: [values]}', 'zip: {VAR: [values]}' or both "
                + "(members: the grid's product × the zip's rows) with optional 'include'/'exclude' lists of {VAR: value} maps."
        case .specLimit(let l, let limit):
            return "\(l): \(limit.problem). \(limit.advice); the limits keep a broken or hostile file from crashing or "
                + "hanging the tool (docs/specs.md, \"Guarantees\")."
        case .sameDestination(let l, let k, let node, let path, let other, let otherAt):
            return "\(l): '\(k)' of \(node) names \(path), which \(other) (\(otherAt)) writes too. "
                + "Give each a folder of its own, e.g. with a sweep variable: exported/${ratio}."
        case .badOverride(let text, let detail):
            return "Bad parameter override '\(text)': \(detail). Write -p NAME=VALUE, e.g. -p ratio=0.3."
        case .unhashable(let field, let type):
            return "Field '\(field)' of type \(type) cannot be part of a fingerprint (paths, times and "
                + "non-finite numbers are not content). Pass content or a digest instead."
        case .unknownTarget(let target, let s):
            return "No stage or sweep member '\(target)' in the plan.\(mean(s)) Run 'streamline plan' to list the ids."
        case .missingCachedInput(let stage, let input, let upstream, let fp):
            return "Stage '\(stage)' needs input '\(input)' from '\(upstream)' (fingerprint \(fp.prefix(12))), "
                + "which is not in the cache. Run 'streamline run \(upstream)' first, or 'streamline cache import' its bundle."
        case .corruptEntry(let fp, let detail):
            return "Cache entry \(fp.prefix(12)) is damaged: \(detail). It is treated as missing; "
                + "the next run recomputes it ('streamline cache gc --verify' removes it now)."
        case .noSuchEntry(let fp):
            return "No cache entry matches '\(fp)'. Run 'streamline cache ls' to list the entries."
        case .missingFile(let l, let k, let path, let resolved):
            return "\(l): '\(k)': no such file or folder '\(path)' (looked for \(resolved)). "
                + "Relative paths start at the spec's folder; fix the path or create the file."
        case .noMatch(let l, let k, let pattern, let resolved):
            return "\(l): '\(k)': the pattern '\(pattern)' matches no file (looked for \(resolved)). "
                + "Relative patterns start at the spec's folder; '*' stays within one folder, '**' spans folders, hidden files are skipped."
        case .io(let op, let path, let detail):
            return "Could not \(op) \(path): \(detail). Check permissions and free disk space."
        case .stageFailed(let stage, let detail, let log):
            return "Stage '\(stage)' failed: \(detail)\(detail.hasSuffix(".") ? "" : ".")" + (log.map { " Its log: \($0)." } ?? "")
                + " Fix the cause and run again; finished stages stay cached."
        case .badBundle(let path, let detail):
            return "Refused to import \(path): \(detail). Nothing was imported; "
                + "import only bundles made by 'streamline cache export' that reached you intact."
        case .stageStopped(let stage, let stopped):
            return "Stage '\(stage)' \(stopped). Run the same command again to continue."
        case .interrupted:
            return "Interrupted. Finished stages are cached and a stopped training stage keeps its resume point; "
                + "run the same command again to continue."
        case .runnerGone(let stage):
            return "Stage '\(stage)' was not published: the runner that started it is gone. "
                + "Run the pipeline again to compute it."
        case .badNodeFile(let path, let detail):
            return "Cannot run the node file \(path): \(detail). Node files are written by 'streamline run' for its "
                + "stage processes; to run a stage by hand, use 'streamline stage ID --spec SPEC'."
        case .tamperedNodeFile(let path, let id, let recorded, let recomputed):
            return "Refused the node file \(path): node '\(id)' records fingerprint \(recorded.prefix(12)), but its kind, "
                + "parameters, inputs and seed give \(recomputed.prefix(12)), so the file was changed after it was written. "
                + "Nothing ran. Run the pipeline again, or 'streamline stage ID --spec SPEC' to plan the stage from its spec."
        }
    }
}

/// The candidate closest to `name` (case ignored), if it is close enough to be a likely typo.
func suggestion(for name: String, among candidates: [String]) -> String? {
    Spelling.closest(to: name, among: candidates, ignoringCase: true)
}

extension PipelineError {
    /// Where in a spec file the error is, when it is in one.
    public var location: SourceLocation? {
        switch self {
        case .yamlSyntax(let l, _), .wrongType(let l, _, _, _), .unknownKey(let l, _, _, _, _), .duplicateKey(let l, _, _),
             .missingKey(let l, _, _), .unknownKind(let l, _, _, _), .unknownOutput(let l, _, _, _, _),
             .missingInput(let l, _, _, _), .outOfRange(let l, _, _, _), .badReference(let l, _, _, _),
             .includeFailed(let l, _, _, _), .cycle(let l, _), .badSweep(let l, _, _), .specLimit(let l, _),
             .sameDestination(let l, _, _, _, _, _), .missingFile(let l, _, _, _), .noMatch(let l, _, _, _):
            return l
        case .unknownStage(let l, _, _, _), .unknownParam(let l, _, _, _):
            return l
        default:
            return nil
        }
    }
}
