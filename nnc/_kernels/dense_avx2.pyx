# The dense-layer kernels again, compiled with AVX2 (see optimizers_avx2.pyx):
# bit-identical results (the bias gradient sums down each column).
include "dense.pyx"
