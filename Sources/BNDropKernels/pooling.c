// AvgPool2d's 2×2 windows with stride 2 (see bndrop_kernels.h), the article's pooling, optionally with
// the ReLU before it folded in (its output is then never written).
#include "bndrop_kernels.h"
#include "clones.h"

// ReLU's value: 0 (positive zero) where v <= 0, else v (NaN passes), as bndk_relu_select gives.
#define RECTIFIED(v, rectify) ((rectify) && (v) <= 0 ? 0.0f : (v))
// ReLU's backward: the gradient g where the ReLU's input mask[i] > 0 (or NaN), else 0.
#define PASSED(g, mask, i, rectify) ((rectify) && (mask)[i] <= 0 ? 0.0f : (g))

// Each window's ((top-left + top-right) + bottom-left) + bottom-right, divided by 4: the order of the
// generic loop in Pooling.swift, so both give the same bits. Inlined twice, with `rectify` a constant.
static inline __attribute__((always_inline)) void pool_forward(const float *x, float *y, int64_t planes,
                                                               int64_t height, int64_t width, const int rectify) {
    const int64_t oh = height / 2, ow = width / 2;
    for (int64_t p = 0; p < planes; p++) {
        const float *src = x + p * height * width;
        float *dst = y + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *top = src + 2 * oy * width, *bottom = top + width;
            float *out = dst + oy * ow;
            for (int64_t ox = 0; ox < ow; ox++)
                out[ox] = (RECTIFIED(top[2 * ox], rectify) + RECTIFIED(top[2 * ox + 1], rectify) +
                           RECTIFIED(bottom[2 * ox], rectify) + RECTIFIED(bottom[2 * ox + 1], rectify)) / 4.0f;
        }
    }
}

BNDK_CLONES
void bndk_avgpool2_forward(const float *x, float *y, int64_t planes, int64_t height, int64_t width, int rectify) {
    if (rectify) pool_forward(x, y, planes, height, width, 1);
    else pool_forward(x, y, planes, height, width, 0);
}

// Every input element of a window gets the window's gradient / 4 (with a folded ReLU: 0 where its input
// x <= 0, ReLU's own backward); an odd last row or column, in no window, gets 0.
static inline __attribute__((always_inline)) void pool_backward(const float *dy, const float *x, float *dx,
                                                                int64_t planes, int64_t height, int64_t width,
                                                                const int rectify) {
    const int64_t oh = height / 2, ow = width / 2;
    for (int64_t p = 0; p < planes; p++) {
        const float *src = dy + p * oh * ow;
        float *dst = dx + p * height * width;
        const float *mask = rectify ? x + p * height * width : NULL;
        for (int64_t oy = 0; oy < oh; oy++) {
            float *top = dst + 2 * oy * width, *bottom = top + width;
            const float *row = src + oy * ow;
            const float *mtop = rectify ? mask + 2 * oy * width : NULL, *mbottom = rectify ? mtop + width : NULL;
            for (int64_t ox = 0; ox < ow; ox++) {
                const float share = row[ox] / 4.0f;
                top[2 * ox] = PASSED(share, mtop, 2 * ox, rectify);
                top[2 * ox + 1] = PASSED(share, mtop, 2 * ox + 1, rectify);
                bottom[2 * ox] = PASSED(share, mbottom, 2 * ox, rectify);
                bottom[2 * ox + 1] = PASSED(share, mbottom, 2 * ox + 1, rectify);
            }
            if (width & 1) top[width - 1] = bottom[width - 1] = 0;
        }
        if (height & 1) memset(dst + (height - 1) * width, 0, (size_t)width * sizeof(float));
    }
}

BNDK_CLONES
void bndk_avgpool2_backward(const float *dy, const float *x, float *dx, int64_t planes, int64_t height,
                            int64_t width) {
    if (x) pool_backward(dy, x, dx, planes, height, width, 1);
    else pool_backward(dy, NULL, dx, planes, height, width, 0);
}
