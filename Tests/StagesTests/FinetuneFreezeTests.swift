// `freeze` of `finetune` and `train`: the named weights leave full fine-tuning bit for bit as they came
// in, the rest train; a pattern that names nothing, or freeze together with LoRA, is a located
// parameter error of either kind (they share one training loop, TrainingParams.swift).

import Foundation
import StageTestSupport
import Testing
import Data
import Pipeline
import Stages

@Suite struct FinetuneFreezeTests {
    static let training: [String: ParamValue] = ["lora_rank": .int(0), "steps": .int(3), "seq_len": .int(16), "lr": .double(1e-2)]
    static let kinds: [any StageKind] = [FinetuneStage(), TrainStage()]

    @Test func frozenWeightsStayBitForBitAndTheRestTrain() throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let out = try runKind(FinetuneStage(), params: Self.training.merging(["freeze": .string("embed/**, **/scale")]) { $1 },
                              inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        let before = try ModelStore(store: tiny["model"]!).parameters
        let after = try ModelStore(store: out["model"]!)
        var frozen = 0, moved = 0
        for name in before.names {
            let same = before.value(name).array == after.parameters.value(name).array
            if name.hasPrefix("embed/") || name.hasSuffix("/scale") {
                #expect(same, "\(name) was frozen but changed")
                frozen += 1
            } else if !same {
                moved += 1
            }
        }
        #expect(frozen >= 3, "the tiny model has an embedding and norm scales")
        #expect(moved == before.names.count - frozen, "every unfrozen weight trains")
        #expect(after.source["finetuned"]?.contains("frozen=embed/**,**/scale") == true, "\(after.source)")
    }

    /// Left out (as the planner leaves it out of the node's parameters at its default), every weight trains.
    @Test func withoutFreezeEveryWeightTrains() throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        let out = try runKind(FinetuneStage(), params: Self.training, inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        let before = try ModelStore(store: tiny["model"]!).parameters
        let after = try ModelStore(store: out["model"]!)
        let unchanged = before.names.filter { before.value($0).array == after.parameters.value($0).array }
        #expect(unchanged.isEmpty, "\(unchanged) did not train")
        #expect(after.source["finetuned"]?.contains("frozen") == false, "\(after.source)")
    }

    @Test(arguments: kinds.indices) func aPatternThatNamesNothingIsAParameterError(kind: Int) throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        #expect {
            _ = try runKind(Self.kinds[kind], params: Self.training.merging(["freeze": .string("embeds/**")]) { $1 },
                            inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        } throws: { error in
            guard case let DReSSStageError.badParameter(_, name, reason) = error else { return false }
            return name == "freeze" && reason.contains("embeds/**") && reason.contains("matches no parameter")
        }
    }

    @Test(arguments: kinds.indices) func freezeWithLoRAIsRefused(kind: Int) throws {
        let dir = try temporaryProject([:])
        let tiny = try DistillRotateStageTests.tiny(dir)
        #expect {
            _ = try runKind(Self.kinds[kind], params: Self.training.merging(["lora_rank": .int(4), "freeze": .string("embed/**")]) { $1 },
                            inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        } throws: { error in
            guard case let DReSSStageError.badParameter(_, name, reason) = error else { return false }
            return name == "freeze" && reason.contains("lora_rank: 0")
        }
    }
}
