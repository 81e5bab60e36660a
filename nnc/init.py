"""Weight initialisers (lecture, section 8).

Each initialiser draws a ``(fan_in, fan_out)`` weight matrix from the
model's random generator, so one seed gives the same weights in both
backends. Use them by name, ``Dense(64, 10, init="he_normal")``, or pass a
callable ``init(shape, rng) -> array``.

=================  =========================================  ==================
name               distribution                               Var(w)
=================  =========================================  ==================
zeros              w = 0 (breaks nothing, learns nothing:      0
                   every hidden unit stays identical)
constant(c)        w = c                                      0
normal(std)        N(0, std²)                                 std²
uniform(a)         U(-a, a)                                   a²/3
lecun_normal       N(0, 1/n_in) — the lecture's rule (which    1/n_in
                   the slides call Xavier's)
glorot_normal      N(0, 2/(n_in + n_out))  (a.k.a. Xavier)     2/(n_in+n_out)
glorot_uniform     U(±sqrt(6/(n_in + n_out)))                  2/(n_in+n_out)
he_normal          N(0, 2/n_in)  (for ReLU)                    2/n_in
he_uniform         U(±sqrt(6/n_in))                            2/n_in
=================  =========================================  ==================
"""
import numpy as np

from nnc._validation import check_float32_range


def _fans(shape):
    """(n_in, n_out) of a weight shape (n_in,) or (n_in, n_out)."""
    fan_in = shape[0]
    fan_out = shape[1] if len(shape) > 1 else shape[0]
    return fan_in, fan_out


def _check_shape_and_rng(shape, rng):
    """``shape`` as a tuple of positive ints (an int is a 1-d shape), after
    checking that ``rng`` is a NumPy generator."""
    if not isinstance(rng, (np.random.Generator, np.random.RandomState)):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), "
                        f"got {rng!r:.60}")
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not (isinstance(shape, (tuple, list)) and shape and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
            for n in shape)):
        raise ValueError(f"shape must be a tuple of positive ints such as (n_in, n_out), "
                         f"got {shape!r:.60}")
    return tuple(int(n) for n in shape)


def zeros(shape, rng):
    return np.zeros(_check_shape_and_rng(shape, rng))


# the initialisers learn the model's dtype only when called: their scales are
# bounded by float32's range, which holds in float64 too


def constant(value):
    value = check_float32_range(value, "value")

    def constant_init(shape, rng):
        return np.full(_check_shape_and_rng(shape, rng), value)

    constant_init.__name__ = f"constant({value})"
    return constant_init


def normal(std=0.05):
    std = check_float32_range(std, "std", low=0)

    def normal_init(shape, rng):
        shape = _check_shape_and_rng(shape, rng)
        return rng.normal(0.0, std, size=shape)

    normal_init.__name__ = f"normal({std})"
    return normal_init


def uniform(limit=0.05):
    limit = check_float32_range(limit, "limit", low=0)

    def uniform_init(shape, rng):
        shape = _check_shape_and_rng(shape, rng)
        return rng.uniform(-limit, limit, size=shape)

    uniform_init.__name__ = f"uniform({limit})"
    return uniform_init


def lecun_normal(shape, rng):
    shape = _check_shape_and_rng(shape, rng)
    fan_in, _ = _fans(shape)
    return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)


def glorot_normal(shape, rng):
    shape = _check_shape_and_rng(shape, rng)
    fan_in, fan_out = _fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def glorot_uniform(shape, rng):
    shape = _check_shape_and_rng(shape, rng)
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def he_normal(shape, rng):
    shape = _check_shape_and_rng(shape, rng)
    fan_in, _ = _fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def he_uniform(shape, rng):
    shape = _check_shape_and_rng(shape, rng)
    fan_in, _ = _fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


xavier_normal = glorot_normal
xavier_uniform = glorot_uniform

INITIALIZERS = {
    "zeros": zeros,
    "normal": normal(),
    "uniform": uniform(),
    "lecun_normal": lecun_normal,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


def get_initializer(init):
    """An initialiser from a name in INITIALIZERS or a callable."""
    if callable(init):
        return init
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]
    raise ValueError(f"init must be one of {sorted(INITIALIZERS)} or a callable "
                     f"init(shape, rng), got {init!r}")
