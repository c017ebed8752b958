// See CPeak.h. Twelve chains: an FMA has 4 cycles of latency on the cores measured here (Zen 4, and
// Intel since Skylake) and two FMA pipes, so at least 8 independent chains are needed to fill them.
// The multiplier and addend depend on the iteration count, so the compiler cannot prove a chain
// constant (with 0.9999999 and 1e-7 clang saw 1.0 as a fixed point and deleted the loop).

#include "CPeak.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx2,fma"))) static float fma8(long n) {
#define DECL(i) __m256 a##i = _mm256_set1_ps(1.0f + (float)(i) * 1e-3f);
    CHAINS(DECL)
    const __m256 m = _mm256_set1_ps(1.0f - 1.0f / (float)(n + 3)), c = _mm256_set1_ps(1.0f / (float)(n + 7));
    for (long r = 0; r < n; r++) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, c);
        CHAINS(STEP)
    }
    __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, a##i);
    CHAINS(SUM)
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

__attribute__((target("avx512f"))) static float fma16(long n) {
#undef DECL
#define DECL(i) __m512 a##i = _mm512_set1_ps(1.0f + (float)(i) * 1e-3f);
    CHAINS(DECL)
    const __m512 m = _mm512_set1_ps(1.0f - 1.0f / (float)(n + 3)), c = _mm512_set1_ps(1.0f / (float)(n + 7));
    for (long r = 0; r < n; r++) {
#undef STEP
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, c);
        CHAINS(STEP)
    }
    __m512 s = _mm512_setzero_ps();
#undef SUM
#define SUM(i) s = _mm512_add_ps(s, a##i);
    CHAINS(SUM)
    return _mm512_reduce_add_ps(s);
}

/* Keeps the result alive so the loop is not optimised away. */
static volatile float sink;

double cpeak_fma_flops(long iterations, int lanes) {
    __builtin_cpu_init();
    if (lanes == 16 && __builtin_cpu_supports("avx512f")) {
        sink = fma16(iterations);
    } else if (lanes == 8 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        sink = fma8(iterations);
    } else {
        return 0;
    }
    return 2.0 * 12.0 * (double)lanes * (double)iterations;
}

#else
double cpeak_fma_flops(long iterations, int lanes) { (void)iterations; (void)lanes; return 0; }
#endif
