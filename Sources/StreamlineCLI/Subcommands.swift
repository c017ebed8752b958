// The flat table of subcommands: adding a command is one file in Commands/ and one line here.

import ArgumentParser

extension Streamline {
    static let registeredSubcommands: [any ParsableCommand.Type] = [
        ValidateCommand.self,
        PlanCommand.self,
        RunCommand.self,
        ExplainCommand.self,
        StageCommand.self,
        LogsCommand.self,
        StatusCommand.self,
        CancelCommand.self,
        CacheCommand.self,
        InspectCommand.self,
        BenchCommand.self,
        ImportCommand.self,
        ExportCommand.self,
        EvalCommand.self,
        GenerateCommand.self,
        ReportCommand.self,
    ]
}
