// The optimizers' per-parameter updates (see bndrop_kernels.h).
#include "bndrop_kernels.h"
#include "clones.h"

#include <float.h>

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
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const float16v g = coupled_decay ? load16(grad + i) + decays * load16(p + i) : load16(grad + i);
        float16v mi = load16(m + i);
        mi = mi + (g - mi) * keep1s;
        const float16v vi = beta2s * load16(v + i) + keep2s * g * g;
        const float16v root = __builtin_elementwise_sqrt(vi);
        const float16v scaled = by_inverse
                                    ? __builtin_convertvector(__builtin_convertvector(root, double16v) * inverses, float16v)
                                    : root / corrections;
        const float16v denom = scaled + epss;
        store16(m + i, mi);
        store16(v + i, vi);
        store16(p + i, load16(p + i) - steps * mi / denom);
    }
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
    for (int64_t i = 0; i < count; i++) {
        const float g = weight_decay != 0 ? grad[i] + weight_decay * p[i] : grad[i];
        const float b = started ? momentum * buf[i] + keep * g : g;
        buf[i] = b;
        p[i] = p[i] - lr * (nesterov ? g + momentum * b : b);
    }
}
