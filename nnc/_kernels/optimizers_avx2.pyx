# The optimizer kernels again, compiled with AVX2 (setup.py adds -mavx2 to
# modules named *_avx2, on x86 only; no FMA, so every result is bit-identical
# to the baseline SSE2 build). The compiled backend uses this module when the
# CPU has AVX2: the Adam update runs about twice as fast.
include "optimizers.pyx"
