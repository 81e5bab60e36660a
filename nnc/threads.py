"""nnc's one thread pool, and what the build and the BLAS look like.

OpenMP owns every thread nnc uses: ``set_num_threads`` sizes that pool, and
scipy's OpenBLAS (called by the GEMM kernels) is pinned to one thread once,
when the compiled backend loads, so BLAS threads never fight OpenMP threads.
"""
import os
import warnings

from nnc._validation import check_float, check_int

MAX_THREADS = 1 << 12


def _kernels_threads():
    from nnc._kernels import _threads

    return _threads


def set_num_threads(n):
    """Use ``n`` threads in nnc's kernels (the OpenMP pool of the calling
    thread). ``OMP_NUM_THREADS`` sets the starting value."""
    n = check_int(n, "the number of threads n", low=1, high=MAX_THREADS)
    _kernels_threads().set_num_threads(n)


def _clamp_environment_threads():
    """OMP_NUM_THREADS is read by OpenMP, unchecked: 100000 crashed the first
    parallel kernel (thread creation failed). Its first level is held to
    ``MAX_THREADS``, as ``set_num_threads`` is, before OpenMP reads it (at
    the first kernel; importing nnc loads no kernel)."""
    levels = os.environ.get("OMP_NUM_THREADS", "").split(",")
    first = levels[0].strip()
    if first.isascii() and first.isdigit() and int(first) > MAX_THREADS:
        warnings.warn(f"OMP_NUM_THREADS asks for {first} threads; nnc uses at most "
                      f"{MAX_THREADS}", RuntimeWarning, stacklevel=3)
        os.environ["OMP_NUM_THREADS"] = ",".join([str(MAX_THREADS)] + levels[1:])


def get_num_threads():
    """Threads nnc's parallel kernels use (1 when built without OpenMP)."""
    return _kernels_threads().get_num_threads()


def set_parallel_thresholds(elementwise=None, gemm=None):
    """The sizes from which a kernel uses more than one thread: ``elementwise``
    elements, ``gemm`` multiply-adds (m·n·k) of a matrix product; None keeps
    a value. Below them one thread is faster (measured by
    ``benchmarks/thresholds.py``); 0 runs every kernel threaded, to watch
    what the threshold saves. Returns the previous values."""
    previous = get_parallel_thresholds()
    values = {name: check_float(value, name, low=0)
              for name, value in (("elementwise", elementwise), ("gemm", gemm))
              if value is not None}
    _kernels_threads().set_parallel_thresholds(**values)
    return previous


def get_parallel_thresholds():
    """{"elementwise": elements, "gemm": multiply-adds}: see set_parallel_thresholds."""
    return dict(_kernels_threads().get_parallel_thresholds())


def cpu_has_avx2():
    """True if the CPU (and OS) support AVX2, as numpy detects it."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return False
    return bool(__cpu_features__.get("AVX2", False))


def _is_scipy_blas(lib):
    path = os.path.normcase(lib.filepath or "")
    parts = path.replace("\\", "/").split("/")
    return any(part.startswith("scipy") for part in parts[:-1])


def pin_scipy_blas():
    """Pin scipy's BLAS (the one cython_blas calls) to one thread. Where
    scipy shares a system BLAS with numpy, that library is pinned."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's BLAS)
    from threadpoolctl import ThreadpoolController

    blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    chosen = [lib for lib in blas if _is_scipy_blas(lib)] or blas
    for lib in chosen:
        lib.set_num_threads(1)
    return chosen


def blas_info():
    """threadpoolctl's view of scipy's BLAS: a list of dicts."""
    return [lib.info() for lib in pin_scipy_blas()]


def show_config(file=None):
    """Print nnc's version, build and thread configuration (to ``file``, a
    writable text stream; stdout by default)."""
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"file must be a writable text stream (e.g. sys.stderr), got {file!r}")
    import numpy
    import scipy

    from nnc._version import __version__

    lines = [f"nnc {__version__}", f"numpy {numpy.__version__}, scipy {scipy.__version__}"]
    try:
        threads = _kernels_threads()
    except ImportError as exc:
        lines.append(f"compiled kernels: NOT AVAILABLE ({exc}); only backend='numpy' works")
    else:
        from nnc.backends.cython_backend import VECTOR_KERNELS

        modules = ", ".join(m.__name__.rsplit(".", 1)[-1] for m in VECTOR_KERNELS)
        native = getattr(threads, "native_build", None)  # (kernels compiled before native_build existed)
        target = ("for this CPU only (NNC_NATIVE=1)" if native is not None and native()
                  else "portable")
        lines.append(f"compiled kernels: built {'with' if threads.openmp_enabled() else 'WITHOUT'} "
                     f"OpenMP, {target}; in use: {modules}")
        lines.append(f"threads: {threads.get_num_threads()} (OpenMP pool; "
                     f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
                     f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
                     f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'unset')})")
        for info in blas_info():
            lines.append(
                f"BLAS: {info.get('internal_api')} {info.get('version')}, kernel "
                f"{info.get('architecture')}, {info.get('num_threads')} thread(s) "
                f"[{info.get('filepath')}]"
            )
    print("\n".join(lines), file=file)
