// A training stage (regularize, finetune, train) must never publish a model that diverged: the loss
// that Training checks is measured before each update, so the last update can still blow the weights
// up (finite, but 1e5 and more) and the next stage would die on an infinite perplexity. This turns
// Training's non-finite errors into one typed error naming the stage, the step, the value and what to
// change, and checks the final model (its weights and the loss of a probe batch) before it is written.

import Foundation
import Model
import Training

struct DivergenceGuard {
    let stage: String
    /// What to change, e.g. "Lower lr (now 1.0) or lora_alpha (now 1e6)."
    let advice: String

    /// A Training error as the stage's error: divergence as `diverged`, the rest as `failed` while `doing`.
    func stageError(_ error: TrainingError, while doing: String) -> DReSSStageError {
        switch error {
        case let .nonFinite(step, loss, gradNorm):
            let what = loss.isFinite ? "the gradient norm" : "the training loss"
            return .diverged(stage: stage, step: step, what: what, value: loss.isFinite ? gradNorm : Double(loss), advice: advice)
        case let .nonFiniteHeldOut(step, loss, masked):
            return .diverged(stage: stage, step: step, what: masked ? "the held-out loss with P zeroed" : "the held-out loss",
                             value: loss, advice: advice)
        default:
            return .failed(stage: stage, step: doing, underlying: error.description)
        }
    }

    /// After the last of `steps` updates (adapters merged): every weight finite, and the mean loss of
    /// `probe` finite.
    func checkFinal(_ model: Decoder, steps: Int, probe: [TokenBatch]) throws {
        let values = model.parameters.values
        if let bad = (0..<values.count).first(where: { !values.data[$0].isFinite }) {
            throw DReSSStageError.diverged(stage: stage, step: steps, what: "a weight", value: Double(values.data[bad]), advice: advice)
        }
        let loss = heldOutLoss(model, batches: probe)
        guard loss.isFinite else {
            throw DReSSStageError.diverged(stage: stage, step: steps, what: "the final model's loss", value: loss, advice: advice)
        }
    }
}
