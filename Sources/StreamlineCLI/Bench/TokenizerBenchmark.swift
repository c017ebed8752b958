// `streamline bench tokenizer`: byte-level BPE encoding throughput on real text, one thread
// (issue 3's target: at least 2 MB of text per second on one core).

import ArgumentParser
import Data
import Foundation

extension BenchCommand {
    struct Tokenizer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode real text with a GGUF model's tokenizer on one thread: MB/s and tokens/s.")

        @Option(help: "A GGUF file whose tokenizer to use (make models fetches SmolLM2).")
        var gguf: String = "models/smollm2/SmolLM2-135M-Instruct-Q4_1.gguf"

        @Option(help: "A text file to encode (make corpora fetches the King James Bible).")
        var text: String = "data/kjv/kjv.txt"

        func run() throws {
            let tokenizer = try BPETokenizer(gguf: GGUFFile(url: URL(fileURLWithPath: gguf)))
            let content = try String(contentsOfFile: text, encoding: .utf8)
            let megabytes = Double(content.utf8.count) / 1e6
            var tokens = 0
            // The encoder caches the merges of each distinct word, so the first pass pays for filling it.
            let cold = Measure.seconds { tokens = tokenizer.encode(content).count }
            let warm = Measure.seconds { tokens = tokenizer.encode(content).count }
            print("""
                \(text): \(megabytes.formatted(1)) MB, \(tokens) tokens
                  first pass:  \((megabytes / cold).formatted(1)) MB/s, \((Double(tokens) / cold / 1e6).formatted(2)) M tokens/s
                  second pass: \((megabytes / warm).formatted(1)) MB/s (word cache warm)   (target ≥ 2 MB/s on one core)
                """)
        }
    }
}
