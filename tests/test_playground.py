"""Optimizer playground (issue 6): the surfaces, the first steps of every
optimizer against the formula worked out by hand (plain Python arithmetic
with the surface's gradient written out again here, never nnc code),
clipping on the cliff, and convergence within stated steps and tolerance."""
import math

import numpy as np
import pytest

import nnc
from nnc import playground as pg
from nnc.schedules import LinearDecay

BACKENDS = ["cython", "numpy"]
KAPPA = 100.0
START = (-4.0, 1.0)


def ravine_grad(x, y):
    """∇ ½(x² + κy²) = (x, κy), written out by hand."""
    return [x, KAPPA * y]


def by_hand(rule, steps, grad=ravine_grad, start=START, clip=None):
    """Run a plain-Python update ``rule(w, g, state, t)`` (lists of floats)."""
    w, state, path = list(start), {}, [list(start)]
    for t in range(1, steps + 1):
        g = grad(*w)
        if clip is not None:
            n = math.sqrt(g[0] ** 2 + g[1] ** 2)
            if n > clip:
                g = [gi * clip / n for gi in g]
        w = rule(w, g, state, t)
        path.append(list(w))
    return path


def sgd(lr):
    return lambda w, g, s, t: [w[i] - lr * g[i] for i in range(2)]


def momentum(lr, beta, nesterov=False):
    def rule(w, g, s, t):
        z = s.setdefault("z", [0.0, 0.0])
        for i in range(2):
            z[i] = beta * z[i] - (1 - beta) * g[i]
        step = [beta * z[i] - (1 - beta) * g[i] for i in range(2)] if nesterov else z
        return [w[i] + lr * step[i] for i in range(2)]
    return rule


def rmsprop(lr, rho=0.9, eps=1e-8):
    def rule(w, g, s, t):
        r = s.setdefault("r", [0.0, 0.0])
        for i in range(2):
            r[i] = rho * r[i] + (1 - rho) * g[i] ** 2
        return [w[i] - lr * g[i] / math.sqrt(r[i] + eps) for i in range(2)]
    return rule


def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    def rule(w, g, s, t):
        m, v = s.setdefault("m", [0.0, 0.0]), s.setdefault("v", [0.0, 0.0])
        out = []
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            out.append(w[i] - lr * (m[i] / (1 - b1 ** t)) / (math.sqrt(v[i] / (1 - b2 ** t)) + eps))
        return out
    return rule


def adagrad(lr, eps=1e-10):
    def rule(w, g, s, t):
        r = s.setdefault("r", [0.0, 0.0])
        for i in range(2):
            r[i] += g[i] ** 2
        return [w[i] - lr * g[i] / (math.sqrt(r[i]) + eps) for i in range(2)]
    return rule


FIRST_STEPS = [
    ("sgd", nnc.SGD(0.015), sgd(0.015)),
    ("momentum", nnc.SGD(0.1, momentum=0.9), momentum(0.1, 0.9)),
    ("nesterov", nnc.SGD(0.1, momentum=0.9, nesterov=True), momentum(0.1, 0.9, nesterov=True)),
    ("rmsprop", nnc.RMSprop(0.05), rmsprop(0.05)),
    ("adam", nnc.Adam(0.1), adam(0.1)),
    ("adagrad", nnc.Adagrad(1.0), adagrad(1.0)),
]


def test_hand_numbers_of_the_first_steps():
    # SGD, α = 0.015 from (-4, 1): g0 = (-4, 100) -> w1 = (-3.94, -0.5);
    # g1 = (-3.94, -50) -> w2 = (-3.8809, 0.25)
    np.testing.assert_allclose(by_hand(sgd(0.015), 2), [[-4, 1], [-3.94, -0.5], [-3.8809, 0.25]])
    # momentum α = 0.1, β = 0.9: z1 = -0.1 g0 = (0.4, -10), w1 = (-3.96, 0);
    # g1 = (-3.96, 0), z2 = (0.756, -9), w2 = (-3.8844, -0.9)
    np.testing.assert_allclose(by_hand(momentum(0.1, 0.9), 2)[1:], [[-3.96, 0], [-3.8844, -0.9]],
                               atol=1e-15)
    # Nesterov: w1 = w0 + 0.1 (0.9 z1 - 0.1 g0) = (-4, 1) + 0.1 (0.76, -19)
    assert by_hand(momentum(0.1, 0.9, True), 1)[1] == pytest.approx([-3.924, -0.9])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,optimizer,rule", FIRST_STEPS, ids=[c[0] for c in FIRST_STEPS])
def test_first_steps_follow_the_formula(name, optimizer, rule, backend):
    path = pg.run(optimizer, pg.ravine(KAPPA), start=START, steps=5, backend=backend)
    assert path.shape == (6, 2) and path.dtype == np.float64
    np.testing.assert_allclose(path, by_hand(rule, 5), rtol=1e-12, atol=1e-12)


def test_a_schedule_sets_the_rate_of_each_step():
    schedule = LinearDecay(0.01, 0.0, decay_steps=10)  # α_t = 0.01 (1 - t/10)
    path = pg.run(nnc.SGD(0.5), "ravine", start=START, steps=3, schedule=schedule)
    w, expected = list(START), [list(START)]
    for t in range(3):
        g = ravine_grad(*w)
        w = [w[i] - 0.01 * (1 - t / 10) * g[i] for i in range(2)]
        expected.append(w)
    np.testing.assert_allclose(path, expected, rtol=1e-12)


def cliff_grad(x, y, h=50.0, s=10.0):
    sig = 1 / (1 + math.exp(-s * x))
    return [x + 4 + h * s * sig * (1 - sig), y]


@pytest.mark.parametrize("backend", BACKENDS)
def test_clipping_on_the_cliff_follows_the_formula(backend):
    path = pg.run(nnc.SGD(0.1), pg.cliff(), start=(3.0, 1.5), steps=8, clip_norm=10.0,
                  backend=backend)
    expected = by_hand(sgd(0.1), 8, grad=cliff_grad, start=(3.0, 1.5), clip=10.0)
    np.testing.assert_allclose(path, expected, rtol=1e-10, atol=1e-12)
    # the first gradient (7, 1.5) is below the threshold: clipping changes nothing
    assert path[1] == pytest.approx([3 - 0.7, 1.5 - 0.15])


def test_clipping_tames_the_cliff():
    cliff = pg.cliff()
    free = pg.run(nnc.SGD(0.1), cliff, steps=100)
    clipped = pg.run(nnc.SGD(0.1), cliff, steps=100, clip_norm=10.0)
    jump = lambda p: np.linalg.norm(np.diff(p, axis=0), axis=1).max()  # noqa: E731
    assert jump(free) > 10 and free[:, 0].min() < -10  # thrown far past the minimum
    assert jump(clipped) <= 0.1 * 10.0 + 1e-12  # a step is at most α·clip_norm
    assert clipped[:, 0].min() > -4.5
    assert cliff.distance_to_minimum(clipped[-1]) < 1e-2


# optimizer, surface, steps, tolerance: reach ‖w - w*‖ ≤ tol within the steps
# and stay there at the end (adaptive methods hover at about α)
CONVERGENCE = [
    ("sgd", nnc.SGD(0.019), "ravine", 500, 1e-3),
    ("sgd+linear-decay", (nnc.SGD(0.019), LinearDecay(0.019, 0.01, 300)), "ravine", 800, 1e-3),
    ("momentum", nnc.SGD(0.1, momentum=0.9), "ravine", 200, 1e-3),
    ("nesterov", nnc.SGD(0.1, momentum=0.9, nesterov=True), "ravine", 150, 1e-3),
    ("rmsprop", nnc.RMSprop(0.02), "ravine", 400, 2e-2),
    ("adam", nnc.Adam(0.1), "ravine", 200, 1e-3),
    ("adamw", nnc.AdamW(0.1, weight_decay=0.01), "ravine", 200, 1e-3),
    ("adagrad", nnc.Adagrad(1.0), "ravine", 100, 1e-3),
    ("sgd", nnc.SGD(2e-3), "rosenbrock", 8000, 1e-2),
    ("momentum", nnc.SGD(0.01, momentum=0.9), "rosenbrock", 2000, 1e-2),
    ("nesterov", nnc.SGD(0.01, momentum=0.9, nesterov=True), "rosenbrock", 2000, 1e-2),
    ("rmsprop", nnc.RMSprop(1e-3), "rosenbrock", 8000, 1e-2),
    ("adam", nnc.Adam(0.05), "rosenbrock", 2500, 1e-2),
    ("adagrad", nnc.Adagrad(0.5), "rosenbrock", 8000, 1e-2),
]


@pytest.mark.parametrize("name,optimizer,surface,steps,tol", CONVERGENCE,
                         ids=[f"{c[2]}-{c[0]}" for c in CONVERGENCE])
def test_each_optimizer_reaches_the_minimum(name, optimizer, surface, steps, tol):
    optimizer, schedule = optimizer if isinstance(optimizer, tuple) else (optimizer, None)
    path = pg.run(optimizer, surface, steps=steps, schedule=schedule)
    reached = pg.steps_to_reach(surface, path, tol)
    assert reached is not None and reached <= steps
    assert pg.get_surface(surface).distance_to_minimum(path[-1]) <= tol


def test_the_saddle_slows_sgd_more_than_adam():
    saddle = pg.saddle()
    sgd_path = pg.run(nnc.SGD(0.1), saddle, steps=300)
    adam_path = pg.run(nnc.Adam(0.05), saddle, steps=300)
    near_ridge = lambda p: int((np.abs(p[:, 1]) < 0.05).sum())  # noqa: E731
    assert near_ridge(sgd_path) > 10 * near_ridge(adam_path)
    assert saddle.distance_to_minimum(sgd_path[-1]) < 1e-3
    assert saddle.distance_to_minimum(adam_path[-1]) < 1e-2


@pytest.mark.parametrize("make", [pg.ravine, pg.saddle, pg.cliff, pg.rosenbrock, pg.two_minima])
def test_surfaces_gradients_and_minima(make):
    surface = make()
    rng = np.random.default_rng(0)
    for _ in range(5):
        w = np.array([rng.uniform(*surface.xlim), rng.uniform(*surface.ylim)])
        h = 1e-6
        numeric = [(surface(w + h * e) - surface(w - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(surface.gradient(w), numeric, rtol=1e-5, atol=1e-5)
    for m in surface.minima:
        assert np.linalg.norm(surface.gradient(m)) < 1e-12
        for e in np.eye(2):  # lower than its neighbours
            assert surface(m) < surface(m + 1e-3 * e) and surface(m) < surface(m - 1e-3 * e)
    grid = surface.value(*np.meshgrid(np.linspace(*surface.xlim, 5), np.linspace(*surface.ylim, 5)))
    assert grid.shape == (5, 5) and grid.min() >= surface.min_value - 1e-12


def test_known_minimum_values():
    assert pg.ravine().min_value == 0.0
    assert pg.saddle().min_value == -0.25
    assert pg.rosenbrock(a=2.0).minimum.tolist() == [2.0, 4.0]
    assert abs(pg.cliff().min_value) < 1e-12


def test_run_leaves_the_optimizer_untouched():
    optimizer = nnc.Adam(0.1)
    first = pg.run(optimizer, "ravine", steps=10)
    second = pg.run(optimizer, "ravine", steps=10)
    np.testing.assert_array_equal(first, second)
    assert optimizer.params is None and optimizer.t == 0


def test_gradient_noise_is_seeded_and_linear_decay_averages_it_out():
    ravine = pg.ravine()
    a = pg.run(nnc.SGD(0.018), ravine, steps=50, noise=2.0, seed=3)
    np.testing.assert_array_equal(a, pg.run(nnc.SGD(0.018), ravine, steps=50, noise=2.0, seed=3))
    assert not np.array_equal(a, pg.run(nnc.SGD(0.018), ravine, steps=50))

    def end_distance(schedule):
        return np.mean([np.mean([ravine.distance_to_minimum(w) for w in pg.run(
            nnc.SGD(0.018), ravine, steps=1000, schedule=schedule, noise=2.0, seed=seed)[-20:]])
            for seed in range(5)])

    assert end_distance(LinearDecay(0.018, 0.001, 500)) < 0.6 * end_distance(None)


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="optimizer"):
        pg.run("sgd", "ravine")
    with pytest.raises(TypeError, match="surface"):
        pg.run(nnc.SGD(0.1), "bowl")
    with pytest.raises(ValueError, match="start"):
        pg.run(nnc.SGD(0.1), "ravine", start=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="start"):
        pg.run(nnc.SGD(0.1), "ravine", start=(math.nan, 0.0))
    with pytest.raises(ValueError, match="steps"):
        pg.run(nnc.SGD(0.1), "ravine", steps=-1)
    with pytest.raises(ValueError, match="clip_norm"):
        pg.run(nnc.SGD(0.1), "ravine", clip_norm=0)
    with pytest.raises(TypeError, match="schedule"):
        pg.run(nnc.SGD(0.1), "ravine", schedule=0.1)
    with pytest.raises(ValueError, match="noise"):
        pg.run(nnc.SGD(0.1), "ravine", noise=-1.0)
    with pytest.raises(ValueError, match="condition"):
        pg.ravine(condition=0.5)
    with pytest.raises(ValueError, match="path"):
        pg.losses("ravine", np.zeros((3, 3)))


def test_a_diverging_run_on_the_saddle_gives_a_non_finite_path_not_an_overflow_error():
    path = pg.run(nnc.SGD(2.5), "saddle", start=(0, 2), steps=10)
    assert path.shape == (11, 2) and not np.isfinite(path[-1]).all()


@pytest.mark.parametrize("w", [[1.0], None, "ab"])
def test_a_surface_names_a_bad_point(w):
    with pytest.raises((TypeError, ValueError), match="w must be a point"):
        pg.saddle().gradient(w)


def test_the_start_decides_which_of_two_minima_descent_finds():
    surface = pg.two_minima(tilt=0.3)
    deep, shallow = surface.minima
    assert surface(deep) < surface(shallow) - 0.5  # about 2 t apart
    ends = {x0: pg.run(nnc.SGD(0.05), surface, start=(x0, 1.0), steps=400)[-1]
            for x0 in (-1.5, -0.5, 0.5, 1.5)}
    for x0, end in ends.items():
        expected = deep if x0 < 0 else shallow  # the maximum sits near x = t/4 = 0.075
        assert np.linalg.norm(end - expected) < 1e-6
    with pytest.raises(ValueError, match="tilt"):
        pg.two_minima(tilt=2.0)
