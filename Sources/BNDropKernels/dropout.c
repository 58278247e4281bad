// Dropout's mask (see bndrop_kernels.h): a counter-based draw per element, so the loop vectorises.
#include "bndrop_kernels.h"
#include "clones.h"

#include <math.h>

// SplitMix64's output function (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
// 2014): SplitMix64 seeded with s returns mix(s + n·γ) as its n-th value (n = 1, 2, ...).
#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

static inline uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

BNDK_CLONES_INT64
void bndk_dropout_forward(uint64_t key, int64_t first, float p, float scale, const float *x, float *mask,
                          float *y, int64_t count) {
    // The counter key + (first + i + 1)·γ advances by γ per element (an addition where the vectorised
    // loop had a 64-bit multiply).
    // u = k / 2^24 with k = bits >> 40 is exact in float, so u < p exactly when k < p·2^24, that is
    // when k < ⌈p·2^24⌉: an integer compare instead of a conversion and a multiply.
    const uint64_t threshold = (uint64_t)ceil((double)p * 16777216.0);
    uint64_t counter = key + (uint64_t)(first + 1) * GOLDEN_GAMMA;
    for (int64_t i = 0; i < count; i++, counter += GOLDEN_GAMMA) {
        const uint64_t k = mix(counter) >> 40;
        const float keep = k < threshold ? 0.0f : scale;
        mask[i] = keep;
        y[i] = x[i] * keep;
    }
}
