"""In-place optimizer updates over a flat parameter buffer.

Every parameter and gradient of a model is a view into one flat buffer, so
one call updates the whole model.

SGD   w ← w - α g
"""
from cython cimport floating
from cython.parallel cimport prange

from nnc._kernels._parallel cimport threads_for, ELEMENTWISE_PARALLEL_MIN

include "_checks.pxi"


def sgd_update(floating[::1] w not None, const floating[::1] g not None, double lr):
    """w -= lr * g, in place."""
    check_same_shape("g", g.shape, "w", w.shape, 1)
    cdef Py_ssize_t i, size = w.shape[0]
    cdef floating* wp = &w[0]
    cdef const floating* gp = &g[0]
    cdef floating alpha = <floating> lr
    cdef int nt = threads_for(<double> size, ELEMENTWISE_PARALLEL_MIN)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        wp[i] -= alpha * gp[i]
