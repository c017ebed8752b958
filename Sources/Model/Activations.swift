// Activation memory of the decoder, planned in one place (llm.c style). Every buffer a forward or
// backward pass touches is a view carved out of ONE allocation sized once per (B, T): the training
// arena keeps each layer's activations for the backward plus one set of backward scratch; the
// inference workspace keeps a single layer's worth, reused by every layer. Not the math (Decoder.swift).
//
// Shape letters: N = B·T rows, C hidden width, Q = NH·HD query width, K = NKV·HD key/value width,
// F MLP width, R LoRA rank, V vocabulary; "max" widths are the largest over layers.

import Tensor

/// Hands out views of one zeroed allocation. `Carver.plan` runs a builder twice: a measuring pass
/// that only sums the sizes (its views are empty placeholders and are thrown away), then the real
/// pass over a buffer of exactly that size, so the list of buffers is written once.
final class Carver {
    private let storage: TensorStorage?
    private(set) var count = 0

    private init(storage: TensorStorage?) { self.storage = storage }

    /// A view of `shape`; offsets are rounded up to 16 floats so every buffer starts on a cache line.
    func take(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        let start = count
        count += (n + 15) / 16 * 16
        guard let storage else { return Carver.placeholder }
        return Tensor(storage: storage, offset: start, shape: shape)
    }

    /// The first `shape`.product floats of a buffer taken earlier, viewed as `shape` (e.g. one layer's
    /// (N, F) inside a shared (N, Fmax) buffer).
    func prefix(of buffer: Tensor, _ shape: [Int]) -> Tensor {
        guard storage != nil else { return Carver.placeholder }
        precondition(shape.reduce(1, *) <= buffer.count, "Carver.prefix: \(shape) does not fit in \(buffer.shape)")
        return Tensor(storage: buffer.storage, offset: buffer.offset, shape: shape)
    }

    private static let placeholder = Tensor(zeros: [0])

    /// The value `build` makes from views of one allocation, and that allocation's size in bytes.
    static func plan<Value>(_ build: (Carver) -> Value) -> (value: Value, bytes: Int) {
        let bytes = measure(build)
        let carver = Carver(storage: TensorStorage(count: bytes / MemoryLayout<Float>.stride))
        return (build(carver), bytes)
    }

    /// Bytes `build` would allocate (the measuring pass alone: nothing is allocated).
    static func measure<Value>(_ build: (Carver) -> Value) -> Int {
        let measuring = Carver(storage: nil)
        _ = build(measuring)
        return measuring.count * MemoryLayout<Float>.stride
    }
}

/// A norm's output and the statistics its backward needs.
struct NormActivations {
    /// out: (N, C)
    let out: Tensor
    /// mean: (N) (LayerNorm only; unused by RMSNorm but kept so both kinds share one code path)
    let mean: Tensor
    /// rstd: (N)
    let rstd: Tensor

    init(_ carver: Carver, N: Int, C: Int) {
        out = carver.take([N, C])
        mean = carver.take([N])
        rstd = carver.take([N])
    }
}

/// What one layer's forward writes (and its backward reads).
struct LayerActivations {
    /// input: (N, C) the residual stream entering the layer
    let input: Tensor
    let attnNorm: NormActivations
    /// q: (N, Q) after bias and RoPE
    let q: Tensor
    /// k, v: (N, K) after bias (and RoPE for k)
    let k: Tensor
    let v: Tensor
    /// att: (N, Q) attention output, the input of wo
    let att: Tensor
    /// mid: (N, C) residual stream after the attention block
    let mid: Tensor
    let mlpNorm: NormActivations
    /// gate: (N, F) SwiGLU gate projection (empty for GELU/ReLU)
    let gate: Tensor
    /// up: (N, F) up projection (the pre-activation for GELU/ReLU)
    let up: Tensor
    /// hidden: (N, F) activation output, the input of w_down. Training does not keep it per layer:
    /// every layer views one shared buffer and the backward recomputes it from gate and up.
    let hidden: Tensor
    /// x·Aᵀ of each adapted linear layer, keyed by short name: (N, R)
    let loraInner: [String: Tensor]

    /// Views for one layer. `input` and `mid` may be given (inference aliases them to the stream),
    /// and `hidden` ((N, ≥F), shared by the layers of a training arena).
    init(_ carver: Carver, N: Int, C: Int, shape: LayerShape, headDim HD: Int, swiglu: Bool,
         loraTargets: [String], rank: Int, input: Tensor? = nil, mid: Tensor? = nil, hidden: Tensor? = nil) {
        let Q = shape.heads * HD, K = shape.kvHeads * HD, F = shape.ffn
        self.input = input ?? carver.take([N, C])
        attnNorm = NormActivations(carver, N: N, C: C)
        q = carver.take([N, Q])
        k = carver.take([N, K])
        v = carver.take([N, K])
        att = carver.take([N, Q])
        self.mid = mid ?? carver.take([N, C])
        mlpNorm = NormActivations(carver, N: N, C: C)
        gate = carver.take(swiglu ? [N, F] : [0])
        up = carver.take([N, F])
        self.hidden = hidden.map { carver.prefix(of: $0, [N, F]) } ?? carver.take([N, F])
        var inner: [String: Tensor] = [:]
        for target in loraTargets { inner[target] = carver.take([N, rank]) }
        loraInner = inner
    }
}

/// Buffers used inside one layer and dropped after it (shared by all layers).
struct LayerScratch {
    /// proj: (N, C) output of wo or w_down before the residual add
    let proj: Tensor
    /// attention: per-worker scratch of the attention kernels (`attentionScratchPerWorker`)
    let attention: Tensor
    var attentionScratch: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: attention.data, count: attention.count) }

    init(_ carver: Carver, N: Int, T: Int, C: Int, attentionWorkers: Int) {
        proj = carver.take([N, C])
        attention = carver.take([attentionWorkers * attentionScratchPerWorker(T: T)])
    }
}

/// Gradients of one layer's activations, reused by every layer in the backward.
struct BackwardScratch {
    /// dres: (N, C) gradient of the residual stream, walked from the top layer down
    let dres: Tensor
    /// dnorm: (N, C) gradient of a norm's output
    let dnorm: Tensor
    /// datt, dq, dqPre: (N, Qmax) (dqPre: before RoPE)
    let datt: Tensor
    let dq: Tensor
    let dqPre: Tensor
    /// dk, dv, dkPre: (N, Kmax)
    let dk: Tensor
    let dv: Tensor
    let dkPre: Tensor
    /// dgate, dup, dhidden: (N, Fmax)
    let dgate: Tensor
    let dup: Tensor
    let dhidden: Tensor
    /// dlora: (N, R) gradient of x·Aᵀ
    let dlora: Tensor
    /// dshortcut: (N, C) gradient of the stream through a residual shortcut matrix (SliceGPT models; else empty)
    let dshortcut: Tensor

    init(_ carver: Carver, N: Int, C: Int, maxQ: Int, maxK: Int, maxF: Int, rank: Int, rope: Bool, shortcuts: Bool) {
        dres = carver.take([N, C])
        dnorm = carver.take([N, C])
        datt = carver.take([N, maxQ])
        dq = carver.take([N, maxQ])
        dqPre = carver.take(rope ? [N, maxQ] : [0])
        dk = carver.take([N, maxK])
        dv = carver.take([N, maxK])
        dkPre = carver.take(rope ? [N, maxK] : [0])
        dgate = carver.take([N, maxF])
        dup = carver.take([N, maxF])
        dhidden = carver.take([N, maxF])
        dlora = carver.take([N, rank])
        dshortcut = carver.take(shortcuts ? [N, C] : [0])
    }
}

/// Everything a training forward keeps for `backward()`, for one (B, T).
struct TrainingArena {
    let B: Int, T: Int
    let layers: [LayerActivations]
    /// top: (N, C) residual stream after the last layer
    let top: Tensor
    let finalNorm: NormActivations
    /// dtop: (N, C) gradient of the final norm's output, written by the fused LM head + loss
    let dtop: Tensor
    /// losses, dlosses: (N)
    let losses: Tensor
    let dlosses: Tensor
    /// logits: (rows, V), one chunk of rows of the LM head at a time
    let logits: Tensor
    let scratch: LayerScratch
    let grads: BackwardScratch
}

/// Buffers of an evaluation or generation forward for one (B, T): one layer's worth, reused.
struct InferenceWorkspace {
    let B: Int, T: Int
    /// stream: (N, C) the residual stream, updated in place layer after layer
    let stream: Tensor
    let layer: LayerActivations
    let finalNorm: NormActivations
    /// losses: (N)
    let losses: Tensor
    /// logits: (rows, V), one chunk of rows
    let logits: Tensor
    let scratch: LayerScratch
}
