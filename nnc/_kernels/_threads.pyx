"""The size of nnc's one OpenMP thread pool, and when kernels use it."""
import os

cdef extern from "_openmp_shim.h":
    int NNC_HAVE_OPENMP
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil

cdef extern from *:
    """
    #ifndef NNC_NATIVE_BUILD
    #define NNC_NATIVE_BUILD 0
    #endif
    """
    int NNC_NATIVE_BUILD  # setup.py defines it as 1 for an NNC_NATIVE=1 build

# Elementwise passes (activations, optimizer updates, losses, column sums)
# run on one thread below this many elements, GEMMs below this many
# multiply-adds (m*n*k). Measured on the 2-core machine here with idle
# threads spinning briefly before they sleep (GOMP_SPINCOUNT=10000, nnc's
# default). In isolation (benchmarks/thresholds.py, threads kept awake by the
# loop) 2 threads pay from ~64k elements and a few million multiply-adds;
# in whole epochs (1 vs 2 threads, interleaved) a parallel kernel that finds
# its thread asleep pays 50-130 µs to wake it: with 2^16 elements / 2^22
# multiply-adds the batch-32 epoch of the 784-256-128-10 MLP (Adam over 235k
# parameters, 6.4M multiply-add products) ran 2-10 % slower on 2 threads
# than on 1. With 2^18 / 2^23 nothing in that batch-32 step goes parallel
# and batch 512 runs 1.6x faster on 2 threads. Threads that sleep at once
# (GOMP_SPINCOUNT=0, or OMP_WAIT_POLICY=PASSIVE set without a spin count)
# cost a wake-up every parallel kernel: then the break-even points are about
# 2^20 elements and 2^24 multiply-adds. set_parallel_thresholds changes them
# at run time.
cdef double _elementwise_min = 1 << 18
cdef double _gemm_min = 1 << 23


def _idle_threads_sleep_at_once():
    spin = os.environ.get("GOMP_SPINCOUNT")
    policy = os.environ.get("OMP_WAIT_POLICY", "").strip().upper()
    return spin is not None and spin.strip() == "0" or policy == "PASSIVE" and spin is None


if _idle_threads_sleep_at_once():
    _elementwise_min = 1 << 20
    _gemm_min = 1 << 24


cdef double elementwise_min_size() noexcept nogil:
    return _elementwise_min


cdef double gemm_min_work() noexcept nogil:
    return _gemm_min


def openmp_enabled():
    """True if the kernels were compiled with OpenMP."""
    return bool(NNC_HAVE_OPENMP)


def native_build():
    """True if the kernels were compiled for this machine's CPU only
    (``NNC_NATIVE=1``: ``-march=native``), not as a portable build."""
    return bool(NNC_NATIVE_BUILD)


def set_num_threads(int n):
    """Set the number of threads of the OpenMP pool (the calling thread's ICV)."""
    omp_set_num_threads(n)


def get_num_threads():
    """Threads a parallel kernel uses (1 when built without OpenMP)."""
    return omp_get_max_threads()


def set_parallel_thresholds(elementwise=None, gemm=None):
    """Minimum elements (elementwise kernels) and multiply-adds (GEMM) for
    a kernel to use more than one thread; None keeps the current value."""
    global _elementwise_min, _gemm_min
    if elementwise is not None:
        _elementwise_min = float(elementwise)
    if gemm is not None:
        _gemm_min = float(gemm)


def get_parallel_thresholds():
    return {"elementwise": _elementwise_min, "gemm": _gemm_min}
