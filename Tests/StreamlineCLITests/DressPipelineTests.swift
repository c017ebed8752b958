// DReSS end to end through the built binary: `streamline run` on Pipelines/dress-tiny.yaml (a tiny
// self-trained model -> regularize -> prune -> finetune, and the direct baseline), then the stores are
// read back with the libraries: the pruned model is strictly smaller with hidden size d − |P|, the
// regularized slices are empty, pruning the regularized model barely changes its loss while pruning
// the untouched one does, fine-tuning keeps the widths, and a second run is all cache hits.

import Foundation
import StageTestSupport
import Testing
import Data
import Model
import Pipeline
import Stages
import Training
import TensorStore

@Suite(.serialized) struct DressPipelineTests {
    /// Output store files of a finished node: its fingerprint from `streamline stage NODE --json`,
    /// located in the project's default cache (.streamline-cache beside the spec).
    static func outputs(_ node: String, in dir: URL) throws -> [String: URL] {
        let result = try streamline(["stage", node, "--json"], in: dir)
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        let fingerprint = try #require(object?["fingerprint"] as? String, "no fingerprint in \(result.stdout)")
        let names = (object?["outputs"] as? [String: String] ?? [:]).keys
        let cache = Cache(root: dir.appendingPathComponent(".streamline-cache"))
        return Dictionary(uniqueKeysWithValues: names.map { ($0, cache.outputURL(fingerprint, $0)) })
    }

    @Test func tinyDressPipelineRunsEndToEnd() throws {
        let spec = try String(contentsOf: repositoryRoot.appendingPathComponent("Pipelines/dress-tiny.yaml"), encoding: .utf8)
        let dir = try temporaryProject(["pipeline.yaml": spec])
        let run = try streamline(["run", "--quiet"], in: dir)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")

        let tinyOut = try Self.outputs("tiny", in: dir)
        let dense = try ModelStore(store: tinyOut["model"]!), data = try TokenDataset(store: tinyOut["heldout"]!)
        let regularizeOut = try Self.outputs("regularize", in: dir)
        let regularized = try ModelStore(store: regularizeOut["model"]!)
        let channelStore = try ChannelStore(store: regularizeOut["channels"]!)
        let pruned = try ModelStore(store: try Self.outputs("prune", in: dir)["model"]!)
        let finetuned = try ModelStore(store: try Self.outputs("finetune", in: dir)["model"]!)
        let direct = try ModelStore(store: try Self.outputs("direct_prune", in: dir)["model"]!)

        // P: the last 25% of d = 32; the pruned model is strictly smaller with d′ = 24.
        #expect(channelStore.channels.pruned == Array(24..<32))
        #expect(pruned.config.hiddenSize == 24 && direct.config.hiddenSize == 24 && finetuned.config.hiddenSize == 24)
        #expect(pruned.config.parameterCount < dense.config.parameterCount)
        #expect(pruned.parameters.count == pruned.config.parameterCount)

        // The selected slices are empty after a large λ, and the curves say so too.
        let energy = ChannelRegularizer.sliceEnergy(parameters: regularized.parameters, config: regularized.config,
                                                    channels: channelStore.channels).relative
        #expect(energy < 1e-5, "relative energy left in P: \(energy)")
        let curves = try #require(channelStore.curves)
        #expect(curves.points.last?.energy == energy)
        #expect(curves.initialEnergy > 0.1)
        #expect(curves.evaluations.map(\.step) == [0, 50, 100])

        // Pruning the regularized model changes its held-out loss only slightly; pruning the dense one
        // (the direct baseline) costs much more.
        let denseLoss = try heldOutLoss(dense, data: data), regularizedLoss = try heldOutLoss(regularized, data: data)
        let prunedLoss = try heldOutLoss(pruned, data: data), directLoss = try heldOutLoss(direct, data: data)
        let finetunedLoss = try heldOutLoss(finetuned, data: data)
        #expect(abs(prunedLoss - regularizedLoss) < 1e-3, "regularized \(regularizedLoss), pruned \(prunedLoss)")
        #expect(directLoss > denseLoss + 0.1, "dense \(denseLoss), direct prune \(directLoss)")
        #expect(finetunedLoss.isFinite && finetunedLoss < directLoss, "fine-tuned \(finetunedLoss), direct \(directLoss)")

        // The evaluate stages (the `stages` branch's kind, sliding windows of 64) tell the same story.
        func perplexity(_ node: String) throws -> Double {
            let reader = try TensorStoreReader(url: try Self.outputs(node, in: dir)["metrics"]!)
            return try reader.metadata("metrics", as: EvaluationMetrics.self).perplexity
        }
        let ppl = try ["dense", "regularized", "pruned", "finetuned", "direct"].map { try perplexity("eval_\($0)") }
        #expect(abs(ppl[2] / ppl[1] - 1) < 1e-3, "perplexity regularized \(ppl[1]), pruned \(ppl[2])")
        #expect(ppl[4] > ppl[0] * 1.1, "perplexity dense \(ppl[0]), direct \(ppl[4])")

        // A second run computes nothing.
        let again = try streamline(["run"], in: dir)
        #expect(again.status == 0)
        #expect(!again.stdout.contains("done "), "\(again.stdout)")
    }

    @Test func selectAppliesEachRuleToTheModelStore() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(20)], in: dir)
        let model = try ModelStore(store: tiny["model"]!)
        func select(_ rule: String, seed: Int = 0) throws -> ChannelStore {
            let out = try runKind(SelectStage(), params: ["ratio": .double(0.25), "selection": .string(rule), "selection_seed": .int(seed)],
                                       inputs: ["model": tiny["model"]!], in: dir)
            return try ChannelStore(store: out["channels"]!)
        }
        #expect(try select("first").channels.pruned == Array(0..<8))
        #expect(try select("uniform").channels.pruned == (0..<8).map { (2 * $0 + 1) * 32 / 16 })
        let random = try select("random", seed: 5)
        #expect(random.channels == (try ChannelSelection.random(ratio: 0.25, hiddenSize: 32, seed: 5)))
        #expect(random.selection == "random seed=5" && random.curves == nil)
        #expect(try select("magnitude").channels == (try ChannelSelection.magnitude(ratio: 0.25, parameters: model.parameters, config: model.config)))
    }

    @Test(arguments: ["activation", "taylor", "norm_output"])
    func calibrationSelectionRanksTheCalibrationWindowsAndNeedsData(rule: String) throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(20), "sentences": .int(40)], in: dir)
        let model = try ModelStore(store: tiny["model"]!), data = try TokenDataset(store: tiny["data"]!)
        let params: [String: ParamValue] = ["ratio": .double(0.25), "selection": .string(rule),
                                            "calibration_windows": .int(3), "calibration_len": .int(16)]
        let out = try runKind(SelectStage(), params: params, inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        // The same rule computed here from the first 3 windows of 16 tokens of the data store.
        let windows = (0..<3).map { Array(data.tokens[($0 * 16)..<(($0 + 1) * 16)]) }
        let decoder = try model.decoder()
        let statistics = switch rule {
        case "taylor": ChannelSelection.taylorStatistics(model: decoder, windows: windows)
        case "norm_output": ChannelSelection.normOutputStatistics(model: decoder, windows: windows)
        default: ChannelSelection.activationStatistics(model: decoder, windows: windows)
        }
        let store = try ChannelStore(store: out["channels"]!)
        #expect(store.channels == (try ChannelSelection.activation(ratio: 0.25, statistics: statistics)))
        #expect(store.selection == "\(rule) windows=3x16")
        // Without calibration text the rule is a parameter error that says what to give.
        #expect {
            try runKind(SelectStage(), params: params, inputs: ["model": tiny["model"]!], in: dir)
        } throws: { "\($0)".contains("'data' input") }
    }

    @Test func methodNoneSelectsLikeSelectAndPassesTheModelThrough() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(40)], in: dir)
        let inputs = ["model": tiny["model"]!, "data": tiny["data"]!]
        let params: [String: ParamValue] = ["method": .string("none"), "ratio": .double(0.25), "selection": .string("magnitude"),
                                            "seq_len": .int(16)]
        let out = try runKind(RegularizeStage(), params: params, inputs: inputs, in: dir)
        let selected = try runKind(SelectStage(), params: ["ratio": .double(0.25), "selection": .string("magnitude")],
                                        inputs: ["model": tiny["model"]!], in: dir)
        #expect(try ChannelStore(store: out["channels"]!) == ChannelStore(store: selected["channels"]!))
        let before = try ModelStore(store: tiny["model"]!), after = try ModelStore(store: out["model"]!)
        #expect(after.config == before.config)
        #expect(after.parameters.values.array == before.parameters.values.array)
    }

    @Test func aDataBudgetBeyondTheCorpusIsAnErrorNamingIt() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(20)], in: dir)
        #expect {
            try runKind(FinetuneStage(), params: ["steps": .int(1), "seq_len": .int(32), "samples": .int(1000)],
                             inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
        } throws: { "\($0)".contains("samples 1000") }
    }
}
