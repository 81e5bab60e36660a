"""Column reductions of a row-major matrix whose result does not depend on
the thread count beyond rounding.

Each thread sums a fixed contiguous block of rows into its own partial; the
partials are then added in block order on one thread. For a given thread
count the result is bit-reproducible.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

from nnc._kernels._parallel cimport elementwise_threads


cdef void reduce_rows(const floating* a, const floating* b, const floating* center,
                      Py_ssize_t first, Py_ssize_t last, Py_ssize_t cols,
                      double* acc_a, double* acc_ab) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef const floating* row_a
    cdef const floating* row_b
    for j in range(cols):
        if acc_a != NULL:
            acc_a[j] = 0
        if acc_ab != NULL:
            acc_ab[j] = 0
    for i in range(first, last):
        row_a = a + i * cols
        row_b = b + i * cols
        if acc_a != NULL:
            for j in range(cols):
                acc_a[j] += row_a[j]
        if acc_ab != NULL:
            if center != NULL:
                for j in range(cols):
                    acc_ab[j] += <double> (row_a[j] - center[j]) * (row_b[j] - center[j])
            else:
                for j in range(cols):
                    acc_ab[j] += <double> row_a[j] * row_b[j]


cdef int column_reduce(const floating* a, const floating* b, const floating* center,
                       Py_ssize_t rows, Py_ssize_t cols,
                       floating* sum_a, floating* sum_ab) noexcept nogil:
    """sum_a[j] = Σ_i a_ij and sum_ab[j] = Σ_i (a_ij - c_j)(b_ij - c_j) in one
    pass (either output may be NULL; center NULL means c = 0). Sums are
    accumulated in double, so float32 results round once. Returns -1 if the
    per-thread partials cannot be allocated."""
    cdef int n_threads = elementwise_threads(rows * cols)
    cdef Py_ssize_t block, t, j
    cdef double* partial
    cdef double* part_a
    cdef double* part_ab
    cdef double total_a, total_ab
    if n_threads > rows:
        n_threads = <int> rows
    if n_threads < 1:
        n_threads = 1
    partial = <double*> malloc(2 * n_threads * cols * sizeof(double) + 1)
    if partial == NULL:
        return -1
    block = (rows + n_threads - 1) // n_threads
    if n_threads == 1:
        reduce_rows(a, b, center, 0, rows, cols,
                    partial if sum_a != NULL else NULL,
                    partial + cols if sum_ab != NULL else NULL)
    else:
        for t in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static"):
            reduce_rows(a, b, center, min(rows, t * block), min(rows, (t + 1) * block), cols,
                        partial + 2 * t * cols if sum_a != NULL else NULL,
                        partial + (2 * t + 1) * cols if sum_ab != NULL else NULL)
    for j in range(cols):
        total_a = 0
        total_ab = 0
        for t in range(n_threads):
            part_a = partial + 2 * t * cols
            part_ab = partial + (2 * t + 1) * cols
            if sum_a != NULL:
                total_a += part_a[j]
            if sum_ab != NULL:
                total_ab += part_ab[j]
        if sum_a != NULL:
            sum_a[j] = <floating> total_a
        if sum_ab != NULL:
            sum_ab[j] = <floating> total_ab
    free(partial)
    return 0


cdef int column_sums(const floating* x, Py_ssize_t rows, Py_ssize_t cols,
                     floating* out) noexcept nogil:
    """out[j] = Σ_i x[i, j]."""
    return column_reduce(x, <const floating*> NULL, <const floating*> NULL, rows, cols,
                         out, <floating*> NULL)
