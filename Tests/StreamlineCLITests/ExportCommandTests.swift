// `streamline export --format hf` round trip: store -> HF folder -> `streamline import` gives a model
// with the same config and the same logits, also for a pruned model whose norms keep the original
// width as divisor (the export folds it into the scales and ε). The tokenizer files carry the source's
// special tokens and chat template (also from a GGUF), and bfloat16/float16 weights round to nearest even.

import Data
import Foundation
import StageTestSupport
import Model
import Tensor
import Testing

@Suite struct ExportCommandTests {
    /// Exports `store`, re-imports the folder through the CLI, and returns the re-imported store.
    func roundTrip(_ store: ModelStore, in dir: URL) throws -> ModelStore {
        let original = dir.appendingPathComponent("model.h5"), folder = dir.appendingPathComponent("hf")
        let back = dir.appendingPathComponent("back.h5")
        try store.write(to: original)
        let exported = try streamline(["export", "--model", original.path, "--format", "hf", "--out", folder.path], in: dir)
        #expect(exported.status == 0, "\(exported.stderr)")
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "missing \(file)")
        }
        let imported = try streamline(["import", folder.path, "--out", back.path], in: dir)
        #expect(imported.status == 0, "\(imported.stderr)")
        return try ModelStore(store: back)
    }

    @Test func denseModelComesBackWithTheSameLogits() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try TinyModel.writeStore(to: dir.appendingPathComponent("seed.h5"), seed: 3)
        let back = try roundTrip(store, in: dir)
        #expect(back.config.hiddenSize == store.config.hiddenSize)
        #expect(try TinyModel.maxRelativeLogitDifference(store, back) < 1e-6)
    }

    @Test func prunedModelComesBackWithTheSameLogits() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dense = try TinyModel.writeStore(to: dir.appendingPathComponent("seed.h5"), seed: 5)
        let channels = try ChannelSet(hiddenSize: dense.config.hiddenSize, pruned: Array(24..<32))
        let config = try prunedConfig(dense.config, channels: channels)
        let parameters = try pruneParameters(dense.parameters, config: dense.config, channels: channels)
        #expect(config.hiddenSize == 24 && config.normDivisor == 32)
        let pruned = ModelStore(config: config, parameters: parameters, tokenizer: dense.tokenizer)
        let back = try roundTrip(pruned, in: dir)
        #expect(back.config.hiddenSize == 24)
        // Exact in real arithmetic (scale·sqrt(D/d'), ε·D/d'); float rounding only.
        #expect(try TinyModel.maxRelativeLogitDifference(pruned, back) < 1e-5)
    }

    /// A chat template in the Jinja form sources carry.
    static let template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"

    func json(_ folder: HFFolder, _ name: String) throws -> [String: Any] {
        let bytes = try #require(folder.document(name), "no \(name)")
        return try #require(JSONSerialization.jsonObject(with: bytes) as? [String: Any])
    }

    @Test func tokenizerFilesCarryTheSourcesSpecialTokensAndComeBackThroughImport() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try TinyModel.tokenizer()
        let eos = base.eosID!
        let tokenizer = try BPETokenizer(tokens: base.tokens, merges: base.merges, preTokenizer: .gpt2, specialTokenIDs: [eos],
                                         bosID: 66, eosID: eos, unknownID: 67,
                                         conventions: TokenizerConventions(padID: eos, addBOS: false, chatTemplate: Self.template),
                                         path: "tiny")
        let decoder = Decoder.initialized(config: TinyModel.config(vocabSize: tokenizer.vocabSize), seed: 2)
        let folder = try HFExport.folder(config: decoder.config, parameters: decoder.parameters, tokenizer: tokenizer)
        #expect(folder.notes.isEmpty, "\(folder.notes)")
        let settings = try json(folder, "tokenizer_config.json")
        #expect(settings["bos_token"] as? String == "B" && settings["unk_token"] as? String == "C")
        #expect(settings["eos_token"] as? String == "<eos>" && settings["pad_token"] as? String == "<eos>")
        #expect(settings["add_bos_token"] as? Bool == false && settings["chat_template"] as? String == Self.template)
        #expect(settings["model_max_length"] as? Int == decoder.config.maxPositions)
        #expect(settings["tokenizer_class"] as? String == "PreTrainedTokenizerFast")
        let map = try json(folder, "special_tokens_map.json")
        #expect(map as NSDictionary == ["bos_token": "B", "eos_token": "<eos>", "pad_token": "<eos>", "unk_token": "C"] as NSDictionary)
        let generation = try json(folder, "generation_config.json")
        #expect(generation as NSDictionary == ["bos_token_id": 66, "eos_token_id": eos, "pad_token_id": eos] as NSDictionary)
        let config = try json(folder, "config.json")
        #expect(config["pad_token_id"] as? Int == eos && config["dtype"] as? String == "float32" && config["torch_dtype"] as? String == "float32")

        try folder.write(to: dir.appendingPathComponent("hf"))
        let back = try #require(try HFImport.load(folder: dir.appendingPathComponent("hf")).tokenizer)
        #expect(back.conventions == tokenizer.conventions && back.bosID == 66 && back.unknownID == 67 && back.digest == tokenizer.digest)
        // The conventions survive a model store too.
        let store = dir.appendingPathComponent("m.h5")
        try ModelStore(config: decoder.config, parameters: decoder.parameters, tokenizer: back).write(to: store)
        #expect(try ModelStore(store: store).tokenizer.conventions == tokenizer.conventions)
    }

    @Test func aStoreWithoutConventionsExportsWhatItCanAndSaysSo() throws {
        let store = try TinyModel.writeStore(to: try temporaryFolder().appendingPathComponent("m.h5"))
        let folder = try HFExport.folder(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer)
        let settings = try json(folder, "tokenizer_config.json")
        #expect(settings["bos_token"] == nil && settings["pad_token"] == nil && settings["chat_template"] == nil)
        #expect(settings["eos_token"] as? String == "<eos>" && settings["add_bos_token"] as? Bool == false)
        #expect(folder.notes.contains { $0.contains("chat template") } && folder.notes.contains { $0.contains("re-import") })
    }

    @Test func aGGUFChatTemplateAndPaddingTokenReachTheExport() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try MalformedModelCorpus.gguf { metadata, _ in
            metadata += [("tokenizer.chat_template", .string(Self.template)), ("tokenizer.ggml.padding_token_id", .u32(1)),
                         ("tokenizer.ggml.eos_token_id", .u32(1))]
        }(dir)
        let imported = try GGUFImport.load(url: url)
        let tokenizer = try #require(imported.tokenizer)
        #expect(tokenizer.conventions == TokenizerConventions(padID: 1, chatTemplate: Self.template))
        let folder = try HFExport.folder(config: imported.config, parameters: imported.parameters, tokenizer: tokenizer)
        let settings = try json(folder, "tokenizer_config.json")
        #expect(settings["chat_template"] as? String == Self.template && settings["pad_token"] as? String == "\"")
        #expect(try json(folder, "generation_config.json") as NSDictionary == ["bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1] as NSDictionary)
    }

    @Test func halfPrecisionWeightsRoundToNearestEven() throws {
        func bf16(_ bits: UInt32) -> UInt16 { SafetensorsFloat.bfloat16Bits(Float(bitPattern: bits)) }
        #expect(bf16(0x3F80_0000) == 0x3F80)  // 1.0 exactly
        #expect(bf16(0x3F80_8000) == 0x3F80)  // tie, even kept part: down
        #expect(bf16(0x3F81_8000) == 0x3F82)  // tie, odd kept part: up
        #expect(bf16(0x3F80_8001) == 0x3F81)  // above the midpoint: up
        #expect(bf16(0x3F80_7FFF) == 0x3F80)  // below it: down
        #expect(bf16(0xBF81_8000) == 0xBF82)  // the sign does not change the rounding
        #expect(bf16(0x7F7F_FFFF) == 0x7F80)  // float32's largest rounds past bfloat16's
        let values: [Float] = [1, 1 + 0x1p-11, 1 + 3 * 0x1p-11, -2.5, 65504, 0x1p-24]
        let t = Tensor(zeros: [values.count])
        for (i, v) in values.enumerated() { t.data[i] = v }
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        for dtype in SafetensorsFloat.allCases {
            let url = dir.appendingPathComponent("\(dtype).safetensors")
            try SafetensorsFile.write([("w", t)], dtype: dtype, to: url)
            let file = try SafetensorsFile(url: url)
            #expect(file.tensors["w"]?.dtype == dtype.code)
            let back = try file.tensor("w").array
            switch dtype {
            case .float32: #expect(back == values)
            // 1 + 2^-11 is halfway between two float16 values: ties to the even one, 1.
            case .float16: #expect(back == [1, 1, 1 + 0x1p-9, -2.5, 65504, 0x1p-24])
            case .bfloat16: #expect(back == [1, 1, 1, -2.5, 65536, 0x1p-24])
            }
        }
        t.data[0] = 70_000
        #expect { try SafetensorsFile.encode([("w", t)], dtype: .float16) } throws: { "\($0)".contains("export as float32 or bfloat16") }
    }

    @Test func dtypeOptionWritesBFloat16AndSaysSoInConfig() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m.h5"), out = dir.appendingPathComponent("hf")
        try TinyModel.writeStore(to: model)
        let result = try streamline(["export", "--model", model.path, "--dtype", "bfloat16", "--out", out.path], in: dir)
        #expect(result.status == 0 && result.stdout.contains("tokenizer_config.json") && result.stdout.contains("note"), "\(result.stdout)\n\(result.stderr)")
        let config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(config["torch_dtype"] as? String == "bfloat16" && config["dtype"] as? String == "bfloat16")
        let weights = try SafetensorsFile(url: out.appendingPathComponent("model.safetensors"))
        #expect(weights.tensors.values.allSatisfy { $0.dtype == "BF16" })
    }
}
