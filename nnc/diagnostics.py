"""Training diagnostics: watch optimisation happen layer by layer, then read
a verdict with its evidence (the lecture's "evidence based debugging when
the model is not learning").

Switch them on with ``Trainer(model, ..., diagnostics=True)``,
``diagnostics=Diagnostics(every=k)`` (measure every k-th step) or
``callbacks=[Diagnostics()]``. Off, they cost nothing: no callback runs.
On, they only read the model, so the training trajectory is bit-identical
either way.

What is recorded
----------------
``history.diagnostics`` maps names to lists, all aligned with
``history.diagnostics["step"]``; ``i`` is the layer's index in
``model.layers`` and ``history.meta["layers"]`` names each layer:

==================  ============================================================
``step``            t, the optimizer step measured (1-based, as ``logs["step"]``)
``epoch``           the epoch (0-based) step t belongs to
``input_rms``       sqrt(mean x²) of the step's input batch (standardised
                    features give about 1)
``grad_norm.i``     ‖g⁽ⁱ⁾‖, g the gradient the optimizer applies to the
                    parameters of layer i (after L2 and clipping;
                    ``history.steps["grad_norm.i"]`` is the pre-clip norm,
                    recorded at every step even without diagnostics)
``weight_norm.i``   ‖w⁽ⁱ⁾‖ before the update of step t
``update_ratio.i``  ‖Δw⁽ⁱ⁾‖ / ‖w⁽ⁱ⁾‖ with Δw = w^[t] - w^[t-1] (≈ 1e-3 is healthy)
``act_mean.i``      mean of the output h⁽ⁱ⁾ of layer i over the batch and units
``act_std.i``       its standard deviation (the lecture's rule of thumb, section
                    8: E h⁽ˡ⁾ ≈ 0 and Var h⁽ˡ⁾ about the same in every layer;
                    NaN for an output of one value)
``dead_fraction.i`` ReLU layers: the fraction of units j with h_j ≤ 0 for
                    every sample of the batch (never active: no gradient
                    passes; LeakyReLU's negative side still passes α)
``bn_mean.i``       BatchNorm layers: (1/n) Σ_j μ_j, the batch means μ_j of the
``bn_var.i``        last training batch averaged over the n features, and the
                    same for the biased batch variances σ²_j
==================  ============================================================

Verdicts
--------
``diagnose(history)`` returns the problems it finds as ``Verdict``s;
``history.report()`` and ``python -m nnc diagnose RUN.json`` print them.
A "window" is the first or last ``WINDOW_FRACTION`` of the steps (at least
one step); its loss is the mean of the mini-batch losses in it.

- **learning rate too large** — the loss became NaN/inf; or the epoch loss
  rose ``LOSS_RISE_EPOCHS`` epochs in a row by more than
  ``LOSS_RISE_MIN_RELATIVE`` of its value in all while the validation loss
  was not at its best (without validation data: by more than
  ``LOSS_RISE_UNCHECKED_RELATIVE``, also when the run learned (the epoch
  loss fell by ``LEARNING_DECREASE``) and ended within ``NEAR_BEST`` of its
  best validation loss); or the last window's loss is
  more than ``LOSS_GROWTH_FACTOR`` × the first window's; or one mini-batch
  loss spiked above ``LOSS_SPIKE_FACTOR`` × the start, the mean of the first
  ``SPIKE_START_STEPS`` losses (the
  lecture's "violent oscillations"); or the median update/weight ratio
  exceeds ``FAST_UPDATE_RATIO``.
- **exploding gradients** — the global gradient norm became NaN/inf, or its
  largest value exceeds ``EXPLODING_GRAD_GROWTH`` × its median over the
  first window.
- **vanishing gradients** — over the last window, the median gradient norm
  of the first layer with parameters is below ``VANISHING_GRAD_RATIO`` × that
  of the last one (above 1/``VANISHING_GRAD_RATIO``: exploding across depth).
- **learning too slow** — the median update/weight ratio (median over steps,
  then over layers) is below ``SLOW_UPDATE_RATIO`` (not reported when the
  learning rate was found too large or ReLU units dead: their updates are
  small for that reason).
- **exploding / vanishing activations** — in a network of three Dense layers
  or more, at the first measured step, the std of the last Dense layer's
  outputs is more than
  ``ACTIVATION_DEPTH_RATIO`` × (or below 1/``ACTIVATION_DEPTH_RATIO`` of)
  the first Dense layer's: the initial weights break the lecture's rule
  that the variance stays the same in every layer (with unscaled inputs
  from the second Dense layer on; not judged with batch-norm or dropout,
  nor when dead ReLU units stop the signal or a layer's output is one
  value: a batch of one through one output has no spread).
- **dead ReLU units** — at the last measurement, and at every one since some
  step, at least ``DEAD_RELU_FRACTION`` of a ReLU layer's units are dead.
- **unscaled inputs** — the median ``input_rms`` (without diagnostics: the
  training data's, ``meta["input_rms"]``, which every fit records) exceeds
  ``INPUT_RMS_LIMIT`` (not reported when a BatchNorm, which standardises,
  comes before the first Dense). ``fit`` warns about it too.
- **unscaled targets** — a regression's targets have a root-mean-square
  (``meta["target_rms"]``) above ``TARGET_RMS_LIMIT``; ``fit`` warns too.
- **loss not decreasing** — the last window's loss is not below
  (1 - ``MIN_RELATIVE_DECREASE``) × the first window's.
- **plateau** — the loss did decrease, but over the last ``PLATEAU_EPOCHS``
  epochs the epoch loss changed by less than ``PLATEAU_RELATIVE_CHANGE`` of
  its value while still above ``PLATEAU_LOSS_FRACTION`` × the first epoch's.

The update/weight and dead-unit checks need diagnostics on; the others use
the losses and gradient norms every History records.
"""
import json
import math
import sys
from collections import namedtuple

import numpy as np

from nnc._validation import check_int, int_setting
from nnc.callbacks import Callback
from nnc.history import History, check_history, per_layer_records
from nnc.layers import BatchNorm, Dense, ReLU

#: share of the steps averaged for the "first" and "last" loss windows
WINDOW_FRACTION = 0.1
#: the epoch loss rising this many epochs in a row: learning rate too large
LOSS_RISE_EPOCHS = 3
#: last-window loss above this multiple of the first-window loss: diverging
LOSS_GROWTH_FACTOR = 1.5
#: a mini-batch loss above this multiple of the start (the mean loss of the
#: first ``SPIKE_START_STEPS`` steps): a spike
LOSS_SPIKE_FACTOR = 3.0
SPIKE_START_STEPS = 3
#: the loss must fall by at least this fraction of its start, else "not decreasing"
MIN_RELATIVE_DECREASE = 0.01
#: epochs over which a plateau is judged
PLATEAU_EPOCHS = 3
#: relative change of the epoch loss below which it counts as flat
PLATEAU_RELATIVE_CHANGE = 0.01
#: a flat loss is a plateau only while above this fraction of the first epoch's
PLATEAU_LOSS_FRACTION = 0.25
#: gradient norm above this multiple of its early median: exploding
EXPLODING_GRAD_GROWTH = 100.0
#: first-layer gradient norm below this fraction of the last layer's: vanishing
VANISHING_GRAD_RATIO = 1e-3
#: median ‖Δw‖/‖w‖ below this: learning too slow (healthy is about 1e-3)
SLOW_UPDATE_RATIO = 1e-5
#: median ‖Δw‖/‖w‖ above this: steps too large for the weights
FAST_UPDATE_RATIO = 0.1
#: share of dead units in a ReLU layer that is reported
DEAD_RELU_FRACTION = 0.5
#: a rise of the epoch loss over LOSS_RISE_EPOCHS epochs smaller than this
#: fraction of it is noise of the mini-batch gradients, not a learning rate
#: too large (the second: when no validation loss was recorded to confirm it)
LOSS_RISE_MIN_RELATIVE = 0.01
LOSS_RISE_UNCHECKED_RELATIVE = 0.05
#: a run whose epoch loss fell by this fraction and whose validation loss
#: ended within NEAR_BEST of its best needs the larger rise
LEARNING_DECREASE = 0.2
NEAR_BEST = 0.05
#: the std of the Dense outputs growing (or shrinking) by more than this
#: factor from the first Dense layer to the last, at the first measured step:
#: the initialisation breaks the lecture's Var(h⁽ˡ⁻¹⁾) = Var(h⁽ˡ⁾)
ACTIVATION_DEPTH_RATIO = 10.0
#: input batches with a root-mean-square above this: features not standardised
INPUT_RMS_LIMIT = 10.0
#: regression targets with a root-mean-square above this: targets not standardised
TARGET_RMS_LIMIT = 10.0
#: rows and values data_rms looks at (rows drawn at random, the same each
#: time): a data set's scale in about a millisecond, whatever its size
SCALE_SAMPLE_ROWS = 1024
SCALE_SAMPLE_VALUES = 1 << 18

#: what to do about unscaled features and targets (fit's warning, the report's advice)
STANDARDISE_FEATURES = ("standardise the features with the training set's statistics, "
                        "X = (X - mean) / std (nnc.Standardiser().fit(X_train), or "
                        "scikit-learn's StandardScaler)")
STANDARDISE_TARGETS = ("standardise y with the training set's mean and std and invert the "
                       "predictions (nnc.Standardiser().fit(y_train) and its inverse_transform, "
                       "or scikit-learn's TransformedTargetRegressor(transformer="
                       "StandardScaler()))")

Verdict = namedtuple("Verdict", "kind message advice")
Verdict.__doc__ = """One problem found by ``diagnose``: ``kind`` (a short id such as
``"lr_too_large"``), ``message`` (what was seen, with numbers) and
``advice`` (what to try)."""

KINDS = ("lr_too_large", "exploding_gradients", "vanishing_gradients", "slow_learning",
         "dead_relu", "not_decreasing", "plateau", "unscaled_inputs", "unscaled_targets",
         "exploding_activations", "vanishing_activations")


def data_rms(a):
    """sqrt(mean a²) over a sample of the rows of ``a`` (at most
    SCALE_SAMPLE_ROWS, and SCALE_SAMPLE_VALUES values); about 1 for
    standardised data."""
    a = np.asarray(a)
    if a.size == 0:
        return math.nan
    if a.ndim:
        row_size = max(1, a.size // a.shape[0])
        rows = max(1, min(SCALE_SAMPLE_ROWS, SCALE_SAMPLE_VALUES // row_size, a.shape[0]))
        if rows < a.shape[0]:  # at random: a stride could fall in step with a pattern
            picked = np.random.default_rng(0).choice(a.shape[0], rows, replace=False)
            a = a[np.sort(picked)]
    sample = np.asarray(a, dtype=np.float64)
    largest = float(np.max(np.abs(sample)))
    if not 0 < largest < math.inf:
        return largest  # 0, or not finite
    # scaled by the largest first: finite values beyond 1e154 would square to inf
    return largest * math.sqrt(float(np.mean(np.square(sample / largest))))


def scale_warnings(trainer, X, y):
    """What is far from unit scale in a fit's data, as messages (recorded in
    ``history.meta["input_rms"]``/``["target_rms"]`` for ``diagnose``)."""
    meta = trainer.history.meta
    x_rms = data_rms(X)
    y_rms = None if trainer.loss.classification else data_rms(y)
    standardised = input_standardised(trainer.model.layers)
    meta.update(input_rms=x_rms, input_standardised=standardised)
    if y_rms is not None:
        meta["target_rms"] = y_rms
    problems = []
    if x_rms > INPUT_RMS_LIMIT and not standardised:
        problems.append(f"X has a root-mean-square of {_fmt(x_rms)} (standardised features "
                        "give about 1): features this far from unit scale make the first "
                        "steps huge (ReLU units die, the loss jumps); " + STANDARDISE_FEATURES)
    if y_rms is not None and y_rms > TARGET_RMS_LIMIT:
        problems.append(f"y has a root-mean-square of {_fmt(y_rms)} (standardised targets give "
                        "about 1): the output layer must grow outputs that large, and the "
                        "loss grows with that scale squared, its gradients with the scale, so "
                        "learning rates that suit standardised problems misbehave; "
                        + STANDARDISE_TARGETS)
    return problems


# --- recording ----------------------------------------------------------------
class Diagnostics(Callback):
    """Per-layer statistics every ``every`` steps into ``history.diagnostics``
    (see the module docstring for the names and formulas).

    Measured at ``on_before_update`` (gradients final, weights not yet
    updated, the layers' outputs still those of this step's forward pass)
    and ``on_step_end`` (the update Δw). Only reads the model.
    """

    every = int_setting(low=1)

    def __init__(self, every=1):
        self.every = every
        self._model = self._history = None
        self._pending = False
        self._epoch = 0

    def __repr__(self):
        return f"Diagnostics(every={self.every})"

    # set-up, once per model
    def _bind(self, trainer):
        model = trainer.model
        if self._model is not model:
            self._model = model
            self._sum_squares = np.zeros(len(model.param_offsets) - 1)
            self._before = np.empty_like(model.flat_params)
            self._layer_params = [
                (i, [p for p, owner in enumerate(model.param_layers) if owner == i])
                for i in sorted(set(model.param_layers))]
            self._weight_norms = {}
            self._relu = {i for i, layer in enumerate(model.layers) if isinstance(layer, ReLU)}
            self._batchnorm = {i for i, layer in enumerate(model.layers)
                               if hasattr(layer, "batch_mean")}
        history = self._history = trainer.history
        if not hasattr(history, "diagnostics"):  # a History from before diagnostics
            history.diagnostics = {}  # (its meta reads {}: what fit recorded there stays)
        names = ["step", "epoch", "input_rms"]
        for i, _ in self._layer_params:
            names += [f"grad_norm.{i}", f"weight_norm.{i}", f"update_ratio.{i}"]
        for i in range(len(model.layers)):
            names += [f"act_mean.{i}", f"act_std.{i}"]
            if i in self._relu:
                names.append(f"dead_fraction.{i}")
            if i in self._batchnorm:
                names += [f"bn_mean.{i}", f"bn_var.{i}"]
        measured = len(history.diagnostics.get("step", []))
        for name in names:  # (a record new to a resumed history: NaN where it was not kept)
            history.diagnostics.setdefault(name, [math.nan] * measured)
        # what on_before_update records (update_ratio comes at on_step_end)
        self._measured = [name for name in names if not name.startswith("update_ratio.")]
        history.meta.setdefault("layers", [type(layer).__name__ for layer in model.layers])
        history.meta.setdefault("optimizer", repr(trainer.optimizer))
        history.meta["diagnostics_every"] = self.every

    def on_train_begin(self, trainer):
        self._bind(trainer)
        if self._pending:  # an earlier fit stopped between the two hooks
            self._close_update_ratios(trainer.history.diagnostics, None)
        self._epoch = len(trainer.history.epochs.get("loss", []))

    def on_epoch_begin(self, trainer, epoch):
        self._epoch = epoch

    def on_before_update(self, trainer):
        if trainer.history is not self._history:  # replaced by a callback mid-fit
            self._pending = False  # (its measurement went with the old History)
            self._bind(trainer)
        d = trainer.history.diagnostics
        if self._pending:  # the last measured step never reached on_step_end
            self._close_update_ratios(d, None)
        if (trainer.step_count + 1) % self.every:
            return
        model = trainer.model
        backend = model.backend
        d["step"].append(trainer.step_count + 1)
        d["epoch"].append(self._epoch)
        self._per_layer_norms(backend, model.flat_grads, d, "grad_norm")
        self._weight_norms = self._per_layer_norms(backend, model.flat_params, d, "weight_norm")
        np.copyto(self._before, model.flat_params)
        self._pending = True
        self._record_activations(model, d)

    def on_step_end(self, trainer, logs):
        if not self._pending:
            return
        delta = self._before
        np.subtract(trainer.model.flat_params, delta, out=delta)
        self._close_update_ratios(trainer.history.diagnostics, delta)

    def on_train_end(self, trainer):
        if self._pending:
            self._close_update_ratios(trainer.history.diagnostics, None)

    def on_step_refused(self, trainer):
        """The trainer took the step back: forget its measurement."""
        if self._pending:
            d = trainer.history.diagnostics
            for name in self._measured:
                d[name].pop()
            self._pending = False

    # the measurements
    def _per_layer_norms(self, backend, flat, d, name):
        """‖x⁽ⁱ⁾‖ for every layer i from one pass over a flat buffer."""
        sums = self._sum_squares
        backend.segment_sum_of_squares(flat, self._model.param_offsets, sums)
        norms = {}
        for i, positions in self._layer_params:
            norms[i] = math.sqrt(sum(float(sums[p]) for p in positions))
            if d is not None:
                d[f"{name}.{i}"].append(norms[i])
        return norms

    def _close_update_ratios(self, d, delta):
        """update_ratio.i = ‖Δw⁽ⁱ⁾‖ / ‖w⁽ⁱ⁾‖ (NaN when the update never came)."""
        self._pending = False
        if delta is None:
            for i, _ in self._layer_params:
                d[f"update_ratio.{i}"].append(math.nan)
            return
        steps = self._per_layer_norms(self._model.backend, delta, None, "")
        for i, _ in self._layer_params:
            w = self._weight_norms[i]
            ratio = steps[i] / w if w > 0 else (math.inf if steps[i] > 0 else 0.0)
            d[f"update_ratio.{i}"].append(ratio)

    def _record_activations(self, model, d):
        x = getattr(model, "_last_input", None)  # this step's batch
        d["input_rms"].append(math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
                              if x is not None and x.size else math.nan)
        previous = None
        for i, layer in enumerate(model.layers):
            out = layer.last_output
            if out is None:  # a pass-through (dropout with p = 0): the input
                out = previous
            previous = out
            if out is None or out.size == 0:
                mean = std = math.nan
            else:  # (one value has no spread: no std to compare across layers)
                mean = float(out.mean(dtype=np.float64))
                std = float(out.std(dtype=np.float64)) if out.size > 1 else math.nan
            d[f"act_mean.{i}"].append(mean)
            d[f"act_std.{i}"].append(std)
            if i in self._relu:
                dead = math.nan
                if out is not None and out.ndim == 2 and out.shape[1]:
                    active = np.count_nonzero(out.max(axis=0) > 0)
                    dead = (out.shape[1] - active) / out.shape[1]
                d[f"dead_fraction.{i}"].append(dead)
            if i in self._batchnorm:
                d[f"bn_mean.{i}"].append(float(layer.batch_mean.mean(dtype=np.float64)))
                d[f"bn_var.{i}"].append(float(layer.batch_var.mean(dtype=np.float64)))


def as_callback(diagnostics):
    """The ``Trainer(diagnostics=...)`` argument as a callback or None:
    False/None → None, True → ``Diagnostics()``, a positive int k →
    ``Diagnostics(every=k)``, a ``Diagnostics`` → itself."""
    if diagnostics is None or diagnostics is False:
        return None
    if isinstance(diagnostics, np.bool_):
        diagnostics = bool(diagnostics)
    if diagnostics is False:
        return None
    if diagnostics is True:
        return Diagnostics()
    if isinstance(diagnostics, Diagnostics):
        return diagnostics
    if isinstance(diagnostics, (int, np.integer)) and not isinstance(diagnostics, bool):
        return Diagnostics(every=check_int(diagnostics, "diagnostics", low=1))
    raise TypeError("diagnostics must be True, False, a positive int (measure every k "
                    f"steps) or nnc.diagnostics.Diagnostics(every=k), got {diagnostics!r}")


# --- verdicts -----------------------------------------------------------------
def _finite(values):
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def _window(n):
    return max(1, int(round(WINDOW_FRACTION * n)))


def _layer_name(history, i):
    layers = history.meta.get("layers")
    if layers and 0 <= i < len(layers):
        return f"layer {i} ({layers[i]})"
    return f"layer {i}"


def _fmt(x):
    """A number for a message: 3 significant digits, scientific when tiny or huge
    ("unknown" for None: a history without that record)."""
    if x is None:
        return "unknown"
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4):
        return f"{x:.1e}"
    return f"{x:.3g}"


def _lr_at(history, step):
    lrs = history.steps.get("lr", [])
    return lrs[min(step, len(lrs) - 1)] if lrs else None


def _epoch_of_step(history, step):
    """Epoch (0-based) of a 0-based step index, from the step/epoch counts."""
    n_steps, n_epochs = len(history.steps.get("loss", [])), len(history.epochs.get("loss", []))
    if not n_epochs:
        return 0
    return min(n_epochs - 1, step * n_epochs // max(n_steps, 1))


def _check_lr_too_large(history, verdicts):
    losses = history.steps.get("loss", [])
    for t, loss in enumerate(losses):
        if not math.isfinite(loss):
            lr = _lr_at(history, t)
            verdicts.append(Verdict(
                "lr_too_large",
                f"the loss became {loss} at step {t + 1} (learning rate {_fmt(lr)}): "
                "training diverged",
                "lower the learning rate (try 3-10x smaller) or clip the gradients "
                "(Trainer(clip_norm=...))"))
            return True
    epoch_losses = history.epochs.get("loss", [])
    val = history.epochs.get("val_loss", [])
    run, longest, end = 0, 0, 0
    held_out = _finite(val)
    # a run that learned and ends near its best held-out loss: only a large rise counts
    learned = held_out.size and len(epoch_losses) >= 2 \
        and epoch_losses[-1] < (1 - LEARNING_DECREASE) * epoch_losses[0] \
        and held_out[-1] <= (1 + NEAR_BEST) * held_out.min()
    for e in range(1, len(epoch_losses)):
        run = run + 1 if epoch_losses[e] > epoch_losses[e - 1] else 0
        rise = epoch_losses[e] - epoch_losses[e - run]
        # the held-out loss decides: still at its best over those epochs, the
        # rise is noise of the training loss; when it is not recorded, only a
        # larger rise counts
        held_out = [v for v in val[e - run:e + 1] if math.isfinite(v)] if len(val) > e else []
        if held_out and math.isfinite(val[e]) and val[e] <= min(held_out):
            continue
        least = LOSS_RISE_MIN_RELATIVE if held_out and not learned \
            else LOSS_RISE_UNCHECKED_RELATIVE
        if run > longest and rise > least * abs(epoch_losses[e - run]):
            longest, end = run, e
    if longest >= LOSS_RISE_EPOCHS:
        start = end - longest
        shown = [_fmt(v) for v in epoch_losses[start:end + 1]]
        if len(shown) > 5:
            shown = shown[:2] + ["..."] + shown[-2:]
        values = " -> ".join(shown)
        steps_per_epoch = max(1, len(losses) // max(len(epoch_losses), 1))
        lr = _lr_at(history, (end + 1) * steps_per_epoch - 1)
        verdicts.append(Verdict(
            "lr_too_large",
            f"the loss rose for {longest} epochs in a row (epochs {start + 1}-{end + 1}: "
            f"{values}): the learning rate {_fmt(lr)} is likely too large",
            "lower the learning rate (try 3-10x smaller) or decay it (nnc.schedules)"))
        return True
    if len(losses) >= 2:
        w = _window(len(losses))
        first, last = float(np.mean(losses[:w])), float(np.mean(losses[-w:]))
        if last > LOSS_GROWTH_FACTOR * first:
            verdicts.append(Verdict(
                "lr_too_large",
                f"the loss grew from {_fmt(first)} to {_fmt(last)} over {len(losses)} steps: "
                f"the learning rate {_fmt(_lr_at(history, len(losses) - 1))} is likely too large",
                "lower the learning rate (try 3-10x smaller)"))
            return True
        # against the first steps' loss, not the first window's mean: a run that
        # learns fast has a window mean far below where it started
        start = float(np.mean(losses[:min(SPIKE_START_STEPS, len(losses))]))
        peak = int(np.argmax(losses))
        if start > 0 and losses[peak] > LOSS_SPIKE_FACTOR * start:
            verdicts.append(Verdict(
                "lr_too_large",
                f"the loss spiked to {_fmt(losses[peak])} at step {peak + 1}, "
                f"{_fmt(losses[peak] / start)}x its start ({_fmt(start)}): the learning rate "
                f"{_fmt(_lr_at(history, peak))} is likely too large",
                "lower the learning rate (try 3-10x smaller), or warm it up "
                "(nnc.schedules.Warmup)"))
            return True
    return False


def _median_update_ratios(history):
    """{layer: median ‖Δw‖/‖w‖ over the measured steps (finite values only)}."""
    ratios = {}
    for i, values in per_layer_records(getattr(history, "diagnostics", {}), "update_ratio"):
        finite = _finite(values)
        if finite.size:
            ratios[i] = float(np.median(finite))
    return ratios


def _check_update_ratios(history, verdicts, lr_flagged):
    ratios = _median_update_ratios(history)
    if not ratios:
        return
    median = float(np.median(list(ratios.values())))
    lr = _lr_at(history, len(history.steps.get("lr", [])) - 1)
    if median < SLOW_UPDATE_RATIO:
        if lr_flagged or any(v.kind == "dead_relu" for v in verdicts):
            return  # small updates of a diverged run or of dead units: not a small rate
        verdicts.append(Verdict(
            "slow_learning",
            f"update/weight ratio ||dw||/||w|| is {_fmt(median)} (median over layers and "
            f"steps; healthy is about 1e-3): learning is too slow at learning rate {_fmt(lr)}",
            "raise the learning rate, or use an adaptive optimizer (nnc.Adam)"))
    elif median > FAST_UPDATE_RATIO and not lr_flagged:
        verdicts.append(Verdict(
            "lr_too_large",
            f"update/weight ratio ||dw||/||w|| is {_fmt(median)} (median over layers and "
            f"steps; healthy is about 1e-3): each step changes the weights by "
            f"{100 * median:.0f} %; the learning rate {_fmt(lr)} is likely too large",
            "lower the learning rate"))


def _check_exploding(history, verdicts):
    norms = history.steps.get("grad_norm", [])
    for t, norm in enumerate(norms):
        if not math.isfinite(norm):
            verdicts.append(Verdict(
                "exploding_gradients",
                f"the gradient norm became {norm} at step {t + 1}: exploding gradients",
                "clip the gradients (Trainer(clip_norm=...)), lower the learning rate, "
                "check the initialisation"))
            return
    if len(norms) < 2:
        return
    early = float(np.median(norms[:_window(len(norms))]))
    peak = int(np.argmax(norms))
    if early > 0 and norms[peak] > EXPLODING_GRAD_GROWTH * early:
        verdicts.append(Verdict(
            "exploding_gradients",
            f"the gradient norm reached {_fmt(norms[peak])} at step {peak + 1}, "
            f"{_fmt(norms[peak] / early)}x its median over the first {_window(len(norms))} "
            f"steps ({_fmt(early)}): exploding gradients",
            "clip the gradients (Trainer(clip_norm=...)) or lower the learning rate"))


def _check_depth(history, verdicts):
    layers = per_layer_records(history.steps, "grad_norm")
    if len(layers) < 2:
        return
    (first, first_norms), (last, last_norms) = layers[0], layers[-1]
    n = len(first_norms)
    if n == 0:
        return
    w = _window(n)
    a = _finite(first_norms[-w:])
    b = _finite(last_norms[-w:])
    if not a.size or not b.size:
        return
    a, b = float(np.median(a)), float(np.median(b))
    if b > 0 and a < VANISHING_GRAD_RATIO * b:
        if a == 0:
            seen = (f"no gradient reaches {_layer_name(history, first)} (norm 0, "
                    f"{_layer_name(history, last)}: {_fmt(b)})")
        else:
            seen = (f"the gradient norm of {_layer_name(history, first)} is {_fmt(a / b)} "
                    f"of {_layer_name(history, last)}'s ({_fmt(a)} vs {_fmt(b)})")
        dead = _dead_layers(history, first, last)
        names = history.meta.get("layers") or []
        if dead:  # the gradient stops at units that never fire, not in saturation
            cause = (f"the dead ReLU units of {', '.join(_layer_name(history, i) for i in dead)} "
                     "pass no gradient back")
            advice = ("lower the learning rate (a step too large kills ReLU units), He "
                      "initialisation, LeakyReLU or batch-norm")
        else:
            cause = "vanishing gradients"
            saturating = [n for n in names if n in ("Sigmoid", "Tanh")]
            advice = ("use ReLU instead of sigmoid/tanh, " if saturating or not names else "") \
                + "He/Xavier initialisation, batch-norm, or fewer layers"
        verdicts.append(Verdict("vanishing_gradients", f"{seen}: {cause}", advice))
    elif a > 0 and b == 0:  # the last layer's gradient is its input times dY
        verdicts.append(Verdict(
            "vanishing_gradients",
            f"no gradient reaches {_layer_name(history, last)} (norm 0, "
            f"{_layer_name(history, first)}: {_fmt(a)}): its inputs are all zero",
            "check the initialisation of the layers before it (init='zeros' makes every unit "
            "output the same; use He/Xavier)"))
    elif a > 0 and b < VANISHING_GRAD_RATIO * a:
        verdicts.append(Verdict(
            "exploding_gradients",
            f"the gradient norm of {_layer_name(history, first)} is {_fmt(a / b)}x "
            f"{_layer_name(history, last)}'s ({_fmt(a)} vs {_fmt(b)}): gradients explode "
            "towards the input",
            "check the initialisation (He/Xavier), add batch-norm, clip the gradients"))


def _check_activation_scale(history, verdicts):
    """The lecture's rule of thumb for initialisation (section 8): the
    variance of the activations stays the same across the layers. Judged on
    the Dense outputs z at the first measured step (the initial weights,
    unless measuring started later), from the first Dense layer to the
    last (from the second with unscaled inputs: the first one's scale is
    then the data's); not with batch-norm, which rescales them, nor with
    dropout, whose training-mode scaling by 1/(1-p) raises the variance at
    every dropout layer (measured in training)."""
    names = history.meta.get("layers") or []
    d = getattr(history, "diagnostics", {})
    if not names or "BatchNorm" in names or "Dropout" in names or not d.get("step"):
        return
    stds = [(i, values[0]) for i, values in per_layer_records(d, "act_std")
            if i < len(names) and names[i] == "Dense" and values and math.isfinite(values[0])]
    if any(v.kind == "unscaled_inputs" for v in verdicts):
        stds = stds[1:]
    if len(stds) < 3:  # a rule about depth: three Dense layers compared at least
        return
    (first, a), (last, b) = stds[0], stds[-1]
    if a == 0:  # (no ratio to the first: all its outputs equal)
        return
    if _dead_layers(history, first, last, at=0):
        return  # dead units stop the signal: the dead-ReLU verdict says so
    if b > ACTIVATION_DEPTH_RATIO * a:
        kind, change = "exploding_activations", f"grows {_fmt(b / a)}x"
    elif b < a / ACTIVATION_DEPTH_RATIO:
        kind, change = "vanishing_activations", f"shrinks to {_fmt(b / a)} of it"
    else:
        return
    verdicts.append(Verdict(
        kind,
        f"at step {d['step'][0]} the outputs z of {_layer_name(history, first)} have a std of "
        f"{_fmt(a)} and those of {_layer_name(history, last)} {_fmt(b)}: the scale {change} "
        f"over {len(stds)} Dense layers, where the initialisation should keep the variance "
        "the same in every layer",
        "initialise by the variance rule: init='he_normal' before ReLU, 'lecun_normal' or "
        "'glorot_normal' before tanh/sigmoid (init=None picks these), or add batch-norm"
        + ("; Xavier/LeCun halve the variance at every ReLU, He keeps it"
           if kind == "vanishing_activations" and any("ReLU" in n for n in names) else "")))


def _dead_layers(history, first, last, at=-1):
    """ReLU layers between ``first`` and ``last`` whose units were (nearly)
    all dead at measurement ``at`` (the last by default)."""
    dead = []
    for i, values in per_layer_records(getattr(history, "diagnostics", {}), "dead_fraction"):
        if values and first < i < last and math.isfinite(values[at]) \
                and values[at] >= DEAD_RELU_FRACTION:
            dead.append(i)
    return dead


def _check_dead(history, verdicts):
    d = getattr(history, "diagnostics", {})
    epochs = d.get("epoch", [])
    dead = per_layer_records(d, "dead_fraction")
    for i, values in dead:
        if not values or not math.isfinite(values[-1]) or values[-1] < DEAD_RELU_FRACTION:
            continue
        since = len(values) - 1
        while since > 0 and values[since - 1] >= DEAD_RELU_FRACTION:
            since -= 1
        measured = d.get("step", [])
        when = (f"; at least {100 * DEAD_RELU_FRACTION:.0f} % since step {measured[since]} "
                f"(epoch {epochs[since] + 1})" if since < min(len(measured), len(epochs))
                else "")
        verdicts.append(Verdict(
            "dead_relu",
            f"{_layer_name(history, i)}: {100 * values[-1]:.0f} % of the ReLU units are dead "
            f"(never active over a batch) at the end{when}",
            "lower the learning rate, use He initialisation, LeakyReLU, or batch-norm"))


def input_standardised(layers):
    """Whether a BatchNorm comes before the first Dense (it standardises the
    input): ``layers`` the model's layers, or their class names (a History's
    ``meta["layers"]``)."""
    for layer in layers:
        if isinstance(layer, Dense) or layer == "Dense":
            return False
        if isinstance(layer, BatchNorm) or layer == "BatchNorm":
            return True
    return False


def _meta_number(history, key):
    """history.meta[key] if it is a finite number (files may hold anything), else None."""
    value = history.meta.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _check_data_scale(history, verdicts):
    rms = _finite(getattr(history, "diagnostics", {}).get("input_rms", []))
    layers = history.meta.get("layers") or []
    x_rms = float(np.median(rms)) if rms.size else _meta_number(history, "input_rms")
    where = "median over the measured steps" if rms.size else "over the training data"
    standardised = history.meta.get("input_standardised")
    if not isinstance(standardised, bool):  # (a History from before it was recorded)
        standardised = input_standardised(layers)
    if x_rms is not None and x_rms > INPUT_RMS_LIMIT and not standardised:
        verdicts.append(Verdict(
            "unscaled_inputs",
            f"the inputs have a root-mean-square of {_fmt(x_rms)} ({where}; standardised "
            "features give about 1): the features are far from unit scale, so the first "
            "layer's outputs and gradients are as large, and one learning rate cannot "
            "suit every weight",
            STANDARDISE_FEATURES))
    y_rms = _meta_number(history, "target_rms")
    if y_rms is not None and y_rms > TARGET_RMS_LIMIT:
        verdicts.append(Verdict(
            "unscaled_targets",
            f"the regression targets have a root-mean-square of {_fmt(y_rms)} "
            "(standardised targets give about 1): the network must grow outputs that "
            "large, and the loss grows with that scale squared, its gradients with the scale",
            STANDARDISE_TARGETS))


def _check_progress(history, verdicts):
    losses = _finite(history.steps.get("loss", []))
    if len(losses) < 2:
        return
    w = _window(len(losses))
    first, last = float(np.mean(losses[:w])), float(np.mean(losses[-w:]))
    if not last < (1 - MIN_RELATIVE_DECREASE) * first:
        change = 100 * (last - first) / first if first else 0.0
        verdicts.append(Verdict(
            "not_decreasing",
            f"the loss is not decreasing: {_fmt(first)} over the first steps, {_fmt(last)} "
            f"over the last ({change:+.1f} % in {len(losses)} steps)",
            "check the learning rate (too small or too large), the labels, dead units "
            "and the gradient norms"))
        return
    epoch_losses = history.epochs.get("loss", [])
    if len(epoch_losses) > PLATEAU_EPOCHS:
        before, now = epoch_losses[-1 - PLATEAU_EPOCHS], epoch_losses[-1]
        flat = abs(before - now) < PLATEAU_RELATIVE_CHANGE * abs(before)
        if flat and epoch_losses[0] > 0 and now > PLATEAU_LOSS_FRACTION * epoch_losses[0]:
            since = len(epoch_losses) - 1 - PLATEAU_EPOCHS
            while since > 0 and abs(epoch_losses[since - 1] - now) < \
                    PLATEAU_RELATIVE_CHANGE * abs(epoch_losses[since - 1]):
                since -= 1
            verdicts.append(Verdict(
                "plateau",
                f"the loss has plateaued at {_fmt(now)} since epoch {since + 1} "
                f"(changed < {100 * PLATEAU_RELATIVE_CHANGE:g} % over the last "
                f"{PLATEAU_EPOCHS} epochs), still {100 * now / epoch_losses[0]:.0f} % of "
                "the first epoch's loss",
                "a saddle or flat region: try " + ("" if "Adam" in str(
                    history.meta.get("optimizer", "")) else "momentum or Adam, ")
                + "a larger model or a learning-rate change; if none of them lowers it, it "
                "may be the noise floor of the data"))


def diagnose(history):
    """The problems visible in a History, as a list of ``Verdict``s
    (empty for a healthy run). Thresholds: the module's constants."""
    return _verdicts(_checked(history))


def _checked(history):
    """A checked copy of ``history``: numbers where nnc reads them."""
    return check_history(history, "diagnosed")


def _verdicts(history):
    verdicts = []
    with np.errstate(all="ignore"):  # (means of huge losses may overflow: inf is the answer)
        _diagnose(history, verdicts)
    return verdicts


def _diagnose(history, verdicts):
    _check_data_scale(history, verdicts)  # first: the cause of much of the rest
    lr_flagged = _check_lr_too_large(history, verdicts)
    _check_exploding(history, verdicts)
    _check_depth(history, verdicts)
    _check_activation_scale(history, verdicts)
    _check_dead(history, verdicts)
    _check_update_ratios(history, verdicts, lr_flagged)
    if not lr_flagged:
        _check_progress(history, verdicts)


def report(history):
    """A short plain-text verdict with its evidence."""
    history = _checked(history)
    return _report(history, _verdicts(history))


def _report(history, verdicts):
    """``report``'s text for a checked History and its verdicts."""
    losses = history.steps.get("loss", [])
    n_epochs = len(history.epochs.get("loss", []))
    if not losses:
        return "nnc diagnosis: no training steps recorded, nothing to diagnose."
    lrs = history.steps.get("lr", [])
    epoch_losses = history.epochs.get("loss", [])
    shown = epoch_losses if epoch_losses else losses  # epoch means: a batch's loss is noisy
    lines = [f"nnc diagnosis: {len(losses)} steps, {n_epochs} epochs; "
             f"{'epoch ' if epoch_losses else ''}loss {_fmt(shown[0])} -> {_fmt(shown[-1])}"
             + (f"; learning rate {_fmt(lrs[0])}" if lrs else "")
             + (f" -> {_fmt(lrs[-1])}" if lrs and lrs[-1] != lrs[0] else "")]
    if not verdicts:
        lines.append("No problems found.")
    for number, verdict in enumerate(verdicts, start=1):
        lines.append(f"{number}. {verdict.message}")
        lines.append(f"   try: {verdict.advice}")
    if not getattr(history, "diagnostics", {}).get("step"):
        lines.append("(per-layer checks -- update/weight ratio, dead ReLU units -- need "
                     "Trainer(..., diagnostics=True))")
    return "\n".join(lines)


def diagnose_command(path, plot=None, out=None):
    """``python -m nnc diagnose RUN.json [--plot PNG]``: print the report of a
    History saved with ``history.save(path)``. Returns the exit status: 0 for
    a healthy run, 1 when problems were found."""
    from nnc.plotting import check_figure_path, check_plottable

    out = sys.stdout if out is None else out
    try:
        history = History.load(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the run {path!r}: {exc}") from None
    if plot:  # a plot that cannot be written or drawn fails before the report, not after
        try:
            plot = check_figure_path(plot, "--plot")  # (a bare name gets savefig.format's)
        except ImportError as exc:
            raise ValueError(f"--plot: {exc}") from None
    # checked once (what the plot draws, or what the report reads), diagnosed once
    history = check_plottable(history) if plot else _checked(history)
    verdicts = _verdicts(history)
    print(_report(history, verdicts), file=out)
    if plot:
        history.plot(path=plot)
        print(f"plot written to {plot}", file=out)
    return 1 if verdicts else 0
