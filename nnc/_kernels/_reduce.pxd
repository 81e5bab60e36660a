from cython cimport floating

cdef int column_sums(const floating* x, Py_ssize_t rows, Py_ssize_t cols,
                     floating* out) noexcept nogil
