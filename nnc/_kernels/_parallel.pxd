# One OpenMP pool owns every thread nnc uses (DESIGN.md, "One thread pool").
# Kernels ask `threads_for(work, threshold)` how many threads a call of that
# size deserves: one below the measured threshold, the pool size above it.

cdef extern from "_openmp_shim.h":
    int NNC_HAVE_OPENMP
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil
    int omp_get_thread_num() noexcept nogil

# Elementwise passes (activations, optimizer updates, losses, column sums)
# run on one thread below this many elements: measured on 2 Zen 4 cores,
# below ~1M float32 elements forking the pool costs more than it saves.
cdef enum:
    ELEMENTWISE_PARALLEL_MIN = 1 << 20

# A GEMM is split into row blocks only above this many multiply-adds
# (m*n*k); below it one single-threaded BLAS call is faster.
cdef enum:
    GEMM_PARALLEL_MIN = 1 << 21

cdef inline int threads_for(double work, double threshold) noexcept nogil:
    if work < threshold:
        return 1
    return omp_get_max_threads()


cdef inline int elementwise_threads(Py_ssize_t size) noexcept nogil:
    """Threads for an elementwise pass over ``size`` elements."""
    return threads_for(<double> size, ELEMENTWISE_PARALLEL_MIN)
