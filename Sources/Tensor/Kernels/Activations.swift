// Elementwise activations and their backward: SiLU, GELU (tanh approximation), ReLU, and the
// SwiGLU gate silu(gate) · up. Each backward accumulates into its input gradients.
// Not the norms or the softmax (their own files).
//
// Shapes (legend in Tensor.swift): N elements. The public kernels are the fast ones; each has a plain-loop
// `…Reference` twin at the bottom of the file that the tests hold it to.

import Foundation

/// √(2/π), the GELU tanh-approximation constant.
let geluScale: Float = 0.797_884_56
/// The cubic coefficient of the GELU tanh approximation (GPT-2 `gelu_new`).
let geluCubic: Float = 0.044_715

/// out = inp · sigmoid(inp). out, inp: (N); out may alias inp.
public func siluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    parallelVectorLoop(N) { i, count in
        let x = load16(inp + i, count)
        store16(x * sigmoid16(x), out + i, count)
    }
}

/// dinp += dout · silu′(inp). dinp, dout, inp: (N).
public func siluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    parallelVectorLoop(N) { i, count in
        let x = load16(inp + i, count), s = sigmoid16(x)
        store16(load16(dinp + i, count) + load16(dout + i, count) * s * (1 + x * (1 - s)), dinp + i, count)
    }
}

/// out = ½ · inp · (1 + tanh(√(2/π) · (inp + 0.044715 · inp³))). out, inp: (N); out may alias inp.
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    // ½ x (1 + tanh(y)) = x · sigmoid(2y): one exp and no cancellation near tanh = −1.
    parallelVectorLoop(N) { i, count in
        let x = load16(inp + i, count)
        store16(x * sigmoid16((2 * geluScale) * x * (1 + geluCubic * x * x)), out + i, count)
    }
}

/// dinp += dout · gelu′(inp). dinp, dout, inp: (N).
public func geluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    // With s = sigmoid(2y): gelu = x·s and gelu′ = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715x²).
    parallelVectorLoop(N) { i, count in
        let x = load16(inp + i, count), x2 = x * x
        let s = sigmoid16((2 * geluScale) * x * (1 + geluCubic * x2))
        let slope: Vec16 = (2 * geluScale) * (1 + (3 * geluCubic) * x2)
        let grad: Vec16 = s + x * s * (1 - s) * slope
        store16(load16(dinp + i, count) + load16(dout + i, count) * grad, dinp + i, count)
    }
}

/// out = max(inp, 0). out, inp: (N); out may alias inp.
public func reluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    parallelVectorLoop(N) { i, count in
        let x = load16(inp + i, count)
        store16(x.replacing(with: 0, where: x .<= 0), out + i, count)
    }
}

/// dinp += dout where inp > 0. dinp, dout, inp: (N).
public func reluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    parallelVectorLoop(N) { i, count in
        let g = load16(dout + i, count).replacing(with: 0, where: load16(inp + i, count) .<= 0)
        store16(load16(dinp + i, count) + g, dinp + i, count)
    }
}

/// out = silu(gate) · up (LLaMA MLP). out, gate, up: (N); out may alias gate or up.
public func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                          up: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    parallelVectorLoop(N) { i, count in
        let g = load16(gate + i, count)
        store16(g * sigmoid16(g) * load16(up + i, count), out + i, count)
    }
}

/// dgate += dout · up · silu′(gate); dup += dout · silu(gate). All (N).
public func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                           dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                           up: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    parallelVectorLoop(N) { i, count in
        let g = load16(gate + i, count), s = sigmoid16(g), dy = load16(dout + i, count)
        store16(load16(dgate + i, count) + dy * load16(up + i, count) * s * (1 + g * (1 - s)), dgate + i, count)
        store16(load16(dup + i, count) + dy * g * s, dup + i, count)
    }
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `siluForward`.
public func siluForwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N { out[i] = inp[i] / (1 + exp(-inp[i])) }
}

/// Plain-loop `siluBackward`: silu′(x) = σ(x) · (1 + x · (1 − σ(x))).
public func siluBackwardReference(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                  inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N {
        let s = 1 / (1 + exp(-inp[i]))
        dinp[i] += dout[i] * s * (1 + inp[i] * (1 - s))
    }
}

/// Plain-loop `geluForward`.
public func geluForwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N {
        let x = inp[i]
        out[i] = 0.5 * x * (1 + tanh(geluScale * (x + geluCubic * x * x * x)))
    }
}

/// Plain-loop `geluBackward`: gelu′(x) = ½(1 + t) + ½ x (1 − t²) √(2/π) (1 + 3 · 0.044715 x²).
public func geluBackwardReference(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                  inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N {
        let x = inp[i]
        let t = tanh(geluScale * (x + geluCubic * x * x * x))
        let grad = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * geluScale * (1 + 3 * geluCubic * x * x)
        dinp[i] += dout[i] * grad
    }
}

/// Plain-loop `reluForward`.
public func reluForwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N { out[i] = inp[i] > 0 ? inp[i] : 0 }
}

/// Plain-loop `reluBackward`.
public func reluBackwardReference(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                  inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N where inp[i] > 0 { dinp[i] += dout[i] }
}

/// Plain-loop `swigluForward`.
public func swigluForwardReference(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                                   up: UnsafePointer<Float>, N: Int) {
    for i in 0..<N { out[i] = gate[i] / (1 + exp(-gate[i])) * up[i] }
}

/// Plain-loop `swigluBackward`.
public func swigluBackwardReference(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                                    dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                    up: UnsafePointer<Float>, N: Int) {
    for i in 0..<N {
        let g = gate[i], s = 1 / (1 + exp(-g))
        dgate[i] += dout[i] * up[i] * s * (1 + g * (1 - s))
        dup[i] += dout[i] * g * s
    }
}
