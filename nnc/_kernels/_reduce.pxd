from cython cimport floating

cdef int column_sums(const floating* x, Py_ssize_t rows, Py_ssize_t cols,
                     floating* out) noexcept nogil

cdef int column_reduce(const floating* a, const floating* b, const floating* center,
                       Py_ssize_t rows, Py_ssize_t cols,
                       floating* sum_a, floating* sum_ab) noexcept nogil
