"""Same seed, same thread count: bit-identical runs. Another thread count:
equal up to the rounding of the reductions. nnc.set_seed as the default."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import nnc
from nnc._kernels import _threads


@pytest.fixture
def default_seed():
    yield
    nnc.set_seed(None)


def small_run(backend="cython", seed=0, X=None, y=None, epochs=2):
    if X is None:
        X, y = nnc.datasets.load_digits()
        X, y = X[:200], y[:200]
    model = nnc.Sequential(nnc.Dense(64, 24, bias=False), nnc.BatchNorm(24), nnc.ReLU(),
                           nnc.Dropout(0.2), nnc.Dense(24, 12), nnc.Tanh(), nnc.Dense(12, 10),
                           backend=backend, seed=seed)
    trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-2), batch_size=32, clip_norm=2.0)
    history = trainer.fit(X, y, epochs=epochs, validation_data=(X[:50], y[:50]), verbose=False)
    return model, history


def fingerprint(model, history):
    digest = hashlib.sha256(model.flat_params.tobytes())
    for layer in model.layers:
        for name in sorted(layer.buffers):
            digest.update(layer.buffers[name].tobytes())
    digest.update(repr(history.steps).encode())
    digest.update(repr(history.epochs).encode())
    return digest.hexdigest()


def test_same_seed_gives_bit_identical_runs(backend_name):
    first, second = small_run(backend_name), small_run(backend_name)
    assert first[1].steps == second[1].steps and first[1].epochs == second[1].epochs
    assert fingerprint(*first) == fingerprint(*second)
    assert fingerprint(*small_run(backend_name, seed=1)) != fingerprint(*first)


def test_same_seed_is_bit_identical_across_processes(tmp_path):
    # the child imports the same nnc as this process (the installed one in
    # CI, where a source checkout in the working folder has no kernels)
    tests = os.path.dirname(os.path.abspath(__file__))
    nnc_home = os.path.dirname(os.path.dirname(os.path.abspath(nnc.__file__)))
    code = (f"import nnc, sys; sys.path.insert(0, {tests!r}); "
            "from test_reproducibility import small_run, fingerprint; "
            "print(fingerprint(*small_run()))")
    env = dict(os.environ, PYTHONHASHSEED="12345",
               PYTHONPATH=os.pathsep.join([nnc_home, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == fingerprint(*small_run())


def test_set_seed_is_the_default_seed(default_seed):
    def build(seed=None):
        return nnc.Sequential(nnc.Dense(8, 4), nnc.ReLU(), nnc.Dense(4, 2), seed=seed)

    nnc.set_seed(3)
    assert nnc.get_seed() == 3
    a, b = build(), build()
    assert a.seed == 3 and np.array_equal(a.flat_params, b.flat_params)
    assert np.array_equal(a.flat_params, build(3).flat_params)
    assert not np.array_equal(build(4).flat_params, a.flat_params)  # explicit seed wins
    assert fingerprint(*small_run(seed=None)) == fingerprint(*small_run(seed=3))
    nnc.set_seed(None)
    assert build().seed is None
    assert not np.array_equal(build().flat_params, build().flat_params)  # fresh entropy
    with pytest.raises(ValueError, match="seed"):
        nnc.set_seed(-1)
    with pytest.raises(TypeError, match="seed"):
        nnc.set_seed(1.5)


def run_with_threads(threads, make_model, X, y, optimizer):
    nnc.set_num_threads(threads)
    model = make_model()
    trainer = nnc.Trainer(model, optimizer=optimizer, batch_size=1024)
    trainer.fit(X, y, epochs=1, verbose=False)
    return model, trainer.history


@pytest.mark.skipif(not _threads.openmp_enabled(), reason="built without OpenMP")
def test_one_and_two_threads_agree_after_an_epoch(restore_threads):
    """Big enough that the kernels go parallel at the default thresholds:
    1024x1024 activations (elementwise), 1024*1100*1024 multiply-adds (GEMM)."""
    batch, features, hidden = 1024, 1100, 1024
    limits = getattr(_threads, "get_parallel_thresholds", lambda: None)()
    if limits is not None:
        assert batch * hidden >= limits["elementwise"]
        assert batch * features * hidden >= limits["gemm"]
    rng = np.random.default_rng(0)
    X = rng.random((2 * batch, features), dtype=np.float32)
    y = rng.integers(0, 10, 2 * batch)

    def make_model():
        return nnc.Sequential(nnc.Dense(features, hidden, bias=False), nnc.BatchNorm(hidden),
                              nnc.ReLU(), nnc.Dense(hidden, 10), seed=0)

    one = run_with_threads(1, make_model, X, y, nnc.SGD(0.05, momentum=0.9))
    two = run_with_threads(2, make_model, X, y, nnc.SGD(0.05, momentum=0.9))
    np.testing.assert_allclose(two[0].flat_params, one[0].flat_params, rtol=0, atol=1e-6)
    for a, b in zip(one[0].layers, two[0].layers):
        for name in a.buffers:
            np.testing.assert_allclose(b.buffers[name], a.buffers[name], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(two[1].steps["loss"], one[1].steps["loss"], rtol=1e-6)
    np.testing.assert_allclose(two[1].steps["grad_norm"], one[1].steps["grad_norm"], rtol=1e-6)


@pytest.mark.skipif(not _threads.openmp_enabled()
                    or not hasattr(_threads, "set_parallel_thresholds"),
                    reason="needs OpenMP and run-time parallel thresholds")
def test_every_kernel_parallel_agrees_with_one_thread(restore_threads):
    """With the thresholds at 1 every kernel (losses, batch-norm, dropout,
    optimizer, reductions) splits its work, on a small model."""
    before = _threads.get_parallel_thresholds()
    _threads.set_parallel_thresholds(elementwise=1, gemm=1)
    try:
        X, y = nnc.datasets.load_digits()
        runs = []
        for threads in (1, 2):
            nnc.set_num_threads(threads)
            runs.append(small_run(X=X[:256], y=y[:256], epochs=1))
    finally:
        _threads.set_parallel_thresholds(**before)
    (m1, h1), (m2, h2) = runs
    np.testing.assert_allclose(m2.flat_params, m1.flat_params, rtol=0, atol=1e-6)
    np.testing.assert_allclose(h2.steps["loss"], h1.steps["loss"], rtol=1e-6)
