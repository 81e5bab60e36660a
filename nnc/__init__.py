"""nnc: neural networks for learning how networks are optimized.

Every formula of the optimization lecture exists twice: readable NumPy in
``nnc.backends.numpy_backend`` and a typed Cython kernel in
``nnc._kernels``; a model picks one with ``backend="numpy"|"cython"``.
"""
import os

# libgomp reads this when it loads: idle OpenMP threads sleep instead of
# spinning against the rest of the process. A user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
from nnc.threads import get_num_threads, set_num_threads, show_config  # noqa: E402
from nnc.trainer import History, Trainer  # noqa: E402
from nnc import diagnostics, playground, plotting  # noqa: E402  (matplotlib stays unimported)
from nnc.diagnostics import Diagnostics  # noqa: E402

__all__ = [
    "__version__", "callbacks", "datasets", "init", "gradcheck",
    "Dense", "BatchNorm", "Dropout", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
    "SoftmaxCrossEntropy", "MeanSquaredError", "BCEWithLogits",
    "Sequential", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Trainer", "History",
    "schedules",
    "set_num_threads", "get_num_threads", "show_config",
    "diagnostics", "Diagnostics", "playground", "plotting",
    "load", "set_seed", "get_seed", "TrainingDiverged",
]
