// `streamline cancel`: cancel the Slurm jobs of a recorded run (default: the latest Slurm run of the
// spec) that have not ended, and nothing else: other runs' and other users' jobs are not touched.

import ArgumentParser
import Foundation
import Pipeline

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel the Slurm jobs of a run submitted with 'run --executor slurm' (nothing else).")

    @OptionGroup var options: PipelineOptions

    @OptionGroup var slurmRun: SlurmRunOption

    func run() throws {
        let record = try slurmRun.load(cache: options.cacheURL, spec: options.specURL)
        let client = options.slurmExecutor(SlurmSettings(), recordedConf: record.slurmConf).client
        let states = try client.states(of: record.jobs.map(\.job))
        let open = record.jobs.filter { states[$0.job].map { !$0.isFinal } ?? false }
        try client.cancel(open.map(\.job))
        print("cancelled \(open.count) of the \(record.jobs.count) jobs of run \(record.run)"
              + (open.isEmpty ? "" : " (jobs " + open.map(\.job.rawValue).joined(separator: ",") + ")"))
    }
}
