// Slurm job ids, job states and the parser of `squeue --format='%i|%T|%N|%r'` lines. Text output is
// read on purpose: squeue's JSON differs between Slurm releases, its text formats do not.
// This file runs no command (SlurmClient.swift does).

import Foundation

/// A Slurm job id as sbatch prints it (e.g. "4211"; array tasks look like "4211_3").
public struct SlurmJobID: Sendable, Hashable, Codable, Comparable, CustomStringConvertible,
                          ExpressibleByStringLiteral {
    public var rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    /// Numeric order where both are numbers (so "9" < "10"), text order otherwise.
    public static func < (a: SlurmJobID, b: SlurmJobID) -> Bool {
        if let x = Int(a.rawValue), let y = Int(b.rawValue) { return x < y }
        return a.rawValue < b.rawValue
    }
}

/// What Slurm says about a job, reduced to what a runner acts on.
///
/// squeue's long state names map as follows (everything else is `unknown`):
///
///     PENDING, REQUEUED, REQUEUE_HOLD, REQUEUE_FED, RESV_DEL_HOLD    -> pending(reason)
///     RUNNING, CONFIGURING, COMPLETING, SIGNALING, STAGE_OUT,
///     RESIZING                                                       -> running
///     COMPLETED                                                      -> completed
///     FAILED, SPECIAL_EXIT                                           -> failed(reason)
///     CANCELLED, PREEMPTED, REVOKED                                  -> cancelled(reason)
///     TIMEOUT, DEADLINE                                              -> timeout
///     NODE_FAIL, BOOT_FAIL                                           -> nodeFail
///     OUT_OF_MEMORY                                                  -> outOfMemory
///
/// COMPLETING counts as running: the job's processes are ending but its result is not final yet.
public enum SlurmJobState: Sendable, Hashable, CustomStringConvertible {
    /// Waiting; `reason` is squeue's (e.g. "Dependency", "Resources", "Priority").
    case pending(reason: String)
    case running
    case completed
    /// Ended with a non-zero exit or a signal; `reason` is squeue's (e.g. "NonZeroExitCode").
    case failed(reason: String)
    /// Cancelled by a user or by Slurm; "DependencyNeverSatisfied" means an upstream job failed.
    case cancelled(reason: String)
    /// Reached its time limit.
    case timeout
    /// A node it ran on failed.
    case nodeFail
    /// Killed for exceeding its memory.
    case outOfMemory
    /// A state this client does not interpret (e.g. SUSPENDED); the text is squeue's.
    case unknown(String)

    /// Parses squeue's `%T` (long state name) and `%r` (reason; "None" means none).
    public init(state: String, reason: String) {
        let why = reason == "None" ? "" : reason
        switch state {
        case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD":
            self = .pending(reason: why.isEmpty && state != "PENDING" ? state : why)
        case "RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING": self = .running
        case "COMPLETED": self = .completed
        case "FAILED", "SPECIAL_EXIT": self = .failed(reason: why)
        case "CANCELLED", "PREEMPTED", "REVOKED": self = .cancelled(reason: why.isEmpty && state != "CANCELLED" ? state : why)
        case "TIMEOUT", "DEADLINE": self = .timeout
        case "NODE_FAIL", "BOOT_FAIL": self = .nodeFail
        case "OUT_OF_MEMORY": self = .outOfMemory
        default: self = .unknown(state)
        }
    }

    /// True once the job will not change any more (every state but pending, running and unknown).
    public var isFinal: Bool {
        switch self {
        case .pending, .running, .unknown: return false
        case .completed, .failed, .cancelled, .timeout, .nodeFail, .outOfMemory: return true
        }
    }

    /// True when the job ended in a way that makes `afterok` dependants impossible.
    public var isUnsuccessful: Bool { isFinal && self != .completed }

    /// Short text for progress views: "pending (Dependency)", "running", "failed (NonZeroExitCode)".
    public var description: String {
        func with(_ name: String, _ reason: String) -> String { reason.isEmpty ? name : "\(name) (\(reason))" }
        switch self {
        case let .pending(reason): return with("pending", reason)
        case .running: return "running"
        case .completed: return "completed"
        case let .failed(reason): return with("failed", reason)
        case let .cancelled(reason): return with("cancelled", reason)
        case .timeout: return "timeout"
        case .nodeFail: return "node failure"
        case .outOfMemory: return "out of memory"
        case let .unknown(text): return "unknown (\(text))"
        }
    }
}

/// One line of squeue: a job, its state and the nodes it runs or ran on.
public struct SlurmJobInfo: Sendable, Hashable {
    public var id: SlurmJobID
    public var state: SlurmJobState
    /// squeue's `%N`, e.g. "n1" or "n[1-2]"; empty while pending.
    public var nodes: String

    public init(id: SlurmJobID, state: SlurmJobState, nodes: String) {
        self.id = id
        self.state = state
        self.nodes = nodes
    }

    /// The squeue `--format` these lines come from. The reason goes last: it is free text.
    public static let squeueFormat = "%i|%T|%N|%r"

    /// Parses squeue output in `squeueFormat` without a header; `command` names it in errors.
    public static func parse(squeueOutput: String, command: String) throws(SlurmError) -> [SlurmJobInfo] {
        var jobs: [SlurmJobInfo] = []
        for line in squeueOutput.split(whereSeparator: \.isNewline) {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            let fields = text.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw .unreadableOutput(command: command, output: text, expected: "lines of the form ID|STATE|NODES|REASON")
            }
            jobs.append(SlurmJobInfo(id: SlurmJobID(fields[0]), state: SlurmJobState(state: fields[1], reason: fields[3]),
                                     nodes: fields[2]))
        }
        return jobs
    }
}
