// Linear's kernels (see bndrop_kernels.h): the bias gradient's column sums, the outer and dot products
// of a Linear with one input or one output, matrix products whose left operand is mostly zeros, and the
// weight gradient of a Linear whose input is mostly zeros.
//
// The sparse product: each row of the result is held in up to eight AVX-512 registers (128 floats)
// while the row of the left operand is walked: its nonzero entries are first gathered, with their
// offsets into the right operand, into a short list (vector compares and in-register compresses, 16
// columns at a time), then each listed entry adds its multiple of one row of the right operand. A zero
// entry costs one lane of one compare instead of a row's worth of multiply-adds. The nonzero entries of
// each chunk of CHUNK columns go alternately to two partial sums (two independent chains of fused
// multiply-adds keep the FMA units busy); the result is start + (first sum + second sum). The order
// depends on the data only, never on the thread count. For a Linear that takes in the ReLU before it,
// only positive entries are listed (the ReLU's zeros are skipped as zeros), and the input gradient's
// lanes where the ReLU's input is not positive are stored as zero (the ReLU's backward). A right
// operand too large for the nearest cache is taken by groups of rows sharing one list (sparse_groups
// below) or, through a ReLU, in blocks (sparse_rows).
#include "bndrop_kernels.h"
#include "clones.h"
#include "linear_products.h"
#include <math.h>
#include <unistd.h>

// Columns [o, o + block) of the sums in registers (running down the rows through memory would wait on
// each store). The batch's sum is taken in two levels, as PyTorch's cascade sum does: each run of
// SUM_RUN rows summed in row order, the runs' sums added in order, and that total added to the sum
// already there (PyTorch's grad += dy.sum(0)). One running sum down 1000 rows erred 7 times as much
// against a double-precision sum (4.0e-5 on a value of 57; PyTorch 6e-6). The order depends on the
// sizes only.
enum { SUM_RUN = 32 };
#define COLUMN_SUMS(block)                                                                  \
    for (; o + (block) <= width; o += (block)) {                                            \
        float total[block];                                                                 \
        for (int j = 0; j < (block); j++) total[j] = 0;                                     \
        for (int64_t first = 0; first < count; first += SUM_RUN) {                          \
            const int64_t end = count - first < SUM_RUN ? count : first + SUM_RUN;          \
            float sum[block];                                                               \
            for (int j = 0; j < (block); j++) sum[j] = 0;                                   \
            for (int64_t n = first; n < end; n++)                                           \
                for (int j = 0; j < (block); j++) sum[j] += rows[n * width + o + j];        \
            for (int j = 0; j < (block); j++) total[j] += sum[j];                           \
        }                                                                                   \
        for (int j = 0; j < (block); j++) sums[o + j] += total[j];                          \
    }

BNDK_CLONES
void bndk_column_sums_accumulate(const float *restrict rows, int64_t count, int64_t width, float *restrict sums) {
    int64_t o = 0;
    COLUMN_SUMS(64)
    COLUMN_SUMS(16)
    COLUMN_SUMS(1)
}

// ---- A Linear with one input or one output feature (the regression net's 1→100 and 100→1 layers) ----
// Outer products and dot products, which OpenBLAS's matrix product reaches only through its general
// call (a copy of each operand, one call per row block: 1.6 µs of each 33 µs training step of the
// article's regression net went to its five such calls; these loops take about a third of that).
// Every sum's order is fixed by the sizes: dot products in eight lanes plus a tail, column sums down
// the rows in order.

// (RELU8, RELU16, KEEP16: clones.h.)

BNDK_CLONES
void bndk_outer_product(const float *restrict x, int64_t rows, const float *restrict w, int64_t width,
                        const float *restrict bias, const float *restrict keep, float *restrict y) {
    for (int64_t n = 0; n < rows; n++) {
        const float xn = x[n];
        const float16v x16 = splat16(xn);
        float *restrict row = y + n * width;
        const float *restrict keep_row = keep ? keep + n * width : NULL;
        int64_t o = 0;
        if (bias) {
            for (; o + 16 <= width; o += 16) store16(row + o, load16(bias + o) + x16 * load16(w + o));
            for (; o < width; o++) row[o] = bias[o] + xn * w[o];
        } else if (keep_row) {
            for (; o + 16 <= width; o += 16) store16(row + o, KEEP16(x16 * load16(w + o), load16(keep_row + o)));
            for (; o < width; o++) row[o] = keep_row[o] <= 0.0f ? 0.0f : xn * w[o];
        } else {
            for (; o + 16 <= width; o += 16) store16(row + o, x16 * load16(w + o));
            for (; o < width; o++) row[o] = xn * w[o];
        }
        if (bias && keep_row)
            for (o = 0; o < width; o++) row[o] = keep_row[o] <= 0.0f ? 0.0f : row[o];
    }
}

// Dot products of `rows` (≤ 4) rows side by side, each summed exactly as alone (whole groups of eight
// in lanes, sum8's order, then the tail in order): R chains of adds instead of one. Inlined with R a
// constant.
static inline __attribute__((always_inline)) void row_dots_block(const float *restrict x, int64_t depth, int relu,
                                                                 const float *restrict w, float start,
                                                                 float *restrict y, const int R) {
    float8 lanes[4];
    for (int r = 0; r < R; r++) lanes[r] = splat8f(0.0f);
    int64_t k = 0;
    for (; k + 8 <= depth; k += 8) {
        const float8 wk = load8(w + k);
        for (int r = 0; r < R; r++) {
            const float8 v = load8(x + r * depth + k);
            lanes[r] = lanes[r] + (relu ? RELU8(v) : v) * wk;
        }
    }
    for (int r = 0; r < R; r++) {
        const float *restrict row = x + r * depth;
        float sum = sum8(lanes[r]);
        for (int64_t j = k; j < depth; j++) sum = sum + (relu && row[j] <= 0.0f ? 0.0f : row[j]) * w[j];
        y[r] = start + sum;
    }
}

BNDK_CLONES
void bndk_row_dots(const float *restrict x, int64_t rows, int64_t depth, int relu, const float *restrict w,
                   float start, float *restrict y) {
    int64_t n = 0;
    for (; n + 4 <= rows; n += 4) row_dots_block(x + n * depth, depth, relu, w, start, y + n, 4);
    for (; n < rows; n++) row_dots_block(x + n * depth, depth, relu, w, start, y + n, 1);
}

// Columns [c, c + 16·VECTORS) of the sums, each added to in row order in a register.
#define WEIGHTED_COLUMN_SUMS(VECTORS)                                                                   \
    for (; c + 16 * (VECTORS) <= width; c += 16 * (VECTORS)) {                                         \
        float16v sum[VECTORS];                                                                         \
        for (int v = 0; v < (VECTORS); v++) sum[v] = load16(sums + c + 16 * v);                        \
        for (int64_t n = 0; n < count; n++) {                                                          \
            const float16v weight = splat16(weights[n]);                                               \
            const float *restrict row = rows + n * stride + c;                                         \
            for (int v = 0; v < (VECTORS); v++)                                                        \
                sum[v] = sum[v] + weight * (relu ? RELU16(load16(row + 16 * v)) : load16(row + 16 * v)); \
        }                                                                                              \
        for (int v = 0; v < (VECTORS); v++) store16(sums + c + 16 * v, sum[v]);                        \
    }

BNDK_CLONES
void bndk_weighted_column_sums(const float *restrict rows, int64_t count, int64_t width, int64_t stride,
                               const float *restrict weights, int relu, float *restrict sums) {
    int64_t c = 0;
    WEIGHTED_COLUMN_SUMS(4)
    WEIGHTED_COLUMN_SUMS(1)
    // The last width % 16 columns side by side, each still summed down the rows in order.
    const int64_t rest = width - c;
    if (rest > 0) {
        float sum[16];
        for (int64_t j = 0; j < rest; j++) sum[j] = sums[c + j];
        for (int64_t n = 0; n < count; n++) {
            const float weight = weights[n];
            const float *restrict row = rows + n * stride + c;
            for (int64_t j = 0; j < rest; j++) sum[j] = sum[j] + weight * (relu && row[j] <= 0.0f ? 0.0f : row[j]);
        }
        for (int64_t j = 0; j < rest; j++) sums[c + j] = sum[j];
    }
}

BNDK_CLONES
int64_t bndk_count_listed(const float *values, int64_t count, int positive_only) {
    // Eight 32-bit lane counters (a compare's all-ones lane is −1), emptied into the total every 2^20
    // groups so that no lane can overflow; compilers widened a plain loop's count to 64-bit lanes.
    int64_t listed = 0, i = 0;
    while (count - i >= 8) {
        const int64_t end = count - i > ((int64_t)8 << 20) ? i + ((int64_t)8 << 20) : count - (count - i) % 8;
        int8v lanes = {0};
        if (positive_only)
            for (; i < end; i += 8) lanes -= (int8v)(load8(values + i) > splat8f(0.0f)) | (int8v)(load8(values + i) != load8(values + i));
        else
            for (; i < end; i += 8) lanes -= (int8v)(load8(values + i) != splat8f(0.0f));
        for (int j = 0; j < 8; j++) listed += lanes[j];
    }
    for (; i < count; i++) listed += positive_only ? !(values[i] <= 0.0f) : values[i] != 0.0f;  // NaN: counted
    return listed;
}

int bndk_listed_within(int64_t listed_limit, int64_t rows, int64_t depth, const float *a, int64_t a_stride,
                       int positive_only) {
    int64_t listed = 0;
    if (a_stride == depth)  // contiguous rows: one call
        listed = bndk_count_listed(a, rows * depth, positive_only);
    else
        for (int64_t r = 0; r < rows && listed <= listed_limit; r++)
            listed += bndk_count_listed(a + r * a_stride, depth, positive_only);
    return listed <= listed_limit;
}

int64_t bndk_sparse_block_columns(int64_t b_stride) {
    const int64_t block = BLOCK_FLOATS / b_stride / 16 * 16;
    return block < 16 ? 16 : block;
}

uint16_t bndk_order_key(int64_t first, int64_t listed, int64_t depth) {
    const int64_t vector = first / 16 < 255 ? first / 16 : 255;
    return (uint16_t)(vector << 8 | listed * 255 / depth);  // listed <= depth < 2^31: no overflow
}

bndk_lines_ahead bndk_rows_ahead(const float *a, int64_t rows, int64_t after, int64_t a_stride, int64_t depth,
                                 const float *next_a, int64_t next_rows, int64_t window) {
    const float *first = after < rows ? a + after * a_stride : next_a;
    const int64_t available = after < rows ? rows - after : next_rows, count = available < window ? available : window;
    const bndk_lines_ahead none = {NULL, NULL};
    if (!first || count <= 0) return none;
    const bndk_lines_ahead lines = {(const char *)((uintptr_t)first & ~(uintptr_t)63),
                                    (const char *)(first + (count - 1) * a_stride + depth)};
    return lines;
}

void bndk_order_by_keys(const uint16_t *keys, int64_t count, int32_t *order) {
    // Counting sort by the low byte into `by_low`, then by the high byte into `order`.
    int32_t low[256] = {0}, high[256] = {0}, by_low[ORDER_ROWS];
    for (int64_t r = 0; r < count; r++) {
        low[keys[r] & 0xFF]++;
        high[keys[r] >> 8]++;
    }
    for (int b = 0, low_sum = 0, high_sum = 0; b < 256; b++) {
        const int l = low[b], h = high[b];
        low[b] = low_sum;
        high[b] = high_sum;
        low_sum += l;
        high_sum += h;
    }
    for (int64_t r = 0; r < count; r++) by_low[low[keys[r] & 0xFF]++] = (int32_t)r;
    for (int64_t i = 0; i < count; i++) {
        const int32_t r = by_low[i];
        order[high[keys[r] >> 8]++] = r;
    }
}

BNDK_CLONES
void bndk_pack_rows(const float *restrict a, int64_t rows, int64_t columns, int relu, float *restrict packed,
                    int64_t stride) {
    for (int64_t r = 0; r < rows; r++) {
        const float *from = a + r * columns;
        float *to = packed + r * stride;
        if (relu)
            bndk_relu_select(from, from, to, columns);
        else
            memcpy(to, from, (size_t)columns * sizeof(float));
    }
}

// The weight gradient over a mostly-zero input (below): columns per group for a result `vectors` vectors
// wide, QUAD while the group's sums fit the registers (4 x 4 vectors), else 2 (2 x 8). The one rule behind
// the kernel and bndk_sparse_input_weight_gradient_group.
enum { QUAD = 4 };
static inline int columns_per_group(int64_t vectors) { return vectors <= 4 ? QUAD : 2; }

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#if defined(BNDK_EMULATED_AVX512)
// The test builds that run this AVX-512 code on a CPU without it (Tests/kernels/isa_check.sh, make
// test-avx512-emulated): the intrinsics emulated (Tests/kernels/emulated_avx512), the functions
// compiled for those builds' AVX2.
#include "emulated_avx512.h"
#define SPARSE_TARGET
#else
#include <immintrin.h>
#define SPARSE_TARGET __attribute__((target("avx512f,avx512vl,popcnt")))
#endif

enum { MAX_VECTORS = 8 };  // 16 · MAX_VECTORS = SPARSE_MAX_WIDTH

// Where a kernel's running sums go through memory: between the chunks of columns it lists (CHUNK). Kept
// in registers across the chunk loop, they were copied by clang at every step of the inner loop (each
// sum moved to a second register, for the loop's exit: 11 register moves a listed column for the groups'
// 12 multiply-adds, 27 for sparse_row's 20 at width 100), which the CPU must still rename. Stored at the
// end of a chunk and loaded at the start of the next, with this barrier between, they are not: the
// groups' product took 0.94-0.95 of its time on one core (paired medians of 15 and 8 alternating rounds,
// test images in cache and from memory). The values, and so every result, are the same.
#define CHUNK_BOUNDARY() __asm__ volatile("" ::: "memory")

// The mask of a vector's first `lanes` lanes (all 16 from 16 on; 1u << 16 would not fit the mask).
static inline __mmask16 first_lanes(int64_t lanes) {
    return lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
}

static int avx512_available(void) {
#if defined(BNDK_EMULATED_AVX512)
    return 1;
#endif
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("popcnt");
}

// One row of c for a right operand `vectors` registers wide (the last one `tail` lanes). Inlined into
// one copy per register count, so the partial sums stay in registers. A last vector of at most 8 lanes
// (`narrow`) is a 256-bit one: where the CPU splits 512-bit operations in two (AMD's Zen 4) its
// multiply-adds cost half (width 100, the article's layers: 13 halves per listed entry instead of 14);
// elsewhere the same. Each lane's sum is the same either way.
SPARSE_TARGET __attribute__((always_inline)) static inline void
sparse_row(const int vectors, const int narrow, __mmask16 tail, const float *a_row, int64_t depth, const float *b,
           int64_t b_stride, const int predicate, const float *start, const float *keep_row, float *c_row,
           int32_t *offsets, float *values, const float *prefetch_row) {
    // The two sums wait in memory between chunks (CHUNK_BOUNDARY).
    __m512 first_kept[MAX_VECTORS], second_kept[MAX_VECTORS];
    for (int v = 0; v < vectors; v++) { first_kept[v] = _mm512_setzero_ps(); second_kept[v] = _mm512_setzero_ps(); }
    __m256 first_narrow_kept = _mm256_setzero_ps(), second_narrow_kept = _mm256_setzero_ps();
    const __mmask8 tail8 = (__mmask8)tail;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t chunk = 0; chunk < depth; chunk += CHUNK) {
        const int64_t end = depth - chunk < CHUNK ? depth : chunk + CHUNK;
        __m512 first[MAX_VECTORS], second[MAX_VECTORS];
        CHUNK_BOUNDARY();
        for (int v = 0; v < vectors; v++) { first[v] = first_kept[v]; second[v] = second_kept[v]; }
        __m256 first_narrow = first_narrow_kept, second_narrow = second_narrow_kept;
        int64_t listed = 0;
        for (int64_t k = chunk; k < end; k += 16) {
            const __mmask16 in = first_lanes(end - k);
            const __m512 x = _mm512_maskz_loadu_ps(in, a_row + k);
            // The next row's same columns, from memory while this row computes (a prefetch never faults).
            if (prefetch_row) _mm_prefetch((const char *)(prefetch_row + k), _MM_HINT_T0);
            // Unordered-or-unequal (or with a ReLU taken in, unordered-or-greater): a NaN is listed, and
            // spreads as a dense product would spread it.
            const __mmask16 nonzero = predicate == _CMP_NEQ_UQ
                                          ? _mm512_mask_cmp_ps_mask(in, x, _mm512_setzero_ps(), _CMP_NEQ_UQ)
                                          : _mm512_mask_cmp_ps_mask(in, x, _mm512_setzero_ps(), _CMP_NLE_UQ);
            // Listed as offsets into b (k·b_stride: the caller keeps b under 2^31 floats), so the loop
            // below loads a row's address with no multiply.
            const __m512i offset = _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32((int32_t)k)),
                                                      _mm512_set1_epi32((int32_t)b_stride));
            // Compress in registers, then store whole vectors (a compressing store to memory is slow
            // on some CPUs); the lists have 16 floats of slack for the last store.
            _mm512_storeu_si512(offsets + listed, _mm512_maskz_compress_epi32(nonzero, offset));
            _mm512_storeu_ps(values + listed, _mm512_maskz_compress_ps(nonzero, x));
            listed += __builtin_popcount((unsigned)nonzero);
        }
        int64_t j = 0;
        for (; j + 2 <= listed; j += 2) {
            const float *b0 = b + offsets[j], *b1 = b + offsets[j + 1];
            const __m512 x0 = _mm512_set1_ps(values[j]), x1 = _mm512_set1_ps(values[j + 1]);
            for (int v = 0; v < vectors - 1; v++) {
                first[v] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(b0 + 16 * v), first[v]);
                second[v] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(b1 + 16 * v), second[v]);
            }
            const int v = vectors - 1;
            if (narrow) {
                first_narrow = _mm256_fmadd_ps(_mm512_castps512_ps256(x0), _mm256_maskz_loadu_ps(tail8, b0 + 16 * v),
                                               first_narrow);
                second_narrow = _mm256_fmadd_ps(_mm512_castps512_ps256(x1), _mm256_maskz_loadu_ps(tail8, b1 + 16 * v),
                                                second_narrow);
            } else {
                first[v] = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(tail, b0 + 16 * v), first[v]);
                second[v] = _mm512_fmadd_ps(x1, _mm512_maskz_loadu_ps(tail, b1 + 16 * v), second[v]);
            }
        }
        if (j < listed) {
            const float *b0 = b + offsets[j];
            const __m512 x0 = _mm512_set1_ps(values[j]);
            for (int v = 0; v < vectors - 1; v++) first[v] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(b0 + 16 * v), first[v]);
            const int v = vectors - 1;
            if (narrow)
                first_narrow = _mm256_fmadd_ps(_mm512_castps512_ps256(x0), _mm256_maskz_loadu_ps(tail8, b0 + 16 * v),
                                               first_narrow);
            else
                first[v] = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(tail, b0 + 16 * v), first[v]);
        }
        for (int v = 0; v < vectors; v++) { first_kept[v] = first[v]; second_kept[v] = second[v]; }
        first_narrow_kept = first_narrow;
        second_narrow_kept = second_narrow;
        CHUNK_BOUNDARY();
    }
    // With keep_row, lanes whose keep value is <= 0 store zero (a NaN keeps: as bndk_relu_select).
    if (narrow) {
        const int v = vectors - 1;
        const __m256 initial = start ? _mm256_maskz_loadu_ps(tail8, start + 16 * v) : _mm256_setzero_ps();
        __m256 sum = _mm256_add_ps(initial, _mm256_add_ps(first_narrow_kept, second_narrow_kept));
        if (keep_row)
            sum = _mm256_maskz_mov_ps(_mm256_cmp_ps_mask(_mm256_maskz_loadu_ps(tail8, keep_row + 16 * v),
                                                         _mm256_setzero_ps(), _CMP_NLE_UQ),
                                      sum);
        _mm256_mask_storeu_ps(c_row + 16 * v, tail8, sum);
    }
    for (int v = 0; v < vectors - narrow; v++) {
        const __mmask16 lanes = v == vectors - 1 ? tail : (__mmask16)0xFFFF;
        const __m512 initial = start ? _mm512_maskz_loadu_ps(lanes, start + 16 * v) : _mm512_setzero_ps();
        __m512 sum = _mm512_add_ps(initial, _mm512_add_ps(first_kept[v], second_kept[v]));
        if (keep_row)
            sum = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lanes, keep_row + 16 * v),
                                                         _mm512_setzero_ps(), _CMP_NLE_UQ),
                                      sum);
        _mm512_mask_storeu_ps(c_row + 16 * v, lanes, sum);
    }
}

// The rows of c for one register count: the whole right operand at once when it is small (it stays in
// the nearest caches while every row reads it), else in blocks (with a ReLU taken in: otherwise the
// rows go in groups, below). A right operand over WHOLE_FLOATS
// (64 KB: the first layer of the article's MLP, 784 x 48, is 147 KB) would be read from L2 for
// every listed entry, three cache lines each for 48 columns, and the loads, not the multiply-adds,
// would set the pace; so it is taken BLOCK_FLOATS (32 KB, L1) at a time, for PANEL_ROWS rows of a
// (their input stays in L2 across the blocks), each row's partial result stored in c between blocks.
// The rows of a are also prefetched one row ahead: a large left operand streams from memory. Measured
// on 10,000 Fashion-MNIST images x 784 -> 48 (half the pixels zero), one core: 10.3 ms unblocked,
// 7.4 ms blocked with the prefetch, 10.5 ms for OpenBLAS's dense product (which the blocked kernel
// still beats at 90% nonzeros). Every sum's order depends on the sizes and the data only.
// (WHOLE_FLOATS, BLOCK_FLOATS, PANEL_ROWS: linear_products.h.)

SPARSE_TARGET __attribute__((always_inline)) static inline void
sparse_rows(const int vectors, const int narrow, __mmask16 tail, const int predicate, int64_t rows, int64_t depth,
            const float *a, int64_t a_stride, const float *b, int64_t b_stride, const float *start, int accumulate,
            const float *keep, int64_t keep_stride, float *c, int64_t c_stride, int32_t *offsets, float *values) {
    // (Without a ReLU taken in, a right operand over WHOLE_FLOATS goes to the groups below: the
    // "not zero" copies of this function have no blocks.)
    if (predicate == _CMP_NEQ_UQ || depth * b_stride <= WHOLE_FLOATS) {
        for (int64_t r = 0; r < rows; r++)
            sparse_row(vectors, narrow, tail, a + r * a_stride, depth, b, b_stride, predicate,
                       accumulate ? c + r * c_stride : start, keep ? keep + r * keep_stride : NULL, c + r * c_stride,
                       offsets, values, NULL);
        return;
    }
    // (b_stride >= 16: rows padded to whole vectors.)
    const int64_t block = bndk_sparse_block_columns(b_stride);
    for (int64_t panel = 0; panel < rows; panel += PANEL_ROWS) {
        const int64_t panel_end = rows - panel < PANEL_ROWS ? rows : panel + PANEL_ROWS;
        for (int64_t k = 0; k < depth; k += block) {
            const int64_t columns = depth - k < block ? depth - k : block;
            const int first_block = k == 0, last_block = k + columns == depth;
            for (int64_t r = panel; r < panel_end; r++) {
                float *c_row = c + r * c_stride;
                // The first block starts from `start` (or c's row when accumulating), the others from
                // the partial result; the ReLU's mask applies to the last block's store only.
                const float *initial = first_block && !accumulate ? start : c_row;
                sparse_row(vectors, narrow, tail, a + r * a_stride + k, columns, b + k * b_stride, b_stride, predicate,
                           initial, last_block && keep ? keep + r * keep_stride : NULL, c_row, offsets, values,
                           a + (r + 1 < rows ? r + 1 : r) * a_stride + k);
            }
        }
    }
}

// ---- Rows in groups ----
// A right operand over WHOLE_FLOATS whose left operand is listed by "not zero" (no ReLU taken in: the
// article's first layer, 784 -> 48, on images) is taken GROUP rows of c at a time instead: the group's
// rows share one list, the columns where any of them is not zero, and each listed column's row of the
// right operand is loaded into registers once and multiplied into every row of the group (the group's
// partial sums fill the registers: 4 rows x 3 vectors for width 48). The kernel then runs at the pace of
// its multiply-adds, not its loads, as a dense product does, and still skips the columns that are zero in
// the whole group. To make those many, the rows (up to ORDER_ROWS at a time) are first put in the order of
// where their first listed column lies and of their number of listed columns, so rows that look alike (on
// images: objects that start on the same line) share groups. A column listed for the group but zero in one
// of its rows adds 0·b = ±0 to that row's sum, which changes no nonzero sum and can only turn a zero sum's
// sign (-0 arises when a product underflows to -0): a zero sum is taken as +0 before the start is added,
// so each row's result is its own, start + (the sum, in column order, of its nonzero terms), whatever rows
// share its group, the same for any thread count. Measured on the 10,000 Fashion-MNIST test images x 784
// -> 48 (half the pixels zero), one core, tasks of 128 rows: 9.5 ms row by row (the blocked kernel above),
// 10.6 ms for OpenBLAS's dense product, 7.8 ms in groups of 4 in the given order, 6.3 ms in groups of 4
// after ordering (6.6 ms in groups of 8); a group of 4 rows in the order given lists 79% of the columns,
// in the chosen order 64%. Prefetching the next rows into L2 while a group computes made it slower (6.6
// ms), and so did prefetching the next block of 128 rows, or the one after it, a slice per group (MLP-BN
// inference 1.05-1.11x the time, into L1 or L2); prefetching, one line per listed column, the block two
// tasks ahead (the one this thread takes next when the two alternate) gained 3-5% (MLP-BN inference
// 3.01-3.14 ms against 3.12-3.34, interleaved), too little for a guess of the pool's order. Groups of
// 2, 3 or 5 rows took the time of 4 within noise (the 784 -> 48 layer alone, two threads: 2.87-2.92 ms
// with 4, 3.05-3.14 with 2, 2.91-2.94 with 3, 2.97-3.06 with 5). Ordering the rows in larger windows
// barely helps: groups of 4 list 64.0% of the columns with 128 rows, 63.3% with 500, 63.0% with the
// whole batch of 1000 (the test images, computed with numpy). Nor did a row-by-row loop win with its entries listed beforehand
// for free: one core, 8.8 ms with the weight read whole from L2, 8.3-12 ms with it cut into slices of 16
// columns that fit L1, 9.9-18 ms in blocks of 32-128 weight rows, where the whole Linear in groups,
// ordering and listing included, took 5.5-5.6 ms the same day.
//
// While it orders the rows, order_rows also keeps each row's nonzero entries as one 16-bit mask per
// vector of 16 columns (for up to MASK_VECTORS vectors, 1024 columns: 16 KB on the stack for 128 rows),
// and each group lists its columns by OR-ing its rows' masks instead of reading and comparing the rows
// again: the 10,000 test images x 784 -> 48 on two threads took 3.06-3.17 ms instead of 3.33-3.39 (in
// cache: 2.44-2.49 instead of 2.55-2.59), MLP-BN inference 0.96 of the time (median of 8 rounds).
enum { MAX_GROUP = 4 };  // (ORDER_ROWS, MASK_VECTORS: linear_products.h)

// The rows the groups order next are loaded into L2 while the groups compute: up to ORDER_ROWS rows, one
// 64-byte line every second listed column of a group (sparse_group), so that order_rows finds them in L2
// instead of waiting on memory (it had taken a fifth of MLP-BN inference's samples, most of them loads).
// Measured on the Xeon of 2026-11 (2 MB L2 a core), the 10,000 test images x 784 -> 48 in calls of 128
// rows with the next rows given: one thread 0.78-0.83 of the time (best of 20 passes, 3 runs), two
// threads 0.86-0.90 (medians of 8-10 alternating rounds); in the library, order_rows' samples halved and
// MLP-BN inference took 0.90-0.91 of the time (paired medians of 12 rounds). Only when both blocks of rows
// and the right operand fill at most half of L2: with 1 MB (Zen 4) loading the next rows ahead had made
// the pass slower in an earlier session, as they push out what the groups still read. A hint only: which
// lines are loaded never changes a result.

// The L2 cache's size a core sees (sysconf; 0 when unknown), looked up once.
static int64_t level2_cache_bytes(void) {
    static int64_t known = -1;  // (threads racing to set it store the same value)
    int64_t bytes = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (bytes < 0) {
        const long size = sysconf(_SC_LEVEL2_CACHE_SIZE);
        bytes = size > 0 ? (int64_t)size : 0;
        __atomic_store_n(&known, bytes, __ATOMIC_RELAXED);
    }
    return bytes;
}

// The lines of the next ORDER_ROWS rows to load ahead (bndk_rows_ahead), or none when they, the block being
// computed (as large) and the right operand (depth x b_stride floats) would not leave half of L2 to the rest.
static bndk_lines_ahead rows_ahead(const float *a, int64_t rows, int64_t after, int64_t a_stride, int64_t depth,
                                   const float *next_a, int64_t next_rows, int64_t b_stride) {
    const bndk_lines_ahead lines = bndk_rows_ahead(a, rows, after, a_stride, depth, next_a, next_rows, ORDER_ROWS);
    const int64_t needed = 2 * (lines.end - lines.next) + depth * b_stride * (int64_t)sizeof(float);
    const bndk_lines_ahead none = {NULL, NULL};
    return needed > level2_cache_bytes() / 2 ? none : lines;
}

// Puts rows [0, count) of a (count <= ORDER_ROWS) in that order, keeps each row's masks in `masks` (row r's
// at masks + r·⌈depth/16⌉; NULL: none kept), and returns how many entries they list. The order: by the vector
// of 16 columns holding their first listed column (rows starting at vector 255 or beyond share the last
// place), then by their number of listed columns scaled to 0-255 (listed·255 / depth), then by index, so the
// order is a function of the data. Of the keys tried on the test images in tasks of 128 rows, this one made
// groups of 4 list the fewest columns, 64.0% (by first column, then count: 66.3%; by count, then first
// column: 72.1%; by the vector alone: 69.0%; a greedy choice of each group's rows among the next 8-128:
// 70.5-71.3%; the exact count instead of the scaled one: 64.0% too). The two bytes of the key are sorted by
// counting, the low byte first (each pass keeps the order of equal keys), and each row is read once: up to
// its first listed vector, then the rest counted in a vector of lane counters. Ordering the test images in
// tasks of 128 rows, two threads, rows in cache: 0.40 ms with an insertion sort and the count of each
// vector's mask, 0.19-0.23 ms so (the whole product 2.73 -> 2.52 ms); rows from memory, 0.45-0.55 ms either
// way, the time it takes to read them.
SPARSE_TARGET static int64_t order_rows(const float *a, int64_t a_stride, int64_t count, int64_t depth, int32_t *order,
                                        uint16_t *masks) {
    uint16_t keys[ORDER_ROWS];
    int64_t total = 0;
    const int64_t whole = depth - depth % 16;
    const __mmask16 tail = first_lanes(depth % 16);
    const __m512i one = _mm512_set1_epi32(1);
    for (int64_t r = 0; r < count; r++) {
        const float *row = a + r * a_stride;
        uint16_t *row_masks = masks ? masks + r * ((depth + 15) / 16) : NULL;
        int64_t first = depth, k = 0;
        __m512i lanes = _mm512_setzero_si512();
        for (; k < whole; k += 16) {  // up to the first vector with a listed entry
            const __mmask16 nonzero = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + k), _mm512_setzero_ps(), _CMP_NEQ_UQ);
            if (row_masks) row_masks[k / 16] = (uint16_t)nonzero;
            if (nonzero) {
                first = k + __builtin_ctz((unsigned)nonzero);
                lanes = _mm512_maskz_mov_epi32(nonzero, one);
                k += 16;
                break;
            }
        }
        for (; k < whole; k += 16) {
            const __mmask16 nonzero = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + k), _mm512_setzero_ps(), _CMP_NEQ_UQ);
            if (row_masks) row_masks[k / 16] = (uint16_t)nonzero;
            lanes = _mm512_mask_add_epi32(lanes, nonzero, lanes, one);
        }
        int64_t listed = _mm512_reduce_add_epi32(lanes);  // each lane <= depth / 16 < 2^27
        if (tail) {
            const __mmask16 nonzero =
                _mm512_mask_cmp_ps_mask(tail, _mm512_maskz_loadu_ps(tail, row + whole), _mm512_setzero_ps(), _CMP_NEQ_UQ);
            if (nonzero && first == depth) first = whole + __builtin_ctz((unsigned)nonzero);
            if (row_masks) row_masks[whole / 16] = (uint16_t)nonzero;
            listed += __builtin_popcount((unsigned)nonzero);
        }
        total += listed;
        keys[r] = bndk_order_key(first, listed, depth);
    }
    bndk_order_by_keys(keys, count, order);
    return total;
}

// One group: rows members[0..<valid] of a and c (valid <= group; the missing ones repeat the last row,
// computed but not stored); the columns listed from the rows' masks when order_rows kept them.
SPARSE_TARGET __attribute__((always_inline)) static inline void
sparse_group(const int vectors, const int group, __mmask16 tail, const int32_t *members, const int valid, int64_t depth,
             const float *a, int64_t a_stride, const float *b, int64_t b_stride, const float *start, int accumulate,
             const float *keep, int64_t keep_stride, float *c, int64_t c_stride, int32_t *columns,
             const uint16_t *masks, bndk_lines_ahead *ahead) {
    const float *rows[MAX_GROUP];
    const uint16_t *row_masks[MAX_GROUP];
    for (int r = 0; r < group; r++) {
        rows[r] = a + members[r < valid ? r : valid - 1] * a_stride;
        row_masks[r] = masks ? masks + members[r < valid ? r : valid - 1] * ((depth + 15) / 16) : NULL;
    }
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // The sums wait in memory between chunks (CHUNK_BOUNDARY below).
    __m512 partial[MAX_GROUP][MAX_VECTORS];
    for (int r = 0; r < group; r++)
        for (int v = 0; v < vectors; v++) partial[r][v] = _mm512_setzero_ps();
    for (int64_t chunk = 0; chunk < depth; chunk += CHUNK) {
        const int64_t end = depth - chunk < CHUNK ? depth : chunk + CHUNK;
        __m512 sum[MAX_GROUP][MAX_VECTORS];
        CHUNK_BOUNDARY();
        for (int r = 0; r < group; r++)
            for (int v = 0; v < vectors; v++) sum[r][v] = partial[r][v];
        int64_t listed = 0;
        for (int64_t k = chunk; k < end; k += 16) {
            const __mmask16 in = first_lanes(end - k);
            __mmask16 nonzero = 0;
            if (masks)
                for (int r = 0; r < group; r++) nonzero |= row_masks[r][k / 16];
            else
                for (int r = 0; r < group; r++)
                    nonzero |= _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, rows[r] + k), _mm512_setzero_ps(),
                                                       _CMP_NEQ_UQ);
            _mm512_storeu_si512(columns + listed, _mm512_maskz_compress_epi32(
                                                      nonzero, _mm512_add_epi32(lane, _mm512_set1_epi32((int32_t)k))));
            listed += __builtin_popcount((unsigned)nonzero);
        }
        for (int64_t j = 0; j < listed; j++) {
            if ((j & 1) == 0 && ahead->next < ahead->end) {
                _mm_prefetch(ahead->next, _MM_HINT_T1);
                ahead->next += 64;
            }
            const int64_t k = columns[j];
            const float *b_row = b + k * b_stride;
            __m512 w[MAX_VECTORS];
            for (int v = 0; v < vectors; v++)
                w[v] = v == vectors - 1 ? _mm512_maskz_loadu_ps(tail, b_row + 16 * v) : _mm512_loadu_ps(b_row + 16 * v);
            for (int r = 0; r < group; r++) {
                const __m512 x = _mm512_set1_ps(rows[r][k]);
                for (int v = 0; v < vectors; v++) sum[r][v] = _mm512_fmadd_ps(x, w[v], sum[r][v]);
            }
        }
        for (int r = 0; r < group; r++)
            for (int v = 0; v < vectors; v++) partial[r][v] = sum[r][v];
        CHUNK_BOUNDARY();
    }
    for (int r = 0; r < group; r++) {
        if (r >= valid) break;
        float *c_row = c + members[r] * c_stride;
        const float *initial = accumulate ? c_row : start;
        for (int v = 0; v < vectors; v++) {
            const __mmask16 lanes = v == vectors - 1 ? tail : (__mmask16)0xFFFF;
            const __m512 own_sum = _mm512_add_ps(partial[r][v], _mm512_setzero_ps());  // -0 -> +0, nothing else changes
            __m512 value = _mm512_add_ps(initial ? _mm512_maskz_loadu_ps(lanes, initial + 16 * v) : _mm512_setzero_ps(),
                                         own_sum);
            if (keep)  // as in sparse_row: lanes whose keep value is <= 0 store zero
                value = _mm512_maskz_mov_ps(
                    _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lanes, keep + members[r] * keep_stride + 16 * v),
                                       _mm512_setzero_ps(), _CMP_NLE_UQ),
                    value);
            _mm512_mask_storeu_ps(c_row + 16 * v, lanes, value);
        }
    }
}

// All rows, ORDER_ROWS at a time: ordered, then in groups as large as the registers allow (the sums,
// the right operand's row and one broadcast value in 32 registers: 4 rows up to width 96, 3 for 112, 2
// for 128). Up to ORDER_ROWS rows over `listed_limit` are found while ordering them, before anything is
// computed or stored: 0 is returned.
SPARSE_TARGET __attribute__((always_inline)) static inline int
sparse_groups(const int vectors, __mmask16 tail, int64_t listed_limit, int64_t rows, int64_t depth, const float *a,
              int64_t a_stride, const float *b, int64_t b_stride, const float *start, int accumulate, const float *keep,
              int64_t keep_stride, float *c, int64_t c_stride, int32_t *columns, const float *next_a,
              int64_t next_rows) {
    const int group = (31 - vectors) / vectors < MAX_GROUP ? (31 - vectors) / vectors : MAX_GROUP;
    int32_t order[ORDER_ROWS];
    uint16_t mask_space[ORDER_ROWS * MASK_VECTORS];
    uint16_t *masks = (depth + 15) / 16 <= MASK_VECTORS ? mask_space : NULL;
    for (int64_t first = 0; first < rows; first += ORDER_ROWS) {
        const int64_t count = rows - first < ORDER_ROWS ? rows - first : ORDER_ROWS;
        const float *a_part = a + first * a_stride;
        // (Over the limit: only when rows <= ORDER_ROWS, before anything is stored.)
        if (order_rows(a_part, a_stride, count, depth, order, masks) > listed_limit) return 0;
        // The rows ordered next: this call's next ORDER_ROWS, else the caller's hint.
        bndk_lines_ahead ahead = rows_ahead(a, rows, first + count, a_stride, depth, next_a, next_rows, b_stride);
        for (int64_t r = 0; r < count; r += group) {
            const int valid = count - r < group ? (int)(count - r) : group;
            sparse_group(vectors, group, tail, order + r, valid, depth, a_part, a_stride, b, b_stride, start, accumulate,
                         keep ? keep + first * keep_stride : NULL, keep_stride, c + first * c_stride, c_stride, columns,
                         masks, &ahead);
        }
    }
    return 1;
}

#define SPARSE_GROUPS(N) \
    case N: \
        return sparse_groups(N, tail, listed_limit, rows, depth, a, a_stride, b, b_stride, start, accumulate, keep, \
                             keep_stride, c, c_stride, offsets, next_a, next_rows);

#define SPARSE_ROWS(N) \
    case N: \
        if (positive_only) { \
            if (narrow) SPARSE_ROWS_WITH(N, 1, _CMP_NLE_UQ); else SPARSE_ROWS_WITH(N, 0, _CMP_NLE_UQ); \
        } else { \
            if (narrow) SPARSE_ROWS_WITH(N, 1, _CMP_NEQ_UQ); else SPARSE_ROWS_WITH(N, 0, _CMP_NEQ_UQ); \
        } \
        break;
#define SPARSE_ROWS_WITH(N, NARROW, PREDICATE) \
    sparse_rows(N, NARROW, tail, PREDICATE, rows, depth, a, a_stride, b, b_stride, start, accumulate, keep, keep_stride, \
                c, c_stride, offsets, values)

SPARSE_TARGET
static int avx512_sparse_product_within(int64_t listed_limit, int64_t rows, int64_t depth, int64_t width, const float *a,
                               int64_t a_stride, int positive_only, const float *b, int64_t b_stride, const float *start,
                               int accumulate, const float *keep, int64_t keep_stride, float *c, int64_t c_stride,
                               const float *next_a, int64_t next_rows) {
    if (rows <= 0 || width <= 0 || width > 16 * MAX_VECTORS) return 1;
    int32_t offsets[CHUNK + 16];
    float values[CHUNK + 16];
    const int vectors = (int)((width + 15) / 16);
    const int64_t last = width - 16 * (vectors - 1);
    const __mmask16 tail = first_lanes(last);
    const int narrow = last <= 8;
    const int groups = !positive_only && depth * b_stride > WHOLE_FLOATS;
    // A limit the rows can exceed is checked before anything is stored: by the grouped kernel itself
    // while it orders up to ORDER_ROWS rows, else by a count first.
    if (listed_limit < rows * depth && !(groups && rows <= ORDER_ROWS)) {
        if (!bndk_listed_within(listed_limit, rows, depth, a, a_stride, positive_only)) return 0;
        listed_limit = rows * depth;
    }
    if (groups) {
        switch (vectors) {
            SPARSE_GROUPS(1) SPARSE_GROUPS(2) SPARSE_GROUPS(3) SPARSE_GROUPS(4)
            SPARSE_GROUPS(5) SPARSE_GROUPS(6) SPARSE_GROUPS(7) SPARSE_GROUPS(8)
            default: return 1;
        }
    }
    switch (vectors) {
        SPARSE_ROWS(1) SPARSE_ROWS(2) SPARSE_ROWS(3) SPARSE_ROWS(4)
        SPARSE_ROWS(5) SPARSE_ROWS(6) SPARSE_ROWS(7) SPARSE_ROWS(8)
        default: break;
    }
    return 1;
}

// ---- Narrow dense products ----
// A Linear whose output is under 32 wide (the article's 48 -> 24 and 24 -> 10) takes no sparse product
// (see Linear.swift), and OpenBLAS's general product cost about 5 µs per block of 128 rows of the 48 -> 24
// layer, its fixed costs (the call, packing both operands) far above its 147,000 multiply-adds. Here the
// rows go eight at a time with their sums in registers (8 rows x 2 vectors), each right-operand row
// loaded once per group and multiplied into every row of it; a last vector of at most 8 lanes is a
// 256-bit one (as in sparse_row). Each row's result is start + (its terms summed in column order),
// whatever rows share its group, and no term is skipped: any value, NaN and infinity included, spreads
// as in a dense product.
enum { NARROW_GROUP = 8, NARROW_MAX_VECTORS = 2 };  // 16 · NARROW_MAX_VECTORS = NARROW_MAX_WIDTH

SPARSE_TARGET __attribute__((always_inline)) static inline void
narrow_group(const int vectors, const int narrow, const int group, __mmask16 tail, int64_t depth, const float *a,
             int64_t a_stride, const float *b, int64_t b_stride, const float *start, float *c, int64_t c_stride) {
    __m512 sum[NARROW_GROUP][NARROW_MAX_VECTORS];
    __m256 sum_narrow[NARROW_GROUP];
    for (int r = 0; r < group; r++) {
        for (int v = 0; v < vectors; v++) sum[r][v] = _mm512_setzero_ps();
        sum_narrow[r] = _mm256_setzero_ps();
    }
    const __mmask8 tail8 = (__mmask8)tail;
    const int wide = vectors - narrow;  // vectors held in 512-bit registers
    for (int64_t k = 0; k < depth; k++) {
        const float *b_row = b + k * b_stride;
        __m512 w[NARROW_MAX_VECTORS];
        for (int v = 0; v < wide; v++)
            w[v] = v == vectors - 1 ? _mm512_maskz_loadu_ps(tail, b_row + 16 * v) : _mm512_loadu_ps(b_row + 16 * v);
        const __m256 w_narrow = narrow ? _mm256_maskz_loadu_ps(tail8, b_row + 16 * wide) : _mm256_setzero_ps();
        for (int r = 0; r < group; r++) {
            const __m512 x = _mm512_set1_ps(a[r * a_stride + k]);
            for (int v = 0; v < wide; v++) sum[r][v] = _mm512_fmadd_ps(x, w[v], sum[r][v]);
            if (narrow) sum_narrow[r] = _mm256_fmadd_ps(_mm512_castps512_ps256(x), w_narrow, sum_narrow[r]);
        }
    }
    for (int r = 0; r < group; r++) {
        float *c_row = c + r * c_stride;
        for (int v = 0; v < wide; v++) {
            const __mmask16 lanes = v == vectors - 1 ? tail : (__mmask16)0xFFFF;
            const __m512 initial = start ? _mm512_maskz_loadu_ps(lanes, start + 16 * v) : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(c_row + 16 * v, lanes, _mm512_add_ps(initial, sum[r][v]));
        }
        if (narrow) {
            const __m256 initial = start ? _mm256_maskz_loadu_ps(tail8, start + 16 * wide) : _mm256_setzero_ps();
            _mm256_mask_storeu_ps(c_row + 16 * wide, tail8, _mm256_add_ps(initial, sum_narrow[r]));
        }
    }
}

SPARSE_TARGET __attribute__((always_inline)) static inline void
narrow_rows(const int vectors, const int narrow, __mmask16 tail, int64_t rows, int64_t depth, const float *a,
            int64_t a_stride, const float *b, int64_t b_stride, const float *start, float *c, int64_t c_stride) {
    int64_t r = 0;
    for (; r + NARROW_GROUP <= rows; r += NARROW_GROUP)
        narrow_group(vectors, narrow, NARROW_GROUP, tail, depth, a + r * a_stride, a_stride, b, b_stride, start,
                     c + r * c_stride, c_stride);
    for (; r < rows; r++)
        narrow_group(vectors, narrow, 1, tail, depth, a + r * a_stride, a_stride, b, b_stride, start, c + r * c_stride,
                     c_stride);
}

SPARSE_TARGET
static int avx512_narrow_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride,
                                 const float *b, int64_t b_stride, const float *start, float *c, int64_t c_stride) {
    if (width <= 0 || width > 16 * NARROW_MAX_VECTORS) return 0;
    if (rows <= 0) return 1;
    const int vectors = (int)((width + 15) / 16);
    const int64_t last = width - 16 * (vectors - 1);
    const __mmask16 tail = first_lanes(last);
    if (vectors == 1) {
        if (last <= 8) narrow_rows(1, 1, tail, rows, depth, a, a_stride, b, b_stride, start, c, c_stride);
        else narrow_rows(1, 0, tail, rows, depth, a, a_stride, b, b_stride, start, c, c_stride);
    } else {
        if (last <= 8) narrow_rows(2, 1, tail, rows, depth, a, a_stride, b, b_stride, start, c, c_stride);
        else narrow_rows(2, 0, tail, rows, depth, a, a_stride, b, b_stride, start, c, c_stride);
    }
    return 1;
}

// ---- The weight gradient of a Linear whose input is mostly zeros ----
// dW[o][k] += Σ_n dy[n][o]·x[n][k] where x is the input (images: half their pixels zero; after BatchNorm
// the output gradient dy is dense, so the products above, which skip dy's zeros, do not apply). The sums
// run along the columns of x: a group of QUAD columns (2 when the result's rows need over 4 vectors) keeps
// its QUAD rows of dWᵀ in registers (4 x 3 vectors for 48 outputs) and takes the samples where any of its
// columns is not zero; each such sample loads its row of dy once and adds it, times each column's value,
// into the group's rows. Samples go CHUNK_SAMPLES at a time (their dy rows and x lines stay in L1 for
// every group of the block), and the block's BLOCK_COLUMNS partial rows of dWᵀ wait in scratch between
// chunks: each value is one chain of fused multiply-adds over the samples in order, whatever the grouping,
// the instruction set or the thread count (a listed zero adds ±0, which changes no nonzero sum; a zero sum
// is taken as +0 before it is added to dW).
// Measured on a batch of 512 Fashion-MNIST training images, 784 -> 48, one core: 240-250 us against
// 300-310 for OpenBLAS's product (both reading x from L3: about 65 us of each; without the chunks of
// samples and blocks of columns, 290-360 us); a zero input skips only in groups (62% of the groups of 4
// columns have a nonzero, against 50% of the pixels), and 8 columns per group (72% listed) took the same
// time, 2 columns (55%) 1.2 times it. In the article's MLP-BN epoch (batch 512, two threads) it took
// 0.78-0.80 of the CPU time of OpenBLAS's product (perf); the epoch's wall time was within the VM's noise.
// With every group listed the kernel takes 1.2 times OpenBLAS's time, and with 64 samples 1.15-1.4
// times: Linear.skipsInputZeros decides.
enum { CHUNK_SAMPLES = 64, BLOCK_COLUMNS = 128, WEIGHT_MAX_VECTORS = 8 };  // (QUAD: above)

// The group's sums over its listed samples: sum[j] += x[n][j] · dy[n], for columns j < present only (the
// others, past the input's last column, are never stored in dW).
SPARSE_TARGET __attribute__((always_inline)) static inline void
sparse_input_sums(const int vectors, const int group, const int present, __mmask16 tail, int64_t listed,
                  const int32_t *samples, const float *x, int64_t x_stride, const float *dy, int64_t dy_stride,
                  __m512 sum[QUAD][WEIGHT_MAX_VECTORS]) {
    for (int64_t i = 0; i < listed; i++) {
        const int64_t n = samples[i];
        const float *x_row = x + n * x_stride, *dy_row = dy + n * dy_stride;
        __m512 d[WEIGHT_MAX_VECTORS];
        for (int v = 0; v < vectors; v++)
            d[v] = v == vectors - 1 ? _mm512_maskz_loadu_ps(tail, dy_row + 16 * v) : _mm512_loadu_ps(dy_row + 16 * v);
        for (int j = 0; j < group; j++) {
            const __m512 value = _mm512_set1_ps(j < present ? x_row[j] : 0.0f);
            for (int v = 0; v < vectors; v++) sum[j][v] = _mm512_fmadd_ps(value, d[v], sum[j][v]);
        }
    }
}

SPARSE_TARGET __attribute__((always_inline)) static inline void
sparse_input_block(const int vectors, const int group, __mmask16 tail, int64_t batch, int64_t columns,
                   const float *x, int64_t x_stride, const float *dy, int64_t dy_stride, int64_t width, float *dw,
                   int64_t dw_stride, float *partial) {
    const int64_t row = 16 * vectors;  // floats per partial row of dWᵀ
    uint32_t masks[CHUNK_SAMPLES] = {0};  // (whole vectors read: lanes past the chunk's samples masked off)
    int32_t samples[CHUNK_SAMPLES + 16];
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    memset(partial, 0, sizeof(float) * (size_t)(columns * row));
    for (int64_t n0 = 0; n0 < batch; n0 += CHUNK_SAMPLES) {
        const int64_t count = batch - n0 < CHUNK_SAMPLES ? batch - n0 : CHUNK_SAMPLES;
        for (int64_t k = 0; k < columns; k += 16) {
            const int64_t lanes = columns - k < 16 ? columns - k : 16;
            const __mmask16 in = first_lanes(lanes);
            // Which of the 16 columns each sample lists: not zero, or NaN (it spreads as a dense product's).
            for (int64_t n = 0; n < count; n++)
                masks[n] = _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, x + (n0 + n) * x_stride + k),
                                                   _mm512_setzero_ps(), _CMP_NEQ_UQ);
            for (int64_t g = 0; g < lanes; g += group) {
                // The samples where any column of the group is listed.
                const __m512i group_bits = _mm512_set1_epi32((int32_t)(((1u << group) - 1) << g));
                int64_t listed = 0;
                for (int64_t n = 0; n < count; n += 16) {
                    const __mmask16 valid = first_lanes(count - n);
                    const __m512i m = _mm512_loadu_si512(masks + n);
                    const __mmask16 any = _mm512_mask_test_epi32_mask(valid, m, group_bits);
                    _mm512_storeu_si512(samples + listed, _mm512_maskz_compress_epi32(
                                                              any, _mm512_add_epi32(lane, _mm512_set1_epi32((int32_t)(n0 + n)))));
                    listed += __builtin_popcount((unsigned)any);
                }
                const int64_t kg = k + g, present = columns - kg < group ? columns - kg : group;
                float *rows = partial + kg * row;
                __m512 sum[QUAD][WEIGHT_MAX_VECTORS];
                for (int j = 0; j < group; j++)
                    for (int v = 0; v < vectors; v++) sum[j][v] = _mm512_loadu_ps(rows + j * row + 16 * v);
                // A whole group (all but a last, partial one) reads its columns with no test in the loop: the
                // tests had cost a branch per column and listed sample (3 register moves too, for width 48).
                if (present == group)
                    sparse_input_sums(vectors, group, group, tail, listed, samples, x + kg, x_stride, dy, dy_stride, sum);
                else
                    sparse_input_sums(vectors, group, (int)present, tail, listed, samples, x + kg, x_stride, dy, dy_stride,
                                      sum);
                for (int j = 0; j < group; j++)
                    for (int v = 0; v < vectors; v++) _mm512_storeu_ps(rows + j * row + 16 * v, sum[j][v]);
            }
        }
    }
    // dW[o][k] += (partial row k's lane o + 0): 16 columns of one row of dW at a time.
    for (int64_t k = 0; k < columns; k += 16) {
        const int64_t lanes = columns - k < 16 ? columns - k : 16;
        const __mmask16 in = first_lanes(lanes);
        for (int64_t o = 0; o < width; o++) {
            float gathered[16] = {0};
            for (int64_t c = 0; c < lanes; c++) gathered[c] = partial[(k + c) * row + o];
            float *dw_row = dw + o * dw_stride + k;
            const __m512 own = _mm512_add_ps(_mm512_loadu_ps(gathered), _mm512_setzero_ps());  // -0 -> +0
            _mm512_mask_storeu_ps(dw_row, in, _mm512_add_ps(_mm512_maskz_loadu_ps(in, dw_row), own));
        }
    }
}

// Blocks of columns whose partial rows fill the scratch: 128 columns of up to 64 floats, or 64 of up to 128.
#define SPARSE_INPUT_BLOCKS(N) \
    case N: { \
        const int64_t block = N <= 4 ? BLOCK_COLUMNS : BLOCK_COLUMNS / 2; \
        for (int64_t k = 0; k < columns; k += block) \
            sparse_input_block(N, columns_per_group(N), tail, batch, columns - k < block ? columns - k : block, x + k, \
                               x_stride, dy, dy_stride, width, dw + k, dw_stride, partial); \
        return 1; \
    }

SPARSE_TARGET
static int avx512_sparse_input_weight_gradient(int64_t batch, int64_t columns, int64_t width, const float *x,
                                               int64_t x_stride, const float *dy, int64_t dy_stride, float *dw,
                                               int64_t dw_stride) {
    if (batch <= 0 || columns <= 0) return 1;
    float partial[BLOCK_COLUMNS * 64];  // 32 KB
    const int vectors = (int)((width + 15) / 16);
    const __mmask16 tail = first_lanes(width - 16 * (vectors - 1));
    switch (vectors) {
        SPARSE_INPUT_BLOCKS(1) SPARSE_INPUT_BLOCKS(2) SPARSE_INPUT_BLOCKS(3) SPARSE_INPUT_BLOCKS(4)
        SPARSE_INPUT_BLOCKS(5) SPARSE_INPUT_BLOCKS(6) SPARSE_INPUT_BLOCKS(7) SPARSE_INPUT_BLOCKS(8)
        default: return 0;  // (width checked by the caller)
    }
}

// The (row, group) pairs with a listed entry, from one compare per 16 columns: a group of 2 or 4 columns
// (which divide 16, so no group straddles two vectors) is listed when any bit of its part of the mask is.
SPARSE_TARGET
static int64_t avx512_count_listed_groups(const float *x, int64_t rows, int64_t columns, int64_t stride, int64_t group) {
    const unsigned firsts = group == 4 ? 0x1111u : 0x5555u;
    int64_t listed = 0;
    for (int64_t n = 0; n < rows; n++)
        for (int64_t k = 0; k < columns; k += 16) {
            const __mmask16 in = first_lanes(columns - k);
            unsigned m = _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, x + n * stride + k), _mm512_setzero_ps(),
                                                 _CMP_NEQ_UQ);
            m |= m >> 1;
            if (group == 4) m |= m >> 2;
            listed += __builtin_popcount(m & firsts);
        }
    return listed;
}

#else

static int avx512_available(void) { return 0; }
static int avx512_sparse_product_within(int64_t listed_limit, int64_t rows, int64_t depth, int64_t width,
                                        const float *a, int64_t a_stride, int positive_only, const float *b,
                                        int64_t b_stride, const float *start, int accumulate, const float *keep,
                                        int64_t keep_stride, float *c, int64_t c_stride, const float *next_a,
                                        int64_t next_rows) {
    (void)listed_limit, (void)rows, (void)depth, (void)width, (void)a, (void)a_stride, (void)positive_only, (void)b,
        (void)b_stride, (void)start, (void)accumulate, (void)keep, (void)keep_stride, (void)c, (void)c_stride,
        (void)next_a, (void)next_rows;
    return 0;
}
static int avx512_narrow_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride,
                                 const float *b, int64_t b_stride, const float *start, float *c, int64_t c_stride) {
    (void)rows, (void)depth, (void)width, (void)a, (void)a_stride, (void)b, (void)b_stride, (void)start, (void)c,
        (void)c_stride;
    return 0;
}

static int64_t avx512_count_listed_groups(const float *x, int64_t rows, int64_t columns, int64_t stride, int64_t group) {
    (void)x, (void)rows, (void)columns, (void)stride, (void)group;
    return 0;
}
static int avx512_sparse_input_weight_gradient(int64_t batch, int64_t columns, int64_t width, const float *x,
                                               int64_t x_stride, const float *dy, int64_t dy_stride, float *dw,
                                               int64_t dw_stride) {
    (void)batch, (void)columns, (void)width, (void)x, (void)x_stride, (void)dy, (void)dy_stride, (void)dw, (void)dw_stride;
    return 0;
}

#endif

int bndk_sparse_product_available(void) { return avx512_available() || bndk_avx2_products_available(); }

int bndk_sparse_product_in_blocks_available(void) { return avx512_available(); }

int bndk_sparse_product_in_groups_available(void) { return avx512_available() || bndk_avx2_products_available(); }

int64_t bndk_sparse_product_group_rows(void) { return avx512_available() ? ORDER_ROWS : PAIR_ROWS; }

// Without AVX-512 or AVX2 the same sums in scalar code (the library does not call it: see the header).
static int scalar_sparse_product_within(int64_t listed_limit, int64_t rows, int64_t depth, int64_t width,
                                        const float *a, int64_t a_stride, int positive_only, const float *b,
                                        int64_t b_stride, const float *start, int accumulate, const float *keep,
                                        int64_t keep_stride, float *c, int64_t c_stride) {
    if (!bndk_listed_within(listed_limit, rows, depth, a, a_stride, positive_only)) return 0;
    for (int64_t r = 0; r < rows; r++) {
        float *c_row = c + r * c_stride;
        for (int64_t o = 0; o < width; o++) {
            float sum = 0;
            for (int64_t k = 0; k < depth; k++) {
                const float x = a[r * a_stride + k];
                if (positive_only ? !(x <= 0.0f) : (x != 0.0f || x != x)) sum += x * b[k * b_stride + o];
            }
            const float value = (accumulate ? c_row[o] : start ? start[o] : 0.0f) + sum;
            c_row[o] = keep && keep[r * keep_stride + o] <= 0 ? 0.0f : value;
        }
    }
    return 1;
}

int bndk_sparse_product_within(int64_t listed_limit, int64_t rows, int64_t depth, int64_t width, const float *a,
                               int64_t a_stride, int positive_only, const float *b, int64_t b_stride, const float *start,
                               int accumulate, const float *keep, int64_t keep_stride, float *c, int64_t c_stride,
                               const float *next_a, int64_t next_rows) {
    if (avx512_available())
        return avx512_sparse_product_within(listed_limit, rows, depth, width, a, a_stride, positive_only, b, b_stride,
                                            start, accumulate, keep, keep_stride, c, c_stride, next_a, next_rows);
    if (bndk_avx2_products_available())
        return bndk_avx2_sparse_product_within(listed_limit, rows, depth, width, a, a_stride, positive_only, b, b_stride,
                                               start, accumulate, keep, keep_stride, c, c_stride, next_a, next_rows);
    return scalar_sparse_product_within(listed_limit, rows, depth, width, a, a_stride, positive_only, b, b_stride, start,
                                        accumulate, keep, keep_stride, c, c_stride);
}

int bndk_narrow_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride, const float *b,
                        int64_t b_stride, const float *start, float *c, int64_t c_stride) {
    if (avx512_available()) return avx512_narrow_product(rows, depth, width, a, a_stride, b, b_stride, start, c, c_stride);
    if (bndk_avx2_products_available())
        return bndk_avx2_narrow_product(rows, depth, width, a, a_stride, b, b_stride, start, c, c_stride);
    return 0;
}

void bndk_sparse_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride,
                         int positive_only, const float *b, int64_t b_stride, const float *start, int accumulate,
                         const float *keep, int64_t keep_stride, float *c, int64_t c_stride) {
    (void)bndk_sparse_product_within(INT64_MAX, rows, depth, width, a, a_stride, positive_only, b, b_stride, start,
                                     accumulate, keep, keep_stride, c, c_stride, NULL, 0);
}

// The weight gradient over a mostly-zero input: the AVX-512 kernel, else the same sums in scalar code
// (what the library does not call: see the header).
int bndk_sparse_input_weight_gradient_available(void) { return avx512_available(); }

int bndk_sparse_input_weight_gradient(int64_t batch, int64_t columns, int64_t width, const float *x, int64_t x_stride,
                                      const float *dy, int64_t dy_stride, float *dw, int64_t dw_stride) {
    if (width <= 0 || width > SPARSE_MAX_WIDTH) return 0;
    if (avx512_available())
        return avx512_sparse_input_weight_gradient(batch, columns, width, x, x_stride, dy, dy_stride, dw, dw_stride);
    for (int64_t o = 0; o < width; o++)
        for (int64_t k = 0; k < columns; k++) {
            float sum = 0;
            for (int64_t n = 0; n < batch; n++) {
                const float value = x[n * x_stride + k];
                if (value != 0.0f || value != value) sum = fmaf(value, dy[n * dy_stride + o], sum);
            }
            dw[o * dw_stride + k] += sum + 0.0f;
        }
    return 1;
}

int64_t bndk_count_listed_groups(const float *x, int64_t rows, int64_t columns, int64_t stride, int64_t group) {
    if (avx512_available() && (group == 2 || group == 4)) return avx512_count_listed_groups(x, rows, columns, stride, group);
    int64_t listed = 0;
    for (int64_t n = 0; n < rows; n++)
        for (int64_t k = 0; k < columns; k += group) {
            int any = 0;
            for (int64_t j = k; j < columns && j < k + group; j++) any |= x[n * stride + j] != 0.0f;  // NaN: listed
            listed += any;
        }
    return listed;
}

int64_t bndk_sparse_input_weight_gradient_group(int64_t width) { return columns_per_group((width + 15) / 16); }
