// What one nonzero input pixel costs a zero-skipping 784 -> 48 layer on an AVX2 CPU, against the
// multiply-adds it needs: the measurement behind PERFORMANCE.md's "The target out of reach".
//
//   make bench-pixel-cost        (or: cc -O2 -mavx2 -mfma bench/pixel_cost.c -o pixel_cost && ./pixel_cost)
//
// A pixel's 48 products are six 8-float multiply-adds, one per column vector, each into that column
// vector's running sum. Five loops, each the best of several timed passes:
//   peak      twelve independent sums in registers: the multiply-add units' pace (two per cycle on
//             Zen 3 and Intel's cores, so six take 3 cycles);
//   chained   six sums, each waiting for its previous multiply-add (one image, columns summed in pixel
//             order as PyTorch's dense product and bndrop's sparse one do): the multiply-add latency;
//   listed    six sums over a list of (pixel, value) pairs with the weight row loaded from memory, the
//             whole 784-row weight (147 KB, from L2) and a block of 96 rows (18 KB, in L1);
//   split     the same with twelve sums (even and odd list entries apart), which changes each sum's order.
//   paired    two images at once: the pixels both have take one load of the weight row for both images'
//             multiply-adds, then each image's own pixels (the two lists side by side); the sizes are the
//             test set's: two images' nonzero pixels cover 66.6% of the 784 (262 shared, 130 each alone).
//             Each image's sum then depends on its partner (the shared pixels first), unlike PyTorch's.
// The ratio of each loop to `peak` gives its cycles per pixel (peak = 3 by definition), whatever the clock.
#define _POSIX_C_SOURCE 199309L
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { COLUMNS = 48, DEPTH = 784, LISTED = 392 /* Fashion-MNIST test images' mean nonzero pixels */ };
enum { SHARED = 262, ALONE = 130 };  // a pair's pixels: nonzero in both, and in one image only (each)

static float weight[DEPTH * COLUMNS] __attribute__((aligned(64)));
static int32_t pixel[LISTED];
static float value[LISTED];
static int32_t shared_pixel[SHARED], alone_pixel[2][ALONE];
static float shared_value[2][SHARED], alone_value[2][ALONE];
static volatile float sink;

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float total(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float s = 0;
    for (int i = 0; i < 8; i++) s += lanes[i];
    return s;
}

#define FMA6(acc, x, w)                                                                              \
    acc##0 = _mm256_fmadd_ps(x, _mm256_load_ps((w) + 0), acc##0);                                    \
    acc##1 = _mm256_fmadd_ps(x, _mm256_load_ps((w) + 8), acc##1);                                    \
    acc##2 = _mm256_fmadd_ps(x, _mm256_load_ps((w) + 16), acc##2);                                   \
    acc##3 = _mm256_fmadd_ps(x, _mm256_load_ps((w) + 24), acc##3);                                   \
    acc##4 = _mm256_fmadd_ps(x, _mm256_load_ps((w) + 32), acc##4);                                   \
    acc##5 = _mm256_fmadd_ps(x, _mm256_load_ps((w) + 40), acc##5)
#define ZERO6(acc) __m256 acc##0 = _mm256_setzero_ps(), acc##1 = acc##0, acc##2 = acc##0, acc##3 = acc##0, \
                          acc##4 = acc##0, acc##5 = acc##0
#define SUM6(acc) (_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc##0, acc##1), _mm256_add_ps(acc##2, acc##3)), \
                                 _mm256_add_ps(acc##4, acc##5)))

// One image's listed pixels, six sums (columns in pixel order).
static void listed(long passes) {
    for (long r = 0; r < passes; r++) {
        ZERO6(a);
        for (int p = 0; p < LISTED; p++) {
            const __m256 x = _mm256_broadcast_ss(value + p);
            FMA6(a, x, weight + (int64_t)pixel[p] * COLUMNS);
        }
        sink = total(SUM6(a));
    }
}

// The same list with twelve sums: even and odd entries apart.
static void split(long passes) {
    for (long r = 0; r < passes; r++) {
        ZERO6(a);
        ZERO6(b);
        for (int p = 0; p < LISTED; p += 2) {
            const __m256 x = _mm256_broadcast_ss(value + p), y = _mm256_broadcast_ss(value + p + 1);
            FMA6(a, x, weight + (int64_t)pixel[p] * COLUMNS);
            FMA6(b, y, weight + (int64_t)pixel[p + 1] * COLUMNS);
        }
        sink = total(_mm256_add_ps(SUM6(a), SUM6(b)));
    }
}

// Two images: the shared pixels' weight rows loaded once for both, then each image's own pixels.
static void paired(long passes) {
    for (long r = 0; r < passes; r += 2) {
        ZERO6(a);
        ZERO6(b);
        for (int p = 0; p < SHARED; p++) {
            const float *w = weight + (int64_t)shared_pixel[p] * COLUMNS;
            const __m256 x = _mm256_broadcast_ss(shared_value[0] + p), y = _mm256_broadcast_ss(shared_value[1] + p);
            __m256 v = _mm256_load_ps(w);
            a0 = _mm256_fmadd_ps(x, v, a0), b0 = _mm256_fmadd_ps(y, v, b0), v = _mm256_load_ps(w + 8);
            a1 = _mm256_fmadd_ps(x, v, a1), b1 = _mm256_fmadd_ps(y, v, b1), v = _mm256_load_ps(w + 16);
            a2 = _mm256_fmadd_ps(x, v, a2), b2 = _mm256_fmadd_ps(y, v, b2), v = _mm256_load_ps(w + 24);
            a3 = _mm256_fmadd_ps(x, v, a3), b3 = _mm256_fmadd_ps(y, v, b3), v = _mm256_load_ps(w + 32);
            a4 = _mm256_fmadd_ps(x, v, a4), b4 = _mm256_fmadd_ps(y, v, b4), v = _mm256_load_ps(w + 40);
            a5 = _mm256_fmadd_ps(x, v, a5), b5 = _mm256_fmadd_ps(y, v, b5);
        }
        for (int p = 0; p < ALONE; p++) {
            const __m256 x = _mm256_broadcast_ss(alone_value[0] + p), y = _mm256_broadcast_ss(alone_value[1] + p);
            FMA6(a, x, weight + (int64_t)alone_pixel[0][p] * COLUMNS);
            FMA6(b, y, weight + (int64_t)alone_pixel[1][p] * COLUMNS);
        }
        sink = total(_mm256_add_ps(SUM6(a), SUM6(b)));
    }
}

// The keep-alive barrier: the compiler may neither drop nor merge the register sums.
#define KEEP6(c) __asm__ volatile("" : "+x"(c##0), "+x"(c##1), "+x"(c##2), "+x"(c##3), "+x"(c##4), "+x"(c##5))

// Six multiply-adds per "pixel" in registers: twelve independent sums (peak) or six (chained).
static void peak(long pixels) {
    const __m256 m = _mm256_set1_ps(0.999f), k = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0;
    for (long r = 0; r < pixels / 2; r++) {
        a0 = _mm256_fmadd_ps(m, a0, k), a1 = _mm256_fmadd_ps(m, a1, k), a2 = _mm256_fmadd_ps(m, a2, k);
        a3 = _mm256_fmadd_ps(m, a3, k), a4 = _mm256_fmadd_ps(m, a4, k), a5 = _mm256_fmadd_ps(m, a5, k);
        b0 = _mm256_fmadd_ps(m, b0, k), b1 = _mm256_fmadd_ps(m, b1, k), b2 = _mm256_fmadd_ps(m, b2, k);
        b3 = _mm256_fmadd_ps(m, b3, k), b4 = _mm256_fmadd_ps(m, b4, k), b5 = _mm256_fmadd_ps(m, b5, k);
        KEEP6(a);
        KEEP6(b);
    }
    sink = total(_mm256_add_ps(SUM6(a), SUM6(b)));
}

static void chained(long pixels) {
    const __m256 m = _mm256_set1_ps(0.999f), k = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    for (long r = 0; r < pixels; r++) {
        a0 = _mm256_fmadd_ps(m, a0, k), a1 = _mm256_fmadd_ps(m, a1, k), a2 = _mm256_fmadd_ps(m, a2, k);
        a3 = _mm256_fmadd_ps(m, a3, k), a4 = _mm256_fmadd_ps(m, a4, k), a5 = _mm256_fmadd_ps(m, a5, k);
        KEEP6(a);
    }
    sink = total(SUM6(a));
}

// Pixels in increasing order over `rows` weight rows, about every second one, as in a real image.
static void make_list(int rows) {
    srand(1);
    for (int p = 0; p < LISTED; p++) {
        pixel[p] = (int32_t)((2 * (int64_t)p * rows / (2 * LISTED) + rand() % 2) % rows);
        value[p] = (float)(1 + rand() % 255) / 255.0f;
    }
    for (int p = 0; p < SHARED; p++) {
        shared_pixel[p] = (int32_t)((int64_t)p * rows / SHARED);
        for (int i = 0; i < 2; i++) shared_value[i][p] = (float)(1 + rand() % 255) / 255.0f;
    }
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < ALONE; p++) {
            alone_pixel[i][p] = (int32_t)(((int64_t)p * rows + i * rows / 2) / ALONE % rows);
            alone_value[i][p] = (float)(1 + rand() % 255) / 255.0f;
        }
}

// Nanoseconds per pixel, the best of `tries` passes of `passes` images.
static double best_ns(void (*loop)(long), long passes, int tries, int per_image) {
    double best = 1e30;
    for (int t = 0; t < tries; t++) {
        const double t0 = seconds();
        loop(per_image ? passes : passes * LISTED);
        const double ns = (seconds() - t0) * 1e9 / ((double)passes * LISTED);
        if (ns < best) best = ns;
    }
    return best;
}

int main(int argc, char **argv) {
    const long passes = argc > 1 ? atol(argv[1]) : 20000;
    if (passes <= 0) {
        fprintf(stderr, "usage: pixel_cost [images per pass, default 20000]\n");
        return 2;
    }
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "pixel_cost: this CPU has no AVX2 and FMA\n");
        return 2;
    }
    srand(2);
    for (int i = 0; i < DEPTH * COLUMNS; i++) weight[i] = (float)(rand() % 2001 - 1000) * 1e-5f;
    const int tries = 7;
    const double p = best_ns(peak, passes, tries, 0), c = best_ns(chained, passes, tries, 0);
    make_list(DEPTH);
    const double l2 = best_ns(listed, passes, tries, 1), s2 = best_ns(split, passes, tries, 1),
                 q2 = best_ns(paired, passes, tries, 1);
    make_list(96);
    const double l1 = best_ns(listed, passes, tries, 1), s1 = best_ns(split, passes, tries, 1),
                 q1 = best_ns(paired, passes, tries, 1);
    printf("ns per nonzero pixel (six 8-float multiply-adds); cycles taking 'peak' as 3\n");
    printf("  peak, 12 sums in registers        %6.3f ns  %4.1f cycles\n", p, 3.0);
    printf("  chained, 6 sums in registers      %6.3f ns  %4.1f cycles\n", c, 3.0 * c / p);
    printf("  listed, 6 sums, weight in L2      %6.3f ns  %4.1f cycles\n", l2, 3.0 * l2 / p);
    printf("  split, 12 sums, weight in L2      %6.3f ns  %4.1f cycles\n", s2, 3.0 * s2 / p);
    printf("  paired, 2 images, weight in L2    %6.3f ns  %4.1f cycles\n", q2, 3.0 * q2 / p);
    printf("  listed, 6 sums, 96 rows in L1     %6.3f ns  %4.1f cycles\n", l1, 3.0 * l1 / p);
    printf("  split, 12 sums, 96 rows in L1     %6.3f ns  %4.1f cycles\n", s1, 3.0 * s1 / p);
    printf("  paired, 2 images, 96 rows in L1   %6.3f ns  %4.1f cycles\n", q1, 3.0 * q1 / p);
    printf("%d nonzero pixels an image, 10,000 images on 2 cores at a perfect split, weight in L1:\n"
           "  listed %.2f us an image, %.2f ms; paired %.2f us an image, %.2f ms\n",
           LISTED, l1 * LISTED * 1e-3, l1 * LISTED * 10000 / 2 * 1e-6, q1 * LISTED * 1e-3, q1 * LISTED * 10000 / 2 * 1e-6);
    return 0;
}
