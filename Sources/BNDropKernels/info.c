#include "bndrop_kernels.h"
#include "clones.h"

// The clone the loader picks: target_clones tries the listed targets from the most capable down, with
// the same CPU tests as these. A build for one instruction set (BNDK_NO_CLONES) names that set.
const char *bndk_instruction_set(void) {
#if defined(BNDK_NO_CLONES) && defined(BNDK_EMULATED_AVX512)
    return "avx512-emulated";
#elif defined(BNDK_NO_CLONES) && defined(__AVX512F__)
    return "avx512";
#elif defined(BNDK_NO_CLONES) && defined(__AVX2__)
    return "avx2";
#elif defined(BNDK_HAS_CLONES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512";
    if (__builtin_cpu_supports("x86-64-v3")) return "avx2";
#endif
    return "baseline";
}
