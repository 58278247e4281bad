// The optimizers' per-parameter updates (see bndrop_kernels.h).
#include "bndrop_kernels.h"
#include "clones.h"

// Eight parameters at a time with explicit vectors (a scalar sqrtf call would keep the loop scalar: C's
// sqrtf may set errno), then the tail one by one: the same IEEE operations either way.
BNDK_CLONES
void bndk_adam_step(float *restrict p, const float *restrict grad, float *restrict m, float *restrict v, int64_t count,
                    float keep1, float beta2, float keep2, float eps, float step_size, float correction2_sqrt,
                    int coupled_decay, float decay) {
    const float8 keep1s = splat8f(keep1), beta2s = splat8f(beta2), keep2s = splat8f(keep2), epss = splat8f(eps);
    const float8 steps = splat8f(step_size), corrections = splat8f(correction2_sqrt), decays = splat8f(decay);
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const float8 g = coupled_decay ? load8(grad + i) + decays * load8(p + i) : load8(grad + i);
        float8 mi = load8(m + i);
        mi = mi + (g - mi) * keep1s;
        const float8 vi = beta2s * load8(v + i) + keep2s * g * g;
        const float8 denom = __builtin_elementwise_sqrt(vi) / corrections + epss;
        store8(m + i, mi);
        store8(v + i, vi);
        store8(p + i, load8(p + i) - steps * mi / denom);
    }
    for (; i < count; i++) {
        const float g = coupled_decay ? grad[i] + decay * p[i] : grad[i];
        const float mi = m[i] + (g - m[i]) * keep1;
        const float vi = beta2 * v[i] + keep2 * g * g;
        const float denom = __builtin_sqrtf(vi) / correction2_sqrt + eps;
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
