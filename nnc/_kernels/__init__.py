"""Compiled kernels of nnc (typed Cython, fused float32/float64, nogil)."""
