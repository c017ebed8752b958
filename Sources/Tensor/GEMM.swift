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
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
}

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

/// `count` independent products C_i = alpha · op(A_i) · op(B_i) + beta · C_i, where the i-th operand
/// starts `strideA`/`strideB`/`strideC` floats after the previous one (attention over heads).
public func batchedSgemm(count: Int, transA: Bool = false, transB: Bool = false, M: Int, N: Int, K: Int,
                         alpha: Float = 1, A: UnsafePointer<Float>, lda: Int, strideA: Int,
                         B: UnsafePointer<Float>, ldb: Int, strideB: Int,
                         beta: Float = 0, C: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
    for i in 0..<count {
        sgemm(transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha,
              A: A + i * strideA, lda: lda, B: B + i * strideB, ldb: ldb,
              beta: beta, C: C + i * strideC, ldc: ldc)
    }
}
