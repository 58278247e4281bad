/* Every kernel of Sources/BNDropKernels on fixed inputs, one line per call: its name and a 64-bit hash
   of the bytes it wrote. Built once per instruction set (Tests/kernels/isa_check.sh: the kernels
   compiled with -DBNDK_NO_CLONES and -march=x86-64, x86-64-v3, x86-64-v4, and once as the library builds
   them, with target_clones), so the lines of the builds can be compared: bndrop_kernels.h says the
   results are the same bits whichever clone runs (the convolution's only among the clones with FMA).
   The library runs the AVX-512 clone on this machine and the others on users' machines; this is where
   those others run at all.

   Besides the hashes, the program checks each result against a plain scalar computation (exactly, or
   within a bound where the kernel sums in another order), so a build that agrees with the others on a
   wrong answer still fails. Exit status: 0 all checks passed, 1 a check failed, 77 this CPU lacks the
   instruction set the program was built for (nothing ran). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bndrop_kernels.h"

/* The scalar references round every multiply and add as written, as the kernels do (clones.h). */
#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

static int failures = 0;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            fprintf(stderr, "isa_check: %s:%d: ", __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* ---- Output: FNV-1a over the bytes a call wrote ---- */

typedef struct { uint64_t h; } hash;
static hash hash_start(void) { return (hash){1469598103934665603ULL}; }
static void hash_bytes(hash *h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h->h ^= b[i]; h->h *= 1099511628211ULL; }
}
/* Floats, with every NaN hashed as one pattern: which NaN an operation returns when both of its operands
   are NaN (x86 returns the first one's) depends on the order the compiler put them in, and no result of
   the library depends on a NaN's sign or payload. Every other bit counts. */
static void hash_floats(hash *h, const float *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float v = isnan(p[i]) ? NAN : p[i];
        hash_bytes(h, &v, sizeof v);
    }
}
static void emit(const char *name, hash h) { printf("%-40s %016" PRIx64 "\n", name, h.h); }

/* ---- Inputs: a fixed generator, and a sprinkling of the values kernels get wrong ---- */

static uint64_t state = 0x9E3779B97F4A7C15ULL;
static uint64_t next_u64(void) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static float uniform(void) { return (float)(next_u64() >> 40) / 16777216.0f; }        /* [0, 1) */
static float symmetric(void) { return 2.0f * uniform() - 1.0f; }                        /* [-1, 1) */

static float *floats(int64_t n) {
    float *p = calloc((size_t)(n > 0 ? n : 1) + 64, sizeof(float));  /* slack: no kernel reads past n */
    if (!p) { perror("calloc"); exit(2); }
    return p;
}
static void fill(float *p, int64_t n, float offset, float spread) {
    for (int64_t i = 0; i < n; i++) p[i] = offset + spread * symmetric();
}
/* Zeros, negative zeros, subnormals, NaN and infinities among ordinary values. */
static void fill_special(float *p, int64_t n) {
    static const float specials[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 1.17549435e-38f, 3.4e38f, -3.4e38f};
    for (int64_t i = 0; i < n; i++) {
        const uint64_t r = next_u64() % 16;
        p[i] = r < 7 ? specials[r] : symmetric() * 4.0f;
    }
    if (n > 5) { p[n / 3] = NAN; p[n / 2] = INFINITY; p[n - 1] = -INFINITY; }
}
static int same_float(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

static const int64_t counts[] = {0, 1, 7, 8, 9, 15, 16, 17, 33, 100, 1003};
enum { COUNTS = sizeof counts / sizeof counts[0] };

/* ---- BatchNorm ---- */

static void check_channel(int64_t rows, int64_t run, int64_t stride, float offset) {
    char name[64];
    const int64_t n = (rows - 1) * stride + run;
    float *x = floats(n), *dy = floats(n), *y = floats(n), *dx = floats(n);
    fill(x, n, offset, 0.1f);
    fill(dy, n, 0.0f, 1.0f);
    double sum, shifted_squares, sum_dy, dot;
    bndk_channel_shifted_sums(x, rows, stride, run, x[0], &sum, &shifted_squares);
    const double mean = x[0] + sum / (double)(rows * run);
    const double squares = shifted_squares - sum * sum / (double)(rows * run);
    double ref_sum = 0;
    for (int64_t r = 0; r < rows; r++) for (int64_t i = 0; i < run; i++) ref_sum += x[r * stride + i];
    const double ref_mean = ref_sum / (double)(rows * run);
    double ref_squares = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < run; i++) ref_squares += (x[r * stride + i] - ref_mean) * (x[r * stride + i] - ref_mean);
    CHECK(fabs(mean - ref_mean) <= 1e-12 * fabs(ref_mean) + 1e-15, "channel mean %.17g vs %.17g", mean, ref_mean);
    CHECK(fabs(squares - ref_squares) <= 1e-9 * ref_squares + 1e-15, "channel squares %.17g vs %.17g", squares, ref_squares);
    hash h = hash_start();
    hash_bytes(&h, &sum, sizeof sum);
    hash_bytes(&h, &shifted_squares, sizeof shifted_squares);
    snprintf(name, sizeof name, "channel_shifted_sums/%" PRId64 "x%" PRId64, rows, run);
    emit(name, h);

    const float fmean = (float)mean, scale = 1.7f, shift = -0.3f;
    for (int streaming = 0; streaming < 2; streaming++) {
        memset(y, 0, (size_t)n * sizeof(float));
        bndk_channel_affine(x, y, rows, stride, run, fmean, scale, shift, streaming);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < run; i++) {
                const float want = (x[r * stride + i] - fmean) * scale + shift;
                CHECK(same_float(y[r * stride + i], want), "channel_affine [%" PRId64 "] %g vs %g", i, y[r * stride + i], want);
            }
        h = hash_start();
        hash_floats(&h, y, (size_t)n);
        snprintf(name, sizeof name, "channel_affine/%" PRId64 "x%" PRId64 "/s%d", rows, run, streaming);
        emit(name, h);
    }

    bndk_channel_gradient_sums(dy, x, rows, stride, run, fmean, &sum_dy, &dot);
    double ref_dy = 0, ref_dot = 0, magnitude = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < run; i++) {
            const float d = dy[r * stride + i], centred = x[r * stride + i] - fmean;
            ref_dy += d;
            ref_dot += (double)centred * d;
            magnitude += fabs((double)centred * d) + fabs(d);
        }
    CHECK(fabs(sum_dy - ref_dy) <= 1e-12 * magnitude + 1e-15, "channel sum_dy %.17g vs %.17g", sum_dy, ref_dy);
    CHECK(fabs(dot - ref_dot) <= 1e-12 * magnitude + 1e-15, "channel dot %.17g vs %.17g", dot, ref_dot);
    h = hash_start();
    hash_bytes(&h, &sum_dy, sizeof sum_dy);
    hash_bytes(&h, &dot, sizeof dot);
    snprintf(name, sizeof name, "channel_gradient_sums/%" PRId64 "x%" PRId64, rows, run);
    emit(name, h);

    const float mean_dy = (float)(sum_dy / (double)(rows * run)), projection = 0.37f;
    for (int streaming = 0; streaming < 2; streaming++) {
        memset(dx, 0, (size_t)n * sizeof(float));
        bndk_channel_input_gradient(dy, x, dx, rows, stride, run, fmean, mean_dy, projection, scale, streaming);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < run; i++) {
                const int64_t k = r * stride + i;
                const float want = (dy[k] - mean_dy - (x[k] - fmean) * projection) * scale;
                CHECK(same_float(dx[k], want), "channel_input_gradient [%" PRId64 "] %g vs %g", k, dx[k], want);
            }
        h = hash_start();
        hash_floats(&h, dx, (size_t)n);
        snprintf(name, sizeof name, "channel_input_gradient/%" PRId64 "x%" PRId64 "/s%d", rows, run, streaming);
        emit(name, h);
    }
    free(x); free(dy); free(y); free(dx);
}

static void check_rows(int64_t rows, int64_t width, int64_t count, float offset) {
    char name[64];
    const int64_t n = rows * width;
    float *x = floats(n), *dy = floats(n), *y = floats(n), *dx = floats(n);
    float *fmean = floats(count), *scale = floats(count), *shift = floats(count), *mean_dy = floats(count),
          *projection = floats(count);
    double *mean = calloc((size_t)count + 1, sizeof(double)), *squares = calloc((size_t)count + 1, sizeof(double)),
           *sum_dy = calloc((size_t)count + 1, sizeof(double)), *dot = calloc((size_t)count + 1, sizeof(double));
    fill(x, n, offset, 0.1f);
    fill(dy, n, 0.0f, 1.0f);
    bndk_rows_moments(x, rows, width, count, mean, squares);
    for (int64_t c = 0; c < count; c++) {
        double s = 0, q = 0;
        for (int64_t r = 0; r < rows; r++) s += x[r * width + c];
        const double m = s / (double)rows;
        for (int64_t r = 0; r < rows; r++) q += (x[r * width + c] - m) * (x[r * width + c] - m);
        CHECK(fabs(mean[c] - m) <= 1e-12 * fabs(m) + 1e-15, "rows mean[%" PRId64 "] %.17g vs %.17g", c, mean[c], m);
        CHECK(fabs(squares[c] - q) <= 1e-9 * q + 1e-15, "rows squares[%" PRId64 "] %.17g vs %.17g", c, squares[c], q);
        fmean[c] = (float)mean[c];
        scale[c] = 0.5f + uniform();
        shift[c] = symmetric();
        projection[c] = symmetric();
    }
    hash h = hash_start();
    hash_bytes(&h, mean, (size_t)count * sizeof(double));
    hash_bytes(&h, squares, (size_t)count * sizeof(double));
    snprintf(name, sizeof name, "rows_moments/%" PRId64 "x%" PRId64, rows, count);
    emit(name, h);

    bndk_rows_affine(x, y, rows, width, count, fmean, scale, shift);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < count; c++) {
            const float want = (x[r * width + c] - fmean[c]) * scale[c] + shift[c];
            CHECK(same_float(y[r * width + c], want), "rows_affine [%" PRId64 ",%" PRId64 "]", r, c);
        }
    h = hash_start();
    hash_floats(&h, y, (size_t)n);
    snprintf(name, sizeof name, "rows_affine/%" PRId64 "x%" PRId64, rows, count);
    emit(name, h);

    bndk_rows_gradient_sums(dy, x, rows, width, count, fmean, sum_dy, dot);
    for (int64_t c = 0; c < count; c++) {
        double s = 0, d = 0;  /* the order the header promises: over the rows, in order */
        for (int64_t r = 0; r < rows; r++) {
            s += dy[r * width + c];
            d += (double)(x[r * width + c] - fmean[c]) * dy[r * width + c];
        }
        CHECK(fabs(sum_dy[c] - s) <= 1e-13 * (fabs(s) + rows), "rows sum_dy[%" PRId64 "]", c);
        CHECK(fabs(dot[c] - d) <= 1e-13 * (fabs(d) + rows), "rows dot[%" PRId64 "]", c);
        mean_dy[c] = (float)(sum_dy[c] / (double)rows);
    }
    h = hash_start();
    hash_bytes(&h, sum_dy, (size_t)count * sizeof(double));
    hash_bytes(&h, dot, (size_t)count * sizeof(double));
    snprintf(name, sizeof name, "rows_gradient_sums/%" PRId64 "x%" PRId64, rows, count);
    emit(name, h);

    bndk_rows_input_gradient(dy, x, dx, rows, width, count, fmean, mean_dy, projection, scale);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < count; c++) {
            const int64_t k = r * width + c;
            const float want = (dy[k] - mean_dy[c] - (x[k] - fmean[c]) * projection[c]) * scale[c];
            CHECK(same_float(dx[k], want), "rows_input_gradient [%" PRId64 ",%" PRId64 "]", r, c);
        }
    h = hash_start();
    hash_floats(&h, dx, (size_t)n);
    snprintf(name, sizeof name, "rows_input_gradient/%" PRId64 "x%" PRId64, rows, count);
    emit(name, h);

    memset(dx, 0, (size_t)n * sizeof(float));
    bndk_rows_scale(dy, dx, rows, width, count, scale);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < count; c++)
            CHECK(same_float(dx[r * width + c], dy[r * width + c] * scale[c]), "rows_scale [%" PRId64 ",%" PRId64 "]", r, c);
    h = hash_start();
    hash_floats(&h, dx, (size_t)n);
    snprintf(name, sizeof name, "rows_scale/%" PRId64 "x%" PRId64, rows, count);
    emit(name, h);

    free(x); free(dy); free(y); free(dx); free(fmean); free(scale); free(shift); free(mean_dy); free(projection);
    free(mean); free(squares); free(sum_dy); free(dot);
}

/* ---- Element-wise: ReLU, finiteness, optimizers ---- */

static void check_elementwise(int64_t n) {
    char name[64];
    float *mask = floats(n), *source = floats(n), *out = floats(n);
    fill_special(mask, n);
    fill_special(source, n);
    bndk_relu_select(mask, source, out, n);
    for (int64_t i = 0; i < n; i++) {
        const float want = mask[i] <= 0 ? 0.0f : source[i];
        CHECK(same_float(out[i], want), "relu_select [%" PRId64 "] %g vs %g", i, out[i], want);
    }
    hash h = hash_start();
    hash_floats(&h, out, (size_t)n);
    snprintf(name, sizeof name, "relu_select/%" PRId64, n);
    emit(name, h);

    /* first_non_finite: none, then one at each of a few places. */
    fill(out, n, 0.0f, 1e30f);
    h = hash_start();
    int64_t found = bndk_first_non_finite(out, n);
    CHECK(found == -1, "first_non_finite of finite values: %" PRId64, found);
    hash_bytes(&h, &found, sizeof found);
    const int64_t places[] = {0, n / 2, n - 1};
    for (int k = 0; k < 3 && n > 0; k++) {
        const float bad = k == 1 ? NAN : (k == 0 ? INFINITY : -INFINITY);
        const float kept = out[places[k]];
        out[places[k]] = bad;
        found = bndk_first_non_finite(out, n);
        CHECK(found == places[k], "first_non_finite: %" PRId64 " vs %" PRId64, found, places[k]);
        hash_bytes(&h, &found, sizeof found);
        out[places[k]] = kept;
    }
    snprintf(name, sizeof name, "first_non_finite/%" PRId64, n);
    emit(name, h);

    /* count_listed, both predicates. */
    h = hash_start();
    for (int positive = 0; positive < 2; positive++) {
        int64_t want = 0;
        for (int64_t i = 0; i < n; i++) want += positive ? !(mask[i] <= 0) : mask[i] != 0;
        const int64_t listed = bndk_count_listed(mask, n, positive);
        CHECK(listed == want, "count_listed(positive %d): %" PRId64 " vs %" PRId64, positive, listed, want);
        hash_bytes(&h, &listed, sizeof listed);
    }
    snprintf(name, sizeof name, "count_listed/%" PRId64, n);
    emit(name, h);
    free(mask); free(source); free(out);
}

static void check_optimizers(int64_t n) {
    char name[64];
    float *p = floats(n), *g = floats(n), *m = floats(n), *v = floats(n), *buf = floats(n);
    float *rp = floats(n), *rm = floats(n), *rv = floats(n), *rbuf = floats(n);
    for (int decay = 0; decay < 2; decay++) {
        fill(p, n, 0.0f, 1.0f);
        memset(m, 0, (size_t)n * sizeof(float));
        memset(v, 0, (size_t)n * sizeof(float));
        /* Some subnormal moments and zero gradients (dead units), as late in the article's run. */
        for (int64_t i = 0; i < n; i += 5) m[i] = 1e-39f;
        memcpy(rp, p, (size_t)n * sizeof(float));
        memcpy(rm, m, (size_t)n * sizeof(float));
        memcpy(rv, v, (size_t)n * sizeof(float));
        hash h = hash_start();
        for (int step = 1; step <= 3; step++) {
            fill(g, n, 0.0f, 0.5f);
            for (int64_t i = 0; i < n; i += 5) g[i] = 0.0f;
            const float beta1 = 0.9f, beta2 = 0.999f, lr = 0.01f, eps = 1e-8f, wd = decay ? 0.01f : 0.0f;
            const float keep1 = 1.0f - beta1, keep2 = 1.0f - beta2;
            const float c1 = 1.0f - powf(beta1, (float)step), c2 = sqrtf(1.0f - powf(beta2, (float)step));
            const float step_size = lr / c1;
            bndk_adam_step(p, g, m, v, n, keep1, beta2, keep2, eps, step_size, c2, decay, wd);
            for (int64_t i = 0; i < n; i++) {  /* the header's formula, with float division */
                const float gi = decay ? g[i] + wd * rp[i] : g[i];
                rm[i] = rm[i] + (gi - rm[i]) * keep1;
                rv[i] = beta2 * rv[i] + keep2 * gi * gi;
                rp[i] = rp[i] - step_size * rm[i] / (sqrtf(rv[i]) / c2 + eps);
                CHECK(same_float(p[i], rp[i]) && same_float(m[i], rm[i]) && same_float(v[i], rv[i]),
                      "adam_step [%" PRId64 "] step %d: p %a vs %a", i, step, p[i], rp[i]);
            }
            hash_floats(&h, p, (size_t)n);
            hash_floats(&h, m, (size_t)n);
            hash_floats(&h, v, (size_t)n);
        }
        snprintf(name, sizeof name, "adam_step/%" PRId64 "/decay%d", n, decay);
        emit(name, h);
    }

    hash h = hash_start();
    fill(g, n, 0.0f, 100.0f);
    const float divisors[] = {0.0316227779f, 1.0f, 3.0f, 1e-30f, 7e30f};
    for (int k = 0; k < 5; k++) {
        bndk_divide_by(g, divisors[k], p, n);
        for (int64_t i = 0; i < n; i++)
            CHECK(same_float(p[i], g[i] / divisors[k]), "divide_by [%" PRId64 "] %a / %a: %a", i, g[i], divisors[k], p[i]);
        hash_floats(&h, p, (size_t)n);
    }
    snprintf(name, sizeof name, "divide_by/%" PRId64, n);
    emit(name, h);

    /* SGD: plain, weight decay, momentum (first step and later), dampening, Nesterov. */
    struct { float momentum, dampening, wd; int nesterov, use_buf; } cases[] = {
        {0, 0, 0, 0, 0}, {0, 0, 0.01f, 0, 0}, {0.9f, 0, 0, 0, 1}, {0.9f, 0.1f, 0.01f, 0, 1}, {0.9f, 0, 0, 1, 1}};
    for (int c = 0; c < 5; c++) {
        fill(p, n, 0.0f, 1.0f);
        memcpy(rp, p, (size_t)n * sizeof(float));
        h = hash_start();
        for (int started = 0; started < 2; started++) {
            fill(g, n, 0.0f, 0.5f);
            const float lr = 0.01f, mo = cases[c].momentum, da = cases[c].dampening, wd = cases[c].wd;
            bndk_sgd_step(p, g, cases[c].use_buf ? buf : NULL, n, lr, mo, da, wd, cases[c].nesterov, started);
            for (int64_t i = 0; i < n; i++) {
                float gi = wd != 0 ? g[i] + wd * rp[i] : g[i];
                if (cases[c].use_buf) {
                    rbuf[i] = started ? mo * rbuf[i] + (1 - da) * gi : gi;
                    gi = cases[c].nesterov ? gi + mo * rbuf[i] : rbuf[i];
                }
                rp[i] = rp[i] - lr * gi;
                CHECK(same_float(p[i], rp[i]), "sgd_step case %d [%" PRId64 "]: %a vs %a", c, i, p[i], rp[i]);
            }
            hash_floats(&h, p, (size_t)n);
            if (cases[c].use_buf) hash_floats(&h, buf, (size_t)n);
        }
        snprintf(name, sizeof name, "sgd_step/%" PRId64 "/case%d", n, c);
        emit(name, h);
    }
    free(p); free(g); free(m); free(v); free(buf); free(rp); free(rm); free(rv); free(rbuf);
}

/* ---- Data, Linear's helpers, the sparse product ---- */

static void check_data(int64_t row_size) {
    char name[64];
    enum { SOURCE_ROWS = 40, PICKED = 23 };
    float *src = floats(SOURCE_ROWS * row_size), *dst = floats(PICKED * row_size);
    uint8_t *bytes = malloc((size_t)(SOURCE_ROWS * row_size) + 1);
    int64_t indices[PICKED];
    fill(src, SOURCE_ROWS * row_size, 0.0f, 1.0f);
    for (int64_t i = 0; i < SOURCE_ROWS * row_size; i++) bytes[i] = (uint8_t)(next_u64() & 0xFF);
    for (int k = 0; k < PICKED; k++) indices[k] = (int64_t)(next_u64() % SOURCE_ROWS);
    bndk_gather_rows(dst, src, indices, PICKED, row_size);
    for (int k = 0; k < PICKED; k++)
        CHECK(memcmp(dst + k * row_size, src + indices[k] * row_size, (size_t)row_size * sizeof(float)) == 0,
              "gather_rows: row %d", k);
    hash h = hash_start();
    hash_floats(&h, dst, (size_t)(PICKED * row_size));
    snprintf(name, sizeof name, "gather_rows/%" PRId64, row_size);
    emit(name, h);

    bndk_gather_unit_bytes(dst, bytes, indices, PICKED, row_size);
    for (int k = 0; k < PICKED; k++)
        for (int64_t i = 0; i < row_size; i++)
            CHECK(same_float(dst[k * row_size + i], (float)bytes[indices[k] * row_size + i] / 255.0f),
                  "gather_unit_bytes [%d][%" PRId64 "]", k, i);
    h = hash_start();
    hash_floats(&h, dst, (size_t)(PICKED * row_size));
    snprintf(name, sizeof name, "gather_unit_bytes/%" PRId64, row_size);
    emit(name, h);
    free(src); free(dst); free(bytes);
}

/* The sparse product's value for row r, column o, term by term as bndrop_kernels.h defines its order
   (the constants of Sources/BNDropKernels/linear_products.h): with a ReLU taken in and a right operand over
   16K floats, in blocks of columns of the left operand, each block's sum added to the partial result; in
   groups of rows (no ReLU taken in, the same size), one chain of fused multiply-adds over the row's listed
   columns, a zero sum taken as +0; else, per chunk of 512 columns, the listed entries alternately into
   two chains. Every instruction set must give exactly this. */
static float sparse_expected(int64_t r, int64_t o, int64_t depth, const float *a, int positive, const float *b,
                             int64_t stride, float start) {
    const float *row = a + r * depth;
#define LISTED(x) (positive ? !((x) <= 0.0f) : ((x) != 0.0f || (x) != (x)))
    if (!positive && depth * stride > 16 * 1024) {
        float sum = 0;
        for (int64_t k = 0; k < depth; k++)
            if (LISTED(row[k])) sum = fmaf(row[k], b[k * stride + o], sum);
        return start + (sum + 0.0f);
    }
    int64_t block = depth;
    if (positive && depth * stride > 16 * 1024) {
        block = 8 * 1024 / stride / 16 * 16;
        if (block < 16) block = 16;
    }
    float partial = start;
    for (int64_t k0 = 0; k0 < depth; k0 += block) {
        const int64_t end = depth - k0 < block ? depth : k0 + block;
        float first = 0, second = 0;
        for (int64_t chunk = k0; chunk < end; chunk += 512) {
            int64_t j = 0;
            for (int64_t k = chunk; k < end && k < chunk + 512; k++)
                if (LISTED(row[k])) {
                    if (j++ % 2 == 0) first = fmaf(row[k], b[k * stride + o], first);
                    else second = fmaf(row[k], b[k * stride + o], second);
                }
        }
        partial = partial + (first + second);
    }
#undef LISTED
    return partial;
}

static void check_linear(int64_t rows, int64_t depth, int64_t width) {
    char name[64];
    const int64_t stride = (width + 15) / 16 * 16;
    float *a = floats(rows * depth), *b = floats(depth * width), *packed = floats(depth * stride);
    float *sums = floats(width), *start = floats(width), *keep = floats(rows * width), *c = floats(rows * width);
    fill(a, rows * depth, 0.0f, 1.0f);
    for (int64_t i = 0; i < rows * depth; i++)
        if (next_u64() % 3) a[i] = (next_u64() & 1) ? 0.0f : -a[i] * a[i];  /* two thirds zero or negative */
    fill(b, depth * width, 0.0f, 1.0f);
    fill(start, width, 0.0f, 1.0f);
    fill(keep, rows * width, 0.0f, 1.0f);

    memcpy(sums, start, (size_t)width * sizeof(float));
    bndk_column_sums_accumulate(a, rows, depth < width ? depth : width, sums);
    hash h = hash_start();
    for (int64_t o = 0; o < (depth < width ? depth : width); o++) {
        float total = 0;  // runs of 32 rows summed in order, their sums added, then the start
        for (int64_t first = 0; first < rows; first += 32) {
            float run = 0;
            for (int64_t r = first; r < rows && r < first + 32; r++) run += a[r * (depth < width ? depth : width) + o];
            total += run;
        }
        const float want = start[o] + total;
        CHECK(same_float(sums[o], want), "column_sums_accumulate [%" PRId64 "]", o);
    }
    hash_floats(&h, sums, (size_t)width);
    snprintf(name, sizeof name, "column_sums_accumulate/%" PRId64 "x%" PRId64, rows, width);
    emit(name, h);

    h = hash_start();
    for (int relu = 0; relu < 2; relu++) {
        memset(packed, 0, (size_t)(depth * stride) * sizeof(float));
        bndk_pack_rows(b, depth, width, relu, packed, stride);
        for (int64_t k = 0; k < depth; k++)
            for (int64_t o = 0; o < width; o++) {
                const float v = b[k * width + o], want = relu && v <= 0 ? 0.0f : v;
                CHECK(same_float(packed[k * stride + o], want), "pack_rows [%" PRId64 ",%" PRId64 "]", k, o);
            }
        hash_floats(&h, packed, (size_t)(depth * stride));
    }
    snprintf(name, sizeof name, "pack_rows/%" PRId64 "x%" PRId64, depth, width);
    emit(name, h);

    if (bndk_sparse_product_available() && width <= 128) {
        h = hash_start();
        for (int variant = 0; variant < 4; variant++) {
            const int positive = variant & 1, masked = variant >> 1;
            bndk_sparse_product(rows, depth, width, a, depth, positive, packed, stride, start, 0,
                                masked ? keep : NULL, width, c, width);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t o = 0; o < width; o++) {
                    double sum = start[o], magnitude = fabs(start[o]);
                    for (int64_t k = 0; k < depth; k++) {
                        const float x = a[r * depth + k];
                        if (positive ? x > 0 : x != 0) {
                            sum += (double)x * packed[k * stride + o];
                            magnitude += fabs((double)x * packed[k * stride + o]);
                        }
                    }
                    if (masked && keep[r * width + o] <= 0) sum = 0, magnitude = 0;
                    CHECK(fabs(c[r * width + o] - sum) <= 1e-6 * magnitude, "sparse_product variant %d [%" PRId64 ",%" PRId64 "]",
                          variant, r, o);
                    const float exact = masked && keep[r * width + o] <= 0
                                            ? 0.0f
                                            : sparse_expected(r, o, depth, a, positive, packed, stride, start[o]);
                    CHECK(same_float(c[r * width + o], exact), "sparse_product variant %d [%" PRId64 ",%" PRId64
                          "]: %a, in the defined order %a", variant, r, o, c[r * width + o], exact);
                }
            hash_floats(&h, c, (size_t)(rows * width));
        }
        snprintf(name, sizeof name, "sparse_product/%" PRId64 "x%" PRId64 "x%" PRId64, rows, depth, width);
        emit(name, h);
    }
    /* The narrow product (outputs up to 32 wide): start + every term, in column order, one chain of fused
       multiply-adds, whatever the instruction set. */
    if (bndk_narrow_product(rows, depth, width, a, depth, packed, stride, start, c, width)) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < width; o++) {
                float sum = 0;
                for (int64_t k = 0; k < depth; k++) sum = fmaf(a[r * depth + k], packed[k * stride + o], sum);
                CHECK(same_float(c[r * width + o], start[o] + sum), "narrow_product [%" PRId64 ",%" PRId64 "]", r, o);
            }
        h = hash_start();
        hash_floats(&h, c, (size_t)(rows * width));
        snprintf(name, sizeof name, "narrow_product/%" PRId64 "x%" PRId64 "x%" PRId64, rows, depth, width);
        emit(name, h);
    }
    free(a); free(b); free(packed); free(sums); free(start); free(keep); free(c);
}

/* The weight gradient over a mostly-zero input: dw[o][k] += (+0 + one chain of fused multiply-adds over
   the samples in order whose x[n][k] is not zero), split between two calls at column `split` (any split
   gives the same bits); a NaN in x and a sample whose whole group of columns is zero included. */
static void check_sparse_input_weight_gradient(int64_t batch, int64_t columns, int64_t width, int64_t split) {
    char name[80];
    const int64_t x_stride = columns + 3, dy_stride = width + 1, dw_stride = columns + 2;
    float *x = floats(batch * x_stride), *dy = floats(batch * dy_stride), *dw = floats(width * dw_stride);
    float *start = floats(width * dw_stride);
    fill(x, batch * x_stride, 0.0f, 1.0f);
    for (int64_t n = 0; n < batch; n++)
        for (int64_t k = 0; k < columns; k++)
            if (next_u64() % 2 || (n % 7 == 3 && k < columns / 2)) x[n * x_stride + k] = 0.0f;  /* half zero, some groups whole */
    if (batch > 2 && columns > 2) x[2 * x_stride + 1] = NAN;
    fill(dy, batch * dy_stride, 0.0f, 1.0f);
    fill(start, width * dw_stride, 0.0f, 1.0f);
    start[0] = -0.0f;
    memcpy(dw, start, sizeof(float) * (size_t)(width * dw_stride));
    CHECK(bndk_sparse_input_weight_gradient(batch, split, width, x, x_stride, dy, dy_stride, dw, dw_stride) == 1,
          "sparse_input_weight_gradient refused %" PRId64 " wide", width);
    CHECK(bndk_sparse_input_weight_gradient(batch, columns - split, width, x + split, x_stride, dy, dy_stride, dw + split,
                                            dw_stride) == 1, "sparse_input_weight_gradient refused the second call");
    for (int64_t o = 0; o < width; o++)
        for (int64_t k = 0; k < dw_stride; k++) {
            float want = start[o * dw_stride + k];
            if (k < columns) {
                float sum = 0;
                for (int64_t n = 0; n < batch; n++) {
                    const float v = x[n * x_stride + k];
                    if (v != 0.0f || v != v) sum = fmaf(v, dy[n * dy_stride + o], sum);
                }
                want += sum + 0.0f;
            }
            CHECK(same_float(dw[o * dw_stride + k], want), "sparse_input_weight_gradient %" PRId64 "x%" PRId64 "x%" PRId64
                  " [%" PRId64 ",%" PRId64 "]: %a, want %a", batch, columns, width, o, k, dw[o * dw_stride + k], want);
        }
    hash h = hash_start();
    hash_floats(&h, dw, (size_t)(width * dw_stride));
    snprintf(name, sizeof name, "sparse_input_weight_gradient/%" PRId64 "x%" PRId64 "x%" PRId64, batch, columns, width);
    emit(name, h);
    for (int64_t group = 1; group <= 4; group++) {
        int64_t want = 0;
        for (int64_t n = 0; n < batch; n++)
            for (int64_t k = 0; k < columns; k += group) {
                int any = 0;
                for (int64_t j = k; j < columns && j < k + group; j++) any |= x[n * x_stride + j] != 0.0f;
                want += any;
            }
        CHECK(bndk_count_listed_groups(x, batch, columns, x_stride, group) == want, "count_listed_groups by %" PRId64, group);
    }
    CHECK(bndk_sparse_input_weight_gradient(batch, columns, 129, x, x_stride, dy, dy_stride, dw, dw_stride) == 0,
          "sparse_input_weight_gradient took 129 outputs");
    free(x); free(dy); free(dw); free(start);
}

/* ---- A Linear with one input or one output ---- */

static void check_thin(int64_t rows, int64_t width) {
    char name[64];
    float *x = floats(rows), *w = floats(width), *bias = floats(width), *keep = floats(rows * width);
    float *y = floats(rows * width), *m = floats(rows * width), *sums = floats(width), *dots = floats(rows);
    fill(x, rows, 0.0f, 1.0f);
    fill(w, width, 0.0f, 1.0f);
    fill(bias, width, 0.0f, 1.0f);
    fill_special(keep, rows * width);
    fill_special(m, rows * width);
    hash h = hash_start();
    for (int variant = 0; variant < 3; variant++) {  /* bias; keep; neither */
        const float *b = variant == 0 ? bias : NULL, *k = variant == 1 ? keep : NULL;
        bndk_outer_product(x, rows, w, width, b, k, y);
        for (int64_t n = 0; n < rows; n++)
            for (int64_t o = 0; o < width; o++) {
                float want = b ? b[o] + x[n] * w[o] : x[n] * w[o];
                if (k && k[n * width + o] <= 0) want = 0.0f;
                CHECK(same_float(y[n * width + o], want), "outer_product variant %d [%" PRId64 ",%" PRId64 "]", variant, n, o);
            }
        hash_floats(&h, y, (size_t)(rows * width));
    }
    snprintf(name, sizeof name, "outer_product/%" PRId64 "x%" PRId64, rows, width);
    emit(name, h);

    h = hash_start();
    for (int relu = 0; relu < 2; relu++) {
        bndk_row_dots(m, rows, width, relu, w, 0.25f, dots);
        for (int64_t n = 0; n < rows; n++) {  /* the header's order: eight lanes, pairwise, then the tail */
            float lanes[8] = {0};
            int64_t k = 0;
            for (; k + 8 <= width; k += 8)
                for (int j = 0; j < 8; j++) {
                    const float v = m[n * width + k + j];
                    lanes[j] = lanes[j] + (relu && v <= 0 ? 0.0f : v) * w[k + j];
                }
            float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
            for (; k < width; k++) {
                const float v = m[n * width + k];
                sum = sum + (relu && v <= 0 ? 0.0f : v) * w[k];
            }
            CHECK(same_float(dots[n], 0.25f + sum), "row_dots relu %d [%" PRId64 "]: %a vs %a", relu, n, dots[n], 0.25f + sum);
        }
        hash_floats(&h, dots, (size_t)rows);
    }
    snprintf(name, sizeof name, "row_dots/%" PRId64 "x%" PRId64, rows, width);
    emit(name, h);

    h = hash_start();
    for (int relu = 0; relu < 2; relu++) {
        memcpy(sums, bias, (size_t)width * sizeof(float));
        bndk_weighted_column_sums(m, rows, width, width, x, relu, sums);
        for (int64_t c = 0; c < width; c++) {
            float want = bias[c];
            for (int64_t n = 0; n < rows; n++) {
                const float v = m[n * width + c];
                want = want + x[n] * (relu && v <= 0 ? 0.0f : v);
            }
            CHECK(same_float(sums[c], want), "weighted_column_sums relu %d [%" PRId64 "]", relu, c);
        }
        hash_floats(&h, sums, (size_t)width);
    }
    snprintf(name, sizeof name, "weighted_column_sums/%" PRId64 "x%" PRId64, rows, width);
    emit(name, h);
    free(x); free(w); free(bias); free(keep); free(y); free(m); free(sums); free(dots);
}

/* ---- Dropout ---- */

static void check_dropout(int64_t n, float p) {
    char name[64];
    float *x = floats(n), *mask = floats(n), *y = floats(n), *mask2 = floats(n), *y2 = floats(n);
    fill(x, n, 0.0f, 1.0f);
    const float scale = 1.0f / (1.0f - p);
    const uint64_t key = 0x1234567890ABCDEFULL;
    bndk_dropout_forward(key, 5, p, scale, x, mask, y, n);
    int64_t dropped = 0;
    for (int64_t i = 0; i < n; i++) {
        CHECK(mask[i] == 0.0f || mask[i] == scale, "dropout mask [%" PRId64 "] = %g", i, mask[i]);
        CHECK(same_float(y[i], x[i] * mask[i]), "dropout y [%" PRId64 "]", i);
        dropped += mask[i] == 0.0f;
    }
    if (n >= 1000) CHECK(fabs((double)dropped / (double)n - p) < 0.06, "dropout: %" PRId64 " of %" PRId64 " dropped at p %g", dropped, n, p);
    /* The same pass in two slices: the same bits. */
    const int64_t half = n / 2;
    bndk_dropout_forward(key, 5, p, scale, x, mask2, y2, half);
    bndk_dropout_forward(key, 5 + half, p, scale, x + half, mask2 + half, y2 + half, n - half);
    CHECK(memcmp(mask, mask2, (size_t)n * sizeof(float)) == 0 && memcmp(y, y2, (size_t)n * sizeof(float)) == 0,
          "dropout: a pass split in two slices differs");
    hash h = hash_start();
    hash_floats(&h, mask, (size_t)n);
    hash_floats(&h, y, (size_t)n);
    snprintf(name, sizeof name, "dropout_forward/%" PRId64 "/p%g", n, p);
    emit(name, h);
    free(x); free(mask); free(y); free(mask2); free(y2);
}

/* ---- Conv2d (direct) and AvgPool2d ---- */

static void check_conv(bndk_conv_shape s, int64_t count) {
    char name[96];
    const int64_t OH = (s.height + 2 * s.padding - s.kernel) / s.stride + 1;
    const int64_t OW = (s.width + 2 * s.padding - s.kernel) / s.stride + 1;
    const int64_t in = s.channels * s.height * s.width, out = s.out_channels * OH * OW;
    const int64_t taps = s.channels * s.kernel * s.kernel, wn = s.out_channels * taps;
    float *x = floats(count * in), *w = floats(wn), *b = floats(s.out_channels), *y = floats(count * out);
    float *dy = floats(count * out), *dw = floats(wn), *dx = floats(count * in), *db = floats(2 * s.out_channels);
    float *scratch = floats(bndk_conv_scratch_floats(&s, count));
    fill(x, count * in, 0.0f, 1.0f);
    fill(w, wn, 0.0f, 0.5f);
    fill(b, s.out_channels, 0.0f, 0.5f);
    fill(dy, count * out, 0.0f, 1.0f);
    bndk_conv_forward(&s, x, count, w, b, y, scratch);
    bndk_conv_backward(&s, x, dy, count, w, dw, db, dx, scratch);

    /* Against double-precision sums: the kernel's order differs, and it fuses where the CPU has FMA. */
    double *rdw = calloc((size_t)wn, sizeof(double)), *rdx = calloc((size_t)(count * in), sizeof(double));
    double *mdw = calloc((size_t)wn, sizeof(double)), *mdx = calloc((size_t)(count * in), sizeof(double));
    for (int64_t n = 0; n < count; n++)
        for (int64_t o = 0; o < s.out_channels; o++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    double sum = b[o], magnitude = fabs(b[o]);
                    const float g = dy[((n * s.out_channels + o) * OH + oy) * OW + ox];
                    for (int64_t c = 0; c < s.channels; c++)
                        for (int64_t ky = 0; ky < s.kernel; ky++)
                            for (int64_t kx = 0; kx < s.kernel; kx++) {
                                const int64_t iy = oy * s.stride + ky - s.padding, ix = ox * s.stride + kx - s.padding;
                                if (iy < 0 || iy >= s.height || ix < 0 || ix >= s.width) continue;
                                const int64_t xi = ((n * s.channels + c) * s.height + iy) * s.width + ix;
                                const int64_t wi = ((o * s.channels + c) * s.kernel + ky) * s.kernel + kx;
                                sum += (double)x[xi] * w[wi];
                                magnitude += fabs((double)x[xi] * w[wi]);
                                rdw[wi] += (double)g * x[xi];
                                mdw[wi] += fabs((double)g * x[xi]);
                                rdx[xi] += (double)g * w[wi];
                                mdx[xi] += fabs((double)g * w[wi]);
                            }
                    const float got = y[((n * s.out_channels + o) * OH + oy) * OW + ox];
                    CHECK(fabs(got - sum) <= 1e-6 * magnitude + 1e-30, "conv_forward [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]",
                          n, o, oy, ox);
                }
    for (int64_t i = 0; i < wn; i++) CHECK(fabs(dw[i] - rdw[i]) <= 1e-5 * mdw[i] + 1e-30, "conv_backward dw[%" PRId64 "]", i);
    for (int64_t i = 0; i < count * in; i++)
        CHECK(fabs(dx[i] - rdx[i]) <= 1e-5 * mdx[i] + 1e-30, "conv_backward dx[%" PRId64 "]", i);
    /* The bias gradient: float sums, each sample's one by one in the order of its positions, then the
       samples' sums in order from 0. */
    for (int64_t o = 0; o < s.out_channels; o++) {
        float want = 0;
        for (int64_t n = 0; n < count; n++) {
            float sample = 0;
            for (int64_t q = 0; q < OH * OW; q++) sample += dy[(n * s.out_channels + o) * OH * OW + q];
            want += sample;
        }
        CHECK(same_float(db[o], want), "conv_backward db[%" PRId64 "]", o);
    }
    hash h = hash_start();
    hash_floats(&h, y, (size_t)(count * out));
    hash_floats(&h, dw, (size_t)wn);
    hash_floats(&h, dx, (size_t)(count * in));
    snprintf(name, sizeof name, "conv/%" PRId64 "x%" PRId64 "x%" PRId64 "->%" PRId64 "/k%" PRId64 "s%" PRId64 "p%" PRId64,
             s.channels, s.height, s.width, s.out_channels, s.kernel, s.stride, s.padding);
    emit(name, h);

    h = hash_start();
    hash_floats(&h, db, (size_t)s.out_channels);
    snprintf(name, sizeof name, "conv_bias_gradient/%" PRId64 "x%" PRId64, count, s.out_channels);
    emit(name, h);

    /* Through an AvgPool2d(2) after the convolution, with the ReLU between them (its input: y) and
       without: the bits of bndk_avgpool2_backward's output gradient given to the plain kernels. */
    if (OH >= 2 && OW >= 2) {
        const int64_t pooled_size = s.out_channels * (OH / 2) * (OW / 2);
        float *pooled = floats(count * pooled_size), *through = floats(count * out);
        float *dw2 = floats(wn), *dx2 = floats(count * in), *db2 = floats(s.out_channels);
        fill(pooled, count * pooled_size, 0.0f, 1.0f);
        h = hash_start();
        for (int relu = 0; relu < 2; relu++) {
            bndk_avgpool2_backward(pooled, relu ? y : NULL, through, count * s.out_channels, OH, OW);
            bndk_conv_backward(&s, x, through, count, w, dw, db, dx, scratch);
            const bndk_pooled_gradient given = {pooled, relu ? y : NULL};
            bndk_conv_backward_pooled(&s, x, given, count, w, dw2, db2, dx2, scratch);
            for (int64_t i = 0; i < wn; i++) CHECK(same_float(dw2[i], dw[i]), "conv_backward_pooled dw[%" PRId64 "]", i);
            for (int64_t i = 0; i < count * in; i++)
                CHECK(same_float(dx2[i], dx[i]), "conv_backward_pooled dx[%" PRId64 "]", i);
            for (int64_t i = 0; i < s.out_channels; i++)
                CHECK(same_float(db2[i], db[i]), "conv_backward_pooled db[%" PRId64 "]", i);
            hash_floats(&h, dw2, (size_t)wn);
            hash_floats(&h, dx2, (size_t)(count * in));
            hash_floats(&h, db2, (size_t)s.out_channels);
        }
        snprintf(name, sizeof name, "conv_pooled/%" PRId64 "x%" PRId64 "x%" PRId64 "->%" PRId64 "/k%" PRId64 "s%" PRId64,
                 s.channels, s.height, s.width, s.out_channels, s.kernel, s.stride);
        emit(name, h);
        free(pooled); free(through); free(dw2); free(dx2); free(db2);
    }
    free(x); free(w); free(b); free(y); free(dy); free(dw); free(dx); free(db); free(scratch);
    free(rdw); free(rdx); free(mdw); free(mdx);
}

static void check_pool(int64_t planes, int64_t height, int64_t width) {
    char name[64];
    const int64_t OH = height / 2, OW = width / 2, n = planes * height * width, m = planes * OH * OW;
    float *x = floats(n), *y = floats(m), *dy = floats(m), *dx = floats(n);
    fill_special(x, n);
    for (int64_t i = 0; i < n; i++) if (isnan(x[i]) || isinf(x[i])) x[i] = 0.5f;  /* the windows' means stay finite */
    fill(dy, m, 0.0f, 1.0f);
    hash h = hash_start();
    for (int rectify = 0; rectify < 2; rectify++) {
        bndk_avgpool2_forward(x, y, planes, height, width, rectify);
        for (int64_t p = 0; p < planes; p++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    float v[4];
                    for (int k = 0; k < 4; k++) {
                        v[k] = x[(p * height + 2 * oy + k / 2) * width + 2 * ox + k % 2];
                        if (rectify && v[k] <= 0) v[k] = 0;
                    }
                    const float want = (((v[0] + v[1]) + v[2]) + v[3]) / 4;
                    CHECK(same_float(y[(p * OH + oy) * OW + ox], want), "avgpool2_forward rectify %d", rectify);
                }
        hash_floats(&h, y, (size_t)m);
        bndk_avgpool2_backward(dy, rectify ? x : NULL, dx, planes, height, width);
        for (int64_t p = 0; p < planes; p++)
            for (int64_t iy = 0; iy < height; iy++)
                for (int64_t ix = 0; ix < width; ix++) {
                    const int64_t oy = iy / 2, ox = ix / 2, i = (p * height + iy) * width + ix;
                    float want = oy < OH && ox < OW ? dy[(p * OH + oy) * OW + ox] / 4 : 0.0f;
                    if (rectify && x[i] <= 0) want = 0;
                    CHECK(same_float(dx[i], want), "avgpool2_backward rectify %d [%" PRId64 "]", rectify, i);
                }
        hash_floats(&h, dx, (size_t)n);
    }
    snprintf(name, sizeof name, "avgpool2/%" PRId64 "x%" PRId64 "x%" PRId64, planes, height, width);
    emit(name, h);
    free(x); free(y); free(dy); free(dx);
}

/* ---- The instruction set this program was built for ---- */

static const char *built_for(void) {
#if defined(BNDK_NO_CLONES) && defined(BNDK_EMULATED_AVX512)
    return "avx512-emulated";
#elif defined(BNDK_NO_CLONES) && defined(__AVX512F__)
    return "avx512";
#elif defined(BNDK_NO_CLONES) && defined(__AVX2__)
    return "avx2";
#elif defined(BNDK_NO_CLONES)
    return "baseline";
#else
    return "clones";
#endif
}

static int cpu_runs_this_build(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
#if defined(__AVX512F__)
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq"))
        return 0;
#endif
#if defined(__AVX2__)
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
#endif
#endif
    return 1;
}

int main(void) {
    if (!cpu_runs_this_build()) {
        printf("skip: this CPU lacks the instruction set of the %s build\n", built_for());
        return 77;
    }
    printf("# build %s, kernels report %s\n", built_for(), bndk_instruction_set());

    check_channel(1, 1, 1, 0.0f);
    check_channel(3, 37, 45, 100.0f);      /* BatchNorm1d's large-offset golden case's kind of data */
    check_channel(4, 784, 6 * 784, 0.0f);  /* a BatchNorm2d channel: 4 samples of 28×28 */
    check_channel(2, 9, 9, -3.0f);
    check_rows(1, 5, 5, 0.0f);
    check_rows(13, 45, 43, 100.0f);
    check_rows(64, 48, 48, 0.0f);
    check_rows(7, 24, 17, 0.5f);
    check_rows(9, 30, 24, 100.0f);  /* whole rows in registers: 3, 6 and 8 vectors */
    check_rows(33, 48, 48, -2.0f);
    check_rows(5, 64, 64, 0.0f);
    for (int i = 0; i < COUNTS; i++) {
        check_elementwise(counts[i]);
        check_optimizers(counts[i]);
        check_data(counts[i]);
        check_dropout(counts[i], 0.2f);
    }
    check_dropout(4099, 0.5f);
    check_thin(50, 100);
    check_thin(7, 13);
    check_thin(5, 1);
    check_thin(3, 72);
    check_linear(5, 100, 100);
    check_linear(50, 100, 100);
    check_linear(9, 37, 48);
    check_linear(3, 1100, 16);
    check_linear(130, 784, 48);  /* the sparse product in groups of rows: two orderings, a partial group */
    check_linear(4, 20, 7);
    check_linear(13, 48, 24);   /* the narrow product: the article's 48 -> 24 and 24 -> 10 */
    check_linear(11, 24, 10);
    check_sparse_input_weight_gradient(200, 784, 48, 392);  /* the article's first layer, two tasks */
    check_sparse_input_weight_gradient(70, 150, 10, 37);     /* blocks and groups cut mid-way */
    check_sparse_input_weight_gradient(33, 45, 100, 16);     /* groups of 2 columns (over 64 outputs) */
    check_sparse_input_weight_gradient(5, 3, 128, 1);
    check_conv((bndk_conv_shape){1, 28, 28, 3, 5, 1, 0}, 3);   /* the article's CNN, first layer */
    check_conv((bndk_conv_shape){3, 12, 12, 6, 3, 1, 0}, 4);   /* and second */
    check_conv((bndk_conv_shape){2, 11, 9, 5, 3, 2, 1}, 3);    /* stride and padding, odd sizes */
    check_conv((bndk_conv_shape){1, 7, 7, 1, 1, 1, 0}, 1);
    /* tiny planes: the forward reads the first samples in place and copies those whose reads would run
       past the input's end (16-float blocks over 4-float samples: the last three of ten) */
    check_conv((bndk_conv_shape){1, 2, 2, 2, 1, 1, 0}, 10);
    /* output rows a multiple of 8 wide (with AVX-512: 16-float and 8-float vectors, two rows at a time):
       16 wide with padding and an odd number of rows, 40 and 8 wide, 48 wide with two channel groups */
    check_conv((bndk_conv_shape){2, 15, 14, 4, 3, 1, 2}, 3);
    check_conv((bndk_conv_shape){1, 5, 42, 5, 3, 1, 0}, 2);
    check_conv((bndk_conv_shape){3, 10, 10, 2, 3, 1, 0}, 2);
    check_conv((bndk_conv_shape){1, 4, 50, 6, 3, 1, 0}, 3);
    check_pool(1, 2, 2);
    check_pool(3, 28, 28);
    check_pool(5, 13, 11);
    check_pool(2, 24, 24);

    if (failures) {
        fprintf(stderr, "isa_check (%s build): %d check(s) failed\n", built_for(), failures);
        return 1;
    }
    fprintf(stderr, "isa_check (%s build): all checks passed\n", built_for());
    return 0;
}
