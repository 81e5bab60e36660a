"""Shared fixtures and helpers for the nnc test suite."""
import numpy as np
import pytest

import nnc
from nnc.backends import get_backend

BACKENDS = ("cython", "numpy")
DTYPES = (np.float32, np.float64)


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def cy():
    return get_backend("cython")


@pytest.fixture
def ref():
    return get_backend("numpy")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def restore_threads():
    """Restore nnc's OpenMP pool size after a test that changes it."""
    before = nnc.get_num_threads()
    yield before
    nnc.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_split():
    X, y = nnc.datasets.load_digits()
    return nnc.datasets.train_test_split(X, y, 0.2, seed=0)


def small_classifier(backend="cython", dtype="float32", seed=0, n_in=4, n_hidden=5,
                     n_out=3):
    return nnc.Sequential(nnc.Dense(n_in, n_hidden), nnc.ReLU(), nnc.Dense(n_hidden, n_out),
                          dtype=dtype, backend=backend, seed=seed)


def weights_snapshot(model):
    return model.flat_params.copy()
