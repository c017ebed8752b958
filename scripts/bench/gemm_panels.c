// Would splitting products across threads ourselves help? Times SmolLM2-135M's products four ways on
// 2 threads, best of 5 rounds: OpenBLAS's own threading with K in slices of 256 (what `sgemm` in
// Sources/Tensor/GEMM.swift does) and with K whole; and 256-row panels of C dealt to two pthreads,
// each calling single-threaded OpenBLAS, with and without the K slices. Prints GFLOP/s per shape.
// Run (on a CPU OpenBLAS 0.3.21 does not know, name its kernels as Streamline does at load):
//   gcc -O2 scripts/bench/gemm_panels.c -o /tmp/gemm_panels -lopenblas -lpthread && OPENBLAS_CORETYPE=Cooperlake /tmp/gemm_panels
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <pthread.h>
#include <cblas.h>
void openblas_set_num_threads(int);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
typedef struct { int ta, tb, M, N, K; const char *name; } Shape;
static float *A, *B, *C;
static void sliced(int ta, int tb, int M, int N, int K, const float *a, int lda, const float *b, int ldb, float *c, int ldc, int slice) {
    float beta = 0;
    for (int k0 = 0; k0 < K; k0 += slice) {
        int k = K - k0 < slice ? K - k0 : slice;
        const float *as = ta ? a + (long)k0 * lda : a + k0, *bs = tb ? b + k0 : b + (long)k0 * ldb;
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, k, 1, as, lda, bs, ldb, beta, c, ldc);
        beta = 1;
    }
}
typedef struct { Shape s; int t0, nthreads, panel, slice; } Job;
static void *worker(void *p) {
    Job *j = p; Shape s = j->s;
    int lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    for (int r0 = j->t0 * j->panel; r0 < s.M; r0 += j->nthreads * j->panel) {
        int m = s.M - r0 < j->panel ? s.M - r0 : j->panel;
        const float *a = s.ta ? A + r0 : A + (long)r0 * lda;
        sliced(s.ta, s.tb, m, s.N, s.K, a, lda, B, ldb, C + (long)r0 * s.N, s.N, j->slice);
    }
    return 0;
}
static void panels(Shape s, int panel, int slice) {
    pthread_t th[2]; Job j[2];
    for (int t = 0; t < 2; t++) { j[t] = (Job){s, t, 2, panel, slice}; pthread_create(&th[t], 0, worker, &j[t]); }
    for (int t = 0; t < 2; t++) pthread_join(th[t], 0);
}
int main(void) {
    A = malloc(4L * 2048 * 49152); B = malloc(4L * 49152 * 1536); C = malloc(4L * 2048 * 49152);
    for (long i = 0; i < 2048L * 49152; i++) { A[i] = (i % 97) * 0.01f; C[i] = 0; }
    for (long i = 0; i < 49152L * 1536; i++) B[i] = (i % 89) * 0.01f;
    Shape shapes[] = {
        {0, 1, 2048, 576, 576, "q/o fwd 2048x576x576 NT"}, {0, 1, 2048, 1536, 576, "gate/up fwd 2048x1536x576 NT"},
        {0, 1, 2048, 576, 1536, "down fwd 2048x576x1536 NT"}, {0, 0, 2048, 576, 1536, "dX up 2048x576x1536 NN"},
        {1, 0, 1536, 576, 2048, "dW up 1536x576x2048 TN"}, {0, 1, 170, 49152, 576, "head fwd 170x49152x576 NT"},
    };
    for (int si = 0; si < 6; si++) {
        Shape s = shapes[si]; double f = 2.0 * s.M * s.N * s.K; int reps = (int)(3e10 / f) + 1;
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        for (int round = 0; round < 5; round++) {
            int lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
            double t0 = now();
            openblas_set_num_threads(2);
            for (int r = 0; r < reps; r++) sliced(s.ta, s.tb, s.M, s.N, s.K, A, lda, B, ldb, C, s.N, 256);
            double t1 = now();
            for (int r = 0; r < reps; r++) sliced(s.ta, s.tb, s.M, s.N, s.K, A, lda, B, ldb, C, s.N, 1 << 30);
            double t2 = now();
            openblas_set_num_threads(1);
            int panel = s.M >= 512 ? 256 : 64;
            for (int r = 0; r < reps; r++) panels(s, panel, 256);
            double t3 = now();
            for (int r = 0; r < reps; r++) panels(s, panel, 1 << 30);
            double t4 = now();
            double d[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
            for (int i = 0; i < 4; i++) if (d[i] < best[i]) best[i] = d[i];
        }
        printf("%-30s GFLOP/s: blas2thr+slice %.0f | blas2thr noslice %.0f | panels+slice %.0f | panels noslice %.0f\n", s.name,
               f * reps / best[0] / 1e9, f * reps / best[1] / 1e9, f * reps / best[2] / 1e9, f * reps / best[3] / 1e9);
    }
}
