"""nnc: neural networks for learning how networks are optimized.

Every formula of the optimization lecture exists twice: readable NumPy in
``nnc.backends.numpy_backend`` and a typed Cython kernel in
``nnc._kernels``; a model picks one with ``backend="numpy"|"cython"``.
"""
import os as _os

# libgomp reads these when it loads; a user's setting wins. Idle OpenMP
# threads sleep instead of spinning against the rest of the process, after a
# short spin (GOMP_SPINCOUNT pause loops, 0.1-0.4 ms by CPU): waking a thread
# costs 50-100 us, more than the serial kernels between two parallel GEMMs of
# a training step (batch 512 on 2 threads: 1.4x -> 1.6x faster than 1 thread).
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    _os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from nnc._version import __version__  # noqa: E402
from nnc import callbacks, datasets, init, schedules  # noqa: E402
from nnc.gradcheck import gradcheck  # noqa: E402
from nnc.layers import BatchNorm, Dense, Dropout, LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: E402
from nnc.losses import BCEWithLogits, MeanSquaredError, SoftmaxCrossEntropy  # noqa: E402
from nnc.model import Sequential  # noqa: E402
from nnc.optim import SGD, Adagrad, Adam, AdamW, RMSprop  # noqa: E402
from nnc.nan_guard import TrainingDiverged  # noqa: E402
from nnc.persistence import load  # noqa: E402
from nnc.seed import get_seed, set_seed  # noqa: E402
from nnc.standardise import Standardiser  # noqa: E402
from nnc.threads import (get_num_threads, get_parallel_thresholds,  # noqa: E402
                         set_num_threads, set_parallel_thresholds, show_config)
from nnc.trainer import History, Trainer  # noqa: E402
from nnc.threads import _clamp_environment_threads  # noqa: E402

_clamp_environment_threads()
from nnc import diagnostics, playground, plotting  # noqa: E402  (matplotlib stays unimported)
from nnc.diagnostics import Diagnostics  # noqa: E402

__all__ = [
    "__version__", "callbacks", "datasets", "init", "gradcheck",
    "Dense", "BatchNorm", "Dropout", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
    "SoftmaxCrossEntropy", "MeanSquaredError", "BCEWithLogits",
    "Sequential", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Trainer", "History",
    "schedules",
    "set_num_threads", "get_num_threads", "set_parallel_thresholds",
    "get_parallel_thresholds", "show_config",
    "diagnostics", "Diagnostics", "playground", "plotting",
    "load", "set_seed", "get_seed", "TrainingDiverged", "Standardiser",
]
