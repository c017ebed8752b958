// OpenBLAS picks its kernels once, when it loads, from the CPU model number. A model newer than the
// library knows (OpenBLAS 0.3.21 on Emerald Rapids, model 207) falls back to Prescott's SSE3 kernels:
// 6x slower GEMM (27 against 152 GFLOP/s on 2 threads) and a K split that differs between 1 and 2
// threads. This target re-selects the kernels from the CPU's instruction-set flags before main runs,
// by re-executing the program with OPENBLAS_CORETYPE set (core.c says why not in place).
#ifndef CBLASCORE_H
#define CBLASCORE_H

/// What the load-time check did: NULL when OpenBLAS's own choice was kept (a known CPU, a user's
/// OPENBLAS_CORETYPE, or a library without dynamic kernel selection), else a sentence naming the
/// fallback OpenBLAS chose and the kernels used instead.
const char *streamline_blas_core_override(void);

/// The kernel set OpenBLAS uses now ("Cooperlake", "SkylakeX", ...), or "unknown".
const char *streamline_blas_core_name(void);

#endif
