from cython cimport floating

cdef void gemm_serial(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil

cdef void gemm_long(bint trans_a, bint trans_b, Py_ssize_t m, int n, Py_ssize_t k,
                    floating alpha, const floating* a, int lda,
                    const floating* b, int ldb,
                    floating beta, floating* c, int ldc) noexcept nogil
