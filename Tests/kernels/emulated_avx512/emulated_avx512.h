// The AVX-512 intrinsics linear.c uses, on a CPU without AVX-512: SIMDe (Debian's libsimde-dev, a
// header-only library that implements each intrinsic with narrower native ones or scalar code, lane for
// lane as the instruction defines it) plus the few that SIMDe 0.7.4 lacks, written here the same way.
//
// Used only by the test builds with the Makefile's EMULATED_AVX512_CFLAGS (-DBNDK_EMULATED_AVX512
// -march=x86-64-v3: Tests/kernels/isa_check.sh's avx512_emulated build and make test-avx512-emulated):
// linear.c then takes its AVX-512 code path on this CPU, so its hand-written AVX-512 kernels, which run
// on users' AVX-512 CPUs (Intel's Xeons, AMD's Zen 4), are checked against the scalar references and
// against the other builds' bits on every machine, not only on one that has AVX-512. The multiply-adds
// stay fused (SIMDe runs _mm512_fmadd_ps as two native _mm256_fmadd_ps), so every value is the one the
// real instructions give.
#ifndef BNDK_EMULATED_AVX512_H
#define BNDK_EMULATED_AVX512_H

#include <immintrin.h>  // the native AVX2 and FMA intrinsics (this build has them)
#include <stdint.h>
#include <string.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

// Masked loads and stores touch only the lanes their mask selects (the hardware never faults on the
// others, and linear.c relies on that at the end of a row); SIMDe 0.7.4 has none of these four.
// Each selected lane i of `lanes` floats: to[i] = from[i].
static inline void bndk_emulated_copy_lanes(void *to, const void *from, unsigned k, int lanes) {
    for (int i = 0; i < lanes; i++)
        if (k >> i & 1) memcpy((char *)to + 4 * i, (const char *)from + 4 * i, 4);
}
static inline simde__m512 bndk_emulated_mm512_maskz_loadu_ps(simde__mmask16 k, const void *p) {
    float lanes[16] = {0};
    bndk_emulated_copy_lanes(lanes, p, k, 16);
    return simde_mm512_loadu_ps(lanes);
}
static inline simde__m256 bndk_emulated_mm256_maskz_loadu_ps(simde__mmask8 k, const void *p) {
    float lanes[8] = {0};
    bndk_emulated_copy_lanes(lanes, p, k, 8);
    return simde_mm256_loadu_ps(lanes);
}
static inline void bndk_emulated_mm512_mask_storeu_ps(void *p, simde__mmask16 k, simde__m512 v) {
    float lanes[16];
    simde_mm512_storeu_ps(lanes, v);
    bndk_emulated_copy_lanes(p, lanes, k, 16);
}
static inline void bndk_emulated_mm256_mask_storeu_ps(void *p, simde__mmask8 k, simde__m256 v) {
    float lanes[8];
    simde_mm256_storeu_ps(lanes, v);
    bndk_emulated_copy_lanes(p, lanes, k, 8);
}
// The lanes' sum, wrapping as the instruction sequence does.
static inline int32_t bndk_emulated_mm512_reduce_add_epi32(simde__m512i v) {
    int32_t lanes[16];
    simde_mm512_storeu_si512(lanes, v);
    uint32_t sum = 0;
    for (int i = 0; i < 16; i++) sum += (uint32_t)lanes[i];
    return (int32_t)sum;
}

// The native header declares these names (for functions compiled for AVX-512): the emulated ones
// replace them in linear.c.
#undef _mm512_maskz_loadu_ps
#undef _mm256_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#undef _mm256_mask_storeu_ps
#undef _mm512_reduce_add_epi32
#undef _mm512_mask_cmp_ps_mask
#define _mm512_maskz_loadu_ps(k, p) bndk_emulated_mm512_maskz_loadu_ps((k), (p))
#define _mm256_maskz_loadu_ps(k, p) bndk_emulated_mm256_maskz_loadu_ps((k), (p))
#define _mm512_mask_storeu_ps(p, k, v) bndk_emulated_mm512_mask_storeu_ps((p), (k), (v))
#define _mm256_mask_storeu_ps(p, k, v) bndk_emulated_mm256_mask_storeu_ps((p), (k), (v))
#define _mm512_reduce_add_epi32(v) bndk_emulated_mm512_reduce_add_epi32(v)
// The compare's lanes, kept where k is set (the instruction's zero-masking).
#define _mm512_mask_cmp_ps_mask(k, a, b, predicate) \
    ((simde__mmask16)((k) & simde_mm512_cmp_ps_mask((a), (b), (predicate))))

#endif
