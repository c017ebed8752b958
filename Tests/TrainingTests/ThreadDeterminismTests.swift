// Results must not depend on the thread count (threads are not part of a stage's fingerprint): the
// GEMM wrapper for long inner sizes, and a LoRA decoder's forward, backward and trainer steps, give
// the same bits with 1, 2 and 3 threads.

import Testing
import Tensor
import Model
@testable import Training

@Suite(.serialized) struct ThreadDeterminismTests {
    /// `body` run with 1, 2 and 3 threads (the budget is restored afterwards).
    func onOneTwoAndThreeThreads<R>(_ body: () throws -> R) rethrows -> [R] {
        let saved = Threading.threads
        defer { Threading.configure(threads: saved) }
        return try [1, 2, 3].map { threads in
            Threading.configure(threads: threads)
            return try body()
        }
    }

    func differing(_ a: [UInt32], _ b: [UInt32]) -> Int { zip(a, b).filter { $0 != $1 }.count }

    func filled(_ count: Int, seed: UInt64) -> Tensor {
        let t = Tensor(zeros: [count])
        var rng = RNG(seed: seed)
        t.fillNormal(&rng, std: 1)
        return t
    }

    /// Inner sizes between one and three of OpenBLAS's K blocks are where its threaded and
    /// single-threaded drivers used to split K differently (weight gradients: K = B·T tokens).
    @Test(arguments: [(64, 64, 336), (96, 32, 700), (576, 32, 1_000), (32, 576, 2_064)])
    func sgemmWithLongInnerSize(M: Int, N: Int, K: Int) {
        let a = filled(M * K, seed: 1), b = filled(K * N, seed: 2), c0 = filled(M * N, seed: 3)
        let results = onOneTwoAndThreeThreads { () -> [UInt32] in
            let c = c0.copy()
            sgemm(transA: true, M: M, N: N, K: K, alpha: 0.5, A: a.data, lda: M, B: b.data, ldb: N, beta: 1, C: c.data, ldc: N)
            return c.array.map(\.bitPattern)
        }
        for (threads, other) in zip([2, 3], results.dropFirst()) {
            let differing = zip(results[0], other).filter { $0 != $1 }.count
            #expect(differing == 0, "\(differing) of \(M * N) outputs differ between 1 and \(threads) threads")
        }
    }

    /// Every loss, base and adapter gradient and weight after a few LoRA trainer steps with clipping.
    @Test func loraDecoderTrainingIsBitIdentical() throws {
        let config = ModelConfig.llama(vocabSize: 64, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, maxPositions: 128)
        let text: [Int32] = (0..<4_000).map { Int32(($0 * 37 + $0 / 7) % 64) }
        let runs = try onOneTwoAndThreeThreads { () -> (losses: [Float], grads: [UInt32], base: [UInt32], lora: [UInt32]) in
            let model = Decoder.initialized(config: config, seed: 11)
            try model.addLoRA(rank: 8, alpha: 10, seed: 12)
            let batch = try TokenSampler(stream: text, T: 84, seed: 5).batch(first: 0, count: 4)
            var losses = [model.forward(tokens: batch.tokens, targets: batch.targets, B: batch.B, T: batch.T)]
            model.backward()
            let grads = (model.parameters.grads.array + model.adapters!.grads.array).map(\.bitPattern)
            model.parameters.grads.zero()
            model.adapters!.grads.zero()
            let trainer = try Trainer(model: model, config: TrainerConfig(steps: 3, batchSize: 4, seqLen: 84, clipNorm: 0.5,
                                                                          schedule: LRSchedule(kind: .constant, lr: 1e-3)),
                                      batches: TokenSampler(stream: text, T: 84, seed: 6))
            try trainer.run { losses.append($0.loss) }
            return (losses, grads, model.parameters.values.array.map(\.bitPattern), model.adapters!.values.array.map(\.bitPattern))
        }
        for other in runs.dropFirst() {
            #expect(runs[0].losses.map(\.bitPattern) == other.losses.map(\.bitPattern), "losses \(runs[0].losses) vs \(other.losses)")
            #expect(runs[0].grads.count == other.grads.count && differing(runs[0].grads, other.grads) == 0, "first gradients")
            #expect(runs[0].base.count == other.base.count && differing(runs[0].base, other.base) == 0, "base weights after training")
            #expect(runs[0].lora.count == other.lora.count && differing(runs[0].lora, other.lora) == 0, "adapters after training")
        }
    }

    /// Full-weight forward and backward over a batch whose attention runs as one parallel loop over
    /// B·NH heads (backward: B·NKV groups). One model, its buffers planned on the first budget and
    /// reused on the others, so the attention scratch may hold fewer worker shares than threads.
    @Test func wholeBatchAttentionIsBitIdentical() {
        let config = ModelConfig.llama(vocabSize: 64, hiddenSize: 96, layers: 2, heads: 6, kvHeads: 2, ffn: 128, maxPositions: 160)
        let (B, T) = (3, 150)
        let tokens: [Int32] = (0..<(B * T)).map { Int32(($0 * 29 + $0 / 5) % 64) }
        let targets: [Int32] = (0..<(B * T)).map { Int32(($0 * 13 + 7) % 64) }
        let model = Decoder.initialized(config: config, seed: 21)
        let runs = onOneTwoAndThreeThreads { () -> (loss: UInt32, grads: [UInt32], nll: UInt64) in
            model.parameters.zeroGrads()
            let loss = model.forward(tokens: tokens, targets: targets, B: B, T: T)
            model.backward()
            let grads = model.parameters.grads.array.map(\.bitPattern)
            let nll = model.negativeLogLikelihood(tokens: tokens, targets: targets, B: B, T: T).sum
            return (loss.bitPattern, grads, nll.bitPattern)
        }
        for other in runs.dropFirst() {
            #expect(runs[0].loss == other.loss && runs[0].nll == other.nll)
            #expect(runs[0].grads.count == other.grads.count && differing(runs[0].grads, other.grads) == 0, "gradients")
        }
    }
}
