"""Callbacks: code that runs at fixed points of ``Trainer.fit``.

A callback overrides any of the hooks below; each receives the trainer
(``trainer.model``, ``trainer.optimizer``, ``trainer.history``,
``trainer.step_count``). Setting ``trainer.stop_training = True`` ends
``fit`` after the current step. With no callbacks the hooks cost nothing.
Settings (``optimizer.lr``, ``trainer.clip_norm`` ...) may change in any
hook; ``trainer.loss`` only in ``on_train_end`` or between fits (the
targets were checked for it); a layer's arrays are written into, never
replaced (checked after each step's hooks).

Order within one step: forward, loss, backward, L2, gradient norms,
clipping, the NaN guard, ``on_before_update``, ``optimizer.step()``,
``on_step_end``; a step refused on the way (guard, callback, optimizer) is
taken back and ``on_step_refused`` called instead of ``on_step_end``.

Ready-made: ``LambdaCallback`` (plain functions), ``EarlyStopping``,
``ModelCheckpoint``, ``ReduceLROnPlateau``, ``CSVLogger``.
"""
import csv
import math
import os

import numpy as np

from nnc._validation import (Setting, check_bool, check_file_path, check_float, folder_problem,
                             int_setting, number_setting)
from nnc.history import EPOCH_METRICS, as_number


class Callback:
    def check(self, trainer):
        """Called by ``fit`` before anything changes (no checkpoint loaded,
        no file written): raise ValueError for a setting this ``fit`` cannot
        use, instead of failing after an epoch of training."""

    def on_train_begin(self, trainer):
        pass

    def on_epoch_begin(self, trainer, epoch):
        pass

    def on_before_update(self, trainer):
        """Gradients are final (after L2, clipping and the NaN guard); weights
        not yet updated. For reading: a gradient changed here is applied
        unchecked."""

    def on_step_end(self, trainer, logs):
        """After the update; ``logs`` has ``step``, ``loss``, ``lr``, ``grad_norm``."""

    def on_step_refused(self, trainer):
        """The step in progress was refused (NaN guard, optimizer, a callback,
        an error) and taken back: forget anything recorded for it (e.g. at
        ``on_before_update``); the step count did not advance."""

    def on_epoch_end(self, trainer, epoch, logs):
        """``logs`` is the epoch's record (loss, accuracy, val_loss, ...)."""

    def on_train_end(self, trainer):
        pass


class LambdaCallback(Callback):
    """A callback from plain functions, e.g.
    ``LambdaCallback(on_epoch_end=lambda trainer, epoch, logs: print(logs))``."""

    HOOKS = ("on_train_begin", "on_epoch_begin", "on_before_update", "on_step_end",
             "on_step_refused", "on_epoch_end", "on_train_end")

    def __init__(self, **hooks):
        for name, function in hooks.items():
            if name not in self.HOOKS:
                raise ValueError(f"unknown hook {name!r}; hooks are {self.HOOKS}")
            if not callable(function):
                raise TypeError(f"{name} must be callable, got {function!r}")
            setattr(self, name, function)


# --- callbacks that watch an epoch metric -----------------------------------


def _check_folder(owner, path, in_place=False):
    """ValueError if a file cannot be written at ``path`` (a folder with
    ``{...}`` fields is filled in later: not checked)."""
    if "{" in os.path.dirname(path):
        return
    problem = folder_problem(path, in_place)
    if problem:
        raise ValueError(f"{owner}: {problem}")


def _may_add_metrics(callback):
    """Whether ``callback`` is user code with an ``on_epoch_end``, which may
    add metrics to the epoch logs (nnc's own callbacks only read them)."""
    if isinstance(callback, LambdaCallback):
        return "on_epoch_end" in vars(callback)
    return (not type(callback).__module__.startswith("nnc.")
            and type(callback).on_epoch_end is not Callback.on_epoch_end)


#: the longest file name most file systems take (bytes)
NAME_MAX = 255
#: the epoch number a ModelCheckpoint template is measured with before training
LONGEST_EPOCH = 10 ** 9 - 1

#: Keras' metric names before 2.3, and nnc's (Keras') names now
KERAS_OLD_NAMES = {"acc": "accuracy", "val_acc": "val_accuracy"}


def _auto_mode(monitor):
    """mode="auto": higher is better for accuracies, lower for the rest."""
    return "max" if "acc" in monitor else "min"


class _Best:
    """The best value so far of one epoch metric (``monitor``), lower is
    better for ``mode="min"``, higher for ``"max"``; ``"auto"`` picks max
    for accuracies and min otherwise. An improvement must beat the best by
    more than ``min_delta``; NaN never improves."""

    def __init__(self, owner, monitor, mode, min_delta):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{owner}: monitor must be the name of an epoch metric "
                            f"(e.g. 'val_loss'), got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.requested_mode = mode
        if mode == "auto":
            mode = _auto_mode(monitor)
        self.owner, self.monitor, self.mode = owner, monitor, mode
        self.min_delta = check_float(min_delta, "min_delta", low=0)
        self.reset()

    def watching(self, monitor):
        """A fresh ``_Best`` of another metric, with the same rules."""
        mode = getattr(self, "requested_mode", None)
        if mode is None:  # (pickled before it was kept: "auto" if that is what auto gave)
            mode = "auto" if self.mode == _auto_mode(self.monitor) else self.mode
        return _Best(self.owner, monitor, mode, self.min_delta)

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def check(self, trainer):
        """ValueError before training if ``monitor`` is not a metric this
        ``fit`` will log (a validation metric without validation data, an
        accuracy of a regression loss, a misspelled name such as Keras' old
        'val_acc'). With a callback of the user's that may add metrics to
        the epoch logs, the name is looked up at the end of each epoch."""
        if not any(_may_add_metrics(callback) for callback in trainer._fit_callbacks):
            self._check_logged(trainer._epoch_metric_names())

    def value(self, logs):
        self._check_logged(logs)
        value = as_number(logs[self.monitor])
        if value is None:
            raise TypeError(f"{self.owner}: monitor {self.monitor!r} must be a number in the "
                            f"epoch logs, got {logs[self.monitor]!r:.60}")
        return value

    def restore(self, history):
        """The best of ``monitor``'s values in a History a fit continues (what
        is not a number there, e.g. a callback's text, counts as no record).
        A metric the history does not keep (one a callback adds to the epoch
        logs) keeps this callback's best of earlier fits of a run the History
        continues (a fresh History starts over)."""
        continued = bool(history.epochs.get("loss"))  # (not a fresh History: the same run)
        if continued and self.monitor not in history.epochs and self.monitor not in EPOCH_METRICS:
            return  # (a callback's own metric: this callback's best of the run so far)
        self.reset()
        for value in history.epochs.get(self.monitor, []):
            value = as_number(value)
            if value is not None and self.improved(value):
                self.best = value

    def _check_logged(self, names):
        if self.monitor in names:
            return
        validated = any(key.startswith("val_") for key in names)
        renamed = KERAS_OLD_NAMES.get(self.monitor)
        if renamed in names:
            hint = f" (nnc names it {renamed!r}, as Keras 2.3 and later do)"
        elif "accuracy" in self.monitor and not any("accuracy" in key for key in names):
            hint = " (this loss reports no accuracy: monitor a loss)"
        elif self.monitor.startswith("val_") and not validated:
            hint = " (pass validation_data=(X_val, y_val) to fit, or monitor='loss')"
        else:
            hint = " (a misspelled name?)"
        raise ValueError(f"{self.owner} monitors {self.monitor!r}, but the epoch logs "
                         f"have {sorted(names)}{hint}")

    def improved(self, value):
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


def _monitor():
    """A callback's ``monitor``, kept in its ``_Best``: assigning another
    metric name watches that one from then on (its best starts afresh)."""
    def watch(callback, value):
        best = getattr(callback, "_best", None)
        if best is None:  # (a subclass may set monitor before calling super().__init__)
            best = _Best(type(callback).__name__, "loss", "auto", 0.0)
        callback._best = best.watching(value)
    return property(lambda callback: callback._best.monitor, watch,
                    doc="The epoch metric watched, e.g. 'val_loss'.")


def _count():
    """A number of epochs: an int >= 0."""
    return int_setting(low=0)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience``
    epochs (lecture: early stopping as regularisation).

    ``restore_best=True``: when ``fit`` ends (stopped or not), the model gets
    back the weights and batch-norm statistics it had at the end of the best
    epoch (as Keras). Validation metrics are measured with exactly those
    weights; training ones (``"loss"``, ``"accuracy"``) are means over the
    epoch's steps, each taken before its update. After
    ``fit``: ``best`` (the best value), ``best_epoch`` and ``stopped_epoch``
    (0-based epoch indices; ``stopped_epoch`` is None if it never stopped).
    State starts afresh at each ``fit``.
    """

    monitor = _monitor()
    patience = _count()
    restore_best = Setting(check_bool)

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
                 restore_best=True):
        self._best = _Best("EarlyStopping", monitor, mode, min_delta)
        self.patience = patience
        self.restore_best = restore_best
        self._params = self._buffers = None
        self.on_train_begin(None)

    @property
    def best(self):
        return self._best.best

    def check(self, trainer):
        self._best.check(trainer)

    def on_train_begin(self, trainer):
        self._best.reset()
        self.wait = 0
        self.best_epoch = None
        self.stopped_epoch = None
        self._saved = False

    def on_epoch_end(self, trainer, epoch, logs):
        value = self._best.value(logs)
        if self._best.improved(value):
            self._best.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._snapshot(trainer.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.restore_best and self._saved:
            model = trainer.model
            model.flat_params[...] = self._params
            for layer, buffers in zip(model.layers, self._buffers):
                for name, value in buffers.items():
                    layer.buffers[name][...] = value

    def _snapshot(self, model):
        def layout(buffers):
            return [{name: (array.shape, array.dtype) for name, array in b.items()}
                    for b in buffers]

        if self._params is None or self._params.shape != model.flat_params.shape \
                or self._params.dtype != model.flat_params.dtype \
                or layout(self._buffers) != layout(layer.buffers for layer in model.layers):
            self._params = model.flat_params.copy()
            self._buffers = [{k: v.copy() for k, v in layer.buffers.items()}
                             for layer in model.layers]
        else:
            np.copyto(self._params, model.flat_params)
            for layer, buffers in zip(model.layers, self._buffers):
                for name, value in buffers.items():
                    np.copyto(value, layer.buffers[name])
        self._saved = True


class ModelCheckpoint(Callback):
    """Write a checkpoint (``trainer.save_checkpoint``: model, optimizer and
    trainer state, so ``fit(..., resume_from=path)`` continues from it) at
    the end of every epoch, or with ``save_best_only=True`` only when
    ``monitor`` improved. ``path`` may hold ``{epoch}`` (1-based) and epoch
    metrics, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``. Writes are
    atomic. ``saved`` lists ``(epoch, path)`` of every write (0-based epoch).
    The best value to beat is the best of the trainer's history so far, so a
    later ``fit`` or a resumed run never replaces the best file with a worse
    model."""

    monitor = _monitor()
    path = Setting(check_file_path)
    save_best_only = Setting(check_bool)

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        self.path = path
        self.save_best_only = save_best_only
        self._best = _Best("ModelCheckpoint", monitor, mode, 0.0)
        self.saved = []

    def check(self, trainer):
        if self.save_best_only:
            self._best.check(trainer)
        if any(_may_add_metrics(callback) for callback in trainer._fit_callbacks):
            _check_folder("ModelCheckpoint", self.path)
            return
        # the template filled in with this fit's metrics (placeholder values)
        names = trainer._epoch_metric_names()
        # (placeholders as long as an epoch and a metric's value can print)
        _check_folder("ModelCheckpoint", self._filled_in(
            LONGEST_EPOCH, dict.fromkeys(names, -1.2345678901234567e-300)))

    def on_train_begin(self, trainer):
        self._best.restore(trainer.history)

    def on_epoch_end(self, trainer, epoch, logs):
        if self.save_best_only:
            value = self._best.value(logs)
            if not self._best.improved(value):
                return
            self._best.best = value
        path = self._filled_in(epoch + 1, logs)
        trainer.save_checkpoint(path)
        self.saved.append((epoch, path))

    def _filled_in(self, epoch, logs):
        try:
            path = self.path.format(epoch=epoch, **logs)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError, MemoryError,
                OverflowError) as exc:  # (MemoryError: a width such as {epoch:99999999999})
            raise ValueError(f"ModelCheckpoint path {self.path!r} cannot be filled in from "
                             f"epoch and {sorted(logs)}: {exc!r}") from None
        if len(os.path.basename(path).encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise ValueError(f"ModelCheckpoint path {self.path!r} gives a file name longer "
                             f"than {NAME_MAX} bytes ({path[:60]!r}...)")
        return path


class ReduceLROnPlateau(Callback):
    """Multiply ``optimizer.lr`` by ``factor`` when ``monitor`` has not
    improved (by more than ``min_delta``) for ``patience`` epochs, never
    going below ``min_lr``; then wait ``cooldown`` epochs before counting
    again. ``reductions`` lists ``(epoch, new_lr)``.

    It sets ``trainer.optimizer.lr``, the rate used when the Trainer has no
    ``schedule``. A ``schedule`` sets the rate at every step and would undo
    each reduction, so combining the two raises ValueError at the start of
    ``fit``. The reduced rate is part of the optimizer's state, so it is in
    checkpoints.

    Counting follows Keras: the rate drops at the ``patience``-th epoch in
    a row without improvement (so ``patience`` 0 and 1 both drop at the
    first such epoch), and ``min_delta`` is absolute. PyTorch's
    ``ReduceLROnPlateau(patience=p, threshold=d, threshold_mode="abs")``
    drops one epoch later: it matches ``patience=p + 1, min_delta=d``
    (without cooldown; the two count cooldown epochs differently).
    """

    monitor = _monitor()
    factor = number_setting(low=0, high=1, low_open=True, high_open=True)
    patience = _count()
    min_lr = number_setting(low=0)
    cooldown = _count()

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_lr=0.0,
                 min_delta=1e-4, cooldown=0, mode="auto"):
        self._best = _Best("ReduceLROnPlateau", monitor, mode, min_delta)
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr
        self.cooldown = cooldown
        self.reductions = []
        self.on_train_begin(None)

    def check(self, trainer):
        self._best.check(trainer)
        if trainer.schedule is not None:
            raise ValueError("ReduceLROnPlateau changes optimizer.lr, but this Trainer has "
                             f"schedule={trainer.schedule!r}, which sets the learning rate at "
                             "every step and would undo it: use one or the other")

    def on_train_begin(self, trainer):
        self._best.reset()
        self.wait = 0
        self._cooling = 0

    def on_epoch_end(self, trainer, epoch, logs):
        value = self._best.value(logs)
        if self._cooling > 0:
            self._cooling -= 1
            self.wait = 0
        if self._best.improved(value):
            self._best.best, self.wait = value, 0
            return
        if self._cooling > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            optimizer = trainer.optimizer
            if optimizer.lr > self.min_lr:
                optimizer.lr = max(optimizer.lr * self.factor, self.min_lr)
                self.reductions.append((epoch, optimizer.lr))
                self._cooling = self.cooldown
            self.wait = 0


class CSVLogger(Callback):
    """Write one CSV row per epoch to ``path``: ``epoch`` (1-based), the
    epoch's metrics (loss, accuracy, val_loss, ...) and ``lr`` (the learning
    rate of the epoch's last step). The header is the first row. Without
    ``append`` the file is rewritten at each ``fit``; with it rows are added
    (and the header only to an empty file); a metric the file has no column
    for yet (validation data in a later ``fit``) adds the column, empty in
    the earlier rows. Each row is written and closed
    at once, so the file is complete even if training is interrupted."""

    def __init__(self, path, append=False, separator=","):
        path = check_file_path(path, regular=False)  # a stream is fine
        if not isinstance(separator, str) or len(separator) != 1 or separator in '\r\n"':
            raise ValueError(f"separator must be one character other than a line break or "
                             f"the quote character, got {separator!r}")
        self.path, self.append, self.separator = path, check_bool(append, "append"), separator
        self._fields = None

    def check(self, trainer):
        _check_folder("CSVLogger", self.path, in_place=True)
        if self.append:
            self._existing_fields()

    def _existing_fields(self):
        """The header of the file to append to (None for a missing or empty
        file), or ValueError if it is not a CSV file with a header."""
        if not (os.path.exists(self.path) and os.path.getsize(self.path) > 0):
            return None
        try:
            with open(self.path, newline="", encoding="utf-8") as file:
                rows = csv.reader(file, delimiter=self.separator)
                fields = next(rows, None)
                longer = next((number for number, row in enumerate(rows, start=2)
                               if fields and len(row) > len(fields)), None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValueError(f"CSVLogger(append=True): {self.path!r} is not a CSV file to "
                             f"append to ({exc})") from None
        if not fields or any(not name for name in fields) or fields[0] != "epoch":
            raise ValueError(f"CSVLogger(append=True): the first line of {self.path!r} is not "
                             f"a header (CSVLogger writes 'epoch', then the metrics, "
                             f"separated by {self.separator!r}; got {fields!r:.80}); remove "
                             "the file, choose another or give its separator")
        if longer is not None:
            raise ValueError(f"CSVLogger(append=True): line {longer} of {self.path!r} has "
                             "more values than its header; remove the file or choose another")
        return fields

    def _rewrite_with(self, fields):
        with open(self.path, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file, delimiter=self.separator))
        with open(self.path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=fields, restval="",
                                    delimiter=self.separator)
            writer.writeheader()
            writer.writerows(rows)
        self._fields = fields

    def on_train_begin(self, trainer):
        self._fields = self._existing_fields() if self.append else None
        if self._fields is None:
            open(self.path, "w").close()

    def on_epoch_end(self, trainer, epoch, logs):
        lrs = trainer.history.steps.get("lr")
        row = {"epoch": epoch + 1, **logs, "lr": lrs[-1] if lrs else trainer.optimizer.lr}
        header = self._fields is None
        if header:
            self._fields = list(row)
        new = [key for key in row if key not in self._fields]
        if new:  # e.g. validation metrics in a later fit: the file gets the columns
            self._rewrite_with(self._fields + new)
        with open(self.path, "a", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=self._fields, restval="",
                                    delimiter=self.separator)
            if header:
                writer.writeheader()
            writer.writerow(row)
