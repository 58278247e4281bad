// ReLU (see bndrop_kernels.h).
#include "bndrop_kernels.h"
#include "clones.h"

BNDK_CLONES
void bndk_relu_select(const float *mask, const float *source, float *out, int64_t count) {
    for (int64_t i = 0; i < count; i++) out[i] = mask[i] <= 0 ? 0.0f : source[i];
}
