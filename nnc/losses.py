"""Loss functions L(y, h(x; w)), averaged over the batch (empirical risk).

``loss.forward(output, y)`` returns the loss and computes its gradient in the
same fused pass; ``loss.backward()`` returns dL/d(output). Reductions follow
PyTorch's defaults: softmax cross-entropy is the mean over the batch; MSE and
BCE-with-logits are the mean over all elements.
"""
import copy

import numpy as np

from nnc._validation import as_array, check_features, check_labels, check_targets
from nnc.backends import get_backend
from nnc.workspace import Workspace


class Loss:
    """Base class: ``kernel`` names the backend function
    ``kernel(output, targets, grad=None) -> float``."""

    name = None
    kernel = None
    classification = False

    def __init__(self, backend="cython"):
        self.backend = get_backend(backend)
        self._workspaces = {}
        self._grad = None

    def bind(self, backend):
        """A copy of this loss that runs on ``backend`` (a model's, which may
        be specialised to one dtype). The loss itself is left as it was, so
        one loss object can serve a float32 Trainer and a float64 gradcheck."""
        bound = copy.copy(self)
        bound.backend = get_backend(backend)
        bound._workspaces = {}
        bound._grad = None
        return bound

    def check_targets(self, y, n_samples, out_features, dtype, name="y"):
        """Validated targets for an output of shape (n_samples, out_features)."""
        raise NotImplementedError

    def _count_correct(self, output, targets, backend):
        """(correct predictions, predictions counted) in a batch, for the
        accuracy of a classification loss: by default a sample is right when
        its arg-max is its integer label."""
        if not self.classification:
            return 0, 0
        return backend.count_correct(output, targets), output.shape[0]

    # --- hot path -----------------------------------------------------------
    def _grad_buffer(self, output):
        ws = self._workspaces.get(output.dtype)
        if ws is None:
            ws = self._workspaces[output.dtype] = Workspace(output.dtype)
        return ws.get("grad", output.shape)

    def _forward(self, output, targets, with_grad=True, backend=None):
        grad = self._grad_buffer(output) if with_grad else None
        loss = getattr(backend or self.backend, self.kernel)(output, targets, grad)
        self._grad = grad
        return loss

    # --- public API ---------------------------------------------------------
    def forward(self, output, y):
        """The mean loss of ``output`` (n, k) against ``y``; keeps dL/d(output)."""
        output = as_array(output, "output")
        dtype = output.dtype if output.dtype in (np.float32, np.float64) else np.float64
        output = check_features(output, "output", dtype=dtype)
        if output.shape[1] == 0:
            raise ValueError(f"output has no columns (shape {output.shape}): a loss needs at "
                             "least one output per sample")
        targets = self.check_targets(y, output.shape[0], output.shape[1], output.dtype)
        # the kernels for this dtype (a bound loss may have one dtype's only)
        return self._forward(output, targets, backend=get_backend(self.backend, output.dtype))

    __call__ = forward

    def backward(self):
        """dL/d(output) of the last ``forward``."""
        if self._grad is None:
            raise RuntimeError("backward() needs a forward() first")
        return self._grad.copy()

    def __repr__(self):
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """L = -1/n Σ_i log softmax(z_i)[y_i] for integer labels y_i in [0, k)."""

    name = "softmax_cross_entropy"
    kernel = "softmax_cross_entropy"
    classification = True

    def check_targets(self, y, n_samples, out_features, dtype, name="y"):
        return check_labels(y, name, n_samples, out_features)


class MeanSquaredError(Loss):
    """L = mean((output - y)²) over all elements."""

    name = "mse"
    kernel = "mean_squared_error"

    def check_targets(self, y, n_samples, out_features, dtype, name="y"):
        return check_targets(y, name, (n_samples, out_features), dtype)


class BCEWithLogits(Loss):
    """Binary cross-entropy of sigmoid(output) against y in [0, 1], mean over
    all elements, in the stable form max(z,0) - z y + log(1 + exp(-|z|)).

    Its accuracy (Keras' binary accuracy) is the fraction of elements whose
    prediction, z > 0 (sigmoid(z) > 0.5), matches y > 0.5."""

    name = "bce_with_logits"
    kernel = "bce_with_logits"
    classification = True

    def check_targets(self, y, n_samples, out_features, dtype, name="y"):
        return check_targets(y, name, (n_samples, out_features), dtype, low=0.0, high=1.0)

    def _count_correct(self, output, targets, backend):
        return backend.count_binary_correct(output, targets), output.size


LOSSES = {
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "bce_with_logits": BCEWithLogits,
}


def get_loss(loss, backend="cython"):
    """A Loss object from a name in LOSSES or a Loss instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss](backend)
    raise ValueError(f"loss must be one of {sorted(LOSSES)} or a Loss object, got {loss!r}")
