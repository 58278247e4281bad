// BatchNorm's per-channel loops (see bndrop_kernels.h). Each function is compiled for three instruction
// sets by BNDK_CLONES; the vector types below are the eight fixed lanes of every double-precision sum.
#include "bndrop_kernels.h"
#include "clones.h"

BNDK_CLONES
void bndk_channel_moments(const float *x, int64_t rows, int64_t stride, int64_t run, double *mean,
                          double *squares) {
    double8 lanes = {0};
    double rest = 0;
    for (int64_t n = 0; n < rows; n++) {
        const float *row = x + n * stride;
        int64_t s = 0;
        for (; s + 8 <= run; s += 8) lanes += widen8(load8(row + s));
        for (; s < run; s++) rest += row[s];
    }
    const double count = (double)(rows * run);
    const double mu = (sum8(lanes) + rest) / count;
    const double8 mu8 = splat8d(mu);
    lanes = (double8){0};
    rest = 0;
    for (int64_t n = 0; n < rows; n++) {
        const float *row = x + n * stride;
        int64_t s = 0;
        for (; s + 8 <= run; s += 8) {
            const double8 d = widen8(load8(row + s)) - mu8;
            lanes += d * d;
        }
        for (; s < run; s++) {
            const double d = row[s] - mu;
            rest += d * d;
        }
    }
    *mean = mu;
    *squares = sum8(lanes) + rest;
}

BNDK_CLONES
void bndk_channel_affine(const float *x, float *y, int64_t rows, int64_t stride, int64_t run, float mean,
                         float scale, float shift) {
    for (int64_t n = 0; n < rows; n++) {
        const float *in = x + n * stride;
        float *out = y + n * stride;
        for (int64_t s = 0; s < run; s++) out[s] = (in[s] - mean) * scale + shift;
    }
}

BNDK_CLONES
void bndk_channel_gradient_sums(const float *dy, const float *x, int64_t rows, int64_t stride, int64_t run,
                                float mean, double *sum_dy, double *dot) {
    double8 sums = {0}, dots = {0};
    double sum_rest = 0, dot_rest = 0;
    const float8 mean8 = splat8f(mean);
    for (int64_t n = 0; n < rows; n++) {
        const float *xr = x + n * stride, *gr = dy + n * stride;
        int64_t s = 0;
        for (; s + 8 <= run; s += 8) {
            const double8 g = widen8(load8(gr + s));
            sums += g;
            dots += widen8(load8(xr + s) - mean8) * g;
        }
        for (; s < run; s++) {
            sum_rest += gr[s];
            dot_rest += (double)(xr[s] - mean) * gr[s];
        }
    }
    *sum_dy = sum8(sums) + sum_rest;
    *dot = sum8(dots) + dot_rest;
}

BNDK_CLONES
void bndk_channel_input_gradient(const float *dy, const float *x, float *dx, int64_t rows, int64_t stride,
                                 int64_t run, float mean, float mean_dy, float projection, float scale) {
    for (int64_t n = 0; n < rows; n++) {
        const float *xr = x + n * stride, *gr = dy + n * stride;
        float *out = dx + n * stride;
        for (int64_t s = 0; s < run; s++) out[s] = (gr[s] - mean_dy - (xr[s] - mean) * projection) * scale;
    }
}
