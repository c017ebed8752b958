// Nested regularization through the built binary (issue 15): one regularize run with `ratios` serves a
// sweep whose `ratio` sits on prune only, so the planner runs it once; each prune deletes its prefix of
// the ranking (the set select gives for that ratio), the regularized model barely changes when the
// smallest prefix is deleted, and what cannot work is refused with the parameter and the way out.

import Foundation
import StageTestSupport
import Testing
import Data
import Model
import Stages
import Training

@Suite(.serialized) struct NestedPipelineTests {
    static let spec = """
        stages:
          tiny:
            kind: debug/tiny-lm
            params: {hidden: 32, layers: 2, sentences: 400, train_steps: 100}
          regularize:
            kind: regularize
            inputs: {model: "${stages.tiny.model}", data: "${stages.tiny.data}"}
            params: {ratios: "0.5, 0.25", selection: last, lambda: 0.0111, steps: 150, batch_size: 4, seq_len: 32, lr: 0.03,
                     warmup: 5, min_lr_ratio: 0, eval_every: 75, heldout_fraction: 0.1}
          prune:
            kind: prune
            inputs: {model: "${stages.regularize.model}", channels: "${stages.regularize.channels}"}
            params: {ratio: "${ratio}"}
            sweep:
              grid: {ratio: [0.25, 0.5]}
        """

    @Test func oneRegularizeRunServesEveryRatioOfTheSweep() throws {
        let dir = try temporaryProject(["pipeline.yaml": Self.spec])
        let run = try streamline(["run", "--progress", "plain"], in: dir)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let starts = run.stdout.split(separator: "\n").filter { $0.hasPrefix("start") && $0.contains("regularize") }
        #expect(starts.count == 1, "one regularize run for both ratios: \(starts)")

        let regularized = try DressPipelineTests.outputs("regularize", in: dir)
        let store = try ChannelStore(store: regularized["channels"]!)
        let ranking = try #require(store.ranking)
        #expect(ranking.counts == [8, 16] && ranking.order == Array((16..<32).reversed()))
        #expect(store.channels.pruned == Array(16..<32), "P is the largest ratio's set")
        let evaluations = try #require(store.curves?.evaluations)
        #expect(evaluations.allSatisfy { $0.prefixLosses?.count == 2 })

        let model = try ModelStore(store: regularized["model"]!)
        let data = try TokenDataset(store: try DressPipelineTests.outputs("tiny", in: dir)["heldout"]!)
        let regularizedLoss = try heldOutLoss(model, data: data)
        for (ratio, width) in [(0.25, 24), (0.5, 16)] {
            let pruned = try ModelStore(store: try DressPipelineTests.outputs("prune[ratio=\(ratio)]", in: dir)["model"]!)
            #expect(pruned.config.hiddenSize == width)
            let loss = try heldOutLoss(pruned, data: data)
            #expect(loss < regularizedLoss + 0.1, "ratio \(ratio): regularized \(regularizedLoss), pruned \(loss)")
        }
    }

    @Test func whatCannotNestIsRefusedWithTheWayOut() throws {
        func failure(_ regularize: String, prune: String) throws -> String {
            let spec = """
                stages:
                  tiny:
                    kind: debug/tiny-lm
                    params: {hidden: 32, layers: 2, sentences: 100, train_steps: 5}
                  select:
                    kind: select
                    inputs: {model: "${stages.tiny.model}"}
                    params: {\(regularize)}
                  prune:
                    kind: prune
                    inputs: {model: "${stages.tiny.model}", channels: "${stages.select.channels}"}
                    params: {\(prune)}
                """
            let result = try streamline(["run", "--quiet"], in: try temporaryProject(["pipeline.yaml": spec]))
            #expect(result.status != 0)
            return result.stdout + result.stderr
        }
        let unranked = try failure("ratio: 0.25", prune: "ratio: 0.25")
        #expect(unranked.contains("parameter 'ratio'") && unranked.contains("unranked") && unranked.contains("ratios"), "\(unranked)")
        let beyond = try failure("ratios: \"0.25\"", prune: "ratio: 0.5")
        #expect(beyond.contains("parameter 'ratio'") && beyond.contains("prefix of 16 channels") && beyond.contains("ranking of 8"), "\(beyond)")
        let uniform = try failure("ratios: \"0.25, 0.5\", selection: uniform", prune: "")
        #expect(uniform.contains("parameter 'ratios'") && uniform.contains("'uniform'"), "\(uniform)")
        let garbage = try failure("ratios: \"0.25, half\"", prune: "")
        #expect(garbage.contains("parameter 'ratios'") && garbage.contains("'half'"), "\(garbage)")
    }
}
