"""Bundled data, synthetic data, and the build/thread configuration."""
import io

import numpy as np
import pytest

import nnc
from nnc.datasets import load_digits, make_mnist_like, train_test_split


# --- digits ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_digits(dtype):
    X, y = load_digits(dtype=dtype)
    assert X.shape == (1797, 64) and X.dtype == dtype
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # pixel counts 0..16 scaled by 1/16
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    assert set(np.unique(y).tolist()) == set(range(10))
    assert np.bincount(y).min() > 150  # roughly balanced classes
    assert X.flags.c_contiguous


def test_load_digits_default_is_float32_and_repeatable():
    X1, y1 = load_digits()
    X2, y2 = load_digits()
    assert X1.dtype == np.float32
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X1[0, 0] = 5  # a fresh array each time
    assert load_digits()[0][0, 0] != 5


def test_train_test_split():
    X, y = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, 0.2, seed=0)
    assert len(Xte) == round(0.2 * 1797) == len(yte)
    assert len(Xtr) + len(Xte) == 1797 and len(ytr) == len(Xtr)
    # a partition of the rows, with labels kept alongside their images
    both = np.concatenate([Xtr, Xte])
    assert np.unique(both, axis=0).shape == np.unique(X, axis=0).shape
    rows = {r.tobytes(): label for r, label in zip(X, y)}
    assert all(rows[r.tobytes()] == label for r, label in zip(Xte, yte))
    # same seed, same split; another seed, another split
    again = train_test_split(X, y, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], Xte)
    assert not np.array_equal(train_test_split(X, y, 0.2, seed=1)[1], Xte)


# --- synthetic MNIST-like data -----------------------------------------------

def test_make_mnist_like_shapes_and_ranges():
    X, y = make_mnist_like(n=500, seed=1)
    assert X.shape == (500, 784) and X.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert y.min() >= 0 and y.max() <= 9 and len(np.unique(y)) == 10
    X64, _ = make_mnist_like(n=20, seed=1, dtype=np.float64, n_classes=3)
    assert X64.dtype == np.float64


def test_make_mnist_like_is_deterministic_by_seed():
    X1, y1 = make_mnist_like(n=200, seed=3)
    X2, y2 = make_mnist_like(n=200, seed=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, y3 = make_mnist_like(n=200, seed=4)
    assert not np.array_equal(X1, X3)


def test_make_mnist_like_n_classes():
    _, y = make_mnist_like(n=300, seed=0, n_classes=4)
    assert set(np.unique(y).tolist()) == {0, 1, 2, 3}


def test_make_mnist_like_is_learnable():
    X, y = make_mnist_like(n=1500, seed=0)
    Xtr, Xte, ytr, yte = X[:1000], X[1000:], y[:1000], y[1000:]
    model = nnc.Sequential(nnc.Dense(784, 10), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=0.1), batch_size=50)
    trainer.fit(Xtr, ytr, epochs=5, verbose=False)
    accuracy = trainer.evaluate(Xte, yte)["accuracy"]
    assert accuracy > 0.9, accuracy  # chance is 0.1; measured 0.98


# --- configuration -----------------------------------------------------------

def test_show_config_mentions_openmp_and_blas():
    buffer = io.StringIO()
    nnc.show_config(file=buffer)
    text = buffer.getvalue()
    assert nnc.__version__ in text
    assert "OpenMP" in text
    assert "BLAS" in text
    assert f"threads: {nnc.get_num_threads()}" in text


def test_show_config_says_whether_the_build_is_portable(monkeypatch):
    from nnc._kernels import _threads
    assert isinstance(_threads.native_build(), bool)
    for native, words in ((False, "OpenMP, portable;"), (True, "for this CPU only (NNC_NATIVE=1)")):
        monkeypatch.setattr(_threads, "native_build", lambda: native)
        buffer = io.StringIO()
        nnc.show_config(file=buffer)
        assert words in buffer.getvalue()


def test_show_config_prints_to_stdout(capsys):
    nnc.show_config()
    assert "OpenMP" in capsys.readouterr().out


def test_scipy_blas_is_pinned_to_one_thread():
    from nnc.threads import blas_info
    infos = blas_info()
    assert infos, "no BLAS found by threadpoolctl"
    assert all(info["num_threads"] == 1 for info in infos)


def test_num_threads_round_trip(restore_threads):
    assert isinstance(nnc.get_num_threads(), int) and nnc.get_num_threads() >= 1
    for n in (1, 3, 2):
        nnc.set_num_threads(n)
        assert nnc.get_num_threads() == n


@pytest.mark.parametrize("user_env,expected", [
    # sleep after a short spin; parallel from 2^18 elements, 2^23 multiply-adds
    ({}, "PASSIVE 10000 262144 8388608"),
    # the user's policy, no spin limit added
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE unset 262144 8388608"),
    # threads that sleep at once: each parallel kernel pays a wake-up
    ({"GOMP_SPINCOUNT": "0"}, "PASSIVE 0 1048576 16777216"),
    ({"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE unset 1048576 16777216"),
])
def test_omp_wait_policy_default_and_user_override(user_env, expected):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user_env)
    root = os.path.dirname(os.path.dirname(os.path.abspath(nnc.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c",
                          "import nnc, os; from nnc._kernels import _threads; "
                          "t = _threads.get_parallel_thresholds(); "
                          "print(os.environ['OMP_WAIT_POLICY'], "
                          "os.environ.get('GOMP_SPINCOUNT', 'unset'), "
                          "int(t['elementwise']), int(t['gemm']))"],
                         env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == expected


def test_public_api():
    for name in nnc.__all__:
        assert hasattr(nnc, name), name
    assert isinstance(nnc.__version__, str)
