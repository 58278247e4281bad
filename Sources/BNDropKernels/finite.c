// The finiteness scan of inputs, datasets and gradients (see bndrop_kernels.h).
#include "bndrop_kernels.h"
#include "clones.h"

// A float is NaN or infinite exactly when its exponent bits are all ones. Each chunk's largest exponent
// field is found branch-free (a vectorised max), and only a chunk that has one is searched.
BNDK_CLONES
int64_t bndk_first_non_finite(const float *values, int64_t count) {
    enum { CHUNK = 4096 };
    const uint32_t exponent = 0x7F800000u;
    for (int64_t start = 0; start < count; start += CHUNK) {
        const int64_t end = count - start < CHUNK ? count : start + CHUNK;
        uint32_t largest = 0;
        for (int64_t i = start; i < end; i++) {
            uint32_t bits;
            memcpy(&bits, values + i, sizeof bits);
            bits &= exponent;
            largest = bits > largest ? bits : largest;
        }
        if (largest == exponent)
            for (int64_t i = start; i < end; i++) {
                uint32_t bits;
                memcpy(&bits, values + i, sizeof bits);
                if ((bits & exponent) == exponent) return i;
            }
    }
    return -1;
}
