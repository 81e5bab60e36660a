"""The NaN/Inf guard: stop training before a non-finite step is applied.

Exploding gradients (lecture, section 4: cliffs) end in overflow: the loss or
a gradient becomes ``inf`` or ``nan``, one more update writes it into every
weight, and the model is lost. ``Trainer(nan_guard=True)`` (the default)
checks, at every step *before* ``optimizer.step()``:

* the mini-batch loss is finite,
* the global gradient norm is finite (it is computed every step anyway for
  ``history.steps["grad_norm"]``; a single ``inf``/``nan`` anywhere in any
  gradient makes it non-finite), and
* ``lr * ‖g‖`` (with ``‖g‖`` after ``clip_norm``) is below the largest number
  of the model's dtype: for SGD that bounds every element of the update, so
  an update that would overflow the weights to ``inf`` is refused too, and
* for optimizers that keep squared gradients (RMSprop, Adam, Adagrad), the
  state can take ``‖g‖²`` (after clipping) without overflowing: a larger
  element would square to ``inf`` there and freeze its weight for good
  (m / inf = 0 at every later step); ``optimizer.can_take``.

These are comparisons of Python floats (and a finite check of the small
batch-norm statistics): no array is allocated. When one fails, the trainer
raises :class:`TrainingDiverged` naming the step, the layer whose gradient went non-finite first (in
back-propagation order, from the output towards the input) and what to try;
the weights are those of the last step that passed the check. Only on that
failure path are the layers inspected.

``nan_guard="warn"`` stops ``fit`` with a ``RuntimeWarning`` instead of the
exception (``fit`` returns the history so far); ``nan_guard=False`` turns the
guard off.
"""
import math

import numpy as np

GUARD_MODES = (True, False, "raise", "warn")


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or gradient (or an update that
    would overflow). Raised before the update, so the model keeps the weights
    of the last good step.

    Attributes: ``step`` (the index of the refused step, 0-based, equal to
    ``trainer.step_count``; the message counts steps and epochs from 1),
    ``epoch`` (0-based), ``layer`` (index of the
    layer whose gradient went non-finite first in back-propagation, or
    ``None``), ``loss``, ``grad_norm``, ``lr`` and ``layer_grad_norms``
    (``{layer index: norm}`` of the refused step).
    """

    def __init__(self, message, step=None, epoch=None, layer=None, loss=None, grad_norm=None,
                 lr=None, layer_grad_norms=None):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.layer = layer
        self.loss = loss
        self.grad_norm = grad_norm
        self.lr = lr
        self.layer_grad_norms = layer_grad_norms or {}


def check_guard_mode(nan_guard):
    """``True``/``"raise"``, ``"warn"`` or ``False``; returns the mode or None."""
    if isinstance(nan_guard, np.bool_):
        nan_guard = bool(nan_guard)
    if isinstance(nan_guard, str) or isinstance(nan_guard, bool):
        if nan_guard in GUARD_MODES:
            return {True: "raise", False: None}.get(nan_guard, nan_guard)
    raise ValueError(f"nan_guard must be True, False, 'raise' or 'warn', got {nan_guard!r}")


def update_limit(dtype):
    """The largest finite number of ``dtype``: an update ``lr * ‖g‖`` at or
    above it could overflow a weight."""
    return float(np.finfo(dtype).max)


def largest_gradient(trainer, norm):
    """A bound of every gradient element after clipping: the (clipped) norm,
    or ``clip_value`` when smaller."""
    clipped = min(norm, trainer.clip_norm or norm)
    return min(clipped, trainer.clip_value or clipped)


def step_is_safe(trainer, loss, norm, lr):
    """The checks of the module docstring, before the update: float
    comparisons and a finite check of the (small) batch-norm statistics."""
    return (math.isfinite(loss) and math.isfinite(norm)
            and lr * min(norm, trainer.clip_norm or norm) < trainer._update_limit
            and trainer.optimizer.can_take(largest_gradient(trainer, norm))
            and trainer._buffers_finite())


def diverged(trainer, loss, norm, lr):
    """Build the :class:`TrainingDiverged` for a step ``step_is_safe``
    refused (the failure path: it may look at every layer). Reads only: the
    trainer takes the step back (its gradient norms and statistics)."""
    model, steps = trainer.model, trainer.history.steps
    layer_norms = {layer: steps[f"grad_norm.{layer}"][-1] for layer, _ in trainer._layer_params
                   if steps.get(f"grad_norm.{layer}")}
    bad_statistics = trainer._nonfinite_buffer_layers()
    bad_grads = [i for i in sorted(layer_norms, reverse=True) if not math.isfinite(layer_norms[i])]
    # non-finite before this step: weights, or statistics the step found so
    bad_weights = sorted({i for i, layer in enumerate(model.layers)
                          if any(not np.isfinite(p).all() for p in layer.params.values())}
                         | set(trainer._nonfinite_buffer_layers(before_the_step=True)))
    epoch = len(trainer.history.epochs.get("loss", []))
    step = trainer.step_count
    dtype = model.dtype.name

    def name(i):
        return f"layer {i} ({model.layers[i]!r})"

    def layers(indices):
        return ("layer " if len(indices) == 1 else "layers ") + ", ".join(map(str, indices))

    if bad_grads:
        layer = bad_grads[0]
        what = (f"the loss is {loss}" if not math.isfinite(loss) else f"the loss is {loss:.4g}")
        what += (f" and the gradient of {name(layer)} is the first to be non-finite in "
                 f"back-propagation (non-finite gradients in {layers(bad_grads)})")
    elif not math.isfinite(loss) or not math.isfinite(norm):
        layer = None
        what = f"the loss is {loss} (gradient norm {norm})"
    elif bad_statistics:
        layer = bad_statistics[0]
        what = (f"the running statistics of {name(layer)} became non-finite in this step's "
                f"forward pass (activations beyond the {dtype} range)")
    elif not trainer.optimizer.can_take(largest_gradient(trainer, norm)):
        layer = max(layer_norms, key=layer_norms.get) if layer_norms else None
        what = (f"the gradient (norm {norm:.3g}) squared would overflow {dtype} in "
                f"{type(trainer.optimizer).__name__}'s state of squared gradients and freeze "
                f"the weights (largest gradient: "
                f"{name(layer) if layer is not None else 'unknown layer'})")
    else:
        layer = max(layer_norms, key=layer_norms.get) if layer_norms else None
        what = (f"the update lr * |g| = {lr:.3g} * {norm:.3g} would overflow {dtype} "
                f"(largest gradient: {name(layer) if layer is not None else 'unknown layer'})")
    if bad_weights:
        weights = (f" The weights of {layers(bad_weights)} are already non-finite (they "
                   "were set so, or an earlier update overflowed).")
    else:
        weights = " The model keeps the weights of the last finite step."
    undone = " and the running statistics were put back" if trainer._buffers else ""
    # counted from 1 in words, as history.report() and the progress bar count
    message = (f"training diverged at step {step + 1} (epoch {epoch + 1}): {what}; the update "
               f"was not applied{undone}.{weights} Try a lower learning rate (lr={lr:.3g} now), "
               f"gradient clipping (Trainer(clip_norm=1.0)) or inputs (and regression "
               f"targets) scaled to about [-1, 1]; Trainer(nan_guard=False) turns this check "
               f"off.")
    return TrainingDiverged(message, step=step, epoch=epoch, layer=layer, loss=loss,
                            grad_norm=norm, lr=lr, layer_grad_norms=layer_norms)
