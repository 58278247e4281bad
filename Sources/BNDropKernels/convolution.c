// Direct 2-D convolution for small channel counts (see bndrop_kernels.h).
//
// Every pass is a one-dimensional correlation over a flattened plane. A sample's input is copied, with
// its zero padding, into s·s "phase planes" per channel (s = stride): phase plane (ry, rx) holds the
// padded pixels (Y, X) with Y % s == ry and X % s == rx at (Y / s, X / s), rows Wq = ⌈Wp / s⌉ wide.
// Output (oy, ox) then reads, for tap (ky, kx), phase plane (ky % s, kx % s) at (oy + ky/s)·Wq +
// ox + kx/s: position p = oy·Wq + ox shifted by (ky/s)·Wq + kx/s, the same shift for every output. So
// each output plane is computed as rows Wq wide (columns ox >= OW are junk and dropped), in blocks of
// up to 64 consecutive positions held in vector registers, each tap one contiguous load per vector.
// The weight gradient is the same correlation read the other way (dot products of the output gradient,
// zero at the junk columns, with the shifted input; a block's partial sums stay in registers across a
// sample's positions and in scratch from one sample to the next), the bias gradient the output
// gradient's sums, and the input gradient the adjoint (the output gradient shifted back, per phase
// plane).
#include <stdbool.h>
#include "bndrop_kernels.h"
#include "clones.h"
#include "pooling_rows.h"

// Unlike the other kernels, these let the compiler fuse each multiply with its add (one rounding instead
// of two) where the clone's instruction set has FMA (the AVX2 and AVX-512 clones alike; each sum runs
// over the taps or positions in the same order in both): the multiply-adds are the whole cost here, and
// fusing them made the article's CNN epoch 10-15% faster. The order of every sum is still fixed by the
// shape, whatever the thread count.
#pragma STDC FP_CONTRACT ON
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif

// (float16v, load16, store16, splat16: clones.h.)
// Lanes added pairwise in a fixed order.
#define sum16(v) ({ float16v w_ = (v); \
    ((((w_[0] + w_[8]) + (w_[4] + w_[12])) + ((w_[2] + w_[10]) + (w_[6] + w_[14]))) + \
     (((w_[1] + w_[9]) + (w_[5] + w_[13])) + ((w_[3] + w_[11]) + (w_[7] + w_[15])))); })

// Register blocks: up to MAX_GROUP channels (output channels and taps in the weight gradient) ×
// VECTORS vectors of 16 floats, for AVX-512's 32 registers. With fewer registers (AVX2: 16 of half the
// width; SSE2) those blocks would spill: there, 2 channels × 2 vectors (4 vectors for a single
// channel), and 2 output channels × 2 taps in the weight gradient: 8 of the 16 registers for the
// sums, 6 for the two channels' output gradient and one tap's input. (2 × 3 taps needed 18 and
// spilled: on Zen 3 the article's CNN-BN epoch took 0.89 of its time with 2 × 2; 1 × 4 and 1 × 5 were
// in between.) With AVX2 and FMA the weight gradient goes instead in two passes of 8 lanes, 3 output
// channels × 4 taps (weight_group_halves). With AVX-512 the weight gradient's blocks take more taps
// than output channels: up to 3 output channels × WIDE_TAPS (7) taps, 4 × WIDE_TAPS_FULL (5), sums plus
// the output gradient and one tap's input in 25 of the 32 registers, so each block's pass over the
// samples' output gradient serves more taps (on a Xeon, Sapphire Rapids: the article's first layer's
// backward 0.88 of its time with 3 × 7 against 3 × 4, one core, 10,000 samples; the second's the same
// within noise). The choice depends on the CPU only, and no sum's order depends on it.
enum { LANES = 16, VECTORS = 4, MAX_GROUP = 4, NARROW_OUT = 2, NARROW_TAPS = 2, HALF_OUT = 3, HALF_TAPS = 4 };
enum { WIDE_TAPS = 7, WIDE_TAPS_FULL = 5 };
// The forward by rows with AVX-512 (forward_wide_rows, below): rows up to WIDE_ROW_MAX wide, WIDE_ROWS at a time.
enum { WIDE_ROWS = 2, WIDE_ROW_MAX = 48 };

// Whether the weight gradient goes in passes of 8 lanes: AVX2 with FMA and no AVX-512 (as wide_registers,
// from the instruction set of a build for one).
static int halves_registers(void) {
#if defined(BNDK_NO_CLONES)
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__) && !defined(BNDK_EMULATED_AVX512)
    return 1;
#else
    return 0;
#endif
#elif defined(__x86_64__)
    __builtin_cpu_init();
    return !__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int wide_registers(void) {
#if defined(BNDK_NO_CLONES)
    // A build for one instruction set (sanitizers, Tests/kernels/isa_check.sh): that set's registers, so
    // a build for AVX2 run on an AVX-512 CPU blocks as it would on an AVX2 one.
#if defined(__AVX512F__) || defined(BNDK_EMULATED_AVX512)
    return 1;
#else
    return 0;
#endif
#elif defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

// dst[0..<n] = src[0..<n] for the short rows of an image (tens of floats): vector moves inline, where
// a memcpy call would cost as much as the copy.
static inline __attribute__((always_inline)) void copy_floats(float *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) store16(dst + i, load16(src + i));
    if (i + 8 <= n) { memcpy(dst + i, src + i, 8 * sizeof(float)); i += 8; }
    if (i + 4 <= n) { memcpy(dst + i, src + i, 4 * sizeof(float)); i += 4; }
    if (i + 2 <= n) { memcpy(dst + i, src + i, 2 * sizeof(float)); i += 2; }
    if (i < n) dst[i] = src[i];
}

static int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// The geometry of one layer and where each buffer sits in a thread's scratch (offsets in floats).
typedef struct {
    int64_t C, H, W, O, k, s, pad, OH, OW;
    int64_t Wq, Hq, plane, phases;  // phase-plane width, height, size; s·s planes per channel
    int64_t taps;                   // C·k·k
    int64_t margin;                 // the largest shift, (k−1)/s·Wq + (k−1)/s
    int64_t positions;              // OH·Wq, rounded up to LANES
    int64_t grid;                   // Hq·Wq, rounded up to LANES
    int64_t row;                    // one output(-gradient) row of the scratch: margin + max(positions, grid)
    int64_t xs_size, ys_size;       // one sample's phase planes; one sample's output(-gradient) rows
    int64_t xs, ys, dxs, offsets, lanes, total;
    int group, vectors;             // channels and vectors per register block
    int out_group, tap_group;       // output channels and taps per weight-gradient block (taps_per_block)
    bool wide;                      // AVX-512's 32 registers of 16 floats (wide_registers)
    bool halves;                    // the weight gradient in two passes of 8 lanes (weight_group_halves)
    bool by_rows;                   // the forward by output rows (forward_row_group)
} layout;

static layout make_layout(const bndk_conv_shape *shape, int64_t samples) {
    layout g;
    g.C = shape->channels, g.H = shape->height, g.W = shape->width, g.O = shape->out_channels;
    g.k = shape->kernel, g.s = shape->stride, g.pad = shape->padding;
    const int64_t hp = g.H + 2 * g.pad, wp = g.W + 2 * g.pad;
    g.OH = (hp - g.k) / g.s + 1, g.OW = (wp - g.k) / g.s + 1;
    g.Hq = (hp + g.s - 1) / g.s, g.Wq = (wp + g.s - 1) / g.s;
    g.plane = g.Hq * g.Wq, g.phases = g.s * g.s;
    g.taps = g.C * g.k * g.k;
    g.margin = (g.k - 1) / g.s * g.Wq + (g.k - 1) / g.s;
    g.positions = round_up(g.OH * g.Wq, LANES);
    g.grid = round_up(g.plane, LANES);
    g.row = round_up(g.margin + (g.positions > g.grid ? g.positions : g.grid), LANES);
    // Reads reach offset (C·phases − 1)·plane + margin + positions at most.
    g.xs_size = round_up(g.C * g.phases * g.plane + g.margin + g.positions, LANES);
    g.ys_size = g.O * g.row;
    g.xs = 0;
    g.ys = g.xs + samples * g.xs_size;
    g.dxs = g.ys + samples * g.ys_size;
    g.offsets = g.dxs + g.C * g.phases * g.grid;
    g.lanes = g.offsets + round_up(g.taps, LANES);  // one int32 per tap, then the weight gradient's lanes
    g.total = g.lanes + g.O * g.taps * LANES;
    const int wide = wide_registers();
    g.group = wide ? MAX_GROUP : MAX_GROUP / 2;
    g.vectors = wide ? VECTORS : VECTORS / 2;
    g.halves = !wide && halves_registers();
    g.out_group = wide ? MAX_GROUP : g.halves ? HALF_OUT : NARROW_OUT;
    g.tap_group = wide ? WIDE_TAPS : g.halves ? HALF_TAPS : NARROW_TAPS;
    g.wide = wide;
    g.by_rows = g.s == 1 && g.OW % 8 == 0 && (!wide || g.OW <= WIDE_ROW_MAX);
    return g;
}

int64_t bndk_conv_scratch_floats(const bndk_conv_shape *shape, int64_t samples) {
    return make_layout(shape, samples).total;
}

// Each tap's offset in the phase planes of one sample, taps in the weight's order (c, ky, kx).
static int32_t *tap_offsets(const layout *g, float *scratch) {
    int32_t *offsets = (int32_t *)(scratch + g->offsets);
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t ky = 0; ky < g->k; ky++)
            for (int64_t kx = 0; kx < g->k; kx++)
                offsets[(c * g->k + ky) * g->k + kx] =
                    (int32_t)((c * g->phases + (ky % g->s) * g->s + kx % g->s) * g->plane + ky / g->s * g->Wq +
                              kx / g->s);
    return offsets;
}

// dst[0..<n] = 0, vector stores inline.
static inline __attribute__((always_inline)) void zero_floats(float *dst, int64_t n) {
    const float16v zero = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        store16(dst + i, zero);
        // (An empty statement the optimiser cannot see through: the loop stays vector stores instead of
        // becoming a memset call, which costs more than these few stores.)
        __asm__ volatile("" : : "r"(i));
    }
    if (i + 8 <= n) { memset(dst + i, 0, 8 * sizeof(float)); i += 8; }
    if (i + 4 <= n) { memset(dst + i, 0, 4 * sizeof(float)); i += 4; }
    if (i + 2 <= n) { memset(dst + i, 0, 2 * sizeof(float)); i += 2; }
    if (i < n) dst[i] = 0;
}

// Writes sample x's phase planes, padding and slack included (every float of xs[0..<xs_size]).
static inline __attribute__((always_inline)) void pack_input(const layout *g, const float *x, float *xs) {
    if (g->s != 1) {
        memset(xs, 0, (size_t)g->xs_size * sizeof(float));
        for (int64_t c = 0; c < g->C; c++)
            for (int64_t y = 0; y < g->H; y++) {
                const int64_t Y = y + g->pad;
                float *rows = xs + (c * g->phases + Y % g->s * g->s) * g->plane + Y / g->s * g->Wq;
                const float *src = x + (c * g->H + y) * g->W;
                for (int64_t i = 0; i < g->W; i++) {
                    const int64_t X = i + g->pad;
                    rows[X % g->s * g->plane + X / g->s] = src[i];
                }
            }
        return;
    }
    // Stride 1 without padding: the sample as it is (its planes one after the other, rows W = Wq wide),
    // copied whole rather than row by row (the article's second layer's backward: 0.93 of its time in a
    // microbenchmark of the kernels, one thread; the CNN-BN epoch within noise).
    if (g->pad == 0) {
        copy_floats(xs, x, g->C * g->plane);
        zero_floats(xs + g->C * g->plane, g->xs_size - g->C * g->plane);
        return;
    }
    // Stride 1: one plane per channel, rows Wq = W + 2·pad wide.
    for (int64_t c = 0; c < g->C; c++) {
        float *plane = xs + c * g->plane;
        zero_floats(plane, g->pad * g->Wq + g->pad);
        for (int64_t y = 0; y < g->H; y++) {
            float *row = plane + (y + g->pad) * g->Wq + g->pad;
            copy_floats(row, x + (c * g->H + y) * g->W, g->W);
            zero_floats(row + g->W, y + 1 < g->H ? 2 * g->pad : g->pad);
        }
        zero_floats(plane + (g->pad + g->H) * g->Wq, g->pad * g->Wq);
    }
    zero_floats(xs + g->C * g->plane, g->xs_size - g->C * g->plane);
}

// Writes one sample's output gradient as rows Wq wide after a margin, zero in the margin, the junk
// columns and the slack (every float of dys[0..<ys_size]).
static inline __attribute__((always_inline)) void pack_output_gradient(const layout *g, const float *dy,
                                                                       float *dys) {
    for (int64_t o = 0; o < g->O; o++) {
        float *row = dys + o * g->row;
        zero_floats(row, g->margin);
        for (int64_t oy = 0; oy < g->OH; oy++) {
            copy_floats(row + g->margin + oy * g->Wq, dy + (o * g->OH + oy) * g->OW, g->OW);
            zero_floats(row + g->margin + oy * g->Wq + g->OW, g->Wq - g->OW);
        }
        zero_floats(row + g->margin + g->OH * g->Wq, g->row - g->margin - g->OH * g->Wq);
    }
}

// pack_output_gradient for an output gradient given as the gradient of the 2×2 average pooling after the
// convolution (`pooled`: one sample's O planes ⌊OH/2⌋ × ⌊OW/2⌋), through the ReLU between them when
// `relu_input` (the sample's output, O × OH × OW) is not NULL: each row as bndk_avgpool2_backward writes
// it (pool_backward_plane_row; 0 in an odd last row or column), the same bits, never written whole.
static inline __attribute__((always_inline)) void pack_pooled_gradient(const layout *g, const float *pooled,
                                                                       const float *relu_input, float *dys) {
    const int64_t pooled_plane = (g->OH / 2) * (g->OW / 2), plane = g->OH * g->OW;
    for (int64_t o = 0; o < g->O; o++) {
        float *row = dys + o * g->row;
        zero_floats(row, g->margin);
        for (int64_t oy = 0; oy < g->OH; oy++) {
            float *dst = row + g->margin + oy * g->Wq;
            pool_backward_plane_row(pooled + o * pooled_plane, relu_input ? relu_input + o * plane : NULL, g->OH, g->OW,
                                    oy, dst);
            zero_floats(dst + g->OW, g->Wq - g->OW);
        }
        zero_floats(row + g->margin + g->OH * g->Wq, g->row - g->margin - g->OH * g->Wq);
    }
}

// Output channels [o0, o0 + ob), positions [p, p + 16·nv) of one sample:
// ys[o][p] = Σ_t w[o][t]·xs[p + offset t].
static inline __attribute__((always_inline)) void forward_block(const layout *g, int ob, int nv, int64_t o0,
                                                                int64_t p, const float *xs, const float *w,
                                                                const int32_t *offsets, float *ys) {
    float16v acc[MAX_GROUP][VECTORS];
    for (int j = 0; j < ob; j++)
        for (int v = 0; v < nv; v++) acc[j][v] = (float16v){0};
    for (int64_t t = 0; t < g->taps; t++) {
        const float *src = xs + offsets[t] + p;
        float16v in[VECTORS];
        for (int v = 0; v < nv; v++) in[v] = load16(src + v * LANES);
        for (int j = 0; j < ob; j++) {
            const float16v weight = splat16(w[(o0 + j) * g->taps + t]);
            for (int v = 0; v < nv; v++) acc[j][v] += weight * in[v];
        }
    }
    for (int j = 0; j < ob; j++)
        for (int v = 0; v < nv; v++) store16(ys + (o0 + j) * g->row + p + v * LANES, acc[j][v]);
}

// Output channels [o0, o0 + ob) of one sample, every position: full blocks, then the rest.
static inline __attribute__((always_inline)) void forward_group(const layout *g, int ob, int64_t o0,
                                                                const float *xs, const float *w,
                                                                const int32_t *offsets, float *ys) {
    int64_t p = 0;
    if (g->vectors < VECTORS && ob > 1) {
        for (; p + 2 * LANES <= g->positions; p += 2 * LANES) forward_block(g, ob, 2, o0, p, xs, w, offsets, ys);
    } else {
        for (; p + VECTORS * LANES <= g->positions; p += VECTORS * LANES)
            forward_block(g, ob, VECTORS, o0, p, xs, w, offsets, ys);
    }
    switch ((g->positions - p) / LANES) {
    case 1: forward_block(g, ob, 1, o0, p, xs, w, offsets, ys); break;
    case 2: forward_block(g, ob, 2, o0, p, xs, w, offsets, ys); break;
    case 3: forward_block(g, ob, 3, o0, p, xs, w, offsets, ys); break;
    default: break;
    }
}

// Splits n into ⌈n / most⌉ groups as equal as possible; group i's size.
static int group_size(int64_t n, int64_t i, int most) {
    const int64_t groups = (n + most - 1) / most;
    return (int)(n / groups + (i < n % groups));
}

// ---- Stride 1, output rows a whole number of 8-float vectors wide (the article's first layer: 24) ----
// Each output row is computed as it is stored, OW wide: no junk columns, no copy of the sample when it
// has no padding (its planes are already rows Wq = W wide), and the bias added in registers on the way
// to y. Each output's sum is the one forward_block computes, term for term: its taps in order from zero,
// then the bias. Without AVX-512 a row is up to three 8-float vectors (forward_rows; measured on Zen 3,
// two threads: the article's CNN-BN eval pass 0.85 of its time, its epoch 0.83). With AVX-512, rows up
// to 48 wide, each as 16-float vectors and, for a width 8 past a multiple of 16, one 8-float vector,
// WIDE_ROWS rows at a time (forward_wide_rows): on a Xeon (Sapphire Rapids) the article's first layer
// took 0.64 of the phase planes' time (one core, 10,000 samples; rows of 8-float vectors took 0.97).
enum { ROW_VECTORS = 3, ROW_GROUP = 3 };

// Output channels [o0, o0 + ob), row oy, columns [8·v0, 8·(v0 + nv)) of one sample.
static inline __attribute__((always_inline)) void forward_row_block(const layout *g, int ob, int nv, int64_t o0,
                                                                    int64_t oy, int64_t v0, const float *planes,
                                                                    const float *w, const float *b,
                                                                    const int32_t *offsets, float *y) {
    float8 acc[ROW_GROUP][ROW_VECTORS];
    for (int j = 0; j < ob; j++)
        for (int v = 0; v < nv; v++) acc[j][v] = (float8){0};
    const float *start = planes + oy * g->Wq + 8 * v0;
    for (int64_t t = 0; t < g->taps; t++) {
        const float *src = start + offsets[t];
        float8 in[ROW_VECTORS];
        for (int v = 0; v < nv; v++) in[v] = load8(src + 8 * v);
        for (int j = 0; j < ob; j++) {
            const float8 weight = splat8f(w[(o0 + j) * g->taps + t]);
            for (int v = 0; v < nv; v++) acc[j][v] += weight * in[v];
        }
    }
    for (int j = 0; j < ob; j++) {
        const float8 bias = splat8f(b[o0 + j]);
        float *dst = y + ((o0 + j) * g->OH + oy) * g->OW + 8 * v0;
        for (int v = 0; v < nv; v++) store8(dst + 8 * v, acc[j][v] + bias);
    }
}

static inline __attribute__((always_inline)) void forward_rows(const layout *g, int ob, int64_t o0,
                                                               const float *planes, const float *w, const float *b,
                                                               const int32_t *offsets, float *y) {
    const int64_t vectors = g->OW / 8;
    for (int64_t oy = 0; oy < g->OH; oy++)
        for (int64_t v0 = 0; v0 < vectors; v0 += ROW_VECTORS) {
            switch (vectors - v0 < ROW_VECTORS ? vectors - v0 : ROW_VECTORS) {
            case 1: forward_row_block(g, ob, 1, o0, oy, v0, planes, w, b, offsets, y); break;
            case 2: forward_row_block(g, ob, 2, o0, oy, v0, planes, w, b, offsets, y); break;
            default: forward_row_block(g, ob, 3, o0, oy, v0, planes, w, b, offsets, y); break;
            }
        }
}

// Output channels [o0, o0 + ob), rows [oy, oy + rows) of one sample, each row n16 16-float vectors and n8
// (0 or 1) 8-float ones wide.
static inline __attribute__((always_inline)) void forward_wide_row_block(const layout *g, int ob, int rows, int n16,
                                                                         int n8, int64_t o0, int64_t oy,
                                                                         const float *planes, const float *w,
                                                                         const float *b, const int32_t *offsets,
                                                                         float *y) {
    float16v acc[ROW_GROUP][WIDE_ROWS][WIDE_ROW_MAX / LANES];
    float8 tail[ROW_GROUP][WIDE_ROWS];
    for (int j = 0; j < ob; j++)
        for (int r = 0; r < rows; r++) {
            for (int v = 0; v < n16; v++) acc[j][r][v] = (float16v){0};
            if (n8) tail[j][r] = (float8){0};
        }
    const float *start = planes + oy * g->Wq;
    for (int64_t t = 0; t < g->taps; t++) {
        const float *src = start + offsets[t];
        float16v in[WIDE_ROWS][WIDE_ROW_MAX / LANES];
        float8 in_tail[WIDE_ROWS];
        for (int r = 0; r < rows; r++) {
            for (int v = 0; v < n16; v++) in[r][v] = load16(src + r * g->Wq + v * LANES);
            if (n8) in_tail[r] = load8(src + r * g->Wq + n16 * LANES);
        }
        for (int j = 0; j < ob; j++) {
            const float weight = w[(o0 + j) * g->taps + t];
            const float16v weight16 = splat16(weight);
            const float8 weight8 = splat8f(weight);
            for (int r = 0; r < rows; r++) {
                for (int v = 0; v < n16; v++) acc[j][r][v] += weight16 * in[r][v];
                if (n8) tail[j][r] += weight8 * in_tail[r];
            }
        }
    }
    for (int j = 0; j < ob; j++) {
        const float bias = b[o0 + j];
        for (int r = 0; r < rows; r++) {
            float *dst = y + ((o0 + j) * g->OH + oy + r) * g->OW;
            for (int v = 0; v < n16; v++) store16(dst + v * LANES, acc[j][r][v] + splat16(bias));
            if (n8) store8(dst + n16 * LANES, tail[j][r] + splat8f(bias));
        }
    }
}

// Every row of output channels [o0, o0 + ob) of one sample, WIDE_ROWS rows at a time (n16, n8: as above).
static inline __attribute__((always_inline)) void forward_wide_rows_of(const layout *g, int ob, int n16, int n8,
                                                                      int64_t o0, const float *planes, const float *w,
                                                                      const float *b, const int32_t *offsets,
                                                                      float *y) {
    int64_t oy = 0;
    for (; oy + WIDE_ROWS <= g->OH; oy += WIDE_ROWS)
        forward_wide_row_block(g, ob, WIDE_ROWS, n16, n8, o0, oy, planes, w, b, offsets, y);
    for (; oy < g->OH; oy++) forward_wide_row_block(g, ob, 1, n16, n8, o0, oy, planes, w, b, offsets, y);
}

static inline __attribute__((always_inline)) void forward_wide_rows(const layout *g, int ob, int64_t o0,
                                                                    const float *planes, const float *w,
                                                                    const float *b, const int32_t *offsets,
                                                                    float *y) {
    switch (g->OW) {  // a multiple of 8 up to WIDE_ROW_MAX (make_layout's by_rows)
    case 8: forward_wide_rows_of(g, ob, 0, 1, o0, planes, w, b, offsets, y); break;
    case 16: forward_wide_rows_of(g, ob, 1, 0, o0, planes, w, b, offsets, y); break;
    case 24: forward_wide_rows_of(g, ob, 1, 1, o0, planes, w, b, offsets, y); break;
    case 32: forward_wide_rows_of(g, ob, 2, 0, o0, planes, w, b, offsets, y); break;
    case 40: forward_wide_rows_of(g, ob, 2, 1, o0, planes, w, b, offsets, y); break;
    default: forward_wide_rows_of(g, ob, 3, 0, o0, planes, w, b, offsets, y); break;
    }
}

// Every row of output channels [o0, o0 + ob) of one sample, in the registers' vectors.
static inline __attribute__((always_inline)) void forward_row_group(const layout *g, int ob, int64_t o0,
                                                                    const float *planes, const float *w,
                                                                    const float *b, const int32_t *offsets,
                                                                    float *y) {
    if (g->wide)
        forward_wide_rows(g, ob, o0, planes, w, b, offsets, y);
    else
        forward_rows(g, ob, o0, planes, w, b, offsets, y);
}

BNDK_CLONES
void bndk_conv_forward(const bndk_conv_shape *shape, const float *x, int64_t count, const float *w,
                       const float *b, float *y, float *scratch) {
    const layout g = make_layout(shape, 1);
    float *xs = scratch + g.xs, *ys = scratch + g.ys;
    const int32_t *offsets = tap_offsets(&g, scratch);
    const int64_t in_size = g.C * g.H * g.W, out_size = g.O * g.OH * g.OW;
    if (g.by_rows) {
        for (int64_t n = 0; n < count; n++) {
            // Without padding the sample's channels are the planes (rows W = Wq wide), read in place.
            const float *planes = x + n * in_size;
            if (g.pad != 0) {
                pack_input(&g, planes, xs);
                planes = xs;
            }
            float *yn = y + n * out_size;
            for (int64_t i = 0, o0 = 0, groups = (g.O + ROW_GROUP - 1) / ROW_GROUP; i < groups; i++) {
                const int ob = group_size(g.O, i, ROW_GROUP);
                switch (ob) {
                case 1: forward_row_group(&g, 1, o0, planes, w, b, offsets, yn); break;
                case 2: forward_row_group(&g, 2, o0, planes, w, b, offsets, yn); break;
                default: forward_row_group(&g, 3, o0, planes, w, b, offsets, yn); break;
                }
                o0 += ob;
            }
        }
        return;
    }
    // Without stride or padding a sample's channels already are its phase planes (rows Wq = W wide, one
    // after the other): they are read in place, not copied, wherever the reads past the sample's end (the
    // junk columns' and the slack's, up to `reach` floats from its start) stay inside x, in the samples
    // after it. Copied, a sample's rows were stored 16, 8 and 4 floats at a time and at once read back by
    // 16-float loads that straddle those stores, which the CPU cannot serve from its store buffer: on a
    // Xeon (Sapphire Rapids, AVX-512) the copy took a fifth of the article's first convolution.
    const int64_t reach = (g.C * g.phases - 1) * g.plane + g.margin + g.positions;
    const bool planes_in_place = g.s == 1 && g.pad == 0;
    for (int64_t n = 0; n < count; n++) {
        const float *planes = x + n * in_size;
        if (!planes_in_place || reach > (count - n) * in_size) {
            pack_input(&g, planes, xs);
            planes = xs;
        }
        const int64_t groups = (g.O + g.group - 1) / g.group;
        for (int64_t i = 0, o0 = 0; i < groups; i++) {
            const int ob = group_size(g.O, i, g.group);
            switch (ob) {
            case 1: forward_group(&g, 1, o0, planes, w, offsets, ys); break;
            case 2: forward_group(&g, 2, o0, planes, w, offsets, ys); break;
            case 3: forward_group(&g, 3, o0, planes, w, offsets, ys); break;
            default: forward_group(&g, 4, o0, planes, w, offsets, ys); break;
            }
            o0 += ob;
        }
        float *yn = y + n * out_size;
        for (int64_t o = 0; o < g.O; o++) {
            const float bias = b[o];
            for (int64_t oy = 0; oy < g.OH; oy++) {
                const float *src = ys + o * g.row + oy * g.Wq;
                float *dst = yn + (o * g.OH + oy) * g.OW;
                for (int64_t ox = 0; ox < g.OW; ox++) dst[ox] = src[ox] + bias;
            }
        }
    }
}

// Weight gradient of output channels [o0, o0 + ob) × taps [t0, t0 + tb), one sample's terms:
// lanes[(o·taps + t)·16 + l] += Σ_p dys[o][p]·xs[p + offset t] over the positions p ≡ l (mod 16), in
// order. The sums stay in registers across the sample's positions and go back to `lanes` after it: the
// samples are taken one at a time through every block (weight_gradient), so a sample's input and output
// gradient stay in L1 while all the blocks read them. Each block used to run over all of a task's 8
// samples, reading them from L2 (93 KB for the article's first layer, 4 blocks): on the Xeon (Sapphire
// Rapids) that layer's backward through the pooling took 2.37-2.48 µs per sample on one thread, 2.05
// so; the CNN-BN epoch 0.95 of its time (medians of 10 alternating runs). Each sum's terms come in the
// same order either way: the same bits.
static inline __attribute__((always_inline)) void weight_group(const layout *g, int ob, int tb, int64_t o0,
                                                               int64_t t0, const float *xn, const float *dn,
                                                               const int32_t *offsets, float *lanes) {
    float16v acc[MAX_GROUP][WIDE_TAPS];
    for (int j = 0; j < ob; j++)
        for (int i = 0; i < tb; i++) acc[j][i] = load16(lanes + ((o0 + j) * g->taps + t0 + i) * LANES);
    const float *src[WIDE_TAPS];
    for (int i = 0; i < tb; i++) src[i] = xn + offsets[t0 + i];
    for (int64_t p = 0; p < g->positions; p += LANES) {
        float16v d[MAX_GROUP];
        for (int j = 0; j < ob; j++) d[j] = load16(dn + (o0 + j) * g->row + p);
        for (int i = 0; i < tb; i++) {
            const float16v in = load16(src[i] + p);
            for (int j = 0; j < ob; j++) acc[j][i] += d[j] * in;
        }
    }
    for (int j = 0; j < ob; j++)
        for (int i = 0; i < tb; i++) store16(lanes + ((o0 + j) * g->taps + t0 + i) * LANES, acc[j][i]);
}

// weight_group's sums, each lane's terms in the same order, in two passes of 8 lanes (lanes 0-7 of every
// 16 positions, then 8-15): the block's sums take half the registers, so AVX2's 16 hold 3 output channels
// × 4 taps (12 sums, 3 output-gradient vectors, one tap's input): 7 loads for 12 multiply-adds, where 2 × 2
// in 16 lanes took 8 for 8. On Zen 3 the article's CNN-BN epoch on one core took 0.93 of its time (median
// of 8 rounds alternating with 2 × 2; the weight gradient's share of the samples of the convolutions'
// backward 43% -> 24%). Same bits (Tests/kernels/isa_check.c's hashes unchanged). One sample at a time,
// its sums carried in `lanes` between samples, as weight_group.
static inline __attribute__((always_inline)) void weight_group_halves(const layout *g, int ob, int tb, int64_t o0,
                                                                      int64_t t0, const float *xn, const float *dn,
                                                                      const int32_t *offsets, float *lanes) {
    for (int half = 0; half < 2; half++) {
        float8 acc[HALF_OUT][HALF_TAPS];
        for (int j = 0; j < ob; j++)
            for (int i = 0; i < tb; i++) acc[j][i] = load8(lanes + ((o0 + j) * g->taps + t0 + i) * LANES + 8 * half);
        const float *src[HALF_TAPS];
        for (int i = 0; i < tb; i++) src[i] = xn + offsets[t0 + i] + 8 * half;
        for (int64_t p = 0; p < g->positions; p += LANES) {
            float8 d[HALF_OUT];
            for (int j = 0; j < ob; j++) d[j] = load8(dn + (o0 + j) * g->row + p + 8 * half);
            for (int i = 0; i < tb; i++) {
                const float8 in = load8(src[i] + p);
                for (int j = 0; j < ob; j++) acc[j][i] += d[j] * in;
            }
        }
        for (int j = 0; j < ob; j++)
            for (int i = 0; i < tb; i++) store8(lanes + ((o0 + j) * g->taps + t0 + i) * LANES + 8 * half, acc[j][i]);
    }
}

#define HALVES_CASE(OB) \
    switch (tb) { \
    case 1: weight_group_halves(g, OB, 1, o0, t0, xn, dn, offsets, lanes); break; \
    case 2: weight_group_halves(g, OB, 2, o0, t0, xn, dn, offsets, lanes); break; \
    case 3: weight_group_halves(g, OB, 3, o0, t0, xn, dn, offsets, lanes); break; \
    default: weight_group_halves(g, OB, 4, o0, t0, xn, dn, offsets, lanes); break; \
    }

#define WEIGHT_CASE(OB) \
    switch (tb) { \
    case 1: weight_group(g, OB, 1, o0, t0, xn, dn, offsets, lanes); break; \
    case 2: weight_group(g, OB, 2, o0, t0, xn, dn, offsets, lanes); break; \
    case 3: weight_group(g, OB, 3, o0, t0, xn, dn, offsets, lanes); break; \
    case 4: weight_group(g, OB, 4, o0, t0, xn, dn, offsets, lanes); break; \
    case 5: weight_group(g, OB, 5, o0, t0, xn, dn, offsets, lanes); break; \
    case 6: weight_group(g, OB, 6, o0, t0, xn, dn, offsets, lanes); break; \
    default: weight_group(g, OB, 7, o0, t0, xn, dn, offsets, lanes); break; \
    }

// The most taps per weight-gradient block for `ob` output channels.
static int taps_per_block(const layout *g, int ob) {
    return g->wide && ob == MAX_GROUP ? WIDE_TAPS_FULL : g->tap_group;
}

// The weight gradient over `count` packed samples: dw[o][t] = the sum of its 16 lanes (sum16), each lane
// Σ_n Σ_p dys[n][o][p]·xs[n][p + offset t] over the positions p ≡ lane (mod 16), in the order of the
// samples and positions. `lanes`: scratch for O·taps·16 floats.
static inline __attribute__((always_inline)) void weight_gradient(const layout *g, int64_t count, const float *xs,
                                                                  const float *dys, const int32_t *offsets,
                                                                  float *lanes, float *dw) {
    const int64_t out_groups = (g->O + g->out_group - 1) / g->out_group;
    zero_floats(lanes, g->O * g->taps * LANES);
    for (int64_t n = 0; n < count; n++) {
        const float *xn = xs + n * g->xs_size, *dn = dys + n * g->ys_size;
        for (int64_t a = 0, o0 = 0; a < out_groups; a++) {
            const int ob = group_size(g->O, a, g->out_group);
            const int most_taps = taps_per_block(g, ob);
            const int64_t tap_groups = (g->taps + most_taps - 1) / most_taps;
            for (int64_t b = 0, t0 = 0; b < tap_groups; b++) {
                const int tb = group_size(g->taps, b, most_taps);
                if (g->halves) {
                    switch (ob) {
                    case 1: HALVES_CASE(1) break;
                    case 2: HALVES_CASE(2) break;
                    default: HALVES_CASE(3) break;
                    }
                } else {
                    switch (ob) {
                    case 1: WEIGHT_CASE(1) break;
                    case 2: WEIGHT_CASE(2) break;
                    case 3: WEIGHT_CASE(3) break;
                    default: WEIGHT_CASE(4) break;
                    }
                }
                t0 += tb;
            }
            o0 += ob;
        }
    }
    for (int64_t w = 0; w < g->O * g->taps; w++) dw[w] = sum16(load16(lanes + w * LANES));
}

// Input-gradient phase planes of channels [c0, c0 + cb), phase (ry, rx), positions [q, q + 16·nv),
// one sample: dxs[c][q] = Σ_o Σ_(ky, kx) in the phase w[o][c][ky][kx]·dys[o][q − shift(ky, kx)].
static inline __attribute__((always_inline)) void input_block(const layout *g, int cb, int nv, int64_t c0,
                                                              int64_t ry, int64_t rx, int64_t q, const float *w,
                                                              const float *dys, float *dxs) {
    const int64_t k = g->k, s = g->s, phase = ry * s + rx;
    float16v acc[MAX_GROUP][VECTORS];
    for (int j = 0; j < cb; j++)
        for (int v = 0; v < nv; v++) acc[j][v] = (float16v){0};
    for (int64_t o = 0; o < g->O; o++) {
        const float *rowo = dys + o * g->row + g->margin + q;
        for (int64_t ky = ry; ky < k; ky += s)
            for (int64_t kx = rx; kx < k; kx += s) {
                const float *src = rowo - (ky / s * g->Wq + kx / s);
                float16v d[VECTORS];
                for (int v = 0; v < nv; v++) d[v] = load16(src + v * LANES);
                for (int j = 0; j < cb; j++) {
                    const float16v weight = splat16(w[((o * g->C + c0 + j) * k + ky) * k + kx]);
                    for (int v = 0; v < nv; v++) acc[j][v] += weight * d[v];
                }
            }
    }
    for (int j = 0; j < cb; j++)
        for (int v = 0; v < nv; v++)
            store16(dxs + ((c0 + j) * g->phases + phase) * g->grid + q + v * LANES, acc[j][v]);
}

static inline __attribute__((always_inline)) void input_group(const layout *g, int cb, int64_t c0, int64_t ry,
                                                              int64_t rx, const float *w, const float *dys,
                                                              float *dxs) {
    int64_t q = 0;
    if (g->vectors < VECTORS && cb > 1) {
        for (; q + 2 * LANES <= g->grid; q += 2 * LANES) input_block(g, cb, 2, c0, ry, rx, q, w, dys, dxs);
    } else {
        for (; q + VECTORS * LANES <= g->grid; q += VECTORS * LANES)
            input_block(g, cb, VECTORS, c0, ry, rx, q, w, dys, dxs);
    }
    switch ((g->grid - q) / LANES) {
    case 1: input_block(g, cb, 1, c0, ry, rx, q, w, dys, dxs); break;
    case 2: input_block(g, cb, 2, c0, ry, rx, q, w, dys, dxs); break;
    case 3: input_block(g, cb, 3, c0, ry, rx, q, w, dys, dxs); break;
    default: break;
    }
}

static inline __attribute__((always_inline)) void input_gradient(const layout *g, const float *w,
                                                                 const float *dys, float *dxs, float *dx) {
    const int64_t groups = (g->C + g->group - 1) / g->group;
    // Stride 1, no padding, planes a whole number of vectors (the article's second layer: 12 × 12): the
    // phase planes are the image's own layout, so they are written straight into dx, not copied there
    // row by row (that layer's backward: 0.90 of its time, one thread).
    const bool in_place = g->s == 1 && g->pad == 0 && g->grid == g->plane;
    if (in_place) dxs = dx;
    for (int64_t i = 0, c0 = 0; i < groups; i++) {
        const int cb = group_size(g->C, i, g->group);
        for (int64_t ry = 0; ry < g->s; ry++)
            for (int64_t rx = 0; rx < g->s; rx++) switch (cb) {
                case 1: input_group(g, 1, c0, ry, rx, w, dys, dxs); break;
                case 2: input_group(g, 2, c0, ry, rx, w, dys, dxs); break;
                case 3: input_group(g, 3, c0, ry, rx, w, dys, dxs); break;
                default: input_group(g, 4, c0, ry, rx, w, dys, dxs); break;
                }
        c0 += cb;
    }
    if (in_place) return;
    // Back from the phase planes to the image, dropping the padding.
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t y = 0; y < g->H; y++) {
            const int64_t Y = y + g->pad;
            const float *rows = dxs + (c * g->phases + Y % g->s * g->s) * g->grid + Y / g->s * g->Wq;
            float *dst = dx + (c * g->H + y) * g->W;
            if (g->s == 1) {
                copy_floats(dst, rows + g->pad, g->W);
                continue;
            }
            for (int64_t i = 0; i < g->W; i++) {
                const int64_t X = i + g->pad;
                dst[i] = rows[X % g->s * g->grid + X / g->s];
            }
        }
}

// The bias gradient of `count` packed samples (dys: as pack_output_gradient writes them): db[o] = 0 +
// Σ over the samples in order of (the sample's output gradient on channel o, summed one by one in the
// order of its rows and columns). Each sample's sum is a chain of adds, which waits on the one before; 8
// samples' chains run side by side (a sample past `count` repeats the last one, its sum unused). Summed
// so inside each task of the backward, from the rows it has just packed, instead of in tasks of their own
// that read the output gradient again (one chain per 8 samples, 8 tasks side by side): the article's
// CNN-BN epoch spent 7-9% of its time there.
static inline __attribute__((always_inline)) void bias_sums(const layout *g, const float *dys, int64_t count, float *db) {
    enum { SIDE_BY_SIDE = 8 };
    for (int64_t o = 0; o < g->O; o++) {
        float total = 0;
        for (int64_t n0 = 0; n0 < count; n0 += SIDE_BY_SIDE) {
            const int m = count - n0 < SIDE_BY_SIDE ? (int)(count - n0) : SIDE_BY_SIDE;
            const float *rows[SIDE_BY_SIDE];
            float sums[SIDE_BY_SIDE];
            for (int j = 0; j < SIDE_BY_SIDE; j++) {
                rows[j] = dys + (n0 + (j < m ? j : m - 1)) * g->ys_size + o * g->row + g->margin;
                sums[j] = 0;
            }
            for (int64_t oy = 0; oy < g->OH; oy++)
                for (int64_t ox = 0; ox < g->OW; ox++) {
                    const int64_t i = oy * g->Wq + ox;
                    for (int j = 0; j < SIDE_BY_SIDE; j++) sums[j] += rows[j][i];
                }
            for (int j = 0; j < m; j++) total += sums[j];
        }
        db[o] = total;
    }
}

// bndk_conv_backward with the output gradient as it is (`pooled` NULL) or through the pooling after the
// convolution (`pooled`: bndk_conv_backward_pooled).
static inline __attribute__((always_inline)) void conv_backward(const bndk_conv_shape *shape, const float *x,
                                                                const float *dy, const bndk_pooled_gradient *pooled,
                                                                int64_t count, const float *w, float *dw, float *db,
                                                                float *dx, float *scratch) {
    const layout g = make_layout(shape, count);
    float *xs = scratch + g.xs, *dys = scratch + g.ys, *dxs = scratch + g.dxs;
    const int32_t *offsets = tap_offsets(&g, scratch);
    const int64_t in_size = g.C * g.H * g.W, out_size = g.O * g.OH * g.OW;
    const int64_t pooled_size = g.O * (g.OH / 2) * (g.OW / 2);
    for (int64_t n = 0; n < count; n++) {
        pack_input(&g, x + n * in_size, xs + n * g.xs_size);
        if (pooled)
            pack_pooled_gradient(&g, pooled->pooled + n * pooled_size,
                                 pooled->relu_input ? pooled->relu_input + n * out_size : NULL, dys + n * g.ys_size);
        else
            pack_output_gradient(&g, dy + n * out_size, dys + n * g.ys_size);
        if (dx) input_gradient(&g, w, dys + n * g.ys_size, dxs, dx + n * in_size);
    }
    if (db) bias_sums(&g, dys, count, db);
    weight_gradient(&g, count, xs, dys + g.margin, offsets, scratch + g.lanes, dw);
}

BNDK_CLONES
void bndk_conv_backward(const bndk_conv_shape *shape, const float *x, const float *dy, int64_t count,
                        const float *w, float *dw, float *db, float *dx, float *scratch) {
    conv_backward(shape, x, dy, NULL, count, w, dw, db, dx, scratch);
}

BNDK_CLONES
void bndk_conv_backward_pooled(const bndk_conv_shape *shape, const float *x, bndk_pooled_gradient dy, int64_t count,
                               const float *w, float *dw, float *db, float *dx, float *scratch) {
    conv_backward(shape, x, NULL, &dy, count, w, dw, db, dx, scratch);
}
