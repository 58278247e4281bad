// Dropout's mask: the library's generator (xoshiro256**, as SeededRandom.swift) in a tight loop.
#include "bndrop_kernels.h"
#include "clones.h"

static inline uint64_t rotate_left(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void bndk_dropout_forward(uint64_t state[4], float p, float scale, const float *x, float *mask, float *y,
                          int64_t count) {
    uint64_t s0 = state[0], s1 = state[1], s2 = state[2], s3 = state[3];
    for (int64_t i = 0; i < count; i++) {
        const uint64_t result = rotate_left(s1 * 5, 7) * 9;
        const uint64_t t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotate_left(s3, 45);
        const float u = (float)(result >> 40) * (1.0f / 16777216.0f);
        const float keep = u < p ? 0.0f : scale;
        mask[i] = keep;
        y[i] = x[i] * keep;
    }
    state[0] = s0;
    state[1] = s1;
    state[2] = s2;
    state[3] = s3;
}
