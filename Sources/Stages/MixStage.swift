// The `mix` stage kind (issue 10): several token datasets (e.g. plays, Python docs, the KJV) become
// one mixed token dataset whose sources keep their weights, so training and calibration text is not
// one genre. The stages that read `data` (train, regularize, finetune, select) sample a mixture by
// its weights (Training/MixedBatches.swift) and hold out each source's tail; evaluate scores the
// sources end to end. Why a stage of its own rather than a list-valued `data` input with weights
// on every reader: the planner gathers lists already, the weights are stated once, and every
// existing spec keeps its fingerprints (no new parameters on the readers).
// Not here: the store format (Data's TokenDataset) or the sampling schedule (Training).

import Data
import Foundation
import Pipeline
import Training

/// `mix`: token datasets mixed by weight into one dataset store.
public struct MixStage: StageKind {
    public init() {}
    public let name = "mix"
    public let version = 1
    public let doc = "Mixes token datasets by weight into one dataset: readers sample its sources in proportion and hold out each source's tail."
    public let params = [
        ParamDecl("weights", .string(), default: .string(""),
                  doc: "Comma-separated positive weights, one per dataset in list order (e.g. \"2, 1, 1\"); empty = equal. Whole numbers give exact shares per period of their sum; others are rounded to 1/10,000."),
    ]
    public let inputs = [InputDecl("datasets", storeKind: TokenDataset.storeKind,
                                   doc: "The token datasets (same tokenizer, none itself a mixture): a list of references, one output per stage, in weight order.", many: true)]
    public let outputs = [OutputDecl("data", storeKind: TokenDataset.storeKind, doc: "The mixture: the datasets end to end, each a weighted source.")]

    struct Params: Decodable { var weights: String }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let gathered = context.gathered["datasets", default: []]
        guard !gathered.isEmpty else {
            throw DReSSStageError.badInput(stage: context.stageID, input: "datasets", what: "is empty; list at least one dataset output")
        }
        let weights = try Self.weights(p.weights, count: gathered.count, stage: context.stageID)
        let schedule: SourceSchedule
        do {
            schedule = try SourceSchedule(weights: weights)
        } catch {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "weights", reason: error.description)
        }
        let parts = try gathered.indices.map { i in (name: gathered[i].id, dataset: try TokenDataset(store: gathered[i].url), weight: weights[i]) }
        let mixture: TokenDataset
        do {
            mixture = try TokenDataset(mixing: parts)
        } catch {
            throw DReSSStageError.badInput(stage: context.stageID, input: "datasets", what: error.description)
        }
        try mixture.write(to: context.outputs["data"]!)
        for (source, share) in zip(mixture.sources, schedule.shares) {
            context.log("\(source.name): \(source.tokenCount) tokens, \(share) of every \(schedule.period) samples")
        }
    }

    /// The weights written in `text` (comma-separated, each > 0), or `count` ones when it is empty.
    static func weights(_ text: String, count: Int, stage: String) throws -> [Double] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if items.isEmpty { return Array(repeating: 1, count: count) }
        let weights = items.compactMap(Double.init)
        guard weights.count == items.count, weights.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw DReSSStageError.badParameter(stage: stage, name: "weights", reason: "'\(text)' is not a list of positive numbers like \"2, 1, 1\"")
        }
        guard weights.count == count else {
            throw DReSSStageError.badParameter(stage: stage, name: "weights",
                                               reason: "has \(weights.count) weights for \(count) datasets; give one per dataset, in list order")
        }
        return weights
    }
}
