// The optimizers' per-parameter updates (see bndrop_kernels.h).
#define _POSIX_C_SOURCE 200809L  // clock_gettime
#include "bndrop_kernels.h"
#include "clones.h"

#include <float.h>
#include <time.h>

// √v / correction2_sqrt is float division by the same c for every parameter. It is computed as
// float(double(√v) · double(1/c)), which is exactly the float quotient, with one division per step instead
// of one per parameter (the kernel alone 7% faster on 10,401 parameters). Why exact: write
// a = √v and the floats a = A·2^i, c = C·2^j with integers A, C < 2^24. A point halfway between two
// neighbouring floats of a normal quotient's binade is M·2^k with M odd, 2^24 < M < 2^25. a/c never equals
// one (the odd part of C·M has more than 24 bits; A has at most 24), and a − c·M·2^k is a nonzero multiple of
// 2^(j+k) (the quotient's size makes i > j + k), so a/c lies at least 2^(j+k)/c = 2^k/C > 2^-49·|a/c| away
// from every halfway point. double(1/c) and the double product each round by at most 2^-53 relative, so
// the double is within 2^-52 of a/c: on the same side of every halfway point, so it rounds to the same
// float as a/c (overflow to infinity included: the threshold is such a point). Zero, infinity and NaN come
// out as from the division. Quotients below FLT_MIN (where halfway points are spaced otherwise) need
// a < c·2^-126, impossible for a = √v (0 or at least 2^-74.5) while c <= 2^50; Adam's c is in [2^-12, 1].
static inline int divides_by_inverse(float c) { return c >= FLT_MIN && c <= 0x1p50f; }

// a / c one value at a time (Adam's tail; `inverse` is 1.0 / (double)c).
static inline float quotient(float a, float c, int by_inverse, double inverse) {
    return by_inverse ? (float)((double)a * inverse) : a / c;
}

// out[i] = a[i] / c, the way Adam divides (above); Adam's quotient on its own, for its exhaustive test.
BNDK_CLONES
void bndk_divide_by(const float *a, float c, float *out, int64_t count) {
    const int by_inverse = divides_by_inverse(c);
    const double inverse = 1.0 / (double)c;
    for (int64_t i = 0; i < count; i++) out[i] = quotient(a[i], c, by_inverse, inverse);
}

// ---- Subnormal values without the CPU's slow path ----
// Late in a run, the first moments of parameters whose gradient has stayed zero (the dead units of a
// ReLU net) decay by beta1 each step through the subnormal range to zero. Intel's cores (measured on a
// Xeon of model 207) take a microcode assist of 110-135 cycles for every vector instruction that
// multiplies, divides or takes the square root of a subnormal value, or whose result is subnormal, unless
// the process flushes them to zero (which PyTorch does not, so neither can bndrop); additions with
// subnormal inputs and normal results, and conversions between float and double either way, run at full
// speed. One subnormal lane in every 16 made a float vector multiply 25 times slower, and Adam's step on
// the dropout regression's 10,401 parameters took 102 µs instead of 5.2 with a quarter of its first
// moments subnormal (19 µs with 1%).
//
// So a vector of 16 parameters with a value that may lead there (a nonzero magnitude below the
// thresholds below) takes the same operations in double precision, each result rounded to float as it
// is made: (double)(float)x, both conversions at full speed, and every value in double is normal. That
// gives the float operation's bits. A float product of floats is exact in double, so rounding it once is
// the float product. A sum, quotient or square root is rounded twice, to 53 bits and then to 24, which
// gives the correctly rounded float whenever 53 >= 2·24 + 2 (Figueroa, "When is double rounding
// innocuous?", 1995) for normal results; a subnormal sum of floats is exact; and a quotient a/c below
// FLT_MIN that is not a halfway point m·2^-150 (m odd) is at least 2^-48 of itself away from every one
// (a − c·m·2^-150 is a nonzero multiple of 2^min(ea, ec−150), with a = A·2^ea, c = C·2^ec, A, C < 2^24),
// far more than the double's error of 2^-53: on the same side, so it rounds the same. The thresholds
// only decide speed, never a value: a vector that should have gone the double way and did not takes the
// assists, as before.
//
// The double way costs about 100 cycles a vector and its test about 9% of the plain step (6.2 µs against
// 5.7 on those 10,401 parameters), which pays only where subnormal values are that slow. Not every CPU
// takes assists as large (AMD's Zen cores had Adam's step only about twice as slow with subnormal moments),
// so the library measures it once: a chain of 256 multiplies of a subnormal value, against the same chain
// on a normal one; the double way is used when the first takes over 4 times as long (Xeon model 207:
// 24-29 times: 41 ns a multiply against 1.4). Either way gives the same bits.

static int subnormal_policy = BNDK_SUBNORMALS_MEASURED;  // (bndk_set_subnormal_policy, for tests)

static double seconds_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

// The best of 5 runs of a chain of 256 multiplies of x by 1 (each waits for the one before).
static double multiply_chain_seconds(float x) {
    float one = 1.0f;
    __asm__("" : "+x"(one));
    double best = 1e9;
    for (int run = 0; run < 5; run++) {
        float y = x;
        const double start = seconds_now();
        for (int k = 0; k < 256; k++) {
            y = y * one;
            __asm__("" : "+x"(y));
        }
        const double seconds = seconds_now() - start;
        if (seconds < best) best = seconds;
    }
    return best;
}

int bndk_subnormals_take_double_path(void) {
    const int policy = __atomic_load_n(&subnormal_policy, __ATOMIC_RELAXED);
    if (policy == BNDK_SUBNORMALS_IN_DOUBLE) return 1;
    if (policy == BNDK_SUBNORMALS_IN_FLOAT) return 0;
    static int measured = -1;  // (threads racing to measure it store 0 or 1 alike, or nearly always so)
    int slow = __atomic_load_n(&measured, __ATOMIC_RELAXED);
    if (slow < 0) {
        slow = multiply_chain_seconds(0x1p-140f) > 4 * multiply_chain_seconds(1.0f);
        __atomic_store_n(&measured, slow, __ATOMIC_RELAXED);
    }
    return slow;
}

void bndk_set_subnormal_policy(int policy) {
    __atomic_store_n(&subnormal_policy, policy, __ATOMIC_RELAXED);
}

typedef uint32_t uint16v __attribute__((vector_size(64)));
// Lanes whose magnitude is nonzero and below the threshold `limit` (a float's bits): |x| − 1 < limit − 1
// as unsigned integers; zero wraps around to the top, and NaN and infinity lie above every limit.
#define TINY16(x, limit) (((uint16v)(x) & 0x7FFFFFFFu) - 1u < (limit) - 1u)
// A float widened to double, or a double rounded to float and widened back, times `ones`: 1.0 in every
// lane, but read through an empty asm statement, so that the compiler cannot see that the operands of the
// next operation are widened floats. It would turn such an operation back into the float one (which gives
// the same bits, by the argument above, and the same assists).
#define DOUBLE_WAY_ONES \
    double one_ = 1.0; \
    __asm__("" : "+m"(one_)); \
    const double16v ones = splat16d(one_)
#define WIDE16(x) (__builtin_convertvector((x), double16v) * ones)
#define ROUNDED16(x) WIDE16(__builtin_convertvector((x), float16v))

static uint32_t float_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

// The bits of the smallest magnitude above which a value's products cannot be subnormal (none of the
// factors it is multiplied by is below `smallest`), as long as no two values cancel to a tiny one:
// 2^-122 / smallest, at most 2^-20.
static uint32_t tiny_limit(float smallest) {
    return float_bits(smallest > 0x1p-102f && smallest < 1 ? 0x1p-122f / smallest : smallest >= 1 ? 0x1p-122f : 0x1p-20f);
}

static inline float smaller_factor(float a, float b) {
    const float magnitude = b < 0 ? -b : b;
    return magnitude > 0 && magnitude < a ? magnitude : a;  // (NaN and 0 leave a)
}

// Sixteen parameters at a time with explicit vectors (a scalar sqrtf call would keep the loop scalar: C's
// sqrtf may set errno), then the tail one by one: the same IEEE operations either way.
BNDK_CLONES
void bndk_adam_step(float *restrict p, const float *restrict grad, float *restrict m, float *restrict v, int64_t count,
                    float keep1, float beta2, float keep2, float eps, float step_size, float correction2_sqrt,
                    int coupled_decay, float decay) {
    // Sixteen lanes: in the AVX-512 clone one register each, which on CPUs that run 512-bit operations
    // whole halves the instructions, and on Zen 4 (which splits them) still 7% faster than eight.
    const float16v keep1s = splat16(keep1), beta2s = splat16(beta2), keep2s = splat16(keep2), epss = splat16(eps);
    const float16v steps = splat16(step_size), corrections = splat16(correction2_sqrt), decays = splat16(decay);
    const int by_inverse = divides_by_inverse(correction2_sqrt);
    const double inverse = 1.0 / (double)correction2_sqrt;
    const double16v inverses = splat16d(inverse);
    // Which vectors take the double way: those with a value below the limit of what it is multiplied by.
    // m by keep1 and step_size (m·keep1 in (g − m)·keep1, then step_size·m), v by beta2, p by decay (coupled),
    // g by keep1, keep2 and itself (keep2·g·g is subnormal below √(2^-122 / keep2)).
    const uint32_t first_limit = tiny_limit(smaller_factor(smaller_factor(1, keep1), step_size));
    const uint32_t second_limit = tiny_limit(smaller_factor(1, beta2));
    const uint32_t parameter_limit = tiny_limit(smaller_factor(1, decay));
    const float keep2_factor = smaller_factor(1, keep2);
    uint32_t gradient_limit =
        float_bits(keep2_factor > 0x1p-100f ? __builtin_sqrtf(0x1p-122f / keep2_factor) : 0x1p-11f);
    const uint32_t gradient_product_limit = tiny_limit(smaller_factor(smaller_factor(1, keep1), keep2));
    if (gradient_limit < gradient_product_limit) gradient_limit = gradient_product_limit;
    // v's side of a step (the second moment and the denominator) in float, for the vector loop's two ways.
#define SECOND_MOMENT_IN_FLOAT(g, v0, vi, denom) \
    do { \
        vi = beta2s * (v0) + keep2s * (g) * (g); \
        const float16v root_ = __builtin_elementwise_sqrt(vi); \
        const float16v scaled_ = \
            by_inverse ? __builtin_convertvector(__builtin_convertvector(root_, double16v) * inverses, float16v) \
                       : root_ / corrections; \
        denom = scaled_ + epss; \
    } while (0)
    const int double_path = bndk_subnormals_take_double_path();
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const float16v m0 = load16(m + i), v0 = load16(v + i), g0 = load16(grad + i);
        // A tiny gradient (or, with coupled decay, parameter) reaches both sides of the step; a tiny first
        // moment only m's side (the first moment and the update), a tiny second moment only v's side. The
        // dead units' parameters have tiny first moments and normal second moments: their v's side stays
        // in float, and so do the square roots and divisions, which take many times longer in double.
        int16v both = TINY16(g0, gradient_limit);
        if (coupled_decay) both |= TINY16(load16(p + i), parameter_limit);
        const int16v m_side = both | TINY16(m0, first_limit), v_side = both | TINY16(v0, second_limit);
        float16v vi, denom;
        if (!double_path || __builtin_reduce_or(m_side | v_side) == 0) {
            const float16v g = coupled_decay ? g0 + decays * load16(p + i) : g0;
            const float16v mi = m0 + (g - m0) * keep1s;
            SECOND_MOMENT_IN_FLOAT(g, v0, vi, denom);
            store16(m + i, mi);
            store16(v + i, vi);
            store16(p + i, load16(p + i) - steps * mi / denom);
        } else {  // the same operations in double, each rounded to float (above)
            DOUBLE_WAY_ONES;
            const double16v pd = WIDE16(load16(p + i)), md = WIDE16(m0);
            const double16v gd = coupled_decay ? ROUNDED16(WIDE16(g0) + ROUNDED16(splat16d((double)decay) * pd))
                                               : WIDE16(g0);
            const double16v mi = ROUNDED16(md + ROUNDED16(ROUNDED16(gd - md) * splat16d((double)keep1)));
            double16v denom_wide;
            if (__builtin_reduce_or(v_side) == 0) {
                const float16v g = __builtin_convertvector(gd, float16v);  // (exactly: gd is a float)
                SECOND_MOMENT_IN_FLOAT(g, v0, vi, denom);
                denom_wide = WIDE16(denom);
            } else {
                const double16v vi_wide = ROUNDED16(ROUNDED16(splat16d((double)beta2) * WIDE16(v0)) +
                                                    ROUNDED16(ROUNDED16(splat16d((double)keep2) * gd) * gd));
                const double16v root = ROUNDED16(__builtin_elementwise_sqrt(vi_wide));
                const double16v scaled =
                    ROUNDED16(by_inverse ? root * inverses : root / splat16d((double)correction2_sqrt));
                denom_wide = ROUNDED16(scaled + splat16d((double)eps));
                vi = __builtin_convertvector(vi_wide, float16v);
            }
            store16(m + i, __builtin_convertvector(mi, float16v));
            store16(v + i, vi);
            store16(p + i, __builtin_convertvector(pd - ROUNDED16(ROUNDED16(splat16d((double)step_size) * mi) / denom_wide),
                                                   float16v));
        }
    }
#undef SECOND_MOMENT_IN_FLOAT
    for (; i < count; i++) {
        const float g = coupled_decay ? grad[i] + decay * p[i] : grad[i];
        const float mi = m[i] + (g - m[i]) * keep1;
        const float vi = beta2 * v[i] + keep2 * g * g;
        const float root = __builtin_sqrtf(vi);
        const float denom = quotient(root, correction2_sqrt, by_inverse, inverse) + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - step_size * mi / denom;
    }
}

BNDK_CLONES
void bndk_sgd_step(float *restrict p, const float *restrict grad, float *restrict buf, int64_t count, float lr,
                   float momentum, float dampening, float weight_decay, int nesterov, int started) {
    if (buf == NULL) {
        if (weight_decay != 0)
            for (int64_t i = 0; i < count; i++) p[i] = p[i] - lr * (grad[i] + weight_decay * p[i]);
        else
            for (int64_t i = 0; i < count; i++) p[i] = p[i] - lr * grad[i];
        return;
    }
    const float keep = 1 - dampening;
    // Momentum buffers of dead units decay by `momentum` each step through the subnormal range, as Adam's
    // first moments do: vectors with a tiny value take the double way where the CPU is slow on them (see
    // Adam's step). buf is multiplied by momentum and, as the step, by lr (and momentum again with
    // Nesterov); g by keep, lr and momentum; p by weight_decay.
    const int double_path = bndk_subnormals_take_double_path();
    const uint32_t buffer_limit = tiny_limit(smaller_factor(smaller_factor(1, momentum), lr));
    const uint32_t gradient_limit = tiny_limit(smaller_factor(smaller_factor(smaller_factor(1, keep), lr), momentum));
    const uint32_t parameter_limit = tiny_limit(smaller_factor(1, weight_decay));
    const float16v lrs = splat16(lr), momentums = splat16(momentum), keeps = splat16(keep);
    const float16v decays = splat16(weight_decay);
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const float16v p0 = load16(p + i), g0 = load16(grad + i), b0 = load16(buf + i);
        int16v risky = TINY16(b0, buffer_limit) | TINY16(g0, gradient_limit);
        if (weight_decay != 0) risky |= TINY16(p0, parameter_limit);
        if (!double_path || __builtin_reduce_or(risky) == 0) {
            const float16v g = weight_decay != 0 ? g0 + decays * p0 : g0;
            const float16v b = started ? momentums * b0 + keeps * g : g;
            store16(buf + i, b);
            store16(p + i, p0 - lrs * (nesterov ? g + momentums * b : b));
        } else {  // the same operations in double, each rounded to float (see Adam's step)
            DOUBLE_WAY_ONES;
            const double16v pd = WIDE16(p0);
            const double16v g = weight_decay != 0 ? ROUNDED16(WIDE16(g0) + ROUNDED16(splat16d((double)weight_decay) * pd))
                                                  : WIDE16(g0);
            const double16v b =
                started ? ROUNDED16(ROUNDED16(splat16d((double)momentum) * WIDE16(b0)) + ROUNDED16(splat16d((double)keep) * g))
                        : g;
            const double16v step = nesterov ? ROUNDED16(g + ROUNDED16(splat16d((double)momentum) * b)) : b;
            // A first step without decay copies g into the buffer: its own bits, as the float way stores them
            // (widening would quiet a signalling NaN, and flush a subnormal where the process set DAZ).
            store16(buf + i, started || weight_decay != 0 ? __builtin_convertvector(b, float16v) : g0);
            store16(p + i, __builtin_convertvector(pd - ROUNDED16(splat16d((double)lr) * step), float16v));
        }
    }
    for (; i < count; i++) {
        const float g = weight_decay != 0 ? grad[i] + weight_decay * p[i] : grad[i];
        const float b = started ? momentum * buf[i] + keep * g : g;
        buf[i] = b;
        p[i] = p[i] - lr * (nesterov ? g + momentum * b : b);
    }
}
