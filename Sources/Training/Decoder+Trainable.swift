// The decoder joins the training loop. Which sets train follows the decoder's own switches: the base
// weights when `trainBase` (its backward skips base gradients otherwise), then the LoRA adapters when
// attached. Freezing individual base tensors is the trainer's `freeze` patterns, not done here.

import Model
import Tensor

extension Decoder: TrainableModel {
    /// `parameters` when `trainBase`, followed by `adapters` when present (the optimiser's layout order).
    public var trainableSets: [ParameterSet] {
        var sets: [ParameterSet] = trainBase ? [parameters] : []
        if let adapters { sets.append(adapters) }
        return sets
    }
}
