// AvgPool2d's 2×2 windows with stride 2 (see bndrop_kernels.h), the article's pooling, optionally with
// the ReLU before it folded in (its output is then never written).
#include "bndrop_kernels.h"
#include "clones.h"
#include "pooling_rows.h"

// ReLU's value: 0 (positive zero) where v <= 0, else v (NaN passes), as bndk_relu_select gives.
#define RECTIFIED(v, rectify) ((rectify) && (v) <= 0 ? 0.0f : (v))

// Each window's ((top-left + top-right) + bottom-left) + bottom-right, divided by 4: the order of the
// generic loop in Pooling.swift, so both give the same bits. Inlined twice, with `rectify` a constant.
// The article's rows are short (12 and 5 outputs): 8, then 4 outputs at a time from their input rows'
// even and odd lanes, then one by one; the compilers vectorised only the first part (8 at a time), and
// on Zen 3 the rest made pooling 16% of the CNN's eval pass.
static inline __attribute__((always_inline)) void pool_forward(const float *x, float *y, int64_t planes,
                                                               int64_t height, int64_t width, const int rectify) {
    const int64_t oh = height / 2, ow = width / 2;
    for (int64_t p = 0; p < planes; p++) {
        const float *src = x + p * height * width;
        float *dst = y + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *top = src + 2 * oy * width, *bottom = top + width;
            float *out = dst + oy * ow;
            int64_t ox = 0;
            for (; ox + 8 <= ow; ox += 8) {
                float16v t = load16(top + 2 * ox), b = load16(bottom + 2 * ox);
                if (rectify) { t = RELU16(t); b = RELU16(b); }
                const float8 sum = ((__builtin_shufflevector(t, t, 0, 2, 4, 6, 8, 10, 12, 14) +
                                     __builtin_shufflevector(t, t, 1, 3, 5, 7, 9, 11, 13, 15)) +
                                    __builtin_shufflevector(b, b, 0, 2, 4, 6, 8, 10, 12, 14)) +
                                   __builtin_shufflevector(b, b, 1, 3, 5, 7, 9, 11, 13, 15);
                store8(out + ox, sum / splat8f(4.0f));
            }
            if (ox + 4 <= ow) {
                float8 t = load8(top + 2 * ox), b = load8(bottom + 2 * ox);
                if (rectify) { t = RELU8(t); b = RELU8(b); }
                const float4v sum = ((__builtin_shufflevector(t, t, 0, 2, 4, 6) + __builtin_shufflevector(t, t, 1, 3, 5, 7)) +
                                     __builtin_shufflevector(b, b, 0, 2, 4, 6)) +
                                    __builtin_shufflevector(b, b, 1, 3, 5, 7);
                const float4v quarter = sum / (float4v){4.0f, 4.0f, 4.0f, 4.0f};
                memcpy(out + ox, &quarter, sizeof quarter);
                ox += 4;
            }
            for (; ox < ow; ox++)
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

// AvgPool2d's backward, row by row: pool_backward_row (pooling_rows.h).
static inline __attribute__((always_inline)) void pool_backward(const float *restrict dy, const float *restrict x,
                                                                float *restrict dx, int64_t planes, int64_t height,
                                                                int64_t width, const int rectify) {
    const int64_t plane = height * width;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t y = 0; y < height; y++)
            pool_backward_plane_row(dy + p * (height / 2) * (width / 2), rectify ? x + p * plane : NULL, height, width,
                                    y, dx + p * plane + y * width);
}

BNDK_CLONES
void bndk_avgpool2_backward(const float *dy, const float *x, float *dx, int64_t planes, int64_t height,
                            int64_t width) {
    if (x) pool_backward(dy, x, dx, planes, height, width, 1);
    else pool_backward(dy, NULL, dx, planes, height, width, 0);
}
