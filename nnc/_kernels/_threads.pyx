"""The size of nnc's one OpenMP thread pool."""
from nnc._kernels._parallel cimport NNC_HAVE_OPENMP, omp_get_max_threads, omp_set_num_threads


def openmp_enabled():
    """True if the kernels were compiled with OpenMP."""
    return bool(NNC_HAVE_OPENMP)


def set_num_threads(int n):
    """Set the number of threads of the OpenMP pool (the calling thread's ICV)."""
    omp_set_num_threads(n)


def get_num_threads():
    """Threads a parallel kernel uses (1 when built without OpenMP)."""
    return omp_get_max_threads()
