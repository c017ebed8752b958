// The rotation (Model/Rotation.swift) on the real SmolLM2-135M: its principal basis on a little
// Shakespeare leaves the logits of another passage unchanged (tied head untied, norm scales folded),
// and the energy the last 25% of the sorted channels carry is small, as design.md measured.

import Foundation
import Model
import Tensor
import Testing
@testable import Data

@Suite struct SmolLM2RotationTests {
    @Test func rotatedSmolLM2ComputesTheSameLogits() throws {
        let model = try GGUFImport.load(url: try Fetched.file(Fetched.smolLM2, target: "models"))
        let tokenizer = try #require(model.tokenizer)
        let text = try String(contentsOf: try Fetched.file(Fetched.hamlet, target: "corpora"), encoding: .utf8)
        let ids = tokenizer.encode(String(text.prefix(4000)))
        let calibration = [Array(ids[0..<48]), Array(ids[48..<96])], probe = Array(ids[200..<224])
        let decoder = try Decoder(config: model.config, parameters: model.parameters)
        let expected = decoder.logits(tokens: probe, B: 1, T: probe.count)
        let (basis, variances) = try ResidualRotation.principalBasis(model: decoder, windows: calibration)
        let (config, parameters) = try ResidualRotation.rotate(config: model.config, parameters: model.parameters, basis: basis)
        let rotated = try Decoder(config: config, parameters: parameters)
        let logits = rotated.logits(tokens: probe, B: 1, T: probe.count)
        let difference = zip(logits.array, expected.array).map { abs(Double($0) - Double($1)) }.max()!
        let scale = Double(expected.array.map(abs).max()!)
        #expect(difference <= 1e-4 * scale, "logits differ by \(difference) (largest \(scale))")
        #expect(config.parameterCount == model.parameters.count + 49152 * 576)
        // The last 144 of 576 sorted directions hold a few percent of the energy (2.4% on 4096 tokens).
        let tail = variances[432...].reduce(0, +) / variances.reduce(0, +)
        #expect(tail < 0.06, "last 25% of the channels hold \(tail) of the energy")
    }
}
