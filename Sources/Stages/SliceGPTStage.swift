// The `slicegpt` stage kind (issue 15): the SliceGPT baseline (Ashkboos et al., 2024). A PCA basis per
// point where a norm reads the residual stream, computed in sequence on calibration windows, each
// stream sliced to its first d′ = C − round(ratio·C) principal directions, and a d′×d′ matrix on every
// residual connection (Model/Slicing.swift). Training-free; recovery is an ordinary `finetune` after it.
// Calibration windows are those `rotate` and `select` take (the first ones of the data, by weight
// from each source of a mixture), so the methods of one spec see the same text. Not here: the math.

import Data
import Foundation
import Model
import Pipeline
import Tensor
import TensorStore
import Training

/// `slicegpt`: the model sliced by per-point PCA bases with shortcut matrices.
public struct SliceGPTStage: StageKind {
    public init() {}
    public let name = "slicegpt"
    public let version = 1
    public let doc = "SliceGPT baseline: a PCA basis per residual-stream point computed in sequence on calibration text, every stream sliced to its first (1 − ratio)·d principal directions, a d′×d′ matrix on each residual connection (not exportable to HF/GGUF)."
    public let params = [
        ParamDecl("ratio", .double(0...0.99), default: .double(0.25),
                  doc: "Fraction of the hidden width to slice away: d′ = d − round(ratio·d), the same count prune removes at this ratio. 0 keeps every direction (the same function in new bases)."),
    ] + calibrationParams(windows: "Windows of the data the bases are computed on (the first ones of the token stream, as for rotate and select).") + [
        ParamDecl("statistic", .string(choices: SliceGPT.Statistic.allCases.map(\.rawValue)), default: .string(SliceGPT.Statistic.stream.rawValue),
                  omittedAtDefault: true,
                  doc: "What each point's PCA is taken of: stream (the norm's input, as the reference code does) or normalized (each token's stream divided by its RMS, as rotate does, so a few outlier tokens do not pick the directions)."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to slice (LLaMA family: RMSNorm and RoPE)."),
                         InputDecl("data", storeKind: TokenDataset.storeKind, doc: "Calibration text.")]
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind,
                                     doc: "The sliced model: hidden width d′, untied head, unit norm scales, a shortcut matrix on every residual connection.")]

    struct Params: Decodable {
        var ratio: Double
        var calibration_windows: Int
        var calibration_len: Int
        var statistic: SliceGPT.Statistic?
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        Threading.configure(threads: context.threads)
        let store = try ModelStore(store: context.inputs["model"]!)
        let C = store.config.hiddenSize
        let width: Int
        do throws(ChannelSetError) {
            width = C - (try ChannelSelection.count(ratio: p.ratio, hiddenSize: C))
        } catch {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "ratio", reason: error.description)
        }
        let windows = try calibrationWindows(data: context.inputs["data"]!, tokenizer: store.tokenizer, windows: p.calibration_windows,
                                             length: p.calibration_len, stage: context.stageID)
        var out = store
        let bases: [SliceGPT.Basis]
        do {
            bases = try SliceGPT.bases(model: try store.decoder(), windows: windows, width: width, statistic: p.statistic ?? .stream)
            (out.config, out.parameters) = try SliceGPT.slice(config: store.config, parameters: store.parameters, bases: bases)
        } catch {
            throw DReSSStageError.failed(stage: context.stageID, step: "slicing", underlying: "\(error)")
        }
        let dropped = bases.map(\.droppedEnergy)
        let summary = String(format: "energy sliced away per point: mean %.2f%%, largest %.2f%% (point %d of %d)",
                             100 * dropped.reduce(0, +) / Double(dropped.count), 100 * (dropped.max() ?? 0),
                             dropped.firstIndex(of: dropped.max() ?? 0) ?? 0, dropped.count)
        context.log("hidden width \(C) -> \(width); " + summary)
        context.log("parameters \(store.config.parameterCount) -> \(out.config.parameterCount) (shortcut matrices \(2 * store.config.layerCount)×\(width)², head untied)")
        let dataDigest = try TensorStoreReader.digest(ofStoreAt: context.inputs["data"]!)
        out.source["sliced"] = "SliceGPT to width \(width) of \(C), \(p.statistic == .normalized ? "PCA of the normalized stream, " : "")\(p.calibration_windows)x\(p.calibration_len) tokens of dataset \(dataDigest.prefix(16)); \(summary)"
        try out.write(to: context.outputs["model"]!)
    }
}
