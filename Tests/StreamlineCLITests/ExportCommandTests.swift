// `streamline export --format hf` round trip: store -> HF folder -> `streamline import` gives a model
// with the same config and the same logits, also for a pruned model whose norms keep the original
// width as divisor (the export folds it into the scales and ε).

import Data
import Foundation
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

    func maxRelativeLogitDifference(_ a: ModelStore, _ b: ModelStore) throws -> Float {
        let tokens = Array(a.tokenizer.encode(TinyModel.text).prefix(24))
        let la = try a.decoder().logits(tokens: tokens, B: 1, T: tokens.count).array
        let lb = try b.decoder().logits(tokens: tokens, B: 1, T: tokens.count).array
        let scale = la.map(abs).max() ?? 1
        return zip(la, lb).map { abs($0 - $1) }.max()! / scale
    }

    @Test func denseModelComesBackWithTheSameLogits() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try TinyModel.writeStore(to: dir.appendingPathComponent("seed.h5"), seed: 3)
        let back = try roundTrip(store, in: dir)
        #expect(back.config.hiddenSize == store.config.hiddenSize)
        #expect(try maxRelativeLogitDifference(store, back) < 1e-6)
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
        #expect(try maxRelativeLogitDifference(pruned, back) < 1e-5)
    }
}
