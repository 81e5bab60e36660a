"""Whole-model gradient operations over the flat gradient buffer.

segment_sum_of_squares  Σ g² of each parameter (one pass; norms derive from it)
scale                   g ← c g            (clipping by global norm: c = max_norm/‖g‖)
clip                    g ← min(max(g, -v), v)
l2_penalty              g ← g + λ w; returns ½ λ Σ w²   (the lecture's λ R(w))
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

from nnc._kernels._parallel cimport elementwise_threads

include "_checks.pxi"


cdef double squares_in_double(const floating* x, Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    # 32 independent accumulators: a single chain of dependent additions
    # would wait on the adder's latency for every element. The order of the
    # additions is fixed, so the result is reproducible.
    cdef Py_ssize_t i, j, stop = first + (last - first) // 32 * 32
    cdef double acc[32]
    cdef double total = 0
    for j in range(32):
        acc[j] = 0
    for i in range(first, stop, 32):
        for j in range(32):
            acc[j] += <double> x[i + j] * x[i + j]
    for i in range(stop, last):
        total += <double> x[i] * x[i]
    for j in range(32):
        total += acc[j]
    return total


cdef double block_sum_of_squares(const floating* x, Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    """Σ x² over [first, last) in double."""
    if floating is double:
        return squares_in_double(x, first, last)
    else:
        return float_squares_in_double(x, first, last)


cdef double float_squares_in_double(const floating* x, Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    """Σ x² over [first, last) of float32 x, in double. The squares are first
    summed eight at a time in float (relative error < 1e-6), which halves the
    work of converting every square to double; a float square overflows
    above |x| ~ 1.8e19 and vanishes below ~1e-19, so a total outside a safe
    range (or NaN) is summed again in double."""
    cdef Py_ssize_t i, j, c, stop = first + (last - first) // 256 * 256
    cdef double acc[32]
    cdef float part[32]
    cdef double total
    for j in range(32):
        acc[j] = 0
    for c in range(first, stop, 256):
        for j in range(32):
            part[j] = x[c + j] * x[c + j]
        for i in range(c + 32, c + 256, 32):
            for j in range(32):
                part[j] += x[i + j] * x[i + j]
        for j in range(32):
            acc[j] += part[j]
    total = squares_in_double(x, stop, last)
    for j in range(32):
        total += acc[j]
    if not (1e-30 < total < 1e30):
        return squares_in_double(x, first, last)
    return total


cdef double sum_of_squares(const floating* x, Py_ssize_t size) noexcept nogil:
    """Σ x² in double; one contiguous block per thread, added in block order."""
    cdef int n_threads = elementwise_threads(size)
    cdef Py_ssize_t t, block
    cdef double total = 0
    cdef double* partial = NULL
    if n_threads > 1:
        partial = <double*> malloc(n_threads * sizeof(double))
    if partial == NULL:
        return block_sum_of_squares(x, 0, size)
    block = (size + n_threads - 1) // n_threads
    for t in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static"):
        partial[t] = block_sum_of_squares(x, min(size, t * block), min(size, (t + 1) * block))
    for t in range(n_threads):
        total += partial[t]
    free(partial)
    return total


def segment_sum_of_squares(const floating[::1] g not None, const int64_t[::1] offsets not None,
                           double[::1] out not None):
    """out[s] = Σ g[offsets[s]:offsets[s+1]]²; returns Σ out (= ‖g‖²)."""
    cdef Py_ssize_t s, n_segments = offsets.shape[0] - 1
    cdef double total = 0
    check_shape("out", out.shape, 1, max(n_segments, 0), 0)
    cdef Extent arrays[2]
    arrays[0] = span1(out); arrays[1] = span1(g)
    check_apart(("out", "g"), arrays, 1, 2, False)
    for s in range(n_segments):
        if not (0 <= offsets[s] <= offsets[s + 1] <= g.shape[0]):
            raise ValueError(f"offsets must rise within [0, {g.shape[0]}], got "
                             f"{offsets[s]}..{offsets[s + 1]} for segment {s}")
    with nogil:
        for s in range(n_segments):
            out[s] = sum_of_squares(&g[0] + offsets[s], offsets[s + 1] - offsets[s])
            total += out[s]
    return total


def scale(floating[::1] x not None, double factor):
    """x *= factor, in place."""
    cdef Py_ssize_t i, size = x.shape[0]
    cdef floating* xp = &x[0]
    cdef floating c = <floating> factor
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        xp[i] *= c


def clip(floating[::1] x not None, double limit):
    """x = min(max(x, -limit), limit), in place."""
    if not limit >= 0:  # NaN too
        raise ValueError(f"limit must be >= 0, got {limit}")
    cdef Py_ssize_t i, size = x.shape[0]
    cdef floating* xp = &x[0]
    cdef floating v = <floating> limit
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        if xp[i] > v:
            xp[i] = v
        elif xp[i] < -v:
            xp[i] = -v


def l2_penalty(const floating[::1] w not None, floating[::1] g not None, double lam):
    """g += lam * w; returns ½ lam Σ w² (the gradient and value of λ R(w),
    R(w) = ½ Σ w²)."""
    check_same_shape("g", g.shape, "w", w.shape, 1)
    cdef Extent arrays[2]
    arrays[0] = span1(g); arrays[1] = span1(w)
    check_apart(("g", "w"), arrays, 1, 2, True)
    cdef Py_ssize_t i, size = w.shape[0]
    cdef const floating* wp = &w[0]
    cdef floating* gp = &g[0]
    cdef floating c = <floating> lam
    cdef int nt = elementwise_threads(size)
    cdef double total
    with nogil:
        total = sum_of_squares(wp, size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        gp[i] += c * wp[i]
    return 0.5 * lam * total
