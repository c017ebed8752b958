// Shared helpers of the Model tests: toy configs of both families, random batches, weights scaled up
// so gradients stand well above float32 rounding, and a finite-difference gradient check.

import Foundation
import Tensor
@testable import Model

/// Toy configs covering every code path: GQA, MQA, tied/untied, LayerNorm + biases + learned
/// positions, ReLU, free widths (C ≠ NH·HD, per-layer heads and FFN, normDivisor ≠ C), and residual
/// shortcut matrices.
enum ToyConfigs {
    static let llamaGQAUntied = ModelConfig.llama(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 4, kvHeads: 2, headDim: 4,
                                                  ffn: 12, ropeTheta: 100, maxPositions: 16, tiedEmbeddings: false)
    static let llamaMQATied = ModelConfig.llama(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 2, kvHeads: 1, headDim: 4,
                                                ffn: 10, maxPositions: 16, tiedEmbeddings: true)
    static let gpt2 = ModelConfig.gpt2(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 2, ffn: 16, maxPositions: 16)
    static let opt = ModelConfig.gpt2(vocabSize: 11, hiddenSize: 8, layers: 2, heads: 2, ffn: 16, maxPositions: 16,
                                      activation: .relu, architecture: .opt)
    /// A pruned-looking LLaMA: C = 6, HD = 4 (3·4 ≠ 6), layers with different heads and FFN, D = 9.
    static let llamaIrregular = ModelConfig(
        architecture: .llama, vocabSize: 11, hiddenSize: 6, headDim: 4,
        layers: [LayerShape(heads: 3, kvHeads: 1, ffn: 10), LayerShape(heads: 2, kvHeads: 2, ffn: 7)],
        norm: .rmsnorm, normEps: 1e-5, normDivisor: 9, activation: .swiglu, positions: .rope, ropeTheta: 50,
        maxPositions: 16, bias: false, tiedEmbeddings: false)
    /// The same freedom in the GPT-2 family (LayerNorm divisor D = 10 with C = 6).
    static let gpt2Irregular = ModelConfig(
        architecture: .gpt2, vocabSize: 11, hiddenSize: 6, headDim: 4,
        layers: [LayerShape(heads: 1, kvHeads: 1, ffn: 9), LayerShape(heads: 3, kvHeads: 3, ffn: 5)],
        norm: .layernorm, normEps: 1e-5, normDivisor: 10, activation: .gelu, positions: .learned,
        maxPositions: 16, bias: true, tiedEmbeddings: true)
    /// A sliced-looking LLaMA (SliceGPT): C = 6 < D = 8, a shortcut matrix on every residual connection.
    static let llamaShortcuts = ModelConfig(
        architecture: .llama, vocabSize: 11, hiddenSize: 6, headDim: 4,
        layers: [LayerShape(heads: 2, kvHeads: 1, ffn: 10), LayerShape(heads: 2, kvHeads: 2, ffn: 7)],
        norm: .rmsnorm, normEps: 1e-5, normDivisor: 8, activation: .swiglu, positions: .rope, ropeTheta: 50,
        maxPositions: 16, bias: false, tiedEmbeddings: false, shortcuts: true)
}

/// Deterministic token ids and next-token targets; the last target of sequence 0 is ignored (−1).
func randomBatch(vocab: Int, B: Int, T: Int, seed: UInt64) -> (tokens: [Int32], targets: [Int32]) {
    var rng = RNG(seed: seed, stream: 7)
    let tokens = (0..<(B * T)).map { _ in Int32(rng.nextInt(below: vocab)) }
    var targets = (0..<(B * T)).map { _ in Int32(rng.nextInt(below: vocab)) }
    targets[T - 1] = -1
    return (tokens, targets)
}

/// Overwrites every value with O(0.3) noise (norm scales around 1) so activations are far from
/// linear and gradients far above float32 rounding; the 0.02 initialisation makes both tiny.
func randomize(_ set: ParameterSet, seed: UInt64) {
    for (i, spec) in set.specs.enumerated() {
        var rng = RNG(seed: seed, stream: 1000 + UInt64(i))
        let value = set.value(spec.name)
        value.fillNormal(&rng, mean: spec.name.hasSuffix("/scale") ? 1 : 0, std: 0.3)
    }
}

/// One tensor's comparison of analytic and finite-difference gradients.
struct GradientCheck: CustomStringConvertible {
    let name: String
    /// Largest relative error over the checked entries and the random direction.
    var worst = 0.0
    var checked = 0
    /// (finite difference, analytic) of the worst check.
    var worstPair = (0.0, 0.0)
    var description: String { "\(name): worst relative error \(worst) (fd \(worstPair.0) vs \(worstPair.1)) over \(checked) checks" }
}

/// Compares `set.grads` after the model's forward + backward with central differences of the float64
/// `ReferenceDecoder`'s loss (step 1e-5: truncation ~1e-10, rounding ~1e-11) for every tensor of `set`:
/// its 3 largest gradient entries, 2 random entries and one random unit direction through the tensor.
/// Relative error = |fd − analytic| / max(|fd|, |analytic|, floor) with floor = 1e-3 × the tensor's
/// largest gradient (or 1e-4 × the model's, for tensors whose true gradient is 0, like the key bias).
/// `referenceLoss` is the float64 loss the model's forward computes (default: the mean cross-entropy).
func checkGradients(_ model: Decoder, set: ParameterSet, tokens: [Int32], targets: [Int32], B: Int, T: Int,
                    seed: UInt64,
                    referenceLoss: ((ReferenceDecoder) -> Double)? = nil) -> [GradientCheck] {
    model.parameters.zeroGrads()
    model.adapters?.zeroGrads()
    model.forward(tokens: tokens, targets: targets, B: B, T: T)
    model.backward()
    let analytic = set.grads.array.map(Double.init)
    let modelScale = analytic.map(abs).max() ?? 0
    var reference = ReferenceDecoder(model)
    func derivative(_ name: String, _ direction: [(Int, Double)]) -> Double {
        let h = 1e-5, original = reference.weights[name]!
        func loss(at step: Double) -> Double {
            var moved = original
            for (i, d) in direction { moved[i] += step * d }
            reference.weights[name] = moved
            return referenceLoss?(reference) ?? reference.loss(tokens: tokens, targets: targets, B: B, T: T)
        }
        let difference = (loss(at: h) - loss(at: -h)) / (2 * h)
        reference.weights[name] = original
        return difference
    }
    var rng = RNG(seed: seed, stream: 77)
    var reports: [GradientCheck] = []
    for (t, spec) in set.specs.enumerated() {
        let grads = Array(analytic[set.offsets[t]..<(set.offsets[t] + spec.count)]), n = spec.count
        let floor = max(1e-3 * (grads.map(abs).max() ?? 0), 1e-4 * modelScale)
        var report = GradientCheck(name: spec.name)
        func compare(_ fd: Double, _ exact: Double) {
            let error = abs(fd - exact) / max(abs(fd), abs(exact), floor)
            if error >= report.worst { report.worst = error; report.worstPair = (fd, exact) }
            report.checked += 1
        }
        var entries = Array((0..<n).sorted { abs(grads[$0]) > abs(grads[$1]) }.prefix(3))
        for _ in 0..<2 { entries.append(rng.nextInt(below: n)) }
        for i in entries { compare(derivative(spec.name, [(i, 1)]), grads[i]) }
        // A random unit direction through the whole tensor: catches errors spread over many entries.
        var direction = (0..<n).map { _ in Double(rng.nextNormal()) }
        let norm = direction.map { $0 * $0 }.reduce(0, +).squareRoot()
        direction = direction.map { $0 / norm }
        compare(derivative(spec.name, Array(direction.enumerated())), zip(direction, grads).map(*).reduce(0, +))
        reports.append(report)
    }
    return reports
}

/// Largest |a − b| over two equally long float buffers.
func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.count == b.count)
    return zip(a.array, b.array).map { abs($0 - $1) }.max() ?? 0
}
