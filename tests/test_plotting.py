"""Plots (issue 6): matplotlib only inside the plotting functions, a clear
error without it, and figures that are written and returned with it
(those tests skip cleanly when matplotlib is not installed)."""
import subprocess
import sys

import numpy as np
import pytest

import nnc
from nnc import playground, plotting
from nnc.cli import main as cli_main


def small_history(diagnostics=True, validation=True):
    X, y = nnc.datasets.load_digits()
    model = nnc.Sequential(nnc.Dense(64, 16, bias=False), nnc.BatchNorm(16), nnc.ReLU(),
                           nnc.Dense(16, 10), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=64, diagnostics=diagnostics,
                          schedule=nnc.schedules.LinearDecay(0.1, 0.01, 20))
    return trainer.fit(X[:320], y[:320], epochs=3, verbose=False,
                       validation_data=(X[320:420], y[320:420]) if validation else None)


def test_importing_nnc_does_not_import_matplotlib():
    code = ("import sys, nnc, nnc.plotting, nnc.playground, nnc.diagnostics; "
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        plotting.require_matplotlib()
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        small_history(diagnostics=False).plot()
    path = {"sgd": playground.run(nnc.SGD(0.01), "ravine", steps=3)}
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        playground.plot_paths(path, "ravine")


def test_diagnose_plot_without_matplotlib_is_a_clear_error(monkeypatch, tmp_path, capsys):
    small_history().save(tmp_path / "run.json")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli_main(["diagnose", str(tmp_path / "run.json"), "--plot",
                     str(tmp_path / "run.png")]) == 2
    assert "pip install matplotlib" in capsys.readouterr().err


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


def test_history_plot_writes_and_returns_the_figure(mpl, tmp_path):
    from matplotlib.figure import Figure

    history = small_history()
    fig = history.plot(path=tmp_path / "history.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "history.png").stat().st_size > 1000
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    for expected in ("loss", "accuracy", "learning rate", "gradient norm (before clipping)",
                     "activations: std (solid), mean (dashed)",
                     "update / weight ratio ||dw|| / ||w||", "dead ReLU units (fraction)"):
        assert expected in titles
    grad_axis = fig.axes[titles.index("gradient norm (before clipping)")]
    assert grad_axis.get_yscale() == "log"
    assert len(grad_axis.get_lines()) == 1 + 3  # global and one per layer with parameters


def test_history_plot_without_diagnostics_or_validation(mpl):
    fig = small_history(diagnostics=False, validation=False).plot()
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert "activations: std (solid), mean (dashed)" not in titles
    assert "loss" in titles and "accuracy" in titles
    fig = nnc.History().plot()  # an empty history still draws
    assert fig.axes


def test_plot_paths_draws_one_line_per_optimizer(mpl, tmp_path):
    surface = playground.rosenbrock()
    paths = {"adam": playground.run(nnc.Adam(0.05), surface, steps=50),
             "momentum": playground.run(nnc.SGD(0.01, momentum=0.9), surface, steps=50)}
    fig = playground.plot_paths(paths, surface, path=tmp_path / "paths.png")
    assert (tmp_path / "paths.png").stat().st_size > 1000
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "adam" in labels and "momentum" in labels
    fig2, axes = plotting.new_figure(1, 2)
    assert playground.plot_paths(paths, "ravine", ax=axes[0, 1], xlim=(-5, 1)) is fig2
    assert axes[0, 1].get_xlim() == (-5, 1)
    assert plotting.plot_paths(paths, "ravine", ax=axes[0, 0]) is fig2  # a name there too
    with pytest.raises(TypeError, match="paths"):
        playground.plot_paths([], surface)
    with pytest.raises(ValueError, match="shape"):
        playground.plot_paths({"bad": np.zeros((3, 3))}, surface)


def test_python_m_nnc_diagnose_plot(mpl, tmp_path, capsys):
    small_history().save(tmp_path / "run.json")
    cli_main(["diagnose", str(tmp_path / "run.json"), "--plot", str(tmp_path / "run.png")])
    assert (tmp_path / "run.png").stat().st_size > 1000
    assert "plot written" in capsys.readouterr().out


def test_plots_never_touch_pyplot(mpl):
    code = ("import sys, nnc; h = nnc.History(); h.steps['loss'] = [1.0, 0.5]; "
            "h.steps['lr'] = [0.1, 0.1]; h.steps['grad_norm'] = [1.0, 0.7]; h.plot(); "
            "print('matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_epoch_metrics_stay_aligned_when_validation_comes_and_goes(mpl, tmp_path):
    """val_loss of a fit without validation data is NaN: index i is epoch i,
    and the curves plot."""
    X, y = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32), np.arange(40) % 3
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=10)
    trainer.fit(X, y, epochs=2, verbose=False)
    trainer.fit(X, y, epochs=2, verbose=False, validation_data=(X, y))
    trainer.fit(X, y, epochs=1, verbose=False)
    epochs = trainer.history.epochs
    assert {name: len(values) for name, values in epochs.items()} == dict.fromkeys(epochs, 5)
    assert np.isnan(epochs["val_loss"][0]) and np.isnan(epochs["val_loss"][4])
    assert not np.isnan(epochs["val_loss"][2:4]).any()
    trainer.history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_history_with_misaligned_records_is_named_not_plotted_wrong():
    history = nnc.History.from_dict({"steps": {"loss": [1.0, 0.9, 0.8], "lr": [0.1]}})
    with pytest.raises(ValueError, match=r"history.steps\['lr'\] has 1 entries but"):
        history.plot()


@pytest.mark.parametrize("kwargs,error", [({"ax": 3}, "ax must be a matplotlib Axes"),
                                          ({"xlim": "ab"}, "xlim must be a pair"),
                                          ({"ylim": (1, 1)}, "ylim must be two different finite")])
def test_plot_paths_checks_its_arguments(mpl, kwargs, error):
    from nnc import playground

    with pytest.raises((TypeError, ValueError), match=error):
        playground.plot_paths({"sgd": np.zeros((3, 2))}, "rosenbrock", **kwargs)


def test_records_the_plot_does_not_draw_are_not_checked(mpl):
    history = small_history(diagnostics=False, validation=False)
    history.epochs["note"] = ["lr halved"]
    assert history.plot() is not None


def test_reversed_limits_flip_the_axis(mpl):
    figure = playground.plot_paths({"sgd": np.zeros((3, 2))}, "rosenbrock", ylim=(3, -1))
    assert figure.axes[0].get_ylim() == (3.0, -1.0)


def test_figures_go_to_file_objects_and_refuse_unknown_formats_first(mpl, tmp_path):
    import io

    buffer = io.BytesIO()
    small_history(diagnostics=False, validation=False).plot(buffer)
    assert buffer.getvalue()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"cannot write \.xyz files"):
        playground.plot_paths({"sgd": np.zeros((3, 2))}, "ravine", path=str(tmp_path / "p.xyz"))
    assert not (tmp_path / "p.xyz").exists()


def test_epoch_points_sit_at_the_recorded_epoch_ends(mpl):
    """Epochs of different lengths (the batch size changed between fits, a
    stop cut one short) put each epoch's value at its own last step."""
    X, y = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32), np.arange(40) % 3
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=20)
    trainer.fit(X, y, epochs=2, verbose=False)
    trainer.batch_size = 5
    history = trainer.fit(X, y, epochs=1, verbose=False)
    assert history.meta["epoch_ends"] == [2, 4, 12]
    loss_axis = history.plot().axes[0]
    epoch_line = next(line for line in loss_axis.get_lines()
                      if line.get_label() == "train (epoch mean)")
    assert list(epoch_line.get_xdata()) == [2, 4, 12]
    assert loss_axis.get_xlim() == (0.5, 12.5)
    # a History from before nnc recorded them: an even split, and None kept for those epochs
    del history.meta["epoch_ends"]
    assert list(next(line for line in history.plot().axes[0].get_lines()
                     if line.get_label() == "train (epoch mean)").get_xdata()) == [4, 8, 12]
    trainer.fit(X, y, epochs=1, verbose=False)
    assert history.meta["epoch_ends"] == [None, None, None, 20]
    assert nnc.History.from_dict(history.to_dict()).meta["epoch_ends"] == [None, None, None, 20]


def test_loss_panel_turns_logarithmic_when_the_loss_spans_decades(mpl):
    history = nnc.History()
    history.steps.update(loss=[2.3, 0.9, 0.3, 0.05], lr=[0.1] * 4, grad_norm=[1.0] * 4)
    assert history.plot().axes[0].get_yscale() == "log"
    history.steps["loss"] = [2.3, 1.9, 1.5, 1.2]
    assert history.plot().axes[0].get_yscale() == "linear"


def test_a_nan_loss_is_marked_and_every_step_panel_keeps_all_steps(mpl):
    history = nnc.History()
    history.steps.update(loss=[2.0, 50.0, float("inf")] + [float("nan")] * 7, lr=[1.0] * 10,
                         grad_norm=[1.0, 1e3, 1e9] + [float("nan")] * 7)
    fig = history.plot()
    titles = [ax.get_title() for ax in fig.axes]
    loss_axis = fig.axes[titles.index("loss")]
    assert any("loss NaN/inf from step 3" in text.get_text() for text in loss_axis.texts)
    for title in ("loss", "learning rate", "gradient norm (before clipping)"):
        assert fig.axes[titles.index(title)].get_xlim() == (0.5, 10.5)


def test_plot_paths_marks_ends_keeps_minima_on_top_and_cuts_diverging_paths(mpl):
    surface = playground.ravine()
    paths = {"converges": playground.run(nnc.SGD(0.019), surface, steps=300),
             "diverges": playground.run(nnc.SGD(0.03), surface, steps=2000)}  # overflows to inf
    assert not np.isfinite(paths["diverges"]).all()
    ax = playground.plot_paths(paths, surface).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    diverging = next(label for label in lines if label.startswith("diverges"))
    assert "leaves the view at step 1" in diverging and "NaN/inf from step" in diverging
    assert len(lines[diverging].get_xdata()) < 10  # cut a few view widths out, not drawn to 1e308
    assert len(lines["converges"].get_xdata()) == 301
    star = max(ax.get_lines(), key=lambda line: line.get_zorder())
    assert star.get_marker() == "*"
    assert np.array_equal(star.get_xydata()[0], surface.minima[0])
    ends = [line for line in ax.get_lines() if line.get_marker() == "X"]
    assert np.array_equal(ends[0].get_xydata()[0], paths["converges"][-1])


def test_plot_paths_gives_every_path_its_own_colour(mpl):
    surface = playground.ravine()
    paths = {f"lr {lr:g}": playground.run(nnc.SGD(lr), surface, steps=5)
             for lr in np.linspace(0.001, 0.019, 12)}
    ax = playground.plot_paths(paths, surface).axes[0]
    colours = {line.get_label(): line.get_color() for line in ax.get_lines()
               if line.get_label() in paths}
    assert len(colours) == 12 and len({tuple(mpl.colors.to_rgba(c)) for c in colours.values()}) == 12


def test_a_zoomed_view_draws_the_path_that_enters_it(mpl):
    """Only a path that goes far out and never comes back is cut; a start far
    outside a zoomed view is no reason to drop the path."""
    surface = playground.ravine()
    path = playground.run(nnc.SGD(0.019), surface, steps=300)  # from (-4, 1) to the minimum
    ax = playground.plot_paths({"sgd": path}, surface, xlim=(-0.5, 0.5), ylim=(-0.5, 0.5)).axes[0]
    line = next(line for line in ax.get_lines() if line.get_label().startswith("sgd"))
    assert len(line.get_xdata()) == 301 and line.get_label() == "sgd"  # it never leaves the view
    with_nan_start = np.array([[np.nan, 1.0], [0.0, 0.0], [1.0, 1.0]])
    ax = playground.plot_paths({"p": with_nan_start}, surface).axes[0]
    line = next(line for line in ax.get_lines() if line.get_label().startswith("p"))
    assert len(line.get_xdata()) == 3 and "NaN/inf from step 0" in line.get_label()


def test_the_legend_of_many_paths_fits_beside_a_new_figure_and_stays_inside_a_given_ax(mpl):
    surface = playground.ravine()
    paths = {f"lr {k}": playground.run(nnc.SGD(0.001 * (k + 1)), surface, steps=3)
             for k in range(25)}
    fig = playground.plot_paths(paths, surface)
    legend = fig.axes[0].get_legend()
    assert legend._ncols == 2 if hasattr(legend, "_ncols") else legend._ncol == 2
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.y0 >= 0 and box.x1 <= fig.bbox.width  # nothing cut off
    fig2, axes = plotting.new_figure(1, 1)
    playground.plot_paths(dict(list(paths.items())[:8]), surface, ax=axes[0, 0])
    fig2.canvas.draw()
    assert axes[0, 0].get_legend().get_window_extent().x1 <= fig2.bbox.width


def test_the_plots_read_a_history_whose_meta_or_step_count_differ(mpl):
    X, y = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32), np.arange(64) % 3
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 8), nnc.ReLU(), nnc.Dense(8, 3), seed=0),
                          batch_size=16, diagnostics=1)
    trainer.fit(X, y, epochs=2, verbose=False)
    trainer.history = nnc.History()  # diagnostics count the trainer's steps: 9..12 now
    history = trainer.fit(X, y, epochs=1, verbose=False)
    assert history.diagnostics["step"] == [9, 10, 11, 12]
    for ax in history.plot().axes:
        if ax.get_title().startswith(("activations", "update", "dead")):
            low, high = ax.get_xlim()
            assert low <= 9 and high >= 12, ax.get_title()
    with pytest.raises(TypeError, match="history.meta must be a dict, got NoneType"):
        history.meta = None  # (fit, the diagnostics and the plots read it)
    del history.__dict__["meta"]  # a History pickled before meta existed: an empty one
    trainer.fit(X, y, epochs=1, verbose=False)
    assert history.meta["epoch_ends"] == [None, 8] and history.plot().axes
    for ends in ([True, 8], [8, 4], [4.0, 8.0]):  # not step counts: an even split instead
        history.meta = {"epoch_ends": ends}
        assert plotting._epoch_ends(history, 8, 2) == [4, 8]
    history.meta = {"epoch_ends": [np.int64(3), np.int64(8)]}
    assert plotting._epoch_ends(history, 8, 2) == [3, 8]


def test_an_epoch_a_stop_cut_short_ends_at_its_last_step():
    X, y = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32), np.arange(40) % 3
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=5)  # 8 steps
    stopper = nnc.callbacks.LambdaCallback(  # stop after 3 of the second epoch's steps
        on_step_end=lambda trainer, logs: setattr(trainer, "stop_training",
                                                  trainer.step_count == 11))
    history = trainer.fit(X, y, epochs=3, verbose=False, callbacks=[stopper])
    assert history.meta["epoch_ends"] == [8, 11] and len(history.steps["loss"]) == 11
