"""Optimizers: a little state and one update rule, applied in place to the
model's flat parameter buffer by a single kernel call per step.
"""
from nnc._validation import check_float


class Optimizer:
    """Base class. ``bind(model)`` attaches the optimizer to a model's flat
    parameter and gradient buffers (the Trainer does this); ``step()``
    applies one update from the current gradients."""

    def __init__(self, lr):
        self.lr = check_float(lr, "lr", low=0, low_open=True)
        self.params = None
        self.grads = None
        self.backend = None
        self.t = 0

    def bind(self, model):
        self.params = model.flat_params
        self.grads = model.flat_grads
        self.backend = model.backend
        return self

    def step(self, lr=None):
        """One update ``w ← update(w, g)`` over every parameter, in place.
        ``lr`` overrides the learning rate for this step (schedules)."""
        if self.params is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a model: "
                               "call optimizer.bind(model) or pass it to a Trainer")
        self.t += 1
        self._update(self.lr if lr is None else lr)

    def zero_grad(self):
        """Set every gradient to zero."""
        if self.grads is not None:
            self.grads.fill(0)

    def _update(self, lr):
        raise NotImplementedError

    def config(self):
        return {"lr": self.lr}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent (lecture, Algorithm 2): w ← w - α ∇L(w)."""

    def __init__(self, lr=0.01):
        super().__init__(lr)

    def _update(self, lr):
        self.backend.sgd_update(self.params, self.grads, lr)
