#define _GNU_SOURCE
#include <sched.h>
#include "bndrop_system.h"

int bndsys_available_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int count = CPU_COUNT(&set);
    return count > 0 ? count : 1;
}

int bndsys_cpu_features(void) {
    int features = 0;
#if defined(__x86_64__) || defined(__i386__)
    /* Needed when called before the compiler runtime's own constructor has run; harmless after. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) features |= BNDSYS_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) features |= BNDSYS_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) features |= BNDSYS_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) features |= BNDSYS_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) features |= BNDSYS_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512dq")) features |= BNDSYS_CPU_AVX512DQ;
#endif
    return features;
}
