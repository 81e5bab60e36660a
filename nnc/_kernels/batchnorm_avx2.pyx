# The batch-norm kernels again, compiled with AVX2 (see optimizers_avx2.pyx):
# bit-identical results (every sum runs down a column, one lane per column).
include "batchnorm.pyx"
