// Linear's sparse and narrow products for CPUs with AVX2 and FMA but no AVX-512 (AMD's Zen 1-3, Intel's
// client cores): the same sums as linear.c's AVX-512 kernels, term for term (see linear_products.h), in
// 256-bit registers. AVX2 has 16 of them, half as many as AVX-512 and half as wide, so where a row of the
// result does not fit them the columns go in blocks and each block walks the row's list again: the list
// (vector compares, then a table that moves the listed lanes to the front, in place of AVX-512's
// compress) is cheap next to the multiply-adds. Each lane's sum is computed as linear.c computes it, so
// the bits are those of the AVX-512 kernels.
#include "bndrop_kernels.h"
#include "linear_products.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <string.h>

#define AVX2_TARGET __attribute__((target("avx2,fma,popcnt")))

int bndk_avx2_products_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt");
}

// COMPRESS[m]: the indices of the set bits of the 8-bit mask m, lowest first, one per byte (unused bytes
// 0). Built by the compiler from the rule: bit i of m goes to byte popcount(m & (2^i - 1)).
#define COMPRESS_BIT(m, i) (((m) >> (i) & 1) ? (uint64_t)(i) << (8 * __builtin_popcount((m) & ((1u << (i)) - 1))) : 0)
#define COMPRESS_ENTRY(m) \
    (COMPRESS_BIT(m, 0) | COMPRESS_BIT(m, 1) | COMPRESS_BIT(m, 2) | COMPRESS_BIT(m, 3) | COMPRESS_BIT(m, 4) | \
     COMPRESS_BIT(m, 5) | COMPRESS_BIT(m, 6) | COMPRESS_BIT(m, 7))
#define COMPRESS_4(m) COMPRESS_ENTRY(m), COMPRESS_ENTRY((m) + 1), COMPRESS_ENTRY((m) + 2), COMPRESS_ENTRY((m) + 3)
#define COMPRESS_16(m) COMPRESS_4(m), COMPRESS_4((m) + 4), COMPRESS_4((m) + 8), COMPRESS_4((m) + 12)
#define COMPRESS_64(m) COMPRESS_16(m), COMPRESS_16((m) + 16), COMPRESS_16((m) + 32), COMPRESS_16((m) + 48)
static const uint64_t COMPRESS[256] = {COMPRESS_64(0), COMPRESS_64(64), COMPRESS_64(128), COMPRESS_64(192)};

// The lanes of a vector with lanes [0, lanes) set (all 8 from 8 on), for masked loads and stores.
AVX2_TARGET static inline __m256i first_lanes8(int64_t lanes) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(lanes < 8 ? lanes : 8)), index);
}

// Vector v of a block of `vectors` at p: the last one through the tail's mask when `masked` (a constant in
// every inlined copy, so whole vectors are plain loads and the hot loops hold no mask register).
#define BLOCK_LOAD(p, v, vectors, masked, tail) \
    ((masked) && (v) == (vectors) - 1 ? _mm256_maskload_ps((p), (tail)) : _mm256_loadu_ps(p))

// Stores x at p: only the lanes of `lanes` when `partial` (the last vector of a row), else a plain store.
// A masked store is microcoded on AMD's Zen 3, several times a plain one's cost: storing every vector
// of the results through it took 5.5% of the 784 -> 48 product in rows in pairs (perf, one core).
AVX2_TARGET static inline void store_lanes(float *p, const int partial, const __m256i lanes, const __m256 x) {
    if (partial)
        _mm256_maskstore_ps(p, lanes, x);
    else
        _mm256_storeu_ps(p, x);
}

// The indices of mask m's lanes, moved to the front.
AVX2_TARGET static inline __m256i compress_indices(unsigned m) {
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)COMPRESS[m]));
}

// Writes the listed entries of a_row[k0..<end] (end - k0 <= CHUNK) as offsets into b (column · b_stride)
// and values; returns how many. The lists need 8 entries of slack.
AVX2_TARGET __attribute__((always_inline)) static inline int64_t
list_entries(const float *a_row, int64_t k0, int64_t end, const int predicate, int64_t b_stride, int32_t *offsets,
             float *values, const float *prefetch_row) {
    int64_t listed = 0;
    for (int64_t k = k0; k < end; k += 8) {
        const __m256i in = first_lanes8(end - k);
        const __m256 x = end - k >= 8 ? _mm256_loadu_ps(a_row + k) : _mm256_maskload_ps(a_row + k, in);
        if (prefetch_row) _mm_prefetch((const char *)(prefetch_row + k), _MM_HINT_T0);
        const __m256 listed_lanes = predicate == _CMP_NEQ_UQ ? _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ)
                                                             : _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ);
        const unsigned m = (unsigned)_mm256_movemask_ps(_mm256_and_ps(listed_lanes, _mm256_castsi256_ps(in)));
        const __m256i index = compress_indices(m);
        const __m256i offset = _mm256_mullo_epi32(_mm256_add_epi32(index, _mm256_set1_epi32((int32_t)k)),
                                                  _mm256_set1_epi32((int32_t)b_stride));
        _mm256_storeu_si256((__m256i *)(offsets + listed), offset);
        _mm256_storeu_ps(values + listed, _mm256_permutevar8x32_ps(x, index));
        listed += __builtin_popcount(m);
    }
    return listed;
}

// ---- Row by row (linear.c's sparse_row) ----
// Columns [col, col + 8·vectors) of one row of c (the last vector `tail` lanes when `masked`): the
// listed entries alternately into two partial sums, per chunk of CHUNK columns, then start + (first +
// second), as linear.c does for every lane.
// Rows of up to LISTED_DEPTH columns are listed once for all their blocks, ROW_TILE rows at a time (17 KB
// of lists on the stack).
// A block of the result's columns is up to BLOCK_VECTORS vectors: 12 sums in registers, two per vector
// here (and one per vector for each row of a pair below).
enum { BLOCK_VECTORS = 6, ROW_TILE = 8, LISTED_DEPTH = 256 };

AVX2_TARGET __attribute__((always_inline)) static inline void
row_block(const int vectors, const __m256i tail, const int masked, const float *a_row, int64_t depth,
          const float *b, int64_t b_stride, const int predicate, const float *start, const float *keep_row, float *c_row,
          int32_t *offsets, float *values, const float *prefetch_row, const int64_t given) {
    __m256 first[BLOCK_VECTORS], second[BLOCK_VECTORS];
    for (int v = 0; v < vectors; v++) { first[v] = _mm256_setzero_ps(); second[v] = _mm256_setzero_ps(); }
    const __m256i all = _mm256_set1_epi32(-1);
    for (int64_t chunk = 0; chunk < depth; chunk += CHUNK) {
        const int64_t end = depth - chunk < CHUNK ? depth : chunk + CHUNK;
        const int64_t listed =
            given >= 0 ? given : list_entries(a_row, chunk, end, predicate, b_stride, offsets, values, prefetch_row);
        int64_t j = 0;
        for (; j + 2 <= listed; j += 2) {
            const float *b0 = b + offsets[j], *b1 = b + offsets[j + 1];
            const __m256 x0 = _mm256_broadcast_ss(values + j), x1 = _mm256_broadcast_ss(values + j + 1);
            for (int v = 0; v < vectors; v++) {
                first[v] = _mm256_fmadd_ps(x0, BLOCK_LOAD(b0 + 8 * v, v, vectors, masked, tail), first[v]);
                second[v] = _mm256_fmadd_ps(x1, BLOCK_LOAD(b1 + 8 * v, v, vectors, masked, tail), second[v]);
            }
        }
        if (j < listed) {
            const float *b0 = b + offsets[j];
            const __m256 x0 = _mm256_broadcast_ss(values + j);
            for (int v = 0; v < vectors; v++)
                first[v] = _mm256_fmadd_ps(x0, BLOCK_LOAD(b0 + 8 * v, v, vectors, masked, tail), first[v]);
        }
    }
    for (int v = 0; v < vectors; v++) {
        const __m256i lanes = masked && v == vectors - 1 ? tail : all;
        const __m256 initial = start ? _mm256_maskload_ps(start + 8 * v, lanes) : _mm256_setzero_ps();
        __m256 sum = _mm256_add_ps(initial, _mm256_add_ps(first[v], second[v]));
        if (keep_row)  // lanes whose keep value is <= 0 store +0 (a NaN keeps)
            sum = _mm256_and_ps(sum, _mm256_cmp_ps(_mm256_maskload_ps(keep_row + 8 * v, lanes), _mm256_setzero_ps(),
                                                   _CMP_NLE_UQ));
        store_lanes(c_row + 8 * v, masked && v == vectors - 1, lanes, sum);
    }
}

#define ROW_BLOCK_WITH(N, MASKED, PREDICATE) \
    row_block(N, tail, MASKED, a_row, depth, b + col, b_stride, PREDICATE, start ? start + col : NULL, \
              keep_row ? keep_row + col : NULL, c_row + col, offsets, values, prefetch_row, given)
#define ROW_BLOCK_CASE(N) \
    case N: \
        if (positive_only) { \
            if (masked) ROW_BLOCK_WITH(N, 1, _CMP_NLE_UQ); else ROW_BLOCK_WITH(N, 0, _CMP_NLE_UQ); \
        } else { \
            if (masked) ROW_BLOCK_WITH(N, 1, _CMP_NEQ_UQ); else ROW_BLOCK_WITH(N, 0, _CMP_NEQ_UQ); \
        } \
        break;

// The columns of a result `width` wide go in column_blocks(width) blocks of up to BLOCK_VECTORS vectors,
// spread evenly (no block of one vector, whose sums would wait on each other): block `block` starts at
// vector *first and holds *count.
static int64_t column_blocks(int64_t width) { return ((width + 7) / 8 + BLOCK_VECTORS - 1) / BLOCK_VECTORS; }

static void column_block_range(int64_t width, int64_t block, int64_t *first, int64_t *count) {
    const int64_t vectors = (width + 7) / 8, blocks = column_blocks(width);
    *first = vectors * block / blocks;
    *count = vectors * (block + 1) / blocks - *first;
}

// One column block of one row of c; `given` >= 0: offsets and values already list the row's `given`
// entries (depth <= CHUNK), else the row is listed here.
AVX2_TARGET static void sparse_row(int64_t width, int64_t block, const float *a_row, int64_t depth, const float *b,
                                   int64_t b_stride, const int positive_only, const float *start, const float *keep_row,
                                   float *c_row, int32_t *offsets, float *values, const float *prefetch_row,
                                   int64_t given) {
    const int64_t vectors = (width + 7) / 8;
    const __m256i tail = first_lanes8(width - 8 * (vectors - 1));
    int64_t done, count;
    column_block_range(width, block, &done, &count);
    const int64_t col = 8 * done;
    const int masked = done + count == vectors && width % 8 != 0;
    switch (count) {
        ROW_BLOCK_CASE(1) ROW_BLOCK_CASE(2) ROW_BLOCK_CASE(3)
        ROW_BLOCK_CASE(4) ROW_BLOCK_CASE(5) ROW_BLOCK_CASE(6)
        default: break;
    }
}

// linear.c's sparse_rows: the whole right operand at once when small, else (a ReLU taken in) in blocks of
// columns that fit L1, for panels of rows, each row's partial result kept in c between blocks. The
// result's column blocks are the outer loop, so the part of the right operand a block reads (100 x 48
// floats, 19 KB, for the article's 100 -> 100 layer) stays in L1 while every row reads it.
AVX2_TARGET static void sparse_rows(int64_t width, const int positive_only, int64_t rows, int64_t depth, const float *a,
                                    int64_t a_stride, const float *b, int64_t b_stride, const float *start,
                                    int accumulate, const float *keep, int64_t keep_stride, float *c, int64_t c_stride,
                                    int32_t *offsets, float *values) {
    const int64_t blocks = column_blocks(width);
    if (!positive_only || depth * b_stride <= WHOLE_FLOATS) {
        if (depth <= LISTED_DEPTH) {
            // Each row listed once for all its column blocks, ROW_TILE rows at a time: listing a row of
            // 100 took about as long as one block's multiply-adds.
            int32_t tile_offsets[ROW_TILE][LISTED_DEPTH + 8];
            float tile_values[ROW_TILE][LISTED_DEPTH + 8];
            int64_t tile_listed[ROW_TILE];
            for (int64_t first = 0; first < rows; first += ROW_TILE) {
                const int64_t count = rows - first < ROW_TILE ? rows - first : ROW_TILE;
                for (int64_t t = 0; t < count; t++)
                    tile_listed[t] = positive_only ? list_entries(a + (first + t) * a_stride, 0, depth, _CMP_NLE_UQ, b_stride,
                                                                  tile_offsets[t], tile_values[t], NULL)
                                                   : list_entries(a + (first + t) * a_stride, 0, depth, _CMP_NEQ_UQ, b_stride,
                                                                  tile_offsets[t], tile_values[t], NULL);
                for (int64_t block = 0; block < blocks; block++)
                    for (int64_t t = 0; t < count; t++) {
                        const int64_t r = first + t;
                        sparse_row(width, block, a + r * a_stride, depth, b, b_stride, positive_only,
                                   accumulate ? c + r * c_stride : start, keep ? keep + r * keep_stride : NULL,
                                   c + r * c_stride, tile_offsets[t], tile_values[t], NULL, tile_listed[t]);
                    }
            }
            return;
        }
        for (int64_t block = 0; block < blocks; block++)
            for (int64_t r = 0; r < rows; r++)
                sparse_row(width, block, a + r * a_stride, depth, b, b_stride, positive_only,
                           accumulate ? c + r * c_stride : start, keep ? keep + r * keep_stride : NULL, c + r * c_stride,
                           offsets, values, NULL, -1);
        return;
    }
    const int64_t block = bndk_sparse_block_columns(b_stride);
    for (int64_t panel = 0; panel < rows; panel += PANEL_ROWS) {
        const int64_t panel_end = rows - panel < PANEL_ROWS ? rows : panel + PANEL_ROWS;
        for (int64_t k = 0; k < depth; k += block) {
            const int64_t columns = depth - k < block ? depth - k : block;
            const int first_block = k == 0, last_block = k + columns == depth;
            for (int64_t column_block = 0; column_block < blocks; column_block++)
                for (int64_t r = panel; r < panel_end; r++) {
                    float *c_row = c + r * c_stride;
                    const float *initial = first_block && !accumulate ? start : c_row;
                    sparse_row(width, column_block, a + r * a_stride + k, columns, b + k * b_stride, b_stride,
                               positive_only, initial, last_block && keep ? keep + r * keep_stride : NULL, c_row,
                               offsets, values, a + (r + 1 < rows ? r + 1 : r) * a_stride + k, -1);
                }
        }
    }
}

// ---- Rows in pairs (linear.c's sparse_groups, two rows to a group) ----
// The same order of rows (order_rows' keys) and, for each row, the sum of every column its pair lists
// (the columns where either row is nonzero) in column order, one chain: a column zero in that row adds
// ±0, so the bits are those of linear.c's groups of 4, whatever rows share a group. Two rows by a block
// of up to BLOCK_VECTORS vectors of the result (column_block_range): 12 sums in registers, each vector
// of the right operand's row loaded once for both rows, 2 broadcasts and 9 loads for 12 multiply-adds. The right operand goes in blocks of its rows
// that stay in L1 (bndk_sparse_block_columns), each block walked by every pair of a window of
// PAIR_WINDOW rows, the sums kept on the stack between blocks. A call of up to PAIR_WINDOW rows checks
// the limit on listed entries as it orders them (a larger one counts them first, a pass of its own:
// Linear calls with no more, bndk_sparse_product_group_rows).
// On AMD's Zen 3 (no AVX-512), 784 -> 48 on the 10,000 Fashion-MNIST test images, one core, calls of
// 64 rows, best of 25 passes against OpenBLAS's product in the same run: 0.76-0.78 of its time (the same
// bits as groups of 4 rows as linear.c has them, which here took 1.17-1.19 by 2 vectors, 8 sums, and
// 1.31-1.34 by 3, all 16 registers: bench/NOTES.md). A pair lists 58.6% of the columns on those images.
enum { PAIR_WINDOW = PAIR_ROWS };

// The 16-bit mask of the listed lanes of row[k..<k + 16) (lanes at or past `depth` not listed). Masked
// loads only at the end of the row: on Zen 3 a pass over the test images took twice as long with them.
AVX2_TARGET static inline unsigned mask16(const float *row, int64_t k, int64_t depth) {
    if (depth - k >= 16) {
        const __m256 zero = _mm256_setzero_ps();
        return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + k), zero, _CMP_NEQ_UQ)) |
               (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + k + 8), zero, _CMP_NEQ_UQ)) << 8;
    }
    const __m256i low = first_lanes8(depth - k), high = first_lanes8(depth - k - 8);
    const __m256 x0 = _mm256_maskload_ps(row + k, low), x1 = _mm256_maskload_ps(row + k + 8, high);
    const unsigned m0 = (unsigned)_mm256_movemask_ps(
        _mm256_and_ps(_mm256_cmp_ps(x0, _mm256_setzero_ps(), _CMP_NEQ_UQ), _mm256_castsi256_ps(low)));
    const unsigned m1 = (unsigned)_mm256_movemask_ps(
        _mm256_and_ps(_mm256_cmp_ps(x1, _mm256_setzero_ps(), _CMP_NEQ_UQ), _mm256_castsi256_ps(high)));
    return m0 | m1 << 8;
}

// linear.c's order_rows, with the same keys.
AVX2_TARGET static int64_t order_rows(const float *a, int64_t a_stride, int64_t count, int64_t depth, int32_t *order,
                                      uint16_t *masks) {
    uint16_t keys[PAIR_WINDOW];
    int64_t total = 0;
    const int64_t vectors = (depth + 15) / 16;
    for (int64_t r = 0; r < count; r++) {
        const float *row = a + r * a_stride;
        if (masks) {  // the masks first, then their counts and the first nonzero one (fewer dependent steps)
            uint16_t *row_masks = masks + r * vectors;
            for (int64_t v = 0; v < vectors; v++) row_masks[v] = (uint16_t)mask16(row, 16 * v, depth);
            int64_t listed = 0, first_vector = vectors;
            for (int64_t v = 0; v < vectors; v++) listed += __builtin_popcount(row_masks[v]);
            for (int64_t v = 0; v < vectors; v++)
                if (row_masks[v]) { first_vector = v; break; }
            total += listed;
            // (The key takes the first nonzero column's vector of 16 only.)
            keys[r] = bndk_order_key(first_vector < vectors ? 16 * first_vector : depth, listed, depth);
            continue;
        }
        int64_t first = depth, listed = 0;
        for (int64_t v = 0; v < vectors; v++) {
            const unsigned m = mask16(row, 16 * v, depth);
            if (m && first == depth) first = 16 * v + __builtin_ctz(m);
            listed += __builtin_popcount(m);
        }
        total += listed;
        keys[r] = bndk_order_key(first, listed, depth);
    }
    bndk_order_by_keys(keys, count, order);
    return total;
}

// Columns [col, col + 8·vectors) of the pair's sums (rows `sums_stride` floats apart on the stack): loaded,
// then every listed column of this block of the right operand adds its terms, then stored. Every 4th
// column also loads the next cache line of the rows ahead (*ahead up to ahead_end) into L1: see
// sparse_groups.
AVX2_TARGET __attribute__((always_inline)) static inline void
pair_block(const int vectors, const __m256i tail, const int masked, const float *row0, const float *row1,
           const int32_t *columns, int64_t listed, const float *b, int64_t b_stride, float *sums0, float *sums1,
           const char **ahead, const char *ahead_end) {
    __m256 sum0[BLOCK_VECTORS], sum1[BLOCK_VECTORS];
    const char *line = *ahead;
    for (int v = 0; v < vectors; v++) { sum0[v] = _mm256_load_ps(sums0 + 8 * v); sum1[v] = _mm256_load_ps(sums1 + 8 * v); }
    for (int64_t j = 0; j < listed; j++) {
        if ((j & 3) == 0 && line < ahead_end) { _mm_prefetch(line, _MM_HINT_T0); line += 64; }
        const int64_t k = columns[j];
        const float *b_row = b + k * b_stride;
        const __m256 x0 = _mm256_broadcast_ss(row0 + k), x1 = _mm256_broadcast_ss(row1 + k);
        for (int v = 0; v < vectors; v++) {
            const __m256 w = BLOCK_LOAD(b_row + 8 * v, v, vectors, masked, tail);
            sum0[v] = _mm256_fmadd_ps(x0, w, sum0[v]);
            sum1[v] = _mm256_fmadd_ps(x1, w, sum1[v]);
        }
    }
    // (sums1 == sums0 for a row without a partner: the same values are stored twice.)
    for (int v = 0; v < vectors; v++) { _mm256_store_ps(sums1 + 8 * v, sum1[v]); _mm256_store_ps(sums0 + 8 * v, sum0[v]); }
    *ahead = line;
}

#define PAIR_BLOCK_WITH(N, MASKED) \
    pair_block(N, tail, MASKED, row0, row1, columns, listed, b + col, b_stride, sums0 + col, sums1 + col, &line, line_end)
#define PAIR_BLOCK_CASE(N) \
    case N: \
        if (masked) PAIR_BLOCK_WITH(N, 1); else PAIR_BLOCK_WITH(N, 0); \
        break;

// Lists the columns [k0, k1) (k0 a multiple of 16) where row0 or row1 is listed, from their masks when
// order_rows kept them, else from the rows; returns how many (columns needs 16 entries of slack).
AVX2_TARGET static inline int64_t list_pair(const float *row0, const float *row1, const uint16_t *masks0,
                                            const uint16_t *masks1, int64_t k0, int64_t k1, int32_t *columns) {
    int64_t listed = 0;
    for (int64_t k = k0; k < k1; k += 16) {
        const unsigned m = masks0 ? (unsigned)(masks0[k / 16] | masks1[k / 16]) : mask16(row0, k, k1) | mask16(row1, k, k1);
        for (int half = 0; half < 2; half++) {
            const unsigned part = m >> (8 * half) & 0xFF;
            _mm256_storeu_si256((__m256i *)(columns + listed),
                                _mm256_add_epi32(compress_indices(part), _mm256_set1_epi32((int32_t)(k + 8 * half))));
            listed += __builtin_popcount(part);
        }
    }
    return listed;
}

AVX2_TARGET static int sparse_groups(int64_t width, int64_t listed_limit, int64_t rows, int64_t depth, const float *a,
                                     int64_t a_stride, const float *b, int64_t b_stride, const float *start,
                                     int accumulate, const float *keep, int64_t keep_stride, float *c,
                                     int64_t c_stride, int32_t *columns, const float *next_a, int64_t next_rows) {
    int32_t order[PAIR_WINDOW];
    uint16_t mask_space[PAIR_WINDOW * MASK_VECTORS];
    uint16_t *masks = (depth + 15) / 16 <= MASK_VECTORS ? mask_space : NULL;
    const int64_t mask_stride = (depth + 15) / 16;
    const int64_t vectors = (width + 7) / 8, sums_stride = 8 * vectors, column_block_count = column_blocks(width);
    __attribute__((aligned(32))) float sums[PAIR_WINDOW * SPARSE_MAX_WIDTH];
    const __m256i all = _mm256_set1_epi32(-1), tail = first_lanes8(width - 8 * (vectors - 1));
    // Weight rows per block: what fits L1, at most CHUNK (the room `columns` has for a block's list).
    const int64_t fits = bndk_sparse_block_columns(b_stride), block = fits < CHUNK ? fits : CHUNK;
    for (int64_t first = 0; first < rows; first += PAIR_WINDOW) {
        const int64_t count = rows - first < PAIR_WINDOW ? rows - first : PAIR_WINDOW;
        const float *a_part = a + first * a_stride;
        // (Over the limit: only when rows <= PAIR_WINDOW, before anything is stored.)
        if (order_rows(a_part, a_stride, count, depth, order, masks) > listed_limit) return 0;
        memset(sums, 0, sizeof(float) * (size_t)(count * sums_stride));
        // The rows ahead: the next window's, this call's own or after its last the caller's hint (at most
        // a window of them), one cache line every 4 listed columns while this window computes. Without
        // it, a window's masks (order_rows) waited on memory for each of its rows: a fifth of this
        // kernel's samples in perf on MLP-BN inference, 15% with it. On Zen 3 the pass on one core took
        // 0.94 of the time (median of 10 rounds alternating with the kernel without it; both cores
        // 0.96-0.99, within the machine's noise). A burst of 20 lines per pair, instead of one every 4
        // columns, measured the same, its samples on the prefetches.
        const bndk_lines_ahead ahead =
            bndk_rows_ahead(a, rows, first + count, a_stride, depth, next_a, next_rows, PAIR_WINDOW);
        const char *line = ahead.next, *line_end = ahead.end;
        for (int64_t k0 = 0; k0 < depth; k0 += block) {
            const int64_t k1 = depth - k0 < block ? depth : k0 + block;
            for (int64_t p = 0; p < count; p += 2) {
                const int64_t r0 = order[p], r1 = order[p + 1 < count ? p + 1 : p];
                const float *row0 = a_part + r0 * a_stride, *row1 = a_part + r1 * a_stride;
                const int64_t listed = list_pair(row0, row1, masks ? masks + r0 * mask_stride : NULL,
                                                 masks ? masks + r1 * mask_stride : NULL, k0, k1, columns);
                float *sums0 = sums + r0 * sums_stride, *sums1 = sums + r1 * sums_stride;
                for (int64_t column_block = 0; column_block < column_block_count; column_block++) {
                    int64_t done, n;
                    column_block_range(width, column_block, &done, &n);
                    const int64_t col = 8 * done;
                    const int masked = done + n == vectors && width % 8 != 0;
                    switch (n) {
                        PAIR_BLOCK_CASE(1) PAIR_BLOCK_CASE(2) PAIR_BLOCK_CASE(3)
                        PAIR_BLOCK_CASE(4) PAIR_BLOCK_CASE(5) PAIR_BLOCK_CASE(6)
                        default: break;
                    }
                }
            }
        }
        for (int64_t r = 0; r < count; r++) {
            float *c_row = c + (first + r) * c_stride;
            const float *initial = accumulate ? c_row : start;
            for (int64_t v = 0; v < vectors; v++) {
                const __m256i lanes = v == vectors - 1 && width % 8 != 0 ? tail : all;
                const __m256 own_sum = _mm256_add_ps(_mm256_load_ps(sums + r * sums_stride + 8 * v), _mm256_setzero_ps());  // -0 -> +0
                __m256 value = _mm256_add_ps(initial ? _mm256_maskload_ps(initial + 8 * v, lanes) : _mm256_setzero_ps(), own_sum);
                if (keep)
                    value = _mm256_and_ps(value, _mm256_cmp_ps(_mm256_maskload_ps(keep + (first + r) * keep_stride + 8 * v, lanes),
                                                               _mm256_setzero_ps(), _CMP_NLE_UQ));
                store_lanes(c_row + 8 * v, v == vectors - 1 && width % 8 != 0, lanes, value);
            }
        }
    }
    return 1;
}

AVX2_TARGET
int bndk_avx2_sparse_product_within(int64_t listed_limit, int64_t rows, int64_t depth, int64_t width, const float *a,
                                    int64_t a_stride, int positive_only, const float *b, int64_t b_stride,
                                    const float *start, int accumulate, const float *keep, int64_t keep_stride, float *c,
                                    int64_t c_stride, const float *next_a, int64_t next_rows) {
    if (rows <= 0 || width <= 0 || width > SPARSE_MAX_WIDTH) return 1;
    int32_t offsets[CHUNK + 16];
    float values[CHUNK + 16];
    const int groups = !positive_only && depth * b_stride > WHOLE_FLOATS;
    if (listed_limit < rows * depth && !(groups && rows <= PAIR_WINDOW)) {
        if (!bndk_listed_within(listed_limit, rows, depth, a, a_stride, positive_only)) return 0;
        listed_limit = rows * depth;
    }
    if (groups)
        return sparse_groups(width, listed_limit, rows, depth, a, a_stride, b, b_stride, start, accumulate, keep,
                             keep_stride, c, c_stride, offsets, next_a, next_rows);
    sparse_rows(width, positive_only, rows, depth, a, a_stride, b, b_stride, start, accumulate, keep, keep_stride, c,
                c_stride, offsets, values);
    return 1;
}

// ---- Narrow dense products (linear.c's narrow_group) ----
// Each row's result is start + (its terms summed in column order, one chain), whatever rows share its
// group: here 6 rows at a time, by blocks of 2 vectors (12 sums, 2 vectors of the right operand, one
// broadcast value: 15 registers).
enum { NARROW_ROWS = 6, NARROW_BLOCK_VECTORS = 2 };

AVX2_TARGET __attribute__((always_inline)) static inline void
narrow_block(const int vectors, const int group, const __m256i tail, const int masked, int64_t depth,
             const float *a, int64_t a_stride, const float *b, int64_t b_stride, const float *start, float *c,
             int64_t c_stride) {
    const __m256i all = _mm256_set1_epi32(-1);
    __m256 sum[NARROW_ROWS][NARROW_BLOCK_VECTORS];
    for (int r = 0; r < group; r++)
        for (int v = 0; v < vectors; v++) sum[r][v] = _mm256_setzero_ps();
    for (int64_t k = 0; k < depth; k++) {
        const float *b_row = b + k * b_stride;
        __m256 w[NARROW_BLOCK_VECTORS];
        for (int v = 0; v < vectors; v++) w[v] = BLOCK_LOAD(b_row + 8 * v, v, vectors, masked, tail);
        for (int r = 0; r < group; r++) {
            const __m256 x = _mm256_broadcast_ss(a + r * a_stride + k);
            for (int v = 0; v < vectors; v++) sum[r][v] = _mm256_fmadd_ps(x, w[v], sum[r][v]);
        }
    }
    for (int r = 0; r < group; r++)
        for (int v = 0; v < vectors; v++) {
            const __m256i lanes = masked && v == vectors - 1 ? tail : all;
            const __m256 initial = start ? _mm256_maskload_ps(start + 8 * v, lanes) : _mm256_setzero_ps();
            store_lanes(c + r * c_stride + 8 * v, masked && v == vectors - 1, lanes, _mm256_add_ps(initial, sum[r][v]));
        }
}

#define NARROW_BLOCK_WITH(V, G, MASKED) \
    narrow_block(V, G, tail, MASKED, depth, a + r * a_stride, a_stride, b + col, b_stride, start ? start + col : NULL, \
                 c + r * c_stride + col, c_stride)
#define NARROW_BLOCK_CASE(V, G) \
    do { if (masked) NARROW_BLOCK_WITH(V, G, 1); else NARROW_BLOCK_WITH(V, G, 0); } while (0)

AVX2_TARGET
int bndk_avx2_narrow_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride,
                             const float *b, int64_t b_stride, const float *start, float *c, int64_t c_stride) {
    if (width <= 0 || width > NARROW_MAX_WIDTH) return 0;
    const int64_t vectors = (width + 7) / 8;
    const __m256i tail = first_lanes8(width - 8 * (vectors - 1));
    for (int64_t done = 0; done < vectors; done += NARROW_BLOCK_VECTORS) {
        const int two = vectors - done >= 2;
        const int64_t col = 8 * done;
        const int masked = done + (two ? 2 : 1) == vectors && width % 8 != 0;
        int64_t r = 0;
        for (; r + NARROW_ROWS <= rows; r += NARROW_ROWS) {
            if (two) NARROW_BLOCK_CASE(2, NARROW_ROWS); else NARROW_BLOCK_CASE(1, NARROW_ROWS);
        }
        for (; r < rows; r++) {
            if (two) NARROW_BLOCK_CASE(2, 1); else NARROW_BLOCK_CASE(1, 1);
        }
    }
    return 1;
}

#else

int bndk_avx2_products_available(void) { return 0; }

#endif
