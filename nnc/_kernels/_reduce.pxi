"""Column reductions of a row-major matrix whose result does not depend on
the thread count beyond rounding.

Each thread sums a fixed contiguous block of rows into its own partial; the
partials are then added in block order on one thread. For a given thread
count the result is bit-reproducible, and the same in the baseline and
the AVX2 build (every sum runs down one column, one vector lane per column).

Included (not cimported) by the kernels that reduce, so that their AVX2
builds compile these loops with AVX2 too.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

from nnc._kernels._parallel cimport elementwise_threads


cdef void reduce_rows(const floating* a, const floating* b, const floating* center,
                      Py_ssize_t first, Py_ssize_t last, Py_ssize_t cols,
                      double* acc_a, double* acc_ab) noexcept nogil:
    # rows are taken four at a time: the double accumulators are read and
    # written once per four rows instead of once per row (2x faster)
    cdef Py_ssize_t i, j
    cdef const floating* a0
    cdef const floating* a1
    cdef const floating* a2
    cdef const floating* a3
    cdef const floating* b0
    cdef const floating* b1
    cdef const floating* b2
    cdef const floating* b3
    for j in range(cols):
        if acc_a != NULL:
            acc_a[j] = 0
        if acc_ab != NULL:
            acc_ab[j] = 0
    i = first
    while i < last:
        a0, b0 = a + i * cols, b + i * cols
        if i + 4 > last:  # one row
            if acc_a != NULL:
                if center != NULL:
                    for j in range(cols):
                        acc_a[j] += <double> (a0[j] - center[j])
                else:
                    for j in range(cols):
                        acc_a[j] += a0[j]
            if acc_ab != NULL:
                if center != NULL:
                    for j in range(cols):
                        acc_ab[j] += <double> (a0[j] - center[j]) * (b0[j] - center[j])
                else:
                    for j in range(cols):
                        acc_ab[j] += <double> a0[j] * b0[j]
            i += 1
            continue
        a1, a2, a3 = a0 + cols, a0 + 2 * cols, a0 + 3 * cols
        b1, b2, b3 = b0 + cols, b0 + 2 * cols, b0 + 3 * cols
        if acc_a != NULL:
            if center != NULL:
                for j in range(cols):
                    acc_a[j] += ((<double> (a0[j] - center[j]) + <double> (a1[j] - center[j]))
                                 + (<double> (a2[j] - center[j]) + <double> (a3[j] - center[j])))
            else:
                for j in range(cols):
                    acc_a[j] += (<double> a0[j] + a1[j]) + (<double> a2[j] + a3[j])
        if acc_ab != NULL:
            if center != NULL:
                for j in range(cols):
                    acc_ab[j] += ((<double> (a0[j] - center[j]) * (b0[j] - center[j])
                                   + <double> (a1[j] - center[j]) * (b1[j] - center[j]))
                                  + (<double> (a2[j] - center[j]) * (b2[j] - center[j])
                                     + <double> (a3[j] - center[j]) * (b3[j] - center[j])))
            else:
                for j in range(cols):
                    acc_ab[j] += ((<double> a0[j] * b0[j] + <double> a1[j] * b1[j])
                                  + (<double> a2[j] * b2[j] + <double> a3[j] * b3[j]))
        i += 4


cdef int column_reduce(const floating* a, const floating* b, const floating* center,
                       Py_ssize_t rows, Py_ssize_t cols,
                       floating* sum_a, floating* sum_ab,
                       double* exact_a, double* exact_ab) noexcept nogil:
    """sum_a[j] = Σ_i (a_ij - c_j) and sum_ab[j] = Σ_i (a_ij - c_j)(b_ij - c_j)
    in one pass (any output may be NULL; center NULL means c = 0). Sums are
    accumulated in double, so float32 results round once; ``exact_a`` and
    ``exact_ab`` receive the double sums themselves. Returns -1 if the
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
    cdef bint want_a = sum_a != NULL or exact_a != NULL
    cdef bint want_ab = sum_ab != NULL or exact_ab != NULL
    block = (rows + n_threads - 1) // n_threads
    if n_threads == 1:
        reduce_rows(a, b, center, 0, rows, cols,
                    partial if want_a else NULL,
                    partial + cols if want_ab else NULL)
    else:
        for t in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static"):
            reduce_rows(a, b, center, min(rows, t * block), min(rows, (t + 1) * block), cols,
                        partial + 2 * t * cols if want_a else NULL,
                        partial + (2 * t + 1) * cols if want_ab else NULL)
    for j in range(cols):
        total_a = 0
        total_ab = 0
        for t in range(n_threads):
            part_a = partial + 2 * t * cols
            part_ab = partial + (2 * t + 1) * cols
            if want_a:
                total_a += part_a[j]
            if want_ab:
                total_ab += part_ab[j]
        if sum_a != NULL:
            sum_a[j] = <floating> total_a
        if sum_ab != NULL:
            sum_ab[j] = <floating> total_ab
        if exact_a != NULL:
            exact_a[j] = total_a
        if exact_ab != NULL:
            exact_ab[j] = total_ab
    free(partial)
    return 0


cdef int column_sums(const floating* x, Py_ssize_t rows, Py_ssize_t cols,
                     floating* out) noexcept nogil:
    """out[j] = Σ_i x[i, j]."""
    return column_reduce(x, <const floating*> NULL, <const floating*> NULL, rows, cols,
                         out, <floating*> NULL, <double*> NULL, <double*> NULL)
