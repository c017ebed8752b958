// `streamline bench`: performance figures measured on this machine, as ratios within one run.

import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure engine speed on this machine (tokens/s, GFLOP/s against cblas_sgemm, memory).")

    func run() async throws {
        print("bench: not yet wired")
    }
}
