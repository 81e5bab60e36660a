"""Cheap whole-array checks used at the Python boundary (no temporaries)."""
from cython cimport floating
from libc.math cimport isfinite


def all_finite(const floating[::1] x not None):
    """True if no element of x is NaN or ±Inf."""
    cdef Py_ssize_t i
    cdef bint ok = True
    with nogil:
        for i in range(x.shape[0]):
            if not isfinite(x[i]):
                ok = False
                break
    return ok
