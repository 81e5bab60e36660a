"""Inverted dropout: in training each unit is kept with probability 1-p and
scaled by 1/(1-p), so evaluation (the identity) sees the same expected value.

keep_ij = [u_ij ≥ p] with u ~ U[0, 1) drawn by the caller from the model's
generator (so both backends see the same mask); y = x · keep / (1-p).
"""
from cython cimport floating
from cython.parallel cimport prange

from nnc._kernels._parallel cimport elementwise_threads

include "_checks.pxi"


def dropout_forward(const floating[:, ::1] x not None, const floating[:, ::1] u not None,
                    double p, floating[:, ::1] out not None):
    """Inverted dropout: keep where u ≥ p, scaled by 1/(1-p); u ~ U[0, 1)."""
    if not 0 <= p < 1:
        raise ValueError(f"p must lie in [0, 1), got {p}")
    check_same_shape("u", u.shape, "x", x.shape, 2)
    check_same_shape("out", out.shape, "x", x.shape, 2)
    cdef Extent arrays[3]
    arrays[0] = span2(out); arrays[1] = span2(x); arrays[2] = span2(u)
    check_apart(("out", "x", "u"), arrays, 1, 3, True)
    cdef Py_ssize_t i, size = x.shape[0] * x.shape[1]
    cdef const floating* xp = &x[0, 0]
    cdef const floating* up = &u[0, 0]
    cdef floating* yp = &out[0, 0]
    cdef floating keep_scale = <floating> (1 / (1 - p)), threshold = <floating> p
    cdef floating scaled
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        # x read unconditionally: a vector blend instead of a random branch
        scaled = xp[i] * keep_scale
        yp[i] = scaled if up[i] >= threshold else 0


def dropout_backward(const floating[:, ::1] dy not None, const floating[:, ::1] u not None,
                     double p, floating[:, ::1] dx not None):
    """dx = dy · mask / (1-p), the same mask as the forward pass."""
    check_same_shape("dx", dx.shape, "dy", dy.shape, 2)
    cdef Extent arrays[3]
    arrays[0] = span2(dx); arrays[1] = span2(dy); arrays[2] = span2(u)
    check_apart(("dx", "dy", "u"), arrays, 1, 3, True)
    dropout_forward(dy, u, p, dx)
