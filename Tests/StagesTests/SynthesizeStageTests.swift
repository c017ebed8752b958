// The `synthesize` stage on a tiny self-trained model: the dataset has the requested documents and
// lengths, the model's tokenizer, text the model would write (a trained tiny model mostly continues
// its own sentences), the same bytes on a second run, and a prompt too long for the model is refused.

import Foundation
import StageTestSupport
import Testing
import Data
import Model
import Pipeline
import Stages
import Tensor
import TensorStore

@Suite struct SynthesizeStageTests {
    @Test func samplesTheRequestedDocumentsDeterministically() throws {
        let dir = try temporaryProject([:])
        let tiny = try runKind(TinyLMStage(), params: ["train_steps": .int(60), "sentences": .int(200)], in: dir)
        let model = try ModelStore(store: tiny["model"]!)
        let params: [String: ParamValue] = ["sequences": .int(5), "length": .int(12), "batch": .int(2), "prompt": .string("the")]
        let first = try runKind(SynthesizeStage(), params: params, inputs: ["model": tiny["model"]!], in: dir)
        let data = try TokenDataset(store: first["data"]!)
        #expect(data.documentStarts == [0, 12, 24, 36, 48] && data.tokens.count == 60)
        #expect(data.tokenizerDigest == model.tokenizer.digest)
        #expect(Set(data.tokens).count > 3, "sampled, not one repeated token: \(data.tokens)")
        // What a model writes is far likelier under it than random tokens are.
        let decoder = try model.decoder()
        func meanNLL(_ tokens: [Int32]) -> Double {
            let r = decoder.negativeLogLikelihood(tokens: Array(tokens.dropLast()), targets: Array(tokens.dropFirst()), B: 1, T: tokens.count - 1)
            return r.sum / Double(r.count)
        }
        var rng = RNG(seed: 3)
        let noise = (0..<60).map { _ in Int32(rng.nextInt(below: model.config.vocabSize)) }
        #expect(meanNLL(data.tokens) < meanNLL(noise) - 0.5, "sampled \(meanNLL(data.tokens)), random \(meanNLL(noise))")
        let again = try runKind(SynthesizeStage(), params: params, inputs: ["model": tiny["model"]!], in: dir)
        #expect(try TensorStoreReader.digest(ofStoreAt: first["data"]!) == TensorStoreReader.digest(ofStoreAt: again["data"]!))

        let tooLong = params.merging(["length": .int(model.config.maxPositions)]) { $1 }
        #expect {
            try runKind(SynthesizeStage(), params: tooLong, inputs: ["model": tiny["model"]!], in: dir)
        } throws: { error in
            "\(error)".contains("parameter 'length'") && "\(error)".contains("positions")
        }
    }
}
