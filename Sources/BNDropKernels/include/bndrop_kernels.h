/* Internal to bndrop: the hot loops that need the CPU's wide vectors. Swift builds for the x86-64
   baseline (SSE2) and has no per-function target attribute; these C functions are compiled once per
   instruction set (AVX-512, AVX2+FMA, baseline: GCC/Clang target_clones) and the loader picks the best
   one the CPU has, once. The choice depends on the machine only, never on the thread count, so results
   stay bit-identical for any number of threads. Not part of the public API.

   Compiled without floating-point contraction (clones.h): every multiply and add rounds as written (no fused multiply-add), so
   the element-wise results are the same bits whichever clone runs, and the same as Swift's own loops.
   The exceptions: the direct convolution (convolution.c), whose multiply-adds are fused where the
   clone has FMA (AVX2 and AVX-512 alike; only the baseline clone rounds them separately); and the
   sparse and narrow products (linear.c for AVX-512, linear_avx2.c for AVX2 with FMA: the same terms in
   the same order, so the same bits), which Linear calls only when bndk_sparse_product_available() says
   the CPU has one of them (elsewhere it uses OpenBLAS).

   Layout conventions: a "channel" is `rows` runs of `run` contiguous floats, `stride` floats apart
   (BatchNorm2d: rows = batch, run = H*W, stride = C*H*W). Sums are taken in double precision in
   eight fixed lanes per run plus a scalar tail, so their order depends on the sizes only. */
#ifndef BNDROP_KERNELS_H
#define BNDROP_KERNELS_H

#include <stdint.h>

/* Which clone the loader chose for these kernels: "avx512", "avx2", or "baseline". */
const char *bndk_instruction_set(void);

/* ---- BatchNorm, one channel ---- */

/* *sum = Σ(x − shift) and *squares = Σ(x − shift)² over the channel's rows, in double precision, in one
   pass. With `shift` a value of the channel (its first), a large common offset costs nothing to
   cancellation: Σ(x − mean)² = squares − sum²/count. The rows' sums are taken in four chains of eight
   lanes, added in a fixed order: the result depends on rows, stride and run only. */
void bndk_channel_shifted_sums(const float *x, int64_t rows, int64_t stride, int64_t run, float shift, double *sum,
                               double *squares);

/* y = (x − mean)·scale + shift over the channel (x and y may be the same). `streaming`: store past the
   caches (for outputs far larger than them; the values are the same). */
void bndk_channel_affine(const float *x, float *y, int64_t rows, int64_t stride, int64_t run, float mean,
                         float scale, float shift, int streaming);

/* *sum_dy = Σdy and *dot = Σ(x − mean)·dy over the channel. */
void bndk_channel_gradient_sums(const float *dy, const float *x, int64_t rows, int64_t stride, int64_t run,
                                float mean, double *sum_dy, double *dot);

/* dx = (dy − mean_dy − (x − mean)·projection)·scale over the channel. */
void bndk_channel_input_gradient(const float *dy, const float *x, float *dx, int64_t rows, int64_t stride,
                                 int64_t run, float mean, float mean_dy, float projection, float scale, int streaming);

/* ---- BatchNorm, N x C input: the channels [0, count) of `rows` rows, `width` floats apart ----
   Each channel's sums run over the rows in order; the loops are vectorised across channels, so every
   channel is summed exactly as a scalar loop over its column would. */

/* mean[c] = Σx / rows and squares[c] = Σ(x − mean)², in one pass of double-precision sums shifted by
   each channel's first value (exact enough for a large common offset; N x C data are re-read from cache
   by the passes that follow, so a pass saved is time saved). */
void bndk_rows_moments(const float *x, int64_t rows, int64_t width, int64_t count, double *mean, double *squares);

/* y = (x − mean[c])·scale[c] + shift[c]. */
void bndk_rows_affine(const float *x, float *y, int64_t rows, int64_t width, int64_t count, const float *mean,
                      const float *scale, const float *shift);

/* sum_dy[c] = Σdy and dot[c] = Σ(x − mean[c])·dy, in double precision. */
void bndk_rows_gradient_sums(const float *dy, const float *x, int64_t rows, int64_t width, int64_t count,
                             const float *mean, double *sum_dy, double *dot);

/* dx = (dy − mean_dy[c] − (x − mean[c])·projection[c])·scale[c]. */
void bndk_rows_input_gradient(const float *dy, const float *x, float *dx, int64_t rows, int64_t width, int64_t count,
                              const float *mean, const float *mean_dy, const float *projection, const float *scale);

/* dx = dy·scale[c] (eval mode: the statistics are constants). */
void bndk_rows_scale(const float *dy, float *dx, int64_t rows, int64_t width, int64_t count, const float *scale);

/* ---- ReLU ---- */

/* out[i] = mask[i] <= 0 ? 0 : source[i]: ReLU's forward (mask = source = x) and backward (mask = y,
   source = dy). A NaN mask passes the source through, as PyTorch's ReLU passes NaN. */
void bndk_relu_select(const float *mask, const float *source, float *out, int64_t count);

/* ---- Optimizers ---- */

/* One Adam step on `count` parameters, as torch.optim.Adam (see Optimizers.swift): g = grad (+ decay·p
   when coupled_decay); m += (g − m)·keep1; v = beta2·v + keep2·g·g;
   p −= step_size·m / (√v / correction2_sqrt + eps). */
void bndk_adam_step(float *p, const float *grad, float *m, float *v, int64_t count, float keep1, float beta2,
                    float keep2, float eps, float step_size, float correction2_sqrt, int coupled_decay, float decay);

/* Whether Adam's and SGD-with-momentum's steps compute vectors holding tiny or subnormal values in double
   precision (each result rounded to float: the same bits) because this CPU's float operations on
   subnormal values are slow: under BNDK_SUBNORMALS_MEASURED (the default), measured once per process (see
   optimizers.c); the other two policies force either way, for tests. */
enum { BNDK_SUBNORMALS_MEASURED = 0, BNDK_SUBNORMALS_IN_DOUBLE = 1, BNDK_SUBNORMALS_IN_FLOAT = 2 };
int bndk_subnormals_take_double_path(void);
void bndk_set_subnormal_policy(int policy);

/* out[i] = a[i] / c, computed as Adam computes √v / correction2_sqrt (by the inverse of c in double
   precision), for Adam's test: the float quotient for every a Adam divides (0, or at least 2^-74.5 as √v
   is, with c at most 2^50: see optimizers.c). A subnormal a can round a quotient that lies exactly
   halfway between two subnormal floats the other way. */
void bndk_divide_by(const float *a, float c, float *out, int64_t count);

/* One SGD step on `count` parameters, as torch.optim.SGD (see Optimizers.swift): g = grad (+ weight_decay·p
   when weight_decay != 0); with a momentum buffer `buf` (NULL without momentum): buf = started ?
   momentum·buf + (1 − dampening)·g : g, then g = nesterov ? g + momentum·buf : buf; p −= lr·g. */
void bndk_sgd_step(float *p, const float *grad, float *buf, int64_t count, float lr, float momentum, float dampening,
                   float weight_decay, int nesterov, int started);

/* ---- Data ---- */

/* dst row k = src row indices[k] (rows of `row_size` floats), k < count: the loader's batch gather, with
   the next rows prefetched while one is copied. */
void bndk_gather_rows(float *dst, const float *src, const int64_t *indices, int64_t count, int64_t row_size);

/* The same gather from rows of bytes (an IDX dataset's pixels), each value becoming byte/255 as float32,
   bit for bit what (float)byte / 255.0f gives: a quarter of the memory traffic of gathering the floats. */
void bndk_gather_unit_bytes(float *dst, const uint8_t *src, const int64_t *indices, int64_t count,
                            int64_t row_size);

/* ---- Checks ---- */

/* The index of the first NaN or infinity among values[0..<count], or -1 when all are finite. */
int64_t bndk_first_non_finite(const float *values, int64_t count);

/* ---- Linear ---- */

/* sums[o] += Σ_n rows[n][o] (rows `width` floats long): the bias gradient. Each column's sum is taken
   over runs of 32 rows, each run's terms added in row order from 0, the runs' sums added in order, and
   that total added to sums[o], as a scalar loop in that order would. */
void bndk_column_sums_accumulate(const float *rows, int64_t count, int64_t width, float *sums);

/* A Linear with one input or one output feature. */

/* y[n][o] = bias[o] + x[n]·w[o] (x·w alone when bias is NULL), for n < rows, o < width (y rows `width`
   floats apart); with `keep` (same layout), y is 0 where keep <= 0 (NaN keeps): ReLU's backward. */
void bndk_outer_product(const float *x, int64_t rows, const float *w, int64_t width, const float *bias,
                        const float *keep, float *y);

/* y[n] = start + Σ_k x[n][k]·w[k] for n < rows (x rows `depth` floats apart), the terms summed in eight
   lanes (k mod 8) over whole groups of eight, the lanes added pairwise ((0+4)+(2+6))+((1+5)+(3+7)),
   then the tail in order; with `relu` each x is read through ReLU (x <= 0 gives 0, NaN passes). */
void bndk_row_dots(const float *x, int64_t rows, int64_t depth, int relu, const float *w, float start, float *y);

/* sums[c] += Σ_n weights[n]·rows[n][c] for c < width, n = 0, 1, ..., count − 1 in that order (rows
   `stride` floats apart); with `relu` each rows[n][c] is read through ReLU. */
void bndk_weighted_column_sums(const float *rows, int64_t count, int64_t width, int64_t stride, const float *weights,
                               int relu, float *sums);

/* Products with a mostly-zero left operand (the input of a layer after ReLU or Dropout). */

/* 1 when this CPU has AVX-512F and VL, or AVX2 and FMA, which bndk_sparse_product needs to be worth
   calling (elsewhere it runs scalar code). */
int bndk_sparse_product_available(void);
/* 1 when the sparse product also pays for right operands over 16K floats whatever the left operand
   (taken in blocks through a ReLU, or rows in groups): with AVX-512. With AVX2's 16 registers the blocks
   through a ReLU were not measured to beat OpenBLAS, so Linear gives those products to OpenBLAS there;
   the kernel still computes them, the same bits. */
int bndk_sparse_product_in_blocks_available(void);
/* 1 when it pays for right operands over 16K floats read without a ReLU (rows in groups sharing one list
   of columns): with AVX-512, and with AVX2 and FMA (rows in pairs, linear_avx2.c: 784 -> 48 on the
   10,000 test images in calls of 64 rows, one core, 0.76-0.78 of OpenBLAS's time on AMD's Zen 3). */
int bndk_sparse_product_in_groups_available(void);
/* The most rows of a call whose limit bndk_sparse_product_within checks while it orders them for its
   groups (128 with AVX-512, 64 with AVX2): a larger call counts its entries first, a pass of its own. */
int64_t bndk_sparse_product_group_rows(void);

/* The number of entries of values[0..<count] the sparse product lists: those that are not zero, or with
   `positive_only` (a ReLU taken in) those above zero; NaN counts either way. */
int64_t bndk_count_listed(const float *values, int64_t count, int positive_only);

/* packed[r][0..<columns] = a[r][0..<columns] (rows `columns` floats apart), or its ReLU with `relu` (as
   bndk_relu_select), for r < rows, packed rows `stride` floats apart (what lies between is left as is). */
void bndk_pack_rows(const float *a, int64_t rows, int64_t columns, int relu, float *packed, int64_t stride);

/* c[r][0..<width] = s + Σ over k < depth with a[r][k] != 0 of a[r][k]·b[k][0..<width], for r < rows,
   where s is c's own row when `accumulate`, else `start` (one row for every r) or zero when NULL.
   With `positive_only` the left operand is read through a ReLU: only a[r][k] > 0 (or NaN) are terms.
   With `keep` (rows keep_stride floats apart), c[r][o] is 0 where keep[r][o] <= 0: a ReLU's backward
   (keep is its input) applied as the result is stored.
   Skipping a zero is exact only when b is finite (0·∞ is NaN): callers check. width <= 128, and b
   (depth·b_stride floats) under 2^31 floats. The
   multiply-adds are fused. A b over 16K floats without `positive_only` is taken by groups of up to 4
   rows of a (2 with AVX2) sharing one list of columns (a listed zero adds nothing): each row's result is then
   s + (its nonzero terms summed in column order, a zero sum taken as +0), whatever rows share its
   group. Otherwise the nonzero
   terms of a row go alternately into two partial sums (per chunk of 512 columns of a) added at the
   end, and a b over 16K floats is taken in blocks of about 8K floats (whole vectors of its rows), each
   block's sums added to c's row as it is stored. The order depends on the sizes and the data, not the
   thread count. */
void bndk_sparse_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride,
                         int positive_only, const float *b, int64_t b_stride, const float *start, int accumulate,
                         const float *keep, int64_t keep_stride, float *c, int64_t c_stride);

/* bndk_sparse_product when the left operand lists at most `listed_limit` entries (counted as
   bndk_count_listed counts them, over all its rows), returning 1; else 0, with nothing written (the
   caller then runs a dense product). The count costs no extra pass where the grouped kernel orders its
   rows anyway (up to 128 rows).
   `next_a`, `next_rows` (NULL, 0 for none): the rows of a left operand (rows a_stride floats apart) the
   caller will ask for next, a hint only: the AVX2 pairs load them into cache while they compute, as they
   load the next window of their own rows (measured in linear_avx2.c), and so do the AVX-512 groups when
   their next 128 rows and b fit half of the L2 cache (linear.c); the other kernels ignore it. */
int bndk_sparse_product_within(int64_t listed_limit, int64_t rows, int64_t depth, int64_t width, const float *a,
                               int64_t a_stride, int positive_only, const float *b, int64_t b_stride, const float *start,
                               int accumulate, const float *keep, int64_t keep_stride, float *c, int64_t c_stride,
                               const float *next_a, int64_t next_rows);

/* c[r][0..<width] = s + Σ over k < depth, in that order, of a[r][k]·b[k][0..<width] (fused multiply-adds),
   for r < rows, s = `start` (one row for every r) or zero when NULL: the dense product for results at
   most 32 wide (b's rows `b_stride` floats apart), with rows in groups of 8 sharing each load of b; each
   row's result is the same whatever rows share its group. Returns 1, or 0 with nothing written when
   width is over 32 or the CPU lacks what the sparse product needs (bndk_sparse_product_available). */
int bndk_narrow_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride, const float *b,
                        int64_t b_stride, const float *start, float *c, int64_t c_stride);

/* The weight gradient of a Linear whose input x is mostly zeros (images; dy dense, after BatchNorm):
   dw[o][k] += (+0 + Σ over n < batch with x[n][k] != 0 (or NaN), in that order, of x[n][k]·dy[n][o]
   as one chain of fused multiply-adds) for o < width, k < columns (x's rows x_stride floats apart, dy's
   dy_stride, dw's dw_stride). Skipping a zero is exact only when dy is finite: callers check. The value
   depends on the data only (any split of the columns between calls gives the same bits). Returns 1, or
   0 with nothing written when width is over 128. With AVX-512 (bndk_sparse_input_weight_gradient_available)
   columns go in groups of bndk_sparse_input_weight_gradient_group(width) sharing the samples where any
   of them is not zero; elsewhere it runs scalar code, the same bits, which the library does not call. */
int bndk_sparse_input_weight_gradient_available(void);
int64_t bndk_sparse_input_weight_gradient_group(int64_t width);
int bndk_sparse_input_weight_gradient(int64_t batch, int64_t columns, int64_t width, const float *x, int64_t x_stride,
                                      const float *dy, int64_t dy_stride, float *dw, int64_t dw_stride);
/* How many (row, group of `group` consecutive columns) pairs of x[0..<rows][0..<columns] have an entry
   that is not zero (or is NaN): the samples-times-groups the kernel above takes. */
int64_t bndk_count_listed_groups(const float *x, int64_t rows, int64_t columns, int64_t stride, int64_t group);

/* ---- Dropout ---- */

/* Element i of a pass (i = first, first + 1, ...; x, mask and y point at element `first`) gets
   u = (b >> 40) / 2^24, b the (first + i + 1)-th value of SplitMix64 seeded with `key` (one draw of the
   layer's own generator per pass): mask = u < p ? 0 : scale and y = x·mask. Each element depends on its
   index only, so the loop vectorises, and a pass split into slices gives the same bits. */
void bndk_dropout_forward(uint64_t key, int64_t first, float p, float scale, const float *x, float *mask,
                          float *y, int64_t count);

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

/* For `count` samples with input x and output gradient dy: sets dw (O×C×k×k) to its gradient summed
   over these samples, when db is not NULL db (O) to the bias gradient summed over them, and when dx is
   not NULL writes the input gradient (count × C·H·W). The order of every sum depends on the shape and
   `count` only. The bias gradient: each sample's terms of a channel added one by one in the order of
   its positions (PyTorch's order for one sample), then the samples' sums added in order, from 0. */
void bndk_conv_backward(const bndk_conv_shape *shape, const float *x, const float *dy, int64_t count,
                        const float *w, float *dw, float *db, float *dx, float *scratch);

/* A convolution's output gradient given as the gradient of the AvgPool2d(2) (2×2 windows, stride 2)
   right after it, and through the ReLU between them when `relu_input` (the convolution's output, the
   ReLU's input: count × O × OH × OW) is not NULL: the output gradient is then what
   bndk_avgpool2_backward(pooled, relu_input, ...) would write, made by the kernels as they read it
   instead of written whole and read again (the same bits). `pooled`: count × O × ⌊OH/2⌋ × ⌊OW/2⌋. */
typedef struct {
    const float *pooled;
    const float *relu_input;
} bndk_pooled_gradient;

/* bndk_conv_backward with the output gradient given through the pooling after the convolution. */
void bndk_conv_backward_pooled(const bndk_conv_shape *shape, const float *x, bndk_pooled_gradient dy, int64_t count,
                               const float *w, float *dw, float *db, float *dx, float *scratch);

/* ---- AvgPool2d, 2×2 windows, stride 2, over `planes` planes height × width (any parity) ---- */

/* y = each window's mean: ((x00 + x01) + x10) + x11, divided by 4. With `rectify`, each x is first
   replaced by ReLU's value (0 where x <= 0): the pooling of a ReLU's output, read from its input. */
void bndk_avgpool2_forward(const float *x, float *y, int64_t planes, int64_t height, int64_t width, int rectify);

/* dx = dy / 4 over each window; 0 in an odd last row or column. With `x` (the forward's input, not NULL),
   also 0 where x <= 0: the gradient through a folded ReLU, as its own backward gives. */
void bndk_avgpool2_backward(const float *dy, const float *x, float *dx, int64_t planes, int64_t height,
                            int64_t width);

#endif
