"""Layers: thin Python objects that hold parameters, gradients and scratch
buffers, and ask their backend's kernels to do the arithmetic.

A layer declares its parameter shapes (``param_shapes``); the model lays all
of them out as views of one flat buffer, and the matching gradients as views
of a second one, then calls ``build``. ``forward`` returns the layer's
output, ``backward`` writes ``grads`` and returns the gradient with respect
to the input. Outputs live in the layer's workspace and are overwritten by
the next call of the same batch size.
"""
import numpy as np

from nnc._validation import check_float, check_int
from nnc.init import get_initializer


class Layer:
    """Base class. Subclasses override ``param_shapes``, ``forward`` and
    ``backward``; parameter-free layers keep the empty defaults."""

    #: for activations: "relu" (ReLU family, He init before it) or "other"
    activation = None
    #: parameters the L2 penalty λR(w) applies to (weights, not biases)
    decayed = ()

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.backend = None
        self.workspace = None
        self.rng = None

    def param_shapes(self):
        """{name: shape} of the trainable parameters."""
        return {}

    def build(self, backend, workspace, rng):
        """Called by the model once ``params``/``grads`` views are in place."""
        self.backend = backend
        self.workspace = workspace
        self.rng = rng

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, dy, need_input_grad=True):
        raise NotImplementedError

    def output_features(self, in_features):
        """Features of the output for ``in_features`` input features."""
        return in_features

    def config(self):
        """Constructor arguments, for repr and persistence."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer ``z = x W + b``.

    ``W`` has shape ``(in_features, out_features)`` (one column per unit);
    ``init`` is a name from ``nnc.init`` or a callable. ``init=None`` picks
    He-normal when a ReLU-family activation follows, Glorot-normal otherwise.
    Biases start at zero.
    """

    decayed = ("W",)

    def __init__(self, in_features, out_features, init=None, bias=True):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        self.init = init if init is None else get_initializer(init)
        self._init_name = init if isinstance(init, str) or init is None else getattr(
            init, "__name__", repr(init))
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.bias = bool(bias)
        self._x = None

    def param_shapes(self):
        shapes = {"W": (self.in_features, self.out_features)}
        if self.bias:
            shapes["b"] = (self.out_features,)
        return shapes

    def initialize(self, default_init):
        """Draw W from the initialiser (biases zero)."""
        init = self.init if self.init is not None else get_initializer(default_init)
        weights = np.asarray(init((self.in_features, self.out_features), self.rng))
        if weights.shape != (self.in_features, self.out_features):
            raise ValueError(f"init returned shape {weights.shape}, expected "
                             f"{(self.in_features, self.out_features)}")
        self.params["W"][...] = weights
        if self.bias:
            self.params["b"][...] = 0

    def output_features(self, in_features):
        if in_features != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} input features, "
                             f"but the previous layer gives {in_features}")
        return self.out_features

    def forward(self, x, training=True):
        out = self.workspace.get("y", (x.shape[0], self.out_features))
        self.backend.dense_forward(x, self.params["W"], self.params.get("b"), out)
        self._x = x
        return out

    def backward(self, dy, need_input_grad=True):
        x = self._x
        dx = self.workspace.get("dx", x.shape) if need_input_grad else None
        self.backend.dense_backward(x, self.params["W"], dy, self.grads["W"],
                                    self.grads.get("b"), dx)
        return dx

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "init": self._init_name, "bias": self.bias}


class Activation(Layer):
    """An elementwise ``h = g(z)`` whose derivative is written in terms of the
    output ``h`` (kernels ``<kernel>_forward(x, out)`` and
    ``<kernel>_backward(y, dy, dx)``)."""

    kernel = None
    activation = "other"

    def build(self, backend, workspace, rng):
        super().build(backend, workspace, rng)
        self._forward_kernel = getattr(backend, self.kernel + "_forward")
        self._backward_kernel = getattr(backend, self.kernel + "_backward")
        self._y = None

    def forward(self, x, training=True):
        out = self.workspace.get("y", x.shape)
        self._forward_kernel(x, out)
        self._y = out
        return out

    def backward(self, dy, need_input_grad=True):
        dx = self.workspace.get("dx", dy.shape)
        self._backward_kernel(self._y, dy, dx)
        return dx


class ReLU(Activation):
    """``max(z, 0)``; derivative 1 where z > 0, else 0."""
    kernel = "relu"
    activation = "relu"


class Sigmoid(Activation):
    """``1 / (1 + exp(-z))``, computed without overflow; derivative h(1 - h)."""
    kernel = "sigmoid"


class Tanh(Activation):
    """``tanh(z)``; derivative 1 - h²."""
    kernel = "tanh"


class LeakyReLU(Layer):
    """``z if z > 0 else alpha*z``; derivative 1 or alpha."""

    activation = "relu"

    def __init__(self, alpha=0.01):
        super().__init__()
        self.alpha = check_float(alpha, "alpha")
        self._x = None

    def forward(self, x, training=True):
        out = self.workspace.get("y", x.shape)
        self.backend.leaky_relu_forward(x, self.alpha, out)
        self._x = x
        return out

    def backward(self, dy, need_input_grad=True):
        dx = self.workspace.get("dx", dy.shape)
        self.backend.leaky_relu_backward(self._x, self.alpha, dy, dx)
        return dx

    def config(self):
        return {"alpha": self.alpha}
