import COpenBLAS

/// The one door to BLAS: every matrix product of the library goes through here, so choosing the BLAS
/// library, its kernels and its threads is decided in one place.
enum BLAS {
    /// C = alpha·op(A)·op(B) + beta·C on row-major matrices, op(X) = Xᵀ when `trans…` is true.
    /// Dimensions were checked to fit BLAS's 32-bit integers when the layer was built.
    @inline(__always)
    static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                      c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(truncatingIfNeeded: m), Int32(truncatingIfNeeded: n), Int32(truncatingIfNeeded: k),
                    alpha, a, Int32(truncatingIfNeeded: lda), b, Int32(truncatingIfNeeded: ldb), beta, c,
                    Int32(truncatingIfNeeded: ldc))
    }
}
