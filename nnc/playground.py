"""Optimizer playground: the lecture's 2-D loss surfaces, and any nnc
optimizer run on them through the same kernels that train the models.

Surfaces (``w = (x, y)``; each has ``value``, ``gradient``, its known
``minimum`` and a default ``start``):

- ``ravine(condition=100)``: L = ½(x² + κ y²). Pathological curvature
  (lecture, section 5): with κ = 100 the y-direction is 100x steeper, so
  plain gradient descent must keep α < 2/κ = 0.02 not to diverge across
  the ravine, and then crawls along it (x shrinks by 1 - α per step).
  Minimum (0, 0), L = 0. The ravine is axis-aligned, which is the case
  RMSprop and Adam fix best (their step is scaled per coordinate).
- ``saddle()``: L = ½x² + ¼y⁴ - ½y². A saddle point at (0, 0) (the Hessian
  is diag(1, -1)) between the minima (0, ±1), L = -¼. Started on the ridge
  y ≈ 0 the gradient in y is ≈ -y, tiny: first-order methods linger
  (lecture, section 4).
- ``cliff(height=50, steepness=10)``: L = ½((x + 4)² + y²) + H σ(s x), a
  gentle bowl with a drop of height H at x = 0 (σ the logistic function).
  On the cliff face the gradient is up to H s / 4 = 125: one step throws
  the parameters far away unless the gradient is clipped (lecture,
  section 4). Minimum (-4, 0), L = H σ(-4s) ≈ 2e-16 (σ(-40) ≈ 4e-18, so the
  minimum sits within 1e-15 of (-4, 0)).
- ``rosenbrock(a=1, b=100)``: L = (a - x)² + b (y - x²)², a curved narrow
  valley. Minimum (a, a²), L = 0.
- ``two_minima(tilt=0.3)``: L = (x² - 1)² + t x + ½y², two valleys near
  x = ±1, the left one deeper: the starting point decides which minimum
  gradient descent ends in (lecture, section 8). ``minima`` lists the left
  (global, for t > 0) minimum first, then the right one.

``run(optimizer, surface, start, steps)`` binds a fresh copy of the
optimizer to a 2-element float64 vector (``optimizer.bind(w, g, backend)``)
and returns the path, an array of shape (steps + 1, 2) starting at
``start``. ``clip_norm`` rescales the gradient to at most that L2 norm
before the step, through the backend's ``segment_sum_of_squares`` and
``scale``, exactly as ``Trainer(clip_norm=...)`` does;
``schedule`` (``nnc.schedules``) sets the learning rate α_t of step t.
``plot_paths({name: path}, surface)`` draws the contours and the paths.
"""
import math

import numpy as np

from nnc._validation import check_float, check_int, check_seed
from nnc.optim import Optimizer


class Surface:
    """A loss L(x, y) with its gradient, its known minima and a start.

    ``value(x, y)`` works on scalars and NumPy arrays (contour grids);
    ``gradient(w, out)`` writes ∇L at the 2-vector w into ``out`` (a fresh
    array when None) and returns it; ``surface(w)`` is ``value(w[0], w[1])``.
    """

    def __init__(self, name, value, gradient, minima, start, xlim, ylim, description=""):
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        for argument, function in (("value", value), ("gradient", gradient)):
            if not callable(function):
                raise TypeError(f"{argument} must be a function of (x, y), got {function!r:.60}")
        self.name = name
        self._value = value
        self._gradient = gradient
        if isinstance(minima, (str, bytes)) or not hasattr(minima, "__iter__"):
            raise TypeError(f"minima must be a list of points (x, y), got {minima!r:.60}")
        self.minima = tuple(_two_numbers(m, "minima[*]", finite=True) for m in minima)
        if not self.minima:
            raise ValueError("minima must name at least one point (x, y)")
        self.start = _two_numbers(start, "start", finite=True)
        self.xlim = tuple(_two_numbers(xlim, "xlim", finite=True, distinct=True))
        self.ylim = tuple(_two_numbers(ylim, "ylim", finite=True, distinct=True))
        self.description = description

    @property
    def minimum(self):
        """The (first) known minimum."""
        return self.minima[0]

    @property
    def min_value(self):
        return float(self.value(*self.minimum))

    def value(self, x, y):
        return self._value(x, y)

    def gradient(self, w, out=None):
        x, y = _point(w)
        out = np.empty(2, dtype=np.float64) if out is None else out
        # NumPy scalars: a diverging run overflows to inf (Python floats raise)
        result = self._gradient(x, y)
        try:
            out[0], out[1] = result
        except (TypeError, ValueError):
            raise TypeError(f"the gradient of {self.name!r} must return two numbers "
                            f"(dL/dx, dL/dy), got {result!r:.60}") from None
        return out

    def __call__(self, w):
        return float(self.value(*_point(w)))

    def distance_to_minimum(self, w):
        """Euclidean distance from w to the nearest known minimum."""
        w = np.asarray(w, dtype=np.float64)
        return min(float(np.linalg.norm(w - m)) for m in self.minima)

    def __repr__(self):
        return f"Surface({self.name!r})"


def _two_numbers(value, name, finite=False, distinct=False):
    """A float64 2-vector (x, y) or (low, high)."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be two numbers, got {value!r:.60}") from None
    if array.shape != (2,):
        raise ValueError(f"{name} must be two numbers, got shape {array.shape}")
    if finite and not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {value!r:.60}")
    if distinct and array[0] == array[1]:
        raise ValueError(f"{name} must be two different numbers, got {value!r:.60}")
    return array


def _point(w):
    """(x, y) of a point ``w`` as NumPy float64 scalars."""
    try:
        point = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"w must be a point (x, y) of two numbers, got {w!r:.80}") from None
    if point.shape != (2,):
        raise ValueError(f"w must be a point (x, y) of two numbers, got shape {point.shape}")
    return point[0], point[1]


def ravine(condition=100.0):
    """L = ½(x² + κ y²), ∇L = (x, κ y); minimum (0, 0)."""
    k = check_float(condition, "condition", low=1)
    return Surface(
        f"ravine (condition {k:g})",
        lambda x, y: 0.5 * (x * x + k * y * y),
        lambda x, y: (x, k * y),
        minima=[(0.0, 0.0)], start=(-4.0, 1.0), xlim=(-4.5, 1.5), ylim=(-1.5, 1.5),
        description="pathological curvature: steep across, shallow along the ravine")


def saddle():
    """L = ½x² + ¼y⁴ - ½y², ∇L = (x, y³ - y); saddle (0, 0), minima (0, ±1)."""
    return Surface(
        "saddle",
        lambda x, y: 0.5 * x * x + 0.25 * y ** 4 - 0.5 * y * y,
        lambda x, y: (x, y ** 3 - y),
        minima=[(0.0, 1.0), (0.0, -1.0)], start=(-1.5, 1e-3), xlim=(-2, 2), ylim=(-1.6, 1.6),
        description="a saddle point at (0, 0): the gradient nearly vanishes on the ridge")


def _sigmoid(z):
    """σ(z) = 1 / (1 + e^{-z}) = ½(1 + tanh(z/2)), without overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def cliff(height=50.0, steepness=10.0):
    """L = ½((x + 4)² + y²) + H σ(s x);
    ∇L = (x + 4 + H s σ(s x)(1 - σ(s x)), y); minimum ≈ (-4, 0)."""
    h = check_float(height, "height", low=0)
    s = check_float(steepness, "steepness", low=0, low_open=True)

    def value(x, y):
        return 0.5 * ((x + 4.0) ** 2 + y * y) + h * _sigmoid(s * x)

    def gradient(x, y):
        sig = float(_sigmoid(s * x))
        return x + 4.0 + h * s * sig * (1.0 - sig), y

    return Surface(
        "cliff", value, gradient, minima=[(-4.0, 0.0)], start=(3.0, 1.5),
        xlim=(-6, 4), ylim=(-2.5, 2.5),
        description=f"a drop of height {h:g} at x = 0: the gradient on its face is up to "
                    f"{h * s / 4:g}")


def rosenbrock(a=1.0, b=100.0):
    """L = (a - x)² + b (y - x²)², ∇L = (-2(a - x) - 4 b x (y - x²), 2 b (y - x²));
    minimum (a, a²)."""
    a = check_float(a, "a", low=-1e150, high=1e150)  # the minimum (a, a²) must be finite
    b = check_float(b, "b", low=0, low_open=True)
    return Surface(
        "Rosenbrock",
        lambda x, y: (a - x) ** 2 + b * (y - x * x) ** 2,
        lambda x, y: (-2.0 * (a - x) - 4.0 * b * x * (y - x * x), 2.0 * b * (y - x * x)),
        minima=[(a, a * a)], start=(-1.2, 1.0), xlim=(-2, 2), ylim=(-1, 3),
        description="a curved, narrow valley")


def two_minima(tilt=0.3):
    """L = (x² - 1)² + t x + ½y², ∇L = (4x(x² - 1) + t, y): two valleys near
    x = ±1, the left one deeper by about 2t; minima where 4x³ - 4x + t = 0."""
    t = check_float(tilt, "tilt", low=0, high=1)  # beyond 8/(3√3) ≈ 1.54 one valley is left
    stationary = np.sort(np.roots([4.0, 0.0, -4.0, t]).real)
    lowest, highest = stationary[0], stationary[-1]
    # Newton polish: np.roots is accurate to ~1e-15 relative, the gradient test wants 1e-12
    minima = []
    for x in (lowest, highest):
        for _ in range(3):
            x -= (4 * x ** 3 - 4 * x + t) / (12 * x * x - 4)
        minima.append((float(x), 0.0))
    return Surface(
        f"two minima (tilt {t:g})",
        lambda x, y: (x * x - 1.0) ** 2 + t * x + 0.5 * y * y,
        lambda x, y: (4.0 * x * (x * x - 1.0) + t, y),
        minima=minima, start=(0.5, 1.0), xlim=(-2, 2),
        ylim=(-1.5, 1.5),
        description="a deeper and a shallower valley: where descent ends depends on the start")


SURFACES = {"ravine": ravine, "saddle": saddle, "cliff": cliff, "rosenbrock": rosenbrock,
            "two_minima": two_minima}


def get_surface(surface):
    """A Surface, or a name from ``SURFACES`` with default parameters."""
    if isinstance(surface, Surface):
        return surface
    if isinstance(surface, str) and surface in SURFACES:
        return SURFACES[surface]()
    raise TypeError(f"surface must be an nnc.playground.Surface or one of {sorted(SURFACES)}, "
                    f"got {surface!r}")


def fresh(optimizer):
    """An unbound copy of ``optimizer`` with the same hyper-parameters."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an nnc optimizer (e.g. nnc.SGD(lr=0.1)), "
                        f"got {optimizer!r}")
    return type(optimizer)(**optimizer.config())


def run(optimizer, surface, start=None, steps=100, clip_norm=None, schedule=None,
        noise=0.0, seed=0, backend="cython"):
    """Run ``optimizer`` on ``surface`` for ``steps`` steps from ``start``
    (default: the surface's); returns the path, shape (steps + 1, 2).

    A step: g = ∇L(w) (+ ``noise`` × a standard normal 2-vector drawn from
    ``seed``'s generator: a stand-in for the noise of a mini-batch gradient);
    if clip_norm and ‖g‖ > clip_norm, g ← g · clip_norm/‖g‖; then the
    optimizer's kernel updates w in place, with α_t = schedule(t) when a
    schedule is given. The optimizer passed in is left untouched (a
    fresh copy with the same hyper-parameters runs), so it can be reused.
    """
    optimizer = fresh(optimizer)
    surface = get_surface(surface)
    steps = check_int(steps, "steps", low=0)
    if clip_norm is not None:
        clip_norm = check_float(clip_norm, "clip_norm", low=0, low_open=True)
    noise = check_float(noise, "noise", low=0)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed) if noise else None
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be callable (t -> learning rate), got {schedule!r}")
    try:
        w = np.array(surface.start if start is None else start, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"start must be two numbers (x, y), got {start!r}") from None
    if w.shape != (2,):
        raise ValueError(f"start must be two numbers (x, y), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(f"start must be finite, got {start!r}")
    g = np.zeros(2, dtype=np.float64)
    optimizer.bind(w, g, backend)
    kernels = optimizer.backend
    offsets, sum_squares = np.array([0, 2], dtype=np.int64), np.zeros(1)
    try:
        path = np.empty((steps + 1, 2))
    except (ValueError, MemoryError):
        raise ValueError(f"steps={steps}: the path of that many steps does not fit in "
                         "memory") from None
    path[0] = w
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            surface.gradient(w, out=g)
            if rng is not None:
                g += noise * rng.standard_normal(2)
            if clip_norm is not None:
                norm = math.sqrt(kernels.segment_sum_of_squares(g, offsets, sum_squares))
                if norm > clip_norm:
                    kernels.scale(g, clip_norm / norm)
            optimizer.step(None if schedule is None else
                           check_float(schedule(t), f"schedule({t})", low=0))
            path[t + 1] = w
    return path


def losses(surface, path):
    """L along a path: an array of shape (len(path),)."""
    surface = get_surface(surface)
    path = check_path(path)
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.asarray(surface.value(path[:, 0], path[:, 1]), dtype=np.float64)
    if values.shape != (len(path),):
        raise ValueError(f"the value function of {surface.name!r} must work on arrays: for "
                         f"{len(path)} points it returned shape {values.shape}")
    return values


def check_path(path, name="path"):
    """An optimizer path as a float array of shape (steps + 1, 2)."""
    try:
        array = np.asarray(path, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of shape (steps + 1, 2), got "
                        f"{path!r:.60}") from None
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
        raise ValueError(f"{name} must have shape (steps + 1, 2), got {array.shape}")
    return array


def steps_to_reach(surface, path, tol):
    """The first step t with ‖w_t - w*‖ ≤ tol (nearest minimum), or None."""
    surface = get_surface(surface)
    tol = check_float(tol, "tol", low=0)
    for t, w in enumerate(check_path(path)):
        if surface.distance_to_minimum(w) <= tol:
            return t
    return None


def plot_paths(paths, surface, path=None, ax=None, xlim=None, ylim=None, title=None):
    """Contours of ``surface`` with one line per optimizer (``{name: path}``);
    saved to ``path`` when given; returns the figure. Needs matplotlib."""
    from nnc.plotting import plot_paths as draw

    return draw(paths, get_surface(surface), path=path, ax=ax, xlim=xlim, ylim=ylim,
                title=title)
