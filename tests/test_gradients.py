"""Back-propagation against central finite differences (nnc.gradcheck), in
float64, for every layer and loss in both backends; and gradcheck itself
must notice a wrong gradient."""
import numpy as np
import pytest

import nnc
from nnc.backends.numpy_backend import NumpyBackend

GRAD_RTOL = 1e-6  # DESIGN: "> 1e-6 points at a bug"

LOSSES = ["softmax_cross_entropy", "mse", "bce_with_logits"]

ACTIVATIONS = {
    "relu": lambda: nnc.ReLU(),
    "leaky_relu": lambda: nnc.LeakyReLU(0.1),
    "sigmoid": lambda: nnc.Sigmoid(),
    "tanh": lambda: nnc.Tanh(),
    "none": None,
}


def targets_for(loss, rng, n, k):
    if loss == "softmax_cross_entropy":
        return rng.integers(0, k, size=n)
    if loss == "bce_with_logits":
        return rng.uniform(0, 1, size=(n, k))
    return rng.standard_normal((n, k))


def build(backend, activation, bias, n_in=3, n_hidden=4, n_out=3, seed=0):
    layers = [nnc.Dense(n_in, n_hidden, bias=bias)]
    if ACTIVATIONS[activation] is not None:
        layers.append(ACTIVATIONS[activation]())
    layers.append(nnc.Dense(n_hidden, n_out, bias=bias))
    return nnc.Sequential(*layers, dtype="float64", backend=backend, seed=seed)


def away_from_kinks(model, X, activation):
    """Finite differences across the kink of (leaky) ReLU are meaningless:
    check that no pre-activation lies within 1e-3 of zero."""
    if activation not in ("relu", "leaky_relu"):
        return True
    z = X @ model.layers[0].params["W"]
    if "b" in model.layers[0].params:
        z = z + model.layers[0].params["b"]
    return np.abs(z).min() > 1e-3


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_gradcheck_every_layer_and_loss(backend_name, loss, activation, bias):
    rng = np.random.default_rng(7)
    model = build(backend_name, activation, bias)
    if bias:  # non-zero biases, so their effect on the forward pass is tested
        for layer in model.layers:
            if "b" in layer.params:
                layer.params["b"][...] = rng.normal(0, 0.5, size=layer.params["b"].shape)
    X = rng.standard_normal((5, 3))
    assert away_from_kinks(model, X, activation)
    y = targets_for(loss, rng, 5, 3)
    errors = nnc.gradcheck(model, loss, X, y)
    expected_keys = {f"{i}.{p}" for i, layer in enumerate(model.layers) for p in layer.params}
    assert set(errors) == expected_keys | {"input"}
    assert all(("b" in k) == bias for k in expected_keys if not k.endswith("W"))
    for name, err in errors.items():
        assert err < GRAD_RTOL, (name, err)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradcheck_deeper_mixed_network(backend_name, loss):
    rng = np.random.default_rng(3)
    model = nnc.Sequential(nnc.Dense(4, 5), nnc.Tanh(), nnc.Dense(5, 5), nnc.Sigmoid(),
                           nnc.Dense(5, 4, bias=False), nnc.LeakyReLU(0.2), nnc.Dense(4, 2),
                           dtype="float64", backend=backend_name, seed=1)
    X = rng.standard_normal((3, 4))
    errors = nnc.gradcheck(model, loss, X, targets_for(loss, rng, 3, 2))
    assert len(errors) == 7 + 1  # 4 W, 3 b, input
    assert max(errors.values()) < GRAD_RTOL, errors


@pytest.mark.parametrize("loss", LOSSES)
def test_gradcheck_consecutive_elementwise_layers(backend_name, loss):
    """Elementwise layers write dL/dx over dL/dy; several in a row (and one on
    top, right under the loss) must still chain correctly."""
    rng = np.random.default_rng(4)
    dropout = nnc.Dropout(0.3)
    model = nnc.Sequential(nnc.Dense(4, 6), dropout, nnc.LeakyReLU(0.1), nnc.Tanh(),
                           nnc.Dense(6, 3), nnc.Sigmoid(), dtype="float64",
                           backend=backend_name, seed=2)
    X = rng.standard_normal((5, 4))
    errors = nnc.gradcheck(model, loss, X, targets_for(loss, rng, 5, 3))
    assert len(errors) == 4 + 1
    assert max(errors.values()) < GRAD_RTOL, errors


def test_backward_leaves_the_callers_gradient_unchanged(backend_name):
    """The top layer here overwrites its incoming gradient; model.backward
    and a training step must not touch dY or the loss's own gradient."""
    rng = np.random.default_rng(6)
    model = nnc.Sequential(nnc.Dense(3, 4), nnc.Sigmoid(), nnc.Dropout(0.5),
                           dtype="float64", backend=backend_name, seed=0)
    X = rng.standard_normal((6, 3))
    model.forward(X, training=True)
    dY = rng.standard_normal((6, 4))
    kept = dY.copy()
    dX = model.backward(dY)
    np.testing.assert_array_equal(dY, kept)
    np.testing.assert_array_equal(model.backward(dY), dX)  # same again: nothing consumed
    model.layers[-1].frozen = True  # the next forward reuses this dropout mask
    trainer = nnc.Trainer(model, loss="mse", optimizer=nnc.SGD(0.1), batch_size=6)
    out = model.forward(X, training=True)
    trainer.loss._forward(out, kept)
    loss_grad = trainer.loss.backward()
    trainer._train_step(X, kept)  # the same forward, loss and gradient, then an update
    np.testing.assert_array_equal(trainer.loss.backward(), loss_grad)


def test_gradcheck_single_sample_single_output(backend_name):
    rng = np.random.default_rng(5)
    model = nnc.Sequential(nnc.Dense(2, 3), nnc.Sigmoid(), nnc.Dense(3, 1),
                           dtype="float64", backend=backend_name, seed=2)
    errors = nnc.gradcheck(model, "bce_with_logits", rng.standard_normal((1, 2)), [[1.0]])
    assert max(errors.values()) < GRAD_RTOL, errors


def test_gradcheck_leaves_the_parameters_unchanged(backend_name):
    rng = np.random.default_rng(0)
    model = build(backend_name, "tanh", True)
    X = rng.standard_normal((4, 3))
    X_before, w_before = X.copy(), model.flat_params.copy()
    nnc.gradcheck(model, "mse", X, rng.standard_normal((4, 3)))
    np.testing.assert_array_equal(model.flat_params, w_before)
    np.testing.assert_array_equal(X, X_before)


# --- gradcheck can fail ------------------------------------------------------

class WrongReluBackend(NumpyBackend):
    """The reference backend with a ReLU derivative that forgets the mask."""
    name = "wrong-relu"

    def relu_backward(self, y, dy, dx):
        np.copyto(dx, dy)


class WrongSigmoidBackend(NumpyBackend):
    name = "wrong-sigmoid"

    def sigmoid_backward(self, y, dy, dx):
        np.copyto(dx, dy * y)  # missing (1 - y)


class ScaledDense(nnc.Dense):
    """A Dense layer whose weight gradient is 10% too large."""

    def backward(self, dy, need_input_grad=True):
        dx = super().backward(dy, need_input_grad)
        self.grads["W"] *= 1.1
        return dx


class NoBiasGradDense(nnc.Dense):
    def backward(self, dy, need_input_grad=True):
        dx = super().backward(dy, need_input_grad)
        self.grads["b"][...] = 0
        return dx


def test_gradcheck_detects_wrong_relu_derivative():
    rng = np.random.default_rng(1)
    model = nnc.Sequential(nnc.Dense(3, 6), nnc.ReLU(), nnc.Dense(6, 2),
                           dtype="float64", backend=WrongReluBackend(), seed=0)
    X = rng.standard_normal((8, 3))
    hidden = X @ model.layers[0].params["W"]
    assert (hidden < 0).any()  # some units are off, so the wrong mask matters
    errors = nnc.gradcheck(model, "mse", X, rng.standard_normal((8, 2)))
    assert errors["0.W"] > 1e-2 and errors["0.b"] > 1e-2 and errors["input"] > 1e-2
    assert errors["2.W"] < GRAD_RTOL  # the layer after the ReLU is still right


def test_gradcheck_detects_wrong_sigmoid_derivative():
    rng = np.random.default_rng(1)
    model = nnc.Sequential(nnc.Dense(3, 4), nnc.Sigmoid(), nnc.Dense(4, 2),
                           dtype="float64", backend=WrongSigmoidBackend(), seed=0)
    errors = nnc.gradcheck(model, "softmax_cross_entropy", rng.standard_normal((5, 3)),
                           [0, 1, 1, 0, 1])
    assert errors["0.W"] > 1e-2


@pytest.mark.parametrize("layer_cls,key,low", [(ScaledDense, "2.W", 0.03),
                                                (NoBiasGradDense, "2.b", 0.5)])
def test_gradcheck_detects_wrong_layer_gradient(backend_name, layer_cls, key, low):
    rng = np.random.default_rng(2)
    model = nnc.Sequential(nnc.Dense(3, 4), nnc.Tanh(), layer_cls(4, 2),
                           dtype="float64", backend=backend_name, seed=0)
    model.layers[2].params["b"][...] = [0.3, -0.2]
    errors = nnc.gradcheck(model, "mse", rng.standard_normal((5, 3)),
                           rng.standard_normal((5, 2)))
    assert errors[key] > low, errors
    assert errors["0.W"] < GRAD_RTOL  # layers below get the correct dx


def test_gradcheck_refuses_float32(backend_name):
    model = nnc.Sequential(nnc.Dense(3, 2), dtype="float32", backend=backend_name, seed=0)
    with pytest.raises(TypeError, match="float64"):
        nnc.gradcheck(model, "mse", np.zeros((2, 3)), np.zeros((2, 2)))


def test_relative_error_definition():
    from nnc.gradcheck import relative_error
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert relative_error(np.array([1.0]), np.array([-1.0])) == pytest.approx(1.0)
    assert relative_error(np.array([3.0]), np.array([1.0])) == pytest.approx(0.5)


@pytest.mark.parametrize("eps", [1e300, 1e-300, 0.5, 1e-13])
def test_gradcheck_refuses_eps_it_cannot_measure_with(eps):
    model = nnc.Sequential(nnc.Dense(3, 2), dtype="float64", seed=0)
    X, y = np.ones((2, 3)), np.zeros((2, 2))
    with pytest.raises(ValueError) as info:
        nnc.gradcheck(model, "mse", X, y, eps=eps)
    assert f"eps must lie in [1e-12, 0.1], got {eps}" in str(info.value)
    for eps in (1e-12, 0.1):  # the ends of the range still measure the gradient
        assert max(nnc.gradcheck(model, "mse", X, y, eps=eps).values()) < 1e-3


class PassThrough(nnc.layers.Layer):
    """A user layer that returns its input and its incoming gradient unchanged."""

    def forward(self, x, training=True):
        return x

    def backward(self, dy, need_input_grad=True):
        return dy


def test_backward_copies_a_gradient_passed_through_to_an_in_place_layer(backend_name):
    rng = np.random.default_rng(7)
    model = nnc.Sequential(nnc.Dense(3, 3), nnc.ReLU(), PassThrough(), dtype="float64",
                           backend=backend_name, seed=0)
    X = rng.standard_normal((4, 3))
    model.forward(X)
    dY = rng.standard_normal((4, 3))
    kept = dY.copy()
    first = model.backward(dY)
    np.testing.assert_array_equal(dY, kept)
    np.testing.assert_array_equal(model.backward(dY), first)


def test_an_interrupted_gradcheck_leaves_every_weight_as_it_was(monkeypatch):
    model = nnc.Sequential(nnc.Dense(3, 4), nnc.Tanh(), nnc.Dense(4, 2), dtype="float64",
                           seed=0)
    before = model.flat_params.copy()
    loss = nnc.SoftmaxCrossEntropy()
    calls = {"n": 0}
    forward = type(loss)._forward

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:  # inside a central difference, a weight moved by eps
            raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(loss), "_forward", interrupted)
    X = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(KeyboardInterrupt):
        nnc.gradcheck(model, loss, X, np.array([0, 1, 1, 0, 1]))
    np.testing.assert_array_equal(model.flat_params, before)


def test_a_gradient_zero_within_rounding_agrees():
    """The bias right before batch-norm: the loss does not depend on it, so
    back-propagation gives ~1e-17 and the differences their own rounding;
    that is agreement, not an error of 1. A real mismatch stays one."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), np.arange(6) % 2
    with pytest.warns(UserWarning, match="bias right before BatchNorm"):
        model = nnc.Sequential(nnc.Dense(3, 4), nnc.BatchNorm(4), nnc.Tanh(), nnc.Dense(4, 2),
                               dtype="float64", seed=0)
    errors = nnc.gradcheck(model, "softmax_cross_entropy", X, y)
    assert errors["0.b"] == 0.0
    assert max(errors.values()) < 1e-6


def dense_inputs(rng):
    return rng.normal(size=(8, 4))


def sparse_inputs(rng):  # 2 of 300 features non-zero: most differences are exactly 0
    X = np.zeros((8, 300))
    X[:, :2] = rng.normal(size=(8, 2))
    return X


@pytest.mark.parametrize("make_X, output_scale, flipped", [(dense_inputs, 1e-7, "b"),
                                                            (sparse_inputs, 2e-7, "W")])
def test_a_sign_error_in_small_gradients_is_reported(monkeypatch, make_X, output_scale, flipped):
    """A sign error in the first layer's gradient, made small (~1e-8) by an
    output layer scaled down: the differences measure it, so it is reported,
    not taken for rounding."""
    from nnc.backends.numpy_backend import NumpyBackend
    rng = np.random.default_rng(0)
    X, y = make_X(rng), np.arange(8) % 3
    model = nnc.Sequential(nnc.Dense(X.shape[1], 6), nnc.Tanh(), nnc.Dense(6, 3),
                           dtype="float64", backend="numpy", seed=0)
    model.layers[2].params["W"][...] *= output_scale
    assert nnc.gradcheck(model, "softmax_cross_entropy", X, y)[f"0.{flipped}"] < 0.05
    dense_backward = NumpyBackend.dense_backward

    def sign_error_in_the_first_layer(self, x, w, dy, dw, db, dx):
        dense_backward(self, x, w, dy, dw, db, dx)
        if x.shape[1] == X.shape[1]:
            (db if flipped == "b" else dw)[...] *= -1

    monkeypatch.setattr(NumpyBackend, "dense_backward", sign_error_in_the_first_layer)
    assert nnc.gradcheck(model, "softmax_cross_entropy", X, y)[f"0.{flipped}"] > 0.5
