// `streamline bench`: performance figures measured on this machine. Each benchmark reports ratios
// measured in one run (achieved rate ÷ a reference rate), because this machine is shared and noisy.

import ArgumentParser
import Foundation
import Tensor
import TensorStore

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Streamline's speed on this machine.",
        subcommands: BenchCommand.registeredBenchmarks)
}

/// Options every benchmark shares.
struct BenchOptions: ParsableArguments {
    @Option(help: "Threads for BLAS and parallel loops (default: every core).")
    var threads: Int = Threading.coreCount

    func apply() { Threading.configure(threads: threads) }
}

extension BenchCommand {
    /// `streamline bench store`: write, read and verify a SmolLM2-sized store.
    struct Store: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write, read and verify a 538 MB SmolLM2-shaped tensor store; MB/s against raw SHA-256.")

        @OptionGroup var options: BenchOptions

        @Option(help: "Folder for the temporary store (removed afterwards).")
        var folder: String = FileManager.default.temporaryDirectory.path

        func run() throws {
            options.apply()
            let dir = URL(fileURLWithPath: folder).appendingPathComponent("streamline-bench-\(getpid())")
            defer { try? FileManager.default.removeItem(at: dir) }
            let result = try TensorStoreBenchmark.run(folder: dir)
            print(result.report)
        }
    }
}
