// Models with matrices on their residual connections (SliceGPT) cannot be written as LLaMA
// checkpoints: both export formats refuse them with the typed error that says why and what to do.

import Model
import Tensor
import Testing
@testable import Data

@Suite struct ShortcutExportTests {
    /// A toy LLaMA of sliced shape: C 6 below D 8, untied, shortcut matrices on.
    static let config = ModelConfig(
        architecture: .llama, vocabSize: 11, hiddenSize: 6, headDim: 4,
        layers: Array(repeating: LayerShape(heads: 2, kvHeads: 1, ffn: 10), count: 2),
        norm: .rmsnorm, normEps: 1e-5, normDivisor: 8, activation: .swiglu, positions: .rope,
        maxPositions: 16, bias: false, tiedEmbeddings: false, shortcuts: true)

    @Test func bothFormatsRefuseShortcutModels() {
        let parameters = Decoder.initialized(config: Self.config, seed: 1).parameters
        #expect(throws: DataError.shortcutsNotExportable(format: "HF")) {
            try HFExport.folder(config: Self.config, parameters: parameters, tokenizer: nil)
        }
        #expect(throws: DataError.shortcutsNotExportable(format: "GGUF")) {
            try GGUFExport.encode(config: Self.config, parameters: parameters, tokenizer: nil)
        }
        let message = DataError.shortcutsNotExportable(format: "HF").description
        #expect(message.contains("slicegpt") && message.contains("residual connection") && message.contains("rotate"))
    }

    /// The same model without the matrices exports: the refusal is about them, not the widths.
    @Test func theSameShapeWithoutShortcutsExports() throws {
        var plain = Self.config
        plain.shortcuts = nil
        let parameters = Decoder.initialized(config: plain, seed: 1).parameters
        let folder = try HFExport.folder(config: plain, parameters: parameters, tokenizer: nil)
        #expect(folder.tensors.count == plain.parameterSpecs.count)
    }
}
