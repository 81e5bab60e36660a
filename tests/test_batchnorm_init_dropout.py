"""Batch normalisation, the initialiser menu and dropout (issue 4)."""
import warnings

import numpy as np
import pytest

import nnc

BACKENDS = ["cython", "numpy"]


def bn_model(features=3, backend="cython", dtype="float64", momentum=0.9, seed=0):
    return nnc.Sequential(nnc.Dense(4, features, bias=False), nnc.BatchNorm(features, momentum),
                          nnc.Tanh(), nnc.Dense(features, 2), dtype=dtype, backend=backend,
                          seed=seed)


# --- batch-norm ---------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch,features", [(2, 1), (2, 3), (5, 1), (7, 4)])
def test_batchnorm_backward_matches_finite_differences(backend, batch, features):
    model = bn_model(features, backend)
    rng = np.random.default_rng(batch * 10 + features)
    model.params["1.gamma"][...] = rng.uniform(0.5, 1.5, features)
    model.params["1.beta"][...] = rng.normal(size=features)
    X = rng.normal(size=(batch, 4))
    y = rng.integers(0, 2, size=batch)
    errors = nnc.gradcheck(model, "softmax_cross_entropy", X, y)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(2, 1), (3, 7), (64, 33), (1100, 1000)])
def test_batchnorm_kernels_equal_reference(dtype, tol, shape):
    rng = np.random.default_rng(0)
    m, f = shape
    x = (rng.normal(size=shape) * 3 + 5).astype(dtype)
    gamma = rng.uniform(0.5, 2, f).astype(dtype)
    beta = rng.normal(size=f).astype(dtype)
    dy = rng.normal(size=shape).astype(dtype)
    results = []
    for name in BACKENDS:
        be = nnc.backends.get_backend(name)
        run_mean, run_var = np.full(f, 0.5, dtype), np.full(f, 2.0, dtype)
        out, x_hat, dx = (np.empty(shape, dtype) for _ in range(3))
        mean, var, inv_std, dgamma, dbeta = (np.empty(f, dtype) for _ in range(5))
        be.batchnorm_forward_train(x, gamma, beta, run_mean, run_var, 0.9, 1e-5, out, x_hat,
                                   mean, var, inv_std)
        be.batchnorm_backward(dy, x_hat, gamma, inv_std, dgamma, dbeta, dx)
        evaluated = np.empty(shape, dtype)
        be.batchnorm_forward_eval(x, gamma, beta, run_mean, run_var, 1e-5, evaluated)
        results.append([out, x_hat, mean, var, run_mean, run_var, dx, dgamma, dbeta, evaluated])
    for got, want in zip(*results):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def test_batchnorm_result_does_not_depend_on_thread_count():
    rng = np.random.default_rng(1)
    shape = (1100, 1000)  # above the parallel threshold
    x = rng.normal(size=shape).astype(np.float32) + 3
    dy = rng.normal(size=shape).astype(np.float32)
    be = nnc.backends.get_backend("cython")
    before = nnc.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            nnc.set_num_threads(threads)
            f = shape[1]
            gamma, beta = np.ones(f, np.float32), np.zeros(f, np.float32)
            rm, rv = np.zeros(f, np.float32), np.ones(f, np.float32)
            out, x_hat, dx = (np.empty(shape, np.float32) for _ in range(3))
            mean, var, inv_std, dg, db = (np.empty(f, np.float32) for _ in range(5))
            be.batchnorm_forward_train(x, gamma, beta, rm, rv, 0.9, 1e-5, out, x_hat, mean, var,
                                       inv_std)
            be.batchnorm_backward(dy, x_hat, gamma, inv_std, dg, db, dx)
            runs.append((out, dx, dg, db, rm, rv))
    finally:
        nnc.set_num_threads(before)
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("backend", BACKENDS)
def test_running_statistics_follow_the_lecture_and_drive_evaluation(backend):
    rho, eps = 0.8, 1e-5
    model = nnc.Sequential(nnc.Dense(3, 2, bias=False), nnc.BatchNorm(2, momentum=rho, eps=eps),
                           dtype="float64", backend=backend, seed=0)
    W = np.array([[1.0, 0.5], [-1.0, 2.0], [0.25, -0.5]])
    model.params["0.W"][...] = W
    rng = np.random.default_rng(3)
    mu_hat, var_hat = np.zeros(2), np.ones(2)  # running_mean starts at 0, running_var at 1
    for _ in range(4):
        X = rng.normal(size=(5, 3))
        model.forward(X, training=True)
        z = X @ W
        mu = z.sum(axis=0) / 5
        var = ((z - mu) ** 2).sum(axis=0) / 5  # biased
        mu_hat = rho * mu_hat + (1 - rho) * mu
        var_hat = rho * var_hat + (1 - rho) * var
    bn = model.layers[1]
    np.testing.assert_allclose(bn.buffers["running_mean"], mu_hat, rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], var_hat, rtol=1e-12)
    X = rng.normal(size=(6, 3))
    expected = (X @ W - mu_hat) / np.sqrt(var_hat + eps)  # γ = 1, β = 0
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-10, atol=1e-12)
    model.eval()
    np.testing.assert_allclose(model.forward(X), expected, rtol=1e-10, atol=1e-12)
    # evaluating leaves the running statistics alone
    np.testing.assert_allclose(bn.buffers["running_mean"], mu_hat, rtol=1e-12)


def test_training_batch_of_one_is_a_clear_error_and_the_trainer_skips_it():
    model = bn_model(3, dtype="float32")
    with pytest.raises(ValueError, match="at least 2 samples"):
        model.forward(np.zeros((1, 4), np.float32), training=True)
    model.predict(np.zeros((1, 4), np.float32))  # evaluation is fine
    X = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    y = np.arange(9) % 2
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=4)
    history = trainer.fit(X, y, epochs=2, verbose=False)  # 4 + 4 + (1 skipped)
    assert len(history.steps["loss"]) == 4


def test_bias_before_batchnorm_warns_and_bias_false_does_not():
    with pytest.warns(UserWarning, match="bias"):
        nnc.Sequential(nnc.Dense(4, 3), nnc.BatchNorm(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nnc.Sequential(nnc.Dense(4, 3, bias=False), nnc.BatchNorm(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_deep_batchnorm_net_learns_digits(backend):
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=0)
    layers = []
    width = 64
    for _ in range(4):
        layers += [nnc.Dense(64 if not layers else width, width, bias=False),
                   nnc.BatchNorm(width), nnc.ReLU()]
    model = nnc.Sequential(*layers, nnc.Dense(width, 10), backend=backend, seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=32)
    trainer.fit(X_train, y_train, epochs=12, verbose=False)
    assert trainer.evaluate(X_test, y_test)["accuracy"] >= 0.95


@pytest.mark.parametrize("make,match", [
    (lambda: nnc.BatchNorm(4, momentum=1.5), "momentum"),
    (lambda: nnc.BatchNorm(4, momentum=-0.1), "momentum"),
    (lambda: nnc.BatchNorm(4, eps=0), "eps"),
    (lambda: nnc.BatchNorm(0), "num_features"),
    (lambda: nnc.Sequential(nnc.Dense(4, 3, bias=False), nnc.BatchNorm(5)), "features"),
    (lambda: nnc.Dropout(1.0), "p"),
    (lambda: nnc.Dropout(-0.2), "p"),
    (lambda: nnc.Dense(3, 2, init="glorious"), "init"),
    (lambda: nnc.init.normal(-1.0), "std"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- initialisers -------------------------------------------------------------
FAN_IN, FAN_OUT = 400, 300
# name -> (mean, variance) of the weights, from the formulas in nnc/init.py's table
INIT_MOMENTS = {
    "lecun_normal": (0.0, 1 / FAN_IN),
    "glorot_normal": (0.0, 2 / (FAN_IN + FAN_OUT)),
    "glorot_uniform": (0.0, 2 / (FAN_IN + FAN_OUT)),
    "he_normal": (0.0, 2 / FAN_IN),
    "he_uniform": (0.0, 2 / FAN_IN),
    "zeros": (0.0, 0.0),
}


@pytest.mark.parametrize("name", sorted(INIT_MOMENTS))
def test_initialiser_moments_match_formula(name):
    # 120 000 samples: the sample variance is within 2 % of the true one
    # (its relative standard error is sqrt(2/n) ≈ 0.4 %), the mean within
    # 5 standard errors
    mean, var = INIT_MOMENTS[name]
    model = nnc.Sequential(nnc.Dense(FAN_IN, FAN_OUT, init=name), seed=0)
    W = model.params["0.W"].astype(np.float64)
    assert abs(W.mean() - mean) <= 5 * np.sqrt(var / W.size) + 1e-12
    assert W.var() == pytest.approx(var, rel=0.02, abs=1e-12)
    np.testing.assert_array_equal(model.params["0.b"], 0)


def test_parametrised_initialisers():
    W = nnc.Sequential(nnc.Dense(FAN_IN, FAN_OUT, init=nnc.init.normal(0.1)), seed=0).params["0.W"]
    assert W.std() == pytest.approx(0.1, rel=0.02)
    W = nnc.Sequential(nnc.Dense(FAN_IN, FAN_OUT, init=nnc.init.uniform(0.3)), seed=0).params["0.W"]
    assert W.min() >= -0.3 and W.max() <= 0.3 and W.var() == pytest.approx(0.09 / 3, rel=0.02)
    W = nnc.Sequential(nnc.Dense(3, 2, init=nnc.init.constant(0.7)), seed=0).params["0.W"]
    np.testing.assert_array_equal(W, np.float32(0.7))


def test_same_seed_same_weights_in_both_backends():
    def weights(backend, seed):
        return nnc.Sequential(nnc.Dense(20, 10, init="he_uniform"), nnc.ReLU(),
                              nnc.Dense(10, 3), backend=backend, seed=seed).flat_params

    np.testing.assert_array_equal(weights("cython", 5), weights("numpy", 5))
    assert not np.array_equal(weights("cython", 5), weights("cython", 6))


def test_default_init_is_he_before_relu_and_glorot_otherwise():
    relu = nnc.Sequential(nnc.Dense(FAN_IN, FAN_OUT), nnc.ReLU(), seed=0).params["0.W"]
    tanh = nnc.Sequential(nnc.Dense(FAN_IN, FAN_OUT), nnc.Tanh(), seed=0).params["0.W"]
    assert relu.var() == pytest.approx(2 / FAN_IN, rel=0.02)
    assert tanh.var() == pytest.approx(2 / (FAN_IN + FAN_OUT), rel=0.02)


@pytest.mark.parametrize("init,symmetric", [("zeros", True), ("he_normal", False)])
def test_zero_init_keeps_hidden_units_identical(init, symmetric):
    """Lecture, section 9 quiz, question 1: all-zero weights never break symmetry."""
    X, y = nnc.datasets.load_digits()
    model = nnc.Sequential(nnc.Dense(64, 8, init=init), nnc.Sigmoid(), nnc.Dense(8, 10, init=init),
                           seed=0)
    nnc.Trainer(model, optimizer=nnc.SGD(0.5), batch_size=64).fit(X[:512], y[:512], epochs=3,
                                                                   verbose=False)
    W1 = model.params["0.W"]
    identical = np.allclose(W1, W1[:, :1]) and np.allclose(model.params["2.W"],
                                                           model.params["2.W"][:1, :])
    assert identical == symmetric
    assert np.abs(model.params["2.W"]).max() > 0  # it did train


# --- dropout ------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_is_identity_in_evaluation_and_scales_in_training(backend):
    model = nnc.Sequential(nnc.Dense(50, 400, init=nnc.init.constant(0.0)), nnc.Dropout(0.3),
                           backend=backend, seed=0)
    model.params["0.b"][...] = 2.0
    X = np.ones((500, 50), np.float32)
    np.testing.assert_array_equal(model.predict(X), 2.0)
    out = model.forward(X, training=True)
    kept = out != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)  # 200 000 units
    np.testing.assert_allclose(out[kept], 2.0 / 0.7, rtol=1e-6)
    assert out.mean() == pytest.approx(2.0, rel=0.02)  # inverted dropout keeps the mean


def test_dropout_masks_agree_across_backends_and_follow_the_seed():
    def run(backend, seed):
        model = nnc.Sequential(nnc.Dense(10, 30), nnc.Dropout(0.5), backend=backend, seed=seed)
        return model.forward(np.ones((8, 10)), training=True) != 0

    np.testing.assert_array_equal(run("cython", 1), run("numpy", 1))
    assert not np.array_equal(run("cython", 1), run("cython", 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_gradient_with_a_fixed_mask(backend):
    model = nnc.Sequential(nnc.Dense(5, 6), nnc.Tanh(), nnc.Dropout(0.4), nnc.Dense(6, 3),
                           dtype="float64", backend=backend, seed=0)
    rng = np.random.default_rng(0)
    errors = nnc.gradcheck(model, "softmax_cross_entropy", rng.normal(size=(7, 5)),
                           rng.integers(0, 3, 7))
    assert max(errors.values()) < 1e-6, errors
    assert model.layers[2].frozen is False  # restored after the check


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_batchnorm_backward_in_evaluation_mode_against_finite_differences(backend):
    """After an eval-mode forward batch-norm is a fixed affine map; backward
    gives its gradients (as PyTorch does), checked by central differences."""
    rng = np.random.default_rng(0)
    model = nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4), nnc.Tanh(),
                           nnc.Dense(4, 2), dtype="float64", backend=backend, seed=0)
    bn = model.layers[1]
    bn.buffers["running_mean"][...] = rng.standard_normal(4)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2.0, 4)
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, 4)
    X, dY = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))

    def objective():
        return float((model.forward(X, training=False) * dY).sum())

    model.forward(X, training=False)
    dX = model.backward(dY)
    for array, grad in [(X, dX), (bn.params["gamma"], bn.grads["gamma"].copy()),
                        (bn.params["beta"], bn.grads["beta"].copy())]:
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            keep = array[index]
            array[index] = keep + 1e-6
            up = objective()
            array[index] = keep - 1e-6
            numeric[index] = (up - objective()) / 2e-6
            array[index] = keep
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_momentum_one_freezes_the_running_statistics(backend):
    """ρ = 1 (PyTorch's momentum=0): μ̂ ← 1·μ̂ + 0·μ, σ̂² likewise."""
    model = nnc.Sequential(nnc.Dense(4, 3, bias=False), nnc.BatchNorm(3, momentum=1.0),
                           seed=0, backend=backend)
    model.layers[1].buffers["running_mean"][...] = [0.5, -1.0, 2.0]
    before = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    model.forward(np.random.default_rng(0).normal(3, 2, size=(8, 4)), training=True)
    for name, value in before.items():
        np.testing.assert_array_equal(model.layers[1].buffers[name], value)
