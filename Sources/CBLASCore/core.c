// See CBLASCore.h. OpenBLAS exposes no API to change kernels after loading, but a DYNAMIC_ARCH build
// exports `gotoblas` (the chosen kernel table) and `gotoblas_dynamic_init` (which fills it from
// OPENBLAS_CORETYPE when it is empty). Both are looked up, not linked, so a BLAS without them
// (static, single-architecture, another vendor) simply keeps its kernels.
#define _GNU_SOURCE
#include "CBLASCore.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char override_note[256];
static int overridden = 0;

static const char *current_core(void) {
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    return corename ? corename() : "unknown";
}

/// Kernel sets OpenBLAS falls back to for an Intel model it does not know; a CPU with AVX2 or
/// AVX-512 deserves better than any of them.
static int is_generic_fallback(const char *core) {
    static const char *fallbacks[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge"};
    for (size_t i = 0; i < sizeof fallbacks / sizeof *fallbacks; i++)
        if (strcmp(core, fallbacks[i]) == 0) return 1;
    return 0;
}

/// The newest kernel set OpenBLAS 0.3.x has for the instructions this CPU reports: Cooperlake is what
/// it uses on Sapphire Rapids (AVX-512 with BF16), SkylakeX on AVX-512, Haswell on AVX2 with FMA.
static const char *best_core_for_this_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) return "Cooperlake";
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

__attribute__((constructor)) static void streamline_select_blas_core(void) {
    if (getenv("OPENBLAS_CORETYPE")) return;  // the user's explicit choice wins
    char fallback[64];
    snprintf(fallback, sizeof fallback, "%s", current_core());
    if (!is_generic_fallback(fallback)) return;
    const char *best = best_core_for_this_cpu();
    void **table = (void **)dlsym(RTLD_DEFAULT, "gotoblas");
    void (*reinit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!best || !table || !reinit) return;
    // gotoblas_dynamic_init returns early while a table is set; emptying it makes it choose again,
    // this time from OPENBLAS_CORETYPE, which is unset afterwards so child processes (PyTorch peers
    // with their own BLAS) make their own choice.
    setenv("OPENBLAS_CORETYPE", best, 1);
    void *previous = *table;
    *table = NULL;
    reinit();
    unsetenv("OPENBLAS_CORETYPE");
    if (!*table) { *table = previous; return; }  // the library refused the name: keep what worked
    overridden = 1;
    snprintf(override_note, sizeof override_note,
             "OpenBLAS did not know this CPU model and chose %s; re-selected from the CPU's flags", fallback);
}

const char *streamline_blas_core_override(void) { return overridden ? override_note : NULL; }

const char *streamline_blas_core_name(void) { return current_core(); }
