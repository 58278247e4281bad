// AvgPool2d's 2×2 windows with stride 2 (see bndrop_kernels.h), the article's pooling.
#include "bndrop_kernels.h"
#include "clones.h"

// Each window's ((top-left + top-right) + bottom-left) + bottom-right, divided by 4: the order of the
// generic loop in Pooling.swift, so both give the same bits.
BNDK_CLONES
void bndk_avgpool2_forward(const float *x, float *y, int64_t planes, int64_t height, int64_t width) {
    const int64_t oh = height / 2, ow = width / 2;
    for (int64_t p = 0; p < planes; p++) {
        const float *src = x + p * height * width;
        float *dst = y + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *top = src + 2 * oy * width, *bottom = top + width;
            float *out = dst + oy * ow;
            for (int64_t ox = 0; ox < ow; ox++)
                out[ox] = (top[2 * ox] + top[2 * ox + 1] + bottom[2 * ox] + bottom[2 * ox + 1]) / 4.0f;
        }
    }
}

// Every input element of a window gets the window's gradient / 4; an odd last row or column, in no
// window, gets 0.
BNDK_CLONES
void bndk_avgpool2_backward(const float *dy, float *dx, int64_t planes, int64_t height, int64_t width) {
    const int64_t oh = height / 2, ow = width / 2;
    for (int64_t p = 0; p < planes; p++) {
        const float *src = dy + p * oh * ow;
        float *dst = dx + p * height * width;
        for (int64_t oy = 0; oy < oh; oy++) {
            float *top = dst + 2 * oy * width, *bottom = top + width;
            const float *row = src + oy * ow;
            for (int64_t ox = 0; ox < ow; ox++) {
                const float share = row[ox] / 4.0f;
                top[2 * ox] = share;
                top[2 * ox + 1] = share;
                bottom[2 * ox] = share;
                bottom[2 * ox + 1] = share;
            }
            if (width & 1) top[width - 1] = bottom[width - 1] = 0;
        }
        if (height & 1) memset(dst + (height - 1) * width, 0, (size_t)width * sizeof(float));
    }
}
