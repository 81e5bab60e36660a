"""Reductions whose result does not depend on the thread count beyond rounding.

Each thread sums a fixed contiguous block of rows into its own partial; the
partials are then added in block order on one thread. For a given thread
count the result is bit-reproducible.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

from nnc._kernels._parallel cimport threads_for, ELEMENTWISE_PARALLEL_MIN


cdef inline void add_rows(const floating* x, Py_ssize_t first, Py_ssize_t last,
                          Py_ssize_t cols, floating* acc) noexcept nogil:
    cdef Py_ssize_t i, j
    for j in range(cols):
        acc[j] = 0
    for i in range(first, last):
        for j in range(cols):
            acc[j] += x[i * cols + j]


cdef int column_sums(const floating* x, Py_ssize_t rows, Py_ssize_t cols,
                     floating* out) noexcept nogil:
    """out[j] = Σ_i x[i, j] for a row-major rows x cols matrix. Returns -1 on
    allocation failure."""
    cdef int n_threads = threads_for(<double> rows * cols, ELEMENTWISE_PARALLEL_MIN)
    cdef Py_ssize_t block, t, j, first, last
    cdef floating* partial
    if n_threads > rows:
        n_threads = <int> rows
    if n_threads <= 1:
        add_rows(x, 0, rows, cols, out)
        return 0
    partial = <floating*> malloc(n_threads * cols * sizeof(floating))
    if partial == NULL:
        return -1
    block = (rows + n_threads - 1) // n_threads
    for t in prange(n_threads, num_threads=n_threads, schedule="static"):
        first = t * block
        last = min(rows, first + block)
        add_rows(x, first, last, cols, partial + t * cols)
    for j in range(cols):
        out[j] = partial[j]
    for t in range(1, n_threads):
        for j in range(cols):
            out[j] += partial[t * cols + j]
    free(partial)
    return 0
