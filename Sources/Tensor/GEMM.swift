// Matrix products through cblas_sgemm. Everything in Streamline is row-major.

import CBLAS

/// C[M×N] = alpha · op(A) · op(B) + beta · C, row-major; op(X) is X or Xᵀ.
/// A is M×K (or K×M when transA), B is K×N (or N×K when transB); lda/ldb/ldc are row strides.
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, M: Int, N: Int, K: Int,
                  alpha: Float = 1, A: UnsafePointer<Float>, lda: Int,
                  B: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, C: UnsafeMutablePointer<Float>, ldc: Int) {
    if M == 0 || N == 0 { return }
    if K == 0 {
        // BLAS leaves C untouched for K = 0 only when beta = 1; make the beta scaling explicit.
        for i in 0..<M { for j in 0..<N { C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j] } }
        return
    }
    // OpenBLAS blocks K by its GEMM_Q but cuts a remainder between Q and 2Q differently in its
    // single-threaded and threaded drivers, so one call with a long K (weight gradients: K = B·T
    // tokens) gave different bits on 1 and 2 threads (measured with OpenBLAS 0.3.21, Cooperlake
    // kernels, Q = 320: every K ≡ 16 mod 32 above 320 differed, e.g. 336, 528, 700, 1000). Passing K in fixed slices of at
    // most `sgemmKSlice` leaves OpenBLAS one K block per call whatever the thread count: the sum
    // order is fixed by us, and C (beta applied once) accumulates the slices in order.
    var k0 = 0, sliceBeta = beta
    while k0 < K {
        let k = min(sgemmKSlice, K - k0)
        // Row-major A is M×K (K×M when transA): slice k0 starts k0 columns (rows) in; likewise for B.
        let a = transA ? A + k0 * lda : A + k0, b = transB ? B + k0 : B + k0 * ldb
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(M), Int32(N), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), sliceBeta, C, Int32(ldc))
        sliceBeta = 1
        k0 += k
    }
}

/// The longest inner size handed to one cblas_sgemm call, kept at or below OpenBLAS's single-precision
/// GEMM_Q (320 for the Cooperlake kernels this machine uses) so OpenBLAS never splits K itself (see
/// `sgemm`). A BLAS core with a smaller Q would need a smaller slice; ThreadDeterminismTests catch it.
/// Cost measured on 2 threads: 0-7 % on the SmolLM2 layer products, 3-12 % on the LM head's K = 576.
public let sgemmKSlice = 256

/// op(a) · op(b) for rank-2 tensors, as a new tensor.
public func matmul(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "matmul: needs rank-2 tensors, got \(a.shape) and \(b.shape)")
    let (M, K) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (K2, N) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    precondition(K == K2, "matmul: inner sizes differ: \(a.shape)\(transA ? "ᵀ" : "") · \(b.shape)\(transB ? "ᵀ" : "")")
    let out = Tensor(zeros: [M, N])
    sgemm(transA: transA, transB: transB, M: M, N: N, K: K, A: a.data, lda: a.shape[1],
          B: b.data, ldb: b.shape[1], C: out.data, ldc: N)
    return out
}

/// The shape of one sgemm call, C[M×N] = op(A)·op(B) with inner size K: what cost accounting and
/// `streamline bench engine` time raw cblas_sgemm on.
public struct GEMMShape: Hashable, Sendable, CustomStringConvertible {
    public var transA: Bool, transB: Bool
    public var M: Int, N: Int, K: Int

    public init(transA: Bool = false, transB: Bool = false, M: Int, N: Int, K: Int) {
        self.transA = transA
        self.transB = transB
        self.M = M
        self.N = N
        self.K = K
    }

    /// Floating-point operations of one call: 2·M·N·K.
    public var flops: Double { 2 * Double(M) * Double(N) * Double(K) }

    /// "2048×1536×576 NT": M×N×K, then N or T for op(A) and op(B).
    public var description: String { "\(M)×\(N)×\(K) \(transA ? "T" : "N")\(transB ? "T" : "N")" }
}
