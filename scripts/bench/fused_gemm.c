// Would fusing products help? Times SmolLM2-135M's per-layer products (B·T = 2048 rows, C = 576)
// separately and fused into one sgemm, through OpenBLAS, interleaved round by round (12 rounds kept
// after 3 warm-up), and prints separate ÷ fused time (> 1: fusing is faster):
//   q, k, v forward   X·[Wq;Wk;Wv]ᵀ  (N 576 + 192 + 192 against one N 960)
//   gate, up forward  X·[Wg;Wu]ᵀ     (N 1536 + 1536 against one N 3072)
//   q, k, v weight gradients  dYᵀ·X  (M 576 + 192 + 192 against one M 960, K = 2048)
// Run: gcc -O2 scripts/bench/fused_gemm.c -o /tmp/fused_gemm -lopenblas && OPENBLAS_NUM_THREADS=2 /tmp/fused_gemm
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static float *a, *b, *c;

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// C (M, N) = op(A) · op(B), row-major; transA: A is stored (K, M); transB: B is stored (N, K).
static double product(int M, int N, int K, int transA, int transB) {
    double start = seconds();
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, 1, a, transA ? M : K, b, transB ? K : N, 0, c, N);
    return seconds() - start;
}

int main(void) {
    const int rows = 2048, C = 576, count = 1 << 23;
    a = malloc(sizeof(float) * count); b = malloc(sizeof(float) * count); c = malloc(sizeof(float) * count);
    for (int i = 0; i < count; i++) a[i] = b[i] = c[i] = (float)(i % 7) * 0.1f;
    double separate[3] = {0}, fused[3] = {0};
    for (int round = 0; round < 15; round++) {
        double s0 = product(rows, 576, C, 0, 1) + product(rows, 192, C, 0, 1) + product(rows, 192, C, 0, 1);
        double f0 = product(rows, 960, C, 0, 1);
        double s1 = 2 * product(rows, 1536, C, 0, 1);
        double f1 = product(rows, 3072, C, 0, 1);
        double s2 = product(576, C, rows, 1, 0) + 2 * product(192, C, rows, 1, 0);
        double f2 = product(960, C, rows, 1, 0);
        if (round < 3) continue;
        separate[0] += s0; fused[0] += f0; separate[1] += s1; fused[1] += f1; separate[2] += s2; fused[2] += f2;
    }
    const char *names[3] = {"q, k, v forward", "gate, up forward", "q, k, v weight gradients"};
    for (int i = 0; i < 3; i++)
        printf("%-26s separate %6.1f ms  fused %6.1f ms  separate / fused %.3f\n", names[i],
               separate[i] / 12 * 1e3, fused[i] / 12 * 1e3, separate[i] / fused[i]);
    return 0;
}
