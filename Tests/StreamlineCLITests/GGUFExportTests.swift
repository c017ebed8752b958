// `streamline export --format gguf`: store -> GGUF -> `streamline import` gives the same logits (F32 to
// 1e-5 relative, also for a pruned model whose norms keep the original divisor; F16 and Q8_0 within the
// stated tolerances); llama.cpp's own Python reader (`gguf`, installed by `make pyenv` into
// .build/pyenv) reads the file, finds the metadata we meant and tensors equal to the store's after the
// Q/K permutation and norm folding; models GGUF llama cannot express are refused.

import Foundation
import StageTestSupport
import Model
import Tensor
import Testing
@testable import Data

@Suite struct GGUFExportTests {
    /// Exports `store` through the CLI as `dtype`, re-imports the file through the CLI, returns the result.
    func roundTrip(_ store: ModelStore, dtype: String, in dir: URL) throws -> ModelStore {
        let original = dir.appendingPathComponent("model.h5"), gguf = dir.appendingPathComponent("model-\(dtype).gguf")
        let back = dir.appendingPathComponent("back-\(dtype).h5")
        try store.write(to: original)
        let exported = try streamline(["export", "--model", original.path, "--format", "gguf", "--dtype", dtype, "--out", gguf.path], in: dir)
        #expect(exported.status == 0, "\(exported.stderr)")
        let imported = try streamline(["import", gguf.path, "--out", back.path], in: dir)
        #expect(imported.status == 0, "\(imported.stderr)")
        return try ModelStore(store: back)
    }

    /// The tiny model with 8 of its 32 channels pruned; the norms keep dividing by 32.
    func prunedTiny(seed: UInt64, in dir: URL) throws -> ModelStore {
        let dense = try TinyModel.writeStore(to: dir.appendingPathComponent("seed.h5"), seed: seed)
        let channels = try ChannelSet(hiddenSize: dense.config.hiddenSize, pruned: Array(24..<32))
        let config = try prunedConfig(dense.config, channels: channels)
        let parameters = try pruneParameters(dense.parameters, config: dense.config, channels: channels)
        return ModelStore(config: config, parameters: parameters, tokenizer: dense.tokenizer)
    }

    @Test func denseAndPrunedModelsComeBackWithTheSameLogits() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dense = try TinyModel.writeStore(to: dir.appendingPathComponent("dense.h5"), seed: 3)
        #expect(try TinyModel.maxRelativeLogitDifference(dense, roundTrip(dense, dtype: "float32", in: dir)) < 1e-5)
        let pruned = try prunedTiny(seed: 5, in: dir)
        #expect(pruned.config.hiddenSize == 24 && pruned.config.normDivisor == 32)
        let back = try roundTrip(pruned, dtype: "float32", in: dir)
        // The importer reads key_length (8) rather than 24 / 4 heads, and the folded norms divide by 24.
        #expect(back.config.hiddenSize == 24 && back.config.headDim == 8 && back.config.normDivisor == 24)
        #expect(try TinyModel.maxRelativeLogitDifference(pruned, back) < 1e-5)
    }

    /// Measured on this seed: F16 2.2e-4, Q8_0 5.1e-3 of the largest logit; bounds with ~4x headroom.
    @Test func float16AndQ8_0StayWithinTheirTolerances() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dense = try TinyModel.writeStore(to: dir.appendingPathComponent("dense.h5"), seed: 7)
        #expect(try TinyModel.maxRelativeLogitDifference(dense, roundTrip(dense, dtype: "float16", in: dir)) < 1e-3)
        #expect(try TinyModel.maxRelativeLogitDifference(dense, roundTrip(dense, dtype: "q8_0", in: dir)) < 2e-2)
    }

    @Test func typesOfTheOtherFormatAndGPT2AreRefused() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = dir.appendingPathComponent("dense.h5")
        try TinyModel.writeStore(to: store)
        let wrong = try streamline(["export", "--model", store.path, "--format", "gguf", "--dtype", "bfloat16", "--out", "x.gguf"], in: dir)
        #expect(wrong.status != 0 && wrong.stderr.contains("use one of float32, float16, q8_0"), "\(wrong.stderr)")
        let gpt2 = Decoder.initialized(config: .gpt2(vocabSize: 300, hiddenSize: 32, layers: 1, heads: 4, maxPositions: 16), seed: 1)
        #expect(throws: DataError.notExportable(detail: "GGUF export writes the LLaMA family; this model is gpt2")) {
            try GGUFExport.encode(config: gpt2.config, parameters: gpt2.parameters, tokenizer: nil)
        }
    }

    /// Runs scripts/gguf_dump.py on `gguf` with the venv's Python; returns (metadata, tensor list, folder).
    func pythonRead(_ gguf: URL, in dir: URL) throws -> (metadata: [String: Any], tensors: [[String: Any]], folder: URL) {
        let out = dir.appendingPathComponent("dump-" + gguf.lastPathComponent)
        try runPyenvScript("gguf_dump.py", [gguf.path, out.path])
        let metadata = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metadata.json"))) as? [String: Any]
        let tensors = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("tensors.json"))) as? [[String: Any]]
        return (try #require(metadata), try #require(tensors), out)
    }

    @Test func pythonGGUFPackageReadsTheStoresMetadataAndTensors() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try prunedTiny(seed: 11, in: dir)
        let t = base.tokenizer
        let tokenizer = try BPETokenizer(tokens: t.tokens, merges: t.merges, preTokenizer: .gpt2, specialTokenIDs: t.specialTokenIDs,
                                         bosID: 66, eosID: t.eosID, unknownID: 67,
                                         conventions: TokenizerConventions(padID: t.eosID, addBOS: false, chatTemplate: ExportCommandTests.template),
                                         path: "tiny")
        let store = ModelStore(config: base.config, parameters: base.parameters, tokenizer: tokenizer)
        let url = dir.appendingPathComponent("pruned.gguf")
        try GGUFExport.write(config: store.config, parameters: store.parameters, tokenizer: tokenizer, to: url)
        let (metadata, tensors, folder) = try pythonRead(url, in: dir)

        let c = store.config
        let expected: [String: Any] = [
            "general.architecture": "llama", "llama.embedding_length": 24, "llama.block_count": 2,
            "llama.feed_forward_length": 64, "llama.attention.head_count": 4, "llama.attention.head_count_kv": 2,
            "llama.attention.key_length": 8, "llama.attention.value_length": 8, "llama.context_length": 128,
            "llama.vocab_size": tokenizer.vocabSize, "llama.rope.freq_base": Double(c.ropeTheta),
            // ε·D/d′ = ε·32/24, as float32.
            "llama.attention.layer_norm_rms_epsilon": Double(Float(Double(c.normEps) * 32 / 24)),
            "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt2", "tokenizer.ggml.bos_token_id": 66,
            "tokenizer.ggml.eos_token_id": t.eosID!, "tokenizer.ggml.padding_token_id": t.eosID!,
            "tokenizer.ggml.unknown_token_id": 67, "tokenizer.ggml.add_bos_token": false,
            "tokenizer.chat_template": ExportCommandTests.template,
        ]
        for (key, value) in expected {
            // Floats are float32 in the file; JSON parsing may round the last double bits differently.
            let same = value is Double ? (metadata[key] as? NSNumber).map { Float($0.doubleValue) } == (value as? Double).map(Float.init)
                : (metadata[key] as? NSObject) == (value as? NSObject)
            #expect(same, "\(key): \(metadata[key] ?? "absent") != \(value)")
        }
        #expect(metadata["tokenizer.ggml.tokens"] as? [String] == tokenizer.tokens)
        #expect(metadata["tokenizer.ggml.merges"] as? [String] == tokenizer.merges)
        let types = try #require(metadata["tokenizer.ggml.token_type"] as? [Int])
        #expect(types.enumerated().filter { $0.element == 3 }.map(\.offset) == tokenizer.specialTokenIDs)

        // Every tensor, in parameter order under llama.cpp's name, equals the store's: Q/K rows
        // permuted per head, norm scales × sqrt(32/24), both as the export documents.
        #expect(tensors.map { $0["name"] as? String } == c.parameterSpecs.map { GGUFImport.ggufName($0.name) })
        let factor = Float((32.0 / 24.0).squareRoot())
        for (info, spec) in zip(tensors, c.parameterSpecs) {
            let name = try #require(info["name"] as? String)
            #expect(info["type"] as? String == "F32" && info["shape"] as? [Int] == spec.shape, "\(name): \(info)")
            let bytes = try Data(contentsOf: folder.appendingPathComponent(name + ".f32"))
            let read = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let value = store.parameters.value(spec.name).copy()
            if spec.name.hasSuffix("/scale") { for i in 0..<value.count { value.data[i] *= factor } }
            if let layer = GGUFExport.rotaryLayer(spec.name) {
                let heads = spec.name.hasSuffix("wq") ? c.layers[layer].heads : c.layers[layer].kvHeads
                GGUFExport.permuteRotary(value, heads: heads, headDim: c.headDim)
            }
            #expect(read == value.array, "\(name) differs")
        }
    }

    /// Q8_0 as llama.cpp's reader dequantises it: within half a quantisation step of each weight.
    @Test func pythonGGUFPackageDequantisesOurQ8_0() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try TinyModel.writeStore(to: dir.appendingPathComponent("dense.h5"), seed: 13)
        let url = dir.appendingPathComponent("dense-q8.gguf")
        try GGUFExport.write(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer, dtype: .q8_0, to: url)
        let (metadata, tensors, folder) = try pythonRead(url, in: dir)
        #expect(metadata["general.file_type"] as? Int == 7 && metadata["llama.attention.key_length"] == nil)
        let wv = try #require(tensors.first { $0["name"] as? String == "blk.1.attn_v.weight" })
        #expect(wv["type"] as? String == "Q8_0")
        #expect(tensors.first { $0["name"] as? String == "output_norm.weight" }?["type"] as? String == "F32")
        let bytes = try Data(contentsOf: folder.appendingPathComponent("blk.1.attn_v.weight.f32"))
        let read = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let value = store.parameters.value("layers/1/attn/wv").array
        for start in stride(from: 0, to: value.count, by: 32) {
            let block = value[start..<start + 32], step = block.map(abs).max()! / 127
            // Half a step, plus the float16 rounding of the scale (2^-11 relative) over up to 127 steps.
            let bound = step * (0.5 + 127 * 0x1p-11) + 1e-7
            #expect(zip(block, read[start..<start + 32]).allSatisfy { abs($0 - $1) <= bound }, "block at \(start)")
        }
    }
}
