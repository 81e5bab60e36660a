"""Optimizers, schedules, L2, clipping and gradient-norm records (issue 3).

Three steps of each optimizer on w0 = [1, -2] with the fixed gradients
G[0], G[1], G[2] are checked against values worked out by hand from the
lecture's formulas (plain Python arithmetic on scalars below, never nnc's
own code), in both backends and both dtypes.
"""
import math

import numpy as np
import pytest

import nnc
from nnc import schedules

BACKENDS = ["cython", "numpy"]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-6, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}

W0 = [1.0, -2.0]
G = [[0.5, -1.0], [0.25, 0.5], [-1.0, 2.0]]


def run_steps(optimizer, backend, dtype, gradients=G):
    w = np.array(W0, dtype=dtype)
    g = np.zeros_like(w)
    optimizer.bind(w, g, backend)
    path = []
    for grad in gradients:
        g[...] = grad
        optimizer.step()
        path.append(w.copy())
    return path


# --- hand-worked trajectories ------------------------------------------------
# SGD, α = 0.1: w ← w - α g
SGD_PATH = [[0.95, -1.9], [0.925, -1.95], [1.025, -2.15]]
# Momentum, α = 0.1, β = 0.9: z ← βz - (1-β)g; w ← w + αz
#   z1 = [-0.05, 0.1]      w1 = [0.995, -1.99]
#   z2 = [-0.07, 0.04]     w2 = [0.988, -1.986]
#   z3 = [0.037, -0.164]   w3 = [0.9917, -2.0024]
MOMENTUM_PATH = [[0.995, -1.99], [0.988, -1.986], [0.9917, -2.0024]]
# Nesterov: same z, w ← w + α(βz - (1-β)g)
#   step 1: 0.9*[-0.05, 0.1] - 0.1*[0.5, -1] = [-0.095, 0.19]  -> w1 = [0.9905, -1.981]
#   step 2: 0.9*[-0.07, 0.04] - 0.1*[0.25, 0.5] = [-0.088, -0.014] -> w2 = [0.9817, -1.9824]
#   step 3: 0.9*[0.037, -0.164] - 0.1*[-1, 2] = [0.1333, -0.3476] -> w3 = [0.99503, -2.01716]
NESTEROV_PATH = [[0.9905, -1.981], [0.9817, -1.9824], [0.99503, -2.01716]]


def rmsprop_by_hand(lr=0.1, rho=0.9, eps=1e-8):
    w, r, path = list(W0), [0.0, 0.0], []
    for g in G:
        for i in range(2):
            r[i] = rho * r[i] + (1 - rho) * g[i] ** 2
            w[i] = w[i] - lr * g[i] / math.sqrt(r[i] + eps)
        path.append(list(w))
    return path


def adam_by_hand(lr=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    w, m, v, path = list(W0), [0.0, 0.0], [0.0, 0.0], []
    for t, g in enumerate(G, start=1):
        for i in range(2):
            w[i] = w[i] - lr * weight_decay * w[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            w[i] = w[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
        path.append(list(w))
    return path


def adagrad_by_hand(lr=0.1, eps=1e-10):
    w, r, path = list(W0), [0.0, 0.0], []
    for g in G:
        for i in range(2):
            r[i] += g[i] ** 2
            w[i] = w[i] - lr * g[i] / (math.sqrt(r[i]) + eps)
        path.append(list(w))
    return path


def test_adam_first_step_is_sign_step():
    # with bias correction, step 1 moves each weight by ≈ α in the direction -sign(g)
    assert adam_by_hand()[0] == pytest.approx([0.9, -1.9], abs=1e-7)


CASES = [
    ("sgd", lambda: nnc.SGD(lr=0.1), SGD_PATH),
    ("momentum", lambda: nnc.SGD(lr=0.1, momentum=0.9), MOMENTUM_PATH),
    ("nesterov", lambda: nnc.SGD(lr=0.1, momentum=0.9, nesterov=True), NESTEROV_PATH),
    ("rmsprop", lambda: nnc.RMSprop(lr=0.1, rho=0.9, eps=1e-8), rmsprop_by_hand()),
    ("adam", lambda: nnc.Adam(lr=0.1), adam_by_hand()),
    ("adamw", lambda: nnc.AdamW(lr=0.1, weight_decay=0.5), adam_by_hand(weight_decay=0.5)),
    ("adagrad", lambda: nnc.Adagrad(lr=0.1), adagrad_by_hand()),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,make,expected", CASES, ids=[c[0] for c in CASES])
def test_three_steps_match_hand_computation(name, make, expected, backend, dtype):
    path = run_steps(make(), backend, dtype)
    np.testing.assert_allclose(np.array(path), np.array(expected), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,make,expected", CASES, ids=[c[0] for c in CASES])
def test_cython_equals_reference_on_a_large_vector(name, make, expected, dtype):
    rng = np.random.default_rng(1)
    grads = rng.normal(size=(3, 3001))
    runs = []
    for backend in BACKENDS:
        w = rng.normal(size=3001).astype(dtype) if not runs else runs[0][0].copy()
        start = w.copy()
        g = np.zeros_like(w)
        opt = make().bind(w, g, backend)
        for grad in grads:
            g[...] = grad
            opt.step()
        runs.append((start, w))
    np.testing.assert_allclose(runs[0][1], runs[1][1], **TOL[dtype])


def test_pytorch_mappings_documented_in_docstrings():
    assert "dampening" in nnc.SGD.__doc__ and "Keras" in nnc.SGD.__doc__
    assert "outside" in nnc.RMSprop.__doc__
    assert "1-β₁ᵗ" in nnc.Adam.__doc__


def test_momentum_equals_pytorch_form_with_scaled_lr():
    """torch SGD(lr=α(1-β), momentum=β, dampening=0): b ← βb + g; w ← w - lr b,
    written out here, follows the lecture's momentum exactly."""
    alpha, beta = 0.1, 0.9
    w, b = list(W0), [0.0, 0.0]
    for g in G:
        for i in range(2):
            b[i] = beta * b[i] + g[i]
            w[i] -= alpha * (1 - beta) * b[i]
    assert w == pytest.approx(MOMENTUM_PATH[-1], abs=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_nesterov_is_the_look_ahead_algorithm_written_out(backend):
    """The look-ahead algorithm as the slide writes it, with the gradient
    taken where the velocity's step αβz carries the weights:
        g = ∇L(w + αβz);  z ← βz - (1-β) g;  w ← w + αz.
    nnc keeps the look-ahead point θ = w + αβz as its parameters, so after
    every step its weights equal w + αβz of this loop (on Rosenbrock, where
    the gradient is not linear)."""
    alpha, beta = 1e-3, 0.9
    w, z = np.array([-1.2, 1.0]), np.zeros(2)
    theta, grad = w.copy(), np.zeros(2)
    optimizer = nnc.SGD(lr=alpha, momentum=beta, nesterov=True).bind(theta, grad, backend)
    for _ in range(200):
        g = rosenbrock_gradient(w + alpha * beta * z)
        z = beta * z - (1 - beta) * g
        w = w + alpha * z
        grad[...] = rosenbrock_gradient(theta)
        optimizer.step()
        np.testing.assert_allclose(theta, w + alpha * beta * z, rtol=1e-12, atol=1e-12)
    assert np.abs(w - np.array([-1.2, 1.0])).max() > 0.1  # it went somewhere


# --- convergence -------------------------------------------------------------
def quadratic_gradient(w):
    """f(w) = ½ (w₀² + 25 w₁²): condition number 25, minimum at 0."""
    return np.array([w[0], 25.0 * w[1]])


def rosenbrock_gradient(w):
    """f(x, y) = (1 - x)² + 100 (y - x²)², minimum at (1, 1)."""
    x, y = w
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


CONVERGENCE = [
    # name, optimizer, quadratic steps, rosenbrock steps
    ("sgd", lambda: nnc.SGD(lr=0.03), 400, lambda: nnc.SGD(lr=1e-3), 20000),
    ("momentum", lambda: nnc.SGD(lr=0.3, momentum=0.9), 400,
     lambda: nnc.SGD(lr=1e-2, momentum=0.9), 8000),
    ("nesterov", lambda: nnc.SGD(lr=0.3, momentum=0.9, nesterov=True), 400,
     lambda: nnc.SGD(lr=1e-2, momentum=0.9, nesterov=True), 8000),
    ("rmsprop", lambda: nnc.RMSprop(lr=0.01), 1000, lambda: nnc.RMSprop(lr=1e-3), 8000),
    ("adam", lambda: nnc.Adam(lr=0.05), 1000, lambda: nnc.Adam(lr=0.02), 8000),
    ("adagrad", lambda: nnc.Adagrad(lr=0.5), 1000, lambda: nnc.Adagrad(lr=0.5), 8000),
]


def minimise(optimizer, gradient, start, steps):
    w = np.array(start, dtype=np.float64)
    g = np.zeros_like(w)
    optimizer.bind(w, g, "cython")
    for _ in range(steps):
        g[...] = gradient(w)
        optimizer.step()
    return w


@pytest.mark.parametrize("name,quad,quad_steps,rosen,rosen_steps", CONVERGENCE,
                         ids=[c[0] for c in CONVERGENCE])
def test_converges_on_ill_conditioned_quadratic_and_rosenbrock(name, quad, quad_steps,
                                                               rosen, rosen_steps):
    # tolerance: within 1e-2 of the minimum (Euclidean distance)
    w = minimise(quad(), quadratic_gradient, [2.0, 1.0], quad_steps)
    assert np.linalg.norm(w) < 1e-2, w
    w = minimise(rosen(), rosenbrock_gradient, [-1.2, 1.0], rosen_steps)
    assert np.linalg.norm(w - [1.0, 1.0]) < 1e-2, w


# --- schedules ---------------------------------------------------------------
def test_linear_decay_follows_the_lecture():
    s = schedules.LinearDecay(lr0=0.1, lr_final=0.001, decay_steps=100)
    assert s(0) == pytest.approx(0.1)
    assert s(50) == pytest.approx(0.5 * 0.1 + 0.5 * 0.001)
    assert s(25) == pytest.approx(0.75 * 0.1 + 0.25 * 0.001)
    assert s(100) == pytest.approx(0.001)
    assert s(1000) == pytest.approx(0.001)


def test_step_exponential_cosine_and_warmup_values():
    step = schedules.StepDecay(lr0=1.0, step_size=10, gamma=0.5)
    assert [step(t) for t in (0, 9, 10, 25)] == pytest.approx([1.0, 1.0, 0.5, 0.25])
    exp = schedules.ExponentialDecay(lr0=1.0, gamma=0.5, decay_steps=10)
    assert [exp(t) for t in (0, 10, 5)] == pytest.approx([1.0, 0.5, 2 ** -0.5])
    cos = schedules.CosineDecay(lr0=1.0, decay_steps=100, lr_min=0.1)
    assert [cos(t) for t in (0, 50, 100, 200)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    warm = schedules.Warmup(schedules.Constant(0.4), warmup_steps=4)
    assert [warm(t) for t in range(6)] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4])
    warm_cos = schedules.Warmup(schedules.CosineDecay(1.0, 10), warmup_steps=2, start_lr=0.5)
    assert [warm_cos(t) for t in (0, 1, 2, 7, 12)] == pytest.approx([0.5, 0.75, 1.0, 0.5, 0.0])
    assert schedules.get("linear", lr0=1, lr_final=0, decay_steps=4)(1) == pytest.approx(0.75)


@pytest.fixture
def digits_small():
    X, y = nnc.datasets.load_digits()
    return X[:256], y[:256]


def make_model(dtype="float32", backend="cython", seed=0, hidden=16):
    return nnc.Sequential(nnc.Dense(64, hidden), nnc.ReLU(), nnc.Dense(hidden, 10),
                          dtype=dtype, backend=backend, seed=seed)


def test_schedule_rates_are_used_and_recorded(digits_small):
    X, y = digits_small
    schedule = schedules.LinearDecay(0.1, 0.01, decay_steps=8)
    trainer = nnc.Trainer(make_model(), optimizer=nnc.SGD(lr=123.0), batch_size=64,
                          schedule=schedule)
    history = trainer.fit(X, y, epochs=3, verbose=False)
    assert history.steps["lr"] == pytest.approx([schedule(t) for t in range(12)])


# --- clipping and gradient norms ---------------------------------------------
def full_batch_gradient(model, X, y, l2=0.0):
    """dL/dw of the (penalised) loss at the current weights, by back-propagation."""
    loss = nnc.SoftmaxCrossEntropy(model.backend)
    value = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    grads = {k: g.copy() for k, g in model.grads.items()}
    for key, layer_index in ((k, int(k.split(".")[0])) for k in grads):
        if key.endswith(".W"):
            grads[key] += l2 * model.params[key]
            value += 0.5 * l2 * float(np.sum(model.params[key].astype(np.float64) ** 2))
    return value, grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("clip_norm", [1e-3, 1e3])
def test_clip_norm_rescales_to_c_and_records_the_preclip_norm(digits_small, backend, clip_norm):
    X, y = digits_small
    model = make_model("float64", backend)
    _, grads = full_batch_gradient(model, X, y)
    norm = math.sqrt(sum(float(np.sum(g ** 2)) for g in grads.values()))
    layer_norms = {i: math.sqrt(sum(float(np.sum(g ** 2)) for k, g in grads.items()
                                    if k.startswith(f"{i}."))) for i in (0, 2)}
    before = model.flat_params.copy()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=1.0), batch_size=len(X),
                          clip_norm=clip_norm)
    history = trainer.fit(X, y, epochs=1, shuffle=False, verbose=False)
    applied = before - model.flat_params  # = lr * clipped gradient
    assert history.steps["grad_norm"][0] == pytest.approx(norm, rel=1e-10)
    for i, expected in layer_norms.items():
        assert history.steps[f"grad_norm.{i}"][0] == pytest.approx(expected, rel=1e-10)
    if norm > clip_norm:
        assert np.linalg.norm(applied) == pytest.approx(clip_norm, rel=1e-10)
    else:
        assert np.linalg.norm(applied) == pytest.approx(norm, rel=1e-10)


def test_clip_value_bounds_every_element(digits_small):
    X, y = digits_small
    model = make_model("float64")
    before = model.flat_params.copy()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=1.0), batch_size=len(X), clip_value=1e-3)
    trainer.fit(X, y, epochs=1, verbose=False)
    applied = before - model.flat_params
    assert np.abs(applied).max() == pytest.approx(1e-3)


# --- L2 regularisation -------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_l2_loss_and_gradient_match_finite_differences(digits_small, backend):
    X, y = digits_small
    X, y = X[:40], y[:40]
    lam = 0.3
    model = make_model("float64", backend, hidden=5)

    def penalised_loss():
        loss = nnc.SoftmaxCrossEntropy(backend).forward(model.forward(X), y)
        weights = [model.params["0.W"], model.params["2.W"]]
        return loss + 0.5 * lam * sum(float(np.sum(w ** 2)) for w in weights)

    expected_loss = penalised_loss()
    numeric = np.zeros_like(model.flat_params)
    for i in range(model.flat_params.size):
        original = model.flat_params[i]
        model.flat_params[i] = original + 1e-6
        plus = penalised_loss()
        model.flat_params[i] = original - 1e-6
        minus = penalised_loss()
        model.flat_params[i] = original
        numeric[i] = (plus - minus) / 2e-6
    before = model.flat_params.copy()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=1.0), batch_size=len(X), l2=lam)
    history = trainer.fit(X, y, epochs=1, verbose=False)
    analytic = before - model.flat_params  # lr = 1: the applied step is the gradient
    assert history.steps["loss"][0] == pytest.approx(expected_loss, rel=1e-10)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    # biases are not decayed: their gradient is the plain loss gradient
    _, grads = full_batch_gradient(make_model("float64", backend, hidden=5), X, y)
    np.testing.assert_allclose(analytic[model.n_decayed:],
                               np.concatenate([grads["0.b"], grads["2.b"]]), rtol=1e-9)


# --- memory table (lecture section 7) ---------------------------------------
def test_state_bytes_orders_sgd_momentum_rmsprop_adam():
    sizes = {}
    for name, opt in [("sgd", nnc.SGD(0.1)), ("momentum", nnc.SGD(0.1, momentum=0.9)),
                      ("rmsprop", nnc.RMSprop()), ("adam", nnc.Adam())]:
        nnc.Trainer(make_model(), optimizer=opt)
        sizes[name] = opt.state_bytes()
    n = make_model().n_params * 4
    assert sizes == {"sgd": 0, "momentum": n, "rmsprop": n, "adam": 2 * n}


# --- state_dict: stop, save, restore, continue bit-identically ---------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_state_dict_round_trip_continues_bit_identically(digits_small, backend):
    X, y = digits_small

    def make_trainer(seed):
        return nnc.Trainer(make_model(backend=backend, seed=seed), optimizer=nnc.Adam(1e-2),
                           batch_size=50, clip_norm=1.0,
                           schedule=schedules.CosineDecay(1e-2, decay_steps=20), seed=seed)

    straight = make_trainer(0)
    straight.fit(X, y, epochs=3, verbose=False)

    first = make_trainer(0)
    first.fit(X, y, epochs=1, verbose=False)
    state = first.state_dict()
    resumed = make_trainer(7)  # different weights and shuffling until restored
    resumed.load_state_dict(state)
    resumed.fit(X, y, epochs=2, verbose=False)

    np.testing.assert_array_equal(resumed.model.flat_params, straight.model.flat_params)
    assert resumed.history.steps["loss"] == straight.history.steps["loss"]
    assert resumed.optimizer.t == straight.optimizer.t == 18


# --- bad hyper-parameters ----------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: nnc.SGD(lr=-0.1), "lr"),
    (lambda: nnc.SGD(lr="0.1"), "lr"),
    (lambda: nnc.SGD(lr=float("nan")), "lr"),
    (lambda: nnc.SGD(lr=0.1, momentum=1.0), "momentum"),
    (lambda: nnc.SGD(lr=0.1, momentum=-0.1), "momentum"),
    (lambda: nnc.SGD(lr=0.1, nesterov=True), "nesterov"),
    (lambda: nnc.RMSprop(rho=1.5), "rho"),
    (lambda: nnc.RMSprop(eps=0), "eps"),
    (lambda: nnc.Adam(beta1=1.0), "beta1"),
    (lambda: nnc.Adam(beta2=-0.5), "beta2"),
    (lambda: nnc.Adam(eps=-1e-8), "eps"),
    (lambda: nnc.AdamW(weight_decay=-1), "weight_decay"),
    (lambda: nnc.Adagrad(eps=0), "eps"),
    (lambda: nnc.Trainer(make_model(), clip_norm=0), "clip_norm"),
    (lambda: nnc.Trainer(make_model(), clip_norm=-1), "clip_norm"),
    (lambda: nnc.Trainer(make_model(), clip_value=0), "clip_value"),
    (lambda: nnc.Trainer(make_model(), l2=-0.1), "l2"),
    (lambda: nnc.Trainer(make_model(), schedule="sometimes"), "schedule"),
    (lambda: schedules.get("sometimes"), "schedule"),
    (lambda: schedules.LinearDecay(0.1, 0.01, decay_steps=0), "decay_steps"),
    (lambda: schedules.StepDecay(0.1, step_size=10, gamma=0), "gamma"),
    (lambda: schedules.CosineDecay(-1, 10), "lr0"),
    (lambda: schedules.Warmup(schedules.Constant(0.1), warmup_steps=0), "warmup_steps"),
])
def test_bad_hyper_parameters_raise_naming_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_step_before_bind_is_a_clear_error():
    with pytest.raises(RuntimeError, match="bind"):
        nnc.Adam().step()


@pytest.mark.parametrize("make", [lambda: nnc.Adam(1e-3), lambda: nnc.RMSprop(1e-3),
                                  lambda: nnc.SGD(0.1, momentum=0.9)])
def test_decayed_state_is_flushed_to_zero_not_denormal(make):
    """State of a weight whose gradient stays zero decays geometrically; the
    compiled kernels flush it to zero instead of crawling through denormal
    arithmetic (~100x slower on x86), and leave the caller's FP mode alone."""
    w = np.ones(64, np.float32)
    g = np.ones(64, np.float32)
    optimizer = make().bind(w, g, "cython")
    optimizer.step()
    g[...] = 0
    for _ in range(880):  # 0.1 * 0.9**880 ≈ 1e-41: denormal unless flushed
        optimizer.step()
    for state in optimizer.state.values():
        tiny = state[(state != 0) & (np.abs(state) < np.finfo(np.float32).tiny)]
        assert tiny.size == 0, tiny
    denormal = np.array([1e-38], np.float32) * np.float32(0.01)
    assert denormal[0] != 0  # numpy still computes denormals after the kernels ran


def test_an_optimizer_pickled_before_settings_were_checked_keeps_its_rules():
    import pickle

    optimizer = nnc.SGD(0.1, momentum=0.5)
    state = optimizer.__dict__.copy()
    del state["_built"], state["_largest_float"]  # as pickled by an older nnc
    old = pickle.loads(pickle.dumps(optimizer))
    old.__dict__.clear()
    old.__setstate__(state)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum > 0"):
        old.momentum, old.nesterov = 0.0, True
        old.nesterov = True


@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_adam_keeps_stepping_for_gradients_near_the_float32_limit(backend):
    """g² still fits in float32 (g = sqrt(max)): each step moves w by -α
    (m̂/sqrt(v̂) = 1); the bias correction must not overflow v / (1-β₂ᵗ)."""
    import warnings

    from nnc.backends import get_backend

    big = np.float32(np.sqrt(np.finfo(np.float32).max))
    w, m, v = np.ones(1, np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32)
    g = np.array([big], np.float32)
    kernels = get_backend(backend, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (an overflow warning would say it happened)
        for t in range(1, 21):
            before = float(w[0])
            kernels.adam_update(w, g, m, v, 1e-2, 0.9, 0.999, 1e-8, t)
            assert float(w[0]) - before == pytest.approx(-1e-2, rel=1e-3), t
