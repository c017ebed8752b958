// Issue 11, item 8: a stage never publishes non-finite weights or metrics. A model whose weights are
// finite but overflow in the forward pass (×1e12, as a diverged regularize run left them at 4.5e5)
// is imported; regularize, finetune and evaluate on it each fail with a typed error naming the stage,
// the step, the value and what to change, and nothing downstream of them is published.

import Data
import Foundation
import StageTestSupport
import Testing

@Suite struct DivergenceTests {
    /// A project whose `base` is the corpus's tiny model with every weight × 1e12, and a text of it.
    static func overflowingProject(_ stages: String) throws -> URL {
        let dir = try temporaryProject(["corpus.txt": String(repeating: "the red cat sees the small dog. ", count: 60),
                                        "pipeline.yaml": """
            stages:
              base: {kind: import, params: {source: hf}}
              text:
                kind: dataset
                inputs: {model: "${stages.base.model}"}
                params: {train: corpus.txt, validation: corpus.txt}
            \(stages)
            """])
        let parameters = MalformedModelCorpus.parameters()
        for i in 0..<parameters.values.count { parameters.values.data[i] *= 1e12 }
        try HFExport.write(config: MalformedModelCorpus.config, parameters: parameters, tokenizer: try MalformedModelCorpus.tokenizer(),
                           to: dir.appendingPathComponent("hf"))
        return dir
    }

    static let training = "steps: 3, lr: 1, warmup: 0, batch_size: 1, seq_len: 16"

    @Test func trainingStagesStopAtTheFirstNonFiniteLossAndSayWhatToLower() throws {
        let dir = try Self.overflowingProject("""
              regularize:
                kind: regularize
                inputs: {model: "${stages.base.model}", data: "${stages.text.train}"}
                params: {ratio: 0.25, heldout_fraction: 0.2, \(Self.training)}
              finetune:
                kind: finetune
                inputs: {model: "${stages.base.model}", data: "${stages.text.train}"}
                params: {lora_rank: 2, \(Self.training)}
              train:
                kind: train
                inputs: {model: "${stages.base.model}", data: "${stages.text.train}"}
                params: {\(Self.training)}
              prune:
                kind: prune
                inputs: {model: "${stages.regularize.model}", channels: "${stages.regularize.channels}"}

            """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try streamline(["run", "--keep-going"], in: dir)
        #expect(result.status == 1)
        let failed = result.stdout.split(separator: "\n").filter { $0.hasPrefix("FAILED") }.map(String.init)
        func line(_ id: String) -> String { failed.first { $0.hasPrefix("FAILED   \(id): ") } ?? "" }
        #expect(line("regularize").contains("Stage regularize diverged: before the first update the held-out loss is ") && line("regularize").contains("nan, so nothing was published"),
                "\(result.stdout)")
        #expect(line("regularize").contains("Lower lr (now 1.0) or lambda (now 0.0084)"))
        #expect(line("finetune").contains("Stage finetune diverged: at update 1 the training loss is"), "\(result.stdout)")
        #expect(line("finetune").contains("Lower lr (now 1.0) or lora_alpha (now 10.0)"))
        #expect(line("train").contains("Stage train diverged: at update 1 the training loss is"), "\(result.stdout)")
        #expect(result.stdout.contains("skipped  prune (needs regularize, which failed)"))
        // Only the import and the dataset were published.
        #expect(try streamline(["cache", "ls"], in: dir).stdout.split(separator: "\n").count == 2)
    }

    @Test func evaluatingAnOverflowingModelSaysSoInsteadOfFailingToEncodeInfinity() throws {
        let dir = try Self.overflowingProject("""
              evaluate:
                kind: evaluate
                inputs: {model: "${stages.base.model}", data: "${stages.text.validation}"}
                params: {window: 16, max_tokens: 64}

            """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try streamline(["run"], in: dir)
        #expect(result.status == 1)
        #expect(result.stdout.contains("input 'model' gives a non-finite loss"), "\(result.stdout)")
        #expect(!result.stdout.contains("EncodingError"))
    }
}
