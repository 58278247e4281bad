/* Internal to bndrop: the OpenBLAS functions bndrop calls, as function-pointer types.
 *
 * libbndrop.so does not link OpenBLAS: BLAS.swift loads libopenblas.so.0 with dlopen at its first use
 * (after choosing OpenBLAS's kernels) and looks these functions up with dlsym. The types are the ABI of
 * libopenblas.so.0: CBLAS with 32-bit integers (an OpenBLAS built with 64-bit integers is another
 * library, libopenblas64.so.0) and OpenBLAS's own extensions. Declared here rather than taken from
 * cblas.h, so building bndrop needs no BLAS headers and nothing can call OpenBLAS without going
 * through the loader. */
#ifndef BNDROP_COPENBLAS_SHIM_H
#define BNDROP_COPENBLAS_SHIM_H

/* CBLAS's enum values (the same in every CBLAS). */
enum {
    BNDBLAS_ROW_MAJOR = 101,
    BNDBLAS_NO_TRANS = 111,
    BNDBLAS_TRANS = 112
};

/* cblas_sgemm; the CBLAS enum parameters are passed as int, which is how C passes an enum. */
typedef void (*bndblas_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                                 const float *a, int lda, const float *b, int ldb, float beta, float *c,
                                 int ldc);
/* cblas_somatcopy (OpenBLAS's extension): b = alpha·op(a), op = transpose or not, rows × columns of a. */
typedef void (*bndblas_somatcopy_fn)(int order, int trans, int rows, int columns, float alpha, const float *a,
                                     int lda, float *b, int ldb);
/* openblas_get_corename, openblas_get_config: static text owned by OpenBLAS. */
typedef char *(*bndblas_text_fn)(void);
/* openblas_set_num_threads */
typedef void (*bndblas_set_threads_fn)(int threads);
/* openblas_get_num_threads */
typedef int (*bndblas_get_threads_fn)(void);

#endif
