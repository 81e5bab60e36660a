# Shape checks run before a kernel drops the GIL: kernels index without
# bounds checks, so a mismatch here must become a ValueError, never a read
# past the end of an array.

cdef inline int check_shape(str name, Py_ssize_t* shape, int ndim,
                            Py_ssize_t rows, Py_ssize_t cols) except -1:
    if shape[0] != rows or (ndim == 2 and shape[1] != cols):
        got = tuple([shape[d] for d in range(ndim)])
        want = (rows, cols)[:ndim]
        raise ValueError(f"{name} has shape {got}, expected {want}")
    return 0


cdef inline int check_same_shape(str name, Py_ssize_t* shape, str ref_name,
                                 Py_ssize_t* ref_shape, int ndim) except -1:
    cdef int d
    for d in range(ndim):
        if shape[d] != ref_shape[d]:
            raise ValueError(f"{name} has shape {tuple([shape[i] for i in range(ndim)])}, "
                             f"expected the shape of {ref_name}, "
                             f"{tuple([ref_shape[i] for i in range(ndim)])}")
    return 0
