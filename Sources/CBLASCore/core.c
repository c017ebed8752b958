// See CBLASCore.h. OpenBLAS picks its kernels once, in its own constructor, from OPENBLAS_CORETYPE or
// else the CPU model. When it fell back to generic kernels on a CPU whose flags deserve better, this
// constructor (which runs after OpenBLAS's) sets OPENBLAS_CORETYPE and re-executes the program, so the
// new process's OpenBLAS loads with the right kernels from the start. Changing the kernel table in
// place (emptying `gotoblas` and calling `gotoblas_dynamic_init`, as this file once did) raced with
// the worker threads OpenBLAS had already started: a start could crash with SIGSEGV
// inside gotoblas_dynamic_init (seen under the CLI tests' address-space cap, 2026-12-07).
// The re-executed process finds STREAMLINE_BLAS_FALLBACK (OpenBLAS's first choice) in its
// environment, records the note, and clears both variables so child processes (the PyTorch peers,
// with their own BLAS) choose for themselves. Where re-executing is impossible (no /proc, exec
// refused), the program keeps OpenBLAS's choice.
#define _GNU_SOURCE
#include "CBLASCore.h"
#include <dlfcn.h>
#include <unistd.h>
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

/// The environment variable that tells the re-executed process what OpenBLAS chose the first time.
static const char *fallback_variable = "STREAMLINE_BLAS_FALLBACK";

/// glibc calls the main program's constructors with (argc, argv, envp), so argv can be handed to exec.
__attribute__((constructor)) static void streamline_select_blas_core(int argc, char **argv, char **envp) {
    (void)argc;
    (void)envp;
    const char *first_choice = getenv(fallback_variable);
    if (first_choice) {
        // The re-executed process: report the switch only if OpenBLAS took the name it was given.
        const char *asked = getenv("OPENBLAS_CORETYPE");
        if (asked && strcmp(current_core(), asked) == 0) {
            overridden = 1;
            snprintf(override_note, sizeof override_note,
                     "OpenBLAS did not know this CPU model and chose %s; re-selected from the CPU's flags", first_choice);
        }
        unsetenv(fallback_variable);
        unsetenv("OPENBLAS_CORETYPE");
        return;
    }
    if (getenv("OPENBLAS_CORETYPE")) return;  // the user's explicit choice wins
    char fallback[64];
    snprintf(fallback, sizeof fallback, "%s", current_core());
    if (!is_generic_fallback(fallback)) return;
    const char *best = best_core_for_this_cpu();
    if (!best || !argv || !argv[0]) return;
    setenv("OPENBLAS_CORETYPE", best, 1);
    setenv(fallback_variable, fallback, 1);
    execv("/proc/self/exe", argv);
    // Only reached when exec failed: keep OpenBLAS's first choice.
    unsetenv(fallback_variable);
    unsetenv("OPENBLAS_CORETYPE");
}

const char *streamline_blas_core_override(void) { return overridden ? override_note : NULL; }

const char *streamline_blas_core_name(void) { return current_core(); }
