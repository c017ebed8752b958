// Residual connections and small elementwise helpers: out = inp1 + inp2 and its backward,
// out += inp, out *= scale. Nothing here allocates. Plain loops: with bounds checks off they
// vectorise on their own, and they run in parallel chunks when long.
//
// Shapes (legend in Tensor.swift): N elements. The public kernels are the fast ones; each has a plain-loop
// `…Reference` twin at the bottom of the file that the tests hold it to.

/// out = inp1 + inp2. out, inp1, inp2: (N); out may alias either input.
public func residualForward(out: UnsafeMutablePointer<Float>, inp1: UnsafePointer<Float>,
                           inp2: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        for i in range { out[i] = inp1[i] + inp2[i] }
    }
}

/// dinp1 += dout; dinp2 += dout. All (N).
public func residualBackward(dinp1: UnsafeMutablePointer<Float>, dinp2: UnsafeMutablePointer<Float>,
                             dout: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        for i in range {
            dinp1[i] += dout[i]
            dinp2[i] += dout[i]
        }
    }
}

/// out += inp. out, inp: (N).
public func addInPlace(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        addInPlaceSerial(out: out + range.lowerBound, inp: inp + range.lowerBound, N: range.count)
    }
}

/// out += inp on the calling thread (for use inside parallel loops). out, inp: (N).
@inline(__always)
func addInPlaceSerial(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    for i in 0..<N { out[i] += inp[i] }
}

/// out *= scale. out: (N).
public func scaleInPlace(out: UnsafeMutablePointer<Float>, scale: Float, N: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.elementwise, profiled) }
    Threading.parallelFor(N, minChunk: parallelGrain) { range in
        for i in range { out[i] *= scale }
    }
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `residualForward`.
public func residualForwardReference(out: UnsafeMutablePointer<Float>, inp1: UnsafePointer<Float>,
                                    inp2: UnsafePointer<Float>, N: Int) {
    for i in 0..<N { out[i] = inp1[i] + inp2[i] }
}

/// Plain-loop `residualBackward`.
public func residualBackwardReference(dinp1: UnsafeMutablePointer<Float>, dinp2: UnsafeMutablePointer<Float>,
                                     dout: UnsafePointer<Float>, N: Int) {
    for i in 0..<N {
        dinp1[i] += dout[i]
        dinp2[i] += dout[i]
    }
}
