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


cdef inline int check_blas_width(str name, Py_ssize_t columns) except -1:
    """A row length BLAS can take (its sizes are C ints; any number of rows is split)."""
    if columns > 2147483647:
        raise ValueError(f"{name} has {columns} columns: at most 2**31 - 1 (BLAS counts "
                         "in 32-bit integers)")
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


# Overlap checks, also before the GIL is dropped: a kernel that writes into
# memory it has yet to read (an output that is, or shares memory with, an
# input or another output) would return garbage. Where every element is read
# before its own output element is written (elementwise kernels), an output
# may be exactly the same array as an input (in place); any other overlap is
# refused.

from libc.stdint cimport uintptr_t


ctypedef struct Extent:
    uintptr_t start
    uintptr_t stop


cdef Extent NO_ARRAY  # a None argument: overlaps nothing


cdef inline Extent span2(const floating[:, ::1] a) noexcept:
    cdef Extent e
    e.start = <uintptr_t> &a[0, 0]
    e.stop = e.start + <uintptr_t> (a.shape[0] * a.shape[1]) * sizeof(floating)
    return e


cdef inline Extent span1(const floating[::1] a) noexcept:
    cdef Extent e
    e.start = <uintptr_t> &a[0]
    e.stop = e.start + <uintptr_t> a.shape[0] * sizeof(floating)
    return e


cdef int check_apart(tuple names, Extent* arrays, int n_outputs, int n,
                     bint in_place_ok) except -1:
    """arrays[:n_outputs] are written, arrays[n_outputs:n] only read: no
    written array may overlap another array (with ``in_place_ok``, it may
    coincide exactly with an array that is only read)."""
    cdef int i, j
    cdef Extent a, b
    for i in range(n_outputs):
        a = arrays[i]
        for j in range(i + 1, n):
            b = arrays[j]
            if a.start == a.stop or b.start == b.stop or a.stop <= b.start or b.stop <= a.start:
                continue
            if in_place_ok and j >= n_outputs and a.start == b.start and a.stop == b.stop:
                continue
            raise ValueError(
                f"{names[i]} and {names[j]} share memory: the kernel would overwrite values "
                f"it has yet to read; pass "
                f"{'the same array or ' if in_place_ok and j >= n_outputs else ''}"
                "arrays that do not overlap")
    return 0
