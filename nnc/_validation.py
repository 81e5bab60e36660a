"""Checks at the Python boundary: every public entry point validates its
input here once, with an error that names the argument, what it received and
what was expected. Kernels run with bounds checks off and trust these."""
import copy
import numbers
import os
import tempfile

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype, name="dtype"):
    if dtype is None:
        raise TypeError(f"{name} must be 'float32' or 'float64', got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be 'float32' or 'float64', got {dtype!r}") from None
    if dt.kind == "f" and not dt.isnative:
        dt = dt.newbyteorder("=")  # '>f4' names float32 too: the model computes natively
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be 'float32' or 'float64', got {str(dt)!r}")
    return dt


def unmasked(x, name):
    """A masked array without masked entries as its data; one with masked
    entries is refused (NumPy would use the values under the mask)."""
    if isinstance(x, np.ma.MaskedArray):
        if np.ma.is_masked(x):
            raise TypeError(f"{name} has masked entries: fill or drop them first "
                            f"(e.g. {name}.filled(value))")
        return x.data
    return x


def as_array(x, name):
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    x = unmasked(x, name)
    try:
        x = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be read as an array: {exc}") from None
    if not x.dtype.isnative:  # big-endian data, e.g. read from a file
        x = x.astype(x.dtype.newbyteorder("="))
    return x


def as_finite(x, name, dtype, non_negative=None):
    """The real-valued array ``x`` as a C-contiguous ``dtype`` array, or
    ValueError naming it: NaN/Inf, a value that would overflow ``dtype`` (1e39
    becomes inf in float32; checked before the cast), and, when
    ``non_negative`` says what ``x`` holds (a variance...), a negative value."""
    if not all_finite(x):
        raise ValueError(f"{name} contains NaN or Inf")
    if x.dtype.kind == "f" and x.dtype != dtype and x.size \
            and np.abs(x).max() > np.finfo(dtype).max:
        raise ValueError(f"{name} has values beyond the {np.dtype(dtype).name} range "
                         f"(max |x| = {np.abs(x).max():.3g})")
    if non_negative is not None and x.size and x.min() < 0:
        raise ValueError(f"{name} contains negative values (min {x.min():.6g}), but it holds "
                         f"{non_negative}, which is never negative")
    return np.ascontiguousarray(x, dtype=dtype)


def as_index(index, name="index"):
    """Integer indices as a C-contiguous int64 array (no copy when they are
    one already, as the Trainer's are); TypeError for anything else."""
    index = np.asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {index.dtype.name}")
    if index.dtype == np.uint64 and index.size and index.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds {int(index.max())}, beyond any row")
    return np.ascontiguousarray(index, dtype=np.int64)


def check_state_array(value, name, shape, dtype, non_negative=None):
    """A saved array to restore (parameters, buffers, optimizer state) as a
    finite ``dtype`` array of ``shape`` (``as_finite``), or ValueError naming it."""
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if array.shape != shape or array.dtype.kind not in "fiu":
        raise ValueError(f"{name} has shape {array.shape} and dtype {array.dtype.name}, "
                         f"expected shape {shape} and floats")
    return as_finite(array, name, dtype, non_negative)


def check_generator_state(state, name, generator):
    """ValueError unless ``state`` is a valid state for ``generator``'s kind
    of bit generator (checked on a scratch generator)."""
    scratch = type(generator.bit_generator)()
    try:
        if not isinstance(state, dict) or state.get("bit_generator") != type(scratch).__name__:
            raise ValueError(f"expected a {type(scratch).__name__} state")
        scratch.state = copy.deepcopy(state)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"{name} is not a valid generator state ({exc})") from None


def all_finite(x):
    """True if no element of the float array ``x`` is NaN or ±Inf.

    A finite sum proves it without a temporary (NaN and ±Inf propagate
    through the sum); only a sum that is not finite, from a bad value or an
    overflow, needs the element-wise check."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.sum()):
            return True
    return bool(np.isfinite(x).all())


def check_features(x, name, n_features=None, dtype=np.float32, allow_empty=False):
    """A finite, C-contiguous ``(n, n_features)`` array of ``dtype``.

    float32/float64 input is cast to ``dtype``; other dtypes (int, bool,
    float16, complex, object) are refused rather than guessed at."""
    x = as_array(x, name)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must hold float32 or float64 values, got dtype {x.dtype.name}"
            + (f"; convert it with {name}.astype(np.{np.dtype(dtype).name})"
               if x.dtype.kind in "iub" else "")
            + (f" (mixed types or missing values, as a pandas column of a nullable dtype such "
               f"as Float64 gives): fill the missing values, then convert it with "
               f"np.asarray({name}, dtype=np.{np.dtype(dtype).name})"
               if x.dtype.kind == "O" else "")
        )
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {x.shape}")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {x.shape}): at least one sample is needed")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"{name} has {x.shape[1]} features (shape {x.shape}), "
                         f"expected {n_features}")
    return as_finite(x, name, dtype)


def check_labels(y, name, n_samples, n_classes):
    """Integer class labels in ``[0, n_classes)`` as a C-contiguous int64 vector."""
    y = as_array(y, name)
    one_hot = y.ndim == 2 and y.shape[1] > 1
    if y.dtype.kind not in "iu":
        hint = ""
        if one_hot and y.dtype.kind in "fb":
            hint = f"; for one-hot rows or class probabilities pass {name}.argmax(axis=1)"
        elif y.dtype.kind == "b":
            hint = (f"; convert it with {name}.astype(np.int64) (two classes, 0 and 1), or use "
                    "one output with loss='bce_with_logits'")
        elif y.dtype.kind in "USO":
            encode = ("encode the classes as 0, 1, ... with the training labels' classes: "
                      "classes = np.unique(y_train), then np.searchsorted(classes, labels) "
                      "for every set of labels (after np.isin(labels, classes).all(): a label "
                      "the training set lacks has no index); or use nnc.sklearn.NNClassifier, "
                      "which takes any labels")
            hint = (f" (strings); {encode}" if y.dtype.kind in "US" else
                    f"; convert it with {name}.astype(np.int64) if it holds whole numbers, or "
                    f"{encode}")
        elif y.dtype.kind == "f":
            not_whole = y[~(np.isfinite(y) & (y == np.round(y)))]
            hint = (f"; convert it with {name}.astype(np.int64)" if not not_whole.size else
                    f"; it holds {not_whole.flat[0].item()!r}, which is not a class label (labels "
                    "are whole numbers 0, 1, ...)")
        dtype = "str" if y.dtype.kind in "US" else y.dtype.name  # (not NumPy's 'str672')
        raise TypeError(f"{name} must hold integer class labels, got dtype {dtype}{hint}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample), got shape {y.shape}"
                         + (f"; for one-hot rows pass {name}.argmax(axis=1)" if one_hot else ""))
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} labels, expected {n_samples} (one per sample)")
    if y.size:
        low, high = y.min(), y.max()
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{name} contains label {bad}: labels must lie in "
                             f"[0, {n_classes}) for {n_classes} classes" + (
                                 " (the model has 1 output: for two classes give it 2 "
                                 "outputs, or one output with loss='bce_with_logits')"
                                 if n_classes == 1 else ""))
    return np.ascontiguousarray(y, dtype=np.int64)


def check_targets(y, name, shape, dtype, low=None, high=None):
    """Real-valued targets of ``shape`` (a 1-D vector is accepted for a
    single output column)."""
    y = as_array(y, name)
    if y.dtype.kind not in "fiu" or y.dtype == np.float16:
        raise TypeError(f"{name} must hold real numbers (float32, float64 or integers), "
                        f"got dtype {y.dtype.name}" + (
                            f"; convert it with {name}.astype(np.{np.dtype(dtype).name})"
                            if y.dtype.kind in "b" or y.dtype == np.float16 else ""))
    if y.ndim == 1 and len(shape) == 2 and shape[1] == 1:
        y = y.reshape(-1, 1)
    if y.shape != tuple(shape):
        raise ValueError(f"{name} has shape {y.shape}, expected {tuple(shape)}")
    y = as_finite(y, name, dtype)
    if y.size and ((low is not None and y.min() < low) or (high is not None and y.max() > high)):
        raise ValueError(f"{name} must lie in [{low}, {high}], got values in "
                         f"[{y.min()}, {y.max()}]")
    return y


def check_bool(value, name):
    """``value`` as a bool: True/False, NumPy booleans, or the integers 0 and 1
    (a string such as "no" would otherwise count as true)."""
    if isinstance(value, (bool, np.bool_)) or (
            isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_int(value, name, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r:.80}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {int_text(value)}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {int_text(value)}")
    return value


def int_text(value):
    """An int for a message: its digits, or its size when they would not be
    read (or not be written: Python refuses ints of over 4300 digits)."""
    if abs(value).bit_length() <= 128:
        return str(value)
    return f"{'a negative' if value < 0 else 'an'} int of {abs(value).bit_length()} bits"


#: the most steps a step counter may hold: the Adam kernel's t is a C long
MAX_STEPS = 2 ** 63 - 1


def check_step(value, name):
    """A step counter restored from a state or a file: an int in [0, MAX_STEPS]
    (ValueError otherwise, naming ``name``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or not 0 <= value <= MAX_STEPS:
        got = (int_text(int(value)) if isinstance(value, numbers.Integral)
               and not isinstance(value, (bool, np.bool_)) else f"{value!r:.80}")
        raise ValueError(f"{name} must be an int in [0, 2**63 - 1], got {got}")
    return int(value)


#: the most features a layer may have (BLAS counts a row in a C int)
MAX_FEATURES = 2 ** 31 - 1

#: the largest seed taken (numpy takes any; beyond 128 bits adds nothing)
MAX_SEED = 2 ** 128 - 1


def check_seed(value, name="seed"):
    """A seed for np.random.default_rng: an int in [0, MAX_SEED]."""
    return check_int(value, name, low=0, high=MAX_SEED)


def check_verbose(value, name="verbose"):
    """Keras' verbosity: True/False or an int >= 0 (0 silent, 1 a progress
    bar, 2 one line per epoch); returns the int."""
    if not isinstance(value, (bool, np.bool_, numbers.Integral)) or value < 0:
        raise TypeError(f"{name} must be True, False or an int >= 0 (Keras' 0, 1, 2), "
                        f"got {value!r}")
    return int(value)


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real number in the given range (open or closed ends)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{name} must be finite, got {int_text(int(value))}") from None
    lo = "(" if low_open or low is None else "["  # (infinite ends are never included)
    hi = ")" if high_open or high is None else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def check_file_path(path, name="path", regular=True):
    """A file name (str or os.PathLike) as a str; TypeError for anything
    else (an int would be taken as a file descriptor), ValueError for a
    folder (existing, or written with a trailing separator) or, with
    ``regular``, an existing path that is not a regular file (zip archives
    and atomic saves need one; a text log may go to a pipe)."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise TypeError(f"{name} must be a file name (str or os.PathLike), got {path!r}")
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)) or os.path.isdir(path):
        raise ValueError(f"{name} {path!r} names a folder; give the name of a file "
                         "(in that folder or another)")
    if regular and os.path.exists(path) and not os.path.isfile(path):
        # a FIFO would block a reader forever, a device be replaced by a writer
        raise ValueError(f"{name} {path!r} is not a regular file (a pipe, device or socket)")
    return path


class Setting:
    """An attribute checked on every assignment with the constructor's check
    ``check(value, name)``, so that changing it later (``optimizer.lr = x``,
    ``trainer.clip_norm = x``) is as safe as passing it to the constructor.
    An owner with rules across several settings defines
    ``_check_settings()``; once the owner sets ``_built``, it runs after each
    change, and a change it refuses is undone."""

    def __init__(self, check):
        self.check = check

    # No __get__: reads go to the instance dict. (A data descriptor still
    # keeps CPython from specialising those reads: ~15 ns more per read,
    # which the training step can afford.)

    def __set_name__(self, owner, name):
        self.name = name

    def __delete__(self, obj):
        raise AttributeError(f"{type(obj).__name__}.{self.name} is a setting and cannot be "
                             "deleted; assign a new value instead")

    def __set__(self, obj, value):
        value = self.check(value, self.name)
        missing = object()
        old = obj.__dict__.get(self.name, missing)
        obj.__dict__[self.name] = value
        if obj.__dict__.get("_built"):
            try:
                obj._check_settings()
            except BaseException:
                if old is missing:
                    del obj.__dict__[self.name]
                else:
                    obj.__dict__[self.name] = old
                raise


class RefusesOtherLibrariesNames:
    """On nnc's own Trainer and optimizers, assigning a name another library
    uses for one of their settings (``_aliases``: Keras' ``trainer.clipnorm``,
    ``optimizer.learning_rate``) raises AttributeError naming nnc's setting:
    nnc would never read it, so the assignment would silently change nothing.
    Any other new attribute is set as usual, and subclasses (which may give
    these names a meaning of their own) are left alone, and so is a name
    whose nnc setting the object lacks (SGD has no eps: ``sgd.epsilon`` is
    an attribute like any other)."""

    #: names other libraries use -> (the attribute the object must have for the
    #: name to mean it, or None: always; what to set instead)
    _aliases = {}

    def __setattr__(self, name, value):
        alias = self._aliases.get(name)
        if alias is not None and type(self).__module__.startswith("nnc.") \
                and name not in self.__dict__ and not hasattr(type(self), name) \
                and (alias[0] is None or hasattr(self, alias[0])):
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}; set "
                                 f"{alias[1]} (an attribute nnc never reads would change "
                                 "nothing)")
        super().__setattr__(name, value)


FLOAT32_MAX = float(np.finfo(np.float32).max)
#: float32's smallest normal number
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def check_float32_range(value, name, low=None):
    """A float within float32's range (and >= ``low``): for settings fixed
    before the model's dtype is known, which must hold in float32 too."""
    value = check_float(value, name, low=low)
    if abs(value) > FLOAT32_MAX:
        lowest = f"{low:g}" if low is not None else f"-{FLOAT32_MAX:.7g}"
        raise ValueError(f"{name} must lie in [{lowest}, {FLOAT32_MAX:.7g}] (the float32 "
                         f"range), got {value:g}")
    return value


def number_setting(**bounds):
    """A ``Setting`` holding a float within ``bounds`` (``check_float``'s)."""
    return Setting(lambda value, name: check_float(value, name, **bounds))


def int_setting(low=None, high=None):
    """A ``Setting`` holding an int in [``low``, ``high``] (``check_int``'s)."""
    return Setting(lambda value, name: check_int(value, name, low=low, high=high))


def folder_problem(path, in_place=False):
    """Why a file cannot be written at ``path`` (its folder is missing or
    not writable; ``in_place``: unless the file exists and is writable), or
    None; checked by writing and removing a scratch file, before a run whose
    result would otherwise be lost at the end."""
    if in_place and os.path.exists(path) and (not os.path.isfile(path)
                                              or os.access(path, os.W_OK)):
        return None  # written in place (appended to, or a stream): its folder does not matter
    folder = os.path.dirname(os.path.realpath(path))  # a link's target is what is written
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            return f"{folder!r} in {path!r} is a file, not a folder"
        return f"the folder {folder!r} of {path!r} does not exist"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot write in the folder {folder!r} of {path!r} ({exc.strerror})"
    return None
