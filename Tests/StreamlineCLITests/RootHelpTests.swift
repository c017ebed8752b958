// The root `--help`: a new user's first screen starts from the quickstart, says how progress looks
// and where completions come from. Help output is part of the contract, so it is compared verbatim.

import Foundation
import Testing

@Test func rootHelpStartsFromTheQuickstartVerbatim() throws {
    let result = try streamline(["--help"], in: repositoryRoot)
    #expect(result.stdout == """
            OVERVIEW: Compress transformer language models by DReSS structured pruning, run
            as cached pipelines.

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

            USAGE: streamline <subcommand>

            OPTIONS:
              --version               Show the version.
              -h, --help              Show help information.

            SUBCOMMANDS:
              validate                Check a pipeline spec: syntax, keys, kinds,
                                      parameters, references and sweeps.
              plan                    Show the stage DAG: every node, whether it is cached,
                                      and why it would run.
              run                     Run a pipeline (or some targets and what they need),
                                      reusing every cached stage.
              explain                 Explain why a stage will run: which parameter or
                                      input digest differs from the nearest cached record.
              stage                   Run one stage (or sweep member) now, if it is not
                                      cached; its inputs must be cached.
              logs                    Print the log of a stage's latest attempt (also kept
                                      when it failed).
              status                  Show each stage's state in the cache (cached,
                                      running, stopped, failed, not run) and its Slurm
                                      job's state.
              cancel                  Cancel the Slurm jobs of a run submitted with 'run
                                      --executor slurm' (nothing else).
              cache                   List, verify, clean, export and import cache entries.
              inspect                 Show what an HDF5 tensor store holds: kind, digest,
                                      metadata, provenance and tensors.
              bench                   Measure Streamline's speed on this machine.
              import                  Convert a GGUF file or Hugging Face folder into a
                                      Streamline model store.
              export                  Write a model store as a Hugging Face folder
                                      (transformers >= 4.45) or a GGUF file (llama.cpp).
              eval                    Measure a model's perplexity on a text file or a
                                      token dataset store.
              generate                Continue a prompt with a model store.
              report                  Print the table of a pipeline's report stage(s) from
                                      the cache; --out also writes the tables and plots.

              See 'streamline help <subcommand>' for detailed help.

            """)
}
