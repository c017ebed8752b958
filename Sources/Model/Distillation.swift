// Knowledge distillation: a teacher decoder whose next-token distributions the student's training
// forward is pulled towards (issue 10). The teacher runs its inference forward on the student's batch
// in the same step; its LM head then runs chunk by chunk beside the student's, and the fused
// `distillationForwardBackward` kernel turns both chunks into the student's loss and dlogits, so no
// (B·T, V) buffer exists beyond one chunk of each. Why distil: the KL to the dense model has zero
// gradient wherever the student still agrees with it, so only the damage done by pruning is trained
// against, while the LM loss on a small one-genre text also drifts the whole model (design.md).
// Not here: the kernel (Tensor/Kernels/Distillation.swift), the stage parameters (Stages).

import Tensor

/// A teacher and how its KL mixes with the LM loss in `Decoder.forward`.
public struct Distillation {
    /// The model distilled from; only its inference path runs, it is never changed. Must share the
    /// student's vocabulary (any widths and depth).
    public let teacher: Decoder
    /// Loss weights and temperature; lm 0, kd 1 is pure distillation.
    public let weights: DistillationWeights

}

extension Decoder {
    /// From now on training forwards mix the LM loss and the KL to `teacher`'s distributions as
    /// `weights` say (nil: plain LM loss again). Throws when the vocabularies differ or the teacher
    /// shares this decoder's weights (its distributions would move with every update).
    public func distil(from teacher: Decoder?, weights: DistillationWeights) throws(ModelError) {
        guard let teacher else {
            distillation = nil
            return
        }
        guard teacher !== self, teacher.parameters !== parameters else {
            throw .invalidConfig(field: "teacher", reason: "shares the student's weights, so it would move with every update; distil from a separate copy")
        }
        guard teacher.config.vocabSize == config.vocabSize else {
            throw .invalidConfig(field: "teacher", reason: "has a vocabulary of \(teacher.config.vocabSize), the student \(config.vocabSize)")
        }
        distillation = Distillation(teacher: teacher, weights: weights)
    }

    /// Rows r0 ..< r0 + rows of this (teacher) decoder's logits, computed from `top`, the final-norm
    /// output of its last inference forward, into its own chunk buffer.
    func teacherLogits(top: Tensor, r0: Int, rows: Int) -> UnsafeMutablePointer<Float> {
        guard let work = inference else { preconditionFailure("Decoder.teacherLogits: run the teacher's forward first") }
        precondition(rows <= work.logits.shape[0], "Decoder.teacherLogits: \(rows) rows exceed the chunk of \(work.logits.shape[0])")
        linearForward(out: work.logits.data, inp: top.data + r0 * config.hiddenSize, weight: lmHead.value.data, bias: nil,
                      N: rows, IN: config.hiddenSize, OUT: config.vocabSize)
        return work.logits.data
    }

    /// Rows of one teacher logits chunk (its inference workspace must exist).
    var teacherChunkRows: Int { inference?.logits.shape[0] ?? 0 }
}
