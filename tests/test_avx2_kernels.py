"""The AVX2 builds of the optimizer, gradient, activation, batch-norm and
dense kernels give bit-identical results to the baseline build (they are
compiled without FMA)."""
import numpy as np
import pytest

from nnc._kernels import activations, batchnorm, dense, gradients, optimizers

avx2 = pytest.importorskip("nnc._kernels.optimizers_avx2")
gradients_avx2 = pytest.importorskip("nnc._kernels.gradients_avx2")
activations_avx2 = pytest.importorskip("nnc._kernels.activations_avx2")
batchnorm_avx2 = pytest.importorskip("nnc._kernels.batchnorm_avx2")
dense_avx2 = pytest.importorskip("nnc._kernels.dense_avx2")
from nnc.threads import cpu_has_avx2  # noqa: E402

pytestmark = pytest.mark.skipif(not cpu_has_avx2(), reason="this CPU has no AVX2")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,args", [
    ("sgd_update", (0.1,)),
    ("momentum_update", ("z", 0.1, 0.9, True)),
    ("rmsprop_update", ("r", 0.01, 0.9, 1e-8)),
    ("adam_update", ("m", "v", 1e-3, 0.9, 0.999, 1e-8, 3, 0.01)),
    ("adagrad_update", ("r", 0.1, 1e-10)),
])
def test_optimizer_kernels_bit_identical(dtype, name, args):
    rng = np.random.default_rng(0)
    n = 1001  # odd: vector body and scalar tail
    results = []
    for module in (optimizers, avx2):
        w = rng.normal(size=n).astype(dtype) if not results else results[0][0].copy()
        start = w.copy()
        local = np.random.default_rng(1)
        g = local.normal(size=n).astype(dtype)
        state = {s: np.abs(local.normal(size=n)).astype(dtype) for s in ("z", "r", "m", "v")}
        call = [state[a] if isinstance(a, str) else a for a in args]
        getattr(module, name)(w, g, *call)
        results.append((start, w, state))
    np.testing.assert_array_equal(results[0][1], results[1][1])
    for key in results[0][2]:
        np.testing.assert_array_equal(results[0][2][key], results[1][2][key])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_kernels_bit_identical(dtype):
    g = np.random.default_rng(0).normal(size=4099).astype(dtype)
    offsets = np.array([0, 7, 1000, 4099], dtype=np.int64)
    outs = [np.empty(3), np.empty(3)]
    totals = [module.segment_sum_of_squares(g, offsets, out)
              for module, out in zip((gradients, gradients_avx2), outs)]
    assert totals[0] == totals[1]
    np.testing.assert_array_equal(outs[0], outs[1])
    w = g.copy()
    a, b = g.copy(), g.copy()
    assert gradients.l2_penalty(w, a, 0.1) == gradients_avx2.l2_penalty(w, b, 0.1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,args", [
    ("relu_forward", ("x",)), ("relu_backward", ("y", "dy")),
    ("leaky_relu_forward", ("x", 0.1)), ("leaky_relu_backward", ("x", 0.1, "dy")),
    ("sigmoid_forward", ("x",)), ("sigmoid_backward", ("y", "dy")),
    ("tanh_forward", ("x",)), ("tanh_backward", ("y", "dy")),
])
def test_activation_kernels_bit_identical(dtype, name, args):
    rng = np.random.default_rng(0)
    shape = (37, 29)  # odd: vector body and scalar tail
    arrays = {"x": (rng.normal(size=shape) * 5).astype(dtype),
              "y": rng.random(shape).astype(dtype) - 0.2,
              "dy": rng.normal(size=shape).astype(dtype)}
    arrays["x"][0, :4] = [0.0, np.nan, np.inf, -np.inf]
    outs = []
    for module in (activations, activations_avx2):
        out = np.empty(shape, dtype)
        getattr(module, name)(*[arrays[a] if isinstance(a, str) else a for a in args], out)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [2, 37, 203])  # 37, 203: four-row blocks and a remainder
def test_batchnorm_and_dense_kernels_bit_identical(dtype, rows):
    rng = np.random.default_rng(0)
    f = 29  # odd: vector body and scalar tail
    x = (rng.normal(size=(rows, f)) * 3 + 1).astype(dtype)
    dy = rng.normal(size=(rows, f)).astype(dtype)
    gamma, beta = rng.normal(size=f).astype(dtype), rng.normal(size=f).astype(dtype)
    results = []
    for bn, dn in ((batchnorm, dense), (batchnorm_avx2, dense_avx2)):
        mean, var = np.zeros(f, dtype), np.ones(f, dtype)
        vectors = [np.empty(f, dtype) for _ in range(5)]  # batch mean, var, 1/std, dγ, dβ
        out, x_hat, dx, eval_out = (np.empty_like(x) for _ in range(4))
        bn.batchnorm_forward_train(x, gamma, beta, mean, var, 0.9, 1e-5, out, x_hat,
                                   *vectors[:3])
        bn.batchnorm_backward(dy, x_hat, gamma, vectors[2], vectors[3], vectors[4], dx)
        bn.batchnorm_forward_eval(x, gamma, beta, mean, var, 1e-5, eval_out)
        w = rng.normal(size=(f, 7)).astype(dtype) if not results else results[0][-1]
        dw, db, dxd = np.empty((f, 7), dtype), np.empty(7, dtype), np.empty_like(x)
        dn.dense_backward(x, w, np.ascontiguousarray(dy[:, :7]), dw, db, dxd)
        results.append([out, x_hat, dx, eval_out, mean, var, *vectors, dw, db, dxd, w])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
