"""Layers: thin Python objects that hold parameters, gradients and scratch
buffers, and ask their backend's kernels to do the arithmetic.

A layer declares its parameter shapes (``param_shapes``); the model lays all
of them out as views of one flat buffer, and the matching gradients as views
of a second one, then calls ``build``. ``forward`` returns the layer's
output, ``backward`` writes ``grads`` and returns the gradient with respect
to the input. Outputs live in the layer's workspace and are overwritten by
the next call of the same batch size. Elementwise layers (activations,
dropout) write dL/dx over the incoming dL/dy (``backward_in_place``): one
buffer fewer per layer, so less memory traffic. ``Sequential`` hands them
only gradients it owns.
"""
import functools

import numpy as np

from nnc._validation import (FLOAT32_TINY, MAX_FEATURES, Setting, as_finite, check_bool,
                             check_float32_range, check_int, number_setting)
from nnc.init import get_initializer


class _NotInAModel:
    """The workspace of a layer that no model has built yet: any use says so."""

    def __init__(self, layer):
        self.layer = layer

    def get(self, *args, **kwargs):
        raise RuntimeError(f"{type(self.layer).__name__} is not part of a model yet: put it in "
                           "nnc.Sequential(...), which allocates its parameters and buffers")


def _names_bad_arrays(method):
    """Wrap a layer's ``forward``/``backward``: a kernel rejects a bad array in
    its own words (a Cython buffer message, a shape named after a kernel
    argument); the layer's argument is named instead. Only a failing call
    pays for the check."""
    argument = "x" if method.__name__ == "forward" else "dy"

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (TypeError, ValueError, AttributeError, IndexError):
            array = args[0] if args else kwargs.get(argument)
            problem = self._array_problem(method.__name__, argument, array)
            if problem is None:
                raise
            raise problem from None
    return call


class _Structure(Setting):
    """A ``Setting`` that shapes a layer's parameters (``in_features``,
    ``bias``, ...): fixed once a model has built the layer, whose buffers
    were laid out for it. Kept in ``_<name>`` through plain attribute
    access: writing ``layer.__dict__`` (as ``Setting`` does) would make
    every attribute read of the layer slower on CPython 3.11+, and layers
    are read at every step."""

    def __set_name__(self, owner, name):
        super().__set_name__(owner, name)
        self.private = "_" + name

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        try:
            return getattr(layer, self.private)
        except AttributeError:
            raise AttributeError(f"{type(layer).__name__} has no {self.name} yet") from None

    def __set__(self, layer, value):
        value = self.check(value, self.name)
        built = getattr(layer, "backend", None) is not None  # (before Layer.__init__: not)
        if built and value != getattr(layer, self.private):
            raise AttributeError(
                f"{type(layer).__name__}.{self.name} cannot change once the layer is in a model "
                f"(its parameters and buffers were laid out for {self.name}="
                f"{getattr(layer, self.private)!r}): build a new layer and a new nnc.Sequential")
        setattr(layer, self.private, value)


def _features(value, name):
    return check_int(value, name, low=1, high=MAX_FEATURES)


#: buffers that are never negative, and what they hold (save, load and
#: load_state_dict refuse a negative value in them)
NON_NEGATIVE_BUFFERS = {"running_var": "a running variance"}


class Layer:
    """Base class. Subclasses override ``param_shapes``, ``forward`` and
    ``backward``; parameter-free layers keep the empty defaults."""

    #: for activations: "relu" (ReLU family, He init before it) or "other"
    activation = None
    #: parameters the L2 penalty λR(w) applies to (weights, not biases)
    decayed = ()
    #: True for layers that need >= 2 samples per training batch
    needs_batch_statistics = False
    #: True for elementwise layers whose ``backward`` overwrites ``dy`` with
    #: dL/dx (their kernels take dx = dy); the caller's dy is consumed
    backward_in_place = False

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.backend = None
        self.workspace = _NotInAModel(self)
        self.rng = None

    def param_shapes(self):
        """{name: shape} of the trainable parameters."""
        return {}

    def __setstate__(self, state):
        state, slots = state if isinstance(state, tuple) else (state, None)  # (__slots__)
        state = dict(state or {})
        for klass in type(self).__mro__:  # (pickled before _Structure: plain attributes)
            for name, attribute in vars(klass).items():
                if isinstance(attribute, _Structure) and name in state:
                    state[attribute.private] = state.pop(name)
        self.__dict__.update(state)
        for name, value in (slots or {}).items():
            setattr(self, name, value)

    def build(self, backend, workspace, rng):
        """Called by the model once ``params``/``grads`` views are in place."""
        self.backend = backend
        self.workspace = workspace
        self.rng = rng

    def initialize(self, default_init):
        """Set the initial parameter values (``default_init`` is the
        initialiser the model suggests for weights)."""

    def _release(self):
        """Undo ``build`` (a model that failed to build gives its layers back)."""
        self.params, self.grads, self.buffers = {}, {}, {}
        self.backend, self.rng = None, None
        self.workspace = _NotInAModel(self)

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, dy, need_input_grad=True):
        raise NotImplementedError

    def output_features(self, in_features):
        """Features of the output for ``in_features`` input features."""
        return in_features

    def _array_problem(self, method, argument, array):
        """The exception that says what is wrong with ``array`` as ``method``'s
        ``argument``, or None if nothing visible is."""
        if self.backend is None:
            return None
        where, dtype = f"{type(self).__name__}.{method}", self.workspace.dtype
        if not isinstance(array, np.ndarray):
            return TypeError(f"{where}: {argument} must be a NumPy array of {dtype.name}, "
                             f"got {type(array).__name__}")
        if array.dtype != dtype:
            return TypeError(f"{where}: {argument} has dtype {array.dtype}, but the layer's "
                             f"model computes in {dtype.name}: pass "
                             f"{argument}.astype(np.{dtype.name})")
        if array.ndim != 2:
            return ValueError(f"{where}: {argument} must be 2-D (samples, features), got "
                              f"shape {array.shape}")
        if not array.flags.c_contiguous:
            return ValueError(f"{where}: {argument} must be C-contiguous (row-major): pass "
                              f"np.ascontiguousarray({argument})")
        if method == "forward":
            features = getattr(self, "in_features", getattr(self, "num_features", None))
            if features is not None and array.shape[1] != features:
                return ValueError(f"{where}: {argument} has {array.shape[1]} features (shape "
                                  f"{array.shape}), expected {features}")
        else:
            output = self.last_output
            if output is not None and array.shape != output.shape:
                return ValueError(f"{where}: {argument} has shape {array.shape}, but the last "
                                  f"forward's output has shape {output.shape}")
        return None

    @property
    def last_output(self):
        """A read-only view of the output of the last forward pass (the
        workspace buffer the next forward of that batch size overwrites),
        or None before the first forward or when the layer passed its input
        through unchanged. Diagnostics read activations here; the hot path
        never calls it."""
        by_shape = self.workspace._arrays.get("y") if self.workspace is not None else None
        if not by_shape:
            return None
        view = next(reversed(by_shape.values())).view()  # the most recently used shape
        view.flags.writeable = False
        return view

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
    in_features = _Structure(_features)
    out_features = _Structure(_features)
    bias = _Structure(check_bool)

    def __init__(self, in_features, out_features, init=None, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.init = init if init is None else get_initializer(init)
        self._init_name = init if isinstance(init, str) or init is None else getattr(
            init, "__name__", repr(init))
        self.bias = bias
        self._x = None

    def param_shapes(self):
        shapes = {"W": (self.in_features, self.out_features)}
        if self.bias:
            shapes["b"] = (self.out_features,)
        return shapes

    def initialize(self, default_init):
        """Draw W from the initialiser (biases zero)."""
        init = self.init if self.init is not None else get_initializer(default_init)
        shape = (self.in_features, self.out_features)
        name = self._init_name if self._init_name is not None else default_init
        try:
            weights = init(shape, self.rng)
        except MemoryError:
            raise
        except Exception as exc:
            raise TypeError(f"init {name!r} failed ({type(exc).__name__}: {exc}); "
                            f"an initialiser is called as init(shape, rng) with a shape tuple "
                            f"and a numpy Generator, and returns an array of that shape") from None
        if np.ma.is_masked(weights):  # (NumPy would take the values under the mask)
            raise ValueError(f"init {name!r} returned an array with masked entries; it must "
                             "return plain numbers")
        try:
            weights = np.asarray(weights.data if isinstance(weights, np.ma.MaskedArray)
                                 else weights)
        except (TypeError, ValueError):  # a ragged list ...
            raise TypeError(f"init {name!r} returned {type(weights).__name__} that is not an "
                            f"array of shape {shape}") from None
        if weights.shape != shape:
            raise ValueError(f"init returned shape {weights.shape}, expected {shape}")
        if weights.dtype.kind not in "fiu":
            raise TypeError(f"init {name!r} returned {weights.dtype.name} values, "
                            "expected real numbers")
        self.params["W"][...] = as_finite(weights, f"the weights init {name!r} returned",
                                          self.params["W"].dtype)
        if self.bias:
            self.params["b"][...] = 0

    def output_features(self, in_features):
        if in_features != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} input features, "
                             f"but the previous layer gives {in_features}")
        return self.out_features

    @_names_bad_arrays
    def forward(self, x, training=True):
        out = self.workspace.get("y", (x.shape[0], self.out_features))
        self.backend.dense_forward(x, self.params["W"], self.params.get("b"), out)
        self._x = x
        return out

    @_names_bad_arrays
    def backward(self, dy, need_input_grad=True):
        x = self._x
        if x is None:
            raise _no_forward(self)
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
    ``<kernel>_backward(y, dy, dx)``, called with dx = dy: dL/dz = dL/dh ⊙ g'
    overwrites dL/dh)."""

    kernel = None
    activation = "other"

    def __init__(self):
        super().__init__()
        self._forward_name = self.kernel + "_forward"
        self._backward_name = self.kernel + "_backward"
        self._y = None

    @_names_bad_arrays
    def forward(self, x, training=True):
        out = self.workspace.get("y", x.shape)
        getattr(self.backend, self._forward_name)(x, out)
        self._y = out
        return out

    backward_in_place = True

    @_names_bad_arrays
    def backward(self, dy, need_input_grad=True):
        if self._y is None:
            raise _no_forward(self)
        getattr(self.backend, self._backward_name)(self._y, dy, dy)
        return dy


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
    # the layer learns its dtype only when built: bound by float32's range,
    # which holds in float64 too (a larger alpha makes float32 outputs inf/NaN)
    alpha = Setting(check_float32_range)

    def __init__(self, alpha=0.01):
        super().__init__()
        self.alpha = alpha
        self._x = None

    @_names_bad_arrays
    def forward(self, x, training=True):
        out = self.workspace.get("y", x.shape)
        self.backend.leaky_relu_forward(x, self.alpha, out)
        self._x = x
        return out

    backward_in_place = True

    @_names_bad_arrays
    def backward(self, dy, need_input_grad=True):
        if self._x is None:
            raise _no_forward(self)
        self.backend.leaky_relu_backward(self._x, self.alpha, dy, dy)
        return dy

    def config(self):
        return {"alpha": self.alpha}


class BatchNorm(Layer):
    """Batch normalisation of each feature over the mini-batch (lecture,
    section 9; Ioffe & Szegedy 2015).

    Training: ẑ = (z - μ)/sqrt(σ² + ε) with the batch mean μ and the
    biased batch variance σ², output γ ẑ + β (γ starts at 1, β at 0), and
    running averages μ̂ ← ρ μ̂ + (1-ρ) μ, σ̂² ← ρ σ̂² + (1-ρ) σ² with
    ρ = ``momentum``. Evaluation (``model.eval()``, ``predict``,
    ``evaluate``) uses μ̂ and σ̂² instead.

    PyTorch: ``BatchNorm1d(momentum=1-ρ)``; PyTorch stores the *unbiased*
    batch variance (× m/(m-1)) in its running variance, nnc the biased one
    the lecture writes. Keras: ``BatchNormalization(momentum=ρ)``.

    A bias in the Dense layer right before is useless (batch-norm subtracts
    the batch mean, which removes it): use ``Dense(..., bias=False)``. A
    training batch needs at least 2 samples; the Trainer skips a last batch
    of a single sample.
    """

    needs_batch_statistics = True
    # ρ = 1 freezes the running statistics (PyTorch's momentum=0)
    momentum = number_setting(low=0, high=1)
    # within float32's normal range (the layer learns its dtype only when
    # built): a smaller ε vanishes (a constant feature gives 0/0), a larger
    # one is inf in float32
    eps = Setting(lambda value, name: check_float32_range(
        value, name, low=FLOAT32_TINY))
    num_features = _Structure(_features)

    def __init__(self, num_features, momentum=0.9, eps=1e-5):
        super().__init__()
        self.num_features = num_features
        self.momentum = momentum
        self.eps = eps
        self._x = self._x_hat = None

    def param_shapes(self):
        return {"gamma": (self.num_features,), "beta": (self.num_features,)}

    def build(self, backend, workspace, rng):
        super().build(backend, workspace, rng)
        dtype = workspace.dtype
        self.buffers = {"running_mean": np.zeros(self.num_features, dtype=dtype),
                        "running_var": np.ones(self.num_features, dtype=dtype)}
        # the statistics of the last training batch (diagnostics read them)
        self.batch_mean = np.zeros(self.num_features, dtype=dtype)
        self.batch_var = np.zeros(self.num_features, dtype=dtype)
        self.inv_std = np.zeros(self.num_features, dtype=dtype)

    def initialize(self, default_init):
        self.params["gamma"][...] = 1
        self.params["beta"][...] = 0

    def output_features(self, in_features):
        if in_features != self.num_features:
            raise ValueError(f"{self!r} expects {self.num_features} features, "
                             f"but the previous layer gives {in_features}")
        return in_features

    @_names_bad_arrays
    def forward(self, x, training=True):
        out = self.workspace.get("y", x.shape)
        p, b = self.params, self.buffers
        if training:
            if x.shape[0] < 2:
                raise ValueError("BatchNorm in training mode needs batches of at least 2 "
                                 f"samples (the variance of 1 sample is undefined), got {x.shape[0]}")
            self._x_hat = self.workspace.get("x_hat", x.shape)
            self.backend.batchnorm_forward_train(
                x, p["gamma"], p["beta"], b["running_mean"], b["running_var"], self.momentum,
                self.eps, out, self._x_hat, self.batch_mean, self.batch_var, self.inv_std)
        else:
            self._x_hat = None
            self.backend.batchnorm_forward_eval(x, p["gamma"], p["beta"], b["running_mean"],
                                                b["running_var"], self.eps, out)
        self._x = x
        return out

    @_names_bad_arrays
    def backward(self, dy, need_input_grad=True):
        if self._x is None:
            raise _no_forward(self)
        if self._x_hat is None:
            return self._backward_eval(dy)
        dx = self.workspace.get("dx", dy.shape)
        self.backend.batchnorm_backward(dy, self._x_hat, self.params["gamma"], self.inv_std,
                                        self.grads["gamma"], self.grads["beta"], dx)
        return dx

    def _backward_eval(self, dy):
        """After an evaluation-mode forward the layer is the fixed affine map
        γ (z - μ̂)/sqrt(σ̂² + ε) + β (as in PyTorch's eval mode): dz = dy γ/sqrt(σ̂² + ε),
        dγ = Σ_i dy_i ẑ_i, dβ = Σ_i dy_i. Not a training path, so plain NumPy."""
        b = self.buffers
        inv_std = 1 / np.sqrt(b["running_var"] + b["running_var"].dtype.type(self.eps))
        x_hat = (self._x - b["running_mean"]) * inv_std
        np.sum(dy * x_hat, axis=0, out=self.grads["gamma"])
        np.sum(dy, axis=0, out=self.grads["beta"])
        dx = self.workspace.get("dx", dy.shape)
        np.multiply(dy, self.params["gamma"] * inv_std, out=dx)
        return dx

    def config(self):
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}


class Dropout(Layer):
    """Inverted dropout (Srivastava et al. 2014): in training each unit is
    zeroed with probability ``p`` and the survivors are scaled by 1/(1-p);
    in evaluation it is the identity. The mask comes from the model's
    generator, so a seed fixes it. ``frozen = True`` reuses the last mask
    (``gradcheck`` does this, so the function it differentiates is fixed)."""

    p = number_setting(low=0, high=1, high_open=True)
    frozen = Setting(check_bool)

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p
        self.frozen = False
        self._u = None

    @_names_bad_arrays
    def forward(self, x, training=True):
        if not training or self.p == 0:
            self._u = None
            return x
        out = self.workspace.get("y", x.shape)
        if not (self.frozen and self._u is not None and self._u.shape == x.shape):
            self._u = self.workspace.get("u", x.shape)
            self.rng.random(out=self._u, dtype=self._u.dtype)
        self.backend.dropout_forward(x, self._u, self.p, out)
        return out

    @property
    def last_output(self):
        """None after a pass-through (evaluation or ``p = 0``): the output
        was the input."""
        return None if self._u is None else Layer.last_output.fget(self)

    backward_in_place = True

    @_names_bad_arrays
    def backward(self, dy, need_input_grad=True):
        if self._u is not None:
            self.backend.dropout_backward(dy, self._u, self.p, dy)
        return dy

    def config(self):
        return {"p": self.p}


def _no_forward(layer):
    return RuntimeError(f"{type(layer).__name__}.backward needs a forward first (it "
                        "back-propagates through the last forward's values)")
