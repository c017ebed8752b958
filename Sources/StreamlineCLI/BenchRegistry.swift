// The flat table of benchmarks under `streamline bench`.

import ArgumentParser

extension BenchCommand {
    static let registeredBenchmarks: [any ParsableCommand.Type] = [
        BenchCommand.Engine.self,
        BenchCommand.Peers.self,
        BenchCommand.Store.self,
        BenchCommand.Regularize.self,
        BenchCommand.PipelineRuns.self,
        BenchCommand.Tokenizer.self,
    ]
}
