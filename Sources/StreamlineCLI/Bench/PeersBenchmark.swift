// `streamline bench peers`: the engine bench's shapes through a minimal PyTorch LLaMA
// (scripts/bench/torch_llama.py) in the same invocation, interleaved run by run, so both engines see
// the same load and only their ratio is read (issue 13). Same B, T, fp32 and thread count; random
// weights and tokens on both sides. `make bench-peers` installs Debian's python3-torch first.

import ArgumentParser
import Foundation
import Model
import Tensor

/// What can go wrong talking to the PyTorch process.
enum PeerError: Error, CustomStringConvertible {
    /// The script could not be started.
    case cannotStart(python: String, script: String, reason: String)
    /// The process ended or answered something that is not a JSON object.
    case badReply(command: String, reply: String)

    var description: String {
        switch self {
        case .cannotStart(let python, let script, let reason):
            "cannot start \(python) \(script): \(reason). Run `make bench-peers` (it installs python3-torch), or pass --python and --script."
        case .badReply(let command, let reply):
            "PyTorch peer answered '\(reply)' to \(command); run the script by hand to see its error."
        }
    }
}

/// The PyTorch process, driven one JSON line at a time (the protocol is in the script's docstring).
final class TorchPeer {
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffered = Data()

    init(python: String, script: String, threads: Int) throws(PeerError) {
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script]
        var environment = ProcessInfo.processInfo.environment
        for key in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"] { environment[key] = "\(threads)" }
        // OpenMP threads that sleep instead of spinning at barriers: with the default, on a machine
        // whose other core is busy, PyTorch's elementwise ops ran 10× slower and its forward 1.7×
        // (small shape, 2 threads, measured here), a handicap that would flatter us.
        environment["OMP_WAIT_POLICY"] = environment["OMP_WAIT_POLICY"] ?? "PASSIVE"
        // Debian's PyTorch links the same OpenBLAS: where it would fall back to generic kernels on this
        // CPU and we re-selected ours, the peer gets the same kernels, or the comparison would flatter us.
        if BLASKernels.override != nil, environment["OPENBLAS_CORETYPE"] == nil {
            environment["OPENBLAS_CORETYPE"] = BLASKernels.name
        }
        process.environment = environment
        process.standardInput = input
        process.standardOutput = output
        guard FileManager.default.fileExists(atPath: script) else {
            throw .cannotStart(python: python, script: script, reason: "no such script")
        }
        do { try process.run() } catch { throw .cannotStart(python: python, script: script, reason: "\(error)") }
    }

    deinit {
        if process.isRunning {
            try? input.fileHandleForWriting.write(contentsOf: Data("{\"op\": \"quit\"}\n".utf8))
            process.waitUntilExit()
        }
    }

    /// Sends one command and returns the reply object.
    func send(_ command: [String: Any]) throws(PeerError) -> [String: Any] {
        let text = (try? JSONSerialization.data(withJSONObject: command)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        do { try input.fileHandleForWriting.write(contentsOf: Data((text + "\n").utf8)) } catch {
            throw .badReply(command: text, reply: "(process gone: \(error))")
        }
        while !buffered.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw .badReply(command: text, reply: "(end of output)") }
            buffered.append(chunk)
        }
        let end = buffered.firstIndex(of: UInt8(ascii: "\n"))!
        let line = buffered[buffered.startIndex..<end]
        buffered = Data(buffered[(end + 1)...])
        guard let reply = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], reply["error"] == nil else {
            throw .badReply(command: text, reply: String(decoding: line, as: UTF8.self))
        }
        return reply
    }

    /// Seconds the peer reports for one `forward` or `train`.
    func time(_ op: String) throws(PeerError) -> Double {
        let reply = try send(["op": op])
        guard let seconds = reply["seconds"] as? Double else { throw .badReply(command: op, reply: "\(reply)") }
        return seconds
    }

    /// Builds the peer's model for a case; returns its reply (parameters, threads, torch version).
    func setUp(_ c: EngineBenchmark.Case, threads: Int) throws(PeerError) -> [String: Any] {
        let config = c.config, layer = config.layers[0]
        return try send([
            "op": "setup", "vocab": config.vocabSize, "hidden": config.hiddenSize, "layers": config.layers.count,
            "heads": layer.heads, "kv_heads": layer.kvHeads, "head_dim": config.headDim, "ffn": layer.ffn,
            "rope_theta": Double(config.ropeTheta), "eps": Double(config.normEps), "B": c.B, "T": c.T, "threads": threads,
        ])
    }
}

extension BenchCommand {
    /// `streamline bench peers`: Streamline against PyTorch on the engine bench's shapes.
    struct Peers: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The engine bench's shapes side by side with a minimal PyTorch LLaMA, interleaved in one run.",
            discussion: """
                For each shape, Streamline and PyTorch (fp32, same B, T and thread count, random weights) alternate: \
                a forward as perplexity evaluation runs it (no gradients) on each, then a training step with AdamW \
                on each, --repeats times after a warm-up. Prints the median tokens/s of each and the median of the rounds' Streamline/PyTorch speed ratios, with their range, and the ratio of each side's fastest run. \
                Targets (issue 13): SmolLM2 forward ≥ 1.4, training step ≥ 1.5; the small shape ≥ 1.2 for both. \
                `make bench-peers` installs Debian's python3-torch and runs this.
                """)

        @OptionGroup var options: BenchOptions

        @OptionGroup var shapes: ShapeOptions

        @Option(help: "The Python that has torch (Debian's python3-torch installs into /usr/bin/python3's path).")
        var python: String = "/usr/bin/python3"

        @Option(help: "The PyTorch LLaMA script.")
        var script: String = "scripts/bench/torch_llama.py"

        func run() throws {
            options.apply()
            let threads = Threading.threads
            let peer = try TorchPeer(python: python, script: script, threads: threads)
            let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
            print("threads: \(threads), B×T as listed, fp32, \(shapes.repeats) interleaved rounds (ratio: median of the rounds' ratios, their range); \(Date().formatted(.iso8601)), load average \(load)")
            print(BLASKernels.summary)
            var table = ["| shape | work | Streamline tokens/s | PyTorch tokens/s | ratio (rounds' range) | fastest ÷ fastest | target |", "|---|---|---|---|---|---|---|"]
            for c in shapes.cases {
                let s = EngineBenchmark.Session(c)
                let info = try peer.setUp(c, threads: threads)
                print("\n\(c.name), B=\(c.B) T=\(c.T): PyTorch \(info["torch"] ?? "?") on \(info["threads"] ?? "?") threads, \(info["parameters"] ?? "?") parameters")
                s.forward()
                _ = try peer.time("forward")
                s.trainStep()
                _ = try peer.time("train")
                var ours: (forward: [Double], train: [Double]) = ([], [])
                var theirs: (forward: [Double], train: [Double]) = ([], [])
                for _ in 0..<shapes.repeats {
                    ours.forward.append(Measure.seconds(s.forward))
                    theirs.forward.append(try peer.time("forward"))
                    ours.train.append(Measure.seconds(s.trainStep))
                    theirs.train.append(try peer.time("train"))
                }
                let target = c.name.hasPrefix("small") ? (forward: 1.2, train: 1.2) : (forward: 1.4, train: 1.5)
                let short = c.name.components(separatedBy: " (").first ?? c.name
                for (work, mine, peers, goal) in [("forward", ours.forward, theirs.forward, target.forward),
                                                  ("training step + AdamW", ours.train, theirs.train, target.train)] {
                    let n = Double(c.B * c.T), a = Samples(mine), b = Samples(peers)
                    // Each round's two runs are back to back and see the same load, so the ratio read is
                    // the median of the rounds' own ratios; a load change between rounds moves both.
                    let paired = Samples(zip(peers, mine).map { $0 / $1 })
                    let ratio = paired.median
                    // Each side's fastest run against the other's: the ratio with every slow outlier left out.
                    let fastest = b.min / a.min
                    print("  \(work): Streamline \((n / a.median).formatted(0)) tokens/s (spread \((100 * a.spread).formatted(0))%), "
                          + "PyTorch \((n / b.median).formatted(0)) (spread \((100 * b.spread).formatted(0))%): \(ratio.formatted(2))× "
                          + "(rounds \(paired.min.formatted(2))–\(paired.max.formatted(2)), fastest runs \(fastest.formatted(2))×; target ≥ \(goal.formatted(1)))")
                    table.append("| \(short) | \(work) | \((n / a.median).formatted(0)) | \((n / b.median).formatted(0)) | \(ratio.formatted(2))× (\(paired.min.formatted(2))–\(paired.max.formatted(2))) | \(fastest.formatted(2))× | ≥ \(goal.formatted(1))× |")
                }
                fflush(nil)  // every stream: a shape takes minutes, show it now even when stdout is a file
            }
            print("\n" + table.joined(separator: "\n"))
        }
    }
}
