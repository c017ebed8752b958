// An independent float64 decoder written as plain loops straight from the formulas in ModelConfig's
// comments (no kernels, no buffers shared with the model). Its loss is exact enough (~1e-15) for
// central differences with tiny steps, which the float32 model's own loss is not (~1e-7 rounding),
// and tiny steps never cross a ReLU kink.

import Foundation
@testable import Model

struct ReferenceDecoder {
    let config: ModelConfig
    /// Parameters as float64 arrays by canonical name (adapters too, with `loraScale`).
    var weights: [String: [Double]]
    var loraScale = 0.0

    init(_ model: Decoder) {
        config = model.config
        var weights: [String: [Double]] = [:]
        for name in model.parameters.names { weights[name] = model.parameters.value(name).array.map(Double.init) }
        if let adapters = model.adapters {
            for name in adapters.names { weights[name] = adapters.value(name).array.map(Double.init) }
            loraScale = Double(model.loraScale)
        }
        self.weights = weights
    }

    /// Mean cross-entropy over targets ≠ −1.
    func loss(tokens: [Int32], targets: [Int32], B: Int, T: Int) -> Double {
        crossEntropy(logits(tokens: tokens, B: B, T: T), targets: targets)
    }

    /// Mean cross-entropy of logits rows over targets ≠ −1.
    func crossEntropy(_ logits: [[Double]], targets: [Int32]) -> Double {
        var sum = 0.0, count = 0
        for n in logits.indices where targets[n] >= 0 {
            let row = logits[n], m = row.max()!
            sum += log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[Int(targets[n])]
            count += 1
        }
        return sum / Double(count)
    }

    /// Logits per row n = b·T + t.
    func logits(tokens: [Int32], B: Int, T: Int) -> [[Double]] {
        var x = embed(tokens: tokens, B: B, T: T)
        for l in 0..<config.layerCount { x = layer(l, x, B: B, T: T) }
        return head(x)
    }

    /// The logits of the residual stream x_L: final norm, then the LM head.
    func head(_ x: [[Double]]) -> [[Double]] {
        let head = config.tiedEmbeddings ? "embed/tokens" : "lm_head"
        return norm("final_norm", x).map { linear(head, $0, bias: nil) }
    }

    /// x₀ per row n = b·T + t: token embeddings (+ learned positions).
    func embed(tokens: [Int32], B: Int, T: Int) -> [[Double]] {
        let C = config.hiddenSize
        return (0..<(B * T)).map { n -> [Double] in
            var row = Array(weights["embed/tokens"]![(Int(tokens[n]) * C)..<(Int(tokens[n]) * C + C)])
            if config.positions == .learned {
                let t = n % T
                for c in 0..<C { row[c] += weights["embed/positions"]![t * C + c] }
            }
            return row
        }
    }

    func layer(_ l: Int, _ x: [[Double]], B: Int, T: Int) -> [[Double]] {
        mlpBlock(l, attentionBlock(l, x, B: B, T: T))
    }

    /// mid = x + attention(attn_norm(x))·Woᵀ (+ bo); x·S_attnᵀ instead of x with a shortcut matrix.
    func attentionBlock(_ l: Int, _ x: [[Double]], B: Int, T: Int) -> [[Double]] {
        let p = "layers/\(l)", shape = config.layers[l], HD = config.headDim
        let n1 = norm("\(p)/attn_norm", x)
        let bias = config.bias
        var q = n1.map { linear("\(p)/attn/wq", $0, bias: bias ? "\(p)/attn/bq" : nil) }
        var k = n1.map { linear("\(p)/attn/wk", $0, bias: bias ? "\(p)/attn/bk" : nil) }
        let v = n1.map { linear("\(p)/attn/wv", $0, bias: bias ? "\(p)/attn/bv" : nil) }
        if config.positions == .rope {
            for n in 0..<(B * T) {
                q[n] = rotate(q[n], position: n % T, heads: shape.heads)
                k[n] = rotate(k[n], position: n % T, heads: shape.kvHeads)
            }
        }
        var att = [[Double]](repeating: [Double](repeating: 0, count: shape.heads * HD), count: B * T)
        let group = shape.heads / shape.kvHeads
        for b in 0..<B {
            for h in 0..<shape.heads {
                let kh = h / group
                for t in 0..<T {
                    let qn = b * T + t
                    var scores = (0...t).map { s -> Double in
                        (0..<HD).reduce(0) { $0 + q[qn][h * HD + $1] * k[b * T + s][kh * HD + $1] } / Double(HD).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for s in 0...t {
                        for d in 0..<HD { att[qn][h * HD + d] += scores[s] / total * v[b * T + s][kh * HD + d] }
                    }
                }
            }
        }
        return zip(x, att).map { xi, ai in zip(shortcut("\(p)/attn/shortcut", xi), linear("\(p)/attn/wo", ai, bias: bias ? "\(p)/attn/bo" : nil)).map(+) }
    }

    /// x' = mid + mlp(mlp_norm(mid)); mid·S_mlpᵀ instead of mid with a shortcut matrix.
    func mlpBlock(_ l: Int, _ mid: [[Double]]) -> [[Double]] {
        let p = "layers/\(l)", bias = config.bias
        let n2 = norm("\(p)/mlp_norm", mid)
        let hidden = n2.map { row -> [Double] in
            let up = linear("\(p)/mlp/w_up", row, bias: bias ? "\(p)/mlp/b_up" : nil)
            switch config.activation {
            case .swiglu:
                let gate = linear("\(p)/mlp/w_gate", row, bias: nil)
                return zip(gate, up).map { g, u in g / (1 + exp(-g)) * u }
            case .gelu:
                return up.map { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
            case .relu:
                return up.map { max($0, 0) }
            }
        }
        return zip(mid, hidden).map { m, h in zip(shortcut("\(p)/mlp/shortcut", m), linear("\(p)/mlp/w_down", h, bias: bias ? "\(p)/mlp/b_down" : nil)).map(+) }
    }

    /// The residual path: x, or x·Sᵀ when the model carries the shortcut matrix `name` (SliceGPT).
    func shortcut(_ name: String, _ x: [Double]) -> [Double] {
        weights[name] == nil ? x : linear(name, x, bias: nil)
    }

    /// y = x·Wᵀ + b (+ scale·(x·Aᵀ)·Bᵀ when `<weight>/lora_a` exists).
    func linear(_ weight: String, _ x: [Double], bias: String?) -> [Double] {
        let w = weights[weight]!, IN = x.count, OUT = w.count / IN
        var y = (0..<OUT).map { o in (0..<IN).reduce(0) { $0 + w[o * IN + $1] * x[$1] } + (bias.map { weights[$0]![o] } ?? 0) }
        if let a = weights["\(weight)/lora_a"], let bMatrix = weights["\(weight)/lora_b"] {
            let R = a.count / IN
            let inner = (0..<R).map { r in (0..<IN).reduce(0) { $0 + a[r * IN + $1] * x[$1] } }
            for o in 0..<OUT { y[o] += loraScale * (0..<R).reduce(0) { $0 + bMatrix[o * R + $1] * inner[$1] } }
        }
        return y
    }

    /// RMSNorm or LayerNorm dividing by normDivisor D.
    func norm(_ prefix: String, _ x: [[Double]]) -> [[Double]] {
        let D = Double(config.normDivisor), eps = Double(config.normEps), scale = weights["\(prefix)/scale"]!
        return x.map { row in
            if config.norm == .rmsnorm {
                let r = 1 / (row.map { $0 * $0 }.reduce(0, +) / D + eps).squareRoot()
                return row.indices.map { row[$0] * r * scale[$0] }
            }
            let mean = row.reduce(0, +) / D
            let variance = row.map { $0 * $0 }.reduce(0, +) / D - mean * mean
            let r = 1 / (variance + eps).squareRoot(), shift = weights["\(prefix)/shift"]!
            return row.indices.map { (row[$0] - mean) * r * scale[$0] + shift[$0] }
        }
    }

    /// Rotate-half RoPE of every head of one row.
    func rotate(_ x: [Double], position: Int, heads: Int) -> [Double] {
        let HD = config.headDim, half = HD / 2
        var y = x
        for h in 0..<heads {
            for i in 0..<half {
                let angle = Double(position) * pow(Double(config.ropeTheta), -2 * Double(i) / Double(HD))
                let x1 = x[h * HD + i], x2 = x[h * HD + half + i]
                y[h * HD + i] = x1 * cos(angle) - x2 * sin(angle)
                y[h * HD + half + i] = x2 * cos(angle) + x1 * sin(angle)
            }
        }
        return y
    }
}
