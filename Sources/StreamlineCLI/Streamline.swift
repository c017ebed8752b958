// The `streamline` root command: it only lists the subcommands; each one lives in Commands/.

import ArgumentParser

public struct Streamline: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "streamline",
        abstract: "Compress transformer language models by DReSS structured pruning, run as cached pipelines.",
        discussion: """
            Streamline regularizes the hidden channels chosen for removal so their information moves into
            the channels that stay, prunes them physically, and fine-tunes briefly to recover. Work is
            described in YAML pipelines; every finished stage is cached by content.

            Start with:  make run      (builds, then runs Pipelines/quickstart.yaml: prune, fine-tune, evaluate, report)
                         streamline run -s Pipelines/quickstart.yaml     (the same with a built binary)
            Then:        streamline status -s Pipelines/quickstart.yaml  (what is cached)
                         streamline inspect STORE      (what an HDF5 tensor store holds)

            Progress is redrawn in place on a terminal and printed as plain lines when piped
            (--progress plain forces them); NO_COLOR turns colour off. Shell completions:
            streamline --generate-completion-script bash|zsh|fish (see the README).
            """,
        version: StreamlineVersion.string,
        subcommands: Streamline.registeredSubcommands
    )

    public init() {}
}

/// The tool's version, recorded in every store's provenance and every cache record.
public enum StreamlineVersion {
    public static let string = "0.1.0"
}
