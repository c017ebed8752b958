// OpProfile: kernels add their time to their category only while timing is on, and parallel loops
// never report more busy thread time than they offered. Serialized: the switch is process-wide.

import Testing
@testable import Tensor

@Suite(.serialized) struct OpProfileTests {
    @Test func offRecordsNothing() {
        OpProfile.enable(false)
        OpProfile.reset()
        let x = Tensor.randn([64, 512], seed: 1), w = Tensor(shape: [512], repeating: 1), out = Tensor(zeros: [64, 512]), rstd = Tensor(zeros: [64])
        rmsnormForward(out: out.data, rstd: rstd.data, inp: x.data, weight: w.data, N: 64, C: 512, D: 512, eps: 1e-5)
        let t = OpProfile.snapshot()
        #expect(t.nanoseconds.allSatisfy { $0 == 0 })
        #expect(t.parallelOffered == 0 && t.parallelBusy == 0)
    }

    @Test func onTimesTheKernelsCategoryAndItsLoops() {
        OpProfile.reset()
        OpProfile.enable(true)
        let x = Tensor.randn([256, 512], seed: 1), w = Tensor(shape: [512], repeating: 1), out = Tensor(zeros: [256, 512]), rstd = Tensor(zeros: [256])
        rmsnormForward(out: out.data, rstd: rstd.data, inp: x.data, weight: w.data, N: 256, C: 512, D: 512, eps: 1e-5)
        OpProfile.enable(false)
        let t = OpProfile.snapshot()
        #expect(t.nanoseconds[OpProfile.Category.norm.rawValue] > 0)
        #expect(t.parallelBusy > 0)
        #expect(t.parallelOffered >= t.parallelBusy)
        #expect(t.parallelIdle == t.parallelOffered - t.parallelBusy)
    }
}
