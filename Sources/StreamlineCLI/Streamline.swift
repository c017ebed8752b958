// The `streamline` root command: it only lists the subcommands; each one lives in Commands/.

import ArgumentParser
import TensorStore

public struct Streamline: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "streamline",
        abstract: "Compress transformer language models by DReSS structured pruning, run as cached pipelines.",
        discussion: """
            Regularize the hidden channels chosen for removal so their information moves
            into the channels that stay, prune them physically, fine-tune briefly. Work
            is a YAML pipeline; every finished stage is cached by content.

            Start with:
              make run                 builds, then runs Pipelines/quickstart.yaml
              streamline run -s Pipelines/quickstart.yaml     the same, already built
              streamline status -s Pipelines/quickstart.yaml  what is cached
              streamline report -s Pipelines/quickstart.yaml --out DIR   tables, plots

            On a terminal progress is redrawn in place; piped, or with --progress plain,
            it is plain lines. NO_COLOR turns colour off. Shell completions:
              streamline --generate-completion-script bash|zsh|fish   (see docs/cli.md)
            """,
        version: StreamlineVersion.string,
        subcommands: Streamline.registeredSubcommands
    )

    public init() {}
}
