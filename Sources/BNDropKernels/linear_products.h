// Shared by linear.c (AVX-512) and linear_avx2.c: the sizes that fix the order of every sum of the sparse
// and narrow products, so both instruction sets compute the same terms in the same order, and the AVX2
// entry points, which linear.c's public functions call on CPUs without AVX-512.
#ifndef BNDROP_KERNELS_LINEAR_PRODUCTS_H
#define BNDROP_KERNELS_LINEAR_PRODUCTS_H

#include <stdint.h>

enum {
    // Columns of the left operand listed at a time; each row's two partial sums restart their
    // alternation at every chunk (sparse_row).
    CHUNK = 512,
    // A right operand of up to WHOLE_FLOATS floats is read whole for every row; a larger one goes in
    // groups of rows (without a ReLU taken in) or in blocks of BLOCK_FLOATS for PANEL_ROWS rows at a time.
    WHOLE_FLOATS = 16 * 1024,
    BLOCK_FLOATS = 8 * 1024,
    PANEL_ROWS = 64,
    // Rows ordered together before they are grouped (AVX-512; AVX2 orders PAIR_ROWS at a time), and the
    // columns (in vectors of 16) whose masks the ordering keeps.
    ORDER_ROWS = 128,
    PAIR_ROWS = 64,
    MASK_VECTORS = 64,
    // The widest results of the sparse and narrow products.
    SPARSE_MAX_WIDTH = 128,
    NARROW_MAX_WIDTH = 32,
};

// What both instruction sets share (linear.c): whether rows [0, rows) of a list at most listed_limit
// entries (counted as bndk_count_listed counts them); the key by which the grouped kernels order a row
// (the vector of 16 columns holding its first listed entry, capped at 255, then its listed count scaled
// to 0-255); and the order of `count` <= ORDER_ROWS rows by those keys (a counting sort, stable).
int bndk_listed_within(int64_t listed_limit, int64_t rows, int64_t depth, const float *a, int64_t a_stride,
                       int positive_only);
uint16_t bndk_order_key(int64_t first, int64_t listed, int64_t depth);
void bndk_order_by_keys(const uint16_t *keys, int64_t count, int32_t *order);
// The rows a grouped kernel orders after rows [0, after) of its call's `rows` (rows of a, a_stride floats
// apart, `depth` of each used): the call's own next ones, else the caller's hint (next_a, next_rows); at
// most `window` of them, as the cache lines they span from the start of the first one's line, which the
// kernel loads while it computes ({NULL, NULL}: none).
typedef struct {
    const char *next, *end;
} bndk_lines_ahead;
bndk_lines_ahead bndk_rows_ahead(const float *a, int64_t rows, int64_t after, int64_t a_stride, int64_t depth,
                                 const float *next_a, int64_t next_rows, int64_t window);
// The columns of the left operand per block when the right operand, rows b_stride floats apart, goes in
// blocks of BLOCK_FLOATS (a ReLU taken in): whole vectors of 16, at least one.
int64_t bndk_sparse_block_columns(int64_t b_stride);

int bndk_avx2_products_available(void);
int bndk_avx2_sparse_product_within(int64_t listed_limit, int64_t rows, int64_t depth, int64_t width, const float *a,
                                    int64_t a_stride, int positive_only, const float *b, int64_t b_stride,
                                    const float *start, int accumulate, const float *keep, int64_t keep_stride, float *c,
                                    int64_t c_stride, const float *next_a, int64_t next_rows);
int bndk_avx2_narrow_product(int64_t rows, int64_t depth, int64_t width, const float *a, int64_t a_stride,
                             const float *b, int64_t b_stride, const float *start, float *c, int64_t c_stride);

#endif
