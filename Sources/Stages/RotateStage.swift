// The `rotate` stage kind (issue 10): a model rotated to the principal basis of its normalised
// residual stream on calibration text (Model/Rotation.swift): the same function (logits equal to
// float32 rounding), unit norm scales, an untied head, and hidden channels sorted by energy, largest
// first, so that `selection: last` then means "least energy". Training-free on its own (rotate →
// select last → prune), or the first stage before regularize / finetune.
// With `head: tied` the head stays tied to the rotated embedding, which a stock LLaMA checkpoint can
// hold only approximately (Model/Rotation.swift, `tieHead`): the massive-activation channels are kept
// out of the rotation and the final norm's scale is fitted, and recovery training closes the rest.

import Data
import Foundation
import Model
import Pipeline
import Tensor
import TensorStore

/// `rotate`: the model in the principal basis of its residual stream.
public struct RotateStage: StageKind {
    public init() {}
    public let name = "rotate"
    public let version = 1
    public let doc = "Rotates the residual stream to its principal basis on calibration text (norm scales folded, head untied): the same function, channels sorted by energy, so selection last prunes the least."
    public let params = [
        ParamDecl("basis", .string(choices: ["principal", "none"]), default: .string("principal"),
                  doc: "principal: rotate to the principal basis; none: pass the model through unchanged (so one sweep variable can switch rotation off)."),
        ParamDecl("head", .string(choices: ["untied", "tied"]), default: .string("untied"), omittedAtDefault: true,
                  doc: "untied: the head becomes its own matrix (exact; V·C more parameters). tied: the head stays the embedding (no extra parameters, exportable): channels whose mean square at the final norm exceeds \(Int(RotateStage.massiveThreshold)) stay unrotated and the final norm's scale is a least-squares fit, so logits are close but not equal (the log says how close); needs a tied input model; follow with recovery training."),
        ParamDecl("vocabulary", .double(0...0.99), default: .double(0), omittedAtDefault: true,
                  doc: "Share of the basis' second moments taken from the token embedding's rows, every token once (each row scaled to the stream's norm), the rest from the calibration stream, where tokens count by frequency. Above 0 the last channels take less from rare tokens' embeddings, which recovery text lacking those tokens cannot repair."),
    ] + calibrationParams(windows: "Windows of the data whose normalised stream, pooled over every norm input, gives the basis (the first ones of the token stream).")
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to rotate (LLaMA family: RMSNorm and RoPE)."),
                         InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Calibration text.")]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "The rotated model: same widths, channels sorted by energy; its head untied (or tied, head: tied).")]

    /// Mean square (the channel average is about 1) above which a channel counts as a massive
    /// activation at the final norm and is kept out of a tied rotation.
    static let massiveThreshold = 20.0

    struct Params: Decodable {
        var basis: String
        var calibration_windows: Int
        var calibration_len: Int
        // Absent at their defaults, untied and 0 (omittedAtDefault).
        var head: String?
        var vocabulary: Double?
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        Threading.configure(threads: context.threads)
        let store = try ModelStore(store: context.inputs["model"]!)
        if p.basis == "none" {
            context.log("basis none: model unchanged")
            try store.write(to: context.outputs["model"]!)
            return
        }
        let windows = try calibrationWindows(data: context.inputs["data"]!, tokenizer: store.tokenizer, windows: p.calibration_windows,
                                             length: p.calibration_len, stage: context.stageID)
        var out = store
        let energy: [Double], basis: [Double], streamGram: [Double]
        var headNote = "head untied"
        let vocabularyShare = p.vocabulary ?? 0
        let vocabulary = StreamStatistics.vocabularyGram(embedding: store.parameters.value("embed/tokens"))
        do {
            let model = try store.decoder()
            let measured = StreamStatistics(model: model, windows: windows)
            streamGram = measured.pooled
            let statistics = vocabularyShare > 0 ? measured.blending(vocabulary: vocabulary, share: vocabularyShare) : measured
            if p.head == "tied" {
                guard store.config.tiedEmbeddings else {
                    throw DReSSStageError.badParameter(stage: context.stageID, name: "head",
                                                       reason: "tied needs a model whose head is tied to its embedding; this one has its own lm_head: use head: untied")
                }
                let pinned = ResidualRotation.massiveChannels(statistics, threshold: Self.massiveThreshold)
                let variances: [Double]
                (basis, variances) = try ResidualRotation.principalBasis(statistics, pinned: pinned)
                let (config, rotated) = try ResidualRotation.rotate(config: store.config, parameters: store.parameters, basis: basis)
                let missed: Double
                (out.config, out.parameters, missed) = ResidualRotation.tieHead(
                    config: config, rotated: rotated, basis: basis, finalScale: store.parameters.value("final_norm/scale"), statistics: statistics)
                energy = variances
                let means = pinned.map { String(format: "%d (%.0f)", $0, statistics.final[$0 * statistics.C + $0]) }
                headNote = String(format: "head tied: channels %@ unrotated (mean square at the final norm), final-norm scale fitted, missing %.2f%% of the output map's energy on the calibration text",
                                  means.isEmpty ? "none" : means.joined(separator: ", "), 100 * missed)
            } else {
                let variances: [Double]
                (basis, variances) = try ResidualRotation.principalBasis(statistics, pinned: [])
                (out.config, out.parameters) = try ResidualRotation.rotate(config: store.config, parameters: store.parameters, basis: basis)
                energy = variances
            }
        } catch let error as DReSSStageError {
            throw error
        } catch {
            throw DReSSStageError.failed(stage: context.stageID, step: "rotating", underlying: "\(error)")
        }
        let total = energy.reduce(0, +), C = energy.count
        func lastCount(_ ratio: Double) -> Int { Int((ratio * Double(C)).rounded()) }
        let ratios = [0.1, 0.25, 0.5]
        // The calibration stream's own share; with the vocabulary blended in, the basis' variances are not it.
        let removed = ratios.map { ratio -> String in
            let share = vocabularyShare > 0 ? ResidualRotation.energyShare(of: streamGram, inLast: lastCount(ratio), of: basis)
                                            : energy[(C - lastCount(ratio))...].reduce(0, +) / total
            return String(format: "%.0f%%: %.2f%%", ratio * 100, 100 * share)
        }.joined(separator: ", ")
        let embeddingRemoved = ratios.map { ratio -> String in
            String(format: "%.0f%%: %.2f%%", ratio * 100, 100 * ResidualRotation.energyShare(of: vocabulary, inLast: lastCount(ratio), of: basis))
        }.joined(separator: ", ")
        context.log("energy in the last channels (the share pruning would remove) at " + removed)
        context.log("the embedding rows' energy there, every token once, at " + embeddingRemoved)
        context.log("parameters \(store.config.parameterCount) -> \(out.config.parameterCount)" + (store.config.tiedEmbeddings && !out.config.tiedEmbeddings ? " (head untied)" : ""))
        if out.config.tiedEmbeddings { context.log(headNote) }
        let dataDigest = try TensorStoreReader.digest(ofStoreAt: context.inputs["data"]!)
        let blend = vocabularyShare > 0 ? String(format: " blended with the embedding rows (share %g; their energy in the last channels at %@)", vocabularyShare, embeddingRemoved) : ""
        out.source["rotated"] = "principal basis of the normalised residual stream, \(p.calibration_windows)x\(p.calibration_len) tokens of dataset \(dataDigest.prefix(16))\(blend); energy of the last channels at \(removed); \(headNote)"
        try out.write(to: context.outputs["model"]!)
    }
}
