// Every failure of the Slurm layer: a tool that is missing or fails, output that cannot be read, a
// resource value that is malformed, a dependency Slurm cannot honour. Each message says what and
// where and ends with what to do. It is separate from PipelineError because the Slurm client is
// usable (and tested) without a pipeline; the Slurm executor wraps it where it reports stage failures.

import Foundation

/// An error talking to Slurm or describing a Slurm job.
public enum SlurmError: Error, Sendable, Equatable {
    /// A Slurm command (`sbatch`, `squeue`, `scancel`) is not on the search path.
    case toolNotFound(tool: String, searched: [String])
    /// The command exists but could not be started.
    case launchFailed(tool: String, detail: String)
    /// The command ran and exited with a non-zero status; `stderr` is what it printed.
    case commandFailed(command: String, status: Int32, stderr: String)
    /// The command succeeded but printed something this client cannot read.
    case unreadableOutput(command: String, output: String, expected: String)
    /// A resource value (`keyPath` such as `stages.prune.memory`) that Slurm would not accept.
    case invalidResource(keyPath: String, value: String, expected: String)
    /// A submission that cannot be expressed as an sbatch command (empty name, bad variable name…).
    case invalidSubmission(field: String, value: String, expected: String)
    /// A dependency on a job Slurm does not know (purged after MinJobAge, or never submitted):
    /// sbatch would silently drop the `afterok`, so the dependant could run too early.
    case unknownDependency(job: SlurmJobID)
    /// A dependency on a job that ended without success: the dependant could never start.
    case failedDependency(job: SlurmJobID, state: SlurmJobState)
    /// `streamline status` or `cancel` found no run record to reattach to in the cache.
    case noRecordedRun(cache: String, detail: String)
}

extension SlurmError {
    /// The same error with `prefix.` in front of a resource key path (to name where in the spec).
    func prefixingKeyPath(_ prefix: String) -> SlurmError {
        guard case let .invalidResource(keyPath, value, expected) = self, !prefix.isEmpty else { return self }
        return .invalidResource(keyPath: "\(prefix).\(keyPath)", value: value, expected: expected)
    }
}

extension SlurmError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .toolNotFound(tool, searched):
            return "\(tool) not found (searched \(searched.isEmpty ? "an empty PATH" : searched.joined(separator: ":"))): "
                + "install slurm-wlm (or load your cluster's Slurm module), or run scripts/slurm-local.sh install"
        case let .launchFailed(tool, detail):
            return "could not start \(tool): \(detail); check that it is executable and that PATH points at a working Slurm"
        case let .commandFailed(command, status, stderr):
            let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "`\(command)` exited with status \(status)\(text.isEmpty ? "" : ": \(text)"); "
                + "check that the controller answers (`sinfo`) and that SLURM_CONF names the right cluster"
        case let .unreadableOutput(command, output, expected):
            return "`\(command)` printed \(output.debugDescription), expected \(expected); "
                + "this Slurm release may format its output differently: report it with `sbatch --version`"
        case let .invalidResource(keyPath, value, expected):
            return "\(keyPath): \(value.debugDescription) is not a valid Slurm resource; expected \(expected); fix it in the spec's slurm: section"
        case let .invalidSubmission(field, value, expected):
            return "Slurm submission \(field): \(value.debugDescription) cannot be passed to sbatch; expected \(expected)"
        case let .unknownDependency(job):
            return "job \(job) is not known to Slurm any more (finished longer ago than MinJobAge, or never submitted), "
                + "so an afterok on it would be silently ignored; re-run so that the stage is found in the cache or resubmitted"
        case let .failedDependency(job, state):
            return "job \(job) ended as \(state), so jobs depending on it would never start; "
                + "see that stage's log, fix it and run again"
        case let .noRecordedRun(cache, detail):
            return "no Slurm run to reattach to in the cache \(cache): \(detail); "
                + "submit one with `streamline run --executor slurm` (same --spec and --cache), or name it with --run"
        }
    }
}
