"""Plots: learning curves, gradient norms, activation statistics and
optimizer paths (matplotlib needed: ``pip install matplotlib``).

matplotlib is imported only inside these functions, and figures are built
as ``matplotlib.figure.Figure`` objects on an Agg canvas, never through
pyplot: no window opens, no display is needed, and a notebook's own
matplotlib backend is left alone. Every plotting function returns the
figure and writes it to ``path`` when one is given (``save`` returns the
name written).
"""
import importlib.util
import math
import numbers
import os

import numpy as np

from nnc._validation import check_file_path, check_int, folder_problem
from nnc.history import per_layer_records


def available():
    """True when matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def require_matplotlib():
    """Import matplotlib or raise an ImportError that says how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib "
                          "(or pip install -e '.[plot]' from nnc's clone)") from None
    return matplotlib


#: the most panels one figure gets in each direction
MAX_PANELS = 100


def new_figure(nrows=1, ncols=1, figsize=None):
    """(figure, 2-D array of axes) on an Agg canvas, without pyplot;
    ``figsize`` (width, height) in inches, 5 x 3.6 per panel by default."""
    nrows = check_int(nrows, "nrows", low=1, high=MAX_PANELS)
    ncols = check_int(ncols, "ncols", low=1, high=MAX_PANELS)
    if figsize is None:
        figsize = (5.0 * ncols, 3.6 * nrows)
    else:
        figsize = _check_figsize(figsize)
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _check_figsize(figsize):
    """(width, height) in inches, each in (0, 1000]."""
    try:
        if isinstance(figsize, (str, bytes)):
            raise TypeError
        width, height = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise TypeError(f"figsize must be a pair (width, height) in inches, got "
                        f"{figsize!r:.80}") from None
    if not (0 < width <= 1000 and 0 < height <= 1000):
        raise ValueError(f"figsize must be a (width, height) in inches, each in (0, 1000], "
                         f"got {figsize!r:.80}")
    return width, height


def check_figure_path(path, name="path"):
    """``path`` as a str, or ValueError before any plotting: an extension
    matplotlib cannot write or a folder that is missing. A name without an
    extension gets matplotlib's (``savefig.format``, .png by default), and
    that name is returned: the file matplotlib writes.
    A file object (anything with ``write``) is passed through as it is."""
    if hasattr(path, "write"):
        return path
    path = check_file_path(path, name, regular=False)  # (/dev/stdout is a fine target)
    problem = folder_problem(path)
    if problem:
        raise ValueError(f"{name}: {problem}")
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    extension = os.path.splitext(path)[1][1:].lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if not extension:  # (matplotlib would add its default format: return the name it writes)
        from matplotlib import rcParams

        return check_figure_path(f"{path.rstrip('.')}.{rcParams['savefig.format']}", name)
    if extension not in formats:
        raise ValueError(f"{name} {path!r}: matplotlib cannot write .{extension} files; use one "
                         f"of .{', .'.join(sorted(formats))} (e.g. .png)")
    return path


def save(fig, path):
    """Write ``fig`` to ``path`` (format from the extension); returns path."""
    return _write(fig, check_figure_path(path))


def _write(fig, path):
    """``save`` for a path already checked."""
    fig.savefig(path, dpi=100)
    return path


def _check_limits(limits, name):
    """(low, high): two different finite numbers (high < low flips the axis)."""
    try:
        low, high = (float(v) for v in limits)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers (low, high), got {limits!r:.80}") \
            from None
    if not (math.isfinite(low) and math.isfinite(high) and low != high
            and math.isfinite(high - low)):
        raise ValueError(f"{name} must be two different finite numbers less than about 1e308 "
                         f"apart (reversed to flip the axis), got {limits!r:.80}")
    return low, high


def _positive(values):
    """Values for a log axis: non-positive and non-finite ones become NaN."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(array) & (array > 0), array, np.nan)


def _epoch_ends(history, n_steps, n_epochs):
    """The step number at the end of each epoch: as the Trainer recorded it
    (``meta["epoch_ends"]``: epochs differ in length when the batch size
    changed or a stop cut one short), else an even split of the steps."""
    recorded = history.meta.get("epoch_ends")
    if (isinstance(recorded, list) and len(recorded) == n_epochs
            and all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                    and 0 < s <= n_steps for s in recorded)
            and all(a <= b for a, b in zip(recorded, recorded[1:]))):
        return [int(s) for s in recorded]
    return [round((e + 1) * n_steps / n_epochs) for e in range(n_epochs)]


#: up to this many steps, step curves mark each step (a line alone hides one point)
MARKED_STEPS = 50
#: a loss panel turns logarithmic when its positive values span more than this factor
LOG_LOSS_SPAN = 30.0


def _first_nonfinite(values):
    """The 1-based step of the first NaN/inf value, or None."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=np.float64)))
    return int(bad[0]) + 1 if bad.size else None


def _step_axis(ax, n_steps):
    """Every step panel spans the same steps, in whole steps."""
    ax.set_xlabel("step")
    if n_steps:  # (None: the panel's own range)
        ax.set_xlim(0.5, n_steps + 0.5)
    _whole_numbers(ax)


def _whole_numbers(ax):
    """Ticks on whole steps / epochs only (one tick where there is only one)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _legend(ax, **kwargs):
    """A legend when something has a label (no warning for empty panels)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _layer_label(history, i):
    layers = history.meta.get("layers")
    return f"{i} {layers[i]}" if layers and i < len(layers) else f"layer {i}"


def check_plottable(history):
    """``history`` as ``plot_history`` draws it (a checked copy), or an error
    naming the record that cannot be drawn: records nnc reads hold numbers,
    and each curve has one value per step (per epoch, per measurement)
    against the one it is drawn with."""
    from nnc.history import check_history

    history = check_history(history, "plotted")
    steps, epochs, diag = history.steps, history.epochs, history.diagnostics
    drawn = {"steps": ["lr", "grad_norm"] + [f"grad_norm.{i}" for i, _ in
                                               per_layer_records(steps, "grad_norm")],
             "epochs": ["accuracy", "val_loss", "val_accuracy"]}
    for part, records in (("steps", steps), ("epochs", epochs)):
        n = len(records.get("loss", []))
        for name in drawn[part]:  # against the loss; the Trainer keeps them in step
            values = records.get(name)
            if values is not None and len(values) != n:
                raise ValueError(f"history.{part}[{name!r}] has {len(values)} entries but "
                                 f"{part}['loss'] has {n}: one entry per "
                                 f"{part[:-1]} is needed to plot it")
    measured = len(diag.get("step", []))
    for statistic in ("act_std", "act_mean", "update_ratio", "dead_fraction"):
        for i, values in per_layer_records(diag, statistic):
            if len(values) > measured:  # (fewer: a record that started later)
                raise ValueError(f"history.diagnostics['{statistic}.{i}'] has {len(values)} "
                                 f"entries but diagnostics['step'] {measured}: at most one per "
                                 "measured step is needed to plot it")
    return history


def plot_history(history, path=None):
    """Learning curves of a History: training/validation loss and accuracy,
    the learning rate, the global and per-layer gradient norms (log scale)
    and, when diagnostics were on, the activation statistics, update/weight
    ratios and dead ReLU fractions per layer over time."""
    if path is not None:
        path = check_figure_path(path)  # before any drawing
    history = check_plottable(history)
    steps, epochs, diag = history.steps, history.epochs, history.diagnostics
    n_steps = len(steps.get("loss", []))
    n_epochs = len(epochs.get("loss", []))
    ends = _epoch_ends(history, n_steps, n_epochs) if n_epochs else []
    marker = "." if n_steps <= MARKED_STEPS else None
    panels = ["loss"]
    if "accuracy" in epochs or "val_accuracy" in epochs:
        panels.append("accuracy")
    panels += ["lr", "grad_norm"]
    if diag.get("step"):
        panels += ["activations", "update_ratio"]
        if per_layer_records(diag, "dead_fraction"):
            panels.append("dead")
    ncols = 2
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(nrows, ncols)
    flat = axes.ravel()
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    x_steps = np.arange(1, n_steps + 1)
    # diagnostics count the trainer's steps: the same axis as the history's
    # unless the History was replaced after some training (then their own)
    diag_steps = n_steps if max(diag.get("step") or [0]) <= n_steps else None
    for ax, panel in zip(flat, panels):
        if panel == "loss":
            if n_steps:
                ax.plot(x_steps, steps["loss"], color="0.75", lw=0.8, marker=marker,
                        label="mini-batch")
            curves = [steps.get("loss", [])]
            for name, style, label in (("loss", "o-", "train (epoch mean)"),
                                       ("val_loss", "s-", "validation")):
                if name in epochs and ends:
                    ax.plot(ends, epochs[name], style, ms=3, label=label)
                    curves.append(epochs[name])
            values = np.concatenate([np.asarray(c, dtype=np.float64) for c in curves])
            shown = values[np.isfinite(values)]
            if shown.size and shown.min() > 0 and shown.max() > LOG_LOSS_SPAN * shown.min():
                ax.set_yscale("log")  # a loss spanning decades: each decade gets its room
            broken = _first_nonfinite(steps.get("loss", []))
            if broken is not None:  # NaN/inf draw nothing: say where the curve ends
                ax.axvline(broken, color="r", ls=":", lw=1)
                ax.text(broken, 0.5, f" loss NaN/inf from step {broken}", color="r",
                        fontsize="small", transform=ax.get_xaxis_transform(), clip_on=True)
            ax.set_title("loss")
            _step_axis(ax, n_steps)
            _legend(ax, fontsize="small")
        elif panel == "accuracy":
            for name, style, label in (("accuracy", "o-", "train (epoch mean)"),
                                       ("val_accuracy", "s-", "validation")):
                if name in epochs:
                    ax.plot(range(1, len(epochs[name]) + 1), epochs[name], style, ms=3,
                            label=label)
            ax.set_title("accuracy")
            ax.set_xlabel("epoch")
            _whole_numbers(ax)
            _legend(ax, fontsize="small")
        elif panel == "lr":
            ax.plot(x_steps, steps.get("lr", [np.nan] * n_steps), marker=marker)
            ax.set_ylim(bottom=0)
            ax.set_title("learning rate")
            _step_axis(ax, n_steps)
        elif panel == "grad_norm":
            if n_steps:
                ax.plot(x_steps, _positive(steps.get("grad_norm", [np.nan] * n_steps)),
                        color="k", lw=1.2, marker=marker, label="global")
            for i, values in per_layer_records(steps, "grad_norm"):
                ax.plot(np.arange(1, len(values) + 1), _positive(values), lw=0.8, marker=marker,
                        label=_layer_label(history, i))
            ax.set_yscale("log")
            ax.set_title("gradient norm (before clipping)")
            _step_axis(ax, n_steps)
            _legend(ax, fontsize="x-small", ncol=2)
        elif panel == "activations":
            x = diag["step"]
            for i, values in per_layer_records(diag, "act_std"):
                line, = ax.plot(x[:len(values)], values, lw=1,
                                label=f"std {_layer_label(history, i)}")
                means = diag.get(f"act_mean.{i}")
                if means is not None:
                    ax.plot(x[:len(means)], means, lw=0.8, ls="--", color=line.get_color())
            ax.set_title("activations: std (solid), mean (dashed)")
            _step_axis(ax, diag_steps)
            _legend(ax, fontsize="x-small", ncol=2)
        elif panel == "update_ratio":
            x = diag["step"]
            for i, values in per_layer_records(diag, "update_ratio"):
                ax.plot(x[:len(values)], _positive(values), lw=1, label=_layer_label(history, i))
            ax.axhline(1e-3, color="0.6", ls=":", lw=1, label="1e-3 (rule of thumb)")
            ax.set_yscale("log")
            ax.set_title("update / weight ratio ||dw|| / ||w||")
            _step_axis(ax, diag_steps)
            _legend(ax, fontsize="x-small")
        elif panel == "dead":
            x = diag["step"]
            for i, values in per_layer_records(diag, "dead_fraction"):
                ax.plot(x[:len(values)], values, lw=1, label=_layer_label(history, i))
            ax.set_ylim(-0.02, 1.02)
            ax.set_title("dead ReLU units (fraction)")
            _step_axis(ax, diag_steps)
            _legend(ax, fontsize="x-small")
    if path is not None:
        _write(fig, path)  # (checked before drawing)
    return fig


#: a path that goes this many view widths beyond the view, never to return, is cut there
FAR_OUTSIDE = 3.0
#: legend entries per column beside a plot_paths panel
LEGEND_ROWS = 18


def _path_in_view(p, box):
    """The part of path ``p`` to draw, and a note for its label. A path that
    goes far outside ``box`` (``FAR_OUTSIDE`` view widths) and never comes
    back is drawn up to there: a diverging path would otherwise cover the
    panel with lines towards infinity. NaN/inf points draw nothing."""
    xmin, xmax, ymin, ymax = box
    dx, dy = xmax - xmin, ymax - ymin
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(p).all(axis=1)
        near = (finite & (p[:, 0] >= xmin - FAR_OUTSIDE * dx) & (p[:, 0] <= xmax + FAR_OUTSIDE * dx)
                & (p[:, 1] >= ymin - FAR_OUTSIDE * dy) & (p[:, 1] <= ymax + FAR_OUTSIDE * dy))
        inside = finite & (p[:, 0] >= xmin) & (p[:, 0] <= xmax) & (p[:, 1] >= ymin) & (p[:, 1] <= ymax)
    end = len(p)
    if near.any():
        last_near = np.flatnonzero(near)[-1]
        gone = np.flatnonzero(~near[last_near:])  # (far or non-finite) for good from here
        if gone.size:
            end = last_near + gone[0]
    leaves = np.flatnonzero(inside[:-1] & ~inside[1:]) + 1  # inside, then outside
    note = f" (leaves the view at step {leaves[0]})" if leaves.size else ""
    if not finite.all():
        note += f" (NaN/inf from step {np.flatnonzero(~finite)[0]})"
    return p[:end], note


def _colormap(name):
    """matplotlib's colormap ``name``."""
    require_matplotlib()
    import matplotlib

    return matplotlib.colormaps[name]


def plot_paths(paths, surface, path=None, ax=None, xlim=None, ylim=None, title=None):
    """Contours of a playground ``surface`` and one path per optimizer.

    ``paths`` maps a label to an array of shape (steps + 1, 2); the view is
    the surface's box unless ``xlim``/``ylim`` are given. Draws into ``ax``
    when given (its figure is returned), else into a new figure (with more
    than 6 paths, wide enough for the legend beside the panel).

    Each path starts at a dot and ends at a cross; the minima are stars on
    top. A path's label says when it leaves the view and when it turns
    NaN/inf; one that goes ``FAR_OUTSIDE`` view widths out and never comes
    back is drawn only up to there."""
    if not isinstance(paths, dict) or not paths:
        raise TypeError("paths must be a non-empty dict {label: array of shape (steps + 1, 2)}")
    from nnc.playground import check_path, get_surface

    surface = get_surface(surface)
    checked = {label: check_path(p, f"paths[{label!r}]") for label, p in paths.items()}
    if path is not None:
        path = check_figure_path(path)  # before any drawing
    x0, x1 = _check_limits(xlim, "xlim") if xlim is not None else surface.xlim
    y0, y1 = _check_limits(ylim, "ylim") if ylim is not None else surface.ylim
    if ax is None:
        # more than 6 paths: a figure wide enough for their legend beside the panel
        beside = len(checked) > 6
        columns = math.ceil(len(checked) / LEGEND_ROWS)
        fig, axes = new_figure(1, 1, figsize=(6.4 + 3.2 * columns * beside, 4.8))
        ax = axes[0, 0]
    else:
        require_matplotlib()
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes (or None for a new figure), "
                            f"got {ax!r:.80}")
        fig = ax.figure
        beside = False  # (the caller's figure has no room made for it)
    gx, gy = np.meshgrid(np.linspace(x0, x1, 241), np.linspace(y0, y1, 241))
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.asarray(surface.value(gx, gy), dtype=np.float64)
    if z.shape != gx.shape:
        raise ValueError(f"the value function of {surface.name!r} must work on arrays: on a "
                         f"{gx.shape} grid it returned shape {z.shape}")
    finite = z[np.isfinite(z)]
    # levels evenly spaced in rank, so flat floors and steep walls both show
    levels = np.unique(np.quantile(finite, np.linspace(0, 1, 30) ** 2)) if finite.size else 10
    ax.contour(gx, gy, z, levels=levels, cmap="viridis", linewidths=0.6)
    # more paths than the colour cycle's 10 colours: tab20's dark hues, then their
    # light pairs; past 20, turbo without its near-black end (never the contours' viridis)
    n = len(checked)
    colours = ([None] * n if n <= 10 else
               [_colormap("tab20")((2 * k) % 20 + (2 * k) // 20) for k in range(n)] if n <= 20
               else [_colormap("turbo")(0.1 + 0.85 * k / (n - 1)) for k in range(n)])
    box = (min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1))
    for (label, p), colour in zip(checked.items(), colours):
        shown, note = _path_in_view(p, box)
        line, = ax.plot(shown[:, 0], shown[:, 1], "-", lw=1.2, marker=".", ms=3, color=colour,
                        label=f"{label}{note}")  # (labels may be learning rates, ...)
        ax.plot(*p[0], "o", color=line.get_color(), ms=5)  # start
        drawn = shown[np.isfinite(shown).all(axis=1)]
        if len(drawn):  # where it ends (or is cut)
            ax.plot(*drawn[-1], "X", color=line.get_color(), ms=7, mec="w", mew=0.6, zorder=4)
    for m in surface.minima:  # last: on top of the paths that reach it
        ax.plot(*m, marker="*", color="k", ms=14, mec="w", mew=0.5, ls="none", zorder=5)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title if title is not None else surface.name)
    if beside:  # a long legend beside the panel: inside it would cover the paths and minima
        _legend(ax, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1),
                ncol=columns)
    else:
        _legend(ax, fontsize="small")
    if path is not None:
        _write(fig, path)  # (checked before drawing)
    return fig
