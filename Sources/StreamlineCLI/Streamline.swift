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

            Start with:  streamline inspect STORE      (what an HDF5 tensor store holds)
                         streamline bench engine        (how fast this machine runs the engine)
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
