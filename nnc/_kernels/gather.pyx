"""The rows of a matrix picked by an index vector: a shuffled mini-batch.

out[i, :] = x[index[i], :]

Each row is one contiguous copy; the copies are independent, so they run on
nnc's threads when the batch is large (random rows are bound by memory
latency, which two cores hide better than one).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy

from nnc._kernels._parallel cimport elementwise_threads

include "_checks.pxi"


def gather_rows(const floating[:, ::1] x not None, const long long[::1] index not None,
                floating[:, ::1] out not None):
    """out[i] = x[index[i]] for every i; every index must lie in [0, len(x))."""
    cdef Py_ssize_t n = index.shape[0], rows = x.shape[0], cols = x.shape[1], i
    check_shape("out", out.shape, 2, n, cols)
    cdef Extent arrays[2]
    arrays[0] = span2(out); arrays[1] = span2(x)
    check_apart(("out", "x"), arrays, 1, 2, False)
    for i in range(n):
        if not 0 <= index[i] < rows:
            raise IndexError(f"index[{i}] = {index[i]} is out of range for x with {rows} rows")
    if n == 0 or cols == 0:
        return
    cdef size_t row_bytes = cols * sizeof(floating)
    cdef int nt = elementwise_threads(n * cols)
    for i in prange(n, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        memcpy(&out[i, 0], &x[index[i], 0], row_bytes)
