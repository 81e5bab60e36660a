# The parallel thresholds live in _threads (one copy for every kernel
# module); kernels read them through these functions.
cdef double elementwise_min_size() noexcept nogil
cdef double gemm_min_work() noexcept nogil
