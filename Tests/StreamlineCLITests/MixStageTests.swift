// The `mix` stage and the stages that read a mixture: the mixed store keeps its sources and
// weights, select calibrates on windows of every source in proportion, regularize holds out each
// source's tail, a mixture of one store trains (train, finetune) exactly like the store and two
// stores train otherwise, a budget that starves a source is an error, and a spec gathers the
// datasets through the planner end to end.

import Foundation
import StageTestSupport
import Testing
import Data
import Model
import Pipeline
import Stages
import Training

@Suite struct MixStageTests {
    /// Runs `mix` in-process on `datasets` (gathered in this order) with `weights`.
    static func mix(_ datasets: [URL], weights: String = "", in dir: URL) throws -> URL {
        let out = dir.appendingPathComponent("mix-\(UUID().uuidString).h5")
        var context = StageContext(stageID: "mix", params: ["weights": .string(weights)], seed: 1, inputs: [:],
                                   outputs: ["data": out], threads: 1)
        context.gathered["datasets"] = datasets.enumerated().map { i, url in
            GatheredInput(url: url, stage: "data\(i)", id: "data\(i)", variables: [])
        }
        try MixStage().run(context)
        return out
    }

    /// Lines a stage logs, collected across its threads.
    final class LogLines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    @Test func mixKeepsSourcesAndWeights() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(40)], in: dir)
        let data = try TokenDataset(store: tiny["data"]!), heldout = try TokenDataset(store: tiny["heldout"]!)
        let mixed = try TokenDataset(store: try Self.mix([tiny["data"]!, tiny["heldout"]!], weights: "3, 1", in: dir))
        #expect(mixed.sources == [TokenSource(name: "data0", tokenCount: data.tokens.count, weight: 3),
                                  TokenSource(name: "data1", tokenCount: heldout.tokens.count, weight: 1)])
        #expect(mixed.tokens == data.tokens + heldout.tokens)
        // Empty weights are equal weights; a count or value that does not fit is a parameter error.
        #expect(try TokenDataset(store: try Self.mix([tiny["data"]!, tiny["heldout"]!], in: dir)).sources.map(\.weight) == [1, 1])
        #expect { try Self.mix([tiny["data"]!, tiny["heldout"]!], weights: "1", in: dir) } throws: { "\($0)".contains("one per dataset") }
        #expect { try Self.mix([tiny["data"]!], weights: "-1", in: dir) } throws: { "\($0)".contains("positive numbers") }
    }

    @Test func selectCalibratesOnEverySourceInProportion() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(10), "sentences": .int(40)], in: dir)
        let mixURL = try Self.mix([tiny["data"]!, tiny["heldout"]!], weights: "3, 1", in: dir)
        let params: [String: ParamValue] = ["ratio": .double(0.25), "selection": .string("activation"),
                                            "calibration_windows": .int(4), "calibration_len": .int(8)]
        let out = try runKind(SelectStage(), params: params, inputs: ["model": tiny["model"]!, "data": mixURL], in: dir)
        // Weights 3 : 1 schedule the sources 0, 0, 1, 0; each source's windows are its first ones.
        let data = try TokenDataset(store: tiny["data"]!).tokens, heldout = try TokenDataset(store: tiny["heldout"]!).tokens
        let windows = [Array(data[0..<8]), Array(data[8..<16]), Array(heldout[0..<8]), Array(data[16..<24])]
        let model = try ModelStore(store: tiny["model"]!)
        let statistics = ChannelSelection.activationStatistics(model: try model.decoder(), windows: windows)
        #expect(try ChannelStore(store: out["channels"]!).channels == ChannelSelection.activation(ratio: 0.25, statistics: statistics))
    }

    @Test func aMixtureOfOneStoreFinetunesExactlyLikeTheStore() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(40)], in: dir)
        let single = try Self.mix([tiny["data"]!], in: dir)
        for budget in [0, 12] {
            let params: [String: ParamValue] = ["steps": .int(3), "batch_size": .int(2), "seq_len": .int(16), "samples": .int(budget),
                                                "sample_offset": .int(budget > 0 ? 2 : 0)]
            let plain = try runKind(FinetuneStage(), params: params, inputs: ["model": tiny["model"]!, "data": tiny["data"]!], in: dir)
            let mixed = try runKind(FinetuneStage(), params: params, inputs: ["model": tiny["model"]!, "data": single], in: dir)
            let a = try ModelStore(store: plain["model"]!).parameters.values.array
            let b = try ModelStore(store: mixed["model"]!).parameters.values.array
            #expect(a == b, "samples \(budget)")
            #expect(a != (try ModelStore(store: tiny["model"]!).parameters.values.array))
        }
    }

    @Test func trainSamplesEverySourceAndAMixtureOfOneLikeTheStore() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(40)], in: dir)
        let params: [String: ParamValue] = ["steps": .int(3), "batch_size": .int(2), "seq_len": .int(16), "lr": .double(1e-2)]
        func trained(_ data: URL) throws -> [Float] {
            let out = try runKind(TrainStage(), params: params, inputs: ["model": tiny["model"]!, "data": data], in: dir)
            return try ModelStore(store: out["model"]!).parameters.values.array
        }
        let plain = try trained(tiny["data"]!)
        #expect(try trained(try Self.mix([tiny["data"]!], in: dir)) == plain)
        // With a second source half the windows come from other text: another model.
        let two = try trained(try Self.mix([tiny["data"]!, tiny["heldout"]!], in: dir))
        #expect(two != plain)
        #expect(try trained(try Self.mix([tiny["data"]!, tiny["heldout"]!], in: dir)) == two)
    }

    @Test func regularizeHoldsOutEverySourcesTailAndChecksBudgets() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(0), "sentences": .int(60)], in: dir)
        let mixURL = try Self.mix([tiny["data"]!, tiny["heldout"]!], weights: "1, 1", in: dir)
        let params: [String: ParamValue] = ["steps": .int(2), "batch_size": .int(2), "seq_len": .int(16), "heldout_fraction": .double(0.1)]
        let outputs = Dictionary(uniqueKeysWithValues: RegularizeStage().outputs.map { ($0.name, dir.appendingPathComponent("reg-\($0.name).h5")) })
        var resolved: [String: ParamValue] = [:]
        for decl in RegularizeStage().params { resolved[decl.name] = params[decl.name] ?? decl.defaultValue }
        let lines = LogLines()
        try RegularizeStage().run(StageContext(stageID: "regularize", params: resolved, seed: 1,
                                               inputs: ["model": tiny["model"]!, "data": mixURL], outputs: outputs, threads: 1,
                                               log: { lines.append($0) }))
        // Each source holds out max(one window, 10%) of its own ids, whole windows of 17.
        let held = try [tiny["data"]!, tiny["heldout"]!].map { url -> Int in
            let n = try TokenDataset(store: url).tokens.count
            let count = max(17, n / 10)
            return (count - count % 17) / 17
        }
        #expect(lines.all.contains { $0.contains("\(held[0] + held[1]) held-out windows") }, "\(lines.all)")
        // A budget of one sample gives the second source nothing to train on: an error naming it.
        #expect {
            try runKind(RegularizeStage(), params: params.merging(["samples": .int(1)]) { $1 },
                                           inputs: ["model": tiny["model"]!, "data": mixURL], in: dir)
        } throws: { "\($0)".contains("source data1") && "\($0)".contains("raise samples") }
    }

    @Test func aSpecMixesDatasetsThroughThePlanner() throws {
        let spec = """
        stages:
          tiny:
            kind: debug/tiny-lm
            params: {hidden: 16, layers: 1, sentences: 40, train_steps: 0}
          plays:
            kind: dataset
            inputs: {model: "${stages.tiny.model}"}
            params: {train: plays.txt, validation: held.txt}
          docs:
            kind: dataset
            inputs: {model: "${stages.tiny.model}"}
            params: {train: docs.txt, validation: held.txt}
          mix:
            kind: mix
            inputs: {datasets: ["${stages.plays.train}", "${stages.docs.train}"]}
            params: {weights: "3, 1"}
          select:
            kind: select
            inputs: {model: "${stages.tiny.model}", data: "${stages.mix.data}"}
            params: {selection: taylor, calibration_windows: 4, calibration_len: 8}
        """
        let plays = String(repeating: "To be, or not to be, that is the question. ", count: 10)
        let docs = String(repeating: "def f(x): return x + 1  # the successor. ", count: 10)
        let dir = try temporaryProject(["pipeline.yaml": spec, "plays.txt": plays, "docs.txt": docs, "held.txt": "a held-out line."])
        let run = try streamline(["run", "--quiet"], in: dir)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let mixed = try TokenDataset(store: try DressPipelineTests.outputs("mix", in: dir)["data"]!)
        #expect(mixed.sources.map(\.name) == ["plays", "docs"] && mixed.sources.map(\.weight) == [3, 1])
        let channels = try ChannelStore(store: try DressPipelineTests.outputs("select", in: dir)["channels"]!)
        #expect(channels.channels.pruned.count == 4 && channels.selection == "taylor windows=4x8")
    }
}
