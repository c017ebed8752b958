// What a stage asks Slurm for (cpus, memory, time limit, partition, account, gres, extra sbatch
// arguments) and the spec's Slurm settings that assign resources to stages: defaults, overridden by
// stage kind, overridden by stage name. Values are validated when decoded, naming the key path.
// This file does not submit anything (SlurmClient.swift does) and does not read YAML itself: the spec
// loader decodes these types from the `slurm:` section.
//
//     slurm:
//       resources: {cpus: 2, memory: 4G, time: "01:00:00", partition: short}
//       kinds: {dress/finetune: {gres: "gpu:1", time: 240}}
//       stages: {prune: {memory: 500M, extra_args: ["--qos=high"]}}
//       prologue: ["module load hdf5 openblas"]      # run in each job before the stage
//       executable: /shared/bin/streamline           # default: the running streamline

import Foundation

/// Resources for one Slurm job. `nil` means "Slurm's default" (the flag is not passed).
public struct SlurmResources: Sendable, Hashable, Codable {
    /// CPUs for the stage process, `--cpus-per-task` (e.g. 4).
    public var cpus: Int?
    /// Memory per node, `--mem`: a whole number with an optional K, M, G or T suffix (e.g. "4G",
    /// "500M"; no suffix means megabytes, as in Slurm).
    public var memory: String?
    /// Time limit, `--time`: minutes ("90"), "HH:MM:SS" or "D-HH:MM:SS".
    public var time: String?
    /// `--partition` (e.g. "gpu").
    public var partition: String?
    /// `--account` to charge (e.g. "proj123").
    public var account: String?
    /// Generic resources, `--gres` (e.g. "gpu:1", "gpu:a100:2").
    public var gres: String?
    /// Further sbatch arguments, passed as written after the others (e.g. ["--qos=high"]); sbatch
    /// takes the last of a repeated option, so these also override the fields above.
    public var extraArguments: [String]

    public init(cpus: Int? = nil, memory: String? = nil, time: String? = nil, partition: String? = nil,
                account: String? = nil, gres: String? = nil, extraArguments: [String] = []) {
        self.cpus = cpus
        self.memory = memory
        self.time = time
        self.partition = partition
        self.account = account
        self.gres = gres
        self.extraArguments = extraArguments
    }

    enum CodingKeys: String, CodingKey {
        case cpus, memory, time, partition, account, gres
        case extraArguments = "extra_args"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpus = try c.decodeIfPresent(Int.self, forKey: .cpus)
        // Why Int or String: YAML reads `memory: 500` and `time: 90` as integers.
        memory = try Self.decodeText(c, .memory)
        time = try Self.decodeText(c, .time)
        partition = try c.decodeIfPresent(String.self, forKey: .partition)
        account = try c.decodeIfPresent(String.self, forKey: .account)
        gres = try c.decodeIfPresent(String.self, forKey: .gres)
        extraArguments = try c.decodeIfPresent([String].self, forKey: .extraArguments) ?? []
        let path = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        if let problem = firstProblem() {
            // Thrown as a DecodingError so that decoders report it with their own location.
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: problem.prefixingKeyPath(path).description,
                                                    underlyingError: problem))
        }
    }

    private static func decodeText(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> String? {
        if let number = try? c.decodeIfPresent(Int.self, forKey: key) { return String(number) }
        return try c.decodeIfPresent(String.self, forKey: key)
    }

    /// Checks every field; the error names the field (`cpus`, `memory`, …) and the accepted forms.
    public func validate() throws(SlurmError) {
        if let problem = firstProblem() { throw problem }
    }

    /// The first invalid field, if any.
    private func firstProblem() -> SlurmError? {
        if let cpus, cpus < 1 {
            return .invalidResource(keyPath: "cpus", value: String(cpus), expected: "a whole number of at least 1")
        }
        if let memory, Self.megabytes(memory) == nil {
            return .invalidResource(keyPath: "memory", value: memory,
                                    expected: "a positive whole number with an optional K, M, G or T suffix, like 4G or 500M")
        }
        if let time, Self.seconds(ofTimeLimit: time) == nil {
            return .invalidResource(keyPath: "time", value: time,
                                    expected: "minutes (90), HH:MM:SS (01:30:00) or D-HH:MM:SS (2-00:00:00)")
        }
        for (key, value) in [("partition", partition), ("account", account), ("gres", gres)] {
            if let value, value.isEmpty || value.contains(where: \.isWhitespace) {
                return .invalidResource(keyPath: key, value: value, expected: "a non-empty name without spaces")
            }
        }
        for (i, argument) in extraArguments.enumerated() where !argument.hasPrefix("-") {
            return .invalidResource(keyPath: "extra_args[\(i)]", value: argument,
                                    expected: "an sbatch option starting with '-', like --qos=high")
        }
        return nil
    }

    /// `memory` in megabytes, or nil when it is not a positive whole number with K/M/G/T suffix.
    public static func megabytes(_ memory: String) -> Double? {
        var digits = Substring(memory)
        var scale = 1.0
        if let last = digits.last, last.isLetter {
            switch last.uppercased() {
            case "K": scale = 1.0 / 1024
            case "M": scale = 1
            case "G": scale = 1024
            case "T": scale = 1024 * 1024
            default: return nil
            }
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
              let value = Int(digits), value > 0 else { return nil }
        return Double(value) * scale
    }

    /// A time limit in seconds, or nil unless it is minutes, H:MM:SS or D-H:MM:SS.
    /// Why not every form Slurm accepts ("MM:SS", "D-HH"): "10:00" reads as ten hours to some people
    /// and ten minutes to Slurm; three forms leave no doubt.
    public static func seconds(ofTimeLimit text: String) -> Int? {
        func number(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(s)
        }
        var rest = Substring(text)
        var days = 0
        if let dash = rest.firstIndex(of: "-") {
            guard let d = number(rest[..<dash]) else { return nil }
            days = d
            rest = rest[rest.index(after: dash)...]
            guard rest.contains(":") else { return nil }
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        let total: Int
        switch parts.count {
        case 1:
            guard let minutes = number(parts[0]) else { return nil }
            total = minutes * 60
        case 3:
            guard let h = number(parts[0]), let m = number(parts[1]), let s = number(parts[2]),
                  parts[1].count == 2, parts[2].count == 2, m < 60, s < 60 else { return nil }
            total = days * 86_400 + h * 3_600 + m * 60 + s
        default:
            return nil
        }
        return total > 0 ? total : nil
    }

    /// These resources with every field `other` sets replacing ours; extra arguments are appended
    /// (ours first) so that sbatch sees `other`'s last.
    public func overlaid(by other: SlurmResources) -> SlurmResources {
        SlurmResources(cpus: other.cpus ?? cpus, memory: other.memory ?? memory, time: other.time ?? time,
                       partition: other.partition ?? partition, account: other.account ?? account,
                       gres: other.gres ?? gres, extraArguments: extraArguments + other.extraArguments)
    }

    /// The sbatch options for these resources, in a fixed order.
    public var sbatchArguments: [String] {
        var arguments: [String] = []
        if let partition { arguments.append("--partition=\(partition)") }
        if let account { arguments.append("--account=\(account)") }
        if let cpus { arguments.append("--cpus-per-task=\(cpus)") }
        if let memory { arguments.append("--mem=\(memory)") }
        if let time { arguments.append("--time=\(time)") }
        if let gres { arguments.append("--gres=\(gres)") }
        return arguments + extraArguments
    }
}

/// The spec's `slurm:` section: default resources, then per stage kind, then per stage name, and
/// how each job starts the stage (a prologue, the streamline executable on the compute nodes).
public struct SlurmSettings: Sendable, Hashable, Codable {
    /// Resources of every stage unless overridden (key `resources`).
    public var defaults: SlurmResources
    /// Overrides by stage kind, e.g. "dress/finetune" (key `kinds`).
    public var byKind: [String: SlurmResources]
    /// Overrides by stage name as written under `stages:` (key `stages`); wins over `kinds`.
    public var byStage: [String: SlurmResources]
    /// Shell commands each job runs before the stage, in order, e.g. ["module load hdf5"]; a failing
    /// one fails the job (key `prologue`).
    public var prologue: [String]
    /// The streamline executable as the compute nodes see it, e.g. "/shared/bin/streamline" (key
    /// `executable`); nil is the running executable's absolute path.
    public var executable: String?

    public init(defaults: SlurmResources = SlurmResources(), byKind: [String: SlurmResources] = [:],
                byStage: [String: SlurmResources] = [:], prologue: [String] = [], executable: String? = nil) {
        self.defaults = defaults
        self.byKind = byKind
        self.byStage = byStage
        self.prologue = prologue
        self.executable = executable
    }

    enum CodingKeys: String, CodingKey {
        case defaults = "resources"
        case byKind = "kinds"
        case byStage = "stages"
        case prologue, executable
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        defaults = try c.decodeIfPresent(SlurmResources.self, forKey: .defaults) ?? SlurmResources()
        byKind = try c.decodeIfPresent([String: SlurmResources].self, forKey: .byKind) ?? [:]
        byStage = try c.decodeIfPresent([String: SlurmResources].self, forKey: .byStage) ?? [:]
        prologue = try c.decodeIfPresent([String].self, forKey: .prologue) ?? []
        executable = try c.decodeIfPresent(String.self, forKey: .executable)
    }

    /// The resources of stage `stage` of kind `kind`: defaults, overlaid by the kind's, then the stage's.
    public func resources(stage: String, kind: String) -> SlurmResources {
        var result = defaults
        if let forKind = byKind[kind] { result = result.overlaid(by: forKind) }
        if let forStage = byStage[stage] { result = result.overlaid(by: forStage) }
        return result
    }
}
