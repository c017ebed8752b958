// The flat table of benchmarks under `streamline bench`.

import ArgumentParser

extension BenchCommand {
    static let registeredBenchmarks: [any ParsableCommand.Type] = [
        BenchCommand.Store.self,
    ]
}
