"""Kernel backends: one interface, two implementations.

``numpy``  — the reference: every formula of the lecture in plain NumPy.
``cython`` — the same functions as typed, nogil, OpenMP Cython kernels.

Both are usable in one process; a model picks one with ``backend=``.
"""
_BACKENDS = {}
NAMES = ("cython", "numpy")


def get_backend(name):
    """The backend object for ``"cython"`` or ``"numpy"`` (or a backend object)."""
    if not isinstance(name, str):
        if all(hasattr(name, f) for f in ("dense_forward", "softmax_cross_entropy")):
            return name
        raise TypeError(f"backend must be one of {NAMES} or a backend object, got {name!r}")
    if name not in NAMES:
        raise ValueError(f"backend must be one of {NAMES}, got {name!r}")
    if name not in _BACKENDS:
        if name == "numpy":
            from nnc.backends.numpy_backend import NumpyBackend as cls
        else:
            from nnc.backends.cython_backend import CythonBackend as cls
        _BACKENDS[name] = cls()
    return _BACKENDS[name]
