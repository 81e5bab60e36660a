"""Data sets: the bundled 8x8 digits, synthetic MNIST-shaped data, and
MNIST / Fashion-MNIST (downloaded once and cached; see ``nnc.datasets.mnist``).

``load_digits`` reads the copy bundled with nnc (see DIGITS.md beside this
file for its source and licence), so demos and tests run offline.
"""
import os

import numpy as np

from nnc._validation import as_array, check_dtype, check_float, check_int, check_seed, int_text
from nnc.datasets.mnist import load_fashion_mnist, load_mnist  # noqa: F401

_HERE = os.path.dirname(os.path.abspath(__file__))


def load_digits(dtype=np.float32):
    """The UCI optical-recognition handwritten digits, as used by
    scikit-learn: 1797 images of 8x8 pixels, 10 classes.

    Returns ``(X, y)``: X of shape (1797, 64) with pixel counts 0..16 scaled
    to [0, 1], y of shape (1797,) with int64 labels 0..9.
    """
    dtype = check_dtype(dtype)
    with np.load(os.path.join(_HERE, "digits.npz"), allow_pickle=False) as data:
        images, target = data["images"], data["target"]
    X = images.reshape(len(images), -1).astype(dtype) / 16
    return X, target.astype(np.int64)


def train_test_split(X, y, test_fraction=0.2, seed=0):
    """Shuffle once with ``seed`` and split off ``test_fraction`` of the
    samples: returns ``X_train, X_test, y_train, y_test``."""
    X, y = as_array(X, "X"), as_array(y, "y")
    for name, array in (("X", X), ("y", y)):
        if array.ndim == 0:
            raise ValueError(f"{name} must be an array with one entry per sample, "
                             f"got {array!r:.60}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    if len(X) < 2:
        raise ValueError(f"X has {len(X)} sample(s): a split needs at least 2")
    seed = seed if seed is None else check_seed(seed)
    test_fraction = check_float(test_fraction, "test_fraction", low=0, high=1,
                                low_open=True, high_open=True)
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = max(1, int(round(test_fraction * len(X))))
    if n_test >= len(X):
        raise ValueError(f"test_fraction={test_fraction} leaves no training samples out of "
                         f"{len(X)}: expected a smaller fraction")
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


#: make_mnist_like's most classes (each draws a pattern of 784 pixels)
MAX_CLASSES = 1000


def make_mnist_like(n=60000, seed=0, n_classes=10, dtype=np.float32):
    """Synthetic MNIST-shaped data: ``n`` images of 28x28 = 784 pixels in
    [0, 1], ``n_classes`` learnable classes (2 to MAX_CLASSES).

    Each class is a random pattern of soft strokes; a sample is its class
    pattern blended with a second class's pattern, rescaled and noised, so
    a linear model does well and a hidden layer does better. Meant for
    timing and for tests, not as a stand-in for real MNIST accuracy.
    """
    n = check_int(n, "n", low=1)
    n_classes = check_int(n_classes, "n_classes", low=2, high=MAX_CLASSES)
    dtype = check_dtype(dtype)
    rng = np.random.default_rng(seed if seed is None else check_seed(seed))
    grid = np.stack(np.meshgrid(np.arange(28), np.arange(28), indexing="ij"), -1).reshape(-1, 2)
    prototypes = np.zeros((n_classes, 784))
    for c in range(n_classes):
        for _ in range(6):  # six gaussian strokes per class
            centre = rng.uniform(5, 23, size=2)
            width = rng.uniform(1.5, 3.5)
            prototypes[c] += np.exp(-((grid - centre) ** 2).sum(1) / (2 * width ** 2))
        prototypes[c] /= prototypes[c].max()
    try:
        y = rng.integers(0, n_classes, size=n)
        other = (y + rng.integers(1, n_classes, size=n)) % n_classes
        mix = rng.uniform(0.0, 0.45, size=(n, 1))
        X = (1 - mix) * prototypes[y] + mix * prototypes[other]
    except (ValueError, MemoryError) as exc:  # NumPy's "array is too big"
        raise MemoryError(f"n={int_text(n)}: that many samples of 784 pixels do not fit in "
                          f"memory ({exc})") from None
    X *= rng.uniform(0.7, 1.2, size=(n, 1))
    X += rng.normal(0.0, 0.25, size=X.shape)
    np.clip(X, 0.0, 1.0, out=X)
    return X.astype(dtype), y.astype(np.int64)
