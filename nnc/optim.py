"""Optimizers (lecture, sections 5-7): a little state and one update rule.

Each optimizer is bound to a model's flat parameter and gradient buffers
(``bind(model)``; the Trainer does it) and ``step()`` applies its rule to
every parameter with one in-place kernel call. The state arrays (velocity,
squared-gradient averages) are flat buffers of the same size.

Conventions (nnc follows the lecture; the README's conventions table maps the others):

=========  ===========================================  ====================================
nnc        rule                                          PyTorch / Keras equivalent
=========  ===========================================  ====================================
SGD        w ← w - α g                                   torch SGD(lr=α); Keras SGD(α)
momentum   z ← βz - (1-β)g;  w ← w + αz   (z₀ = 0)       torch SGD(lr=α(1-β), momentum=β,
                                                         dampening=0) exactly; torch
                                                         dampening=β has the same rule but
                                                         starts its buffer at g (the weights
                                                         stay αβ/(1-β) g₁ apart);
                                                         Keras SGD(α(1-β), momentum=β)
                                                         (Keras keeps lr inside the velocity)
Nesterov   look-ahead gradient, re-parametrised          torch SGD(lr=α(1-β), momentum=β,
                                                         nesterov=True); Keras nesterov=True
RMSprop    r ← ρr + (1-ρ)g²;  w ← w - αg/sqrt(r + ε)     Keras RMSprop; torch puts ε outside
                                                         the root: g/(sqrt(r) + ε)
Adam       paper's Algorithm 1, ε outside the root       torch Adam; Keras uses ε̂ form
AdamW      decoupled decay w ← w - αλw, then Adam        torch AdamW (decays every parameter)
Adagrad    r ← r + g²;  w ← w - αg/(sqrt(r) + ε)         torch Adagrad(initial_accumulator_value=0)
=========  ===========================================  ====================================
"""
import contextlib
import math
import warnings

import numpy as np

from nnc._validation import (MAX_STEPS, RefusesOtherLibrariesNames, Setting, check_bool,
                             check_float, check_state_array, check_step, number_setting)
from nnc.backends import get_backend


class Optimizer(RefusesOtherLibrariesNames):
    """Base class: ``lr`` plus named state buffers (``state_names``) that
    ``bind`` allocates with the size of the model's flat parameter buffer."""

    state_names = ()
    _aliases = {"learning_rate": ("lr", "lr"), "beta_1": ("beta1", "beta1"),  # (Keras', PyTorch's)
                "beta_2": ("beta2", "beta2"), "betas": ("beta1", "beta1 and beta2"),
                "epsilon": ("eps", "eps"),
                "weight_decay": (None, "Trainer(l2=...) for L2 in the loss, or use "
                                       "nnc.AdamW(weight_decay=...)"),
                "clipnorm": (None, "Trainer(clip_norm=...)"),
                "global_clipnorm": (None, "Trainer(clip_norm=...)"),
                "clipvalue": (None, "Trainer(clip_value=...)")}
    # 0 is allowed (as in PyTorch): schedules and ReduceLROnPlateau may reach it
    lr = number_setting(low=0)
    #: the number of steps taken (Adam's bias correction counts them)
    t = Setting(check_step)
    #: state arrays that hold sums or averages of g² (never negative)
    squared_state = ()
    #: True when ε is added under the root, sqrt(r + ε) (RMSprop)
    eps_under_root = False

    def __init__(self, lr):
        self.lr = lr
        self.params = None
        self.grads = None
        self.backend = None
        self.state = {}
        self.t = 0
        self._largest_float = None  # of the parameters' dtype, from bind
        self._lock = None  # the bound model's (see _hold_model)

    def bind(self, model, grads=None, backend="cython"):
        """Attach to ``model``'s flat buffers, or to a parameter vector
        ``bind(w, g, backend)`` (1-D float arrays updated in place, as the
        playground does). State starts at zero."""
        lock = None
        if grads is None:
            if not all(hasattr(model, a) for a in ("flat_params", "flat_grads", "backend")):
                raise TypeError(f"model must be an nnc.Sequential (or call bind(w, grads) with "
                                f"two 1-D float arrays), got {model!r:.80}")
            params, grads, backend = model.flat_params, model.flat_grads, model.backend
            lock = getattr(model, "_lock", None)  # the model's "one thread at a time"
        else:
            params = model
            for name, array in (("w", params), ("grads", grads)):
                if not isinstance(array, np.ndarray) or array.ndim != 1 \
                        or array.dtype not in (np.float32, np.float64) \
                        or not array.flags.c_contiguous:
                    raise TypeError(f"{name} must be a 1-D C-contiguous float32/float64 "
                                    f"array, got {array!r:.80}")
            if grads.shape != params.shape or grads.dtype != params.dtype:
                raise ValueError(f"grads ({grads.shape}, {grads.dtype}) must match "
                                 f"w ({params.shape}, {params.dtype})")
        if self.params is not None and self.params is not params:
            raise ValueError(f"this {type(self).__name__} is already bound to other "
                             "parameters; create one optimizer per model")
        self._check_eps(params.dtype)
        # state loaded by load_state_dict before bind: the parameters' shape and dtype
        for name in list(self.state):
            self.state[name] = self._checked_state_array(name, self.state[name], params)
        self.params = params
        self.grads = grads
        self._lock = lock
        self.backend = get_backend(backend, params.dtype)
        self._largest_float = float(np.finfo(params.dtype).max)  # for can_take, every step
        for name in self.state_names:
            self.state.setdefault(name, np.zeros_like(self.params))
        return self

    def step(self, lr=None):
        """One update of every parameter from its gradient, in place.
        ``lr`` overrides the learning rate for this step (schedules)."""
        if self.params is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a model: "
                               "call optimizer.bind(model) or pass it to a Trainer")
        if lr is None:
            lr = self.lr
        elif not (isinstance(lr, float) and 0.0 <= lr < math.inf):  # fast path: a finite float
            lr = check_float(lr, "lr", low=0)  # a clear error, or a NumPy scalar converted
        self.check_lr(lr)
        if self.t >= MAX_STEPS:  # the kernels take t as a 64-bit int
            raise ValueError(f"the step count t = {self.t} is at its limit 2**63 - 1: "
                             "no further step can be counted")
        held = self._hold_model()  # (not _model_held: a context manager costs ~1 us a step)
        try:
            self.__dict__["t"] = self.t + 1  # (in range: checked above)
            try:
                self._update(lr)
            except BaseException as exc:
                self.__dict__["t"] -= 1  # the step was not taken
                if isinstance(exc, (TypeError, ValueError, KeyError)) \
                        and type(self)._update.__module__ == __name__:  # (nnc's kernels)
                    self._check_state_arrays()  # e.g. a state array replaced by a wrong one
                raise
        finally:
            if held is not None:
                held.release()

    def _check_state_arrays(self):
        """ValueError naming a state array (or the gradients) no longer the
        parameters' shape and dtype (replaced instead of written into)."""
        if not (isinstance(self.grads, np.ndarray) and self.grads.shape == self.params.shape
                and self.grads.dtype == self.params.dtype):
            raise ValueError(f"optimizer.grads must be the {self.params.dtype} gradient array "
                             f"of shape {self.params.shape} it was bound to (bind sets it), got "
                             f"{type(self.grads).__name__}")
        for name in self.state_names:
            array = self.state.get(name)
            if not (isinstance(array, np.ndarray) and array.shape == self.params.shape
                    and array.dtype == self.params.dtype and array.flags.c_contiguous
                    and array.flags.writeable):
                got = (f"{array.dtype} {array.shape}"
                       + ("" if array.flags.c_contiguous else ", not C-contiguous")
                       + ("" if array.flags.writeable else ", read-only")
                       if isinstance(array, np.ndarray) else type(array).__name__)
                raise ValueError(f"optimizer.state[{name!r}] must be a writable C-contiguous "
                                 f"{self.params.dtype} array of shape {self.params.shape} "
                                 f"(write into it: state[{name!r}][...] = values), got {got}")

    @contextlib.contextmanager
    def _model_held(self):
        """``_hold_model`` for a block."""
        held = self._hold_model()
        try:
            yield
        finally:
            if held is not None:
                held.release()

    def _hold_model(self):
        """The bound model's lock, acquired (None for bare arrays): the
        parameters are the model's, which another thread may be computing
        with (see Sequential._in_use)."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return None
        held = lock.try_acquire()
        if held is None:
            raise RuntimeError(f"the model of this {type(self).__name__} is in use in another "
                               "thread (a fit, predict ...): its parameters cannot change "
                               "under it; give each thread its own model and optimizer")
        return held

    def can_take(self, largest):
        """Whether a step whose gradient elements are at most ``largest`` in
        magnitude keeps the state finite (the NaN guard asks before every
        step): averages of squared gradients (RMSprop, Adam) stay below
        largest², which must not overflow the parameters' dtype."""
        if not self.squared_state:
            return True
        return largest * largest < self._largest_float

    def zero_grad(self):
        """Set every gradient to zero."""
        if self.grads is not None:
            with self._model_held():
                self.grads.fill(0)

    def state_bytes(self):
        """Memory held by the optimizer's state (lecture, section 7)."""
        return sum(array.nbytes for array in self.state.values())

    def state_dict(self):
        """Hyper-parameters, step count and copies of the state arrays."""
        return {"type": type(self).__name__, "config": self.config(), "t": self.t,
                "state": {name: array.copy() for name, array in self.state.items()}}

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned (arrays copied in place).
        Everything is checked first: a refused state changes nothing."""
        checked = self._checked_state(state)
        with self._model_held():
            self._apply_state(*checked)

    def _checked_state(self, state):
        """(optimizer rebuilt from the config, t, state arrays) of a
        ``state_dict``, or ValueError naming what is wrong."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(), got {state!r:.80}")
        if state.get("type") != type(self).__name__:
            raise ValueError(f"state_dict is for {state.get('type')!r}, "
                             f"not {type(self).__name__!r}")
        config = state.get("config")
        if not isinstance(config, dict):
            raise ValueError(f"state_dict['config'] must be a dict of hyper-parameters, "
                             f"got {config!r:.80}")
        try:  # the constructor checks every hyper-parameter
            rebuilt = type(self)(**config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"state_dict['config'] {config!r:.120} is invalid: {exc}") from None
        if self.params is not None:
            rebuilt._check_eps(self.params.dtype)
        t = check_step(state.get("t"), "state_dict['t']")
        arrays = state.get("state")
        if not isinstance(arrays, dict):
            raise ValueError(f"state_dict['state'] must be a dict of arrays, got {arrays!r:.80}")
        missing = set(rebuilt.state_names) - set(arrays)
        if missing:
            raise ValueError(f"state_dict lacks state arrays {sorted(missing)}")
        extra = set(arrays) - set(rebuilt.state_names)
        if extra:
            raise ValueError(f"state_dict has state arrays {sorted(extra)} that "
                             f"{rebuilt!r} does not use")
        checked = {}
        for name in rebuilt.state_names:
            value = np.asarray(arrays[name])
            like = self.params if self.params is not None else value  # unbound: as given
            checked[name] = rebuilt._checked_state_array(name, value, like)
        return rebuilt, int(t), checked

    def _checked_state_array(self, name, value, like):
        """State array ``name`` as a finite array of ``like``'s shape and dtype
        (non-negative for averages of squared gradients), or ValueError."""
        return check_state_array(value, f"state array {name!r}", like.shape, like.dtype,
                                 "averages of squared gradients" if name in self.squared_state
                                 else None)

    def _apply_state(self, rebuilt, t, arrays):
        for key in rebuilt.config():  # checked together when rebuilt was constructed
            if isinstance(getattr(type(self), key, None), Setting):
                self.__dict__[key] = getattr(rebuilt, key)
            else:
                setattr(self, key, getattr(rebuilt, key))
        self.state_names = rebuilt.state_names
        self.t = t
        for name in list(self.state):
            if name not in arrays:
                del self.state[name]
        for name, value in arrays.items():
            if name in self.state:
                self.state[name][...] = value
            else:
                self.state[name] = value.copy()  # already the parameters' dtype

    def _update(self, lr):
        raise NotImplementedError

    def check_lr(self, lr):
        """ValueError if this optimizer cannot take a step of rate ``lr`` (the
        Trainer asks before a scheduled step changes anything): the kernels
        take the rate in the parameters' dtype, where it must be finite."""
        largest = self._largest_float
        # the bound first: the exact factor (Adam's powers) only for a huge lr
        if largest is not None and not lr * self._rate_bound() < largest \
                and not lr * self._rate_factor() < largest:
            limit = largest / self._rate_factor()
            raise ValueError(f"lr must be below {limit:.4g} for {self.params.dtype.name} "
                             f"parameters (the update's rate would overflow to inf), "
                             f"got {lr!r}")

    def _rate_factor(self):
        """The kernel's rate for the next update is ``lr`` times this (Adam's
        bias correction)."""
        return 1.0

    def _rate_bound(self):
        """An upper bound of ``_rate_factor()`` at every step."""
        return 1.0

    def _square_weight(self):
        """The weight c of g² in the squared-gradient state (1-β₂ for Adam),
        or None for an optimizer without one."""
        return None

    def _smallest_eps(self, dtype):
        """The smallest ε the update survives in ``dtype``. The kernels flush
        numbers below the smallest normal float ("tiny") to zero: an ε below
        it vanishes (and a zero gradient gives 0/0), and a gradient g so small
        that c g² < tiny (c = ``_square_weight()``) leaves no trace in the state,
        so its step is g/ε (g/sqrt(ε) under the root). ε is held large enough
        that such a step stays below 1 % of the learning rate."""
        tiny = float(np.finfo(dtype).tiny)
        weight = self._square_weight()
        if weight is None:
            return tiny
        unregistered = math.sqrt(tiny / weight)  # the largest such |g|
        return max(tiny, (100 * unregistered) ** 2 if self.eps_under_root
                   else 100 * unregistered)

    def __setstate__(self, state):
        # an optimizer pickled before settings were checked on change
        params = state.get("params")
        largest = None if params is None else float(np.finfo(params.dtype).max)
        self.__dict__.update({"_built": True, "_largest_float": largest, **state})

    def _finish_init(self):
        """The end of a constructor: the rules across settings hold, and
        from now on every change of a setting is checked against them."""
        self._check_settings()
        self._built = True

    def _check_settings(self):
        """ValueError if the settings together cannot work (each alone was
        checked when set)."""
        if self.params is not None:
            self._check_eps(self.params.dtype)

    def _check_eps(self, dtype):
        eps = getattr(self, "eps", None)
        largest = math.sqrt(float(np.finfo(dtype).max))
        if eps is not None and eps > largest:
            raise ValueError(f"eps must be <= {largest:.3g} for {np.dtype(dtype).name} "
                             f"parameters (the kernels add it in that dtype, where a larger "
                             f"one becomes inf with r or sqrt(v) and the update 0), got {eps!r}")
        if eps is not None and eps < self._smallest_eps(dtype):
            raise ValueError(f"eps must be >= {self._smallest_eps(dtype):.3g} for "
                             f"{np.dtype(dtype).name} parameters (below it, a gradient too "
                             f"small to register in the optimizer's state, or a zero one, "
                             f"would take a step of up to lr·|g|/eps, or NaN), got {eps!r}")

    def config(self):
        return {"lr": self.lr}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _check_beta(value, name):
    return check_float(value, name, low=0, high=1, high_open=True)


def _beta_setting():
    return Setting(_check_beta)


def _eps_setting():
    return number_setting(low=0, low_open=True)


def _check_decay(lr, weight_decay):
    """AdamW's w ← (1 - αλ) w: αλ >= 1 would flip or zero every weight."""
    if lr * weight_decay >= 1:
        raise ValueError(f"lr * weight_decay must be < 1 (the decay multiplies the weights by "
                         f"1 - lr * weight_decay), got {lr} * {weight_decay} = "
                         f"{lr * weight_decay}")


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with the lecture's momentum.

    ``momentum=0``: w ← w - α g (Algorithm 2).
    ``momentum=β``: z ← β z - (1-β) g;  w ← w + α z, z starting at 0.
    ``nesterov=True``: the gradient is taken at the look-ahead point
    w + αβz, where the velocity's next step αβz carries the weights (the
    slide writes w + βz, but its step is αz). Keeping the look-ahead point
    as the parameters (the usual re-parametrisation, so no second forward
    pass is needed) gives
    z ← β z - (1-β) g;  w ← w + α (β z - (1-β) g).

    PyTorch: ``torch.optim.SGD(lr=α*(1-β), momentum=β, dampening=0,
    nesterov=...)`` follows the same trajectory from the first step.
    ``dampening=β`` (with lr=α) has the same rule but starts its buffer at
    g₁ instead of (1-β) g₁, and the weights never catch up: they end
    α β/(1-β) g₁ apart.
    Keras: ``SGD(learning_rate=α*(1-β), momentum=β)``; Keras keeps the
    learning rate inside the velocity (v ← βv - lr g).
    """

    momentum = _beta_setting()
    nesterov = Setting(check_bool)

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = momentum
        self.nesterov = nesterov
        self._finish_init()

    def _check_settings(self):
        super()._check_settings()
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0")
        velocity = ("velocity",) if self.momentum > 0 else ()
        if self.params is not None and velocity != self.state_names:
            raise ValueError(f"momentum {self.momentum} would switch momentum "
                             f"{'on' if velocity else 'off'} for an SGD already bound to a "
                             "model (its velocity state): create a new optimizer for that")
        self.state_names = velocity

    def _update(self, lr):
        if self.momentum > 0:
            self.backend.momentum_update(self.params, self.grads, self.state["velocity"],
                                         lr, self.momentum, self.nesterov)
        else:
            self.backend.sgd_update(self.params, self.grads, lr)

    def config(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop as in the lecture: r ← ρ r + (1-ρ) g²;  w ← w - α g / sqrt(r + ε).

    PyTorch: ``torch.optim.RMSprop(lr=α, alpha=ρ, eps=...)`` (default
    ρ 0.99 there) puts ε outside the root, g / (sqrt(r) + ε). ε = 1e-8
    inside the root acts like 1e-4 outside it, which shows wherever
    sqrt(r) is not far above 1e-4 (small gradients): to reproduce PyTorch,
    pass a tiny ε to both (e.g. 1e-30). Keras matches nnc.
    """

    state_names = squared_state = ("square_avg",)
    eps_under_root = True

    rho = _beta_setting()
    eps = _eps_setting()
    _aliases = {**Optimizer._aliases, "alpha": ("rho", "rho (PyTorch's alpha)")}

    def __init__(self, lr=1e-3, rho=0.9, eps=1e-8):
        super().__init__(lr)
        self.rho = rho
        self.eps = eps
        self._finish_init()

    def _square_weight(self):
        return 1 - self.rho

    def _update(self, lr):
        self.backend.rmsprop_update(self.params, self.grads, self.state["square_avg"],
                                    lr, self.rho, self.eps)

    def config(self):
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps}


class Adam(Optimizer):
    """Adam, the paper's Algorithm 1 (Kingma & Ba, 2015):

        m ← β₁ m + (1-β₁) g          (momentum, the lecture's z)
        v ← β₂ v + (1-β₂) g²         (RMSprop, the lecture's r)
        m̂ = m / (1-β₁ᵗ),  v̂ = v / (1-β₂ᵗ)      (bias correction)
        w ← w - α m̂ / (sqrt(v̂) + ε)

    The slide writes the bias correction as /(1-β); the power t is what
    makes early steps unbiased (m and v start at zero). ε sits outside the
    root, as in the paper and PyTorch; the slide's z/sqrt(r + ε) puts it
    inside, which only matters where sqrt(v̂) is near sqrt(ε) (tiny
    gradients: for g = 1e-5 the first step is α here and α/10 there).
    Keras folds the bias correction into the step,
    w ← w - α sqrt(1-β₂ᵗ)/(1-β₁ᵗ) · m / (sqrt(v) + ε), with
    its ``epsilon`` constant: nnc's Adam(eps=ε) is Keras' with
    epsilon = ε sqrt(1-β₂ᵗ) at step t, so the two agree only while ε is
    negligible against sqrt(v).
    """

    state_names = ("m", "v")
    squared_state = ("v",)

    beta1 = _beta_setting()
    beta2 = _beta_setting()
    eps = _eps_setting()

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self._finish_init()

    @property
    def weight_decay(self):
        """0: Adam decays nothing (AdamW's λ; or the lecture's Trainer(l2=λ))."""
        return 0.0

    @weight_decay.setter
    def weight_decay(self, value):
        raise AttributeError(f"{type(self).__name__} has no weight decay to set (got "
                             f"{value!r}): Adam decays nothing; use nnc.AdamW(weight_decay=...) "
                             "(or subclass it) for decoupled decay, or Trainer(l2=...) for the "
                             "lecture's L2 penalty")

    def __setstate__(self, state):
        # an Adam pickled before 2026-11-28 may hold a weight_decay set by hand
        fixed = isinstance(getattr(type(self), "weight_decay", None), property)  # (not AdamW's)
        decay = state.pop("weight_decay", 0.0) if fixed else 0.0
        if decay:
            warnings.warn(f"this {type(self).__name__} was pickled with weight_decay={decay!r} "
                          "set by hand, which Adam no longer takes: it now decays nothing "
                          "(use nnc.AdamW for decoupled decay)", UserWarning, stacklevel=2)
        super().__setstate__(state)

    def _square_weight(self):
        return 1 - self.beta2

    def _smallest_eps(self, dtype):
        # the Cython kernel adds ε·sqrt(1-β₂ᵗ) to sqrt(v) (optimizers.pyx, adam_update; the
        # NumPy reference divides sqrt(v) by sqrt(1-β₂ᵗ) instead): smallest at t = 1
        tiny = float(np.finfo(dtype).tiny)
        return max(super()._smallest_eps(dtype), tiny / math.sqrt(1 - self.beta2))

    def check_lr(self, lr):
        super().check_lr(lr)
        _check_decay(lr, self.weight_decay)

    def _rate_factor(self):
        t = self.t + 1  # the step about to be taken (see adam_update)
        return math.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)

    def _rate_bound(self):
        return 1 / (1 - self.beta1)  # sqrt(1 - β₂ᵗ) <= 1, 1 - β₁ᵗ >= 1 - β₁

    def _update(self, lr):
        self.backend.adam_update(self.params, self.grads, self.state["m"], self.state["v"],
                                 lr, self.beta1, self.beta2, self.eps, self.t,
                                 self.weight_decay)

    def config(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter):
    w ← w - α λ w before each Adam step. Like PyTorch's AdamW it decays
    every parameter; the coupled L2 penalty of the lecture is
    ``Trainer(l2=λ)``, which leaves biases alone."""

    weight_decay = number_setting(low=0)

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        self.weight_decay = weight_decay
        super().__init__(lr, beta1, beta2, eps)

    def _check_settings(self):
        super()._check_settings()
        _check_decay(self.lr, self.weight_decay)

    def config(self):
        return {**super().config(), "weight_decay": self.weight_decay}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): r ← r + g²;  w ← w - α g / (sqrt(r) + ε).
    The accumulated r only grows, so the effective rate only shrinks."""

    state_names = squared_state = ("sum_squares",)

    eps = _eps_setting()

    def __init__(self, lr=1e-2, eps=1e-10):
        super().__init__(lr)
        self.eps = eps
        # an upper bound of max(r), kept as a float for can_take (None: unknown)
        self._largest_sum = self._next_largest_sum = None
        self._finish_init()

    def bind(self, *args, **kwargs):
        self._largest_sum = None
        return super().bind(*args, **kwargs)

    def _apply_state(self, *args):
        super()._apply_state(*args)
        self._largest_sum = None

    def can_take(self, largest):
        """r only grows: r + g² must stay finite. Checked against a bound of
        max(r), read exactly from the state only when the bound gets close;
        the bound after this step is kept for ``_update`` to adopt."""
        square = largest * largest
        if self._largest_sum is None or self._largest_sum + square >= self._largest_float:
            self._largest_sum = float(self.state["sum_squares"].max(initial=0.0))
        self._next_largest_sum = self._largest_sum + square
        return self._next_largest_sum < self._largest_float

    def _square_weight(self):
        return 1.0

    def _update(self, lr):
        self.backend.adagrad_update(self.params, self.grads, self.state["sum_squares"],
                                    lr, self.eps)
        # the bound can_take computed for this step (unknown if it was not asked)
        self._largest_sum, self._next_largest_sum = self._next_largest_sum, None

    def config(self):
        return {"lr": self.lr, "eps": self.eps}
