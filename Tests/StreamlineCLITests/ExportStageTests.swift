// The `export` stage kind through `streamline run`: a tiny pipeline imports a model, prunes a quarter
// of its hidden channels, evaluates it against the dense model and exports it. The folder at
// `destination` loads back (HFImport) to the pruned store's logits and is byte-identical to what
// `streamline export --format hf` writes; a second run is a cache hit that restores a deleted or
// edited folder and leaves a correct one alone. The export store's digest is deterministic.

import Data
import Foundation
import StageTestSupport
import Model
import Pipeline
import Stages
import Testing
import TensorStore

@Suite struct ExportStageTests {
    /// A project: the tiny model as an HF folder `tiny/`, text files in `docs/`, and the spec.
    func project() throws -> URL {
        let dir = try temporaryFolder()
        let tokenizer = try TinyModel.tokenizer()
        let decoder = Decoder.initialized(config: TinyModel.config(vocabSize: tokenizer.vocabSize), seed: 4)
        let tiny = dir.appendingPathComponent("tiny")
        try HFExport.write(config: decoder.config, parameters: decoder.parameters, tokenizer: tokenizer, to: tiny)
        let docs = dir.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        for i in 0..<3 { try TinyModel.text.write(to: docs.appendingPathComponent("d\(i).txt"), atomically: true, encoding: .utf8) }
        let spec = """
            stages:
              base: {kind: import, params: {source: tiny, sha256: "\(try ModelStore.contentDigest(of: tiny))"}}
              text: {kind: dataset, inputs: {model: "${stages.base.model}"}, params: {train: docs, validation_fraction: 0.34}}
              select: {kind: select, inputs: {model: "${stages.base.model}"}, params: {ratio: 0.25, selection: last}}
              prune: {kind: prune, inputs: {model: "${stages.base.model}", channels: "${stages.select.channels}"}}
              speed:
                kind: evaluate
                inputs: {model: "${stages.prune.model}", data: "${stages.text.validation}", dense: "${stages.base.model}"}
                params: {window: 32, prefill_tokens: 32, decode_batch: 2, decode_tokens: 4}
              hf: {kind: export, inputs: {model: "${stages.prune.model}"}, params: {destination: exported/pruned}}
            """
        try spec.write(to: dir.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    /// The cached store of `output` of `node`.
    func cachedStore(_ node: String, _ output: String, in dir: URL) throws -> URL {
        let spec = try Spec.load(url: dir.appendingPathComponent("pipeline.yaml"), registry: StageCatalog.registry)
        let cache = Cache(root: dir.appendingPathComponent(".streamline-cache"))
        let plan = try Planner.plan(spec, registry: StageCatalog.registry) { cache.record($0)?.outputs }
        return cache.outputURL(try plan.requireNode(node).fingerprint, output)
    }

    @Test func runWritesAFolderThatLoadsBackToThePrunedLogitsAndKeepsItCurrent() throws {
        let dir = try project()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try streamline(["run", "--threads", "1"], in: dir)
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        let folder = dir.appendingPathComponent("exported/pruned")
        #expect(first.stdout.contains("export   hf -> \(folder.path) (wrote config.json, generation_config.json, model.safetensors, special_tokens_map.json, tokenizer.json, tokenizer_config.json, README.md)"), "\(first.stdout)")

        // The model card: what the model is, the stages behind it, its evaluation, the spec.
        let card = try String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(card.hasPrefix("---\nlibrary_name: transformers\n"), "\(card)")
        #expect(card.contains("\n# pruned\n"), "named as its folder, exported/pruned: \(card)")
        #expect(card.contains("| widths | hidden 24 (of 32), 2 layers, query/KV heads 4/2 of 8, FFN 64, vocabulary \(try TinyModel.tokenizer().vocabSize) |"), "\(card)")
        #expect(card.contains("1. `import` (`base`): source=tiny, sha256=") && card.contains("2. `prune` (`prune`); channels from `select`"), "\(card)")
        #expect(card.contains("| `speed` | `text.validation` |"), "\(card)")
        #expect(card.contains("```yaml\nstages:\n  base: {kind: import"), "\(card)")

        // The folder computes what the pruned store computes.
        let pruned = try ModelStore(store: try cachedStore("prune", "model", in: dir))
        let imported = try HFImport.load(folder: folder)
        #expect(imported.config.hiddenSize == 24 && imported.tokenizer?.digest == pruned.tokenizer.digest)
        let tokens = Array(pruned.tokenizer.encode(TinyModel.text).prefix(40))
        let expected = try pruned.decoder().logits(tokens: tokens, B: 1, T: tokens.count)
        let got = try Decoder(config: imported.config, parameters: imported.parameters).logits(tokens: tokens, B: 1, T: tokens.count)
        var worst: Float = 0, largest: Float = 0
        for i in 0..<expected.count {
            worst = max(worst, abs(got.data[i] - expected.data[i]))
            largest = max(largest, abs(expected.data[i]))
        }
        #expect(worst <= 1e-5 * largest, "largest logit difference \(worst) of \(largest)")

        // The same bytes as the export command.
        let byCommand = dir.appendingPathComponent("by-command")
        let command = try streamline(["export", "--model", try cachedStore("prune", "model", in: dir).path, "--out", byCommand.path], in: dir)
        #expect(command.status == 0, "\(command.stderr)")
        // By hand there is no pipeline: the card says what the store is and the command that made it.
        let handCard = try String(contentsOf: byCommand.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(handCard.contains("Made by: `") && handCard.contains(" stage prune ") && !handCard.contains("## How it was made"), "\(handCard)")
        for name in ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
                     "tokenizer_config.json"] {
            #expect(FileManager.default.contents(atPath: folder.appendingPathComponent(name).path)
                    == FileManager.default.contents(atPath: byCommand.appendingPathComponent(name).path), "\(name) differs")
        }

        // The evaluate stage logged its speed against the dense model.
        let log = try streamline(["logs", "speed"], in: dir).stdout
        #expect(log.contains("speed: prefill 32 tokens") && log.contains("faster)"), "\(log)")

        // Cache hits: a correct folder is left alone, a deleted file and an edited one are written again.
        let again = try streamline(["run", "--threads", "1"], in: dir)
        #expect(again.status == 0 && again.stdout.contains("0 computed"), "\(again.stdout)")
        #expect(again.stdout.contains("export   hf -> \(folder.path) (up to date)"), "\(again.stdout)")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("model.safetensors"))
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        let restored = try streamline(["run", "--threads", "1"], in: dir)
        #expect(restored.stdout.contains("0 computed") && restored.stdout.contains("(wrote config.json, model.safetensors)"),
                "\(restored.stdout)")
        #expect(FileManager.default.contents(atPath: folder.appendingPathComponent("config.json").path)
                == FileManager.default.contents(atPath: byCommand.appendingPathComponent("config.json").path))
    }

    @Test func theExportStoreIsDeterministicAndAGPT2ModelIsRefused() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m.h5")
        try TinyModel.writeStore(to: model)
        let a = try runKind(ExportStage(), inputs: ["model": model], in: dir)["folder"]!
        let b = try runKind(ExportStage(), inputs: ["model": model], in: dir)["folder"]!
        #expect(try TensorStoreReader(url: a).digest == TensorStoreReader(url: b).digest)
        let folder = try HFFolderStore.read(a)
        let store = try ModelStore(store: model)
        let direct = try HFExport.folder(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer)
        #expect(try folder.files().map(\.bytes) == direct.files().map(\.bytes))

        let tokenizer = try TinyModel.tokenizer()
        let gpt2 = Decoder.initialized(config: .gpt2(vocabSize: tokenizer.vocabSize, hiddenSize: 16, layers: 1, heads: 2), seed: 1)
        let gpt2URL = dir.appendingPathComponent("gpt2.h5")
        try ModelStore(config: gpt2.config, parameters: gpt2.parameters, tokenizer: tokenizer).write(to: gpt2URL)
        #expect {
            try runKind(ExportStage(), inputs: ["model": gpt2URL], in: dir)
        } throws: { "\($0)".contains("input 'model' cannot be exported") }
    }

    /// format: gguf stores model.gguf byte-identical to `streamline export --format gguf`, materialised
    /// at `destination`; a dtype of the other format is refused with what to change.
    @Test func ggufFormatStoresTheCommandsFileAndRefusesAnHFType() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m.h5")
        try TinyModel.writeStore(to: model)
        let out = try runKind(ExportStage(), params: ["format": .string("gguf"), "dtype": .string("q8_0")],
                                                 inputs: ["model": model], in: dir)["folder"]!
        let folder = try HFFolderStore.read(out)
        #expect(folder.tensors.isEmpty && folder.documents.map(\.name) == ["model.gguf"])
        let byCommand = dir.appendingPathComponent("by-command.gguf")
        let command = try streamline(["export", "--model", model.path, "--format", "gguf", "--dtype", "q8_0", "--out", byCommand.path], in: dir)
        #expect(command.status == 0, "\(command.stderr)")
        #expect(folder.document("model.gguf") == FileManager.default.contents(atPath: byCommand.path))
        let written = dir.appendingPathComponent("written")
        #expect(try folder.write(to: written) == ["model.gguf"])
        #expect(try GGUFImport.load(url: written.appendingPathComponent("model.gguf")).config.hiddenSize == 32)
        #expect {
            try runKind(ExportStage(), params: ["format": .string("gguf"), "dtype": .string("bfloat16")],
                                           inputs: ["model": model], in: dir)
        } throws: { "\($0)".contains("gguf takes float32, float16 or q8_0, not bfloat16") }
    }

    @Test func twoExportsCannotShareADestination() throws {
        // Refused when planning (so `validate` says it, with both places), not after the run.
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = try Spec.parse(yaml: """
            stages:
              tiny: {kind: debug/tiny-lm, params: {train_steps: 0, sentences: 10}}
              a: {kind: export, inputs: {model: "${stages.tiny.model}"}, params: {destination: out}}
              b: {kind: export, inputs: {model: "${stages.tiny.model}"}, params: {destination: ./out/../out/}}
            """, file: "p.yaml", baseDirectory: dir, registry: StageCatalog.registry)
        let folder = dir.appendingPathComponent("out").standardizedFileURL.path
        #expect {
            try Planner.plan(spec, registry: StageCatalog.registry)
        } throws: {
            $0 as? PipelineError == .sameDestination(at: SourceLocation(file: "p.yaml", line: 4, column: 84), keyPath: "stages.b.params.destination",
                                                     node: "b", path: folder, other: "a", otherAt: SourceLocation(file: "p.yaml", line: 3, column: 84))
        }
        // Members of one swept stage clash with each other unless a sweep variable tells them apart.
        let swept = """
            stages:
              tiny: {kind: debug/tiny-lm, params: {train_steps: 0, sentences: "${s}"}, sweep: {grid: {s: [10, 11]}}}
              hf: {kind: export, inputs: {model: "${stages.tiny.model}"}, params: {destination: out}}
            """
        #expect {
            try Planner.plan(try Spec.parse(yaml: swept, file: "p.yaml", baseDirectory: dir, registry: StageCatalog.registry),
                             registry: StageCatalog.registry)
        } throws: { "\($0)".contains("of hf[s=11] names \(folder), which hf[s=10] (p.yaml:3:") }
        let apart = swept.replacingOccurrences(of: "destination: out", with: "destination: \"out/${s}\"")
        _ = try Planner.plan(try Spec.parse(yaml: apart, file: "p.yaml", baseDirectory: dir, registry: StageCatalog.registry),
                             registry: StageCatalog.registry)
    }
}
