// `prune` with `compensate: least_squares` at stage level, on a tiny self-trained LLaMA with a random
// quarter of its channels deleted (calibration and held-out text both the tiny corpus's own; after a
// rotation the last quarter holds too little energy to tell), compensation lowers the held-out loss of the pruned model and says so in its log and
// provenance; without a data input it is refused with the way out; left out, it changes nothing.

import Foundation
import StageTestSupport
import Testing
import Data
import Model
import Pipeline
import Stages

@Suite struct PruneCompensationTests {
    @Test func compensationLowersTheLossOfAPrunedModel() throws {
        let dir = try temporaryProject([:])
        // Trained long enough that its stream has structure to predict (30 steps leave it near the unigram).
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(200), "sentences": .int(400)], in: dir)
        let calibration: [String: ParamValue] = ["calibration_windows": .int(8), "calibration_len": .int(16)]
        let rotated = tiny   // the model as trained: its channels mix energy, so each one deleted costs
        let selected = try runKind(SelectStage(), params: ["ratio": .double(0.25), "selection": .string("random")],
                                   inputs: ["model": rotated["model"]!], in: dir)
        let inputs = ["model": rotated["model"]!, "channels": selected["channels"]!, "data": tiny["data"]!]
        let plain = try runKind(PruneStage(), inputs: inputs, in: dir)
        var params = calibration
        params["compensate"] = .string("least_squares")
        let compensated = try runKind(PruneStage(), params: params, inputs: inputs, in: dir)
        let heldout = try TokenDataset(store: tiny["heldout"]!)
        let plainStore = try ModelStore(store: plain["model"]!), compensatedStore = try ModelStore(store: compensated["model"]!)
        let plainLoss = try heldOutLoss(plainStore, data: heldout), compensatedLoss = try heldOutLoss(compensatedStore, data: heldout)
        #expect(compensatedLoss < plainLoss, "compensated \(compensatedLoss), plain \(plainLoss)")
        #expect(compensatedStore.config == plainStore.config)
        #expect(compensatedStore.source["pruned"]?.contains("compensated by least squares") == true, "\(compensatedStore.source)")
        #expect(plainStore.source["pruned"]?.contains("compensated") == false)

        // The default path ignores the data input: the same bytes as without it.
        let withoutData = try runKind(PruneStage(), inputs: ["model": rotated["model"]!, "channels": selected["channels"]!], in: dir)
        #expect(try ModelStore(store: withoutData["model"]!).parameters.values.array == plainStore.parameters.values.array)

        #expect {
            try runKind(PruneStage(), params: ["compensate": .string("least_squares")],
                        inputs: ["model": rotated["model"]!, "channels": selected["channels"]!], in: dir)
        } throws: { error in
            "\(error)".contains("compensate") && "\(error)".contains("data input")
        }
    }
}
