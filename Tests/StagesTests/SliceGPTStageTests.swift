// The slicegpt stage on a tiny self-trained LLaMA: at ratio 0 the stored model keeps the held-out loss
// (same function in new bases, shortcut matrices stored and read back); at 0.25 it is 24 wide, the
// same spec gives the same bytes, fine-tuning (LoRA and full) trains it and keeps its matrices, and
// channel selection refuses it.

import Foundation
import StageTestSupport
import Testing
import Data
import Model
import Pipeline
import Stages
import TensorStore

@Suite struct SliceGPTStageTests {
    static func slice(_ tiny: [String: URL], ratio: Double, in dir: URL) throws -> URL {
        let params: [String: ParamValue] = ["ratio": .double(ratio), "calibration_windows": .int(4), "calibration_len": .int(16)]
        return try runKind(SliceGPTStage(), params: params, inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)["model"]!
    }

    @Test func ratioZeroKeepsTheLoss() throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let dense = try ModelStore(store: tiny["model"]!), sliced = try ModelStore(store: try Self.slice(tiny, ratio: 0, in: dir))
        #expect(sliced.config.hasShortcuts && sliced.config.hiddenSize == dense.config.hiddenSize && !sliced.config.tiedEmbeddings)
        #expect(sliced.parameters.contains("layers/0/attn/shortcut") && sliced.parameters.contains("layers/1/mlp/shortcut"))
        let heldout = try TokenDataset(store: tiny["heldout"]!)
        let denseLoss = try heldOutLoss(dense, data: heldout), slicedLoss = try heldOutLoss(sliced, data: heldout)
        #expect(abs(denseLoss - slicedLoss) <= 1e-4 * denseLoss, "\(denseLoss) vs \(slicedLoss)")
        #expect(sliced.source["sliced"]?.contains("width 32 of 32, 4x16 tokens") == true, "\(sliced.source)")
    }

    @Test func aQuarterSlicedIsDeterministicTrainableAndRefusesSelection() throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let first = try Self.slice(tiny, ratio: 0.25, in: dir), second = try Self.slice(tiny, ratio: 0.25, in: dir)
        #expect(try TensorStoreReader.digest(ofStoreAt: first) == (try TensorStoreReader.digest(ofStoreAt: second)))
        let sliced = try ModelStore(store: first)
        #expect(sliced.config.hiddenSize == 24 && sliced.config.normDivisor == 32)
        let heldout = try TokenDataset(store: tiny["heldout"]!)
        let slicedLoss = try heldOutLoss(sliced, data: heldout)
        #expect(slicedLoss.isFinite)
        for rank in [4, 0] {
            let params: [String: ParamValue] = ["steps": .int(3), "seq_len": .int(16), "lora_rank": .int(rank), "lr": .double(1e-3), "loss": .string("lm")]
            let out = try runKind(FinetuneStage(), params: params, inputs: ["model": first, "data": tiny["data"]!], in: dir)
            let finetuned = try ModelStore(store: out["model"]!)
            #expect(finetuned.config == sliced.config, "rank \(rank)")
            let shortcut = "layers/0/mlp/shortcut"
            let moved = finetuned.parameters.value(shortcut).array != sliced.parameters.value(shortcut).array
            // LoRA adapts the linear layers only (merged at the end); full fine-tuning also trains the shortcuts.
            #expect(moved == (rank == 0), "rank \(rank): shortcut moved \(moved)")
            #expect(try heldOutLoss(finetuned, data: heldout) != slicedLoss, "rank \(rank)")
        }
        #expect(throws: (any Error).self) {
            try runKind(SelectStage(), params: ["ratio": .double(0.25)], inputs: ["model": first], in: dir)
        }
    }
}
