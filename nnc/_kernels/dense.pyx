"""Fully connected layer ``Y = X W + b`` and its gradients.

Forward:  Y = X W + b                  (X: n x f_in, W: f_in x f_out)
Backward: dW = Xᵀ dY,  db = Σ_rows dY,  dX = dY Wᵀ
"""
from cython cimport floating

from nnc._kernels._blas cimport gemm_long
include "_reduce.pxi"

include "_checks.pxi"


def dense_forward(const floating[:, ::1] x not None, const floating[:, ::1] w not None,
                  const floating[::1] b, floating[:, ::1] out not None):
    """out = x @ w + b (b may be None). The bias is written first and BLAS
    adds the product onto it (beta = 1), so no separate bias pass is needed."""
    cdef Py_ssize_t n = x.shape[0], f_in = x.shape[1], f_out = w.shape[1]
    cdef Py_ssize_t i, j
    cdef bint has_bias = b is not None
    check_shape("w", w.shape, 2, f_in, f_out)
    check_shape("out", out.shape, 2, n, f_out)
    if has_bias:
        check_shape("b", b.shape, 1, f_out, 0)
    cdef Extent arrays[4]
    arrays[0] = span2(out); arrays[1] = span2(x); arrays[2] = span2(w)
    arrays[3] = span1(b) if has_bias else NO_ARRAY
    check_apart(("out", "x", "w", "b"), arrays, 1, 4, False)
    check_blas_width("x", f_in)
    check_blas_width("w", f_out)
    with nogil:
        if has_bias:
            for i in range(n):
                for j in range(f_out):
                    out[i, j] = b[j]
        gemm_long(False, False, n, <int> f_out, f_in, <floating> 1, &x[0, 0],
                  max(1, <int> f_in), &w[0, 0], max(1, <int> f_out),
                  <floating> (1 if has_bias else 0), &out[0, 0], max(1, <int> f_out))


def dense_backward(const floating[:, ::1] x not None, const floating[:, ::1] w not None,
                   const floating[:, ::1] dy not None, floating[:, ::1] dw not None,
                   floating[::1] db, floating[:, ::1] dx):
    """dw = xᵀ dy; db = column sums of dy (skipped if None); dx = dy wᵀ
    (skipped if None, as for the first layer)."""
    cdef Py_ssize_t n = x.shape[0], f_in = x.shape[1], f_out = w.shape[1]
    cdef bint has_bias = db is not None
    cdef bint has_dx = dx is not None
    cdef int status = 0
    check_shape("w", w.shape, 2, f_in, f_out)
    check_shape("dy", dy.shape, 2, n, f_out)
    check_shape("dw", dw.shape, 2, f_in, f_out)
    if has_bias:
        check_shape("db", db.shape, 1, f_out, 0)
    if has_dx:
        check_shape("dx", dx.shape, 2, n, f_in)
    cdef Extent arrays[6]
    arrays[0] = span2(dw); arrays[1] = span1(db) if has_bias else NO_ARRAY
    arrays[2] = span2(dx) if has_dx else NO_ARRAY
    arrays[3] = span2(x); arrays[4] = span2(w); arrays[5] = span2(dy)
    check_apart(("dw", "db", "dx", "x", "w", "dy"), arrays, 3, 6, False)
    check_blas_width("x", f_in)
    check_blas_width("w", f_out)
    with nogil:
        gemm_long(True, False, f_in, <int> f_out, n, <floating> 1, &x[0, 0],
                  max(1, <int> f_in), &dy[0, 0], max(1, <int> f_out), <floating> 0,
                  &dw[0, 0], max(1, <int> f_out))
        if has_bias:
            status = column_sums(&dy[0, 0], n, f_out, &db[0])
        if has_dx:
            gemm_long(False, True, n, <int> f_in, f_out, <floating> 1, &dy[0, 0],
                      max(1, <int> f_out), &w[0, 0], max(1, <int> f_out), <floating> 0,
                      &dx[0, 0], max(1, <int> f_in))
    if status != 0:
        raise MemoryError("dense_backward: could not allocate per-thread partial sums")
