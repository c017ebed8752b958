// The transformer decoder: one model for both families (LLaMA: RMSNorm, RoPE, GQA, SwiGLU, no biases;
// GPT-2/OPT: LayerNorm with shift, learned positions, GELU/ReLU, biases), with a training forward and
// a hand-written backward in which every op is paired with its backward (llm.c's train_gpt2.c), an
// evaluation forward (logits, chunked negative log-likelihood) and LoRA adapters on any linear layer.
// Generation with a KV cache is in Decoder+Generation.swift, adapters in LoRA.swift, buffer planning
// in Activations.swift. Not checkpoint import (Data) and not optimisers (Training).
//
// Shapes: B sequences of T tokens, N = B·T rows; C hidden width; per layer NH/NKV heads of HD,
// Q = NH·HD, K = NKV·HD, F MLP width; V vocabulary. One layer, bottom-up (x: the residual stream):
//   n1  = norm(x)                         (N, C)        attn_norm
//   q   = rope(n1·Wqᵀ + bq)               (N, Q)        k, v likewise (N, K); rope only for LLaMA
//   att = causal GQA attention(q, k, v)   (N, Q)
//   mid = x + att·Woᵀ + bo                (N, C)
//   n2  = norm(mid)                       (N, C)        mlp_norm
//   h   = silu(n2·Wgᵀ) ⊙ (n2·Wuᵀ)         (N, F)        or act(n2·Wuᵀ + bu) for GELU/ReLU
//   x'  = mid + h·Wdᵀ + bd                (N, C)
// Around the layers: x₀ = E[tokens] (+ P[positions]); logits = norm(x_L)·Wheadᵀ, Whead = E when tied.
// SliceGPT models (config.hasShortcuts) carry a matrix on each residual connection, S (C, C) as
// (out, in): mid = x·S_attnᵀ + att·Woᵀ and x' = mid·S_mlpᵀ + h·Wdᵀ (Model/Slicing.swift).
// Norms divide by config.normDivisor D, not C, so deleting all-zero hidden channels changes nothing.

import Foundation
import Tensor

/// A decoder-only transformer with its parameters, optional LoRA adapters, and activation buffers.
public final class Decoder {
    /// Architecture and widths.
    public let config: ModelConfig
    /// Base weights and their gradients, laid out as `config.parameterSpecs`.
    public let parameters: ParameterSet
    /// LoRA adapters (`<weight>/lora_a` [R, IN], `<weight>/lora_b` [OUT, R]), nil when none.
    public internal(set) var adapters: ParameterSet?
    /// alpha / rank of the current adapters (0 without adapters).
    public internal(set) var loraScale: Float = 0
    /// When false, `backward()` leaves every base gradient untouched (LoRA-only training) and only
    /// adapter gradients accumulate.
    public var trainBase = true
    /// Rows of the LM head computed at once: at most this many × V logits exist at any time.
    /// Changing it re-plans the buffers.
    public var lmHeadChunkRows: Int {
        didSet { invalidateBuffers() }
    }
    /// The teacher training forwards distil from (`distil(from:weights:)`, Distillation.swift); nil
    /// trains on the LM loss alone.
    public internal(set) var distillation: Distillation?

    var layers: [LayerParams]
    let embedding: Param
    let positionTable: Param?
    let finalNorm: NormParams
    let lmHead: Param
    let rope: RopeTable?

    var training: TrainingArena?
    var trainingBytes = 0
    var inference: InferenceWorkspace?
    /// The batch the last training forward saw, for `backward()`.
    var pending: (tokens: [Int32], B: Int, T: Int)?

    /// A decoder over existing parameters (shared, not copied). Throws when the config cannot run or
    /// the parameter names or shapes differ from `config.parameterSpecs`.
    public init(config: ModelConfig, parameters: ParameterSet) throws(ModelError) {
        try config.validate()
        let expected = config.parameterSpecs
        for spec in expected {
            guard let i = parameters.index(of: spec.name) else {
                throw .parameterMismatch(name: spec.name, expected: spec.shape, found: nil)
            }
            if parameters.specs[i].shape != spec.shape {
                throw .parameterMismatch(name: spec.name, expected: spec.shape, found: parameters.specs[i].shape)
            }
        }
        if parameters.specs.count != expected.count,
           let extra = parameters.specs.first(where: { spec in !expected.contains { $0.name == spec.name } }) {
            throw .parameterMismatch(name: extra.name, expected: nil, found: extra.shape)
        }
        self.config = config
        self.parameters = parameters
        func param(_ name: String) -> Param { Param(parameters, name) }
        func norm(_ prefix: String) -> NormParams {
            NormParams(scale: param("\(prefix)/scale"), shift: config.norm == .layernorm ? param("\(prefix)/shift") : nil)
        }
        func linear(_ weight: String, _ bias: String?) -> LinearParams {
            LinearParams(name: weight, weight: param(weight), bias: bias.flatMap { config.bias ? param($0) : nil })
        }
        embedding = param("embed/tokens")
        positionTable = config.positions == .learned ? param("embed/positions") : nil
        finalNorm = norm("final_norm")
        lmHead = config.tiedEmbeddings ? embedding : param("lm_head")
        rope = config.positions == .rope
            ? RopeTable(headDim: config.headDim, theta: config.ropeTheta, maxPositions: config.maxPositions) : nil
        layers = config.layers.enumerated().map { l, shape in
            let p = "layers/\(l)"
            return LayerParams(
                shape: shape, attnNorm: norm("\(p)/attn_norm"),
                wq: linear("\(p)/attn/wq", "\(p)/attn/bq"), wk: linear("\(p)/attn/wk", "\(p)/attn/bk"),
                wv: linear("\(p)/attn/wv", "\(p)/attn/bv"), wo: linear("\(p)/attn/wo", "\(p)/attn/bo"),
                mlpNorm: norm("\(p)/mlp_norm"),
                wGate: config.activation == .swiglu ? linear("\(p)/mlp/w_gate", nil) : nil,
                wUp: linear("\(p)/mlp/w_up", "\(p)/mlp/b_up"), wDown: linear("\(p)/mlp/w_down", "\(p)/mlp/b_down"),
                attnShortcut: config.hasShortcuts ? param("\(p)/attn/shortcut") : nil,
                mlpShortcut: config.hasShortcuts ? param("\(p)/mlp/shortcut") : nil)
        }
        // ~32M logits (128 MB) per chunk: the LM head's three products (logits, dX, dW) ran 1.2-1.4× faster
        // at 682 rows than at 170 (V = 49152, 2048 rows, OpenBLAS on 2 threads; docs/results.md), and
        // the buffer stays a small part of a training step's memory.
        lmHeadChunkRows = max(16, (1 << 25) / config.vocabSize)
    }

    /// A freshly initialised decoder: weights N(0, 0.02²) (GPT-2), the residual output projections wo
    /// and w_down scaled by 1/√(2L) (GPT-2 §2.3), norm scales 1, residual shortcut matrices the
    /// identity, biases and shifts 0. Parameter i of
    /// `parameterSpecs` draws from Philox stream i of `seed`, so the bytes depend only on (config, seed).
    public static func initialized(config: ModelConfig, seed: UInt64) -> Decoder {
        let parameters = ParameterSet(config.parameterSpecs)
        let residualScale = 1 / Float(2 * max(config.layerCount, 1)).squareRoot()
        let specs = parameters.specs
        // Streams are independent, so tensors fill in parallel without changing a bit.
        Threading.parallelFor(specs.count) { range in
            for i in range {
                let name = specs[i].name, value = parameters.value(name)
                if name.hasSuffix("/scale") {
                    value.data.update(repeating: 1, count: value.count)
                } else if name.hasSuffix("/shortcut") {
                    let C = specs[i].shape[0]
                    for c in 0..<C { value.data[c * C + c] = 1 }
                } else if specs[i].shape.count == 2 {
                    let residual = name.hasSuffix("/attn/wo") || name.hasSuffix("/mlp/w_down")
                    var rng = RNG(seed: seed, stream: UInt64(i))
                    value.fillNormal(&rng, std: 0.02 * (residual ? residualScale : 1))
                }
                // Biases and shifts stay at the zero the ParameterSet starts with.
            }
        }
        do {
            return try Decoder(config: config, parameters: parameters)
        } catch {
            preconditionFailure("Decoder.initialized: \(error)")
        }
    }

    // MARK: - Training forward and backward

    /// Training forward over B sequences of T tokens (row-major (B, T) ids). Returns the mean
    /// cross-entropy over the targets that are not −1 and keeps the activations `backward()` needs.
    ///
    /// The LM head and the loss are fused over chunks of `lmHeadChunkRows` rows so no (B·T × V) logits
    /// exist: each chunk's logits become dlogits at once, which are turned into the gradient of the
    /// final norm's output (kept for `backward()`) and — when `trainBase` — ACCUMULATED into the LM
    /// head's weight gradient right here. So call `backward()` after every forward with targets, and
    /// use `negativeLogLikelihood` (or `loss`) when you only want the loss.
    /// With `targets` nil only the activations are computed and 0 is returned (no backward possible).
    /// With a `distillation` teacher the loss is its mix of cross-entropy and KL (Distillation.swift).
    @discardableResult
    public func forward(tokens: [Int32], targets: [Int32]?, B: Int, T: Int) -> Float {
        checkBatch(tokens, B: B, T: T, start: 0)
        if let targets { precondition(targets.count == B * T, "Decoder.forward: \(targets.count) targets for B·T = \(B * T)") }
        let arena = trainingArena(B: B, T: T)
        let N = B * T
        embed(tokens, into: arena.layers.first?.input ?? arena.top, B: B, T: T, start: 0)
        for (l, acts) in arena.layers.enumerated() {
            let output = l + 1 < arena.layers.count ? arena.layers[l + 1].input : arena.top
            layerForward(layers[l], acts, output: output, scratch: arena.scratch, B: B, T: T, cache: nil)
        }
        normForward(finalNorm, arena.finalNorm, inp: arena.top, N: N)
        guard let targets else {
            pending = nil
            return 0
        }
        let count = targets.reduce(0) { $0 + ($1 == -1 ? 0 : 1) }
        // d(mean loss)/d(row loss) = 1/count for counted rows (ignored rows get no gradient anyway).
        arena.dlosses.data.update(repeating: count > 0 ? 1 / Float(count) : 0, count: N)
        arena.dtop.zero()
        let dhead = trainBase ? lmHead.grad.data : nil
        var total = 0.0
        // With a teacher, its layers run now on the same batch; its head runs per chunk below.
        let teacherTop = distillation.map { $0.teacher.inferenceForward(tokens, B: B, T: T, cache: nil) }
        let chunkRows = distillation.map { min(arena.logits.shape[0], $0.teacher.teacherChunkRows) } ?? arena.logits.shape[0]
        targets.withUnsafeBufferPointer { targetsBuffer in
            let targetPointer = targetsBuffer.baseAddress!
            forEachChunk(N, rows: chunkRows) { r0, rows in
                let logits = arena.logits.data, inp = arena.finalNorm.out.data + r0 * config.hiddenSize
                // logits (rows, V) → losses → dlogits in place → dtop rows and dWhead.
                linearForward(out: logits, inp: inp, weight: lmHead.value.data, bias: nil, N: rows, IN: config.hiddenSize, OUT: config.vocabSize)
                if let distillation, let teacherTop {
                    let teacherLogits = distillation.teacher.teacherLogits(top: teacherTop, r0: r0, rows: rows)
                    distillationForwardBackward(losses: arena.losses.data + r0, dlogits: logits, student: logits, teacher: teacherLogits,
                                                targets: targetPointer + r0, dlosses: arena.dlosses.data + r0, N: rows,
                                                V: config.vocabSize, weights: distillation.weights)
                } else {
                    crossEntropyForward(losses: arena.losses.data + r0, logits: logits, targets: targetPointer + r0, N: rows, V: config.vocabSize)
                    crossEntropyBackward(dlogits: logits, logits: logits, targets: targetPointer + r0, dlosses: arena.dlosses.data + r0,
                                         N: rows, V: config.vocabSize)
                }
                linearBackward(dinp: arena.dtop.data + r0 * config.hiddenSize, dweight: dhead, dbias: nil, dout: logits, inp: inp,
                               weight: lmHead.value.data, N: rows, IN: config.hiddenSize, OUT: config.vocabSize)
            }
            for n in 0..<N { total += Double(arena.losses.data[n]) }
        }
        pending = (tokens, B, T)
        return count > 0 ? Float(total / Double(count)) : 0
    }

    /// Backward of the last `forward(tokens:targets:B:T:)` with targets: accumulates the gradient of
    /// its mean loss into `parameters.grads` (skipped when `trainBase` is false) and `adapters!.grads`.
    public func backward() {
        backward(observingStream: nil)
    }

    /// `backward()` that also shows `observe(point, x, dx)` the residual stream x (N, C) and the full
    /// gradient of the loss with respect to it, dx, at each of the 2L + 1 points where a norm reads the
    /// stream: point 2l = layer l's attn_norm input, 2l + 1 = its mlp_norm input, 2L = the final
    /// norm's input; called from the top down. Both tensors are the arena's, valid during the call only.
    /// dx at a norm input is `dres` right after that norm's backward: the gradient arriving from above
    /// along the residual path plus the norm's own branch, i.e. all of dL/dx.
    func backward(observingStream observe: ((_ point: Int, _ x: Tensor, _ dx: Tensor) -> Void)?) {
        guard let (tokens, B, T) = pending, let arena = training else {
            preconditionFailure("Decoder.backward: call forward(tokens:targets:B:T:) with targets first")
        }
        pending = nil
        let N = B * T, C = config.hiddenSize, g = arena.grads
        g.dres.zero()
        normBackward(finalNorm, arena.finalNorm, dinp: g.dres, dout: arena.dtop, inp: arena.top, N: N)
        observe?(2 * layers.count, arena.top, g.dres)
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            layerBackward(layers[l], arena.layers[l], scratch: arena.scratch, grads: g, B: B, T: T,
                          observe: observe.map { observe in { observe(2 * l + $0, $1, $2) } })
        }
        guard trainBase else { return }
        // x₀ = E[tokens] + P[t]: both tables receive dres (the tied head's share came in the forward).
        tokens.withUnsafeBufferPointer { ids in
            embeddingBackward(dtable: embedding.grad.data, dout: g.dres.data, ids: ids.baseAddress!, N: N, C: C)
        }
        if let positionTable {
            for b in 0..<B { addInPlace(out: positionTable.grad.data, inp: g.dres.data + b * T * C, N: T * C) }
        }
    }

    /// Forward of one layer (see the file header). `output` receives the residual stream after the
    /// layer; it may be `acts.input` (inference updates the stream in place). With a cache, keys and
    /// values are appended at positions cache.length..< and attention runs over the cache.
    func layerForward(_ p: LayerParams, _ a: LayerActivations, output: Tensor, scratch s: LayerScratch,
                      B: Int, T: Int, cache: (KVCache, layer: Int)?) {
        attentionBlockForward(p, a, scratch: s, B: B, T: T, cache: cache)
        mlpBlockForward(p, a, output: output, scratch: s, N: B * T)
    }

    /// The attention half of `layerForward`: a.input → a.mid.
    func attentionBlockForward(_ p: LayerParams, _ a: LayerActivations, scratch s: LayerScratch,
                               B: Int, T: Int, cache: (KVCache, layer: Int)?) {
        let N = B * T, HD = config.headDim
        let NH = p.shape.heads, NKV = p.shape.kvHeads
        let start = cache?.0.length ?? 0
        normForward(p.attnNorm, a.attnNorm, inp: a.input, N: N)
        linear(p.wq, out: a.q, inp: a.attnNorm.out, N: N, inner: a.loraInner["wq"])
        linear(p.wk, out: a.k, inp: a.attnNorm.out, N: N, inner: a.loraInner["wk"])
        linear(p.wv, out: a.v, inp: a.attnNorm.out, N: N, inner: a.loraInner["wv"])
        if let rope {
            ropeForward(out: a.q.data, inp: a.q.data, table: rope, B: B, T: T, NH: NH, HD: HD, start: start)
            ropeForward(out: a.k.data, inp: a.k.data, table: rope, B: B, T: T, NH: NKV, HD: HD, start: start)
        }
        if let (cache, l) = cache {
            cache.append(layer: l, k: a.k, v: a.v, T: T)
            attentionCachedForward(out: a.att.data, q: a.q.data, kCache: cache.keys[l].data, vCache: cache.values[l].data,
                                   B: B, Tq: T, Tk: cache.capacity, start: start, NH: NH, NKV: NKV, HD: HD)
        } else {
            // All B·NH heads in one parallel loop; the probabilities live one head at a time per worker.
            attentionForward(out: a.att.data, q: a.q.data, k: a.k.data, v: a.v.data, B: B, T: T, NH: NH, NKV: NKV,
                             HD: HD, scratch: s.attentionScratch)
        }
        linear(p.wo, out: s.proj, inp: a.att, N: N, inner: a.loraInner["wo"])
        residualConnection(p.attnShortcut, out: a.mid, stream: a.input, branch: s.proj, N: N)
    }

    /// The MLP half of `layerForward`: a.mid → `output`.
    func mlpBlockForward(_ p: LayerParams, _ a: LayerActivations, output: Tensor, scratch s: LayerScratch, N: Int) {
        let F = p.shape.ffn
        normForward(p.mlpNorm, a.mlpNorm, inp: a.mid, N: N)
        if let wGate = p.wGate {
            linear(wGate, out: a.gate, inp: a.mlpNorm.out, N: N, inner: a.loraInner["w_gate"])
        }
        linear(p.wUp, out: a.up, inp: a.mlpNorm.out, N: N, inner: a.loraInner["w_up"])
        mlpActivation(a, N: N, F: F)
        linear(p.wDown, out: s.proj, inp: a.hidden, N: N, inner: a.loraInner["w_down"])
        residualConnection(p.mlpShortcut, out: output, stream: a.mid, branch: s.proj, N: N)
    }

    /// Backward of `layerForward` (training, no cache). On entry `grads.dres` holds the gradient of the
    /// layer's output; on exit that of its input. Weight gradients accumulate. `observe(point, x, dx)`
    /// sees the stream and its gradient at the mlp_norm input (point 1), then the attn_norm input (0).
    func layerBackward(_ p: LayerParams, _ a: LayerActivations, scratch s: LayerScratch, grads g: BackwardScratch,
                       B: Int, T: Int, observe: ((_ point: Int, _ x: Tensor, _ dx: Tensor) -> Void)? = nil) {
        let N = B * T, HD = config.headDim
        let NH = p.shape.heads, NKV = p.shape.kvHeads, F = p.shape.ffn, Q = NH * HD, K = NKV * HD
        // MLP block: x' = mid + down(h). dres is both d(mid) (residual path) and d(down's output).
        let dhidden = g.dhidden.prefixColumns(F, rows: N), dup = g.dup.prefixColumns(F, rows: N)
        dhidden.zero()
        mlpActivation(a, N: N, F: F)  // h was not kept (see LayerActivations.hidden): recompute it
        linearLayerBackward(p.wDown, dinp: dhidden, dout: g.dres, inp: a.hidden, N: N, inner: a.loraInner["w_down"], dinner: g.dlora)
        residualConnectionBackward(p.mlpShortcut, dres: g.dres, stream: a.mid, scratch: g.dshortcut, N: N)
        dup.zero()
        g.dnorm.zero()
        if let wGate = p.wGate {
            let dgate = g.dgate.prefixColumns(F, rows: N)
            dgate.zero()
            swigluBackward(dgate: dgate.data, dup: dup.data, dout: dhidden.data, gate: a.gate.data, up: a.up.data, N: N * F)
            linearLayerBackward(wGate, dinp: g.dnorm, dout: dgate, inp: a.mlpNorm.out, N: N, inner: a.loraInner["w_gate"], dinner: g.dlora)
        } else if config.activation == .relu {
            reluBackward(dinp: dup.data, dout: dhidden.data, inp: a.up.data, N: N * F)
        } else {
            geluBackward(dinp: dup.data, dout: dhidden.data, inp: a.up.data, N: N * F)
        }
        linearLayerBackward(p.wUp, dinp: g.dnorm, dout: dup, inp: a.mlpNorm.out, N: N, inner: a.loraInner["w_up"], dinner: g.dlora)
        normBackward(p.mlpNorm, a.mlpNorm, dinp: g.dres, dout: g.dnorm, inp: a.mid, N: N)
        observe?(1, a.mid, g.dres)
        // Attention block: mid = x + o(att); dres is now d(mid).
        let datt = g.datt.prefixColumns(Q, rows: N), dq = g.dq.prefixColumns(Q, rows: N)
        let dk = g.dk.prefixColumns(K, rows: N), dv = g.dv.prefixColumns(K, rows: N)
        datt.zero()
        linearLayerBackward(p.wo, dinp: datt, dout: g.dres, inp: a.att, N: N, inner: a.loraInner["wo"], dinner: g.dlora)
        residualConnectionBackward(p.attnShortcut, dres: g.dres, stream: a.input, scratch: g.dshortcut, N: N)
        dq.zero()
        dk.zero()
        dv.zero()
        // The probabilities were not kept (they would be (B, NH, T, T) per layer): the backward
        // recomputes each head's just before using them.
        attentionBackward(dq: dq.data, dk: dk.data, dv: dv.data, dout: datt.data, q: a.q.data, k: a.k.data, v: a.v.data,
                          B: B, T: T, NH: NH, NKV: NKV, HD: HD, scratch: s.attentionScratch)
        var dqLinear = dq, dkLinear = dk
        if let rope {
            // The rotation is linear: d(pre-RoPE) = rotation⁻¹(d(post-RoPE)).
            dqLinear = g.dqPre.prefixColumns(Q, rows: N)
            dkLinear = g.dkPre.prefixColumns(K, rows: N)
            dqLinear.zero()
            dkLinear.zero()
            ropeBackward(dinp: dqLinear.data, dout: dq.data, table: rope, B: B, T: T, NH: NH, HD: HD, start: 0)
            ropeBackward(dinp: dkLinear.data, dout: dk.data, table: rope, B: B, T: T, NH: NKV, HD: HD, start: 0)
        }
        g.dnorm.zero()
        linearLayerBackward(p.wq, dinp: g.dnorm, dout: dqLinear, inp: a.attnNorm.out, N: N, inner: a.loraInner["wq"], dinner: g.dlora)
        linearLayerBackward(p.wk, dinp: g.dnorm, dout: dkLinear, inp: a.attnNorm.out, N: N, inner: a.loraInner["wk"], dinner: g.dlora)
        linearLayerBackward(p.wv, dinp: g.dnorm, dout: dv, inp: a.attnNorm.out, N: N, inner: a.loraInner["wv"], dinner: g.dlora)
        normBackward(p.attnNorm, a.attnNorm, dinp: g.dres, dout: g.dnorm, inp: a.input, N: N)
        observe?(0, a.input, g.dres)
    }

    // MARK: - Paired ops (forward, then backward)

    /// out = stream + branch, or stream·Sᵀ + branch when the connection carries a shortcut matrix S
    /// (then `branch` is overwritten with the result). out, stream, branch: (N, C); out may be stream.
    func residualConnection(_ shortcut: Param?, out: Tensor, stream: Tensor, branch: Tensor, N: Int) {
        let C = config.hiddenSize
        guard let shortcut else {
            residualForward(out: out.data, inp1: stream.data, inp2: branch.data, N: N * C)
            return
        }
        // Summed in the branch first: in inference `out` and `stream` are one buffer.
        residualMatrixForward(out: branch.data, inp1: stream.data, weight: shortcut.value.data, inp2: branch.data, N: N, C: C)
        out.data.update(from: branch.data, count: N * C)
    }

    /// Backward of `residualConnection` along the stream: `dres` (N, C) holds d(out) on entry (the branch
    /// reads that as its gradient before this call) and d(stream) through the connection on exit; dS
    /// accumulates when `trainBase`. The identity connection leaves `dres` as it is. scratch: (N, C).
    func residualConnectionBackward(_ shortcut: Param?, dres: Tensor, stream: Tensor, scratch: Tensor, N: Int) {
        guard let shortcut else { return }
        let C = config.hiddenSize
        scratch.zero()
        residualMatrixBackward(dinp1: scratch.data, dweight: trainBase ? shortcut.grad.data : nil, dinp2: nil, dout: dres.data,
                               inp1: stream.data, weight: shortcut.value.data, N: N, C: C)
        dres.data.update(from: scratch.data, count: N * C)
    }

    /// hidden = silu(gate) ⊙ up, gelu(up) or relu(up); (N, F). Its backward is inline in layerBackward.
    func mlpActivation(_ a: LayerActivations, N: Int, F: Int) {
        switch config.activation {
        case .swiglu: swigluForward(out: a.hidden.data, gate: a.gate.data, up: a.up.data, N: N * F)
        case .gelu: geluForward(out: a.hidden.data, inp: a.up.data, N: N * F)
        case .relu: reluForward(out: a.hidden.data, inp: a.up.data, N: N * F)
        }
    }

    /// out = inp·Wᵀ + b (+ scale·(inp·Aᵀ)·Bᵀ with an adapter; inp·Aᵀ is kept in `inner`, (N, R)).
    func linear(_ p: LinearParams, out: Tensor, inp: Tensor, N: Int, inner: Tensor?) {
        linearForward(out: out.data, inp: inp.data, weight: p.weight.value.data, bias: p.bias?.value.data,
                      N: N, IN: p.IN, OUT: p.OUT)
        if let adapter = p.adapter, let inner {
            linearForward(out: inner.data, inp: inp.data, weight: adapter.a.value.data, bias: nil, N: N, IN: p.IN, OUT: adapter.rank)
            sgemm(transB: true, M: N, N: p.OUT, K: adapter.rank, alpha: loraScale, A: inner.data, lda: adapter.rank,
                  B: adapter.b.value.data, ldb: adapter.rank, beta: 1, C: out.data, ldc: p.OUT)
        }
    }

    /// Backward of `linear`: dinp += dout·W (+ adapter path); dW, db when `trainBase`; dA, dB when adapted.
    /// dinner: (N, R) scratch for d(inp·Aᵀ).
    func linearLayerBackward(_ p: LinearParams, dinp: Tensor, dout: Tensor, inp: Tensor, N: Int, inner: Tensor?, dinner: Tensor) {
        linearBackward(dinp: dinp.data, dweight: trainBase ? p.weight.grad.data : nil,
                              dbias: trainBase ? p.bias?.grad.data : nil, dout: dout.data, inp: inp.data,
                              weight: p.weight.value.data, N: N, IN: p.IN, OUT: p.OUT)
        guard let adapter = p.adapter, let inner else { return }
        let R = adapter.rank
        // dinner = scale·dout·B; dB += scale·doutᵀ·inner; then the A linear: dA += dinnerᵀ·inp, dinp += dinner·A.
        sgemm(M: N, N: R, K: p.OUT, alpha: loraScale, A: dout.data, lda: p.OUT, B: adapter.b.value.data, ldb: R,
              beta: 0, C: dinner.data, ldc: R)
        sgemm(transA: true, M: p.OUT, N: R, K: N, alpha: loraScale, A: dout.data, lda: p.OUT, B: inner.data, ldb: R,
              beta: 1, C: adapter.b.grad.data, ldc: R)
        linearBackward(dinp: dinp.data, dweight: adapter.a.grad.data, dbias: nil, dout: dinner.data, inp: inp.data,
                              weight: adapter.a.value.data, N: N, IN: p.IN, OUT: R)
    }

    /// RMSNorm or LayerNorm over rows of `inp` (N, C), dividing by normDivisor.
    func normForward(_ p: NormParams, _ a: NormActivations, inp: Tensor, N: Int) {
        let C = config.hiddenSize, D = config.normDivisor
        if let shift = p.shift {
            layernormForward(out: a.out.data, mean: a.mean.data, rstd: a.rstd.data, inp: inp.data, weight: p.scale.value.data,
                             bias: shift.value.data, N: N, C: C, D: D, eps: config.normEps)
        } else {
            rmsnormForward(out: a.out.data, rstd: a.rstd.data, inp: inp.data, weight: p.scale.value.data,
                           N: N, C: C, D: D, eps: config.normEps)
        }
    }

    /// Backward of `normForward`: dinp += …; scale (and shift) gradients when `trainBase`.
    func normBackward(_ p: NormParams, _ a: NormActivations, dinp: Tensor, dout: Tensor, inp: Tensor, N: Int) {
        let C = config.hiddenSize, D = config.normDivisor
        if let shift = p.shift {
            layernormBackward(dinp: dinp.data, dweight: trainBase ? p.scale.grad.data : nil, dbias: trainBase ? shift.grad.data : nil,
                              dout: dout.data, inp: inp.data, weight: p.scale.value.data, mean: a.mean.data, rstd: a.rstd.data,
                              N: N, C: C, D: D)
        } else {
            rmsnormBackward(dinp: dinp.data, dweight: trainBase ? p.scale.grad.data : nil, dout: dout.data, inp: inp.data,
                            weight: p.scale.value.data, rstd: a.rstd.data, N: N, C: C, D: D)
        }
    }

    /// x₀ = E[tokens] (+ P[start + t] for learned positions). out: (B·T, C).
    func embed(_ tokens: [Int32], into out: Tensor, B: Int, T: Int, start: Int) {
        let C = config.hiddenSize
        tokens.withUnsafeBufferPointer { ids in
            embeddingForward(out: out.data, ids: ids.baseAddress!, table: embedding.value.data, N: B * T, C: C)
        }
        if let positionTable {
            for b in 0..<B { addInPlace(out: out.data + b * T * C, inp: positionTable.value.data + start * C, N: T * C) }
        }
    }

    // MARK: - Evaluation

    /// Logits of every position: (B, T, V). Allocates the full result; use `negativeLogLikelihood`
    /// for perplexity over large vocabularies.
    public func logits(tokens: [Int32], B: Int, T: Int) -> Tensor {
        let out = Tensor(zeros: [B, T, config.vocabSize])
        let top = inferenceForward(tokens, B: B, T: T, cache: nil)
        linearForward(out: out.data, inp: top.data, weight: lmHead.value.data, bias: nil,
                      N: B * T, IN: config.hiddenSize, OUT: config.vocabSize)
        return out
    }

    /// Σ −log p(target) over targets that are not −1, and their count, computed over row chunks of the
    /// LM head (no (B·T × V) buffer, no activations kept). Perplexity = exp(sum / count).
    public func negativeLogLikelihood(tokens: [Int32], targets: [Int32], B: Int, T: Int) -> (sum: Double, count: Int) {
        precondition(targets.count == B * T, "Decoder.negativeLogLikelihood: \(targets.count) targets for B·T = \(B * T)")
        let top = inferenceForward(tokens, B: B, T: T, cache: nil)
        guard let work = inference else { preconditionFailure("Decoder: inference workspace missing after a forward") }
        var sum = 0.0
        targets.withUnsafeBufferPointer { targetsBuffer in
            forEachChunk(B * T, rows: work.logits.shape[0]) { r0, rows in
                linearForward(out: work.logits.data, inp: top.data + r0 * config.hiddenSize, weight: lmHead.value.data, bias: nil,
                              N: rows, IN: config.hiddenSize, OUT: config.vocabSize)
                crossEntropyForward(losses: work.losses.data + r0, logits: work.logits.data, targets: targetsBuffer.baseAddress! + r0,
                                    N: rows, V: config.vocabSize)
            }
        }
        for n in 0..<(B * T) { sum += Double(work.losses.data[n]) }
        return (sum, targets.reduce(0) { $0 + ($1 == -1 ? 0 : 1) })
    }

    /// Mean cross-entropy over targets that are not −1, without gradients or kept activations.
    public func loss(tokens: [Int32], targets: [Int32], B: Int, T: Int) -> Float {
        let (sum, count) = negativeLogLikelihood(tokens: tokens, targets: targets, B: B, T: T)
        return count > 0 ? Float(sum / Double(count)) : 0
    }

    /// Runs the layers and the final norm with one layer's worth of buffers; returns the final
    /// norm's output (B·T, C), valid until the next forward. With a cache, positions continue at
    /// cache.length and the cache grows by T.
    func inferenceForward(_ tokens: [Int32], B: Int, T: Int, cache: KVCache?) -> Tensor {
        let start = cache?.length ?? 0
        checkBatch(tokens, B: B, T: T, start: start)
        let work = inferenceWorkspace(B: B, T: T)
        embed(tokens, into: work.stream, B: B, T: T, start: start)
        for (l, p) in layers.enumerated() {
            layerForward(p, work.layer, output: work.stream, scratch: work.scratch, B: B, T: T, cache: cache.map { ($0, l) })
        }
        cache?.advance(by: T)
        normForward(finalNorm, work.finalNorm, inp: work.stream, N: B * T)
        return work.finalNorm.out
    }

    // MARK: - Cost and memory

    /// Floating-point operations per token of a forward (`training` false) or forward + backward at
    /// sequence length T, counting what this implementation runs: every linear layer (2·IN·OUT per
    /// token forward, twice that backward), LoRA paths, causal attention (QKᵀ and P·V over the T(T+1)/2
    /// visible pairs; backward four such products plus recomputing QKᵀ), and the LM head
    /// (training: logits, dinput, dweight). Elementwise work is not counted.
    public func flopsPerToken(T: Int, training: Bool) -> Double {
        let C = Double(config.hiddenSize), HD = Double(config.headDim), V = Double(config.vocabSize)
        let visible = Double(T + 1) / 2  // mean number of keys a query sees
        var linearFlops = 2 * C * V, attention = 0.0
        for p in layers {
            for linear in p.linears {
                linearFlops += 2 * Double(linear.IN * linear.OUT)
                if let adapter = linear.adapter { linearFlops += 2 * Double(adapter.rank * (linear.IN + linear.OUT)) }
            }
            attention += 2 * 2 * Double(p.shape.heads) * HD * visible
            if p.attnShortcut != nil { linearFlops += 2 * 2 * C * C }  // both residual shortcut matrices
        }
        return training ? 3 * linearFlops + 3.5 * attention : linearFlops + attention
    }

    /// The matrix products of the linear layers and the LM head, with how often each runs, in one
    /// evaluation forward (`training` false: chunked NLL) or one training step (forward with the fused
    /// LM-head loss, then backward, base weights trained) over B × T tokens. Not attention's per-head
    /// products, LoRA paths or a teacher. `streamline bench engine` times raw cblas_sgemm on these.
    public func gemmShapes(B: Int, T: Int, training: Bool) -> [(shape: GEMMShape, count: Int)] {
        let N = B * T, C = config.hiddenSize, V = config.vocabSize
        var counts: [GEMMShape: Int] = [:]
        func add(_ shape: GEMMShape, _ times: Int = 1) { counts[shape, default: 0] += times }
        // A linear layer (IN → OUT) over `rows` rows: out = inp·Wᵀ; backward dinp = dout·W, dW = doutᵀ·inp.
        func linear(rows: Int, IN: Int, OUT: Int, times: Int = 1) {
            add(GEMMShape(transB: true, M: rows, N: OUT, K: IN), times)
            guard training else { return }
            add(GEMMShape(M: rows, N: IN, K: OUT), times)
            add(GEMMShape(transA: true, M: OUT, N: IN, K: rows), times)
        }
        for p in layers {
            for l in p.linears { linear(rows: N, IN: l.IN, OUT: l.OUT) }
        }
        let chunk = min(N, lmHeadChunkRows)
        linear(rows: chunk, IN: C, OUT: V, times: N / chunk)
        if N % chunk > 0 { linear(rows: N % chunk, IN: C, OUT: V) }
        // Largest share of the work first.
        func work(_ call: (shape: GEMMShape, count: Int)) -> Double { call.shape.flops * Double(call.count) }
        let calls: [(shape: GEMMShape, count: Int)] = counts.map { (shape: $0.key, count: $0.value) }
        return calls.sorted { work($0) > work($1) }
    }

    /// Bytes of the training arena (kept activations + backward scratch) for the last training (B, T);
    /// 0 before the first training forward.
    public var activationBytes: Int { training == nil ? 0 : trainingBytes }

    /// Bytes the training arena would take for (B, T), without allocating it.
    public func activationBytes(B: Int, T: Int) -> Int {
        Carver.measure { makeTrainingArena($0, B: B, T: T) }
    }

    // MARK: - Buffers

    /// The training arena for (B, T), planned anew when the size changes. Evaluation buffers are
    /// dropped first so peak memory holds one plan at a time.
    func trainingArena(B: Int, T: Int) -> TrainingArena {
        if let arena = training, arena.B == B, arena.T == T { return arena }
        training = nil
        inference = nil
        let (arena, bytes) = Carver.plan { makeTrainingArena($0, B: B, T: T) }
        training = arena
        trainingBytes = bytes
        return arena
    }

    /// The inference workspace for (B, T), planned anew when the size changes.
    func inferenceWorkspace(B: Int, T: Int) -> InferenceWorkspace {
        if let work = inference, work.B == B, work.T == T { return work }
        inference = nil
        let work = Carver.plan { carver -> InferenceWorkspace in
            let N = B * T, C = config.hiddenSize
            let stream = carver.take([N, C])
            return InferenceWorkspace(
                B: B, T: T, stream: stream,
                layer: LayerActivations(carver, N: N, C: C, shape: widest, headDim: config.headDim,
                                        swiglu: config.activation == .swiglu, loraTargets: adaptedTargets, rank: loraRank,
                                        input: stream, mid: stream),
                finalNorm: NormActivations(carver, N: N, C: C), losses: carver.take([N]),
                logits: carver.take([min(N, lmHeadChunkRows), config.vocabSize]),
                scratch: layerScratch(carver, B: B, T: T))
        }.value
        inference = work
        return work
    }

    func makeTrainingArena(_ carver: Carver, B: Int, T: Int) -> TrainingArena {
        let N = B * T, C = config.hiddenSize, w = widest
        let hidden = carver.take([N, w.ffn])
        let acts = config.layers.map {
            LayerActivations(carver, N: N, C: C, shape: $0, headDim: config.headDim, swiglu: config.activation == .swiglu,
                             loraTargets: adaptedTargets, rank: loraRank, hidden: hidden)
        }
        return TrainingArena(
            B: B, T: T, layers: acts, top: carver.take([N, C]), finalNorm: NormActivations(carver, N: N, C: C),
            dtop: carver.take([N, C]), losses: carver.take([N]), dlosses: carver.take([N]),
            logits: carver.take([min(N, lmHeadChunkRows), config.vocabSize]),
            scratch: layerScratch(carver, B: B, T: T),
            grads: BackwardScratch(carver, N: N, C: C, maxQ: w.heads * config.headDim, maxK: w.kvHeads * config.headDim,
                                   maxF: w.ffn, rank: loraRank, rope: rope != nil, shortcuts: config.hasShortcuts))
    }

    func layerScratch(_ carver: Carver, B: Int, T: Int) -> LayerScratch {
        // One attention share per thread the arena may meet: the budget now or, if it grows later, the
        // cores (more threads than shares would only run fewer attention workers, same bits).
        let workers = min(B * widest.heads, max(Threading.threads, Threading.coreCount))
        return LayerScratch(carver, N: B * T, T: T, C: config.hiddenSize, attentionWorkers: workers)
    }

    /// The largest heads, KV heads and MLP width over layers (shared buffers fit every layer).
    var widest: LayerShape {
        LayerShape(heads: config.layers.map(\.heads).max() ?? 0, kvHeads: config.layers.map(\.kvHeads).max() ?? 0,
                   ffn: config.layers.map(\.ffn).max() ?? 0)
    }

    /// Short names of the linear layers adapted in any layer, and the adapters' (common) rank.
    var adaptedTargets: [String] {
        Decoder.loraTargetNames.filter { target in layers.contains { $0.adaptedTargets.contains(target) } }
    }
    var loraRank: Int { layers.lazy.flatMap(\.linears).compactMap(\.adapter).first?.rank ?? 0 }

    /// Drops every planned buffer (after adapters change the layout).
    func invalidateBuffers() {
        training = nil
        inference = nil
        pending = nil
    }

    /// Calls body(firstRow, rowCount) over 0..<N in chunks of `chunk` rows (the logits buffer's).
    func forEachChunk(_ N: Int, rows chunk: Int, _ body: (Int, Int) -> Void) {
        var r0 = 0
        while r0 < N {
            let rows = min(chunk, N - r0)
            body(r0, rows)
            r0 += rows
        }
    }

    func checkBatch(_ tokens: [Int32], B: Int, T: Int, start: Int) {
        precondition(B > 0 && T > 0 && tokens.count == B * T, "Decoder: \(tokens.count) tokens for B = \(B), T = \(T)")
        precondition(start + T <= config.maxPositions,
                     "Decoder: positions up to \(start + T) exceed maxPositions \(config.maxPositions)")
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < config.vocabSize },
                     "Decoder: token id outside 0..<\(config.vocabSize)")
    }
}

// MARK: - Parameter views

/// One parameter's value and gradient.
struct Param {
    /// value, grad: the parameter's shape
    let value: Tensor
    let grad: Tensor
    init(_ set: ParameterSet, _ name: String) {
        value = set.value(name)
        grad = set.grad(name)
    }
}

/// A norm's scale and (LayerNorm) shift.
struct NormParams {
    let scale: Param
    let shift: Param?
}

/// A LoRA pair of one linear layer: A (R, IN), B (OUT, R).
struct Adapter {
    let a: Param
    let b: Param
    var rank: Int { a.value.shape[0] }
}

/// A linear layer: weight (OUT, IN), optional bias (OUT), optional adapter.
struct LinearParams {
    /// Canonical weight name, e.g. layers/3/attn/wq.
    let name: String
    let weight: Param
    let bias: Param?
    var adapter: Adapter?
    var IN: Int { weight.value.shape[1] }
    var OUT: Int { weight.value.shape[0] }
}

/// Every parameter of one layer.
struct LayerParams {
    let shape: LayerShape
    let attnNorm: NormParams
    var wq, wk, wv, wo: LinearParams
    let mlpNorm: NormParams
    var wGate: LinearParams?
    var wUp, wDown: LinearParams
    /// Shortcut matrices on the two residual connections (C, C), SliceGPT models only.
    let attnShortcut: Param?
    let mlpShortcut: Param?

    /// The linear layers with their LoRA short names, in canonical order.
    var named: [(target: String, linear: LinearParams)] {
        [("wq", wq), ("wk", wk), ("wv", wv), ("wo", wo)] + (wGate.map { [("w_gate", $0)] } ?? []) + [("w_up", wUp), ("w_down", wDown)]
    }
    var linears: [LinearParams] { named.map(\.linear) }
    var adaptedTargets: [String] { named.filter { $0.linear.adapter != nil }.map(\.target) }
}

extension Tensor {
    /// The first `columns` columns of the first `rows` rows of a (rows', width) buffer, viewed as a
    /// dense (rows, columns) tensor: shared scratch sized for the widest layer, used by a narrower one.
    func prefixColumns(_ columns: Int, rows: Int) -> Tensor {
        Tensor(storage: storage, offset: offset, shape: [rows, columns])
    }

}

// MARK: - Config checks

extension ModelConfig {
    /// Throws when this config cannot describe a runnable decoder.
    public func validate() throws(ModelError) {
        if vocabSize <= 0 { throw .invalidConfig(field: "vocabSize", reason: "must be positive, got \(vocabSize)") }
        if hiddenSize <= 0 { throw .invalidConfig(field: "hiddenSize", reason: "must be positive, got \(hiddenSize)") }
        if headDim <= 0 { throw .invalidConfig(field: "headDim", reason: "must be positive, got \(headDim)") }
        if positions == .rope && headDim % 2 != 0 {
            throw .invalidConfig(field: "headDim", reason: "RoPE needs an even head width, got \(headDim)")
        }
        if normDivisor < hiddenSize {
            throw .invalidConfig(field: "normDivisor", reason: "must be at least hiddenSize \(hiddenSize), got \(normDivisor)")
        }
        if maxPositions <= 0 { throw .invalidConfig(field: "maxPositions", reason: "must be positive, got \(maxPositions)") }
        for (l, shape) in layers.enumerated() {
            if shape.heads <= 0 || shape.kvHeads <= 0 || shape.heads % shape.kvHeads != 0 {
                throw .invalidConfig(field: "layers[\(l)].heads",
                                     reason: "\(shape.heads) query heads must be a positive multiple of \(shape.kvHeads) KV heads")
            }
            if shape.ffn <= 0 { throw .invalidConfig(field: "layers[\(l)].ffn", reason: "must be positive, got \(shape.ffn)") }
        }
    }
}
