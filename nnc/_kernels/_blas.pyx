"""Row-major GEMM on scipy's BLAS, in nnc's one-pool threading design.

``C = alpha * op(A) @ op(B) + beta * C`` for C-contiguous arrays. BLAS is
column-major, and a row-major matrix read column-major is its transpose, so
row-major ``C = op(A) op(B)`` is column-major ``Cᵀ = op(B)ᵀ op(A)ᵀ``: the
operands are passed swapped and nothing is copied.

scipy's OpenBLAS is pinned to one thread at import (nnc/_threading.py);
large products are split here into row blocks of C, one block per OpenMP
thread, each block one single-threaded sgemm/dgemm call.
"""
from cython cimport floating
from cython.parallel cimport prange
from scipy.linalg.cython_blas cimport sgemm, dgemm

from nnc._kernels._parallel cimport gemm_threads

include "_checks.pxi"


cdef void gemm_serial(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """One BLAS call; C is m x n, op(A) is m x k, op(B) is k x n (row-major)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int i, j
    if m <= 0 or n <= 0:
        return
    if k <= 0:  # empty inner dimension: C = beta * C (BLAS rejects ld = 0)
        for i in range(m):
            for j in range(n):
                c[i * ldc + j] = 0 if beta == 0 else beta * c[i * ldc + j]
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil:
    """gemm_serial, split into row blocks of C across the pool when large."""
    cdef int n_threads = gemm_threads(<double> m * n * k)
    cdef int block, t, first, rows
    cdef const floating* a_block
    if n_threads > m:
        n_threads = m
    if n_threads <= 1:
        gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    block = (m + n_threads - 1) // n_threads
    for t in prange(n_threads, num_threads=n_threads, schedule="static"):
        first = t * block
        rows = min(block, m - first)
        if rows > 0:
            # rows first.. of op(A): rows of A, or columns of A when transposed
            a_block = a + first if trans_a else a + <Py_ssize_t> first * lda
            gemm_serial(trans_a, trans_b, rows, n, k, alpha, a_block, lda,
                        b, ldb, beta, c + <Py_ssize_t> first * ldc, ldc)


cdef Py_ssize_t gemm_block = 1 << 30  # rows / inner length per BLAS call (BLAS counts in int)


def _set_gemm_block(Py_ssize_t rows):
    """Tests: make gemm_long split at ``rows`` (returns the previous value)."""
    global gemm_block
    previous, gemm_block = gemm_block, max(1, min(rows, 1 << 30))
    return previous


cdef void gemm_long(bint trans_a, bint trans_b, Py_ssize_t m, int n, Py_ssize_t k,
                    floating alpha, const floating* a, int lda,
                    const floating* b, int ldb,
                    floating beta, floating* c, int ldc) noexcept nogil:
    """gemm for any number of rows m of C and inner length k: BLAS takes
    them as int, so beyond 2**30 they go in blocks (the inner blocks
    accumulate into C with beta = 1 after the first)."""
    cdef Py_ssize_t i = 0, p, rows, inner
    cdef const floating* a_block
    cdef const floating* b_block
    while True:
        rows = min(m - i, gemm_block)
        p = 0
        while True:
            inner = min(k - p, gemm_block)
            # op(A)[i, p] is a[i*lda + p], or a[p*lda + i] when transposed
            a_block = a + (p * lda + i if trans_a else i * lda + p)
            # op(B)[p, 0] is b[p*ldb], or b[p] when transposed
            b_block = b + (p if trans_b else p * ldb)
            gemm(trans_a, trans_b, <int> rows, n, <int> inner, alpha, a_block, lda,
                 b_block, ldb, beta if p == 0 else <floating> 1, c + i * ldc, ldc)
            p += inner
            if p >= k:
                break
        i += rows
        if i >= m:
            break


def gemm_into(const floating[:, ::1] a not None, const floating[:, ::1] b not None,
              floating[:, ::1] out not None,
              bint trans_a=False, bint trans_b=False, double alpha=1.0, double beta=0.0):
    """out = alpha * op(a) @ op(b) + beta * out, op = transpose when asked."""
    cdef Py_ssize_t m = a.shape[1] if trans_a else a.shape[0]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t k_b = b.shape[1] if trans_b else b.shape[0]
    cdef Py_ssize_t n = b.shape[0] if trans_b else b.shape[1]
    if k != k_b:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is {m}x{k}, op(b) is {k_b}x{n}")
    if out.shape[0] != m or out.shape[1] != n:
        raise ValueError(f"gemm: out has shape ({out.shape[0]}, {out.shape[1]}), expected ({m}, {n})")
    check_blas_width("a", a.shape[1])
    check_blas_width("b", b.shape[1])
    check_blas_width("out", n)
    cdef Extent arrays[3]
    arrays[0] = span2(out); arrays[1] = span2(a); arrays[2] = span2(b)
    check_apart(("out", "a", "b"), arrays, 1, 3, False)
    with nogil:
        gemm_long(trans_a, trans_b, m, <int> n, k, <floating> alpha, &a[0, 0],
                  max(1, <int> a.shape[1]), &b[0, 0], max(1, <int> b.shape[1]),
                  <floating> beta, &out[0, 0], max(1, <int> n))
