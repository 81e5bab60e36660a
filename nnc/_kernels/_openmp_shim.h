/* Stand-ins for the few OpenMP runtime calls nnc makes, so that the same
 * kernels build serially with a compiler that has no OpenMP (setup.py then
 * omits -fopenmp and Cython's prange pragmas are ignored). */
#ifndef NNC_OPENMP_SHIM_H
#define NNC_OPENMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define NNC_HAVE_OPENMP 1
#else
#define NNC_HAVE_OPENMP 0
static int omp_get_max_threads(void) { return 1; }
static void omp_set_num_threads(int n) { (void)n; }
static int omp_get_thread_num(void) { return 0; }
#endif
#endif
