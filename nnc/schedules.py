"""Learning-rate schedules α_t, evaluated at every optimizer step t = 0, 1, …

``t`` counts the steps already taken, so the first update uses α₀ (as in
PyTorch's and Keras' schedules); the lecture's Algorithm 2 starts its
counter at 1, so its α_t is ``schedule(t - 1)`` here.

The lecture's linear decay, α_t = (1 - t/τ) α₀ + (t/τ) α_τ for t ≤ τ and
α_τ after, plus the other common shapes. A schedule is a callable
``schedule(t) -> learning rate``; pass one to ``Trainer(schedule=...)`` and
the rate used at every step is recorded in ``history.steps["lr"]``.
"""
import math
import numbers

from nnc._validation import (MAX_STEPS, Setting, check_float, check_int, int_setting,
                             number_setting)

# A schedule's numbers are settings: checked when the constructor sets them
# and when they are changed later (schedule.decay_steps = 0 is refused the
# same way), never when the schedule runs.


def _rate():
    """A learning rate: a finite number >= 0."""
    return number_setting(low=0)


def _steps():
    """A number of steps: an int >= 1."""
    return int_setting(low=1)


def _factor():
    """A decay factor in (0, 1]."""
    return number_setting(low=0, high=1, low_open=True)


def _check_t(t):
    """The step ``t``, a number >= 0 (training passes ints; a float step is
    fine for plotting a schedule). Schedules run once per training step: a
    plain int >= 0 costs one type check."""
    if type(t) is int and 0 <= t <= MAX_STEPS:
        return t
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise TypeError(f"t (the optimizer step a schedule is called with) must be a number "
                        f">= 0, got {t!r:.60}" + ("; call the schedule once per step, e.g. "
                                                   "[s(t) for t in steps]"
                                                   if hasattr(t, "__len__") else ""))
    if not 0 <= t <= MAX_STEPS:
        raise ValueError(f"t (the optimizer step a schedule is called with) must be a number "
                         f"from 0 to 2**63 - 1, got {t!r:.40}")
    # NumPy numbers as Python ones: np.int64 arithmetic would overflow (t // 2**63)
    return int(t) if isinstance(t, numbers.Integral) else float(t)


def _check_schedule(value, name):
    if not callable(value):
        raise TypeError(f"{name} must be a schedule (callable t -> lr), got {value!r:.80}")
    return value


class Schedule:
    def __call__(self, t):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """α_t = α₀."""

    lr = _rate()

    def __init__(self, lr):
        self.lr = lr

    def __call__(self, t):
        _check_t(t)
        return self.lr


class LinearDecay(Schedule):
    """The lecture's schedule: α_t = (1 - t/τ) α₀ + (t/τ) α_τ up to t = τ,
    then α_τ (a common choice: α_τ ≈ α₀ / 100)."""

    lr0, lr_final, decay_steps = _rate(), _rate(), _steps()

    def __init__(self, lr0, lr_final, decay_steps):
        self.lr0 = lr0
        self.lr_final = lr_final
        self.decay_steps = decay_steps

    def __call__(self, t):
        fraction = min(_check_t(t) / self.decay_steps, 1.0)
        return (1 - fraction) * self.lr0 + fraction * self.lr_final


class StepDecay(Schedule):
    """α_t = α₀ γ^⌊t / step_size⌋: multiplied by γ every ``step_size`` steps."""

    lr0, step_size, gamma = _rate(), _steps(), _factor()

    def __init__(self, lr0, step_size, gamma=0.1):
        self.lr0 = lr0
        self.step_size = step_size
        self.gamma = gamma

    def __call__(self, t):
        return self.lr0 * self.gamma ** (_check_t(t) // self.step_size)


class ExponentialDecay(Schedule):
    """α_t = α₀ γ^(t / decay_steps): a factor γ every ``decay_steps`` steps,
    smoothly."""

    lr0, gamma, decay_steps = _rate(), _factor(), _steps()

    def __init__(self, lr0, gamma, decay_steps=1):
        self.lr0 = lr0
        self.gamma = gamma
        self.decay_steps = decay_steps

    def __call__(self, t):
        return self.lr0 * self.gamma ** (_check_t(t) / self.decay_steps)


class CosineDecay(Schedule):
    """α_t = α_min + ½ (α₀ - α_min)(1 + cos(π t/T)) for t ≤ T, then α_min."""

    lr0, decay_steps, lr_min = _rate(), _steps(), _rate()

    def __init__(self, lr0, decay_steps, lr_min=0.0):
        self.lr0 = lr0
        self.decay_steps = decay_steps
        self.lr_min = lr_min

    def __call__(self, t):
        fraction = min(_check_t(t) / self.decay_steps, 1.0)
        return self.lr_min + 0.5 * (self.lr0 - self.lr_min) * (1 + math.cos(math.pi * fraction))


class Warmup(Schedule):
    """Linear warm-up in front of any schedule: α_t rises linearly from
    ``start_lr`` to ``after(0)`` over ``warmup_steps`` steps, then
    α_t = after(t - warmup_steps)."""

    after = Setting(_check_schedule)
    warmup_steps, start_lr = _steps(), _rate()

    def __init__(self, after, warmup_steps, start_lr=0.0):
        self.after = after
        self.warmup_steps = warmup_steps
        self.start_lr = start_lr

    def __call__(self, t):
        t = _check_t(t)
        if t < self.warmup_steps:
            fraction = t / self.warmup_steps
            return (1 - fraction) * self.start_lr + fraction * self._after(0)
        return self._after(t - self.warmup_steps)

    def _after(self, t):
        """``after(t)``, checked: a finite number >= 0."""
        lr = self.after(t)
        if isinstance(lr, float) and 0.0 <= lr < math.inf:
            return lr
        try:
            return check_float(lr, f"after({t})", low=0)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"Warmup: the schedule it wraps, after={self.after!r}, must return "
                            f"a learning rate (a finite number >= 0): {exc}") from None


#: the schedules a whole run is described by (``over_run``): the CLI's
#: ``--schedule`` and the scikit-learn estimators' ``schedule``
RUN_SCHEDULES = ("constant", "linear", "cosine")


def over_run(name, lr0, total_steps):
    """The learning rate over a run of ``total_steps`` steps, by name:
    ``"constant"`` None (the optimizer's own lr, which callbacks such as
    ReduceLROnPlateau may change), ``"linear"`` the lecture's decay from
    ``lr0`` to ``lr0 / 100``, ``"cosine"`` a cosine decay to 0."""
    if name not in RUN_SCHEDULES:
        raise ValueError(f"schedule must be one of {RUN_SCHEDULES}, got {name!r:.60}")
    total_steps = check_int(total_steps, "total_steps", low=0)  # (0 steps: a run of 1)
    lr0 = check_float(lr0, "lr0", low=0)
    total_steps = max(1, total_steps)
    if name == "linear":
        return LinearDecay(lr0, lr0 / 100, total_steps)
    if name == "cosine":
        return CosineDecay(lr0, total_steps)
    return None


SCHEDULES = {
    "constant": Constant,
    "linear": LinearDecay,
    "step": StepDecay,
    "exponential": ExponentialDecay,
    "cosine": CosineDecay,
    "warmup": Warmup,
}


def get(name, **kwargs):
    """A schedule by name, e.g. ``get("linear", lr0=0.1, lr_final=0.001, decay_steps=1000)``."""
    if not isinstance(name, str):
        raise TypeError(f"schedule name must be a str, one of {sorted(SCHEDULES)}, got {name!r}")
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name](**kwargs)


def as_schedule(schedule):
    """None, a Schedule, any callable t -> lr, or a name (for 'constant'
    style names use ``get`` to pass the parameters)."""
    if schedule is None or callable(schedule):
        return schedule
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}")
        raise ValueError(f"schedule {schedule!r} needs parameters: use "
                         f"nnc.schedules.get({schedule!r}, ...)")
    raise TypeError(f"schedule must be a callable t -> lr, got {schedule!r}")
