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
        // Absent at its default, untied (omittedAtDefault).
        var head: String?
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
        let energy: [Double]
        var headNote = "head untied"
        do {
            let model = try store.decoder()
            if p.head == "tied" {
                guard store.config.tiedEmbeddings else {
                    throw DReSSStageError.badParameter(stage: context.stageID, name: "head",
                                                       reason: "tied needs a model whose head is tied to its embedding; this one has its own lm_head: use head: untied")
                }
                let statistics = StreamStatistics(model: model, windows: windows)
                let pinned = ResidualRotation.massiveChannels(statistics, threshold: Self.massiveThreshold)
                let (basis, variances) = try ResidualRotation.principalBasis(statistics, pinned: pinned)
                let (config, rotated) = try ResidualRotation.rotate(config: store.config, parameters: store.parameters, basis: basis)
                let missed: Double
                (out.config, out.parameters, missed) = ResidualRotation.tieHead(
                    config: config, rotated: rotated, basis: basis, finalScale: store.parameters.value("final_norm/scale"), statistics: statistics)
                energy = variances
                let means = pinned.map { String(format: "%d (%.0f)", $0, statistics.final[$0 * statistics.C + $0]) }
                headNote = String(format: "head tied: channels %@ unrotated (mean square at the final norm), final-norm scale fitted, missing %.2f%% of the output map's energy on the calibration text",
                                  means.isEmpty ? "none" : means.joined(separator: ", "), 100 * missed)
            } else {
                let (basis, variances) = try ResidualRotation.principalBasis(model: model, windows: windows)
                (out.config, out.parameters) = try ResidualRotation.rotate(config: store.config, parameters: store.parameters, basis: basis)
                energy = variances
            }
        } catch let error as DReSSStageError {
            throw error
        } catch {
            throw DReSSStageError.failed(stage: context.stageID, step: "rotating", underlying: "\(error)")
        }
        let total = energy.reduce(0, +), C = energy.count
        let removed = [0.1, 0.25, 0.5].map { ratio -> String in
            let kept = C - Int((ratio * Double(C)).rounded())
            return String(format: "%.0f%%: %.2f%%", ratio * 100, 100 * energy[kept...].reduce(0, +) / total)
        }.joined(separator: ", ")
        context.log("energy in the last channels (the share pruning would remove) at " + removed)
        context.log("parameters \(store.config.parameterCount) -> \(out.config.parameterCount)" + (store.config.tiedEmbeddings && !out.config.tiedEmbeddings ? " (head untied)" : ""))
        if out.config.tiedEmbeddings { context.log(headNote) }
        let dataDigest = try TensorStoreReader.digest(ofStoreAt: context.inputs["data"]!)
        out.source["rotated"] = "principal basis of the normalised residual stream, \(p.calibration_windows)x\(p.calibration_len) tokens of dataset \(dataDigest.prefix(16)); energy of the last channels at \(removed); \(headNote)"
        try out.write(to: context.outputs["model"]!)
    }
}
