"""Arrays reused from step to step.

A training step asks for its temporaries by name and shape; the first call
allocates, every later call with the same shape returns the same array. With
the full batch and the last short batch both cached, a steady-state training
step allocates no NumPy array at all (tests/test_benchmark_and_memory.py checks it).
"""
from collections import OrderedDict

import numpy as np


class Workspace:
    """Named scratch arrays of one dtype, a few shapes per name (least
    recently used shapes are dropped, so predicting on many batch sizes
    cannot grow memory without bound)."""

    shapes_per_name = 4

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self._arrays = {}

    def get(self, name, shape, dtype=None):
        """An array of this shape for ``name``; contents are undefined."""
        by_shape = self._arrays.get(name)
        if by_shape is None:
            by_shape = self._arrays[name] = OrderedDict()
        array = by_shape.get(shape)
        if array is None:
            array = np.empty(shape, dtype=self.dtype if dtype is None else dtype)
            by_shape[shape] = array
            if len(by_shape) > self.shapes_per_name:
                by_shape.popitem(last=False)
        elif len(by_shape) > 1:
            by_shape.move_to_end(shape)
        return array

    def clear(self):
        self._arrays.clear()
