// Can a packed AVX-512 sgemm of our own beat OpenBLAS on SmolLM2-135M's products? (issue 13)
// A Goto/BLIS-style kernel: B packed in KC x 32 micro-panels (kept in L1 across a row block), A in
// 12 x KC micro-panels (streamed from L2), a 12 x 32 register tile of 24 accumulators. Two threads
// each take half of C (rows, or columns when N > M) with their own packing, so nothing is shared and
// the sums do not depend on the thread count. Checked against OpenBLAS, timed interleaved with it,
// best of 5 rounds, on 1 and 2 threads. Prints GFLOP/s per shape.
// Run (on a CPU OpenBLAS 0.3.21 does not know, name its kernels as Streamline does at load):
//   gcc -O3 -march=native scripts/bench/sgemm_avx512.c -o /tmp/sgemm_avx512 -lopenblas -lpthread -lm && \
//     OPENBLAS_CORETYPE=Cooperlake /tmp/sgemm_avx512
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
void openblas_set_num_threads(int);

#ifndef KC
#define KC 256
#endif
#ifndef MC
#define MC 144
#endif
enum { MR = 12, NR = 32 };

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

// C (M x N, ldc) = op(A) op(B) [+ C when accumulate]; op(A) is M x K: A[m*lda + k] or, transposed, A[k*lda + m].
typedef struct { int ta, tb, M, N, K; const float *A; int lda; const float *B; int ldb; float *C; int ldc; } Gemm;

static inline float a_at(const Gemm *g, int m, int k) { return g->ta ? g->A[(long)k * g->lda + m] : g->A[(long)m * g->lda + k]; }

// kc x (n0..n0+nc) of op(B) into micro-panels [panel][k][NR], zero-padded past nc.
static void pack_b(const Gemm *g, int k0, int kc, int n0, int nc, float *out) {
    for (int j = 0; j < nc; j += NR) {
        int w = nc - j < NR ? nc - j : NR;
        float *p = out + (long)(j / NR) * kc * NR;
        if (!g->tb) {
            for (int k = 0; k < kc; k++) {
                const float *src = g->B + (long)(k0 + k) * g->ldb + n0 + j;
                memcpy(p + k * NR, src, w * sizeof(float));
                if (w < NR) memset(p + k * NR + w, 0, (NR - w) * sizeof(float));
            }
        } else {
            for (int c = 0; c < NR; c++) {
                if (c < w) {
                    const float *src = g->B + (long)(n0 + j + c) * g->ldb + k0;
                    for (int k = 0; k < kc; k++) p[k * NR + c] = src[k];
                } else {
                    for (int k = 0; k < kc; k++) p[k * NR + c] = 0;
                }
            }
        }
    }
}

// (m0..m0+mc) x kc of op(A) into micro-panels [panel][k][MR], zero-padded past mc.
static void pack_a(const Gemm *g, int m0, int mc, int k0, int kc, float *out) {
    for (int i = 0; i < mc; i += MR) {
        int h = mc - i < MR ? mc - i : MR;
        float *p = out + (long)(i / MR) * kc * MR;
        if (g->ta) {
            for (int k = 0; k < kc; k++) {
                const float *src = g->A + (long)(k0 + k) * g->lda + m0 + i;
                for (int r = 0; r < MR; r++) p[k * MR + r] = r < h ? src[r] : 0;
            }
        } else {
            for (int r = 0; r < MR; r++) {
                if (r < h) {
                    const float *src = g->A + (long)(m0 + i + r) * g->lda + k0;
                    for (int k = 0; k < kc; k++) p[k * MR + r] = src[k];
                } else {
                    for (int k = 0; k < kc; k++) p[k * MR + r] = 0;
                }
            }
        }
    }
}

// The 12 x 32 tile: C[0..h) x [0..w) (=|+=) Ap (kc x MR) . Bp (kc x NR).
static void kernel(int kc, const float *Ap, const float *Bp, float *C, int ldc, int h, int w, int accumulate) {
    __m512 c[MR][2];
    for (int r = 0; r < MR; r++) { c[r][0] = _mm512_setzero_ps(); c[r][1] = _mm512_setzero_ps(); }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(Bp + k * NR), b1 = _mm512_load_ps(Bp + k * NR + 16);
        const float *a = Ap + k * MR;
#define ROW(r) { __m512 av = _mm512_set1_ps(a[r]); c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]); c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]); }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7) ROW(8) ROW(9) ROW(10) ROW(11)
#undef ROW
    }
    __mmask16 m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? 0xFFFF : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1);
    for (int r = 0; r < h; r++) {
        float *row = C + (long)r * ldc;
        if (accumulate) {
            c[r][0] = _mm512_add_ps(c[r][0], _mm512_maskz_loadu_ps(m0, row));
            c[r][1] = _mm512_add_ps(c[r][1], _mm512_maskz_loadu_ps(m1, row + 16));
        }
        _mm512_mask_storeu_ps(row, m0, c[r][0]);
        _mm512_mask_storeu_ps(row + 16, m1, c[r][1]);
    }
}

// Rows m0..m1 and columns n0..n1 of C, one thread.
static void gemm_block(const Gemm *g, int m0, int m1, int n0, int n1, int accumulate, float *packA, float *packB) {
    for (int k0 = 0; k0 < g->K; k0 += KC) {
        int kc = g->K - k0 < KC ? g->K - k0 : KC;
        int acc = accumulate || k0 > 0;
        pack_b(g, k0, kc, n0, n1 - n0, packB);
        for (int i0 = m0; i0 < m1; i0 += MC) {
            int mc = m1 - i0 < MC ? m1 - i0 : MC;
            pack_a(g, i0, mc, k0, kc, packA);
            for (int j = 0; j < n1 - n0; j += NR) {
                const float *Bp = packB + (long)(j / NR) * kc * NR;
                int w = n1 - n0 - j < NR ? n1 - n0 - j : NR;
                for (int i = 0; i < mc; i += MR) {
                    int h = mc - i < MR ? mc - i : MR;
                    kernel(kc, packA + (long)(i / MR) * kc * MR, Bp, g->C + (long)(i0 + i) * g->ldc + n0 + j, g->ldc, h, w, acc);
                }
            }
        }
    }
}

typedef struct { const Gemm *g; int m0, m1, n0, n1; } Part;
static void *part_worker(void *p) {
    Part *t = p;
    int nc = ((t->n1 - t->n0 + NR - 1) / NR) * NR;
    float *packA = aligned_alloc(64, sizeof(float) * MC * KC), *packB = aligned_alloc(64, sizeof(float) * (size_t)KC * nc);
    gemm_block(t->g, t->m0, t->m1, t->n0, t->n1, 0, packA, packB);
    free(packA); free(packB);
    return 0;
}

static void our_sgemm(const Gemm *g, int threads) {
    Part parts[2];
    if (threads == 1) { parts[0] = (Part){g, 0, g->M, 0, g->N}; part_worker(&parts[0]); return; }
    if (g->N > g->M) {  // split columns on a multiple of NR
        int half = ((g->N / 2 + NR - 1) / NR) * NR;
        parts[0] = (Part){g, 0, g->M, 0, half}; parts[1] = (Part){g, 0, g->M, half, g->N};
    } else {             // split rows on a multiple of MR
        int half = ((g->M / 2 + MR - 1) / MR) * MR;
        parts[0] = (Part){g, 0, half, 0, g->N}; parts[1] = (Part){g, half, g->M, 0, g->N};
    }
    pthread_t th;
    pthread_create(&th, 0, part_worker, &parts[1]);
    part_worker(&parts[0]);
    pthread_join(th, 0);
}

static void blas(const Gemm *g) {
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, g->M, g->N, g->K,
                1, g->A, g->lda, g->B, g->ldb, 0, g->C, g->ldc);
}

typedef struct { int ta, tb, M, N, K; const char *name; } Shape;

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    float *A = aligned_alloc(64, 4L * 2048 * 49152), *B = aligned_alloc(64, 4L * 49152 * 1536);
    float *C = aligned_alloc(64, 4L * 2048 * 49152), *R = aligned_alloc(64, 4L * 2048 * 49152);
    srand(1);
    for (long i = 0; i < 2048L * 49152; i++) A[i] = (float)rand() / RAND_MAX - 0.5f;
    for (long i = 0; i < 49152L * 1536; i++) B[i] = (float)rand() / RAND_MAX - 0.5f;
    Shape shapes[] = {
        {0, 1, 2048, 960, 576, "qkv fwd 2048x960x576 NT"}, {0, 1, 2048, 576, 576, "o fwd 2048x576x576 NT"},
        {0, 1, 2048, 1536, 576, "gate/up fwd 2048x1536x576 NT"}, {0, 1, 2048, 576, 1536, "down fwd 2048x576x1536 NT"},
        {0, 0, 2048, 576, 1536, "dX up 2048x576x1536 NN"}, {1, 0, 1536, 576, 2048, "dW up 1536x576x2048 TN"},
        {0, 1, 170, 49152, 576, "head fwd 170x49152x576 NT"}, {0, 1, 2048, 49152, 576, "head fwd 2048x49152x576 NT"},
    };
    int count = sizeof shapes / sizeof *shapes;
    printf("%-32s %8s %10s %10s %8s %10s %10s %8s\n", "shape", "max err", "blas 1t", "ours 1t", "ratio", "blas 2t", "ours 2t", "ratio");
    for (int si = 0; si < count; si++) {
        Shape s = shapes[si];
        Gemm g = {s.ta, s.tb, s.M, s.N, s.K, A, s.ta ? s.M : s.K, B, s.tb ? s.K : s.N, C, s.N};
        Gemm r = g; r.C = R;
        openblas_set_num_threads(1); blas(&r); our_sgemm(&g, 2);
        double err = 0, scale = 0;
        for (long i = 0; i < (long)s.M * s.N; i++) { err = fmax(err, fabs(C[i] - R[i])); scale = fmax(scale, fabs(R[i])); }
        double f = 2.0 * s.M * s.N * s.K; int reps = (int)(2e10 / f) + 1;
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        for (int round = 0; round < rounds; round++) {
            for (int threads = 1; threads <= 2; threads++) {
                openblas_set_num_threads(threads);
                double t0 = now();
                for (int i = 0; i < reps; i++) blas(&r);
                double t1 = now();
                for (int i = 0; i < reps; i++) our_sgemm(&g, threads);
                double t2 = now();
                int b = (threads - 1) * 2;
                best[b] = fmin(best[b], (t1 - t0) / reps); best[b + 1] = fmin(best[b + 1], (t2 - t1) / reps);
            }
        }
        printf("%-32s %8.1e %10.1f %10.1f %8.2f %10.1f %10.1f %8.2f\n", s.name, err / scale,
               f / best[0] * 1e-9, f / best[1] * 1e-9, best[0] / best[1], f / best[2] * 1e-9, f / best[3] * 1e-9, best[2] / best[3]);
        fflush(stdout);
    }
    return 0;
}
