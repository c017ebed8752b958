// The distillation parameters and the optional `teacher` input that `regularize`, `finetune` and
// `train` share (issue 10): which loss trains the model (LM cross-entropy, KL to a teacher, or a
// mix), and which model teaches. Not here: the loss itself (Model/Distillation.swift and the fused
// kernel in Tensor/Kernels/Distillation.swift).

import Data
import Foundation
import Model
import Pipeline
import Tensor

/// What a training stage minimises.
enum TrainingLoss: String, Decodable, CaseIterable {
    /// Cross-entropy of the data's next tokens.
    case lm
    /// τ²·KL(teacher ‖ student) on the full next-token distributions.
    case kd
    /// (1 − kd_weight)·lm + kd_weight·kd.
    case mix
}

let distillationParams = [
    ParamDecl("loss", .string(choices: TrainingLoss.allCases.map(\.rawValue)), default: .string("lm"),
              doc: "lm: cross-entropy of the next tokens; kd: KL from the teacher's next-token distributions to the model's (the teacher input, else the input model as it was before training); mix: (1 − kd_weight)·lm + kd_weight·kd."),
    ParamDecl("kd_weight", .double(0...1), default: .double(0.5), doc: "mix: the distillation term's share of the loss."),
    ParamDecl("temperature", .double(0.05...100), default: .double(1),
              doc: "Distillation temperature τ: both distributions are softmax(logits/τ), the KL is scaled by τ²."),
]

/// The optional teacher model of a distilling stage.
let teacherInput = InputDecl("teacher", storeKind: ModelStore.storeKind,
                             doc: "Model distilled from with loss kd or mix (any widths, same tokenizer); default: the input model before training. Give the dense model when the input is already pruned.",
                             optional: true)

/// The decoded `distillationParams`.
struct DistillationParams: Decodable {
    var loss: TrainingLoss
    var kd_weight: Double
    var temperature: Double

    /// The kernel's weights: lm 1 / kd 0, lm 0 / kd 1, or the mix.
    var weights: DistillationWeights {
        let kd: Double = switch loss {
        case .lm: 0
        case .kd: 1
        case .mix: kd_weight
        }
        return DistillationWeights(lm: Float(1 - kd), kd: Float(kd), temperature: Float(temperature))
    }
}

/// Attaches the teacher `params` ask for to `model` (nothing for loss lm) and returns a line for the
/// log and the output's provenance. The teacher is the `teacher` input, else a fresh copy of `input`
/// (the stage's model as it was before training); it must use the model's tokenizer.
func attachTeacher(_ context: StageContext, params: DistillationParams, to model: Decoder, input: ModelStore) throws -> String? {
    guard params.loss != .lm else { return nil }
    var teacherStore: ModelStore
    let origin: String
    if let url = context.inputs["teacher"] {
        teacherStore = try ModelStore(store: url)
        guard teacherStore.tokenizer.digest == input.tokenizer.digest else {
            throw DReSSStageError.badInput(stage: context.stageID, input: "teacher",
                                           what: "uses tokenizer \(teacherStore.tokenizer.digest.prefix(16)), the model \(input.tokenizer.digest.prefix(16)); distil from a model of the same family")
        }
        origin = "teacher input (hidden \(teacherStore.config.hiddenSize))"
    } else {
        // A copy: the store's parameters are the very buffers the student is about to train.
        teacherStore = input
        let frozen = ParameterSet(input.parameters.specs)
        frozen.values.assign(input.parameters.values)
        teacherStore.parameters = frozen
        origin = "the input model before training"
    }
    do {
        try model.distil(from: try teacherStore.decoder(), weights: params.weights)
    } catch {
        throw DReSSStageError.badInput(stage: context.stageID, input: "teacher", what: "cannot teach this model: \(error)")
    }
    let w = params.weights
    return String(format: "loss %@ (lm %.3g, kd %.3g, temperature %.3g) from %@", params.loss.rawValue, w.lm, w.kd, w.temperature, origin)
}
