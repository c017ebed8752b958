// Causal grouped-query self-attention, forward and backward, plus a forward over a KV cache for
// generation. Query head h reads key/value head h / (NH / NKV); scores are scaled by 1/sqrt(HD).
// Not the Q/K/V/O projections (Linear.swift) and not RoPE (RoPE.swift): inputs arrive rotated.
//
// Shapes (legend in Tensor.swift): B batch, T tokens (Tq queries, Tk cache positions), NH query heads, NKV
// key/value heads, HD head dim. The public kernels are the fast ones; each has a plain-loop `…Reference`
// twin at the bottom of the file that the tests hold it to.

import CBLAS
import Foundation
import Synchronization

/// Causal attention over whole sequences; overwrites `out` and `probs`.
/// - out: (B, T, NH, HD)
/// - probs: (B, NH, T, T) softmax weights saved for the backward; entries above the diagonal are 0
/// - q: (B, T, NH, HD)
/// - k, v: (B, T, NKV, HD)
///
/// Per (b, h) the products go through sgemm straight on the (B, T, heads, HD) layout (row stride
/// heads·HD, no transposes), in row blocks that stop at the diagonal so the masked half is never
/// computed. Heads run in parallel, each on single-threaded BLAS (see `withHeadsInParallel`).
public func attentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             B: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.attention, profiled) }
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionForward")
    withHeadsInParallel(B * NH, workers: attentionWorkers(B * NH)) { items, _ in
        for item in items {
            let b = item / NH, h = item % NH
            let head = AttentionHead(b: b, h: h, T: T, NH: NH, NKV: NKV, HD: HD)
            let pbh = probs + item * T * T
            head.forward(out: out, probs: pbh, keepAll: true, q: q, k: k, v: v)
        }
    }
}

/// Floats of scratch each parallel worker of the kernels that do not keep probabilities
/// (`attentionForward(…scratch:)`, `attentionBackward(…scratch:)`) uses: one causal block's rows of
/// the probabilities and of the score gradient, (min(T, 64), T) each; a block is all that is live.
public func attentionScratchPerWorker(T: Int) -> Int { 2 * attentionBlockRows(T) * T }

/// `attentionForward(out:probs:…)` without keeping the probabilities: each worker builds one causal
/// block of one head's probabilities at a time in its share of `scratch`, so all B·NH heads run in one
/// parallel loop in under a MB instead of (B, NH, T, T) (training recomputes them in
/// `attentionBackward(…scratch:)`).
/// - out: (B, T, NH, HD); q: (B, T, NH, HD); k, v: (B, T, NKV, HD)
/// - scratch: at least `attentionScratchPerWorker(T:)` floats; how many workers' shares it holds caps
///   the parallelism, never the result (heads are independent, so the bits do not depend on it)
public func attentionForward(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                             v: UnsafePointer<Float>, B: Int, T: Int, NH: Int, NKV: Int, HD: Int,
                             scratch: UnsafeMutableBufferPointer<Float>) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.attention, profiled) }
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionForward")
    let perWorker = attentionScratchPerWorker(T: T)
    withHeadsInParallel(B * NH, workers: attentionWorkers(B * NH, scratch: scratch, perWorker: perWorker)) { items, worker in
        let pbh = scratch.baseAddress! + worker * perWorker
        for item in items {
            let head = AttentionHead(b: item / NH, h: item % NH, T: T, NH: NH, NKV: NKV, HD: HD)
            head.forward(out: out, probs: pbh, keepAll: false, q: q, k: k, v: v)
        }
    }
}

/// Floats of scratch `attentionBackward` needs when the caller provides it: one causal block of the
/// score gradient, (min(T, 64), T), per parallel worker, plus, when query heads share KV heads, each
/// query head's (2, T, HD) share of dK and dV. Workers never exceed B·NH, so this counts one block per
/// head: an upper bound that does not depend on the thread budget, so a buffer sized once stays large
/// enough if `Threading.configure` changes later (sizing by the current budget overflowed exactly then).
public func attentionBackwardScratchCount(B: Int, T: Int, NH: Int, NKV: Int, HD: Int) -> Int {
    B * NH * attentionBlockRows(T) * T + (NH == NKV ? 0 : B * NH * 2 * T * HD)
}

/// Backward of `attentionForward`; accumulates into dq, dk and dv.
/// - dq: (B, T, NH, HD)
/// - dk, dv: (B, T, NKV, HD)
/// - dout: (B, T, NH, HD); q, k, v and probs as in the forward
/// - scratch: at least `attentionBackwardScratchCount(...)` floats, or nil to allocate internally
///
/// Per (b, h), with dP = dO·Vᵀ and dS = P ⊙ (dP − Σ P⊙dP) / sqrt(HD):
/// dV += Pᵀ·dO, dQ += dS·K, dK += dSᵀ·Q, all sgemm with beta = 1 in causal row blocks. Query heads
/// run in parallel (9 work items at SmolLM2 size even for one sequence, against 3 KV heads); with
/// grouped KV heads each query head writes its dK/dV share to scratch, and the shares are added in
/// head order afterwards, so the sums do not depend on the thread count.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, B: Int, T: Int, NH: Int, NKV: Int, HD: Int,
                              scratch: UnsafeMutablePointer<Float>? = nil) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.attention, profiled) }
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionBackward")
    // Read the thread budget once: the scratch layout and the split must agree.
    let workers = attentionWorkers(B * NH)
    let shared = NH != NKV
    let blockFloats = attentionBlockRows(T) * T
    let count = workers * blockFloats + (shared ? B * NH * 2 * T * HD : 0)
    let owned: Tensor? = scratch == nil ? Tensor(zeros: [count]) : nil
    let scratchBase = scratch ?? owned!.data
    let shares = scratchBase + workers * blockFloats  // (B·NH, 2, T, HD) per-query-head dK and dV when shared
    let group = NH / NKV, ldk = NKV * HD
    withHeadsInParallel(B * NH, workers: workers) { items, worker in
        let dscores = scratchBase + worker * blockFloats  // one block's (≤ 64, T), this worker's alone
        for item in items {
            let head = AttentionHead(b: item / NH, h: item % NH, T: T, NH: NH, NKV: NKV, HD: HD)
            // Where this head's dK and dV go: its own scratch share, or straight into dk/dv when it is
            // the only query head on its KV head.
            let share = shares + item * 2 * T * HD
            if shared { share.update(repeating: 0, count: 2 * T * HD) }
            let (dkbh, dvbh, ldShare) = shared
                ? (share, share + T * HD, HD) : (dk + head.kvOffset, dv + head.kvOffset, ldk)
            head.backward(dq: dq, dk: dkbh, dv: dvbh, ldkv: ldShare, dout: dout, q: q, k: k, v: v,
                          probabilities: .stored(probs + item * T * T), dscores: dscores)
        }
    }
    if shared {
        // dk[b, t, kvh] += Σ over the group's query heads h (in increasing h) of share[b, h][t].
        Threading.parallelFor(B * T, minChunk: max(1, parallelGrain / max(2 * NH * HD, 1))) { rows in
            for row in rows {
                let b = row / T, t = row % T
                for h in 0..<NH {
                    let share = shares + (b * NH + h) * 2 * T * HD + t * HD
                    let kvRow = row * ldk + (h / group) * HD
                    addInPlaceSerial(out: dk + kvRow, inp: share, N: HD)
                    addInPlaceSerial(out: dv + kvRow, inp: share + T * HD, N: HD)
                }
            }
        }
    }
    withExtendedLifetime(owned) {}
}

/// Backward of `attentionForward(out:q:k:v:…scratch:)`; accumulates into dq, dk and dv. Each head's
/// probabilities are recomputed (QKᵀ and softmax, the forward's bits) in the worker's scratch and
/// used at once, while they are still in cache. Work items are (sequence, KV head): an item runs its
/// group's query heads in increasing order and adds their dK and dV straight into its own slice of
/// dk and dv, so every sum has one order whatever the thread count, without per-head shares or a
/// reduction pass.
/// - dq, dout, q: (B, T, NH, HD); dk, dv, k, v: (B, T, NKV, HD)
/// - scratch: as for `attentionForward(…scratch:)`
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              B: Int, T: Int, NH: Int, NKV: Int, HD: Int, scratch: UnsafeMutableBufferPointer<Float>) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.attention, profiled) }
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionBackward")
    let group = NH / NKV, ldk = NKV * HD, perWorker = attentionScratchPerWorker(T: T)
    withHeadsInParallel(B * NKV, workers: attentionWorkers(B * NKV, scratch: scratch, perWorker: perWorker)) { items, worker in
        let probs = scratch.baseAddress! + worker * perWorker, dscores = probs + attentionBlockRows(T) * T
        for item in items {
            let b = item / NKV, kvh = item % NKV
            for h in kvh * group..<(kvh + 1) * group {
                let head = AttentionHead(b: b, h: h, T: T, NH: NH, NKV: NKV, HD: HD)
                head.backward(dq: dq, dk: dk + head.kvOffset, dv: dv + head.kvOffset, ldkv: ldk, dout: dout,
                              q: q, k: k, v: v, probabilities: .recomputed(into: probs), dscores: dscores)
            }
        }
    }
}

/// Attention of Tq new queries over a KV cache (generation); overwrites `out`.
/// Query t sits at absolute position start + t and attends to cache positions 0...start + t.
/// - out: (B, Tq, NH, HD)
/// - q: (B, Tq, NH, HD)
/// - kCache, vCache: (B, Tk, NKV, HD) with positions 0..<start+Tq filled; consecutive positions are
///   `ldk` floats apart (default NKV·HD), batches Tk·ldk floats apart
public func attentionCachedForward(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                   kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>,
                                   B: Int, Tq: Int, Tk: Int, start: Int, NH: Int, NKV: Int, HD: Int,
                                   ldk: Int? = nil) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.attention, profiled) }
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionCachedForward")
    precondition(start >= 0 && start + Tq <= Tk,
                 "attentionCachedForward: positions \(start)..<\(start + Tq) exceed the cache's \(Tk)")
    let rowStride = ldk ?? NKV * HD
    let group = NH / NKV, ldq = NH * HD, span = start + Tq
    let scale = 1 / Float(HD).squareRoot()
    let workers = attentionWorkers(B * NH)
    let scores = Tensor(zeros: [workers, Tq, span])
    withHeadsInParallel(B * NH, workers: workers) { items, worker in
        let sbh = scores.data + worker * Tq * span  // (Tq, span), this worker's alone
        for item in items {
            let b = item / NH, h = item % NH
            let qbh = q + b * Tq * ldq + h * HD, obh = out + b * Tq * ldq + h * HD
            let kvOffset = b * Tk * rowStride + (h / group) * HD
            // Every query row sees at most `span` keys; the causal tail is masked by the softmax.
            sgemm(transB: true, M: Tq, N: span, K: HD, alpha: scale, A: qbh, lda: ldq, B: kCache + kvOffset,
                  ldb: rowStride, C: sbh, ldc: span)
            for t in 0..<Tq { softmaxRow(sbh + t * span, sbh + t * span, valid: start + t + 1, columns: span) }
            sgemm(M: Tq, N: HD, K: span, A: sbh, lda: span, B: vCache + kvOffset, ldb: rowStride, C: obh, ldc: ldq)
        }
    }
}

/// One (sequence b, query head h) of the (B, T, heads, HD) layout: where its rows start and the
/// products of the forward and backward on it. The per-head sgemms run straight on that layout (row
/// stride heads·HD, no transposes), in row blocks that stop at the diagonal.
struct AttentionHead {
    let T: Int, HD: Int, ldq: Int, ldk: Int
    /// Offsets of the head's first row in q-shaped (B, T, NH, HD) and k-shaped (B, T, NKV, HD) buffers.
    let qOffset: Int, kvOffset: Int
    let scale: Float

    @inline(__always)
    init(b: Int, h: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
        self.T = T
        self.HD = HD
        ldq = NH * HD
        ldk = NKV * HD
        qOffset = b * T * ldq + h * HD
        kvOffset = b * T * ldk + (h / (NH / NKV)) * HD
        scale = 1 / Float(HD).squareRoot()
    }

    /// Rows r0..<r1 of P = causal softmax(scale · Q·Kᵀ) into `block`, row t at block + (t − r0)·T:
    /// columns 0...t of row t, then zeros up to `columns` (at least r1, the block products read that far).
    @inline(__always)
    func probabilityBlock(_ block: UnsafeMutablePointer<Float>, r0: Int, r1: Int, columns: Int,
                          q: UnsafePointer<Float>, k: UnsafePointer<Float>) {
        // scores[r0..<r1, 0..<r1] = scale · Q[r0..<r1] · K[0..<r1]ᵀ
        sgemm(transB: true, M: r1 - r0, N: r1, K: HD, alpha: scale, A: q + qOffset + r0 * ldq, lda: ldq,
              B: k + kvOffset, ldb: ldk, C: block, ldc: T)
        for row in 0..<(r1 - r0) {
            softmaxRow(block + row * T, block + row * T, valid: r0 + row + 1, columns: columns)
        }
    }

    /// out = P · V into the head's rows of the (B, T, NH, HD) `out`, with P built block by block and
    /// used at once, while the block (≤ 64 × T floats) is still in cache. `keepAll`: `probs` is the
    /// head's whole (T, T) matrix, each block written in its place with zeros above the diagonal, as
    /// the stored-probabilities backward reads it; otherwise `probs` holds one block, (≤ 64, T), and
    /// each block overwrites the last.
    @inline(__always)
    func forward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, keepAll: Bool,
                 q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let oh = out + qOffset, vh = v + kvOffset
        forEachCausalBlock(T) { r0, r1 in
            let block = keepAll ? probs + r0 * T : probs
            probabilityBlock(block, r0: r0, r1: r1, columns: keepAll ? T : r1, q: q, k: k)
            // out[r0..<r1] = P[r0..<r1, 0..<r1] · V[0..<r1]
            sgemm(M: r1 - r0, N: HD, K: r1, A: block, lda: T, B: vh, ldb: ldk, C: oh + r0 * ldq, ldc: ldq)
        }
    }

    /// Where the backward finds the head's probabilities.
    enum Probabilities {
        /// The forward's whole (T, T) matrix, kept.
        case stored(UnsafePointer<Float>)
        /// Rebuilt one block at a time in this (≤ 64, T) scratch, with the forward's bits.
        case recomputed(into: UnsafeMutablePointer<Float>)
    }

    /// With dP = dO·Vᵀ and dS = P ⊙ (dP − Σ P⊙dP) · scale: dV += Pᵀ·dO, dQ += dS·K, dK += dSᵀ·Q, one
    /// causal block of rows at a time, so P's and dS's blocks are used while in cache. dq and dout are
    /// (B, T, NH, HD) buffers (the head's rows are found in them); dk and dv point at the head's own
    /// (T, HD) rows, `ldkv` floats apart. dscores: one block's (≤ 64, T) scratch. dV and dK gather the blocks in
    /// increasing order, as separate passes would, so the bits do not depend on the interleaving.
    @inline(__always)
    func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                  ldkv: Int, dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                  v: UnsafePointer<Float>, probabilities: Probabilities, dscores: UnsafeMutablePointer<Float>) {
        let qh = q + qOffset, dqh = dq + qOffset, doh = dout + qOffset, kh = k + kvOffset, vh = v + kvOffset
        forEachCausalBlock(T) { r0, r1 in
            // P's and dS's rows r0..<r1, row t at + (t − r0)·T.
            let pBlock: UnsafePointer<Float>
            switch probabilities {
            case .stored(let kept): pBlock = kept + r0 * T
            case .recomputed(let scratch):
                probabilityBlock(scratch, r0: r0, r1: r1, columns: r1, q: q, k: k)
                pBlock = UnsafePointer(scratch)
            }
            // dP[r0..<r1, 0..<r1] = dO[r0..<r1] · V[0..<r1]ᵀ
            sgemm(transB: true, M: r1 - r0, N: r1, K: HD, A: doh + r0 * ldq, lda: ldq, B: vh, ldb: ldk,
                  C: dscores, ldc: T)
            // dV[0..<r1] += P[r0..<r1, 0..<r1]ᵀ · dO[r0..<r1]
            sgemm(transA: true, M: r1, N: HD, K: r1 - r0, A: pBlock, lda: T, B: doh + r0 * ldq,
                  ldb: ldq, beta: 1, C: dv, ldc: ldkv)
            for row in 0..<(r1 - r0) {
                softmaxBackwardRow(dscores + row * T, probs: pBlock + row * T, valid: r0 + row + 1, scale: scale, T: T)
            }
            // dQ[r0..<r1] += dS[r0..<r1, 0..<r1] · K[0..<r1]
            sgemm(M: r1 - r0, N: HD, K: r1, A: dscores, lda: T, B: kh, ldb: ldk,
                  beta: 1, C: dqh + r0 * ldq, ldc: ldq)
            // dK[0..<r1] += dS[r0..<r1, 0..<r1]ᵀ · Q[r0..<r1]
            sgemm(transA: true, M: r1, N: HD, K: r1 - r0, A: dscores, lda: T, B: qh + r0 * ldq,
                  ldb: ldq, beta: 1, C: dk, ldc: ldkv)
        }
    }
}

/// Rows per causal block: products stop at each block's diagonal, so only ~(1 + block/T)/2 of the
/// square is computed. Measured (single thread, SmolLM2 heads, T = 512): 64 beat 128 and 256 by
/// 5–20% and tied 32.
let attentionBlock = 64

/// Rows of the largest causal block for sequences of T tokens: what a block's scratch must hold.
@inline(__always)
func attentionBlockRows(_ T: Int) -> Int { min(T, attentionBlock) }

/// Calls body(r0, r1) for row blocks [r0, r1) covering 0..<T.
@inline(__always)
func forEachCausalBlock(_ T: Int, _ body: (_ r0: Int, _ r1: Int) -> Void) {
    var r0 = 0
    while r0 < T {
        let r1 = min(T, r0 + attentionBlock)
        body(r0, r1)
        r0 = r1
    }
}

/// In place over one row of dP: dS[s] = p[s] · (dP[s] − Σ p·dP) · scale for s < valid, then zeros up
/// to the end of the row's causal block (the block products read that far; P is 0 there).
@inline(__always)
func softmaxBackwardRow(_ d: UnsafeMutablePointer<Float>, probs p: UnsafePointer<Float>, valid: Int, scale: Float,
                        T: Int) {
    var weighted = Vec16()
    vectorLoop(0..<valid) { i, count in weighted += load16(p + i, count) * load16(d + i, count) }
    let w = weighted.sum()
    vectorLoop(0..<valid) { i, count in store16(load16(p + i, count) * (load16(d + i, count) - w) * scale, d + i, count) }
    let blockEnd = min(T, ((valid - 1) / attentionBlock + 1) * attentionBlock)
    (d + valid).update(repeating: 0, count: blockEnd - valid)
}

/// Parallel workers for `count` attention items under the current thread budget.
func attentionWorkers(_ count: Int) -> Int { max(1, min(Threading.threads, count)) }

/// `attentionWorkers(count)`, further capped by the worker shares of `perWorker` floats `scratch` holds.
func attentionWorkers(_ count: Int, scratch: UnsafeMutableBufferPointer<Float>, perWorker: Int) -> Int {
    precondition(scratch.baseAddress != nil && scratch.count >= perWorker,
                 "attention: scratch of \(scratch.count) floats, needs at least \(perWorker)")
    return min(attentionWorkers(count), scratch.count / perWorker)
}

/// Runs body(items, worker) over 0..<count attention items (heads) split into at most `workers`
/// chunks, each with a distinct worker index below `workers` (for per-worker scratch). BLAS is held
/// to one thread meanwhile and restored afterwards: per-head products (64×512×64 at SmolLM2 size)
/// are too small for BLAS's own threads, which measured 3–5× slower than one thread on a busy
/// machine, while heads are independent and split evenly. This is the one place a kernel calls
/// sgemm inside `parallelFor`, and why BLAS must be single-threaded here (no oversubscription).
func withHeadsInParallel(_ count: Int, workers: Int, _ body: (_ items: Range<Int>, _ worker: Int) -> Void) {
    if workers <= 1 || count <= 1 {
        body(0..<count, 0)
        return
    }
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(Int32(Threading.threads)) }
    let nextWorker = WorkerCounter()
    // Chunks of ⌈count / workers⌉ items: never more chunks than workers, whatever parallelFor decides.
    Threading.parallelFor(count, minChunk: (count + workers - 1) / workers) { items in
        body(items, nextWorker.take())
    }
}

/// Hands out worker indices 0, 1, 2, … to the chunks of one parallel loop.
final class WorkerCounter: Sendable {
    private let next = Atomic<Int>(0)
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

@inline(__always)
func attentionCheckHeads(NH: Int, NKV: Int, _ op: String) {
    precondition(NKV > 0 && NH % NKV == 0, "\(op): \(NH) query heads are not a multiple of \(NKV) KV heads")
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `attentionForward`.
public func attentionForwardReference(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                      q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                      B: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionForward")
    let group = NH / NKV
    let scale = 1 / Float(HD).squareRoot()
    for b in 0..<B {
        for h in 0..<NH {
            let kvh = h / group
            for t in 0..<T {
                let qt = q + ((b * T + t) * NH + h) * HD
                let p = probs + ((b * NH + h) * T + t) * T
                var maxValue = -Float.infinity
                for s in 0...t {
                    let ks = k + ((b * T + s) * NKV + kvh) * HD
                    var dot: Float = 0
                    for i in 0..<HD { dot += qt[i] * ks[i] }
                    p[s] = dot * scale
                    maxValue = max(maxValue, p[s])
                }
                var sum: Float = 0
                for s in 0...t {
                    p[s] = exp(p[s] - maxValue)
                    sum += p[s]
                }
                for s in 0...t { p[s] /= sum }
                for s in (t + 1)..<T { p[s] = 0 }
                let o = out + ((b * T + t) * NH + h) * HD
                for i in 0..<HD { o[i] = 0 }
                for s in 0...t {
                    let vs = v + ((b * T + s) * NKV + kvh) * HD
                    for i in 0..<HD { o[i] += p[s] * vs[i] }
                }
            }
        }
    }
}

/// Plain-loop `attentionBackward`. With dp = dout · vᵀ, the score gradient is p · (dp − Σ p·dp).
public func attentionBackwardReference(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                       dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                       q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                       probs: UnsafePointer<Float>, B: Int, T: Int, NH: Int, NKV: Int, HD: Int) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionBackward")
    let group = NH / NKV
    let scale = 1 / Float(HD).squareRoot()
    var dp = [Float](repeating: 0, count: T)
    for b in 0..<B {
        for h in 0..<NH {
            let kvh = h / group
            for t in 0..<T {
                let qt = q + ((b * T + t) * NH + h) * HD
                let dqt = dq + ((b * T + t) * NH + h) * HD
                let dot = dout + ((b * T + t) * NH + h) * HD
                let p = probs + ((b * NH + h) * T + t) * T
                var weighted: Float = 0
                for s in 0...t {
                    let vs = v + ((b * T + s) * NKV + kvh) * HD
                    let dvs = dv + ((b * T + s) * NKV + kvh) * HD
                    var acc: Float = 0
                    for i in 0..<HD {
                        acc += dot[i] * vs[i]
                        dvs[i] += p[s] * dot[i]
                    }
                    dp[s] = acc
                    weighted += p[s] * acc
                }
                for s in 0...t {
                    let dscore = p[s] * (dp[s] - weighted) * scale
                    let ks = k + ((b * T + s) * NKV + kvh) * HD
                    let dks = dk + ((b * T + s) * NKV + kvh) * HD
                    for i in 0..<HD {
                        dqt[i] += dscore * ks[i]
                        dks[i] += dscore * qt[i]
                    }
                }
            }
        }
    }
}

/// Plain-loop `attentionCachedForward`.
public func attentionCachedForwardReference(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                            kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>,
                                            B: Int, Tq: Int, Tk: Int, start: Int, NH: Int, NKV: Int, HD: Int,
                                            ldk: Int? = nil) {
    attentionCheckHeads(NH: NH, NKV: NKV, "attentionCachedForward")
    precondition(start >= 0 && start + Tq <= Tk,
                 "attentionCachedForward: positions \(start)..<\(start + Tq) exceed the cache's \(Tk)")
    let rowStride = ldk ?? NKV * HD
    let group = NH / NKV
    let scale = 1 / Float(HD).squareRoot()
    var scores = [Float](repeating: 0, count: Tk)
    for b in 0..<B {
        for t in 0..<Tq {
            let last = start + t
            for h in 0..<NH {
                let kvh = h / group
                let qt = q + ((b * Tq + t) * NH + h) * HD
                var maxValue = -Float.infinity
                for s in 0...last {
                    let ks = kCache + (b * Tk + s) * rowStride + kvh * HD
                    var dot: Float = 0
                    for i in 0..<HD { dot += qt[i] * ks[i] }
                    scores[s] = dot * scale
                    maxValue = max(maxValue, scores[s])
                }
                var sum: Float = 0
                for s in 0...last {
                    scores[s] = exp(scores[s] - maxValue)
                    sum += scores[s]
                }
                let o = out + ((b * Tq + t) * NH + h) * HD
                for i in 0..<HD { o[i] = 0 }
                for s in 0...last {
                    let vs = vCache + (b * Tk + s) * rowStride + kvh * HD
                    let w = scores[s] / sum
                    for i in 0..<HD { o[i] += w * vs[i] }
                }
            }
        }
    }
}
