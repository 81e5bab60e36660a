# The whole-model gradient kernels compiled with AVX2 (see optimizers_avx2.pyx).
include "gradients.pyx"
