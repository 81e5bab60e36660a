"""The training loop: mini-batch stochastic gradient descent (lecture,
Algorithm 2) with a per-epoch shuffle, a progress bar and a History.

One step: sample a batch D_b, forward, loss and its gradient (one fused
kernel), backward, ``optimizer.step()``. The batch rows are gathered into
reused buffers, so a steady-state step allocates no arrays in the Cython
backend.
"""
import numpy as np
from tqdm.auto import tqdm

import copy
import math
import operator
import warnings

from nnc._locks import ProcessLock
from nnc._validation import (FLOAT32_TINY, MAX_STEPS, RefusesOtherLibrariesNames, Setting,
                             check_bool, check_features, check_float, check_generator_state,
                             check_int, check_seed, check_state_array, check_step,
                             check_verbose, int_setting, int_text, number_setting)
from nnc.callbacks import Callback
from nnc.diagnostics import as_callback as as_diagnostics
from nnc.diagnostics import scale_warnings
from nnc.history import History, check_history
from nnc.layers import NON_NEGATIVE_BUFFERS
from nnc.losses import get_loss
from nnc.model import WRITES_ALL, Sequential
from nnc.nan_guard import (TrainingDiverged, check_guard_mode, diverged, step_is_safe,
                           update_limit)
from nnc.optim import SGD, Optimizer
from nnc.schedules import as_schedule
from nnc.workspace import Workspace


class _FitSetting(Setting):
    """A ``Setting`` whose check also sees the trainer, ``check(trainer,
    value, name)``; ``fixed_in_fit``: refused while a fit steps (the loss:
    the targets were checked for it)."""

    def __init__(self, check, fixed_in_fit=False):
        super().__init__(check)
        self.fixed_in_fit = fixed_in_fit

    def __set__(self, trainer, value):
        if self.fixed_in_fit and trainer.__dict__.get("_fitting"):
            raise RuntimeError(f"trainer.{self.name} cannot change while fit runs (from a "
                               "callback or another thread): change it between fits")
        trainer.__dict__[self.name] = self.check(trainer, value, f"trainer.{self.name}")

    def __delete__(self, trainer):
        raise AttributeError(f"trainer.{self.name} cannot be deleted; assign a new value instead")


def _bound_loss(trainer, value, name):
    return get_loss(value, trainer.model.backend).bind(trainer.model.backend)


def _checked_history(trainer, value, name):
    """A History whose records nnc can read (its parts dicts, its numbers numbers)."""
    try:
        check_history(value, "written", name)  # (a TypeError names the part itself)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if trainer.__dict__.get("_fitting"):  # (mid-fit: the next step appends to it; else fit)
        trainer._check_history_records(value.steps)
    return value


def _checked_generator(trainer, value, name):
    """A numpy Generator (checkpoints keep its bit generator's state)."""
    if not isinstance(value, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(value).__name__}")
    return value


#: the callback hooks that run within an epoch
STEP_HOOKS = ("on_before_update", "on_step_end", "on_step_refused")


def _layer_positions(model):
    """[(layer index, positions of its parameters in the flat buffer)]."""
    return [(i, [p for p, owner in enumerate(model.param_layers) if owner == i])
            for i in sorted(set(model.param_layers))]


def _fixed(name, why):
    """A read-only attribute (stored as ``_name``) whose assignment says why."""
    def refuse(self, value):
        raise AttributeError(f"a Trainer's {name} cannot be replaced ({why})")
    return property(operator.attrgetter("_" + name), refuse,
                    doc=f"The Trainer's {name} (read-only: {why}).")


def _positive_or_none(value, name):
    """None, or a threshold within float32's normal range (a smaller one
    scales the gradients to 0 in float32: training would silently stop)."""
    return None if value is None else check_float(value, name, low=FLOAT32_TINY)


class Trainer(RefusesOtherLibrariesNames):
    """Fits a model with mini-batch gradient descent.

    Parameters
    ----------
    model : Sequential
    loss : name ("softmax_cross_entropy", "mse", "bce_with_logits") or Loss
    optimizer : Optimizer (default ``SGD(lr=0.01)``)
    batch_size : samples per step; the last batch of an epoch may be smaller
    l2 : λ of the lecture's penalty λ R(w), R(w) = ½ Σ w² over the weights
        of Dense layers (not biases, not batch-norm parameters): λ R(w) is
        added to the training loss (``history`` ``loss``: the cost being
        minimised) and λ w to the gradient, before clipping. ``evaluate``
        and ``val_loss`` report the data loss alone. PyTorch: the same as
        ``weight_decay=λ`` on the weights only when there is no clipping
        (PyTorch adds its decay after ``clip_grad_norm_``); with clipping,
        the same as adding λ/2 Σ w² to the loss before ``backward``.
    clip_norm : if set, gradients are rescaled so that their global L2 norm
        (over all parameters together) is at most ``clip_norm``: g ← g c/‖g‖
        when ‖g‖ > c (PyTorch's ``clip_grad_norm_`` divides by ‖g‖ + 1e-6:
        its clipped steps are smaller by a relative 1e-6/‖g‖).
    clip_value : if set, each gradient element is clipped to [-v, v]
        (``clip_grad_value_``).
    schedule : a learning-rate schedule (``nnc.schedules``), a callable
        ``t -> lr`` evaluated at every step t = 0, 1, ...; None keeps the
        optimizer's ``lr``.
    seed : seeds the shuffling generator (default: drawn from the model's)
    callbacks : ``nnc.callbacks.Callback`` objects run by every ``fit``
        (``fit(callbacks=...)`` adds more for one call)
    diagnostics : True, a positive int k or ``nnc.diagnostics.Diagnostics(every=k)``
        records per-layer statistics (gradient and weight norms, update/weight
        ratios, activation statistics, dead ReLU units, batch-norm batch
        statistics) every k steps into ``history.diagnostics``; None/False
        (default) records nothing and costs nothing. ``history.report()``
        reads a verdict from them.
    nan_guard : True (default) stops training *before* an update when the
        loss or a gradient is NaN/Inf (or ``lr*|g|`` would overflow), raising
        ``nnc.TrainingDiverged`` that names the step and the layer; the model
        keeps the weights of the last finite step. ``"warn"`` stops ``fit``
        with a RuntimeWarning instead; False turns the check off. It costs
        a few float comparisons per step (see ``nnc/nan_guard.py``).

    A step: forward, loss and its gradient, backward, + λw (l2), record the
    gradient norms, clip, ``optimizer.step(lr_t)``. A second ``fit``
    continues: optimizer state, step count, history and the shuffling
    generator carry on from where the first call stopped.

    ``fit`` warns (UserWarning) when X, or a regression's y, is far from
    unit scale (root-mean-square above 10, ``nnc.diagnostics.INPUT_RMS_LIMIT``
    and ``TARGET_RMS_LIMIT``; not for X when a BatchNorm comes before the
    first Dense);
    ``trainer.warn_unscaled = False`` silences it (``history.report()``
    still says it).
    """

    #: whether fit warns about data far from unit scale (see above)
    warn_unscaled = True
    # other libraries' names, refused with nnc's (they would set nothing nnc reads)
    _aliases = {"lr": (None, "optimizer.lr"), "learning_rate": (None, "optimizer.lr"),
                "clipnorm": (None, "clip_norm"), "global_clipnorm": (None, "clip_norm"),
                "clipvalue": (None, "clip_value"),
                "weight_decay": (None, "l2 (or an AdamW's optimizer.weight_decay)"),
                "lr_scheduler": (None, "schedule")}

    batch_size = int_setting(low=1)
    clip_norm = Setting(_positive_or_none)
    clip_value = Setting(_positive_or_none)
    l2 = number_setting(low=0)
    schedule = Setting(lambda value, name: as_schedule(value))
    # stored as "raise", "warn" or None (off); None may be assigned too
    nan_guard = Setting(lambda value, name: None if value is None else check_guard_mode(value))
    callbacks = Setting(lambda value, name: Trainer._check_callbacks(value))
    # the optimizer steps taken (schedules, checkpoints and diagnostics read it)
    step_count = Setting(check_step)
    # a callback sets it to end fit after the current step or epoch
    stop_training = Setting(check_bool)

    loss = _FitSetting(_bound_loss, fixed_in_fit=True)
    history = _FitSetting(_checked_history)
    rng = _FitSetting(_checked_generator)

    model = _fixed("model", "its optimizer, buffers and history belong to it: create a new "
                            "Trainer")
    diagnostics = _fixed("diagnostics", "it is one of the callbacks since construction: pass "
                                        "Trainer(..., diagnostics=...) or add a "
                                        "nnc.diagnostics.Diagnostics() to fit(callbacks=...)")
    optimizer = _fixed("optimizer", "it is bound to the model's buffers: create a new Trainer, "
                                    "or change the optimizer's settings (optimizer.lr = ...)")

    def __init__(self, model, loss="softmax_cross_entropy", optimizer=None, batch_size=32,
                 clip_norm=None, clip_value=None, schedule=None, l2=0.0, seed=None,
                 callbacks=None, diagnostics=None, nan_guard=True):
        if not isinstance(model, Sequential):
            raise TypeError(f"model must be an nnc.Sequential, got {type(model).__name__}")
        self._model = model
        self.loss = loss
        if optimizer is None:
            optimizer = SGD(lr=0.01)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an nnc optimizer (e.g. nnc.SGD(lr=0.1)), "
                            f"got {optimizer!r}")
        self.batch_size = batch_size
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.schedule = schedule
        self.l2 = l2
        self.nan_guard = check_guard_mode(nan_guard)  # (None is only the stored "off")
        self._update_limit = update_limit(model.dtype)
        # views and buffers the step reuses (created once, never per step)
        self._bind_decayed_views()
        self._fit_lock = ProcessLock()
        self._param_sum_squares = np.zeros(len(model.param_offsets) - 1)
        # batch-norm running statistics, and their copies from before the step:
        # a refused step must not leave its forward's update in them
        self._buffers = [(i, b) for i, layer in enumerate(model.layers)
                         for b in layer.buffers.values()]
        self._buffers_before = [np.empty_like(b) for _, b in self._buffers]
        self._layer_params = _layer_positions(model)
        if seed is not None:
            seed = check_seed(seed)
        self.callbacks = callbacks
        self._diagnostics = as_diagnostics(diagnostics)
        if self.diagnostics is not None and self.diagnostics not in self.callbacks:
            self.callbacks.append(self.diagnostics)
        self.stop_training = False
        self._active_callbacks, self._step_hooks = (), False
        self._validating, self._fit_callbacks = False, ()
        self.history = History()
        self._check_history_records(self.history.steps)  # (the per-layer norms too)
        self.step_count = 0
        self._workspace = Workspace(model.dtype)
        # last: a Trainer refused above leaves the optimizer free for a corrected
        # one, and the model's generator undrawn
        self._optimizer = optimizer.bind(model)
        if seed is None:
            seed = int(model.rng.integers(2**63))
        self.rng = np.random.default_rng(seed)

    def _bind_decayed_views(self):
        model = self.model
        self._decayed_params = model.flat_params[:model.n_decayed]
        self._decayed_grads = model.flat_grads[:model.n_decayed]

    def __getstate__(self):
        # pickle/deepcopy would turn the views of the model's flat buffers
        # into separate arrays (L2 would then decay a copy): rebuilt instead
        state = self.__dict__.copy()
        state["_decayed_params"] = state["_decayed_grads"] = None
        state["_active_callbacks"] = state["_fit_callbacks"] = ()  # (a fit's, in progress)
        state["_fitting"] = False
        return state

    def __setstate__(self, state):
        for name in ("model", "optimizer", "diagnostics"):  # pickled before they were read-only
            if name in state:
                state["_" + name] = state.pop(name)
        self.__dict__.update(state)
        self._bind_decayed_views()
        if not isinstance(state.get("_fit_lock"), ProcessLock):  # (older pickles)
            self._fit_lock = ProcessLock()
        if "_layer_params" not in state:  # (pickled before the per-layer norms)
            self._layer_params = _layer_positions(self.model)
        if getattr(self.optimizer, "_lock", None) is None:  # (pickled before it had one)
            self.optimizer._lock = getattr(self.model, "_lock", None)

    @staticmethod
    def _check_callbacks(callbacks):
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        if isinstance(callbacks, str) or not hasattr(callbacks or (), "__iter__"):
            raise TypeError(f"callbacks must be a list of nnc.callbacks.Callback objects, "
                            f"got {callbacks!r}")
        callbacks = list(callbacks or ())
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be nnc.callbacks.Callback objects, "
                                f"got {callback!r}")
        return callbacks

    def _call(self, hook, *args):
        for callback in self._active_callbacks:
            getattr(callback, hook)(self, *args)

    # --- data checks --------------------------------------------------------
    def _check_data(self, X, y, x_name="X", y_name="y"):
        X = check_features(X, x_name, self.model.in_features, self.model.dtype)
        y = self.loss.check_targets(y, X.shape[0], self.model.out_features, self.model.dtype,
                                    name=y_name)
        return X, y

    # --- one step -----------------------------------------------------------
    def _train_step(self, xb, yb):
        model, backend, steps = self.model, self.model.backend, self.history.steps
        # first: a bad learning rate stops fit before anything changes
        lr = self._step_lr()
        # a step refused below (NaN guard, optimizer, callback) must leave
        # no trace: its forward's batch-norm statistics and its gradient
        # norms are taken back
        for (_, buffer), before in zip(self._buffers, self._buffers_before):
            np.copyto(before, buffer)
        recorded = len(steps["grad_norm"])
        try:
            output = model._forward(xb, training=True)
            loss = self.loss._forward(output, yb)
            # counted now: a callback may evaluate or predict, reusing the output buffer
            correct, n_counted = self.loss._count_correct(output, yb, backend)
            model._backward(self.loss._grad)
            if self.l2:  # λ R(w) over the Dense weights only (Layer.decayed; views of the
                # flat buffers, see Sequential's layout): g ← g + λ w, loss + λ/2 Σ w²
                loss += backend.l2_penalty(self._decayed_params, self._decayed_grads, self.l2)
            norm = self._record_gradient_norms(steps)
            if self.clip_norm is not None and norm > self.clip_norm:
                backend.scale(model.flat_grads, self.clip_norm / norm)
            if self.clip_value is not None:
                backend.clip(model.flat_grads, self.clip_value)
            if self.nan_guard and not step_is_safe(self, loss, norm, lr):  # nnc/nan_guard.py
                raise diverged(self, loss, norm, lr)
            if self._active_callbacks:
                self._call("on_before_update")
            self.optimizer.step(lr)
        except BaseException:
            self._take_back_step(steps, recorded)
            raise
        self.__dict__["step_count"] = self.step_count + 1  # (checked when assigned)
        steps["loss"].append(loss)
        steps["lr"].append(lr)
        if self._active_callbacks:
            self._call("on_step_end", {"step": self.step_count, "loss": loss, "lr": lr,
                                       "grad_norm": norm})
            if self._step_hooks:  # one that replaced a layer's array: say so now
                self.model._check_views(writes=WRITES_ALL)
        return loss, correct, n_counted

    def _record_epoch_end(self):
        """``history.meta["epoch_ends"]``: the number of steps at the end of
        each epoch (the plots place epoch values there; epochs differ in
        length when the batch size changes or a stop cuts one short). None
        for epochs of a History recorded before nnc kept it."""
        history = self.history
        ends = history.meta.get("epoch_ends")
        done = len(history.epochs["loss"]) - 1
        if not isinstance(ends, list) or len(ends) != done:
            ends = (list(ends) if isinstance(ends, list) else [])[:done]
            ends += [None] * (done - len(ends))
        history.meta["epoch_ends"] = ends + [len(history.steps["loss"])]

    def _permutation(self, n):
        """This epoch's order of the samples, as int64 (the gather kernel's type)."""
        order = self.rng.permutation(n)
        if not (isinstance(order, np.ndarray) and order.shape == (n,)
                and order.dtype.kind in "iu"):
            raise TypeError(f"trainer.rng.permutation({n}) must return {n} integer indices, "
                            f"got {type(order).__name__} {getattr(order, 'shape', '')}")
        return order.astype(np.int64, copy=False)

    def _check_history_records(self, steps):
        """The records the steps append to in ``steps``, as lists, and the
        per-layer gradient norms, one per global norm (a History assigned by
        hand may lack them: NaN before it)."""
        names = ["loss", "lr", "grad_norm"] + [f"grad_norm.{layer}"
                                               for layer, _ in self._layer_params]
        for name in names:
            if name in steps and not isinstance(steps[name], list):
                steps[name] = list(steps[name])
        for name in ("loss", "lr"):
            steps.setdefault(name, [])
        measured = len(steps.setdefault("grad_norm", []))
        for layer, _ in self._layer_params:
            norms = steps.setdefault(f"grad_norm.{layer}", [math.nan] * measured)
            if len(norms) != measured:
                raise ValueError(f"trainer.history: steps['grad_norm.{layer}'] has {len(norms)} "
                                 f"entries, steps['grad_norm'] {measured}: one per step each")

    def _take_back_step(self, steps, recorded):
        """Undo what a refused step left: gradient norms recorded into
        ``steps`` beyond ``recorded``, and its batch-norm statistics."""
        del steps["grad_norm"][recorded:]
        for layer, _ in self._layer_params:
            del steps[f"grad_norm.{layer}"][recorded:]
        for (_, buffer), before in zip(self._buffers, self._buffers_before):
            np.copyto(buffer, before)
        if self._active_callbacks:  # last: a hook that raises finds the step undone
            self._call("on_step_refused")

    def _buffers_finite(self):
        backend = self.model.backend
        return all(backend.all_finite(buffer) for _, buffer in self._buffers)

    def _nonfinite_buffer_layers(self, before_the_step=False):
        """The layers whose batch-norm statistics are non-finite now (or were
        before this step)."""
        buffers = self._buffers_before if before_the_step else [b for _, b in self._buffers]
        return sorted({i for (i, _), buffer in zip(self._buffers, buffers)
                       if not np.isfinite(buffer).all()})

    def _step_lr(self):
        """This step's learning rate, the schedule's or ``optimizer.lr``,
        checked: a finite number >= 0 the optimizer can take (a bad one
        stops training before the step changes anything)."""
        if self.schedule is None:
            lr, name = self.optimizer.lr, "optimizer.lr"
        else:
            lr = self.schedule(self.step_count)
            name = f"the learning rate schedule({self.step_count})"
        if not (isinstance(lr, float) and 0.0 <= lr < math.inf):
            lr = check_float(lr, name, low=0)
        self.optimizer.check_lr(lr)
        return lr

    def _record_gradient_norms(self, steps):
        """Global and per-layer gradient norms from one pass over the flat
        gradient buffer, appended to ``steps``; returns the global norm."""
        model = self.model
        sum_squares = self._param_sum_squares
        total = model.backend.segment_sum_of_squares(model.flat_grads, model.param_offsets,
                                                     sum_squares)
        norm = math.sqrt(total)
        steps["grad_norm"].append(norm)
        for layer, positions in self._layer_params:
            layer_total = 0.0
            for p in positions:
                layer_total += sum_squares[p]
            steps[f"grad_norm.{layer}"].append(math.sqrt(layer_total))
        return norm

    def _batches(self, X, y, order):
        """Yield (x_batch, y_batch) views or gathered copies in reused buffers.
        A last batch of one sample is skipped when the model has batch-norm
        (the variance of one sample is undefined). A batch_size changed
        during the epoch applies from the next one."""
        n, size = X.shape[0], self.batch_size
        for start in range(0, n, size):
            stop = min(start + size, n)
            if stop - start == 1 and start > 0 and self.model.needs_batch_statistics:
                return
            if order is None:
                yield X[start:stop], y[start:stop]
                continue
            index = order[start:stop]
            xb = self._workspace.get("x", (stop - start,) + X.shape[1:])
            yb = self._workspace.get("y", (stop - start,) + y.shape[1:], dtype=y.dtype)
            self.model.backend.gather_rows(X, index, xb)
            # mode="clip": the indices are valid, and mode="raise" would
            # gather through a temporary buffer
            np.take(y, index, axis=0, out=yb, mode="clip")
            yield xb, yb

    # --- public API ---------------------------------------------------------
    def fit(self, X, y, epochs=1, validation_data=None, shuffle=True, verbose=True,
            callbacks=None, resume_from=None):
        """Train for ``epochs`` passes over (X, y); returns ``self.history``.

        ``verbose``: as Keras, 0/False silent, 1/True a progress bar per
        epoch (tqdm, on stderr), 2 one line per epoch (stdout).

        ``resume_from``: a checkpoint file (``save_checkpoint``,
        ``callbacks.ModelCheckpoint``) restored first: weights, buffers,
        optimizer state, step count, shuffling generator and history, so
        training continues bit-identically to a run that was never stopped
        (callbacks that count epochs, ``EarlyStopping`` and
        ``ReduceLROnPlateau``, start counting afresh; ``ModelCheckpoint``
        compares against the best of the restored history).
        With ``resume_from``, ``epochs`` is the *total* number of epochs, the
        checkpoint's included: rerunning the same script after an
        interruption finishes the original plan.
        """
        held = self._fit_lock.try_acquire()
        if held is None:
            raise RuntimeError("this Trainer is already running fit (called again from a "
                               "callback, or from another thread): one fit at a time; give "
                               "another thread its own model and Trainer")
        try:
            with self.model._in_use():
                return self._fit(X, y, epochs, validation_data, shuffle, verbose, callbacks,
                                 resume_from)
        finally:
            self._active_callbacks = self._fit_callbacks = ()  # (callbacks may not pickle)
            self._fitting = False
            self.model._last_input = None  # (a view of the caller's X)
            held.release()

    def _fit(self, X, y, epochs, validation_data, shuffle, verbose, callbacks, resume_from):
        self.model._check_views(writes=WRITES_ALL)
        self.callbacks = self.callbacks  # checked again: the list may have been changed in place
        X, y = self._check_data(X, y)
        self._fitting = True  # (the loss is fixed from here: the targets were checked for it)
        warn = check_bool(self.warn_unscaled, "trainer.warn_unscaled")
        epochs = check_int(epochs, "epochs", low=1, high=MAX_STEPS)
        shuffle = check_bool(shuffle, "shuffle")
        verbose = check_verbose(verbose)
        if self.batch_size > X.shape[0]:
            raise ValueError(f"batch_size {int_text(self.batch_size)} is larger than the "
                             f"{X.shape[0]} training samples: set trainer.batch_size = "
                             f"{X.shape[0]} (one full batch) or fewer")
        if self.model.needs_batch_statistics and min(self.batch_size, X.shape[0]) < 2:
            raise ValueError(f"batch_size {self.batch_size} with {X.shape[0]} training "
                             "sample(s): a model with BatchNorm needs training batches of at "
                             "least 2 samples")
        self._step_lr()  # a learning rate that fails at once fails before any work
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a tuple (X_val, y_val)")
            validation_data = self._check_data(*validation_data, "X_val", "y_val")
        active = []  # each callback once, even if given to both the Trainer and fit
        for callback in self.callbacks + self._check_callbacks(callbacks):
            if not any(callback is other for other in active):
                active.append(callback)
        active = tuple(active)
        # what the callbacks' checks may ask (_epoch_metric_names)
        self._validating, self._fit_callbacks = validation_data is not None, active
        for callback in active:  # before a checkpoint is loaded or a file written
            callback.check(self)
        if resume_from is not None:
            self.load_checkpoint(resume_from)
            done = len(self.history.epochs.get("loss", []))
            if done >= epochs:
                warnings.warn(f"the checkpoint {resume_from!r} already has {done} epochs and "
                              f"epochs={epochs} counts the total with resume_from: nothing "
                              "to train", UserWarning, stacklevel=3)  # fit's caller
                return self.history
            epochs -= done
        self._active_callbacks = active
        # callbacks that run inside epochs (others are checked at epoch starts)
        self._step_hooks = any(
            getattr(getattr(callback, hook), "__func__", None) is not getattr(Callback, hook)
            for callback in active for hook in STEP_HOOKS)
        self.stop_training = False
        self._check_history_records(self.history.steps)
        self.history.meta.setdefault("optimizer", repr(self.optimizer))  # (what diagnose reads)
        self.history.meta.setdefault("layers", [type(layer).__name__
                                                for layer in self.model.layers])
        for problem in scale_warnings(self, X, y):
            if warn:
                warnings.warn(problem, UserWarning, stacklevel=3)  # fit's caller
        try:
            self._call("on_train_begin")
            try:
                self._fit_epochs(X, y, epochs, validation_data, shuffle, verbose)
            except TrainingDiverged as exc:
                if self.nan_guard != "warn":
                    raise
                warnings.warn(str(exc), RuntimeWarning, stacklevel=3)  # fit's caller
            self._fitting = False  # (no step follows: callbacks may restore, reset ...)
            self._call("on_train_end")
        finally:
            self._active_callbacks = ()
        return self.history

    def _epoch_metric_names(self):
        """The keys of the epoch logs of the ``fit`` being set up."""
        names = ["loss", "accuracy"] if self.loss.classification else ["loss"]
        if self._validating:
            names += ["val_" + name for name in names]
        return names

    def _fit_epochs(self, X, y, epochs, validation_data, shuffle, verbose):
        n = X.shape[0]
        steps_per_epoch = -(-n // self.batch_size)
        first_epoch = len(self.history.epochs.get("loss", []))
        for epoch in range(first_epoch, first_epoch + epochs):
            self._call("on_epoch_begin", epoch)
            # (what the callbacks of the last epoch's end and this one's start changed)
            self.model._check_views(writes=WRITES_ALL)
            self.model.train()
            # int64 whatever the platform's default integer (the gather kernel's type)
            order = self._permutation(n) if shuffle else None
            total_loss, total_correct, total_counted, seen = 0.0, 0, 0, 0
            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{first_epoch + epochs}",
                       unit="batch", disable=verbose != 1, leave=True, mininterval=0.2)
            refresh_every = max(1, steps_per_epoch // 20)
            self._mid_epoch = True  # a checkpoint now could not resume this epoch's rest
            for step, (xb, yb) in enumerate(self._batches(X, y, order)):
                loss, correct, n_counted = self._train_step(xb, yb)
                total_loss += loss * xb.shape[0]
                total_correct += correct
                total_counted += n_counted
                seen += xb.shape[0]
                if verbose == 1 and (step % refresh_every == 0):
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update(1)
                if self.stop_training:
                    break
            record = {"loss": total_loss / seen}
            if self.loss.classification:
                record["accuracy"] = total_correct / total_counted
            if validation_data is not None:
                val = self.evaluate(*validation_data)
                record.update({"val_" + k: v for k, v in val.items()})
            self.history.record_epoch(**record)
            self._record_epoch_end()
            self._mid_epoch = False
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items()})
            bar.close()
            if verbose >= 2:  # Keras' verbose=2: one line per epoch, no bar
                print(f"epoch {epoch + 1}/{first_epoch + epochs}: "
                      + "  ".join(f"{k} {v:.4f}" for k, v in record.items()), flush=True)
            self._call("on_epoch_end", epoch, record)
            if self.stop_training:
                break

    def evaluate(self, X, y, batch_size=None):
        """Mean loss (and accuracy for classification) in evaluation mode."""
        self.model._check_views()
        X, y = self._check_data(X, y)
        batch_size = self.batch_size if batch_size is None else check_int(
            batch_size, "batch_size", low=1)
        total_loss, total_correct, total_counted = 0.0, 0, 0
        with self.model._in_use():
            was_training = self.model.training
            self.model.eval()
            try:
                for start in range(0, X.shape[0], batch_size):
                    stop = min(start + batch_size, X.shape[0])
                    output = self.model._forward(X[start:stop], training=False)
                    total_loss += self.loss._forward(output, y[start:stop],
                                                     with_grad=False) * (stop - start)
                    correct, n_counted = self.loss._count_correct(output, y[start:stop],
                                                                   self.model.backend)
                    total_correct += correct
                    total_counted += n_counted
            finally:
                self.model.training = was_training
        result = {"loss": total_loss / X.shape[0]}
        if self.loss.classification:
            result["accuracy"] = total_correct / total_counted
        return result

    def state_dict(self):
        """Everything needed to continue training bit-identically: weights,
        buffers, optimizer state, step count, shuffling generator, history."""
        with self.model._in_use():  # not half-way through another thread's step
            return self._state_dict()

    def _state_dict(self):
        return {
            # which parameter of which layer each part of "params" is
            "layout": self._layout(),
            "params": self.model.flat_params.copy(),
            "buffers": [{k: v.copy() for k, v in layer.buffers.items()}
                        for layer in self.model.layers],
            "optimizer": self.optimizer.state_dict(),
            "step_count": self.step_count,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "history": self._readable_history().to_dict(),
            # the model's generator draws the dropout masks
            "model_rng": copy.deepcopy(self.model.rng.bit_generator.state),
        }

    def _readable_history(self):
        """A copy of the history as load_state_dict will ask it: readable, with
        one per-layer gradient norm per step (a History set by hand may lack
        them: NaN in the copy, the History itself left as it is)."""
        history = self.history.check_readable()
        self._check_history_records(history.steps)
        return history

    def _layout(self):
        return {key: list(view.shape) for key, view in self.model.params.items()}

    def load_state_dict(self, state):
        """Restore a ``state_dict`` into this trainer and its model."""
        self.model._check_views(writes=("params", "buffers"))  # (before anything changes)
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from Trainer.state_dict(), "
                            f"got {type(state).__name__}")
        missing = {"params", "buffers", "optimizer", "step_count", "rng", "history"} - set(state)
        if missing:
            raise ValueError(f"state lacks {sorted(missing)}: not a Trainer.state_dict()")
        # every check first: a refused state changes nothing
        for key, source in (("optimizer", "optimizer.state_dict()"),
                            ("history", "History.to_dict()")):
            if not isinstance(state[key], dict):
                raise TypeError(f"state[{key!r}] must be a dict from {source}, "
                                f"got {state[key]!r:.80}")
        layout = state.get("layout")  # optional: older state dicts lack it
        if layout is not None and layout != self._layout():
            raise ValueError(f"state['layout'] is {layout!r:.200}, but this model's "
                             f"parameters are {self._layout()!r:.200}: the state is from a "
                             "model of another architecture")
        params = check_state_array(state["params"], "state['params'] (the flat parameters)",
                                self.model.flat_params.shape, self.model.dtype)
        buffers = state["buffers"]
        if not isinstance(buffers, (list, tuple)) or len(buffers) != len(self.model.layers):
            raise ValueError(f"state['buffers'] must be a list of one dict per layer "
                             f"({len(self.model.layers)}), got {buffers!r:.80}")
        for i, (layer, saved) in enumerate(zip(self.model.layers, buffers)):
            if not isinstance(saved, dict) or set(saved) != set(layer.buffers):
                raise ValueError(f"state['buffers'][{i}] must be a dict with the keys "
                                 f"{sorted(layer.buffers)}, got {saved!r:.80}")
            for name, value in saved.items():
                check_state_array(value, f"state['buffers'][{i}][{name!r}]",
                                  layer.buffers[name].shape, self.model.dtype,
                                  NON_NEGATIVE_BUFFERS.get(name))
        optimizer = self.optimizer._checked_state(state["optimizer"])
        step_count = check_step(state["step_count"], "state['step_count']")
        check_generator_state(state["rng"], "state['rng']", self.rng)
        if state.get("model_rng") is not None:  # optional: older state dicts lack it
            check_generator_state(state["model_rng"], "state['model_rng']", self.model.rng)
        history = History.from_dict(state["history"])
        norms = len(history.steps.get("grad_norm", []))
        for layer, _ in self._layer_params:
            if len(history.steps.get(f"grad_norm.{layer}", ())) != norms:
                raise ValueError(f"state['history'] has {norms} gradient norms but not as many "
                                 f"'grad_norm.{layer}' (those of layer {layer}): it is not the "
                                 "history of a trainer of this model")
        with self.model._in_use():  # apply
            self.model.flat_params[...] = params
            for layer, saved in zip(self.model.layers, buffers):
                for name, value in saved.items():
                    layer.buffers[name][...] = value
            self.optimizer._apply_state(*optimizer)
            self.step_count = int(step_count)
            self.rng.bit_generator.state = copy.deepcopy(state["rng"])
            if state.get("model_rng") is not None:
                self.model.rng.bit_generator.state = copy.deepcopy(state["model_rng"])
            self.history = history

    def save_checkpoint(self, path, metadata=None):
        """Write model, optimizer state and trainer state to ``path`` (one
        ``.npz``, atomically); ``fit(..., resume_from=path)`` or
        ``load_checkpoint(path)`` continue from it. See ``nnc.persistence``."""
        from nnc.persistence import save_checkpoint

        if getattr(self, "_mid_epoch", False):
            warnings.warn("save_checkpoint during an epoch: a run resumed from it starts the next "
                          "epoch (new shuffle) instead of this epoch's remaining batches, so it "
                          "will not continue bit-identically; checkpoint at the end of an epoch "
                          "(ModelCheckpoint, on_epoch_end)", UserWarning, stacklevel=2)
        with self.model._in_use():
            save_checkpoint(self, path, metadata=metadata)

    def load_checkpoint(self, path):
        """Restore a checkpoint written by ``save_checkpoint`` into this
        trainer (same architecture, dtype and optimizer type); a bad file
        raises ValueError and changes nothing."""
        from nnc.persistence import load_checkpoint

        with self.model._in_use():  # before anything is written into the model
            load_checkpoint(self, path)
        return self

    def predict(self, X, batch_size=None):
        """The model's output for X (evaluation mode)."""
        return self.model.predict(X, batch_size=max(self.batch_size, 256)
                                  if batch_size is None else batch_size)
