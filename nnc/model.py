"""Sequential: a stack of layers, ``h(x) = h⁽ᴸ⁾(… h⁽²⁾(h⁽¹⁾(x)))``.

All parameters of the model live in one flat buffer (``flat_params``) and
all gradients in another (``flat_grads``); each layer's ``params``/``grads``
dicts hold views into them. An optimizer therefore updates the whole model
with one kernel call, and the global gradient norm is one pass.
"""
import contextlib
import math
import operator
import warnings

import numpy as np

from nnc._locks import ProcessLock
from nnc._validation import check_bool, check_dtype, check_features, check_int, check_seed
from nnc.backends import get_backend
from nnc.layers import BatchNorm, Dense, Layer
from nnc.seed import get_seed
from nnc.workspace import Workspace


def _flat_buffer(name, what):
    """The read-only attribute for one of the two flat buffers: replacing it
    would detach every layer's views (training would update nothing)."""
    def refuse(model, value):
        raise AttributeError(f"model.{name} cannot be replaced: every layer's {what}s are "
                             "views of it (and the optimizer updates it in place); write "
                             f"into it instead: model.{name}[...] = values")
    return property(operator.attrgetter("_" + name), refuse,
                    doc=f"Every {what} of the model in one flat array (write into it in place).")


#: what training writes into (``Sequential._check_views``)
WRITES_ALL = ("params", "grads", "buffers")


class Sequential:
    """A feed-forward network.

    Parameters
    ----------
    *layers : Layer
    dtype : "float32" or "float64" (float64 is what gradient checks use)
    backend : "cython" (compiled kernels) or "numpy" (the reference)
    seed : int or None. Seeds the generator that draws the initial weights
        (and, through the Trainer, the shuffling): the same seed gives the
        same weights in both backends. None uses the default set by
        ``nnc.set_seed`` if there is one, else draws fresh entropy.
    """

    @property
    def training(self):
        """True: batch-norm uses batch statistics, dropout drops (``train()``/``eval()``)."""
        return self._training

    @training.setter
    def training(self, value):
        # (a property, not a Setting: writing __dict__ would slow every read of the model)
        self._training = check_bool(value, "training")

    def __init__(self, *layers, dtype="float32", backend="cython", seed=None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be an nnc layer, got {layer!r}")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice; create a new one per position")
        for i, layer in enumerate(layers):
            if layer.backend is not None:
                raise ValueError(f"layer {i} ({layer!r}) already belongs to a model")
        if seed is not None:
            seed = check_seed(seed)
        else:
            seed = get_seed()  # nnc.set_seed's default (None: fresh entropy)
        self.layers = list(layers)
        self.dtype = check_dtype(dtype)
        self.backend = get_backend(backend, self.dtype)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._lock = ProcessLock(reentrant=True)  # see _in_use
        self.training = True
        self.in_features, self.out_features = self._check_chain()
        try:
            self._allocate_parameters()
            for layer in self.layers:
                layer.build(self.backend, Workspace(self.dtype), self.rng)
            self._workspace = Workspace(self.dtype)  # the model's own scratch (see _backward)
            self._remember_structure()
            self._initialize()
        except BaseException:
            for layer in self.layers:  # free for a corrected Sequential(...)
                layer._release()
            raise

    # --- construction -------------------------------------------------------
    def _check_chain(self):
        # the first layer that knows its input width: a Dense or a BatchNorm
        start, first, width = next(((i, l, w) for i, l in enumerate(self.layers)
                                    for w in [getattr(l, "in_features",
                                                      getattr(l, "num_features", None))]
                                    if w is not None), (None, None, None))
        if first is None:
            raise ValueError("the model needs a layer that knows its input size (a Dense or "
                             "a BatchNorm)")
        features = width
        for i, layer in enumerate(self.layers):
            try:
                features = layer.output_features(features)
            except ValueError as exc:
                if i > start:  # the message blames the previous layer, rightly
                    raise
                # a layer in front of ``first`` gets the model's input, whose
                # size comes from ``first``: there is no previous layer
                expected = getattr(layer, "num_features", None)
                raise ValueError(
                    f"layer {i} ({layer!r}) "
                    + (f"expects {expected} features" if expected is not None
                       else f"does not accept the model's input ({exc})")
                    + f", but the model's input has {features}: the input size comes from "
                    f"layer {start} ({first!r}), the first layer that knows its input size; "
                    "make the two agree") from None
        return width, features

    def _parameter_layout(self):
        """(undecayed, layer index, name, shape) of every parameter, in buffer
        order: parameters under the L2 penalty first, then model order."""
        entries = [(name not in layer.decayed, i, name, shape)
                   for i, layer in enumerate(self.layers)
                   for name, shape in layer.param_shapes().items()]
        entries.sort(key=lambda e: e[0])  # stable
        return entries

    def _allocate_parameters(self):
        """Lay every parameter out in one flat buffer (gradients in a twin).
        Parameters under the L2 penalty come first, so the penalty is one
        kernel call over ``flat_params[:n_decayed]``."""
        entries = self._parameter_layout()
        # math.prod: exact Python ints (np.prod wraps around silently in int64)
        total = sum(math.prod(shape) for *_, shape in entries)
        if total > np.iinfo(np.intp).max // self.dtype.itemsize:
            raise ValueError(f"the model would have {total} parameters, more than this "
                             "machine can address; check the layer sizes")
        self._flat_params = np.zeros(total, dtype=self.dtype)
        self._flat_grads = np.zeros(total, dtype=self.dtype)
        self._bind_views()

    flat_params = _flat_buffer("flat_params", "parameter")
    flat_grads = _flat_buffer("flat_grads", "gradient")

    def _bind_views(self):
        """Point every ``params``/``grads`` entry (the model's and each
        layer's) at its slice of the flat buffers."""
        entries = self._parameter_layout()
        self.params, self.grads = {}, {}
        self.param_layers = []  # layer index of each parameter, in buffer order
        offsets = [0]
        for undecayed, i, name, shape in entries:
            start, stop = offsets[-1], offsets[-1] + math.prod(shape)
            layer, key = self.layers[i], f"{i}.{name}"
            layer.params[name] = self.params[key] = self.flat_params[start:stop].reshape(shape)
            layer.grads[name] = self.grads[key] = self.flat_grads[start:stop].reshape(shape)
            self.param_layers.append(i)
            offsets.append(stop)
        self.param_offsets = np.array(offsets, dtype=np.int64)
        self.n_decayed = sum(math.prod(shape) for undecayed, *_, shape in entries
                             if not undecayed)

    def __getstate__(self):
        # pickle/deepcopy would turn the views into separate arrays; they are
        # rebuilt from the flat buffers instead
        state = self.__dict__.copy()
        state["params"] = state["grads"] = None
        state.pop("_last_input", None)  # a batch, not the model
        return state

    def __setstate__(self, state):
        state.setdefault("_lock", ProcessLock(reentrant=True))  # (older pickles had none)
        for name in ("flat_params", "flat_grads", "training"):  # (older pickles: plain)
            if name in state:
                state["_" + name] = state.pop(name)
        self.__dict__.update(state)
        self._bind_views()
        self._remember_structure()

    @contextlib.contextmanager
    def _in_use(self):
        """Held while a thread computes with or copies the model (fit,
        evaluate, predict, forward, backward, gradcheck, state dicts, save):
        the layers keep one set of buffers, so two threads would
        silently mix their batches. A second thread is refused (see
        nnc/_locks.py for why it does not wait). Re-entrant: a callback of a
        fit may predict on the same thread."""
        held = self._lock.try_acquire()
        if held is None:
            raise RuntimeError("this model is in use in another thread (fit, evaluate, "
                               "predict, forward, backward or a copy): nnc models keep one "
                               "set of buffers, so give each thread its own model "
                               "(copy.deepcopy, while no other thread uses it)")
        try:
            yield
        finally:
            held.release()

    def _remember_structure(self):
        """The layers and buffer arrays as built, for ``_check_views``."""
        self._built_layers = tuple(self.layers)
        self._built_buffers = [(i, name, array) for i, layer in enumerate(self.layers)
                               for name, array in layer.buffers.items()]

    def _check_views(self, writes=()):
        """The layers must be those the model was built with, every
        ``layer.params``/``grads`` entry still its slice of the flat buffers
        and every buffer the array it started as: ``params['W'] = array``
        would detach it (the layer would compute with the array, the
        optimizer update the buffer). ``writes``: what the caller writes
        into, of "params", "grads" and "buffers" (``WRITES_ALL``: training),
        which must not have been made read-only; reading is fine."""
        built = getattr(self, "_built_layers", None)
        if built is not None and (len(built) != len(self.layers) or any(
                a is not b for a, b in zip(built, self.layers))):
            raise ValueError(f"model.layers was changed after the model was built (it had "
                             f"{len(built)} layers, now {len(self.layers)}): build a new "
                             "nnc.Sequential with the layers you want")
        for i, name, array in getattr(self, "_built_buffers", ()):
            if self.layers[i].buffers.get(name) is not array:
                raise ValueError(
                    f"layer {i} ({type(self.layers[i]).__name__}): buffers[{name!r}] was "
                    "replaced by another object; write the values into it instead: "
                    f"layer.buffers[{name!r}][...] = values")
            if "buffers" in writes and not array.flags.writeable:
                raise ValueError(f"layer {i} ({type(self.layers[i]).__name__}): "
                                 f"buffers[{name!r}] was made read-only, but this call updates "
                                 "it in place (a training-mode forward updates the running "
                                 "statistics): set its flags.writeable back to True")
        for part, name in (("params", "flat_params"), ("grads", "flat_grads")):
            if part in writes and not getattr(self, name).flags.writeable:
                raise ValueError(f"model.{name} was made read-only, but this call writes into "
                                 "it: set its flags.writeable back to True")
        for key, view in self.params.items():
            i, name = key.split(".", 1)
            layer = self.layers[int(i)]
            if layer.params.get(name) is not view or layer.grads.get(name) is not \
                    self.grads[key]:
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}): params[{name!r}] or grads[{name!r}] "
                    "was replaced by another array, which training would not update; write "
                    f"the values into it instead: layer.params[{name!r}][...] = values")
            if ("params" in writes and not view.flags.writeable) or (
                    "grads" in writes and not self.grads[key].flags.writeable):
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}): params[{name!r}] or grads[{name!r}] "
                    "was made read-only; that does not freeze it (the optimizer updates the "
                    "model's flat buffer, which stays writable), so it is refused: set its "
                    "flags.writeable back to True")

    def _initialize(self):
        for layer, default in zip(self.layers, self._default_inits()):
            layer.initialize(default)
        for layer, following in zip(self.layers, self.layers[1:]):
            if isinstance(layer, Dense) and layer.bias and isinstance(following, BatchNorm):
                warnings.warn(f"{layer!r} has a bias right before BatchNorm: batch-norm "
                              "subtracts the batch mean, which cancels the bias, so it only "
                              "costs memory and time (and adaptive optimizers such as Adam "
                              "scale its rounding-level gradient up into steps: the bias "
                              "drifts, and the running mean lags it); use bias=False "
                              "(lecture, section 9)", UserWarning, stacklevel=3)

    def _default_inits(self):
        """For each layer, the initialiser the activation after it suits:
        He-normal when the next activation (before the next Dense) is
        ReLU-like, Glorot-normal otherwise. One pass from the end."""
        defaults, upcoming = [], "glorot_normal"
        for layer in reversed(self.layers):
            defaults.append(upcoming)
            if isinstance(layer, Dense):
                upcoming = "glorot_normal"
            elif layer.activation is not None:
                upcoming = "he_normal" if layer.activation == "relu" else "glorot_normal"
        return defaults[::-1]

    @property
    def needs_batch_statistics(self):
        return any(layer.needs_batch_statistics for layer in self.layers)

    @property
    def n_params(self):
        return self.flat_params.size

    # --- modes --------------------------------------------------------------
    def train(self):
        """Training mode (batch statistics in batch-norm, dropout on)."""
        self.training = True
        return self

    def eval(self):
        """Evaluation mode (running statistics, dropout off)."""
        self.training = False
        return self

    # --- the hot path (no validation, outputs are workspace buffers) --------
    def _forward(self, x, training):
        self._last_batch = None  # the layers' saved activations are no longer forward()'s
        # the training batch, whose scale diagnostics read (not a predict's
        # input: a view of it would keep the caller's whole array alive)
        self._last_input = x if training else None
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _backward(self, dy, need_input_grad=False):
        """Back-propagate ``dy``, which stays unchanged: a layer that
        overwrites its incoming gradient (``backward_in_place``) and would
        get ``dy`` itself (at the top, or below layers that pass it through)
        gets a copy in the model's own buffer."""
        external = dy
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if layer.backward_in_place and external is not None \
                    and np.may_share_memory(dy, external):
                owned = self._workspace.get("dy", dy.shape)
                np.copyto(owned, dy)
                dy, external = owned, None
            dy = layer.backward(dy, need_input_grad or i > 0)
        return dy

    # --- public API (validated, returns arrays the caller owns) -------------
    def forward(self, X, training=None):
        """Output of the network for a batch ``X`` of shape (n, in_features).
        ``training=None`` uses the current mode (``train()``/``eval()``)."""
        training = self.training if training is None else check_bool(training, "training")
        self._check_views(writes=("buffers",) if training else ())  # (running statistics)
        checked = check_features(X, "X", self.in_features, self.dtype)
        if checked is X or not checked.flags.owndata:
            # layers keep their input for backward: own a copy unless the check
            # already made a fresh array (a view may share the caller's memory:
            # an ndarray subclass such as a memmap, a memoryview, ...)
            checked = checked.copy()
        with self._in_use():
            output = self._forward(checked, training).copy()
            self._last_batch = checked.shape[0]
        return output

    def backward(self, dY):
        """Back-propagate dL/d(output) ``dY`` through the last ``forward``:
        fills every ``layer.grads`` (overwriting, not accumulating) and returns
        dL/dX."""
        n = getattr(self, "_last_batch", None)
        if n is None:
            raise RuntimeError("backward() needs a forward() first (and no predict(), "
                               "evaluate(), fit() or gradcheck() in between: they reuse the "
                               "layers' buffers)")
        dY = check_features(dY, "dY", self.out_features, self.dtype)
        if dY.shape[0] != n:
            raise ValueError(f"dY has {dY.shape[0]} rows, but the last forward() had {n}")
        self._check_views(writes=("grads",))  # a replaced grads array would not be filled
        with self._in_use():
            return self._backward(dY, need_input_grad=True).copy()

    def predict(self, X, batch_size=1024):
        """Network output for ``X`` in evaluation mode, computed in batches."""
        self._check_views()
        X = check_features(X, "X", self.in_features, self.dtype)
        batch_size = check_int(batch_size, "batch_size", low=1)
        out = np.empty((X.shape[0], self.out_features), dtype=self.dtype)
        with self._in_use():
            for start in range(0, X.shape[0], batch_size):
                stop = min(start + batch_size, X.shape[0])
                out[start:stop] = self._forward(X[start:stop], training=False)
        return out

    def save(self, path, metadata=None):
        """Write the model to ``path`` (one ``.npz``: the arrays plus a JSON
        header with the architecture); ``nnc.load(path)`` reads it back.
        ``metadata`` is an optional JSON-serialisable dict kept in the header.
        See ``nnc.persistence``."""
        from nnc.persistence import save_model

        save_model(self, path, metadata=metadata)

    def summary(self):
        lines = [f"Sequential(dtype={self.dtype.name}, backend={self.backend.name!r}, "
                 f"seed={self.seed})"]
        for i, layer in enumerate(self.layers):
            n = sum(p.size for p in layer.params.values())
            lines.append(f"  ({i}) {layer!r}" + (f"  {n} params" if n else ""))
        lines.append(f"  total: {self.n_params} parameters")
        return "\n".join(lines)

    def __repr__(self):
        return self.summary()
