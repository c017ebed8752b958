// Attention's per-head products (SmolLM2: head dim 64, causal row blocks of 64, T = 512) through
// single-threaded OpenBLAS against a plain AVX-512 micro-kernel (a 6×32 tile of C in registers, A
// broadcast, B rows loaded; no packing), GFLOP/s per shape, two rounds each. The question: is there
// room below OpenBLAS on these small products? (Measured 2026-12-07: OpenBLAS 70-83, this kernel
// 40-60 GFLOP/s; see docs/results.md.) Needs an AVX-512 CPU.
// Run: gcc -O3 -march=native scripts/bench/attention_blocks.c -o /tmp/attention_blocks -lopenblas &&
//      OPENBLAS_CORETYPE=Cooperlake OPENBLAS_NUM_THREADS=1 /tmp/attention_blocks
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
void openblas_set_num_threads(int);

/* C[M x N] = beta*C + alpha * A·B ; A(i,k) = A[i*ars + k*aks]; B row-major K x N (ldb). beta 0 or 1 */
#define MR 6
__attribute__((target("avx512f"), always_inline)) static inline void tile(int mr, int N0, int nr, int K, float alpha, const float *A, long ars, long aks, const float *B, long ldb, float *C, long ldc, int beta) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm512_setzero_ps(); acc[i][1] = _mm512_setzero_ps(); }
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    const float *b = B + N0;
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b + k * ldb);
        __m512 b1 = _mm512_maskz_loadu_ps(m1, b + k * ldb + 16);
        const float *a = A + k * aks;
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                __m512 ai = _mm512_set1_ps(a[i * ars]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            float *c = C + i * ldc + N0;
            __m512 r0 = _mm512_mul_ps(acc[i][0], al), r1 = _mm512_mul_ps(acc[i][1], al);
            if (beta) { r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, c)); r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, c + 16)); }
            _mm512_mask_storeu_ps(c, m0, r0);
            _mm512_mask_storeu_ps(c + 16, m1, r1);
        }
    }
}
#define TILEFN(n) __attribute__((target("avx512f"))) static void tile##n(int N0, int nr, int K, float alpha, const float *A, long ars, long aks, const float *B, long ldb, float *C, long ldc, int beta) { tile(n, N0, nr, K, alpha, A, ars, aks, B, ldb, C, ldc, beta); }
TILEFN(1) TILEFN(2) TILEFN(3) TILEFN(4) TILEFN(5) TILEFN(6)
typedef void (*tilefn)(int, int, int, float, const float *, long, long, const float *, long, float *, long, int);
static tilefn tiles[7] = {0, tile1, tile2, tile3, tile4, tile5, tile6};

void small_gemm(int M, int N, int K, float alpha, const float *A, long ars, long aks, const float *B, long ldb, float *C, long ldc, int beta) {
    for (int i0 = 0; i0 < M; i0 += MR) {
        int mr = M - i0 < MR ? M - i0 : MR;
        for (int j0 = 0; j0 < N; j0 += 32) {
            int nr = N - j0 < 32 ? N - j0 : 32;
            tiles[mr](j0, nr, K, alpha, A + i0 * ars, ars, aks, B, ldb, C + i0 * ldc, ldc, beta);
        }
    }
}

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    float *A = malloc(4 * 512 * 576), *Bm = malloc(4 * 512 * 512), *C = malloc(4 * 512 * 512);
    for (int i = 0; i < 512 * 576; i++) A[i] = rand() / (float)RAND_MAX;
    for (int i = 0; i < 512 * 512; i++) Bm[i] = rand() / (float)RAND_MAX;
    struct { int M, N, K; long lda, ldb, ldc; const char *name; } cases[] = {
        {64, 512, 64, 576, 512, 512, "QK 64x512x64"}, {64, 64, 512, 512, 192, 576, "PV 64x64x512"},
        {64, 256, 64, 576, 512, 512, "QK 64x256x64"}, {512, 64, 64, 512, 64, 64, "dV 512x64x64 (A plain)"}};
    for (int c = 0; c < 4; c++) {
        int M = cases[c].M, N = cases[c].N, K = cases[c].K;
        double f = 2.0 * M * N * K; int reps = (int)(2e9 / f);
        for (int round = 0; round < 2; round++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) small_gemm(M, N, K, 1, A, cases[c].lda, 1, Bm, cases[c].ldb, C, cases[c].ldc, 0);
        double t1 = now();
        for (int r = 0; r < reps; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, cases[c].lda, Bm, cases[c].ldb, 0, C, cases[c].ldc);
        double t2 = now();
        printf("%-24s custom %.1f GFLOP/s  cblas %.1f GFLOP/s\n", cases[c].name, f * reps / (t1 - t0) / 1e9, f * reps / (t2 - t1) / 1e9);
        }
    }
}
