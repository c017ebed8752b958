// The end-to-end check of issue 3: SmolLM2 imported from GGUF, run by Streamline's decoder on the
// reference's token ids, gives the perplexity the independent Python reference computed in float64
// (Tests/DataTests/Fixtures/smollm2-hamlet-reference.json), within 0.1% relative. The test scores the
// first `windows` windows of the reference protocol (debug builds run ~2 min per window); the
// reference records each window's NLL sum, so any prefix compares exactly like the whole.

import Foundation
import Model
import Testing
@testable import Data

@Suite struct SmolLM2PerplexityTests {
    @Test func matchesIndependentReference() throws {
        let reference = try ReferenceFixture.load()
        let model = try GGUFImport.load(url: Fetched.file(Fetched.smolLM2, target: "models"))
        let decoder = try Decoder(config: model.config, parameters: model.parameters)
        let windows = 2
        let T = reference.protocolInfo.window, W = windows
        #expect(!reference.protocolInfo.bos && reference.tokenIDs.count == reference.protocolInfo.windows * T)
        // Window w: tokens [wT, (w+1)T); position t predicts t+1; the last position has no target.
        var targets = [Int32](repeating: -1, count: W * T)
        for w in 0..<W { for t in 0..<(T - 1) { targets[w * T + t] = reference.tokenIDs[w * T + t + 1] } }
        let (sum, count) = decoder.negativeLogLikelihood(tokens: Array(reference.tokenIDs.prefix(W * T)), targets: targets, B: W, T: T)
        #expect(count == W * (T - 1))
        let perplexity = exp(sum / Double(count))
        let expected = exp(reference.windowNLLSums.prefix(W).reduce(0, +) / Double(count))
        let relative = abs(perplexity - expected) / expected
        print("SmolLM2 perplexity over \(W) windows: Streamline \(perplexity), reference \(expected), relative \(relative)")
        #expect(relative < 1e-3, "Streamline \(perplexity) vs reference \(expected) (relative \(relative))")
    }
}
