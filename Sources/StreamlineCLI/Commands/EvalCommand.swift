// `streamline eval --model STORE --text FILE | --dataset STORE`: perplexity of a model store on text,
// with the protocol printed (and written with --json). The measurement is Perplexity.evaluate (Model
// module; its header documents the windowing); this file parses options and prints.

import ArgumentParser
import Data
import Foundation
import Model
import Tensor

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a model's perplexity on a text file or a token dataset store.",
        discussion: """
            Perplexity = exp(mean next-token negative log-likelihood over all scored tokens). The \
            text is tokenized with the model store's tokenizer and cut into windows of --window \
            tokens starting every --stride tokens (default: --window, i.e. non-overlapping). Each \
            window scores only tokens no earlier window scored (Hugging Face's sliding-window \
            convention); the first token of a window without --bos has no context and is not scored. \
            --bos puts the tokenizer's bos token before every window. Windows cross document \
            boundaries of a dataset.

            Examples:
              streamline eval --model runs/smollm2.h5 --text data/shakespeare/tragedies/hamlet.md --window 512
              streamline eval --model runs/smollm2.h5 --dataset runs/val.h5 --window 512 --stride 256 --max-tokens 8192
            """)

    @Option(help: "The model store.")
    var model: String

    @Option(help: "A UTF-8 text file to evaluate on.")
    var text: String?

    @Option(help: "A token dataset store (from the dataset stage) to evaluate on.")
    var dataset: String?

    @Option(help: "Tokens per window.")
    var window: Int = 512

    @Option(help: "Tokens between window starts (default: the window, no overlap).")
    var stride: Int?

    @Option(help: "Use only the first N tokens of the text.")
    var maxTokens: Int?

    @Flag(help: "Put the bos token before each window.")
    var bos = false

    // Default 1: on this machine B=4 windows of 512 measured no faster than one (larger working set).
    @Option(help: "Windows per forward pass (speed only; the result is the same).")
    var batch: Int = 1

    @Option(help: "Threads.")
    var threads: Int = Threading.coreCount

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard (text == nil) != (dataset == nil) else { throw ValidationError("Give exactly one of --text and --dataset.") }
        guard window >= 2 else { throw ValidationError("--window must be at least 2.") }
        guard (1...window).contains(stride ?? window) else { throw ValidationError("--stride must be in 1...\(window).") }
        guard (maxTokens ?? 2) >= 2, batch >= 1, threads >= 1 else {
            throw ValidationError("--max-tokens must be at least 2, --batch and --threads at least 1.")
        }
    }

    func run() throws {
        Threading.configure(threads: threads)
        let store = try ModelStore(store: URL(fileURLWithPath: model))
        let tokens: [Int32], textDigest: String
        if let text {
            let url = URL(fileURLWithPath: text)
            let documents = try TextCorpus.plainText(url)
            tokens = documents.flatMap { store.tokenizer.encode($0.text) }
            textDigest = try ModelStore.contentDigest(of: url)
        } else {
            let data = try TokenDataset(store: URL(fileURLWithPath: dataset!))
            do {
                try data.requireTokenizer(store.tokenizer)
            } catch {
                throw ValidationError(error.description)
            }
            tokens = data.tokens
            textDigest = "\(data.textDigest) \(data.selection)"
        }
        let evaluation = PerplexityProtocol(window: window, stride: stride, bos: bos, maxTokens: maxTokens,
                                            tokenizerDigest: store.tokenizer.digest, textDigest: textDigest)
        let result = try Perplexity.evaluate(try store.decoder(), tokens: tokens, evaluation: evaluation,
                                             bosID: store.tokenizer.bosID, batch: batch)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
            return
        }
        print("perplexity \(String(format: "%.4f", result.perplexity))  (mean NLL \(String(format: "%.6f", result.meanNLL)) nats)")
        print("scored     \(result.tokensScored) tokens in \(result.windows) windows, \(String(format: "%.2f", result.seconds)) s, \(String(format: "%.1f", result.tokensPerSecond)) tokens/s (\(threads) threads)")
        print("protocol   window \(window), stride \(evaluation.stride), bos \(bos), max tokens \(maxTokens.map(String.init) ?? "all")")
        print("tokenizer  \(evaluation.tokenizerDigest)")
        print("text       \(textDigest)")
    }
}
