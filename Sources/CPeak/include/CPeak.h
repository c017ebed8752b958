// The machine's floating-point peak, measured: a loop of independent fused multiply-adds, compiled
// for the widest vectors the CPU has (AVX-512 or AVX2+FMA, chosen at run time), so `streamline bench
// engine` has a ceiling no kernel can beat. Swift cannot target these instructions per function
// (Package.swift builds for baseline x86-64), hence this one C file. Not a kernel: nothing else calls it.
#ifndef CPEAK_H
#define CPEAK_H

/// Runs `iterations` rounds of 12 independent FMA chains over `lanes`-wide float vectors (16:
/// AVX-512, 8: AVX2+FMA) on the calling thread and returns the floating-point operations done
/// (2 per lane per FMA), or 0 when the CPU lacks those instructions or `lanes` is neither.
double cpeak_fma_flops(long iterations, int lanes);

#endif
