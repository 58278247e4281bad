// Shared by the kernel files: the clone attribute and the eight-lane vector helpers.
#ifndef BNDROP_KERNELS_CLONES_H
#define BNDROP_KERNELS_CLONES_H

#include <string.h>

// Every multiply and add rounds as written: no fused multiply-add, whichever clone runs.
#pragma STDC FP_CONTRACT OFF
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BNDK_NO_CLONES 1  // TSan-instrumented ifunc resolvers would run before TSan's runtime is set up
#endif
#endif

#if defined(__x86_64__) && !defined(BNDK_NO_CLONES)
// One copy per instruction set; an ifunc resolver picks one when the library is loaded. The AVX2 copy is
// named by its feature level, x86-64-v3 (AVX2, FMA, BMI2...), which the resolver tests feature by
// feature: "arch=haswell" would be tested as the CPU's identity (__builtin_cpu_is), so every CPU that is
// not an Intel Haswell-family core (AMD's Zen 3, Intel's hybrid cores) ran the SSE2 copy.
#define BNDK_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
// For loops of 64-bit integer multiplies (dropout's counter-based draws): AVX-512 CPUs with DQ (all of
// them but the Xeon Phi) multiply 64-bit lanes in one instruction; plain AVX-512F needs five.
#define BNDK_CLONES_INT64 __attribute__((target_clones("arch=x86-64-v4", "avx512f", "arch=x86-64-v3", "default")))
#define BNDK_HAS_CLONES 1
#else
#define BNDK_CLONES
#define BNDK_CLONES_INT64
#endif

typedef float float8 __attribute__((vector_size(32)));
typedef double double8 __attribute__((vector_size(64)));

// Macros rather than functions: a vector argument would need one calling convention per clone.
#define load8(p) ({ float8 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define store8(p, v) do { float8 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define widen8(v) __builtin_convertvector((v), double8)
#define splat8f(x) ((float8){(x), (x), (x), (x), (x), (x), (x), (x)})
#define splat8d(x) ((double8){(x), (x), (x), (x), (x), (x), (x), (x)})
// Lanes added pairwise in a fixed order: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1; for double8
// (BatchNorm's sums) and float8 (dot products) alike.
#define sum8(v) ({ __typeof__(v) w_ = (v); ((w_[0] + w_[4]) + (w_[2] + w_[6])) + ((w_[1] + w_[5]) + (w_[3] + w_[7])); })

// Sixteen lanes: one 512-bit register in the AVX-512 clone, two or four in the others.
typedef float float16v __attribute__((vector_size(64)));
typedef double double16v __attribute__((vector_size(128)));
#define load16(p) ({ float16v v_; memcpy(&v_, (p), sizeof v_); v_; })
#define store16(p, v) do { float16v s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define splat16(x) ({ float x_ = (x); (float16v){x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_}; })
#define splat16d(x) ({ double x_ = (x); (double16v){x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_, x_}; })

// ReLU's mask on vectors, as bndk_relu_select: v where mask > 0 or mask is NaN, else +0. A comparison's
// all-ones lanes clear the value's bits (C has no vector conditional).
typedef int32_t int8v __attribute__((vector_size(32)));
typedef int32_t int16v __attribute__((vector_size(64)));
#define KEEP8(v, mask) ((float8)((int8v)(v) & ~(int8v)((mask) <= splat8f(0.0f))))
#define KEEP16(v, mask) ((float16v)((int16v)(v) & ~(int16v)((mask) <= splat16(0.0f))))
#define RELU8(v) ({ float8 r_ = (v); KEEP8(r_, r_); })
#define RELU16(v) ({ float16v r_ = (v); KEEP16(r_, r_); })

#endif
