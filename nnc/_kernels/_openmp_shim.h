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
static inline int omp_get_max_threads(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
static inline int omp_get_thread_num(void) { return 0; }
#endif

/* Flush denormal floats to zero (x86 MXCSR FTZ+DAZ) for the duration of a
 * kernel, on the calling thread, and restore the caller's mode afterwards.
 * Optimizer state of a weight whose gradient stays zero decays
 * geometrically into the denormal range, where x86 arithmetic is ~100x
 * slower: without this an Adam step over such a model slowed 20x. */
#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
static inline unsigned int nnc_denormals_off(void) {
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040);
    return old;
}
static inline void nnc_denormals_restore(unsigned int old) { _mm_setcsr(old); }
#else
static inline unsigned int nnc_denormals_off(void) { return 0; }
static inline void nnc_denormals_restore(unsigned int old) { (void)old; }
#endif
#endif
