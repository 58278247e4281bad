// AvgPool2d's backward (2×2 windows, stride 2) one input row at a time, shared by pooling.c and the direct
// convolution's backward through the pooling after it (convolution.c).
#ifndef BNDROP_KERNELS_POOLING_ROWS_H
#define BNDROP_KERNELS_POOLING_ROWS_H

#include "clones.h"

typedef float float4v __attribute__((vector_size(16)));

// ReLU's backward: the gradient g where the ReLU's input mask[i] > 0 (or NaN), else 0.
#define PASSED(g, mask, i, rectify) ((rectify) && (mask)[i] <= 0 ? 0.0f : (g))

// Every input element of a window gets the window's gradient / 4 (with a folded ReLU: 0 where its input
// x <= 0, ReLU's own backward); an odd last row or column, in no window, gets 0. The article's rows are
// short (24 and 10 inputs), so each input row is written 16 (then 8) at a time from 8 (then 4) output
// gradients, each lane doubled, rather than by a loop over output columns, which the compilers left
// scalar at these widths (the article's CNN epoch 4% faster so).
// One input row from its output row `row` (each value / 4 to two neighbours), masked by `mask` when
// rectifying; columns [0, 2·ow).
static inline __attribute__((always_inline)) void pool_backward_row(const float *restrict row, int64_t ow,
                                                                    const float *restrict mask, float *restrict out,
                                                                    const int rectify) {
    int64_t ox = 0;
    for (; ox + 8 <= ow; ox += 8) {
        const float8 g = load8(row + ox) / splat8f(4.0f);
        float16v doubled = __builtin_shufflevector(g, g, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        if (rectify) doubled = KEEP16(doubled, load16(mask + 2 * ox));
        store16(out + 2 * ox, doubled);
    }
    if (ox + 4 <= ow) {
        float4v g;
        memcpy(&g, row + ox, sizeof g);
        g = g / (float4v){4.0f, 4.0f, 4.0f, 4.0f};
        float8 doubled = __builtin_shufflevector(g, g, 0, 0, 1, 1, 2, 2, 3, 3);
        if (rectify) doubled = KEEP8(doubled, load8(mask + 2 * ox));
        store8(out + 2 * ox, doubled);
        ox += 4;
    }
    for (; ox < ow; ox++) {
        const float share = row[ox] / 4.0f;
        out[2 * ox] = PASSED(share, mask, 2 * ox, rectify);
        out[2 * ox + 1] = PASSED(share, mask, 2 * ox + 1, rectify);
    }
}

// Row y of one plane's input gradient (`height` × `width`, every column): from the plane's output gradient
// `pooled` (⌊height/2⌋ × ⌊width/2⌋), through the ReLU where `mask` (the plane's ReLU input) is not NULL;
// 0 in an odd last row or column. What bndk_avgpool2_backward writes, one row at a time: pooling.c's
// backward, and the direct convolution's backward through the pooling after it (convolution.c).
static inline __attribute__((always_inline)) void pool_backward_plane_row(const float *restrict pooled,
                                                                          const float *restrict mask, int64_t height,
                                                                          int64_t width, int64_t y,
                                                                          float *restrict out) {
    if (y >= height / 2 * 2) {
        memset(out, 0, (size_t)width * sizeof(float));
        return;
    }
    const float *row = pooled + y / 2 * (width / 2);
    if (mask)
        pool_backward_row(row, width / 2, mask + y * width, out, 1);
    else
        pool_backward_row(row, width / 2, NULL, out, 0);
    if (width & 1) out[width - 1] = 0;
}

#endif
