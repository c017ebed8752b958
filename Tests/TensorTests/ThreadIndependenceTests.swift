// The fast kernels give the same bits on one thread and on several: rows and elements are computed
// independently, and column reductions (weight, bias, embedding gradients) sum rows in a fixed order.

import Testing
@testable import Tensor

@Suite(.serialized) struct ThreadIndependenceTests {
    /// Runs `body` once with 1 thread and once with 4, restoring the thread budget afterwards, and
    /// returns both results. Sizes in the callers are above `parallelGrain` so the work really splits.
    func onOneAndFourThreads(_ body: () -> [Float]) -> ([Float], [Float]) {
        let saved = Threading.threads
        defer { Threading.configure(threads: saved) }
        Threading.configure(threads: 1)
        let one = body()
        Threading.configure(threads: 4)
        return (one, body())
    }

    @Test func normsAndTheirWeightGradients() {
        let N = 300, C = 257
        let x = randomTensor(N * C, seed: 151), w = randomTensor(C, seed: 152), b = randomTensor(C, seed: 153)
        let dout = randomTensor(N * C, seed: 154)
        let (one, many) = onOneAndFourThreads {
            let out = zeros(N * C), mean = zeros(N), rstd = zeros(N), dinp = zeros(N * C), dw = zeros(C), db = zeros(C)
            rmsnormForward(out: out.data, rstd: rstd.data, inp: x.data, weight: w.data, N: N, C: C, D: C, eps: 1e-5)
            rmsnormBackward(dinp: dinp.data, dweight: dw.data, dout: dout.data, inp: x.data, weight: w.data,
                            rstd: rstd.data, N: N, C: C, D: C)
            var result = out.array + dinp.array + dw.array
            layernormForward(out: out.data, mean: mean.data, rstd: rstd.data, inp: x.data, weight: w.data, bias: b.data,
                             N: N, C: C, D: C, eps: 1e-5)
            layernormBackward(dinp: dinp.data, dweight: dw.data, dbias: db.data, dout: dout.data, inp: x.data,
                              weight: w.data, mean: mean.data, rstd: rstd.data, N: N, C: C, D: C)
            result += out.array + dinp.array + dw.array + db.array
            return result
        }
        #expect(one == many)
    }

    @Test func embeddingLinearAndActivations() {
        let N = 700, C = 96, rows = 40, OUT = 70
        let ids = (0..<N).map { Int32(($0 * 13) % rows) }
        let dout = randomTensor(N * C, seed: 155), x = randomTensor(N * C, seed: 156)
        let w = randomTensor(OUT * C, seed: 157), bias = randomTensor(OUT, seed: 158), dy = randomTensor(N * OUT, seed: 159)
        let (one, many) = onOneAndFourThreads {
            let dtable = zeros(rows * C), dbias = zeros(OUT), y = zeros(N * OUT), act = zeros(N * C), dact = zeros(N * C)
            embeddingBackward(dtable: dtable.data, dout: dout.data, ids: ids, N: N, C: C)
            linearForward(out: y.data, inp: x.data, weight: w.data, bias: bias.data, N: N, IN: C, OUT: OUT)
            linearBackward(dinp: nil, dweight: nil, dbias: dbias.data, dout: dy.data, inp: x.data, weight: w.data,
                           N: N, IN: C, OUT: OUT)
            swigluForward(out: act.data, gate: x.data, up: dout.data, N: N * C)
            geluBackward(dinp: dact.data, dout: dout.data, inp: x.data, N: N * C)
            return dtable.array + dbias.array + y.array + act.array + dact.array
        }
        #expect(one == many)
    }

    @Test func attentionSoftmaxAndCrossEntropy() {
        let B = 1, T = 150, NH = 4, NKV = 2, HD = 16, V = 5_000, rowsCE = 20
        let q = randomTensor(B * T * NH * HD, seed: 160), k = randomTensor(B * T * NKV * HD, seed: 161)
        let v = randomTensor(B * T * NKV * HD, seed: 162), dout = randomTensor(B * T * NH * HD, seed: 163)
        let logits = randomTensor(rowsCE * V, seed: 164), dlosses = randomTensor(rowsCE, seed: 165)
        let targets = (0..<rowsCE).map { Int32($0 * 97) }
        let (one, many) = onOneAndFourThreads {
            let out = zeros(B * T * NH * HD), probs = zeros(B * NH * T * T)
            let dq = zeros(B * T * NH * HD), dk = zeros(B * T * NKV * HD), dv = zeros(B * T * NKV * HD)
            attentionForward(out: out.data, probs: probs.data, q: q.data, k: k.data, v: v.data,
                             B: B, T: T, NH: NH, NKV: NKV, HD: HD)
            attentionBackward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, q: q.data, k: k.data, v: v.data,
                              probs: probs.data, B: B, T: T, NH: NH, NKV: NKV, HD: HD)
            let soft = zeros(rowsCE * V), losses = zeros(rowsCE), dlogits = zeros(rowsCE * V)
            softmaxForward(out: soft.data, inp: logits.data, N: rowsCE, V: V)
            crossEntropyForward(losses: losses.data, logits: logits.data, targets: targets, N: rowsCE, V: V)
            crossEntropyBackward(dlogits: dlogits.data, logits: logits.data, targets: targets, dlosses: dlosses.data,
                                 N: rowsCE, V: V)
            return out.array + dq.array + dk.array + dv.array + soft.array + losses.array + dlogits.array
        }
        #expect(one == many)
    }

    /// The whole-batch attention kernels (no kept probabilities): heads split over workers in the
    /// forward, (sequence, KV head) groups in the backward.
    @Test func attentionWithScratchOverTheBatch() {
        let B = 3, T = 150, NH = 6, NKV = 2, HD = 16
        let q = randomTensor(B * T * NH * HD, seed: 166), k = randomTensor(B * T * NKV * HD, seed: 167)
        let v = randomTensor(B * T * NKV * HD, seed: 168), dout = randomTensor(B * T * NH * HD, seed: 169)
        let scratch = zeros(4 * attentionScratchPerWorker(T: T))
        let buffer = UnsafeMutableBufferPointer(start: scratch.data, count: scratch.count)
        let (one, many) = onOneAndFourThreads {
            let out = zeros(B * T * NH * HD), dq = zeros(B * T * NH * HD)
            let dk = zeros(B * T * NKV * HD), dv = zeros(B * T * NKV * HD)
            attentionForward(out: out.data, q: q.data, k: k.data, v: v.data, B: B, T: T, NH: NH, NKV: NKV, HD: HD,
                             scratch: buffer)
            attentionBackward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, q: q.data, k: k.data, v: v.data,
                              B: B, T: T, NH: NH, NKV: NKV, HD: HD, scratch: buffer)
            return out.array + dq.array + dk.array + dv.array
        }
        #expect(one == many)
    }
}
