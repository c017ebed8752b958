// Test support for the kernel suites: seeded random inputs, `checkTensor` (prints the max absolute and
// relative difference per named tensor and expects it under a tolerance), and central-difference
// gradients of Double reference implementations.

import Testing
@testable import Tensor

/// A rank-1 tensor holding `values` (kernels take its `.data`).
func tensor(_ values: [Float]) -> Tensor { Tensor(shape: [values.count], values: values) }

/// A rank-1 tensor of n seeded normal floats times `scale`.
func randomTensor(_ n: Int, seed: UInt64, scale: Float = 1) -> Tensor { Tensor.randn([n], seed: seed, std: scale) }

/// A rank-1 zero tensor of n floats.
func zeros(_ n: Int) -> Tensor { Tensor(zeros: [n]) }

/// The same values in Double, for the reference implementations.
func doubles(_ xs: Tensor) -> [Double] { xs.array.map(Double.init) }

/// Compares `actual` with `expected`, prints the max absolute difference and the max difference
/// relative to the largest expected magnitude, and expects the relative one to be at most `tolerance`.
func checkTensor(_ name: String, _ actual: [Float], _ expected: [Double], tolerance: Double,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(name): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    var maxAbs = 0.0, scale = 0.0
    for (a, e) in zip(actual, expected) {
        let diff = abs(Double(a) - e)
        // NaN must fail the check, so treat it as an infinite difference.
        maxAbs = diff.isNaN ? .infinity : max(maxAbs, diff)
        scale = max(scale, abs(e))
    }
    let relative = maxAbs / max(scale, 1e-30)
    print("checkTensor \(name): max abs diff \(maxAbs), relative to max |expected| \(relative) (max |expected| \(scale))")
    #expect(relative <= tolerance, "\(name): max rel diff \(relative) > \(tolerance) (max abs diff \(maxAbs))",
            sourceLocation: sourceLocation)
}

/// Float overload of `checkTensor` for comparing two float32 kernels (fast against reference).
func checkTensor(_ name: String, _ actual: Tensor, _ expected: Tensor, tolerance: Double,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    checkTensor(name, actual.array, doubles(expected), tolerance: tolerance, sourceLocation: sourceLocation)
}

/// Tensor overload of `checkTensor` against a Double reference.
func checkTensor(_ name: String, _ actual: Tensor, _ expected: [Double], tolerance: Double,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    checkTensor(name, actual.array, expected, tolerance: tolerance, sourceLocation: sourceLocation)
}

/// Central-difference gradient of `loss` at `x` (Double, step h).
func numericGradient(at x: [Double], h: Double = 1e-6, _ loss: ([Double]) -> Double) -> [Double] {
    var probe = x
    var grad = [Double](repeating: 0, count: x.count)
    for i in x.indices {
        probe[i] = x[i] + h
        let up = loss(probe)
        probe[i] = x[i] - h
        let down = loss(probe)
        probe[i] = x[i]
        grad[i] = (up - down) / (2 * h)
    }
    return grad
}

/// Σ out · weights: a scalar loss whose gradient with respect to `out` is `weights`.
func weightedSum(_ out: [Double], _ weights: Tensor) -> Double {
    precondition(out.count == weights.count)
    var sum = 0.0
    for (o, w) in zip(out, weights.array) { sum += o * Double(w) }
    return sum
}

/// What a backward added to a gradient buffer that held `before` (checks that it accumulates).
func added(_ after: Tensor, since before: [Float]) -> [Float] {
    zip(after.array, before).map { $0 - $1 }
}

/// Relative tolerance for a float32 kernel against a Double reference.
let forwardTolerance = 1e-5
/// Relative tolerance for a float32 backward against Double central differences (catches a wrong index).
let gradientTolerance = 1e-3

/// Which implementation of a kernel a parameterised test runs: the public (fast) one or its `…Reference`.
enum Variant: String, CaseIterable, Sendable, CustomStringConvertible {
    case fast, reference
    var description: String { rawValue }
}
