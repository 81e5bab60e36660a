# The activation kernels again, compiled with AVX2 (see optimizers_avx2.pyx):
# bit-identical results, eight floats a vector instead of four (sigmoid and
# tanh about twice as fast).
include "activations.pyx"
