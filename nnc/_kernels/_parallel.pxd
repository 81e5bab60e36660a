# One OpenMP pool owns every thread nnc uses (README, "Backends and threads").
# Kernels ask how many threads a call of a given size deserves: one below
# the measured threshold (see _threads.pyx), the pool size above it.
from nnc._kernels._threads cimport elementwise_min_size, gemm_min_work

cdef extern from "_openmp_shim.h":
    int NNC_HAVE_OPENMP
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil
    int omp_get_thread_num() noexcept nogil
    unsigned int nnc_denormals_off() noexcept nogil
    void nnc_denormals_restore(unsigned int old) noexcept nogil


cdef inline int threads_for(double work, double threshold) noexcept nogil:
    if work < threshold:
        return 1
    return omp_get_max_threads()


cdef inline int elementwise_threads(Py_ssize_t size) noexcept nogil:
    """Threads for an elementwise pass over ``size`` elements."""
    return threads_for(<double> size, elementwise_min_size())


cdef inline int gemm_threads(double multiply_adds) noexcept nogil:
    """Threads for a matrix product of ``multiply_adds`` = m*n*k."""
    return threads_for(multiply_adds, gemm_min_work())
