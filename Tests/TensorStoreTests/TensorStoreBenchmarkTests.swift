// The benchmark itself runs (on a tiny model), sizes its store correctly and cleans up after itself.
// It asserts no timings: speed is reported by `streamline bench`, never checked by tests.

import Foundation
import Testing
@testable import TensorStore

@Suite struct TensorStoreBenchmarkTests {
    @Test func tinyRunCountsEveryTensorAndLeavesNothingBehind() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let result = try TensorStoreBenchmark.run(folder: folder.url, layers: 2, hidden: 8, kvWidth: 4, ffn: 16, vocab: 32)
        // embedding + final norm, then per layer 2 norms (8) + wq, wo (8x8) + wk, wv (4x8) + gate, up, down (16x8).
        let floats = 32 * 8 + 8 + 2 * (2 * 8 + 2 * 64 + 2 * 32 + 3 * 128)
        #expect(result.tensors == 2 + 2 * 9)
        #expect(result.megabytes == Double(floats * 4) / 1e6)
        #expect([result.writeSeconds, result.readWarmSeconds, result.readColdSeconds, result.verifySeconds,
                 result.hashSeconds, result.indexSeconds].allSatisfy { $0 > 0 })
        #expect(result.report.contains("20 tensors"))
        #expect(try folder.contents().isEmpty)
    }
}
