// The distillation parameters and the rotate stage at stage level, on a tiny self-trained LLaMA:
// KD from the default teacher (a frozen copy of the input) does nothing at λ = 0 and is positive once
// P is emptied; a pruned student distils from a dense teacher of other widths; rotate keeps the
// model's loss, unties its head and sorts its channels, and `basis: none` passes it through; with
// `head: tied` it keeps the parameter count and a loss near the input's, and refuses an untied model.

import Foundation
import StageTestSupport
import Testing
import Data
import Model
import Pipeline
import Stages
import Training

@Suite struct DistillRotateStageTests {
    static func tiny(_ dir: URL) throws -> [String: URL] {
        try runKind(TinyLMStage(), params: ["train_steps": .int(30), "sentences": .int(60)], in: dir)
    }

    /// KD alone from the model itself has a zero gradient: with λ = 0 nothing moves, bit for bit,
    /// while the LM loss does move the weights.
    @Test func kdFromItselfAtLambdaZeroLeavesTheModelUnchanged() throws {
        let dir = try temporaryProject([:])
        let tiny = try Self.tiny(dir)
        let inputs = ["model": tiny["model"]!, "data": tiny["data"]!]
        func regularized(_ loss: String) throws -> ModelStore {
            let out = try runKind(RegularizeStage(), params: ["loss": .string(loss), "lambda": .double(0), "steps": .int(4),
                                                               "seq_len": .int(16), "lr": .double(1e-2)],
                                  inputs: inputs, in: dir)
            return try ModelStore(store: out["model"]!)
        }
        let before = try ModelStore(store: tiny["model"]!)
        #expect(try regularized("kd").parameters.values.array == before.parameters.values.array)
        #expect(try regularized("lm").parameters.values.array != before.parameters.values.array)
    }

    /// Emptying P makes the student differ from its frozen teacher: the KD loss rises from 0.
    @Test func kdLossGrowsAsTheChannelsEmpty() throws {
        let dir = try temporaryProject([:])
        let tiny = try Self.tiny(dir)
        let out = try runKind(RegularizeStage(), params: ["loss": .string("kd"), "steps": .int(6), "seq_len": .int(16),
                                                           "lambda": .double(0.25), "log_every": .int(1)],
                              inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        let points = try #require(try ChannelStore(store: out["channels"]!).curves?.points)
        #expect(points.first!.loss < 1e-6, "\(points)")
        #expect(points.last!.loss > 1e-4, "\(points)")
        let source = try ModelStore(store: out["model"]!).source["regularized"] ?? ""
        #expect(source.contains("loss kd"), "\(source)")
    }

    /// A pruned student distils from the dense teacher input (other widths).
    @Test func prunedStudentDistilsFromADenseTeacher() throws {
        let dir = try temporaryProject([:])
        let tiny = try Self.tiny(dir)
        let selected = try runKind(SelectStage(), params: ["ratio": .double(0.25)], inputs: ["model": tiny["model"]!], in: dir)
        let pruned = try runKind(PruneStage(), inputs: ["model": tiny["model"]!, "channels": selected["channels"]!], in: dir)
        let params: [String: ParamValue] = ["loss": .string("mix"), "kd_weight": .double(0.7), "steps": .int(3), "seq_len": .int(16),
                                            "lora_rank": .int(0), "lr": .double(1e-3)]
        let out = try runKind(FinetuneStage(), params: params,
                              inputs: ["model": pruned["model"]!, "data": tiny["data"]!, "teacher": tiny["model"]!], in: dir)
        let finetuned = try ModelStore(store: out["model"]!)
        #expect(finetuned.config.hiddenSize == 24)
        #expect(finetuned.source["finetuned"]?.contains("from teacher input (hidden 32)") == true, "\(finetuned.source)")
    }

    @Test func rotateKeepsTheLossUntiesTheHeadAndSortsTheChannels() throws {
        let dir = try temporaryProject([:])
        let tiny = try Self.tiny(dir)
        let params: [String: ParamValue] = ["calibration_windows": .int(4), "calibration_len": .int(16)]
        let out = try runKind(RotateStage(), params: params, inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        let dense = try ModelStore(store: tiny["model"]!), rotated = try ModelStore(store: out["model"]!)
        let heldout = try TokenDataset(store: tiny["heldout"]!)
        let denseLoss = try heldOutLoss(dense, data: heldout), rotatedLoss = try heldOutLoss(rotated, data: heldout)
        #expect(abs(denseLoss - rotatedLoss) <= 1e-4 * denseLoss, "\(denseLoss) vs \(rotatedLoss)")
        #expect(dense.config.tiedEmbeddings && !rotated.config.tiedEmbeddings)
        #expect(rotated.source["rotated"]?.contains("4x16 tokens") == true)
        // Sorted: the activation statistic of the rotated model's calibration stream falls with the index
        // on the whole (its first quarter holds more energy than its last).
        let windows = (0..<4).map { Array(try! TokenDataset(store: tiny["data"]!).tokens[($0 * 16)..<(($0 + 1) * 16)]) }
        let energy = ChannelSelection.activationStatistics(model: try rotated.decoder(), windows: windows)
        #expect(energy.prefix(8).reduce(0, +) > 4 * energy.suffix(8).reduce(0, +), "\(energy)")
        // With the vocabulary blended in, still the same function, and the store says so.
        let blended = try runKind(RotateStage(), params: params.merging(["vocabulary": .double(0.5)]) { $1 },
                                  inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        let blendedStore = try ModelStore(store: blended["model"]!)
        let blendedLoss = try heldOutLoss(blendedStore, data: heldout)
        #expect(abs(denseLoss - blendedLoss) <= 1e-4 * denseLoss, "\(denseLoss) vs \(blendedLoss)")
        #expect(blendedStore.source["rotated"]?.contains("blended with the embedding rows (share 0.5") == true, "\(blendedStore.source)")
        #expect(rotated.source["rotated"]?.contains("blended") == false)
        let passed = try runKind(RotateStage(), params: ["basis": .string("none")], inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        #expect(try ModelStore(store: passed["model"]!).parameters.values.array == dense.parameters.values.array)
    }

    @Test func rotateWithATiedHeadKeepsTheSizeAndRefusesAnUntiedModel() throws {
        let dir = try temporaryProject([:])
        let tiny = try Self.tiny(dir)
        let params: [String: ParamValue] = ["head": .string("tied"), "calibration_windows": .int(4), "calibration_len": .int(16)]
        let out = try runKind(RotateStage(), params: params, inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        let dense = try ModelStore(store: tiny["model"]!), tied = try ModelStore(store: out["model"]!)
        #expect(tied.config.tiedEmbeddings && tied.config.parameterCount == dense.config.parameterCount)
        let note = tied.source["rotated"] ?? ""
        #expect(note.contains("head tied") && note.contains("of the output map's energy"), "\(note)")
        // Approximate, not exact: the tiny model's final-norm scale is not uniform. Its loss on held-out
        // sentences stays within 10% of the input's.
        let heldout = try TokenDataset(store: tiny["heldout"]!)
        let denseLoss = try heldOutLoss(dense, data: heldout), tiedLoss = try heldOutLoss(tied, data: heldout)
        #expect(abs(tiedLoss - denseLoss) <= 0.1 * denseLoss, "\(denseLoss) vs \(tiedLoss)")
        // A model that already has its own head cannot be tied: a clear error naming the parameter.
        let untied = try runKind(RotateStage(), params: ["calibration_windows": .int(4), "calibration_len": .int(16)],
                                 inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        #expect {
            try runKind(RotateStage(), params: params, inputs: ["model": untied["model"]!, "data": tiny["data"]!], in: dir)
        } throws: { error in
            "\(error)".contains("head") && "\(error)".contains("untied")
        }
    }
}
