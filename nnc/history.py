"""History: what happened during training, step by step and epoch by epoch."""
import json
import math

import numpy as np

from nnc._validation import check_file_path


class History:
    """What happened during training.

    ``steps[name]`` holds one value per optimizer step: ``"loss"`` (the
    mini-batch loss, with the L2 penalty when ``l2 > 0``), ``"lr"`` (the
    learning rate used), ``"grad_norm"`` (the global L2 norm of all
    gradients before clipping) and ``"grad_norm.<i>"`` (the same for the
    parameters of layer i). ``epochs[name]`` holds one value per epoch
    (``"loss"``, ``"accuracy"`` for classification, ``"val_loss"``,
    ``"val_accuracy"`` with validation data). ``history["loss"]`` reads the
    per-epoch list.

    With ``Trainer(..., diagnostics=True)``, ``diagnostics[name]`` holds the
    per-layer statistics of ``nnc.diagnostics`` (lists aligned with
    ``diagnostics["step"]``) and ``meta["layers"]`` the layer names.
    ``meta["epoch_ends"]`` holds the number of steps at the end of each
    epoch (where the plots put the epoch values).
    ``report()`` reads a verdict from all of it, ``plot()`` draws it, and
    ``save(path)`` / ``History.load(path)`` keep it as JSON.
    """

    def __init__(self):
        self.steps = {"loss": [], "lr": [], "grad_norm": []}
        self.epochs = {}
        self.diagnostics = {}
        self.meta = {}

    @property
    def meta(self):
        """What the run was (layer names, optimizer, input scale, epoch ends):
        a dict of JSON values (a History pickled before it existed: empty)."""
        meta = self.__dict__.get("meta")
        if not isinstance(meta, dict):  # (pickled before it existed, or as None)
            meta = self.__dict__["meta"] = {}
        return meta

    @meta.setter
    def meta(self, value):
        if not isinstance(value, dict):  # (nnc reads it while training and plotting)
            raise TypeError(f"history.meta must be a dict, got {type(value).__name__}")
        self.__dict__["meta"] = value

    def record_epoch(self, **values):
        """Append one epoch's metrics. The Trainer's metrics (``EPOCH_METRICS``)
        keep one entry per epoch: one an epoch lacks (``val_loss`` in a
        ``fit`` without validation data) is NaN there, so index i is epoch i.
        Other records (a callback's own) are appended as given."""
        done = len(self.epochs.get("loss", []))
        for name in EPOCH_METRICS:
            series = self.epochs.get(name)
            if name in values and series is None:
                series = self.epochs[name] = []
            if series is not None and len(series) < done + (name not in values):
                series.extend([math.nan] * (done - len(series)))
                if name not in values:
                    series.append(math.nan)
        for name, value in values.items():
            self.epochs.setdefault(name, []).append(value)

    def __getitem__(self, name):
        if name in self.epochs:
            return self.epochs[name]
        if name in self.steps:
            return self.steps[name]
        hint = (" (val_* metrics come from fit(..., validation_data=(X_val, y_val)))"
                if isinstance(name, str) and name.startswith("val_") else "")
        raise KeyError(f"no record {name!r} in this History{hint}; it has "
                       f"{sorted(set(self.epochs) | set(self.steps))}")

    def __contains__(self, name):
        return name in self.epochs or name in self.steps

    def to_dict(self):
        return {"steps": {k: list(v) for k, v in self.steps.items()},
                "epochs": {k: list(v) for k, v in self.epochs.items()},
                "diagnostics": {k: list(v) for k, v in getattr(self, "diagnostics", {}).items()},
                "meta": dict(getattr(self, "meta", {}))}

    @classmethod
    def from_dict(cls, state):
        """The History that ``to_dict`` described."""
        if not isinstance(state, dict) or not isinstance(state.get("steps"), dict):
            raise ValueError("state must be a dict from History.to_dict() with a 'steps' entry")
        history = cls()
        for part in ("steps", "epochs", "diagnostics"):
            entries = state.get(part) or {}
            if not isinstance(entries, dict):
                raise ValueError(f"{part} must map names to lists, got {entries!r:.60}")
            for name, values in entries.items():
                if not isinstance(values, (list, tuple, np.ndarray)) or (
                        isinstance(values, np.ndarray) and values.ndim == 0):
                    raise ValueError(f"{part}[{name!r}] must be a list of values, "
                                     f"got {values!r:.60}")
                # what nnc reads (diagnostics, report, callbacks); other
                # records may hold anything a callback logged
                if _read_by_nnc(part, str(name)):
                    _check_record(part, str(name), values)
                    if np.asarray(values).dtype.kind == "O":  # None (as NaN), Decimal ...:
                        values = _numbers_or_none(values).tolist()  # floats; else as written
                getattr(history, part)[name] = list(values)
        meta = state.get("meta") or {}
        if not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict, got {meta!r:.60}")
        layers = meta.get("layers")
        if layers is not None and not (isinstance(layers, (list, tuple))
                                       and all(isinstance(n, str) for n in layers)):
            raise ValueError(f"meta['layers'] must be a list of layer names, got {layers!r:.60}")
        history.meta = dict(meta)
        return history

    def check_readable(self, action="written", name="history"):
        """This History as ``load`` reads it back (a copy), or an error naming
        a part that is no dict (TypeError) or a record nnc reads (``loss``,
        ``grad_norm.0`` ...) that holds something else than numbers
        (ValueError): ``save`` and checkpoints refuse it first, ``plot`` and
        ``report`` too (``action``: what cannot be done)."""
        for part in ("steps", "epochs", "diagnostics"):
            if not isinstance(getattr(self, part, {}), dict):
                raise TypeError(f"{name}.{part} must be a dict, got "
                                f"{type(getattr(self, part)).__name__}")
        try:
            return History.from_dict(self.to_dict())
        except (TypeError, ValueError) as exc:  # (TypeError: a record that is no list)
            raise ValueError(f"the history cannot be {action} as it is: {exc}") from None

    def save(self, path):
        """Write ``to_dict()`` as JSON (NaN and inf written as NaN, Infinity)."""
        self.check_readable()
        try:  # all of it first: nothing is written if a value cannot be
            text = json.dumps({"format": "nnc.History", "version": 1, **self.to_dict()},
                              default=_json_value)
        except (TypeError, ValueError, RecursionError) as exc:  # (nested too deeply)
            raise TypeError(f"the history must be JSON-serialisable to be saved: {exc}") from None
        with open(check_file_path(path, regular=False), "w", encoding="utf-8") as f:
            f.write(text)

    @classmethod
    def load(cls, path):
        """Read a History written by ``save``."""
        path = check_file_path(path, regular=False)  # (a pipe is fine: plain text)
        with open(path, encoding="utf-8") as f:
            try:
                state = json.load(f)
            except (ValueError, RecursionError) as exc:  # (also ints beyond 4300 digits)
                raise ValueError(f"{path!r} is not an nnc History file (expected the JSON "
                                 f"written by history.save): {exc}") from None
        if not isinstance(state, dict) or state.get("format", "nnc.History") != "nnc.History":
            raise ValueError(f"{path!r} is not an nnc History file (written by history.save)")
        if state.get("version", 1) != 1:
            raise ValueError(f"{path!r} is a History file of version {state.get('version')!r}; "
                             "this nnc reads version 1 (a newer nnc wrote it?)")
        try:
            return cls.from_dict(state)
        except ValueError as exc:
            raise ValueError(f"{path!r} is not a valid History file: {exc}") from None

    def report(self):
        """A short plain-text diagnosis with its evidence (``nnc.diagnostics``)."""
        from nnc.diagnostics import report

        return report(self)

    def plot(self, path=None):
        """Learning curves (``nnc.plotting.plot_history``); needs matplotlib
        (``pip install matplotlib``). Saved to ``path`` when given; returns the figure."""
        from nnc.plotting import plot_history

        return plot_history(self, path=path)  # (it checks the path before drawing)

    def __repr__(self):
        last = {k: v[-1] for k, v in self.epochs.items() if v}
        return f"History({len(self.steps['loss'])} steps, last epoch {last})"


def check_history(history, action, name="history"):
    """``history`` checked as nnc reads it (a copy: ``check_readable``),
    or TypeError when it is no nnc History."""
    if not isinstance(history, History):
        raise TypeError(f"{name} must be an nnc History, got {type(history).__name__}")
    return history.check_readable(action, name)


def _json_value(value):
    """NumPy scalars and arrays as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot save {type(value).__name__} in a History")


#: the epoch records the Trainer writes
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

#: per-layer records of nnc.diagnostics, named "<statistic>.<layer index>"
PER_LAYER = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std",
             "dead_fraction", "bn_mean", "bn_var")


#: the step records nnc reads (besides the per-layer ones)
STEP_RECORDS = ("loss", "lr", "grad_norm")


def per_layer_records(records, stem):
    """[(layer index, values)] of the records named "<stem>.<index>" that
    hold numbers, by index (others, e.g. what a callback logs, are left out)."""
    found = []
    for name, values in records.items():
        head, dot, index = str(name).partition(".")
        if head == stem and dot and index.isascii() and index.isdigit() \
                and _numbers_or_none(values) is not None:
            found.append((int(index), values))
    return sorted(found, key=lambda pair: pair[0])


def as_number(value):
    """``value`` as a float if it is a number (anything float() takes but
    text, bools, complex numbers and masked values), else None."""
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        return None  # (a missing value)
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else None
    if isinstance(value, (str, bytes, bool, np.bool_, complex, np.complexfloating,
                          type(np.ma.masked))):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # (None, an int beyond the float range)
        return None


def _numbers_or_none(values):
    """``values`` as a float64 array if they are all numbers (NaN, inf and
    None, read as NaN, allowed; not text, not bools), else None."""
    try:
        kind = np.asarray(values).dtype.kind
        if kind not in "fiuO":  # (not text, bools, complex numbers or dates)
            return None
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if kind == "O" and not all(v is None or as_number(v) is not None for v in values):
        return None
    return array if array.ndim == 1 else None


def _read_by_nnc(part, name):
    """Whether nnc needs this record to hold numbers: the Trainer's own step
    and epoch records and the diagnostics; a per-layer-looking record a
    callback fills with something else is left out of the report and plots."""
    if part == "epochs":
        return name in EPOCH_METRICS
    return part == "diagnostics" or name in STEP_RECORDS


def _check_record(part, name, values):
    """A record nnc reads: numbers (NaN and inf allowed; not text, not bools)."""
    if np.ma.is_masked(values):  # (its values under the mask would be read)
        raise ValueError(f"{part}[{name!r}] has masked entries; fill them (NaN) first")
    if _numbers_or_none(values) is not None:
        return
    for i, value in enumerate(values):  # name the first bad one
        if value is not None and as_number(value) is None:
            raise ValueError(f"{part}[{name!r}][{i}] must be a number, got {value!r:.60}")
    raise ValueError(f"{part}[{name!r}] must be a flat list of numbers")
