// Vector helpers shared by the kernels in Kernels/: 16-lane float vectors, loads and stores that
// handle a short tail, loops over a range in 16-lane steps (optionally split across threads), and a
// polynomial exp with sigmoid built on it. Not a general math library: only what the kernels use.
//
// Why SIMD16 and a polynomial exp: design.md measured that SIMD16<Float> with a polynomial exp
// matches C for softmax, RMSNorm and GELU, while scalar Foundation.exp does not vectorise and
// SIMD.clamped is 35× slower than masked `replace(with:where:)`.

/// The vector type of every kernel.
typealias Vec16 = SIMD16<Float>

/// Loads `count` (1...16) floats from p; lanes past `count` hold `pad`.
@inline(__always)
func load16(_ p: UnsafePointer<Float>, _ count: Int, pad: Float = 0) -> Vec16 {
    count == 16 ? UnsafeRawPointer(p).loadUnaligned(as: Vec16.self) : loadPartial(p, count, pad: pad)
}

/// Stores the first `count` (1...16) lanes of v at p.
@inline(__always)
func store16(_ v: Vec16, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count == 16 {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec16.self)
    } else {
        storePartial(v, p, count)
    }
}

// The tail paths stay out of line so loop bodies stay small enough to inline.
@inline(never)
func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, pad: Float) -> Vec16 {
    var v = Vec16(repeating: pad)
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(never)
func storePartial(_ v: Vec16, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { p[i] = v[i] }
}

/// Calls body(i, count) for i = lower, lower + 16, … with count = 16 except for a short last step.
/// `body` has one call site on purpose: the optimiser then inlines the closure (with two call sites,
/// full and tail, it kept it out of line and paid a call per vector: 2.5× slower).
@inline(__always)
func vectorLoop(_ range: Range<Int>, _ body: (_ i: Int, _ count: Int) -> Void) {
    var i = range.lowerBound
    while i < range.upperBound {
        body(i, min(16, range.upperBound - i))
        i += 16
    }
}

/// Elements below which an elementwise loop stays on one thread (a parallel dispatch costs ~10 µs).
let parallelGrain = 1 << 15

/// `vectorLoop` over 0..<n split across threads in chunks of whole vectors. Each element is computed
/// the same way whatever the split, so results do not depend on the thread count.
@inline(__always)
func parallelVectorLoop(_ n: Int, _ body: (_ i: Int, _ count: Int) -> Void) {
    let vectors = (n + 15) / 16
    Threading.parallelFor(vectors, minChunk: parallelGrain / 16) { chunk in
        vectorLoop((chunk.lowerBound * 16)..<min(n, chunk.upperBound * 16), body)
    }
}

/// Lane-wise maximum (masked replace: `pointwiseMax`/`clamped` do not vectorise well).
@inline(__always)
func max16(_ a: Vec16, _ b: Vec16) -> Vec16 {
    a.replacing(with: b, where: b .> a)
}

/// Lane-wise e^x, within 2 float ulps of the correctly rounded value (Cephes expf polynomial after
/// Cody-Waite range reduction). Below −87.3 it returns 0, above 88.3 +inf; NaN stays NaN.
@inline(__always)
func exp16(_ x: Vec16) -> Vec16 {
    let high: Float = 88.3, low: Float = -87.3
    // Clamp so that 2^n stays a normal float; the out-of-range lanes are fixed at the end.
    var xc = x.replacing(with: high, where: x .> high)
    xc.replace(with: low, where: xc .< low)
    // n = round(x / ln 2) through the 1.5·2^23 trick: adding it leaves n in the low mantissa bits.
    let magic: Float = 12_582_912
    let shifted = xc * 1.442_695_04 + magic
    let n = shifted - magic
    // r = x − n·ln2 in two steps (ln2 split into an exact high part and a small low part).
    var r = xc - n * 0.693_359_375
    r -= n * -2.121_944_4e-4
    var p = Vec16(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 0.166_666_655
    p = p * r + 0.500_000_01
    let expR = p * r * r + r + 1
    // 2^n from the integer bits of `shifted` (its mantissa holds 2^22 + n).
    let nBits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- Int32(bitPattern: magic.bitPattern)
    let pow2 = unsafeBitCast((nBits &+ 127) &<< 23, to: Vec16.self)
    var result = expR * pow2
    result.replace(with: 0, where: x .< low)
    result.replace(with: .infinity, where: x .> high)
    return result
}

/// Lane-wise logistic sigmoid 1 / (1 + e^−x); exact limits 0 and 1 at the extremes.
@inline(__always)
func sigmoid16(_ x: Vec16) -> Vec16 {
    1 / (1 + exp16(-x))
}

/// Runs body over column ranges of a (rows, columns) reduction split across threads. The body loops
/// over every row in increasing order for its columns, so each column's sum has one fixed order and
/// the bits do not depend on the thread count (weight and bias gradients, embedding scatter-add).
/// Rows outer and columns inner inside the body keep the accumulators in L1 and vectorise.
@inline(__always)
func parallelColumns(_ columns: Int, rows: Int, _ body: (_ columns: Range<Int>) -> Void) {
    // Split on multiples of 16 columns so neighbouring threads never share a cache line of output.
    let vectors = (columns + 15) / 16
    Threading.parallelFor(vectors, minChunk: max(1, parallelGrain / max(16 * rows, 1))) { chunk in
        body((chunk.lowerBound * 16)..<min(columns, chunk.upperBound * 16))
    }
}
