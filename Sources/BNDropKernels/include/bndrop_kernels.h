/* Internal to bndrop: the hot loops that need the CPU's wide vectors. Swift builds for the x86-64
   baseline (SSE2) and has no per-function target attribute; these C functions are compiled once per
   instruction set (AVX-512, AVX2+FMA, baseline: GCC/Clang target_clones) and the loader picks the best
   one the CPU has, once. The choice depends on the machine only, never on the thread count, so results
   stay bit-identical for any number of threads. Not part of the public API.

   Layout conventions: a "channel" is `rows` runs of `run` contiguous floats, `stride` floats apart
   (BatchNorm2d: rows = batch, run = H*W, stride = C*H*W). Sums are taken in double precision in
   eight fixed lanes per run plus a scalar tail, so their order depends on the sizes only. */
#ifndef BNDROP_KERNELS_H
#define BNDROP_KERNELS_H

#include <stdint.h>

/* Which clone the loader chose for these kernels: "avx512", "avx2", or "baseline". */
const char *bndk_instruction_set(void);

/* ---- BatchNorm, one channel ---- */

/* *mean = Σx / count and *squares = Σ(x − mean)², in two passes (exact for a large common offset). */
void bndk_channel_moments(const float *x, int64_t rows, int64_t stride, int64_t run, double *mean,
                          double *squares);

/* y = (x − mean)·scale + shift over the channel (x and y may be the same). */
void bndk_channel_affine(const float *x, float *y, int64_t rows, int64_t stride, int64_t run, float mean,
                         float scale, float shift);

/* *sum_dy = Σdy and *dot = Σ(x − mean)·dy over the channel. */
void bndk_channel_gradient_sums(const float *dy, const float *x, int64_t rows, int64_t stride, int64_t run,
                                float mean, double *sum_dy, double *dot);

/* dx = (dy − mean_dy − (x − mean)·projection)·scale over the channel. */
void bndk_channel_input_gradient(const float *dy, const float *x, float *dx, int64_t rows, int64_t stride,
                                 int64_t run, float mean, float mean_dy, float projection, float scale);

/* ---- Conv2d, direct (for small channel counts; see convolution.c) ---- */

/* One layer's geometry: the input sample [channels, height, width], square kernel, stride, zero padding. */
typedef struct {
    int64_t channels, height, width;
    int64_t out_channels, kernel, stride, padding;
} bndk_conv_shape;

/* Floats of scratch one call of the functions below needs for up to `samples` samples (one buffer per
   concurrent caller). */
int64_t bndk_conv_scratch_floats(const bndk_conv_shape *shape, int64_t samples);

/* y = W∗x + b for `count` samples (x: count × C·H·W, y: count × O·OH·OW, w: O×C×k×k, b: O). */
void bndk_conv_forward(const bndk_conv_shape *shape, const float *x, int64_t count, const float *w,
                       const float *b, float *y, float *scratch);

/* For `count` samples with input x and output gradient dy: sets dw (O×C×k×k) and, when db is not
   NULL, db (O) to their gradients summed over these samples, and when dx is not NULL writes the input
   gradient (count × C·H·W). The order of every sum depends on the shape and `count` only. */
void bndk_conv_backward(const bndk_conv_shape *shape, const float *x, const float *dy, int64_t count,
                        const float *w, float *dw, float *db, float *dx, float *scratch);

/* Bias gradients of the groups of `per_group` consecutive samples of dy (samples × channels × plane;
   the last group may have fewer): db[g·db_stride + o] = Σ dy[n][o][·] over group g's samples, the
   terms added one by one in the order of the samples and positions (PyTorch's order). Several groups'
   chains of adds run side by side; each group's sum is the same as alone. */
void bndk_conv_bias_gradients(const float *dy, int64_t samples, int64_t per_group, int64_t channels,
                              int64_t plane, float *db, int64_t db_stride);

/* ---- AvgPool2d, 2×2 windows, stride 2, over `planes` planes height × width (any parity) ---- */

/* y = each window's mean: ((x00 + x01) + x10) + x11, divided by 4. */
void bndk_avgpool2_forward(const float *x, float *y, int64_t planes, int64_t height, int64_t width);

/* dx = dy / 4 over each window; 0 in an odd last row or column. */
void bndk_avgpool2_backward(const float *dy, float *dx, int64_t planes, int64_t height, int64_t width);

#endif
