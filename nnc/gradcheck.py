"""Back-propagation checked against finite differences (lecture, section 2).

The numerical derivative of the loss with respect to one weight, every
other weight held fixed, is the central difference

    ∂L/∂w ≈ (L(w + δ) - L(w - δ)) / 2δ,

which costs two forward passes per weight: that is why back-propagation
exists. ``gradcheck`` compares the two for every parameter of a model.
"""
import numpy as np

from nnc._validation import check_features, check_float
from nnc.losses import get_loss
from nnc.model import WRITES_ALL, Sequential

EPS_RANGE = (1e-12, 0.1)  # central-difference steps that float64 can measure
#: a relative error above this points at a bug
SUSPECT = 1e-6


def relative_error(analytic, numeric):
    """‖a - n‖ / (‖a‖ + ‖n‖), 0 when both are zero."""
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if denom == 0 else float(np.linalg.norm(analytic - numeric) / denom)


def _compare(analytic, array, f, eps):
    """The relative error of ``analytic`` against the central differences of
    f() over ``array``. A suspect error is put beside what the differences
    themselves cannot resolve, per element: how much they change when the
    step doubles (rounding grows as 1/δ, a derivative does not) plus one
    rounding of L over 2δ. When every element of the gap |a - n| is within
    three times that, the differences cannot tell the two apart (a
    parameter the loss does not depend on, such as a bias right before
    batch-norm, or a gradient below the differences' rounding): 0."""
    numeric = _numeric_gradient(array, f, eps)
    error = relative_error(analytic, numeric)
    if error > SUSPECT:
        unresolved = (np.abs(numeric - _numeric_gradient(array, f, 2 * eps))
                      + np.spacing(abs(f())) / (2 * eps))
        if np.all(np.abs(analytic - numeric) <= 3 * unresolved):
            return 0.0
    return error


def gradcheck(model, loss, X, y, eps=1e-6):
    """Relative error between back-propagated and central-difference
    gradients, per parameter (keys like ``"0.W"``) and for the input
    (``"input"``). The model must be float64: in float32 the differences
    drown in rounding. Layers run in training mode; buffers such as
    batch-norm running statistics, and the model's random generator, are
    restored afterwards.

    A correct implementation gives errors around 1e-8 or below; > 1e-6
    points at a bug. Where the two differ by no more than the differences
    can resolve (what they measure changes with the step, as rounding does;
    e.g. a parameter the loss does not depend on), the error is 0. ``eps``
    is the step δ, in [1e-12, 0.1]: below, the differences drown in float64
    rounding; above, they no longer measure a derivative.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be an nnc.Sequential, got {type(model).__name__}")
    if model.dtype != np.float64:
        raise TypeError(f"gradcheck needs a float64 model (got {model.dtype.name}): "
                        "build it with Sequential(..., dtype='float64')")
    model._check_views(writes=WRITES_ALL)  # (it perturbs the weights in place)
    eps = check_float(eps, "eps", low=EPS_RANGE[0], high=EPS_RANGE[1])
    loss = get_loss(loss, model.backend).bind(model.backend)
    X = check_features(X, "X", model.in_features, model.dtype)
    targets = loss.check_targets(y, X.shape[0], model.out_features, model.dtype)
    with model._in_use():  # it moves the weights: no other thread may compute meanwhile
        return _gradcheck(model, loss, X, targets, eps)


def _gradcheck(model, loss, X, targets, eps):
    saved_buffers = [{k: v.copy() for k, v in layer.buffers.items()} for layer in model.layers]
    saved_rng = model.rng.bit_generator.state  # (dropout draws its mask from it)
    random_layers = [layer for layer in model.layers if hasattr(layer, "frozen")]
    was_frozen = [layer.frozen for layer in random_layers]

    def loss_at(x):
        return loss._forward(model._forward(x, training=True), targets, with_grad=False)

    try:
        loss._forward(model._forward(X, training=True), targets)
        for layer in random_layers:  # keep dropout masks fixed from here on
            layer.frozen = True
        input_grad = model._backward(loss._grad, need_input_grad=True).copy()
        analytic = {name: grad.copy() for name, grad in model.grads.items()}

        errors = {}
        for name, param in model.params.items():
            errors[name] = _compare(analytic[name], param, lambda: loss_at(X), eps)
        x = X.copy()
        errors["input"] = _compare(input_grad, x, lambda: loss_at(x), eps)
    finally:
        for layer, frozen in zip(random_layers, was_frozen):
            layer.frozen = frozen
        for layer, saved in zip(model.layers, saved_buffers):
            for k, v in saved.items():
                layer.buffers[k][...] = v
        model.rng.bit_generator.state = saved_rng
    return errors


def _numeric_gradient(array, f, eps):
    """Central differences of f() with respect to each element of ``array``
    (perturbed in place and restored)."""
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        try:
            flat[i] = original + eps
            plus = f()
            flat[i] = original - eps
            minus = f()
        finally:  # (an interrupted check leaves the weight as it was)
            flat[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad
