"""The compiled backend: thin dispatch to the Cython kernels in nnc._kernels.

Same functions and signatures as numpy_backend.NumpyBackend. Each kernel
checks shapes, dtypes and contiguity before it drops the GIL.
"""
import importlib

import numpy as np

from nnc._kernels import _blas, checks, dropout, gather, losses
from nnc._validation import as_index
from nnc.threads import cpu_has_avx2, pin_scipy_blas


def _kernel_module(name):
    """nnc._kernels.<name>, or its AVX2 build (bit-identical results, faster)
    when the CPU has AVX2 and the build made one (x86 only)."""
    if cpu_has_avx2():
        try:
            return importlib.import_module(f"nnc._kernels.{name}_avx2")
        except ImportError:
            pass
    return importlib.import_module(f"nnc._kernels.{name}")


activations = _kernel_module("activations")
batchnorm = _kernel_module("batchnorm")
dense = _kernel_module("dense")
optimizers = _kernel_module("optimizers")
gradients = _kernel_module("gradients")
VECTOR_KERNELS = (activations, batchnorm, dense, gradients, optimizers)

pin_scipy_blas()


class CythonBackend:
    """The compiled kernels. ``CythonBackend(dtype)`` binds each kernel's
    float32 or float64 specialisation directly (no dispatch per call)."""

    name = "cython"

    def __init__(self, dtype=None):
        self.dtype = None if dtype is None else np.dtype(dtype)
        if self.dtype is None:
            return
        specialisation = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
        if self.dtype not in specialisation:
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        for name in dir(type(self)):
            kernel = getattr(type(self), name)
            if hasattr(kernel, "__signatures__"):
                setattr(self, name, kernel[specialisation[self.dtype]])

    gemm = staticmethod(_blas.gemm_into)
    dense_forward = staticmethod(dense.dense_forward)
    dense_backward = staticmethod(dense.dense_backward)

    relu_forward = staticmethod(activations.relu_forward)
    relu_backward = staticmethod(activations.relu_backward)
    leaky_relu_forward = staticmethod(activations.leaky_relu_forward)
    leaky_relu_backward = staticmethod(activations.leaky_relu_backward)
    sigmoid_forward = staticmethod(activations.sigmoid_forward)
    sigmoid_backward = staticmethod(activations.sigmoid_backward)
    tanh_forward = staticmethod(activations.tanh_forward)
    tanh_backward = staticmethod(activations.tanh_backward)

    batchnorm_forward_train = staticmethod(batchnorm.batchnorm_forward_train)
    batchnorm_forward_eval = staticmethod(batchnorm.batchnorm_forward_eval)
    batchnorm_backward = staticmethod(batchnorm.batchnorm_backward)
    dropout_forward = staticmethod(dropout.dropout_forward)
    dropout_backward = staticmethod(dropout.dropout_backward)

    softmax_cross_entropy = staticmethod(losses.softmax_cross_entropy)
    mean_squared_error = staticmethod(losses.mean_squared_error)
    bce_with_logits = staticmethod(losses.bce_with_logits)
    count_correct = staticmethod(losses.count_correct)
    count_binary_correct = staticmethod(losses.count_binary_correct)
    _gather_rows = staticmethod(gather.gather_rows)

    def gather_rows(self, x, index, out):
        """out[i] = x[index[i]]; ``index`` of any integer type (the kernel
        takes int64, which the Trainer passes: no conversion per step)."""
        self._gather_rows(x, as_index(index), out)

    sgd_update = staticmethod(optimizers.sgd_update)
    momentum_update = staticmethod(optimizers.momentum_update)
    rmsprop_update = staticmethod(optimizers.rmsprop_update)
    adam_update = staticmethod(optimizers.adam_update)
    adagrad_update = staticmethod(optimizers.adagrad_update)

    segment_sum_of_squares = staticmethod(gradients.segment_sum_of_squares)
    scale = staticmethod(gradients.scale)
    clip = staticmethod(gradients.clip)
    l2_penalty = staticmethod(gradients.l2_penalty)

    def __reduce__(self):
        # kernels are compiled functions: pickle (and deepcopy) by name
        from nnc.backends import get_backend

        return get_backend, (self.name, self.dtype)

    def all_finite(self, x):
        return checks.all_finite(x.reshape(-1))
