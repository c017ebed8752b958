// The model stage kinds run end to end by `streamline run` on a tiny model: import (checked against
// the source's sha256) -> dataset (seeded split) -> train (full and LoRA, swept) -> evaluate. Training
// on repetitive text must lower the held-out perplexity below the untrained model's, a second run is
// fully cached, and an import whose sha256 does not match fails saying what to do.

import Data
import Foundation
import StageTestSupport
import Model
import Testing

@Suite struct EvalStagesTests {
    /// A project folder: the tiny model as an HF folder `tiny/`, six text files in `docs/`, and a spec.
    func project(sha256: String? = nil) throws -> URL {
        let dir = try temporaryFolder()
        let tokenizer = try TinyModel.tokenizer()
        let decoder = Decoder.initialized(config: TinyModel.config(vocabSize: tokenizer.vocabSize), seed: 3)
        let tiny = dir.appendingPathComponent("tiny")
        try HFExport.write(config: decoder.config, parameters: decoder.parameters, tokenizer: tokenizer, to: tiny)
        let docs = dir.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        for i in 0..<6 {
            try String(repeating: "the cat sat in the hat number \(i). ", count: 30)
                .write(to: docs.appendingPathComponent("doc\(i).txt"), atomically: true, encoding: .utf8)
        }
        let spec = """
            seed: 5
            stages:
              base:
                kind: import
                params: {source: tiny, sha256: "\(try sha256 ?? ModelStore.contentDigest(of: tiny))"}
              text:
                kind: dataset
                inputs: {model: "${stages.base.model}"}
                params: {train: docs, validation_fraction: 0.34}
              before:
                kind: evaluate
                inputs: {model: "${stages.base.model}", data: "${stages.text.validation}"}
                params: {window: 32}
              tuned:
                kind: train
                inputs: {model: "${stages.base.model}", data: "${stages.text.train}"}
                params: {steps: 40, batch_size: 4, seq_len: 32, lr: 0.01, warmup: 0, lora_rank: "${rank}", lora_alpha: 8}
                sweep: {grid: {rank: [0, 4]}}
              after:
                kind: evaluate
                inputs: {model: "${stages.tuned.model}", data: "${stages.text.validation}"}
                params: {window: 32}
            """
        try spec.write(to: dir.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    /// The perplexity an evaluate node logged.
    func perplexity(_ id: String, in dir: URL) throws -> Double? {
        let log = try streamline(["logs", id], in: dir).stdout
        guard let line = log.split(separator: "\n").last(where: { $0.contains(" perplexity ") }),
              let word = line.split(separator: " ").drop(while: { $0 != "perplexity" }).dropFirst().first else { return nil }
        return Double(word)
    }

    @Test func trainingLowersHeldOutPerplexityAndReRunsAreCached() throws {
        let dir = try project()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try streamline(["run", "--threads", "1"], in: dir)
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        let before = try #require(try perplexity("before", in: dir))
        for id in ["after[rank=0]", "after[rank=4]"] {
            let after = try #require(try perplexity(id, in: dir), "\(id) logged no perplexity")
            #expect(after < 0.8 * before, "\(id): \(after) vs untrained \(before)")
        }
        let second = try streamline(["run", "--threads", "1"], in: dir)
        #expect(second.status == 0)
        #expect(second.stdout.contains("0 computed"), "\(second.stdout)")
    }

    @Test func importRefusesASourceWithAnotherDigest() throws {
        let dir = try project(sha256: String(repeating: "ab", count: 32))
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try streamline(["run", "base"], in: dir)
        #expect(result.status != 0)
        let log = try streamline(["logs", "base"], in: dir)
        let text = result.stdout + result.stderr + log.stdout + log.stderr
        #expect(text.contains("sha256") && text.contains("update the spec"), "\(text)")
    }
}
