"""Kernel backends: one interface, two implementations.

``numpy``  — the reference: every formula of the lecture in plain NumPy.
``cython`` — the same functions as typed, nogil, OpenMP Cython kernels.

Both are usable in one process; a model picks one with ``backend=``.
"""
_BACKENDS = {}
NAMES = ("cython", "numpy")


def get_backend(name, dtype=None):
    """The backend object for ``"cython"`` or ``"numpy"`` (or a backend object).

    With ``dtype``, the compiled backend's kernels are the float32 or float64
    specialisations themselves, which skips Cython's per-call dispatch on
    the argument types (a model knows its dtype)."""
    if not isinstance(name, str):
        if not all(hasattr(name, f) for f in ("dense_forward", "softmax_cross_entropy")):
            raise TypeError(f"backend must be one of {NAMES} or a backend object, got {name!r}")
        if dtype is None or getattr(name, "name", None) not in NAMES:
            return name  # a backend object used as it is
        name = name.name  # one of ours: its specialisation for dtype
    if name not in NAMES:
        raise ValueError(f"backend must be one of {NAMES}, got {name!r}")
    key = (name, None if dtype is None or name == "numpy" else str(dtype))
    if key not in _BACKENDS:
        if name == "numpy":
            from nnc.backends.numpy_backend import NumpyBackend as cls
        else:
            from nnc.backends.cython_backend import CythonBackend as cls
        _BACKENDS[key] = cls() if key[1] is None else cls(dtype)
    return _BACKENDS[key]
