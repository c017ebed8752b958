// A tiny language model with a hand-written backward, used to test the optimiser and the loop without
// the real decoder: logits(b, t) = W · E[token(b, t)] + bias, loss = mean cross-entropy over B·T.
// Plain loops; small enough that every result is deterministic and cheap.

import Tensor
@testable import Training

final class TinyLM: TrainableModel {
    /// V vocabulary, C width.
    let V: Int, C: Int
    /// embed [V, C], proj/w [V, C], proj/b [V].
    let parameters: ParameterSet
    private var saved: (tokens: [Int32], targets: [Int32], hidden: [Float], probs: [Float], B: Int, T: Int)?

    init(V: Int, C: Int, seed: UInt64) {
        self.V = V
        self.C = C
        parameters = ParameterSet([ParameterSpec("embed", [V, C]), ParameterSpec("proj/w", [V, C]), ParameterSpec("proj/b", [V])])
        var rng = RNG(seed: seed)
        parameters.values.fillNormal(&rng, std: 0.5)
    }

    var trainableSets: [ParameterSet] { [parameters] }

    func forward(tokens: [Int32], targets: [Int32]?, B: Int, T: Int) -> Float {
        let E = parameters.value("embed").data, W = parameters.value("proj/w").data, bias = parameters.value("proj/b").data
        let N = B * T
        var hidden = [Float](repeating: 0, count: N * C)   // (B·T, C)
        var probs = [Float](repeating: 0, count: N * V)    // (B·T, V)
        var loss = 0.0
        for n in 0..<N {
            let tok = Int(tokens[n])
            for c in 0..<C { hidden[n * C + c] = E[tok * C + c] }
            var maxLogit = -Float.infinity
            for v in 0..<V {
                var z = bias[v]
                for c in 0..<C { z += W[v * C + c] * hidden[n * C + c] }
                probs[n * V + v] = z
                maxLogit = max(maxLogit, z)
            }
            var sum: Float = 0
            for v in 0..<V {
                probs[n * V + v] = expf(probs[n * V + v] - maxLogit)
                sum += probs[n * V + v]
            }
            for v in 0..<V { probs[n * V + v] /= sum }
            if let targets { loss -= Double(logf(probs[n * V + Int(targets[n])])) }
        }
        saved = (tokens, targets ?? [], hidden, probs, B, T)
        return Float(loss / Double(N))
    }

    func backward() {
        guard let s = saved else { preconditionFailure("TinyLM.backward before forward") }
        let W = parameters.value("proj/w").data
        let dE = parameters.grad("embed").data, dW = parameters.grad("proj/w").data, db = parameters.grad("proj/b").data
        let N = s.B * s.T
        for n in 0..<N {
            let tok = Int(s.tokens[n])
            for v in 0..<V {
                let dz = (s.probs[n * V + v] - (Int(s.targets[n]) == v ? 1 : 0)) / Float(N)
                db[v] += dz
                for c in 0..<C {
                    dW[v * C + c] += dz * s.hidden[n * C + c]
                    dE[tok * C + c] += dz * W[v * C + c]
                }
            }
        }
    }
}

/// Largest |a − b| over two equally long buffers.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
