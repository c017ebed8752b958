// A typed wrapper over the Slurm command-line tools (sbatch, squeue, scancel), run as child
// processes. It submits jobs chained by `afterok` dependencies, reads their states, cancels them and
// renders the exact sbatch command of a submission (for `streamline plan --executor slurm`).
// It is not an executor: deciding what to submit, polling and reporting belong to the Slurm executor.
// The cluster is whatever the tools reach: `SLURM_CONF` from the environment, or `configFile`.
//
// Facts this relies on (Slurm 22.05, shared/design.md "Distributed execution"):
// - without `--kill-on-invalid-dep=yes` a job whose parent failed stays pending forever;
// - an `afterok` on a job id Slurm no longer knows is silently ignored (`checkDependencies` first);
// - squeue's text formats are stable across releases, its JSON is not.

import Foundation

/// One job to submit.
public struct SlurmSubmission: Sendable, Hashable {
    /// What the job runs.
    public enum Payload: Sendable, Hashable {
        /// A command line run by `/bin/sh` (`sbatch --wrap`), e.g. "streamline stage prune --spec …".
        case command(String)
        /// A batch script file (it may carry its own `#SBATCH` lines; command-line options win).
        case script(path: String)
    }

    /// `--job-name`, shown by squeue (e.g. "streamline:prune[ratio=0.5]").
    public var name: String
    public var payload: Payload
    public var resources: SlurmResources
    /// Jobs that must complete successfully first (`--dependency=afterok:…`). Use
    /// `SlurmJobID.shellVariable` only for rendering with `sbatchLines`, never to submit.
    public var dependencies: [SlurmJobID]
    /// `--output` log path (Slurm expands %j to the job id); nil is Slurm's `slurm-%j.out`.
    public var output: String?
    /// `--error` log path; nil sends stderr to the output log.
    public var error: String?
    /// `--chdir`; nil is the submitting process's directory.
    public var workingDirectory: String?
    /// Variables set for sbatch and, through Slurm's default `--export=ALL`, for the job.
    public var environment: [String: String]

    public init(name: String, payload: Payload, resources: SlurmResources = SlurmResources(),
                dependencies: [SlurmJobID] = [], output: String? = nil, error: String? = nil,
                workingDirectory: String? = nil, environment: [String: String] = [:]) {
        self.name = name
        self.payload = payload
        self.resources = resources
        self.dependencies = dependencies
        self.output = output
        self.error = error
        self.workingDirectory = workingDirectory
        self.environment = environment
    }
}

extension SlurmJobID {
    /// A stand-in for a job id not known yet, rendered by `sbatchLines` as `$name` (a variable that
    /// an earlier line of the rendered script assigns). `submit` refuses it.
    public static func shellVariable(_ name: String) -> SlurmJobID { SlurmJobID("$" + name) }

    /// The variable name when this is a `shellVariable` stand-in.
    var shellVariableName: String? { rawValue.hasPrefix("$") ? String(rawValue.dropFirst()) : nil }
}

/// Runs sbatch, squeue and scancel against one cluster.
public struct SlurmClient: Sendable {
    /// slurm.conf to use (`SLURM_CONF` for every tool); nil keeps the environment's or the default.
    public var configFile: String?
    /// The environment the tools run with; `PATH` is where they are looked up.
    public var environment: [String: String]

    public init(configFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.configFile = configFile
        self.environment = environment
    }

    // MARK: - Submitting

    /// The arguments after `sbatch` for `submission`, in a fixed order: name, paths, resources, then
    /// `--kill-on-invalid-dep=yes` (always, so a failed parent cancels its dependants), dependencies
    /// and the payload last.
    public func sbatchArguments(for submission: SlurmSubmission) throws(SlurmError) -> [String] {
        try Self.validate(submission)
        try submission.resources.validate()
        var arguments = ["--parsable", "--job-name=\(submission.name)"]
        if let directory = submission.workingDirectory { arguments.append("--chdir=\(directory)") }
        if let output = submission.output { arguments.append("--output=\(output)") }
        if let error = submission.error { arguments.append("--error=\(error)") }
        arguments += submission.resources.sbatchArguments
        arguments.append("--kill-on-invalid-dep=yes")
        if !submission.dependencies.isEmpty {
            arguments.append("--dependency=afterok:" + submission.dependencies.map(\.rawValue).joined(separator: ":"))
        }
        switch submission.payload {
        case let .command(line): arguments.append("--wrap=\(line)")
        case let .script(path): arguments.append(path)
        }
        return arguments
    }

    /// Submits one job and returns its id (`sbatch --parsable`).
    public func submit(_ submission: SlurmSubmission) throws(SlurmError) -> SlurmJobID {
        if let standIn = submission.dependencies.first(where: { $0.shellVariableName != nil }) {
            throw .invalidSubmission(field: "dependencies", value: standIn.rawValue,
                                     expected: "a job id returned by submit (shell variables are for sbatchLines only)")
        }
        let arguments = try sbatchArguments(for: submission)
        let output = try run("sbatch", arguments, extraEnvironment: submission.environment)
        // --parsable prints "ID" or, on a federation or multi-cluster setup, "ID;CLUSTER".
        let id = output.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "_") }) else {
            throw .unreadableOutput(command: "sbatch --parsable", output: output, expected: "a job id such as 4211")
        }
        return SlurmJobID(id)
    }

    /// The shell command `submit` would run for `submission`, on one line, with every argument
    /// quoted for /bin/sh and `K=V` assignments for its environment (and `SLURM_CONF` when set here).
    public func sbatchLine(_ submission: SlurmSubmission) throws(SlurmError) -> String {
        let arguments = try sbatchArguments(for: submission)
        var words: [String] = []
        var assignments = submission.environment
        if let configFile { assignments["SLURM_CONF"] = configFile }
        for (key, value) in assignments.sorted(by: { $0.key < $1.key }) {
            words.append("\(key)=\(Self.shellQuoted(value))")
        }
        words.append("sbatch")
        words += arguments.map(Self.shellQuoted)
        if submission.dependencies.contains(where: { $0.shellVariableName != nil }) {
            // The dependency option sits just before the payload (see sbatchArguments). Stand-ins
            // must expand, so that word is double-quoted; every stand-in name was validated.
            let parts = submission.dependencies.map { $0.shellVariableName.map { "${\($0)}" } ?? $0.rawValue }
            words[words.count - 2] = "\"--dependency=afterok:" + parts.joined(separator: ":") + "\""
        }
        return words.joined(separator: " ")
    }

    /// A script of `VARIABLE=$(sbatch …)` lines, one per job in order, for showing a plan: dependencies
    /// given as `SlurmJobID.shellVariable(v)` refer to the job an earlier line assigned to `v`.
    /// Running the script submits the whole DAG.
    public func sbatchLines(_ jobs: [(variable: String, submission: SlurmSubmission)]) throws(SlurmError) -> String {
        var assigned = Set<String>()
        var lines: [String] = []
        for (variable, submission) in jobs {
            guard Self.isShellName(variable) else {
                throw .invalidSubmission(field: "variable", value: variable, expected: "a shell variable name ([A-Za-z_][A-Za-z0-9_]*)")
            }
            for dependency in submission.dependencies {
                if let name = dependency.shellVariableName, !assigned.contains(name) {
                    throw .invalidSubmission(field: "dependencies of \(variable)", value: dependency.rawValue,
                                             expected: "a variable assigned by an earlier line")
                }
            }
            lines.append("\(variable)=$(\(try sbatchLine(submission)))")
            assigned.insert(variable)
        }
        return lines.joined(separator: "\n")
    }

    // MARK: - Watching and cancelling

    /// squeue's view of `ids`: one entry per job Slurm still knows. A job missing from the result was
    /// never submitted or finished longer ago than the cluster's `MinJobAge`.
    public func jobs(_ ids: [SlurmJobID]) throws(SlurmError) -> [SlurmJobID: SlurmJobInfo] {
        var result: [SlurmJobID: SlurmJobInfo] = [:]
        // Why chunks: one squeue per 500 ids keeps the command line short on a 50-member sweep and beyond.
        var start = 0
        while start < ids.count {
            let chunk = ids[start..<min(start + 500, ids.count)]
            start += 500
            let arguments = ["--noheader", "--states=all", "--jobs=" + chunk.map(\.rawValue).joined(separator: ","),
                             "--format=\(SlurmJobInfo.squeueFormat)"]
            let output: String
            do {
                output = try run("squeue", arguments)
            } catch let error {
                // squeue fails (rather than printing nothing) when the only id asked for is unknown.
                if case let .commandFailed(_, _, stderr) = error, stderr.contains("Invalid job id specified") { continue }
                throw error
            }
            for job in try SlurmJobInfo.parse(squeueOutput: output, command: "squeue " + arguments.joined(separator: " ")) {
                result[job.id] = job
            }
        }
        return result
    }

    /// The state of every job in `ids` that Slurm still knows (see `jobs`).
    public func states(of ids: [SlurmJobID]) throws(SlurmError) -> [SlurmJobID: SlurmJobState] {
        try jobs(ids).mapValues(\.state)
    }

    /// Throws unless every job in `parents` is known to Slurm and has not ended unsuccessfully. Call it
    /// right before submitting dependants: sbatch silently drops an `afterok` on an unknown id.
    public func checkDependencies(_ parents: [SlurmJobID]) throws(SlurmError) {
        guard !parents.isEmpty else { return }
        let known = try states(of: parents)
        for parent in parents {
            guard let state = known[parent] else { throw .unknownDependency(job: parent) }
            if state.isUnsuccessful { throw .failedDependency(job: parent, state: state) }
        }
    }

    /// Cancels `ids` (pending or running); ids that already ended are ignored by Slurm.
    public func cancel(_ ids: [SlurmJobID]) throws(SlurmError) {
        guard !ids.isEmpty else { return }
        _ = try run("scancel", ids.map(\.rawValue))
    }

    // MARK: - Running the tools

    /// Runs `tool` with `arguments` and returns its standard output; a non-zero exit throws with its
    /// standard error.
    func run(_ tool: String, _ arguments: [String], extraEnvironment: [String: String] = [:]) throws(SlurmError) -> String {
        let executable = try locate(tool)
        var environment = self.environment
        if let configFile { environment["SLURM_CONF"] = configFile }
        environment.merge(extraEnvironment) { _, new in new }
        let result = try Self.spawn(executable, arguments, environment: environment)
        guard result.status == 0 else {
            let shown = ([tool] + arguments.map(Self.shellQuoted)).joined(separator: " ")
            throw .commandFailed(command: shown, status: result.status, stderr: result.stderr)
        }
        return result.stdout
    }

    /// Runs `executable` to completion with stdin from /dev/null and stdout and stderr captured in
    /// temporary files; the status is the exit code, or 128 + the signal number.
    ///
    /// Why posix_spawn and waitpid rather than Foundation's Process: with Swift 6.3 on Linux,
    /// `Process.waitUntilExit()` called from a Swift-concurrency thread never saw a child exit (the
    /// child stayed a zombie and the test run hung). Files instead of pipes: the tools' daemons (in
    /// scripts/slurm-local.sh) must not inherit a pipe that a reader waits to see closed. The signal
    /// mask and dispositions are reset because threads of this process block signals, and a child
    /// that inherited that mask would ignore the SIGTERM that stops it.
    static func spawn(_ executable: String, _ arguments: [String],
                      environment: [String: String]) throws(SlurmError) -> (status: Int32, stdout: String, stderr: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-slurm-\(UUID().uuidString)").path
        let outPath = base + ".out", errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw .launchFailed(tool: executable, detail: String(cString: strerror(spawned)))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else {
                throw .launchFailed(tool: executable, detail: "waitpid: " + String(cString: strerror(errno)))
            }
        }
        // The wait status as <sys/wait.h> lays it out: exit code in bits 8-15, signal in bits 0-6.
        let signal = status & 0x7f
        let code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        func read(_ path: String) -> String {
            (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        }
        return (code, read(outPath), read(errPath))
    }

    /// The absolute path of `tool` on this client's PATH.
    func locate(_ tool: String) throws(SlurmError) -> String {
        let directories = (environment["PATH"] ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        for directory in directories {
            let path = directory + "/" + tool
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw .toolNotFound(tool: tool, searched: directories)
    }

    // MARK: - Checks and quoting

    static func validate(_ submission: SlurmSubmission) throws(SlurmError) {
        if submission.name.isEmpty || submission.name.contains(where: \.isNewline) {
            throw .invalidSubmission(field: "name", value: submission.name, expected: "a non-empty single line")
        }
        for key in submission.environment.keys where !isShellName(key) {
            throw .invalidSubmission(field: "environment", value: key, expected: "a variable name ([A-Za-z_][A-Za-z0-9_]*)")
        }
        for dependency in submission.dependencies {
            let valid = dependency.shellVariableName.map(isShellName)
                ?? (!dependency.rawValue.isEmpty && dependency.rawValue.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "_") })
            if !valid {
                throw .invalidSubmission(field: "dependencies", value: dependency.rawValue, expected: "a Slurm job id such as 4211")
            }
        }
        for (field, path) in [("output", submission.output), ("error", submission.error), ("workingDirectory", submission.workingDirectory)] {
            if let path, path.isEmpty || path.contains(where: \.isNewline) {
                throw .invalidSubmission(field: field, value: path, expected: "a path on one line")
            }
        }
        if case let .command(line) = submission.payload, line.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw .invalidSubmission(field: "payload", value: line, expected: "a command to run")
        }
    }

    static func isShellName(_ name: String) -> Bool {
        guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    /// `text` as one /bin/sh word: as is when it holds only safe characters, else in single quotes.
    static func shellQuoted(_ text: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")
        if !text.isEmpty, text.allSatisfy(safe.contains) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
