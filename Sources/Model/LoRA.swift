// LoRA adapters (Hu et al. 2021) on the decoder's linear layers: y = x·Wᵀ + b + (α/R)·(x·Aᵀ)·Bᵀ with
// A (R, IN) small random and B (OUT, R) zero, so a fresh adapter changes nothing. Adapters live in
// their own ParameterSet (`<weight>/lora_a`, `<weight>/lora_b`) so an optimiser can train them alone;
// the forward and backward paths are in Decoder.swift (`linear`, `linearLayerBackward`).

import Tensor

extension Decoder {
    /// Short names of the linear layers LoRA can adapt (w_gate exists only with SwiGLU).
    public static let loraTargetNames = ["wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"]

    /// Adds rank-`rank` adapters with scale alpha/rank to every layer's `targets` (short names; those
    /// the architecture lacks, such as w_gate in GPT-2, are skipped). A ~ U(±1/√IN) (the Kaiming-uniform
    /// bound PEFT uses) from Philox stream i of `seed` for adapter tensor i, B = 0.
    public func addLoRA(rank: Int, alpha: Float, targets: [String] = Decoder.loraTargetNames, seed: UInt64) throws(ModelError) {
        if adapters != nil { throw .invalidLoRA("adapters are already attached") }
        if rank <= 0 { throw .invalidLoRA("rank must be positive, got \(rank)") }
        if let unknown = targets.first(where: { !Decoder.loraTargetNames.contains($0) }) { throw .unknownLoRATarget(unknown) }
        var specs: [ParameterSpec] = []
        for layer in layers {
            for (target, linear) in layer.named where targets.contains(target) {
                specs.append(ParameterSpec("\(linear.name)/lora_a", [rank, linear.IN]))
                specs.append(ParameterSpec("\(linear.name)/lora_b", [linear.OUT, rank]))
            }
        }
        if specs.isEmpty { throw .invalidLoRA("none of \(targets) is a linear layer of this \(config.architecture) decoder") }
        let set = ParameterSet(specs)
        for (i, spec) in specs.enumerated() where spec.name.hasSuffix("/lora_a") {
            let bound = 1 / Float(spec.shape[1]).squareRoot()
            var rng = RNG(seed: seed, stream: UInt64(i))
            set.value(spec.name).fillUniform(&rng, low: -bound, high: bound)
        }
        try attachLoRA(set, alpha: alpha)
    }

    /// Attaches existing adapters (e.g. read back from a store); rank is read from their shapes and
    /// must be the same everywhere. Every tensor must pair with a linear layer of this decoder.
    public func attachLoRA(_ set: ParameterSet, alpha: Float) throws(ModelError) {
        if adapters != nil { throw .invalidLoRA("adapters are already attached") }
        var updated = layers
        var used = 0, rank: Int?
        for l in updated.indices {
            for (target, linear) in updated[l].named {
                let aName = "\(linear.name)/lora_a", bName = "\(linear.name)/lora_b"
                guard set.contains(aName) || set.contains(bName) else { continue }
                guard set.contains(aName), set.contains(bName) else {
                    throw .invalidLoRA("\(linear.name) has only one of lora_a and lora_b")
                }
                let adapter = Adapter(a: Param(set, aName), b: Param(set, bName))
                let R = rank ?? adapter.rank
                rank = R
                if adapter.a.value.shape != [R, linear.IN] {
                    throw .parameterMismatch(name: aName, expected: [R, linear.IN], found: adapter.a.value.shape)
                }
                if adapter.b.value.shape != [linear.OUT, R] {
                    throw .parameterMismatch(name: bName, expected: [linear.OUT, R], found: adapter.b.value.shape)
                }
                updated[l].setAdapter(adapter, for: target)
                used += 2
            }
        }
        guard let rank else { throw .invalidLoRA("the adapter set names no linear layer of this decoder") }
        if used != set.specs.count, let stray = set.names.first(where: { name in
            !layers.contains { $0.linears.contains { name == "\($0.name)/lora_a" || name == "\($0.name)/lora_b" } }
        }) {
            throw .parameterMismatch(name: stray, expected: nil, found: set.value(stray).shape)
        }
        layers = updated
        adapters = set
        loraScale = alpha / Float(rank)
        invalidateBuffers()
    }

    /// Folds every adapter into its weight, W += (α/R)·B·A, and drops the adapters.
    public func mergeLoRA() {
        for layer in layers {
            for linear in layer.linears {
                guard let adapter = linear.adapter else { continue }
                // W (OUT, IN) += scale · B (OUT, R) · A (R, IN)
                sgemm(M: linear.OUT, N: linear.IN, K: adapter.rank, alpha: loraScale, A: adapter.b.value.data, lda: adapter.rank,
                      B: adapter.a.value.data, ldb: linear.IN, beta: 1, C: linear.weight.value.data, ldc: linear.IN)
            }
        }
        dropLoRA()
    }

    /// Removes the adapters without merging them.
    public func dropLoRA() {
        for l in layers.indices {
            for target in Decoder.loraTargetNames { layers[l].setAdapter(nil, for: target) }
        }
        adapters = nil
        loraScale = 0
        invalidateBuffers()
    }
}

extension LayerParams {
    /// Sets (or clears) the adapter of the linear layer with LoRA short name `target`.
    mutating func setAdapter(_ adapter: Adapter?, for target: String) {
        switch target {
        case "wq": wq.adapter = adapter
        case "wk": wk.adapter = adapter
        case "wv": wv.adapter = adapter
        case "wo": wo.adapter = adapter
        case "w_gate": wGate?.adapter = adapter
        case "w_up": wUp.adapter = adapter
        case "w_down": wDown.adapter = adapter
        default: preconditionFailure("LayerParams.setAdapter: unknown target \(target)")
        }
    }
}
