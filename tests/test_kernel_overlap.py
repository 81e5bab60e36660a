"""Compiled kernels refuse outputs that share memory with their inputs (or
with each other), where the loops would read values they had already
overwritten; elementwise kernels may run in place (output = input exactly),
and then give the same result as with a separate output."""
import numpy as np
import pytest

from nnc.backends import get_backend

DTYPES = [np.float32, np.float64]


def shifted_pair(shape, dtype, rng):
    """Two views of one buffer, one element apart: partial overlap."""
    size = int(np.prod(shape))
    buf = rng.normal(size=size + 1).astype(dtype)
    return buf[:size].reshape(shape), buf[1:].reshape(shape)


def assert_in_place_is_the_same(run, x):
    """``run(x, out)`` gives the same with ``out`` = ``x`` (in place) as with
    an output of its own (returned values included)."""
    expected = np.empty_like(x)
    returned = run(x, expected)
    in_place = x.copy()
    assert run(in_place, in_place) == returned
    np.testing.assert_array_equal(in_place, expected)


ELEMENTWISE = {
    "relu_forward": lambda be, x, out: be.relu_forward(x, out),
    "sigmoid_forward": lambda be, x, out: be.sigmoid_forward(x, out),
    "tanh_forward": lambda be, x, out: be.tanh_forward(x, out),
    "leaky_relu_forward": lambda be, x, out: be.leaky_relu_forward(x, 0.1, out),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_activation_forward_in_place_or_refused(name, dtype):
    be = get_backend("cython", dtype)
    rng = np.random.default_rng(0)
    run = ELEMENTWISE[name]
    assert_in_place_is_the_same(lambda x, out: run(be, x, out),
                                rng.normal(size=(5, 7)).astype(dtype))
    a, b = shifted_pair((5, 7), dtype, rng)
    with pytest.raises(ValueError, match="out and x share memory"):
        run(be, a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu_backward", "sigmoid_backward", "tanh_backward"])
def test_activation_backward_over_dy_or_refused(name, dtype):
    be = get_backend("cython", dtype)
    rng = np.random.default_rng(1)
    y, dy = rng.random((4, 6)).astype(dtype), rng.normal(size=(4, 6)).astype(dtype)
    assert_in_place_is_the_same(lambda dy, dx: getattr(be, name)(y, dy, dx), dy)
    a, b = shifted_pair((4, 6), dtype, rng)
    with pytest.raises(ValueError, match="dx and dy share memory"):
        getattr(be, name)(y, a, b)
    with pytest.raises(ValueError, match="dx and y share memory"):
        getattr(be, name)(a, dy, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matrix_kernels_refuse_any_overlap(dtype):
    be = get_backend("cython", dtype)
    rng = np.random.default_rng(2)
    a, w = rng.normal(size=(6, 6)).astype(dtype), rng.normal(size=(6, 6)).astype(dtype)
    with pytest.raises(ValueError, match="out and b share memory"):
        be.gemm(a, w, w)
    with pytest.raises(ValueError, match="out and a share memory"):
        be.gemm(a, w, a[:, :])
    with pytest.raises(ValueError, match="out and x share memory"):
        be.dense_forward(a, w, np.ones(6, dtype), a)
    flat = np.zeros(42, dtype)
    with pytest.raises(ValueError, match="out and b share memory"):
        be.dense_forward(a, w, flat[30:36], flat[:36].reshape(6, 6))
    dy = rng.normal(size=(6, 6)).astype(dtype)
    with pytest.raises(ValueError, match="dx and dy share memory"):
        be.dense_backward(a, w, dy, np.empty((6, 6), dtype), None, dy)
    flat = np.empty(42, dtype)
    with pytest.raises(ValueError, match="dw and db share memory"):
        be.dense_backward(a, w, dy, flat[:36].reshape(6, 6), flat[30:36], None)
    with pytest.raises(ValueError, match="out and x share memory"):
        be.gather_rows(a, np.array([1, 0, 3, 2, 5, 4]), a)
    labels = np.arange(6) % 3
    with pytest.raises(ValueError, match="grad and logits share memory"):
        be.softmax_cross_entropy(a, labels, a)
    target, grad = shifted_pair((6, 6), dtype, rng)
    with pytest.raises(ValueError, match="grad and target share memory"):
        be.mean_squared_error(a, target, grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_refuses_overlap(dtype):
    be = get_backend("cython", dtype)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 4)).astype(dtype)
    vectors = [np.ones(4, dtype) for _ in range(7)]  # γ, β, running mean/var, batch mean/var, 1/σ
    gamma, beta, mean, var, batch_mean, batch_var, inv_std = vectors
    out, x_hat = np.empty_like(x), np.empty_like(x)
    with pytest.raises(ValueError, match="out and x_hat share memory"):
        be.batchnorm_forward_train(x, gamma, beta, mean, var, 0.9, 1e-5, out, out, batch_mean,
                                   batch_var, inv_std)
    with pytest.raises(ValueError, match="batch_mean and running_mean share memory"):
        be.batchnorm_forward_train(x, gamma, beta, mean, var, 0.9, 1e-5, out, x_hat, mean,
                                   batch_var, inv_std)
    first, second = shifted_pair((8, 4), dtype, rng)
    with pytest.raises(ValueError, match="out and x share memory"):
        be.batchnorm_forward_eval(first, gamma, beta, mean, var, 1e-5, second)
    be.batchnorm_forward_train(x, gamma, beta, mean, var, 0.9, 1e-5, out, x_hat, batch_mean,
                               batch_var, inv_std)
    with pytest.raises(ValueError, match="dgamma and dbeta share memory"):
        be.batchnorm_backward(x, x_hat, gamma, inv_std, batch_mean, batch_mean, out)
    with pytest.raises(ValueError, match="dx and x_hat share memory"):
        be.batchnorm_backward(x, x_hat, gamma, inv_std, batch_mean, batch_var, x_hat)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_state_must_not_partly_overlap(dtype):
    be = get_backend("cython", dtype)
    rng = np.random.default_rng(4)
    w, g = shifted_pair((10,), dtype, rng)
    with pytest.raises(ValueError, match="w and g share memory"):
        be.sgd_update(w, g, 0.1)
    m, v = shifted_pair((10,), dtype, rng)
    with pytest.raises(ValueError, match="m and v share memory"):
        be.adam_update(np.zeros(10, dtype), np.ones(10, dtype), m, v, 1e-3, 0.9, 0.999, 1e-8, 1)
    with pytest.raises(ValueError, match="g and w share memory"):
        be.l2_penalty(w, g, 0.1)
    # exactly in place is an ordinary elementwise update: w -= lr * w
    x = np.ones(10, dtype)
    be.sgd_update(x, x, 0.5)
    np.testing.assert_array_equal(x, np.full(10, 0.5, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_count_correct_treats_nan_as_numpy_argmax_does(dtype):
    logits = np.array([[0.0, np.nan, 1.0], [np.nan, 2.0, np.nan], [1.0, 3.0, 2.0],
                       [np.nan, np.nan, np.nan]], dtype)
    for labels in ([1, 0, 1, 0], [2, 1, 0, 2]):
        labels = np.array(labels)
        expected = int((np.argmax(logits, axis=1) == labels).sum())
        for name in ("cython", "numpy"):
            assert get_backend(name, dtype).count_correct(logits, labels) == expected, name


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_losses_may_write_their_gradient_over_the_input(dtype):
    be = get_backend("cython", dtype)
    rng = np.random.default_rng(5)
    pred, target = rng.normal(size=(5, 3)).astype(dtype), rng.random((5, 3)).astype(dtype)
    for kernel in ("mean_squared_error", "bce_with_logits"):
        assert_in_place_is_the_same(
            lambda pred, grad: getattr(be, kernel)(pred, target, grad), pred)
        first, second = shifted_pair((5, 3), dtype, rng)
        with pytest.raises(ValueError, match="grad and (pred|logits) share memory"):
            getattr(be, kernel)(first, target, second)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_eval_in_place_and_the_remaining_kernels(dtype):
    be = get_backend("cython", dtype)
    rng = np.random.default_rng(6)
    gamma, beta, mean, var = (rng.random(3).astype(dtype) + 0.5 for _ in range(4))
    assert_in_place_is_the_same(
        lambda x, out: be.batchnorm_forward_eval(x, gamma, beta, mean, var, 1e-5, out),
        rng.normal(size=(4, 3)).astype(dtype))
    a, b = shifted_pair((4, 3), dtype, rng)
    with pytest.raises(ValueError, match="dx and dy share memory"):
        be.dropout_backward(a, np.ones((4, 3), dtype), 0.5, b)
    g = np.arange(8, dtype=np.float64)
    with pytest.raises(ValueError, match="out and g share memory"):
        get_backend("cython", np.float64).segment_sum_of_squares(
            g, np.array([0, 1, 2], np.int64), g[:2])
    # two outputs may not be one array, even exactly (Adam's m and v)
    w, m = np.zeros(4, dtype), np.zeros(4, dtype)
    with pytest.raises(ValueError, match="m and v share memory"):
        be.adam_update(w, np.ones(4, dtype), m, m, 1e-3, 0.9, 0.999, 1e-8, 1)
