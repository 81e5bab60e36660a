"""Every kernel of the compiled backend against the NumPy reference backend.

Shapes cover a single row, odd sizes, and sizes above the parallel
thresholds (``nnc._kernels._threads.get_parallel_thresholds()``: elements
for elementwise kernels, multiply-adds for GEMM), so both the serial and
the OpenMP paths of each kernel are compared with the reference.
"""
import numpy as np
import pytest

import nnc
from nnc.backends import get_backend
from nnc.backends.cython_backend import CythonBackend
from nnc.backends.numpy_backend import NumpyBackend

from nnc._kernels._threads import get_parallel_thresholds

ELEMENTWISE_PARALLEL_MIN = get_parallel_thresholds()["elementwise"]
GEMM_PARALLEL_MIN = get_parallel_thresholds()["gemm"]

# Tolerances of cython-vs-reference comparisons, per dtype. Elementwise
# kernels are compared with these directly; reductions (gemm, dense, column
# sums) add ``atol * sqrt(length of the reduction)`` because the two
# implementations may sum in a different order.
TOL = {
    np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6),
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12),
}
# Scalar losses are accumulated in double by both backends.
LOSS_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

LARGE = (1100, 1000)  # 1.1M elements > ELEMENTWISE_PARALLEL_MIN
assert LARGE[0] * LARGE[1] >= ELEMENTWISE_PARALLEL_MIN

SHAPES = [(1, 1), (1, 7), (5, 3), (17, 33), pytest.param(LARGE, id="large-parallel")]
GEMM_SHAPES = [  # (m, n, k): op(a) is m x k, op(b) is k x n
    (1, 1, 1), (1, 5, 3), (7, 3, 11), (13, 1, 9),
    pytest.param((400, 150, 300), id="large-parallel"),
]
assert 400 * 150 * 300 >= GEMM_PARALLEL_MIN


def close(actual, expected, dtype, reduction=1):
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"],
                               atol=tol["atol"] * max(1.0, np.sqrt(reduction)))


def products_close(actual, expected, dtype, magnitude, terms):
    """A sum of ``terms`` products, as BLAS computes it: the rounding error
    depends on the order of the additions (the BLAS build's code path for
    this CPU), and grows with sqrt(terms) times the size of the products,
    ``magnitude`` = |alpha| |A| @ |B| + |beta| |C| (not with the result,
    which cancellation can make small). The bound allows 4x that."""
    eps = np.finfo(dtype).eps
    bound = 4 * eps * np.sqrt(terms) * magnitude + np.finfo(dtype).tiny
    error = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    assert (error <= bound).all(), f"max error {error.max():.3g}, bound there " \
        f"{bound.flat[np.argmax(error - bound)]:.3g}"


def randn(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@pytest.fixture(scope="module")
def cyb():
    return get_backend("cython")


@pytest.fixture(scope="module")
def npb():
    return get_backend("numpy")


# --- interface ---------------------------------------------------------------

def public_names(cls):
    return {n for n in dir(cls) if not n.startswith("_")}


def test_backends_have_the_same_methods():
    assert public_names(CythonBackend) == public_names(NumpyBackend)
    for name in public_names(NumpyBackend) - {"name"}:
        assert callable(getattr(get_backend("cython"), name)), name


def test_backend_names_and_singletons():
    assert get_backend("cython").name == "cython"
    assert get_backend("numpy").name == "numpy"
    assert get_backend("cython") is get_backend("cython")


# --- gemm --------------------------------------------------------------------

@pytest.mark.parametrize("mnk", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 2.0), (-1.5, 0.25)])
def test_gemm_matches_reference(cyb, npb, dtype, rng, mnk, trans_a, trans_b, alpha, beta):
    m, n, k = mnk
    a = randn(rng, (k, m) if trans_a else (m, k), dtype)
    b = randn(rng, (n, k) if trans_b else (k, n), dtype)
    c0 = randn(rng, (m, n), dtype)
    out_cy, out_np = c0.copy(), c0.copy()
    cyb.gemm(a, b, out_cy, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    npb.gemm(a, b, out_np, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    a64 = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    b64 = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    magnitude = abs(alpha) * np.abs(a64) @ np.abs(b64) + abs(beta) * np.abs(c0)
    products_close(out_cy, out_np, dtype, 2 * magnitude, k)  # (two roundings apart)
    # and against the formula in float64
    exact = alpha * a64 @ b64 + beta * c0.astype(np.float64)
    products_close(out_cy, exact, dtype, magnitude, k)


@pytest.mark.parametrize("name", ["cython", "numpy"])
def test_gemm_beta_zero_ignores_garbage_in_out(name, dtype, rng):
    be = get_backend(name)
    a, b = randn(rng, (4, 3), dtype), randn(rng, (3, 5), dtype)
    out = np.full((4, 5), np.nan, dtype=dtype)
    be.gemm(a, b, out, alpha=1.0, beta=0.0)
    assert np.isfinite(out).all()
    close(out, a.astype(np.float64) @ b.astype(np.float64), dtype, reduction=3)


def test_gemm_empty_inner_dimension(cyb, npb, dtype, rng):
    a, b = np.zeros((3, 0), dtype), np.zeros((0, 4), dtype)
    c0 = randn(rng, (3, 4), dtype)
    out_cy, out_np = c0.copy(), c0.copy()
    cyb.gemm(a, b, out_cy, beta=0.5)
    npb.gemm(a, b, out_np, beta=0.5)
    close(out_cy, 0.5 * c0, dtype)
    close(out_np, 0.5 * c0, dtype)


@pytest.fixture
def small_gemm_blocks():
    """BLAS counts in int: rows and inner lengths beyond 2**30 go in blocks.
    Blocks of 7 here, so that small arrays take the same path."""
    from nnc._kernels import _blas

    previous = _blas._set_gemm_block(7)
    yield
    _blas._set_gemm_block(previous)


@pytest.mark.parametrize("trans_a", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["N", "T"])
def test_gemm_in_blocks_of_rows_and_inner_length(small_gemm_blocks, cyb, dtype, rng, trans_a,
                                                 trans_b):
    m, n, k = 23, 5, 16
    a = randn(rng, (k, m) if trans_a else (m, k), dtype)
    b = randn(rng, (n, k) if trans_b else (k, n), dtype)
    c0 = randn(rng, (m, n), dtype)
    out = c0.copy()
    cyb.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=2.0)
    a64 = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    b64 = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    close(out, 0.5 * a64 @ b64 + 2.0 * c0.astype(np.float64), dtype, reduction=k * 10)


def test_dense_in_blocks_of_rows(small_gemm_blocks, cyb, npb, dtype, rng):
    n, f_in, f_out = 30, 9, 4
    x, w, b = randn(rng, (n, f_in), dtype), randn(rng, (f_in, f_out), dtype), \
        randn(rng, f_out, dtype)
    dy = randn(rng, (n, f_out), dtype)
    outs = {}
    for name, be in (("cy", cyb), ("np", npb)):
        out = np.empty((n, f_out), dtype)
        dw, db, dx = np.empty_like(w), np.empty_like(b), np.empty_like(x)
        be.dense_forward(x, w, b, out)
        be.dense_backward(x, w, dy, dw, db, dx)
        outs[name] = (out, dw, db, dx)
    for got, want in zip(outs["cy"], outs["np"]):
        close(got, want, dtype, reduction=n)


# --- dense -------------------------------------------------------------------

DENSE_SHAPES = [(1, 1, 1), (1, 4, 3), (9, 5, 7), (2, 33, 17),
                pytest.param(400, 300, 150, id="large-parallel")]
assert 400 * 300 * 150 >= GEMM_PARALLEL_MIN


@pytest.mark.parametrize("n,f_in,f_out", DENSE_SHAPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_dense_forward(cyb, npb, dtype, rng, n, f_in, f_out, bias):
    x, w = randn(rng, (n, f_in), dtype), randn(rng, (f_in, f_out), dtype)
    b = randn(rng, (f_out,), dtype) if bias else None
    out_cy = np.full((n, f_out), np.nan, dtype)  # must be fully overwritten
    out_np = np.empty((n, f_out), dtype)
    cyb.dense_forward(x, w, b, out_cy)
    npb.dense_forward(x, w, b, out_np)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    magnitude = np.abs(x64) @ np.abs(w64) + (np.abs(b) if bias else 0)
    products_close(out_cy, out_np, dtype, 2 * magnitude, f_in + 1)
    exact = x64 @ w64
    if bias:
        exact = exact + b
    products_close(out_cy, exact, dtype, magnitude, f_in + 1)


DENSE_BACKWARD_SHAPES = DENSE_SHAPES[:-1] + [
    # dy of 1.1M elements: parallel column sums; xᵀdy is a 3 x 1000 x 1100
    # gemm (parallel, split over op(a) = the columns of x, more threads than
    # is useful for 3 rows); dy wᵀ is 1100 x 3 x 1000 (parallel).
    pytest.param(1100, 3, 1000, id="large-parallel"),
]


@pytest.mark.parametrize("n,f_in,f_out", DENSE_BACKWARD_SHAPES)
@pytest.mark.parametrize("with_db", [True, False], ids=["db", "no-db"])
@pytest.mark.parametrize("with_dx", [True, False], ids=["dx", "no-dx"])
def test_dense_backward(cyb, npb, dtype, rng, n, f_in, f_out, with_db, with_dx):
    x, w = randn(rng, (n, f_in), dtype), randn(rng, (f_in, f_out), dtype)
    dy = randn(rng, (n, f_out), dtype)
    results = {}
    for be in (cyb, npb):
        dw = np.full((f_in, f_out), np.nan, dtype)
        db = np.full((f_out,), np.nan, dtype) if with_db else None
        dx = np.full((n, f_in), np.nan, dtype) if with_dx else None
        be.dense_backward(x, w, dy, dw, db, dx)
        results[be.name] = (dw, db, dx)
    (dw_c, db_c, dx_c), (dw_n, db_n, dx_n) = results["cython"], results["numpy"]
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    magnitude = np.abs(x64).T @ np.abs(dy64)
    products_close(dw_c, dw_n, dtype, 2 * magnitude, n)
    products_close(dw_c, x64.T @ dy64, dtype, magnitude, n)
    if with_db:
        close(db_c, db_n, dtype, reduction=n)
        close(db_c, dy.astype(np.float64).sum(axis=0), dtype, reduction=10 * n)
    if with_dx:
        magnitude = np.abs(dy64) @ np.abs(w64).T
        products_close(dx_c, dx_n, dtype, 2 * magnitude, f_out)
        products_close(dx_c, dy64 @ w64.T, dtype, magnitude, f_out)


def test_dense_backward_empty_batch_gives_zero_gradients(cyb, dtype):
    x, w, dy = np.zeros((0, 3), dtype), np.ones((3, 2), dtype), np.zeros((0, 2), dtype)
    dw, db = np.full((3, 2), np.nan, dtype), np.full(2, np.nan, dtype)
    cyb.dense_backward(x, w, dy, dw, db, np.zeros((0, 3), dtype))
    assert (dw == 0).all() and (db == 0).all()


# --- activations -------------------------------------------------------------

def activation_input(rng, shape, dtype):
    x = randn(rng, shape, dtype, scale=3.0)
    x.reshape(-1)[::11] = 0  # exact zeros: the kink of ReLU / LeakyReLU
    return x


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh", "leaky_relu"])
def test_activation_forward_backward(cyb, npb, dtype, rng, shape, kind):
    x = activation_input(rng, shape, dtype)
    dy = randn(rng, shape, dtype)
    extra = (0.07,) if kind == "leaky_relu" else ()
    outs = {}
    for be in (npb, cyb):
        y = np.full(shape, np.nan, dtype)
        getattr(be, kind + "_forward")(x, *extra, y)
        dx = np.full(shape, np.nan, dtype)
        # relu/sigmoid/tanh derivatives take the output, leaky_relu the input;
        # both backends get the reference's output, so that a one-ulp
        # difference in y is not amplified by 1 - y² near ±1
        first = x if kind == "leaky_relu" else outs.get("numpy", (y,))[0]
        getattr(be, kind + "_backward")(first, *extra, dy, dx)
        outs[be.name] = (y, dx)
    close(outs["cython"][0], outs["numpy"][0], dtype)
    close(outs["cython"][1], outs["numpy"][1], dtype)
    # and against the formula
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    if kind == "relu":
        y_ref, d_ref = np.maximum(x64, 0), dy64 * (x64 > 0)
    elif kind == "leaky_relu":
        y_ref, d_ref = np.where(x64 > 0, x64, 0.07 * x64), np.where(x64 > 0, dy64, 0.07 * dy64)
    elif kind == "sigmoid":
        y_ref = 1 / (1 + np.exp(-x64))
        d_ref = dy64 * y_ref * (1 - y_ref)
    else:
        y_ref = np.tanh(x64)
        d_ref = dy64 * (1 - y_ref ** 2)
    tol = TOL[dtype]
    np.testing.assert_allclose(outs["cython"][0], y_ref, rtol=10 * tol["rtol"], atol=tol["atol"])
    np.testing.assert_allclose(outs["cython"][1], d_ref, rtol=10 * tol["rtol"],
                               atol=10 * tol["atol"])


@pytest.mark.parametrize("name", ["cython", "numpy"])
@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh", "leaky_relu", "dropout"])
def test_elementwise_backward_may_write_over_dy(name, kind, dtype, rng):
    """Layers pass dx = dy (backward_in_place): every elementwise backward
    kernel must give the same result when its output is its input gradient."""
    be = nnc.backends.get_backend(name, dtype)
    shape = (37, 45)
    first = activation_input(rng, shape, dtype)
    if kind in ("sigmoid", "tanh"):
        first = np.tanh(first)  # an output of the activation
    extra = {"leaky_relu": (0.07,)}.get(kind, ())
    dy = randn(rng, shape, dtype)
    if kind == "dropout":
        args = lambda grad: (grad, rng_mask, 0.3)  # noqa: E731
        rng_mask = rng.random(shape).astype(dtype)
    else:
        args = lambda grad: (first, *extra, grad)  # noqa: E731
    separate = np.full(shape, np.nan, dtype)
    getattr(be, kind + "_backward")(*args(dy), separate)
    in_place = dy.copy()
    getattr(be, kind + "_backward")(*args(in_place), in_place)
    np.testing.assert_array_equal(in_place, separate)
    assert not np.array_equal(separate, dy)  # the kernel did change something


@pytest.mark.parametrize("name", ["cython", "numpy"])
def test_activations_stable_at_extremes(name, dtype):
    be = get_backend(name)
    x = np.array([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype)
    y = np.empty_like(x)
    with np.errstate(over="raise", invalid="raise"):  # no overflow, no NaN
        be.sigmoid_forward(x, y)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, [[0.0, 0.0, 0.5, 1.0, 1.0]], atol=1e-30)
    be.tanh_forward(x, y)
    np.testing.assert_array_equal(y, [[-1.0, -1.0, 0.0, 1.0, 1.0]])


def ulps(actual, exact):
    """|actual - exact| in units of float32 spacing at the exact value."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    spacing = np.maximum(spacing, np.finfo(np.float32).smallest_normal)
    return np.abs(actual.astype(np.float64) - exact) / spacing


def test_float32_sigmoid_and_tanh_are_accurate_to_a_few_ulp():
    # float32 sigmoid/tanh are branch-free polynomials (_vector_math.h), not libm
    be = get_backend("cython")
    grid = np.concatenate([np.linspace(-40, 40, 400_001), np.geomspace(1e-30, 50, 20_001),
                           -np.geomspace(1e-30, 50, 20_001),
                           [0.625, -0.625, np.nextafter(np.float32(0.625), 0)]])
    x = grid.astype(np.float32).reshape(1, -1)
    x64 = x.astype(np.float64)
    y = np.empty_like(x)
    be.tanh_forward(x, y)
    assert ulps(y, np.tanh(x64)).max() <= 3
    np.testing.assert_array_equal(y, -be_tanh_of(be, -x))  # odd function, exactly
    be.sigmoid_forward(x, y)
    e = np.exp(-np.abs(x64))
    assert ulps(y, np.where(x64 >= 0, 1, e) / (1 + e)).max() <= 3
    special = np.array([[0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45]], np.float32)
    out = np.empty_like(special)
    be.tanh_forward(special, out)
    expected = np.array([[0.0, -0.0, 1.0, -1.0, np.nan, 1e-45, -1e-45]], np.float32)
    np.testing.assert_array_equal(out, expected)  # tanh x = x for tiny x, ±0 kept
    np.testing.assert_array_equal(np.signbit(out), np.signbit(expected))
    be.sigmoid_forward(special, out)
    np.testing.assert_array_equal(out, [[0.5, 0.5, 1.0, 0.0, np.nan, 0.5, 0.5]])


def be_tanh_of(be, x):
    y = np.empty_like(x)
    be.tanh_forward(x, y)
    return y


# --- losses ------------------------------------------------------------------

def loss_inputs(rng, shape, dtype, kind):
    n, k = shape
    z = randn(rng, shape, dtype, scale=2.0)
    if kind == "softmax_cross_entropy":
        return z, rng.integers(0, k, size=n).astype(np.int64)
    if kind == "bce_with_logits":
        return z, rng.uniform(0, 1, size=shape).astype(dtype)
    return z, randn(rng, shape, dtype)


def loss_reference64(kind, z, t):
    """The loss and its gradient written out in float64."""
    z = z.astype(np.float64)
    if kind == "softmax_cross_entropy":
        n = z.shape[0]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(n), t]))
        g = p.copy()
        g[np.arange(n), t] -= 1
        return loss, g / n
    if kind == "mean_squared_error":
        d = z - t
        return np.mean(d ** 2), 2 * d / d.size
    s = 1 / (1 + np.exp(-z))
    return np.mean(-t * np.log(s) - (1 - t) * np.log1p(-s)), (s - t) / z.size


LOSS_SHAPES = [(1, 1), (1, 7), (5, 3), (17, 33), pytest.param(LARGE, id="large-parallel")]


@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("kind", ["softmax_cross_entropy", "mean_squared_error",
                                  "bce_with_logits"])
@pytest.mark.parametrize("with_grad", [True, False], ids=["grad", "no-grad"])
def test_loss_kernels(cyb, npb, dtype, rng, shape, kind, with_grad):
    z, t = loss_inputs(rng, shape, dtype, kind)
    results = {}
    for be in (cyb, npb):
        grad = np.full(shape, np.nan, dtype) if with_grad else None
        value = getattr(be, kind)(z, t, grad) if with_grad else getattr(be, kind)(z, t)
        assert isinstance(value, float)
        results[be.name] = (value, grad)
    (l_c, g_c), (l_n, g_n) = results["cython"], results["numpy"]
    assert l_c == pytest.approx(l_n, rel=LOSS_RTOL[dtype], abs=1e-12)
    exact_loss, exact_grad = loss_reference64(kind, z, t)
    assert l_c == pytest.approx(exact_loss, rel=LOSS_RTOL[dtype], abs=1e-12)
    if with_grad:
        # gradients are O(1/size): scale the absolute tolerance with them
        scale = 1.0 / (shape[0] if kind == "softmax_cross_entropy" else z.size)
        tol = TOL[dtype]
        np.testing.assert_allclose(g_c, g_n, rtol=tol["rtol"], atol=tol["atol"] * scale)
        np.testing.assert_allclose(g_c, exact_grad, rtol=10 * tol["rtol"],
                                   atol=10 * tol["atol"] * scale)


def test_softmax_cross_entropy_grad_rows_sum_to_zero(cyb, dtype, rng):
    z, t = loss_inputs(rng, (6, 4), dtype, "softmax_cross_entropy")
    g = np.empty_like(z)
    cyb.softmax_cross_entropy(z, t, g)
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=10 * TOL[dtype]["atol"])


@pytest.mark.parametrize("name", ["cython", "numpy"])
def test_losses_stable_at_extremes(name, dtype):
    be = get_backend(name)
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]], dtype)
    g = np.empty_like(z)
    with np.errstate(over="raise"):
        loss = be.softmax_cross_entropy(z, np.array([1, 0], np.int64), g)
    assert np.isfinite(loss) and np.isfinite(g).all()
    # row 0: logsumexp = 1000, loss 2000; row 1: logsumexp = 1000 + log 2, loss 2000 + log 2
    assert loss == pytest.approx((2000 + 2000 + np.log(2)) / 2, rel=1e-6)
    np.testing.assert_allclose(g, [[0.5, -0.5, 0.0], [-0.5, 0.25, 0.25]], atol=1e-7)
    t = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]], dtype)
    with np.errstate(over="raise"):
        loss = be.bce_with_logits(z, t, g)
    assert np.isfinite(loss) and np.isfinite(g).all()
    # per element: 1000, 1000, log 2, 1000, 1000, 0
    assert loss == pytest.approx((4000 + np.log(2)) / 6, rel=1e-6)
    np.testing.assert_allclose(g, np.array([[1, -1, 0], [-1, 1, 0]]) / 6, atol=1e-7)


def test_float32_bce_matches_float64_over_a_wide_range():
    # float32 BCE uses the branch-free exp/log1p of _vector_math.h
    be = get_backend("cython")
    rng = np.random.default_rng(0)
    z = np.linspace(-40, 40, 8001).astype(np.float32).reshape(1, -1)
    t = rng.random(z.shape).astype(np.float32)
    t[0, ::3] = np.round(t[0, ::3])  # hard 0/1 targets too
    g = np.empty_like(z)
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    e = np.exp(-np.abs(z64))
    exact = np.maximum(z64, 0) - z64 * t64 + np.log1p(e)
    assert be.bce_with_logits(z, t, g) == pytest.approx(exact.mean(), rel=2e-6)
    exact_grad = (np.where(z64 >= 0, 1, e) / (1 + e) - t64) / z.size
    np.testing.assert_allclose(g, exact_grad, rtol=1e-5, atol=1e-7 / z.size)
    # a confident logit with a soft target: max(z, 0) - z t must not cancel
    z_big, t_soft = np.full((1, 1), 1000, np.float32), np.full((1, 1), 0.999, np.float32)
    assert be.bce_with_logits(z_big, t_soft) == pytest.approx(
        1000 * (1 - np.float64(t_soft[0, 0])), rel=1e-6)
    # terms of ~1e-9 (confident and right) keep their relative precision
    confident = np.full((4, 100), -20.0, np.float32)
    assert be.bce_with_logits(confident, np.zeros_like(confident)) == pytest.approx(
        np.log1p(np.exp(-20.0)), rel=1e-6)


@pytest.mark.parametrize("n_rows,n_index", [(1, 1), (10, 0), (50, 17), (3000, 600)])
def test_gather_rows(cyb, npb, dtype, rng, n_rows, n_index):
    """out[i] = x[index[i]] (the shuffled batch); 600 x 784 goes parallel."""
    x = randn(rng, (n_rows, 784), dtype)
    index = rng.integers(0, n_rows, n_index)
    for be in (npb, cyb):
        out = np.full((n_index, 784), np.nan, dtype)
        be.gather_rows(x, index, out)
        np.testing.assert_array_equal(out, x[index])


@pytest.mark.parametrize("name", ["cython", "numpy"])
@pytest.mark.parametrize("bad", [-1, 5])
def test_gather_rows_refuses_an_index_out_of_range(name, bad):
    be = nnc.backends.get_backend(name, np.float32)
    x = np.zeros((5, 3), np.float32)
    with pytest.raises(IndexError, match=f"{bad}"):
        be.gather_rows(x, np.array([0, bad, 1]), np.empty((3, 3), np.float32))


@pytest.mark.parametrize("value", [1e20, 3e30, 1e-25, 1e-40, np.nan])
def test_float32_sum_of_squares_outside_the_float_square_range(cyb, value):
    # float32 squares are summed in float first: squares that overflow
    # (|g| > 1.8e19) or vanish (|g| < 1e-19) must fall back to double
    g = np.full(1000, value, np.float32)
    g[::7] = 0.5 * value
    exact = float(np.sum(g.astype(np.float64) ** 2))
    out = np.empty(2)
    total = cyb.segment_sum_of_squares(g, np.array([0, 300, 1000], np.int64), out)
    if np.isnan(value):
        assert np.isnan(total)
    else:
        assert total == pytest.approx(exact, rel=1e-6)
        assert out.sum() == pytest.approx(exact, rel=1e-6)


# --- count_correct, sgd_update, all_finite ----------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (37, 10), pytest.param(LARGE, id="large")])
def test_count_correct(cyb, npb, dtype, rng, shape):
    z = randn(rng, shape, dtype)
    labels = z.argmax(axis=1).astype(np.int64)
    labels[::3] = rng.integers(0, shape[1], size=labels[::3].size)  # some wrong
    expected = int((z.argmax(axis=1) == labels).sum())
    assert cyb.count_correct(z, labels) == expected
    assert npb.count_correct(z, labels) == expected
    assert isinstance(cyb.count_correct(z, labels), int)


def test_count_binary_correct(cyb, npb, dtype, rng):
    z = randn(rng, (37, 3), dtype)
    z[0, :] = [0.0, np.nan, -0.0]  # not above 0: predicted negative
    target = rng.random((37, 3)).astype(dtype)
    target[1, :] = [0.5, 0.0, 1.0]  # 0.5 is not above 0.5: negative
    expected = int(np.sum((z > 0) == (target > 0.5)))
    assert cyb.count_binary_correct(z, target) == expected
    assert npb.count_binary_correct(z, target) == expected
    with pytest.raises(ValueError, match="target has shape"):
        cyb.count_binary_correct(z, target[:, :2].copy())


def test_count_correct_ties_take_the_first_maximum(cyb, npb, dtype):
    z = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]], dtype)
    for be in (cyb, npb):
        assert be.count_correct(z, np.array([0, 1], np.int64)) == 2
        assert be.count_correct(z, np.array([1, 2], np.int64)) == 0


@pytest.mark.parametrize("size", [1, 7, 1000, pytest.param(LARGE[0] * LARGE[1], id="large")])
def test_sgd_update(cyb, npb, dtype, rng, size):
    w0, g = randn(rng, size, dtype), randn(rng, size, dtype)
    w_c, w_n = w0.copy(), w0.copy()
    cyb.sgd_update(w_c, g, 0.1)
    npb.sgd_update(w_n, g, 0.1)
    close(w_c, w_n, dtype)
    close(w_c, w0.astype(np.float64) - 0.1 * g.astype(np.float64), dtype)
    assert not np.array_equal(w_c, w0)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), pytest.param(LARGE, id="large")])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["first", "last"])
def test_all_finite(cyb, npb, dtype, rng, shape, bad, where):
    x = randn(rng, shape, dtype)
    if bad is not None:
        x.reshape(-1)[0 if where == "first" else -1] = bad
    for be in (cyb, npb):
        assert be.all_finite(x) is (bad is None)
        assert be.all_finite(x.reshape(-1)) is (bad is None)


# --- rejected arguments: a ValueError/TypeError, never a crash ----------------

def _f32(*shape):
    return np.zeros(shape, np.float32)


def _f64(*shape):
    return np.zeros(shape, np.float64)


def _labels(*values):
    return np.array(values, np.int64)


SHAPE_ERRORS = {
    "gemm-inner": lambda b: b.gemm(_f32(3, 4), _f32(5, 2), _f32(3, 2)),
    "gemm-out": lambda b: b.gemm(_f32(3, 4), _f32(4, 2), _f32(3, 3)),
    "gemm-trans-inner": lambda b: b.gemm(_f32(3, 4), _f32(4, 2), _f32(4, 2), trans_a=True),
    "dense_forward-out-rows": lambda b: b.dense_forward(_f32(3, 4), _f32(4, 2), None, _f32(2, 2)),
    "dense_forward-out-cols": lambda b: b.dense_forward(_f32(3, 4), _f32(4, 2), None, _f32(3, 3)),
    "dense_forward-w": lambda b: b.dense_forward(_f32(3, 4), _f32(5, 2), None, _f32(3, 2)),
    "dense_forward-bias": lambda b: b.dense_forward(_f32(3, 4), _f32(4, 2), _f32(3), _f32(3, 2)),
    "dense_backward-dy": lambda b: b.dense_backward(_f32(3, 4), _f32(4, 2), _f32(2, 2),
                                                    _f32(4, 2), None, None),
    "dense_backward-dw": lambda b: b.dense_backward(_f32(3, 4), _f32(4, 2), _f32(3, 2),
                                                    _f32(2, 4), None, None),
    "dense_backward-db": lambda b: b.dense_backward(_f32(3, 4), _f32(4, 2), _f32(3, 2),
                                                    _f32(4, 2), _f32(3), None),
    "dense_backward-dx": lambda b: b.dense_backward(_f32(3, 4), _f32(4, 2), _f32(3, 2),
                                                    _f32(4, 2), None, _f32(3, 2)),
    "relu_forward-out": lambda b: b.relu_forward(_f32(3, 4), _f32(4, 3)),
    "relu_backward-dy": lambda b: b.relu_backward(_f32(3, 4), _f32(3, 5), _f32(3, 4)),
    "relu_backward-dx": lambda b: b.relu_backward(_f32(3, 4), _f32(3, 4), _f32(2, 4)),
    "leaky_forward-out": lambda b: b.leaky_relu_forward(_f32(3, 4), 0.1, _f32(3, 3)),
    "leaky_backward-dx": lambda b: b.leaky_relu_backward(_f32(3, 4), 0.1, _f32(3, 4), _f32(3, 1)),
    "sigmoid_forward-out": lambda b: b.sigmoid_forward(_f32(3, 4), _f32(12, 1)),
    "sigmoid_backward-dy": lambda b: b.sigmoid_backward(_f32(3, 4), _f32(4, 3), _f32(3, 4)),
    "tanh_forward-out": lambda b: b.tanh_forward(_f32(3, 4), _f32(3, 5)),
    "tanh_backward-dx": lambda b: b.tanh_backward(_f32(3, 4), _f32(3, 4), _f32(3, 5)),
    "ce-labels-too-short": lambda b: b.softmax_cross_entropy(_f32(3, 4), _labels(0, 1)),
    "ce-labels-too-long": lambda b: b.softmax_cross_entropy(_f32(3, 4), _labels(0, 1, 2, 3)),
    "ce-label-too-large": lambda b: b.softmax_cross_entropy(_f32(3, 4), _labels(0, 4, 1)),
    "ce-label-negative": lambda b: b.softmax_cross_entropy(_f32(3, 4), _labels(0, -1, 1)),
    "ce-label-too-large-with-grad": lambda b: b.softmax_cross_entropy(
        _f32(3, 4), _labels(0, 1, 99), _f32(3, 4)),
    "ce-label-bad-parallel": lambda b: b.softmax_cross_entropy(
        _f32(*LARGE), np.r_[np.zeros(LARGE[0] - 1, np.int64), [LARGE[1]]]),
    "ce-grad": lambda b: b.softmax_cross_entropy(_f32(3, 4), _labels(0, 1, 2), _f32(3, 3)),
    "ce-empty": lambda b: b.softmax_cross_entropy(_f32(0, 4), _labels()),
    "mse-target": lambda b: b.mean_squared_error(_f32(3, 4), _f32(3, 3)),
    "mse-grad": lambda b: b.mean_squared_error(_f32(3, 4), _f32(3, 4), _f32(4, 3)),
    "mse-empty": lambda b: b.mean_squared_error(_f32(0, 4), _f32(0, 4)),
    "bce-target": lambda b: b.bce_with_logits(_f32(3, 4), _f32(2, 4)),
    "bce-grad": lambda b: b.bce_with_logits(_f32(3, 4), _f32(3, 4), _f32(3, 1)),
    "count_correct-labels": lambda b: b.count_correct(_f32(3, 4), _labels(0, 1)),
    "gather_rows-out": lambda b: b.gather_rows(_f32(5, 3), np.array([0, 1]), _f32(2, 4)),
    "sgd-size": lambda b: b.sgd_update(_f32(5), _f32(4), 0.1),
}


@pytest.mark.parametrize("case", sorted(SHAPE_ERRORS))
def test_cython_kernels_reject_bad_shapes(cyb, case):
    with pytest.raises(ValueError):
        SHAPE_ERRORS[case](cyb)


DTYPE_ERRORS = {
    "gemm": lambda b: b.gemm(_f32(3, 4), _f64(4, 2), _f32(3, 2)),
    "gemm-out": lambda b: b.gemm(_f32(3, 4), _f32(4, 2), _f64(3, 2)),
    "dense_forward-w": lambda b: b.dense_forward(_f32(3, 4), _f64(4, 2), None, _f32(3, 2)),
    "dense_forward-b": lambda b: b.dense_forward(_f64(3, 4), _f64(4, 2), _f32(2), _f64(3, 2)),
    "dense_backward-dw": lambda b: b.dense_backward(_f32(3, 4), _f32(4, 2), _f32(3, 2),
                                                    _f64(4, 2), None, None),
    "relu_forward": lambda b: b.relu_forward(_f32(3, 4), _f64(3, 4)),
    "sigmoid_backward": lambda b: b.sigmoid_backward(_f64(3, 4), _f32(3, 4), _f64(3, 4)),
    "leaky_relu_backward": lambda b: b.leaky_relu_backward(_f64(3, 4), 0.1, _f64(3, 4),
                                                           _f32(3, 4)),
    "tanh_forward-float16": lambda b: b.tanh_forward(np.zeros((2, 2), np.float16),
                                                     np.zeros((2, 2), np.float16)),
    "ce-grad": lambda b: b.softmax_cross_entropy(_f32(3, 4), _labels(0, 1, 2), _f64(3, 4)),
    "ce-int32-labels": lambda b: b.softmax_cross_entropy(_f32(3, 4), np.zeros(3, np.int32)),
    "ce-float-labels": lambda b: b.softmax_cross_entropy(_f32(3, 4), np.zeros(3)),
    "mse-target": lambda b: b.mean_squared_error(_f32(3, 4), _f64(3, 4)),
    "bce-target": lambda b: b.bce_with_logits(_f64(3, 4), _f32(3, 4)),
    "count_correct-int-logits": lambda b: b.count_correct(np.zeros((3, 4), np.int64),
                                                          _labels(0, 1, 2)),
    "sgd": lambda b: b.sgd_update(_f32(5), _f64(5), 0.1),
    "all_finite-int": lambda b: b.all_finite(np.zeros(3, np.int64)),
    "relu-noncontiguous": lambda b: b.relu_forward(_f32(3, 8)[:, ::2], _f32(3, 4)),
    "relu-fortran": lambda b: b.relu_forward(np.asfortranarray(_f32(3, 4)), _f32(3, 4)),
    "dense-none-x": lambda b: b.dense_forward(None, _f32(4, 2), None, _f32(3, 2)),
}


@pytest.mark.parametrize("case", sorted(DTYPE_ERRORS))
def test_cython_kernels_reject_bad_dtypes_and_layouts(cyb, case):
    with pytest.raises((ValueError, TypeError)):
        DTYPE_ERRORS[case](cyb)


def test_read_only_output_is_rejected(cyb):
    out = _f32(3, 4)
    out.flags.writeable = False
    with pytest.raises((ValueError, TypeError)):
        cyb.relu_forward(_f32(3, 4), out)


# --- the thread count changes nothing beyond rounding ------------------------

THREAD_TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def test_results_independent_of_thread_count(cyb, dtype, rng, restore_threads):
    n, k = LARGE
    dy = randn(rng, (n, k), dtype)
    x, w = randn(rng, (n, 3), dtype), randn(rng, (3, k), dtype)
    labels = rng.integers(0, k, size=n).astype(np.int64)
    target = rng.uniform(0, 1, size=(n, k)).astype(dtype)
    a, b = randn(rng, (400, 300), dtype), randn(rng, (300, 150), dtype)  # > GEMM threshold
    runs = {}
    for threads in (1, 2):
        nnc.set_num_threads(threads)
        assert nnc.get_num_threads() == threads
        dw, db, dx = np.empty((3, k), dtype), np.empty(k, dtype), np.empty((n, 3), dtype)
        cyb.dense_backward(x, w, dy, dw, db, dx)
        c = np.empty((400, 150), dtype)
        cyb.gemm(a, b, c)
        g = np.empty_like(dy)
        losses = (cyb.softmax_cross_entropy(dy, labels, g),
                  cyb.mean_squared_error(dy, target),
                  cyb.bce_with_logits(dy, target))
        runs[threads] = dict(dw=dw, db=db, dx=dx, c=c, g=g, losses=np.array(losses))
    tol = THREAD_TOL[dtype]
    # column sums: relative to the sum of magnitudes they add up
    col_scale = np.abs(dy.astype(np.float64)).sum(axis=0)
    assert (np.abs(runs[1]["db"].astype(np.float64) - runs[2]["db"]) <= tol * col_scale).all()
    np.testing.assert_allclose(runs[1]["losses"], runs[2]["losses"], rtol=tol)
    for key in ("dw", "dx", "c", "g"):
        np.testing.assert_allclose(runs[1][key], runs[2][key], rtol=tol,
                                   atol=tol * np.abs(runs[1][key]).max(), err_msg=key)


@pytest.mark.parametrize("limit", [-1.0, float("nan")])
def test_clip_refuses_a_negative_or_nan_limit(cyb, npb, dtype, limit):
    for be in (cyb, npb):
        with pytest.raises(ValueError, match="limit must be >= 0"):
            be.clip(np.ones(3, dtype), limit)


@pytest.mark.parametrize("labels", [[-1, 2], [0, 3], [1]])
def test_label_checks_agree_between_backends(cyb, npb, dtype, labels):
    z = np.zeros((2, 3), dtype)
    labels = np.array(labels, np.int64)
    for be in (cyb, npb):
        with pytest.raises(ValueError, match="labels"):
            be.softmax_cross_entropy(z, labels)
        if len(labels) != 2:
            with pytest.raises(ValueError, match="labels has shape"):
                be.count_correct(z, labels)
        else:  # a label out of range is a wrong prediction
            assert be.count_correct(z, labels) == int(labels[0] == 0)


@pytest.mark.parametrize("offset", [1e12, 1e17, -1e30])
def test_softmax_cross_entropy_keeps_its_value_for_huge_logits(cyb, npb, dtype, offset):
    """log-sum-exp shifted by the row maximum: a huge constant added to
    every logit must not swallow the loss (the compiled loss was 0 at 1e17)."""
    z = (np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 2.0]]) + offset).astype(dtype)
    labels = np.array([0, 2], np.int64)
    shifted = z.astype(np.float64) - z.astype(np.float64).max(axis=1, keepdims=True)
    expected = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[[0, 1], labels])
    assert expected > 0.4  # log 3 for the first row
    for be in (cyb, npb):
        assert be.softmax_cross_entropy(z, labels) == pytest.approx(expected, rel=1e-6)


def test_batchnorm_momentum_that_rounds_to_one_still_updates(cyb, npb, dtype):
    x = np.array([[4.0, 6.0], [6.0, 4.0]], dtype)
    outs = []
    for be in (cyb, npb):
        mean, var = np.zeros(2, dtype), np.ones(2, dtype)
        vectors = [np.empty(2, dtype) for _ in range(3)]
        be.batchnorm_forward_train(x, np.ones(2, dtype), np.zeros(2, dtype), mean, var,
                                   1 - 1e-9, 1e-5, np.empty_like(x), np.empty_like(x), *vectors)
        outs.append(mean)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6)
    np.testing.assert_allclose(outs[0], [5e-9, 5e-9], rtol=1e-5)


@pytest.mark.parametrize("rows", [10, 40, 100])
def test_batchnorm_of_a_constant_feature_is_zero(cyb, npb, dtype, rows):
    """μ summed in double, then a second pass about it that corrects its
    rounding: a feature constant over the batch has σ² = 0 and ẑ = 0 exactly
    (float32 means were off), even with a tiny ε."""
    values = np.random.default_rng(rows).uniform(1e3, 1e4, size=50).astype(dtype)
    x = np.ascontiguousarray(np.broadcast_to(values, (rows, 50)))
    for be in (cyb, npb):
        outs = [np.empty_like(x) for _ in range(2)]
        vectors = [np.empty(50, dtype) for _ in range(3)]
        be.batchnorm_forward_train(x, np.ones(50, dtype), np.zeros(50, dtype),
                                   np.zeros(50, dtype), np.ones(50, dtype), 0.9, 1e-30, *outs,
                                   *vectors)
        np.testing.assert_array_equal(vectors[1], 0)  # the variance
        np.testing.assert_array_equal(outs[1], 0)  # x̂: the second pass corrects the mean
        if dtype == np.float32:  # summed exactly in double
            np.testing.assert_array_equal(vectors[0], values)
        else:  # within rounding of the float64 sum
            np.testing.assert_allclose(vectors[0], values, rtol=1e-13)


def test_batchnorm_of_a_feature_with_a_large_mean(cyb, npb, dtype):
    """ẑ = (z - μ)/σ without cancelling μ against itself: a feature of mean
    1e4 and spread 0.1 normalises to a few ulps of the exact value, in
    training (batch statistics) and evaluation (running statistics)."""
    rng = np.random.default_rng(0)
    x = (1e4 + 0.1 * rng.standard_normal((64, 8))).astype(dtype)
    exact = x.astype(np.float64)
    mean, var = exact.mean(axis=0), exact.var(axis=0)
    expected = (exact - mean) / np.sqrt(var + 1e-5)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    ones, zeros = np.ones(8, dtype), np.zeros(8, dtype)
    for be in (cyb, npb):
        out, x_hat = np.empty_like(x), np.empty_like(x)
        vectors = [np.empty(8, dtype) for _ in range(3)]
        be.batchnorm_forward_train(x, ones, zeros, zeros.copy(), ones.copy(), 0.9, 1e-5, out,
                                   x_hat, *vectors)
        np.testing.assert_allclose(x_hat, expected, atol=tolerance)
        # evaluation: exact for the statistics as stored (a float32 mean is
        # itself only within half an ulp of 1e4 of the batch's)
        evaluated = np.empty_like(x)
        be.batchnorm_forward_eval(x, ones, zeros, vectors[0], vectors[1], 1e-5, evaluated)
        stored = (exact - vectors[0].astype(np.float64)) / np.sqrt(
            vectors[1].astype(np.float64) + 1e-5)
        np.testing.assert_allclose(evaluated, stored, atol=tolerance)


def test_relu_backward_selects_so_an_infinite_gradient_at_an_inactive_unit_is_zero(cyb, npb,
                                                                                     dtype):
    y = np.array([[0.0, 1.0], [2.0, 0.0]], dtype)
    dy = np.array([[np.inf, 3.0], [-np.inf, np.nan]], dtype)
    for be in (cyb, npb):
        dx = np.empty_like(dy)
        be.relu_backward(y, dy, dx)
        np.testing.assert_array_equal(dx, [[0.0, 3.0], [-np.inf, 0.0]])


@pytest.mark.parametrize("margin", [6.0, 17.0, 30.0])
def test_softmax_cross_entropy_of_a_confident_right_prediction(cyb, npb, dtype, margin):
    """Loss log(1 + e^-margin) and the label's gradient p - 1 = -(1 - p) keep
    their relative accuracy in float32 (a float32 sum near 1 lost them)."""
    z = np.array([[0.0, -margin]], dtype)
    exact_loss = np.log1p(np.exp(-margin))
    exact_grad = -np.exp(-margin) / (1 + np.exp(-margin))
    for be in (cyb, npb):
        grad = np.empty_like(z)
        assert be.softmax_cross_entropy(z, np.array([0]), grad) == pytest.approx(exact_loss,
                                                                                  rel=1e-6)
        assert grad[0, 0] == pytest.approx(exact_grad, rel=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "cython"])
@pytest.mark.parametrize("call, match", [
    (lambda b: b.mean_squared_error(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)),
     "the batch is empty"),
    (lambda b: b.bce_with_logits(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)),
     "the batch is empty"),
    (lambda b: b.softmax_cross_entropy(np.zeros((0, 2), np.float32), np.zeros(0, np.int64)),
     "the batch is empty"),
    (lambda b: b.segment_sum_of_squares(np.ones(4, np.float32), np.array([0, 2, 9]), np.zeros(2)),
     r"offsets must rise within \[0, 4\], got 2..9"),
    (lambda b: b.segment_sum_of_squares(np.ones(4, np.float32), np.array([0, 3, 2]), np.zeros(2)),
     r"offsets must rise within \[0, 4\], got 3..2"),
])
def test_both_backends_refuse_what_would_be_a_silent_wrong_number(backend, call, match):
    with pytest.raises(ValueError, match=match):
        call(get_backend(backend, np.float32))
