// The loader's batch gather (see bndrop_kernels.h).
#include "bndrop_kernels.h"
#include "clones.h"

void bndk_gather_rows(float *dst, const float *src, const int64_t *indices, int64_t count, int64_t row_size) {
    // Rows sit at random places in a dataset far larger than the caches: ask for the next row's cache
    // lines while this one is copied, so the copy does not wait on memory at each row's start.
    const int64_t bytes = row_size * (int64_t)sizeof(float);
    for (int64_t k = 0; k < count; k++) {
        if (k + 1 < count) {
            const char *next = (const char *)(src + indices[k + 1] * row_size);
            for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(next + offset, 0, 0);
        }
        memcpy(dst + k * row_size, src + indices[k] * row_size, (size_t)bytes);
    }
}
