// A consumer other than Streamline reads `streamline export --format hf`: scripts/reference/hf_forward.py
// (safetensors + tokenizers + a numpy float64 LLaMA forward, no Streamline code) reproduces the logits of
// a dense and a pruned export and the token ids of texts with special tokens, SmolLM2's own included.

import Data
import Foundation
import StageTestSupport
import Model
import Tensor
import Testing

@Suite struct HFConsumerTests {
    /// Asks hf_forward.py for `request` on `folder`; returns its JSON answer.
    func consume(_ folder: URL, _ request: [String: Any], in dir: URL) throws -> [String: Any] {
        let requestURL = dir.appendingPathComponent("request-\(UUID().uuidString).json")
        let out = dir.appendingPathComponent("answer-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: request).write(to: requestURL)
        try runPyenvScript("reference/hf_forward.py", [folder.path, requestURL.path, out.path])
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
    }

    /// max |Streamline − numpy| over the logits of 24 tokens, relative to the largest |logit|.
    func logitGap(_ store: ModelStore, dtype: String, in dir: URL) throws -> Double {
        let source = dir.appendingPathComponent("m-\(dtype).h5"), folder = dir.appendingPathComponent("hf-\(dtype)")
        try store.write(to: source)
        let exported = try streamline(["export", "--model", source.path, "--format", "hf", "--dtype", dtype, "--out", folder.path], in: dir)
        try #require(exported.status == 0, "\(exported.stderr)")
        let tokens = Array(store.tokenizer.encode(TinyModel.text).prefix(24))
        let ours = try store.decoder().logits(tokens: tokens, B: 1, T: tokens.count).array
        let answer = try consume(folder, ["tokens": tokens.map(Int.init)], in: dir)
        let theirs = try #require(answer["logits"] as? [[Double]]).flatMap { $0 }
        try #require(theirs.count == ours.count, "numpy gave \(theirs.count) logits, Streamline \(ours.count)")
        let scale = Double(ours.map(abs).max()!)
        return zip(ours, theirs).map { abs(Double($0) - $1) }.max()! / scale
    }

    @Test func numpyReproducesTheLogitsOfADenseAndAPrunedExport() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dense = try TinyModel.writeStore(to: dir.appendingPathComponent("dense.h5"), seed: 13)
        #expect(try logitGap(dense, dtype: "float32", in: dir) < 1e-4)
        // 8 of 32 channels pruned, norms still dividing by 32: the export folds the divisor into the
        // scales and ε, which the consumer must not need to know about.
        let pruned = try GGUFExportTests().prunedTiny(seed: 17, in: dir)
        #expect(pruned.config.normDivisor == 32 && pruned.config.hiddenSize == 24)
        #expect(try logitGap(pruned, dtype: "float32", in: dir) < 1e-4)
        // float16 weights as stored (numpy reads F16 natively): only the rounding of the weights is lost.
        // Measured on these seeds: float32 1.6e-7 and 1.7e-7, float16 1.9e-4.
        #expect(try logitGap(dense, dtype: "float16", in: dir) < 1e-3)
    }

    @Test func tokenizersPackageEncodesLikeStreamlineWithSpecialTokens() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The tiny model: its <eos> inside the text is one special token for both.
        let tiny = try TinyModel.writeStore(to: dir.appendingPathComponent("tiny.h5"), seed: 2)
        let tinyFolder = dir.appendingPathComponent("tiny-hf")
        try HFExport.write(config: tiny.config, parameters: tiny.parameters, tokenizer: tiny.tokenizer, to: tinyFolder)
        let tinyText = "the cat<eos> sat in the hat<eos>\n  and ate 12 buns. "
        let tinyIDs = tiny.tokenizer.encode(tinyText, parseSpecial: true).map(Int.init)
        #expect(tinyIDs.contains(tiny.tokenizer.eosID!))
        #expect(try consume(tinyFolder, ["text": tinyText, "encode_only": true], in: dir)["ids"] as? [Int] == tinyIDs)

        // SmolLM2-135M-Instruct's own tokenizer (from the GGUF `make models` fetches): a chat turn.
        let gguf = repositoryRoot.appendingPathComponent("models/smollm2/SmolLM2-135M-Instruct-Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: gguf.path) else {
            Issue.record("\(gguf.path) is missing: run make models")
            return
        }
        let tokenizer = try #require(try GGUFImport.load(url: gguf).tokenizer)
        let folder = dir.appendingPathComponent("smollm2-tokenizer")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try tokenizer.tokenizerJSON().write(to: folder.appendingPathComponent("tokenizer.json"))
        let chat = "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 1234 + 5678? Naïve café ✓<|im_end|>\n"
        let ids = tokenizer.encode(chat, parseSpecial: true).map(Int.init)
        #expect(ids.first == tokenizer.id(of: "<|im_start|>"))
        #expect(try consume(folder, ["text": chat, "encode_only": true], in: dir)["ids"] as? [Int] == ids)
    }
}
