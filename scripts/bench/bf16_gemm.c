// Would bfloat16 products pay on this CPU? A first-cut AVX512-BF16 GEMM (an 8×32 tile of C in
// registers, A's k-pairs broadcast, B packed as k-pairs per 32-column panel, `vdpbf16ps` with
// float32 accumulation) against single-threaded OpenBLAS `cblas_sgemm` on SmolLM2's recovery shapes
// (B·T = 512 rows), interleaved round by round, best of 20. Packing (float32 → bfloat16, naive scalar
// code) is timed apart: weights would be packed once per step, activations once per product.
// Measured 2026-12-08 with a fine-tune running on both cores (so absolute numbers are low, ratios
// are what counts): 2.04× (512×1536×432), 2.33× (512×448×1536), 2.04× (512×1536×576), 1.96× (the
// head, 512×49152×432); relative error of C 2.1e-3 (bfloat16's 8-bit mantissa). docs/design.md
// ("Measured, not done") says what a bf16 path would need. Needs avx512_bf16 (Cooper Lake, Zen 4).
// Run: gcc -O3 -march=native scripts/bench/bf16_gemm.c -o /tmp/bf16_gemm -lopenblas -lm &&
//      for s in "512 1536 432" "512 448 1536" "512 1536 576" "512 49152 432"; do OPENBLAS_NUM_THREADS=1 /tmp/bf16_gemm $s; done
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MR 8
#define NR 32

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* float32 → bfloat16, round to nearest even. */
static inline uint16_t bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* C[MR×NR] (row stride ldc) += A panel · B panel over kp k-pairs. a: per k-pair, MR rows' (k, k+1)
   as one 32-bit pair; b: per k-pair, 2 zmm of 16 columns × (k, k+1). */
static void tile(int kp, const uint32_t *a, const uint16_t *b, float *c, int ldc) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm512_loadu_ps(c + i * ldc); acc[i][1] = _mm512_loadu_ps(c + i * ldc + 16); }
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * 64), b1 = (__m512bh)_mm512_loadu_si512(b + p * 64 + 32);
        for (int i = 0; i < MR; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[p * MR + i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    for (int i = 0; i < MR; i++) { _mm512_storeu_ps(c + i * ldc, acc[i][0]); _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]); }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s M N K  (M %% %d, N %% %d, K %% 2 == 0)\n", argv[0], MR, NR); return 2; }
    int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]), KP = K / 2;
    if (M % MR || N % NR || K % 2) { fprintf(stderr, "M must be a multiple of %d, N of %d, K even\n", MR, NR); return 2; }
    float *A = malloc(4L * M * K), *B = malloc(4L * K * N), *C = calloc((size_t)M * N, 4), *ref = calloc((size_t)M * N, 4);
    srand(1);
    for (long i = 0; i < (long)M * K; i++) A[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < (long)K * N; i++) B[i] = rand() / (float)RAND_MAX - 0.5f;
    uint32_t *Ap = malloc(4L * M * KP);
    uint16_t *Bp = malloc(2L * K * N);
    double pack = now();
    for (int i0 = 0; i0 < M; i0 += MR)
        for (int p = 0; p < KP; p++)
            for (int i = 0; i < MR; i++)
                Ap[(long)i0 * KP + p * MR + i] = bf16(A[(long)(i0 + i) * K + 2 * p]) | ((uint32_t)bf16(A[(long)(i0 + i) * K + 2 * p + 1]) << 16);
    for (int j0 = 0; j0 < N; j0 += NR)
        for (int p = 0; p < KP; p++)
            for (int j = 0; j < NR; j++) {
                long o = (long)j0 * K + (long)p * 64 + (j / 16) * 32 + 2 * (j % 16);
                Bp[o] = bf16(B[(long)(2 * p) * N + j0 + j]);
                Bp[o + 1] = bf16(B[(long)(2 * p + 1) * N + j0 + j]);
            }
    pack = now() - pack;
    double best = 1e9, bestSgemm = 1e9;
    for (int round = 0; round < 20; round++) {
        memset(C, 0, 4L * M * N);
        double t = now();
        // Column panels outside: one B panel (K × 32 bfloat16) stays in L2 while every row panel uses it.
        for (int j0 = 0; j0 < N; j0 += NR)
            for (int i0 = 0; i0 < M; i0 += MR) tile(KP, Ap + (long)i0 * KP, Bp + (long)j0 * K, C + (long)i0 * N + j0, N);
        t = now() - t;
        if (t < best) best = t;
        t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, ref, N);
        t = now() - t;
        if (t < bestSgemm) bestSgemm = t;
    }
    double err = 0, norm = 0;
    for (long i = 0; i < (long)M * N; i++) { double d = C[i] - ref[i]; err += d * d; norm += (double)ref[i] * ref[i]; }
    double flop = 2.0 * M * N * K;
    printf("M %d N %d K %d: bf16 %.1f GFLOP/s, sgemm %.1f GFLOP/s, bf16/sgemm %.2f, packing %.1f ms (product %.1f ms), relative error %.2e\n",
           M, N, K, flop / best * 1e-9, flop / bestSgemm * 1e-9, bestSgemm / best, pack * 1e3, best * 1e3, sqrt(err / norm));
    return 0;
}
