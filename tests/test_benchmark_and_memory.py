"""The benchmark entry point (smoke run, no timing assertions) and the
zero-allocation steady state of the compiled backend (issue 5)."""
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import nnc
from nnc import benchmark


def test_benchmark_smoke_run_writes_every_field(tmp_path):
    result = benchmark.run_sweep(n_samples=96, sizes=(784, 16, 8, 10), batch_sizes=(32,),
                                 batchnorm=(False, True), threads=(1,), repeats=1, tiny_steps=10,
                                 progress=False)
    paths = benchmark.write_results(result, str(tmp_path))
    data = json.loads(open(paths["json"]).read())
    assert set(data) == {"machine", "setup", "rows", "tiny"}
    assert len(data["rows"]) == 2
    for row in data["rows"]:
        assert {"batch_size", "batchnorm", "threads", "seconds", "ratio_to_nnc"} <= set(row)
        for name in ("nnc", "nnc-numpy", "gemm-floor"):
            assert row["seconds"][name] > 0
        assert row["ratio_to_nnc"]["nnc"] == 1.0
    assert "numpy-mlp" in data["rows"][0]["seconds"]  # the plain MLP has no batch-norm variant
    assert set(data["tiny"]) == {"batch_1_us_per_step", "batch_16_us_per_step"}
    assert "gemm-floor / nnc" in open(paths["markdown"]).read()


def test_gemm_floor_runs_on_one_blas_thread_even_alone():
    """The floor is "the step's matmuls through the same single-threaded BLAS"
    even when nnc's compiled backend (which pins scipy's BLAS) never loaded,
    e.g. ``--contenders gemm-floor,torch``. A fresh process, where OpenBLAS
    starts with one thread per core."""
    code = """
import numpy as np
from threadpoolctl import ThreadpoolController
from nnc import benchmark
from nnc.threads import _is_scipy_blas
X = np.zeros((64, 784), np.float32); y = np.zeros(64, np.int64)
benchmark._epoch_runner("gemm-floor", (784, 16, 10), X, y, 32, False, 1)()
print([lib.num_threads for lib in ThreadpoolController().lib_controllers
       if lib.user_api == "blas" and _is_scipy_blas(lib)])
"""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "", "OMP_NUM_THREADS": "4"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert out.strip() == "[1]"


def test_step_profile_script_runs():
    """benchmarks/step_profile.py times the trainer's private parts by name;
    run it so a renamed part breaks a test rather than the script."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "step_profile.py"),
                          "--batch-sizes", "2"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "batch    2:" in out.stdout and "step/floor" in out.stdout


def test_numpy_mlp_learns():
    X, y = nnc.datasets.make_mnist_like(2000, seed=1)
    mlp = benchmark.NumpyMLP([784, 32, 10], lr=3e-3)
    losses = [mlp.step(X[i:i + 100], y[i:i + 100]) for i in range(0, 2000, 100)]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("with_batchnorm", [False, True])
def test_steady_state_training_step_allocates_no_arrays(with_batchnorm):
    """After warm-up, a Cython-backend step (forward, loss, backward, L2,
    norms, clipping, Adam) must not allocate: any temporary activation of
    this net is ≥ 16 KiB, so the traced peak stays far below that."""
    rng = np.random.default_rng(0)
    X = rng.random((256, 64)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    hidden = [nnc.Dense(64, 64, bias=not with_batchnorm)]
    hidden += [nnc.BatchNorm(64), nnc.ReLU(), nnc.Dropout(0.1)] if with_batchnorm else [nnc.ReLU()]
    model = nnc.Sequential(*hidden, nnc.Dense(64, 10), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=64, clip_norm=1.0,
                          clip_value=5.0, l2=1e-4)
    trainer.fit(X, y, epochs=1, verbose=False)
    batches = list(trainer._batches(X, y, trainer.rng.permutation(len(X))))
    for steps in trainer.history.steps.values():  # room to append without reallocating
        steps.extend([0.0] * 64)
        del steps[-64:]
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for xb, yb in batches:
            trainer._train_step(xb, yb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 8 * 1024, peak - start


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(contenders="nnc"), TypeError, "contenders must be a list"),
    (dict(contenders=()), ValueError, "contenders must name at least one"),
    (dict(contenders=("nnc", "jax")), ValueError, "unknown contender 'jax'"),
    (dict(batchnorm=()), ValueError, "batchnorm must name at least one"),
    (dict(batch_sizes=32), TypeError, "batch_sizes must be a list"),
    (dict(threads=(0,)), ValueError, "threads"),
    (dict(sizes=(784,)), ValueError, "sizes must give the input width"),
])
def test_run_sweep_refuses_bad_arguments_before_any_work(kwargs, error, match):
    with pytest.raises(error, match=match):
        benchmark.run_sweep(n_samples=64, **kwargs)


def test_a_sweep_without_nnc_still_writes_its_table(tmp_path):
    result = benchmark.run_sweep(n_samples=64, sizes=(784, 8, 8, 10), batch_sizes=(32,),
                                 batchnorm=(False,), threads=(1,), repeats=1, tiny_steps=2,
                                 contenders=("gemm-floor", "nnc-numpy"), progress=False)
    assert result["setup"]["sizes"] == [784, 8, 8, 10]  # repeated widths kept
    paths = benchmark.write_results(result, str(tmp_path))
    table = open(paths["markdown"]).read()
    assert "nnc-numpy (s) | gemm-floor (s) |" in table and "/ nnc" not in table


def test_the_chart_draws_no_bar_for_a_contender_that_did_not_run(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from nnc import plotting

    drawn = []
    monkeypatch.setattr(plotting, "save", lambda fig, path: drawn.append(fig) or path)
    result = benchmark.run_sweep(n_samples=64, sizes=(784, 8, 10), batch_sizes=(32,),
                                 batchnorm=(False, True), threads=(1,), repeats=1, tiny_steps=2,
                                 contenders=("nnc", "numpy-mlp"), progress=False)
    assert "numpy-mlp" not in result["rows"][1]["seconds"]  # (it has no batch-norm)
    benchmark.write_results(result, str(tmp_path))
    bars = [patch.get_height() for patch in drawn[0].axes[0].patches]
    assert len(bars) == 3 and min(bars) > 0  # nnc twice, the NumPy MLP once
