"""Training diagnostics (issue 6): recorded values against a NumPy
recomputation, no effect on the trajectory, each verdict on a run built to
show it and silence on healthy runs, save/load and ``python -m nnc diagnose``."""
import math
import re
import warnings

import numpy as np
import pytest

import nnc
from nnc import diagnostics as D
from nnc.callbacks import Callback
from nnc.cli import main as cli_main
from nnc.history import History

BACKENDS = ["cython", "numpy"]


# --- the recorded values --------------------------------------------------------
class Snapshots(Callback):
    """Copies of the parameters (before/after each update) and gradients."""

    def __init__(self):
        self.before, self.after, self.grads = [], [], []

    def on_before_update(self, trainer):
        m = trainer.model
        self.before.append([{k: v.copy() for k, v in l.params.items()} for l in m.layers])
        self.grads.append([{k: v.copy() for k, v in l.grads.items()} for l in m.layers])

    def on_step_end(self, trainer, logs):
        m = trainer.model
        self.after.append([{k: v.copy() for k, v in l.params.items()} for l in m.layers])


def norm(arrays):
    return math.sqrt(sum(float(np.sum(np.asarray(a, dtype=np.float64) ** 2)) for a in arrays))


def recompute_forward(params, x, eps):
    """The forward pass of Dense(no bias) - BatchNorm - ReLU - Dropout(0) - Dense,
    in NumPy from the parameters: the outputs of every layer and the batch stats."""
    z = x @ params[0]["W"]
    mu = z.mean(axis=0)
    var = ((z - mu) ** 2).mean(axis=0)
    bn = params[1]["gamma"] * (z - mu) / np.sqrt(var + eps) + params[1]["beta"]
    h = np.maximum(bn, 0)
    out = h @ params[4]["W"] + params[4]["b"]
    return [z, bn, h, h, out], mu, var


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("every", [1, 3])
def test_each_value_equals_a_numpy_recomputation(backend, every):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = rng.integers(0, 3, size=40)
    model = nnc.Sequential(nnc.Dense(6, 8, bias=False), nnc.BatchNorm(8), nnc.ReLU(),
                           nnc.Dropout(0.0), nnc.Dense(8, 3), dtype="float64",
                           backend=backend, seed=1)
    model.layers[1].params["beta"][:3] = -10.0  # three units dead from the start
    snaps = Snapshots()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1, momentum=0.5), batch_size=8,
                          callbacks=[snaps], diagnostics=D.Diagnostics(every=every))
    history = trainer.fit(X, y, epochs=2, shuffle=False, verbose=False)
    d = history.diagnostics
    assert d["step"] == list(range(every, 11, every))
    assert d["epoch"] == [(t - 1) // 5 for t in d["step"]]
    assert history.meta["layers"] == ["Dense", "BatchNorm", "ReLU", "Dropout", "Dense"]
    for k, t in enumerate(d["step"]):
        before, after, grads = snaps.before[t - 1], snaps.after[t - 1], snaps.grads[t - 1]
        start = ((t - 1) % 5) * 8
        outs, mu, var = recompute_forward(before, X[start:start + 8], model.layers[1].eps)
        for i in (0, 1, 4):  # layers with parameters
            w = norm(before[i].values())
            assert d[f"grad_norm.{i}"][k] == pytest.approx(norm(grads[i].values()), rel=1e-12)
            assert d[f"weight_norm.{i}"][k] == pytest.approx(w, rel=1e-12)
            dw = norm([after[i][n] - before[i][n] for n in before[i]])
            assert d[f"update_ratio.{i}"][k] == pytest.approx(dw / w, rel=1e-9)
        for i, out in enumerate(outs):
            assert d[f"act_mean.{i}"][k] == pytest.approx(out.mean(), rel=1e-9, abs=1e-12)
            assert d[f"act_std.{i}"][k] == pytest.approx(out.std(), rel=1e-9)
        dead = np.mean(np.all(outs[2] <= 0, axis=0))
        assert dead >= 3 / 8
        assert d["dead_fraction.2"][k] == dead
        assert d["bn_mean.1"][k] == pytest.approx(mu.mean(), abs=1e-12)
        assert d["bn_var.1"][k] == pytest.approx(var.mean(), rel=1e-12)
    lengths = {name: len(values) for name, values in d.items()}
    assert set(lengths.values()) == {len(d["step"])}
    assert "dead_fraction.0" not in d and "bn_mean.2" not in d


def test_batchnorm_keeps_the_last_training_batch_statistics():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(16, 4))
    model = nnc.Sequential(nnc.Dense(4, 4, bias=False), nnc.BatchNorm(4), dtype="float64", seed=0)
    z = x @ model.layers[0].params["W"]
    model.forward(x, training=True)
    bn = model.layers[1]
    np.testing.assert_allclose(bn.batch_mean, z.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.batch_var, z.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.last_output, model.forward(x, training=True), rtol=1e-12)


def test_last_output_is_a_read_only_view_of_the_layer_output():
    model = nnc.Sequential(nnc.Dense(3, 4), nnc.ReLU(), nnc.Dropout(0.0), nnc.Dense(4, 2), seed=0)
    assert model.layers[0].last_output is None
    x = np.ones((5, 3), dtype=np.float32)
    out = model.forward(x)
    np.testing.assert_array_equal(model.layers[3].last_output, out)
    assert model.layers[1].last_output.shape == (5, 4)
    assert model.layers[2].last_output is None  # p = 0 passes its input through
    with pytest.raises(ValueError):
        model.layers[1].last_output[0, 0] = 1.0


# --- cost when off, effect when on ------------------------------------------------
def trained(diagnostics, backend):
    X, y = nnc.datasets.load_digits()
    model = nnc.Sequential(nnc.Dense(64, 16, bias=False), nnc.BatchNorm(16), nnc.ReLU(),
                           nnc.Dropout(0.3), nnc.Dense(16, 10), backend=backend, seed=3)
    trainer = nnc.Trainer(model, optimizer=nnc.Adam(0.01), batch_size=50, l2=1e-3,
                          clip_norm=1.0, diagnostics=diagnostics)
    history = trainer.fit(X[:300], y[:300], epochs=2, validation_data=(X[300:400], y[300:400]),
                          verbose=False)
    return trainer, history


@pytest.mark.parametrize("backend", BACKENDS)
def test_diagnostics_leave_the_trajectory_bit_identical(backend):
    off, h_off = trained(None, backend)
    assert off.callbacks == [] and off.diagnostics is None and h_off.diagnostics == {}
    for setting in (True, 3):
        on, h_on = trained(setting, backend)
        assert len(h_on.diagnostics["step"]) > 0
        np.testing.assert_array_equal(on.model.flat_params, off.model.flat_params)
        for a, b in zip(on.model.layers, off.model.layers):
            for name in a.buffers:
                np.testing.assert_array_equal(a.buffers[name], b.buffers[name])
        assert h_on.steps == h_off.steps
        assert h_on.epochs == h_off.epochs


def test_the_diagnostics_argument():
    def model():
        return nnc.Sequential(nnc.Dense(4, 3), nnc.ReLU(), nnc.Dense(3, 2), seed=0)

    assert isinstance(nnc.Trainer(model(), diagnostics=True).diagnostics, D.Diagnostics)
    assert nnc.Trainer(model(), diagnostics=4).diagnostics.every == 4
    assert nnc.Trainer(model(), diagnostics=False).diagnostics is None
    custom = D.Diagnostics(every=2)
    trainer = nnc.Trainer(model(), callbacks=[custom], diagnostics=custom)
    assert trainer.callbacks == [custom]  # not run twice
    with pytest.raises(TypeError, match="diagnostics"):
        nnc.Trainer(model(), diagnostics="yes")
    with pytest.raises(ValueError, match="diagnostics"):
        nnc.Trainer(model(), diagnostics=0)
    with pytest.raises(ValueError, match="every"):
        D.Diagnostics(every=0)


def test_diagnostics_as_a_fit_callback_and_across_fits():
    X, y = nnc.datasets.load_digits()
    model = nnc.Sequential(nnc.Dense(64, 8), nnc.ReLU(), nnc.Dense(8, 10), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=64)
    diag = D.Diagnostics(every=2)
    trainer.fit(X[:256], y[:256], epochs=1, verbose=False, callbacks=[diag])
    trainer.fit(X[:256], y[:256], epochs=1, verbose=False, callbacks=[diag])
    d = trainer.history.diagnostics
    assert d["step"] == [2, 4, 6, 8] and d["epoch"] == [0, 0, 1, 1]


# --- verdicts ----------------------------------------------------------------------
def fit(layers, optimizer, X, y, epochs, batch_size=32, loss="softmax_cross_entropy",
        setup=None, diagnostics=True):
    model = nnc.Sequential(*layers, seed=0)
    if setup is not None:
        setup(model)
    trainer = nnc.Trainer(model, loss=loss, optimizer=optimizer, batch_size=batch_size,
                          seed=0, diagnostics=diagnostics)
    trainer.warn_unscaled = False  # the report's verdicts are what is tested here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return trainer.fit(X, y, epochs=epochs, verbose=False)


def digits(n=512):
    X, y = nnc.datasets.load_digits()
    return X[:n], y[:n]


def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 8)).astype(np.float32)
    return X, (X @ rng.normal(size=(8, 1))).astype(np.float32)


def mlp(hidden=32):
    return [nnc.Dense(64, hidden), nnc.ReLU(), nnc.Dense(hidden, 10)]


def kinds(history):
    found = [v.kind for v in D.diagnose(history)]
    assert set(found) <= set(D.KINDS)
    return found


@pytest.mark.parametrize("optimizer", [nnc.SGD(0.1), nnc.SGD(0.1, momentum=0.9), nnc.Adam(3e-3)],
                         ids=["sgd", "momentum", "adam"])
def test_a_healthy_run_shows_no_verdict(optimizer):
    history = fit(mlp(), optimizer, *digits(), epochs=6)
    assert kinds(history) == []
    assert "No problems found." in history.report()
    history = fit([nnc.Dense(8, 1)], nnc.SGD(0.3), *regression(), epochs=8, batch_size=256,
                  loss="mse")
    assert kinds(history) == []


def test_rising_loss_says_the_learning_rate_is_too_large():
    # full-batch gradient descent on least squares just above the stable rate
    history = fit([nnc.Dense(8, 1)], nnc.SGD(0.8), *regression(), epochs=8, batch_size=256,
                  loss="mse")
    assert kinds(history) == ["lr_too_large"]
    message = D.diagnose(history)[0].message
    assert "rose for" in message and "learning rate 0.8 is likely too large" in message


def test_a_loss_spike_says_the_learning_rate_is_too_large():
    history = fit(mlp(), nnc.SGD(3.0), *digits(), epochs=3)
    verdicts = D.diagnose(history)
    assert verdicts[0].kind == "lr_too_large" and "spiked" in verdicts[0].message


def test_nan_loss_says_diverged():
    history = History()
    history.steps["loss"] = [2.3, 2.1, 40.0, math.inf, math.nan]
    history.steps["lr"] = [0.5] * 5
    history.steps["grad_norm"] = [1.0, 1.2, 80.0, math.inf, math.nan]
    found = D.diagnose(history)
    assert [v.kind for v in found] == ["lr_too_large", "exploding_gradients"]
    assert "step 4" in found[0].message and "0.5" in found[0].message


def test_exploding_gradients():
    history = fit([nnc.Dense(8, 1)], nnc.SGD(1.0), *regression(), epochs=20, batch_size=256,
                  loss="mse")
    found = {v.kind: v.message for v in D.diagnose(history)}
    assert "exploding_gradients" in found
    norms = history.steps["grad_norm"]
    peak = int(np.argmax(norms))
    early = np.median(norms[:D._window(len(norms))])
    assert re.match(rf"the gradient norm reached \S+ at step {peak + 1}, \S+x its median over "
                    rf"the first {D._window(len(norms))} steps \({D._fmt(early)}\)",
                    found["exploding_gradients"])


def test_vanishing_gradients_in_a_deep_sigmoid_net():
    layers = [nnc.Dense(64, 32)]
    for _ in range(9):
        layers += [nnc.Sigmoid(), nnc.Dense(32, 32)]
    layers += [nnc.Sigmoid(), nnc.Dense(32, 10)]
    history = fit(layers, nnc.SGD(0.1), *digits(), epochs=2)
    found = {v.kind: v.message for v in D.diagnose(history)}
    assert "vanishing_gradients" in found
    assert "layer 0 (Dense)" in found["vanishing_gradients"]
    assert "layer 20 (Dense)" in found["vanishing_gradients"]


def test_exploding_across_depth_from_recorded_norms():
    history = History()
    history.steps.update({"loss": [1.0] * 10, "lr": [0.1] * 10, "grad_norm": [1.0] * 10,
                          "grad_norm.0": [5e3] * 10, "grad_norm.4": [1.0] * 10})
    found = D.diagnose(history)
    assert "exploding_gradients" in [v.kind for v in found]


def test_tiny_updates_say_learning_is_too_slow():
    history = fit(mlp(), nnc.SGD(1e-6), *digits(), epochs=2)
    assert kinds(history) == ["slow_learning", "not_decreasing"]
    assert "learning is too slow" in history.report()


def test_dead_relu_units():
    def kill(model):
        model.layers[0].params["b"][...] = -3.0

    history = fit(mlp(), nnc.SGD(0.1), *digits(), epochs=3, setup=kill)
    found = {v.kind: v.message for v in D.diagnose(history)}
    assert "dead_relu" in found
    assert found["dead_relu"].startswith("layer 1 (ReLU): 100 % of the ReLU units are dead")
    assert "vanishing_gradients" in found  # no gradient gets through dead units
    assert not any("sigmoid" in verdict.advice for verdict in D.diagnose(history))


def test_dead_since_epoch():
    history = History()
    history.steps.update({"loss": list(np.linspace(2, 1, 8)), "lr": [0.1] * 8,
                          "grad_norm": [1.0] * 8})
    history.epochs["loss"] = [1.8, 1.5, 1.3, 1.1]
    history.diagnostics = {"step": list(range(1, 9)), "epoch": [0, 0, 1, 1, 2, 2, 3, 3],
                           "dead_fraction.3": [0.1, 0.2, 0.3, 0.6, 0.7, 0.71, 0.71, 0.71]}
    history.meta = {"layers": ["Dense", "ReLU", "Dense", "ReLU", "Dense"]}
    (verdict,) = D.diagnose(history)
    assert verdict.message == ("layer 3 (ReLU): 71 % of the ReLU units are dead "
                               "(never active over a batch) at the end; at least 50 % since "
                               "step 4 (epoch 2)")


def test_loss_not_decreasing_with_random_labels():
    X, _ = digits()
    y = np.random.default_rng(0).integers(0, 10, size=len(X))
    history = fit(mlp(), nnc.SGD(0.05), X, y, epochs=3)
    assert kinds(history) == ["not_decreasing"]


def test_plateau_of_a_one_unit_bottleneck():
    history = fit(mlp(hidden=1), nnc.SGD(0.5), *digits(), epochs=20)
    assert kinds(history) == ["plateau"]
    assert "plateaued at" in D.diagnose(history)[0].message


def test_report_without_diagnostics_and_without_steps():
    assert "nothing to diagnose" in History().report()
    history = fit(mlp(), nnc.SGD(0.1), *digits(256), epochs=2, diagnostics=None)
    assert "need Trainer(..., diagnostics=True)" in history.report()
    with pytest.raises(TypeError, match="history"):
        D.diagnose({"steps": {}})


def test_thresholds_are_named_in_the_module_docstring():
    for name in ("LOSS_RISE_EPOCHS", "LOSS_GROWTH_FACTOR", "LOSS_SPIKE_FACTOR",
                 "MIN_RELATIVE_DECREASE", "PLATEAU_EPOCHS", "PLATEAU_RELATIVE_CHANGE",
                 "PLATEAU_LOSS_FRACTION", "EXPLODING_GRAD_GROWTH", "VANISHING_GRAD_RATIO",
                 "SLOW_UPDATE_RATIO", "FAST_UPDATE_RATIO", "DEAD_RELU_FRACTION",
                 "ACTIVATION_DEPTH_RATIO", "INPUT_RMS_LIMIT", "TARGET_RMS_LIMIT"):
        assert isinstance(getattr(D, name), (int, float))
        assert name in D.__doc__


# --- save, load and the command line ----------------------------------------------
def test_save_and_load_round_trip(tmp_path):
    history = fit(mlp(), nnc.SGD(0.1), *digits(256), epochs=2)
    history.steps["loss"][1] = math.nan  # non-finite values survive
    path = tmp_path / "run.json"
    history.save(path)
    loaded = History.load(path)
    assert set(loaded.to_dict()) >= {"steps", "epochs", "diagnostics", "meta"}
    assert math.isnan(loaded.steps["loss"][1])
    history.steps["loss"][1] = loaded.steps["loss"][1] = 0.0
    assert loaded.to_dict() == history.to_dict()
    assert loaded.report() == history.report()
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not an nnc History"):
        History.load(tmp_path / "other.json")


def test_python_m_nnc_diagnose(tmp_path, capsys):
    bad = fit(mlp(), nnc.SGD(1e-6), *digits(256), epochs=2)
    good = fit(mlp(), nnc.SGD(0.1), *digits(), epochs=4)
    bad.save(tmp_path / "bad.json")
    good.save(tmp_path / "good.json")
    assert cli_main(["diagnose", str(tmp_path / "bad.json")]) == 1
    assert "learning is too slow" in capsys.readouterr().out
    assert cli_main(["diagnose", str(tmp_path / "good.json")]) == 0
    assert "No problems found." in capsys.readouterr().out
    assert cli_main(["diagnose", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_report_of_a_history_without_learning_rates():
    """A hand-made or foreign History may lack steps['lr']: the verdict says
    the rate is unknown instead of failing."""
    history = nnc.History.from_dict({"steps": {"loss": [1.0, float("nan")]}})
    report = history.report()
    assert "the loss became nan at step 2 (learning rate unknown)" in report


def test_a_run_that_learns_fast_in_its_first_steps_is_not_called_a_spike():
    """Standardised digits with Adam: the loss falls within the first window,
    whose mean is then far below the first steps' losses; those first steps
    are not a spike."""
    X, y = nnc.datasets.load_digits()
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    model = nnc.Sequential(nnc.Dense(64, 128), nnc.ReLU(), nnc.Dense(128, 10), seed=0)
    history = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=32).fit(
        X, y, epochs=40, verbose=False)
    losses = history.steps["loss"]
    window = D._window(len(losses))
    assert max(losses[:3]) > D.LOSS_SPIKE_FACTOR * np.mean(losses[:window])  # the premise
    assert kinds(history) == []


def test_dead_relus_from_a_large_step_are_not_called_saturation():
    """A ReLU net killed by lr=5: the gradient stops at the dead units, and
    the advice is the learning rate, not 'ReLU instead of sigmoid'. (At lr=2
    a unit or two may come back now and then, depending on the order in
    which the BLAS build for this CPU adds: no verdict on some CPUs.)"""
    X, y = nnc.datasets.load_digits()
    model = nnc.Sequential(nnc.Dense(64, 128), nnc.ReLU(), nnc.Dense(128, 10), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=5.0), diagnostics=True, nan_guard=False)
    trainer.fit(X, y, epochs=10, verbose=False)
    verdicts = {v.kind: v for v in D.diagnose(trainer.history)}
    assert "dead_relu" in verdicts
    vanishing = verdicts["vanishing_gradients"]
    assert "dead ReLU units of layer 1" in vanishing.message
    assert vanishing.advice.startswith("lower the learning rate")
    assert "sigmoid" not in vanishing.advice


def test_every_per_layer_record_is_one_history_checks():
    """History.from_dict checks per-layer names against history.PER_LAYER:
    every per-layer statistic the diagnostics write must be in it."""
    from nnc.history import PER_LAYER

    layers = [nnc.Dense(64, 8, bias=False), nnc.BatchNorm(8), nnc.ReLU(), nnc.Dense(8, 10)]
    history = fit(layers, nnc.SGD(0.1), *digits(), epochs=1)
    stems = {name.partition(".")[0] for part in (history.steps, history.diagnostics)
             for name in part if "." in name}
    assert stems and stems <= set(PER_LAYER)


def test_unscaled_inputs_are_named_first_and_standardised_ones_are_not():
    X, y = digits()
    history = fit(mlp(), nnc.SGD(0.01), X * 100, y, epochs=2)
    assert kinds(history)[0] == "unscaled_inputs"
    first = np.random.default_rng(0).permutation(len(X))[:32]  # the trainer's seed=0 shuffle
    rms = np.sqrt(np.mean(np.square(X[first] * 100, dtype=np.float64)))
    assert history.diagnostics["input_rms"][0] == pytest.approx(rms, rel=1e-6)
    standardised = (X - X.mean(0)) / (X.std(0) + 1e-6)
    assert "unscaled_inputs" not in kinds(fit(mlp(), nnc.SGD(0.01), standardised, y, epochs=2))


@pytest.mark.parametrize("scale", [1, 100])
def test_fit_warns_about_unscaled_features_and_records_their_scale(scale):
    X, y = digits()
    rms = float(np.sqrt(np.mean(np.square(X * scale, dtype=np.float64))))
    trainer = nnc.Trainer(nnc.Sequential(*mlp(), seed=0), optimizer=nnc.SGD(0.01))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(X * scale, y, epochs=1, verbose=False)
    said = [str(w.message) for w in caught if "root-mean-square" in str(w.message)]
    # a sample of the rows: the whole set's scale within a few per cent
    assert trainer.history.meta["input_rms"] == pytest.approx(rms, rel=0.05)
    if scale == 1:
        assert not said and "unscaled_inputs" not in kinds(trainer.history)
    else:
        assert len(said) == 1 and said[0].startswith("X has a root-mean-square of")
        assert caught[0].filename == __file__  # points at the caller's fit
        # the report says it without diagnostics on, from the recorded scale
        assert kinds(trainer.history)[0] == "unscaled_inputs"
        assert "over the training data" in trainer.history.report()


def test_fit_says_nothing_of_unscaled_features_a_batchnorm_standardises_or_when_told():
    X, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nnc.Trainer(nnc.Sequential(nnc.BatchNorm(64), *mlp(), seed=0)).fit(
            X * 100, y, epochs=1, verbose=False)
        quiet = nnc.Trainer(nnc.Sequential(*mlp(), seed=0))
        quiet.warn_unscaled = False
        quiet.fit(X * 100, y, epochs=1, verbose=False)
    assert kinds(quiet.history)[0] == "unscaled_inputs"  # still in the report


@pytest.mark.parametrize("offset", [0.0, 150.0])
def test_unscaled_regression_targets_are_warned_about_and_reported(offset):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 5)).astype(np.float32)
    y = (X @ rng.normal(size=(5, 1)) + offset).astype(np.float32)
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(5, 8), nnc.Tanh(), nnc.Dense(8, 1), seed=0),
                          loss="mse", optimizer=nnc.Adam(1e-3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(X, y, epochs=2, verbose=False)
    said = [str(w.message) for w in caught if "root-mean-square" in str(w.message)]
    verdicts = kinds(trainer.history)
    if offset:
        assert len(said) == 1 and said[0].startswith("y has a root-mean-square of 1")
        assert "unscaled_targets" in verdicts and "unscaled_inputs" not in verdicts
        assert "TransformedTargetRegressor" in trainer.history.report()
    else:
        assert not said and "unscaled_targets" not in verdicts


def test_a_rise_of_the_loss_within_noise_is_not_a_learning_rate_too_large():
    history = History()
    history.steps.update({"loss": [2.0] + [1.0] * 9, "lr": [0.1] * 10, "grad_norm": [1.0] * 10})
    history.epochs["loss"] = [1.5, 1.08685, 1.08700, 1.08720, 1.08742]  # +0.05 %
    assert "lr_too_large" not in kinds(history)
    history.epochs["loss"] = [1.5, 1.0, 1.2, 1.4, 1.6]
    assert kinds(history)[0] == "lr_too_large"


def test_dead_units_are_not_also_called_slow_learning():
    """Dead units take no update: a tiny update ratio is their symptom, and
    'raise the learning rate' would be the wrong advice."""
    history = History()
    history.steps.update({"loss": list(np.linspace(2, 1, 8)), "lr": [0.1] * 8,
                          "grad_norm": [1.0] * 8})
    history.epochs["loss"] = [1.8, 1.5, 1.3, 1.1]
    history.diagnostics = {"step": list(range(1, 9)), "epoch": [0, 0, 1, 1, 2, 2, 3, 3],
                           "dead_fraction.1": [1.0] * 8, "update_ratio.0": [1e-7] * 8}
    assert kinds(history) == ["dead_relu"]
    del history.diagnostics["dead_fraction.1"]
    assert kinds(history) == ["slow_learning"]


def test_input_rms_is_the_models_input_whatever_the_first_layer():
    X, y = digits()
    history = fit([nnc.Dropout(0.1)] + mlp(), nnc.SGD(0.01), X * 100, y, epochs=1)
    assert np.isfinite(history.diagnostics["input_rms"]).all()
    assert kinds(history)[0] == "unscaled_inputs"
    normalised = fit([nnc.BatchNorm(64)] + mlp(), nnc.SGD(0.01), X * 100, y, epochs=1)
    assert "unscaled_inputs" not in kinds(normalised)  # the first layer standardises


def test_a_record_new_to_a_resumed_history_is_padded_to_the_measured_steps():
    X, y = digits(128)
    model = nnc.Sequential(*mlp(), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.01), diagnostics=True)
    trainer.fit(X, y, epochs=1, verbose=False)
    d = trainer.history.diagnostics
    del d["input_rms"]  # as a history from before the record existed
    trainer.fit(X, y, epochs=1, verbose=False)
    assert len(d["input_rms"]) == len(d["step"]) == 8 and np.isnan(d["input_rms"][:4]).all()


def test_a_training_loss_rise_while_the_validation_loss_falls_is_noise():
    history = History()
    history.steps.update({"loss": [4.0] + [3.5] * 9, "lr": [0.01] * 10, "grad_norm": [1.0] * 10})
    history.epochs["loss"] = [5.0, 3.4, 3.5, 3.6, 3.69]  # +8.5 % over three epochs
    history.epochs["val_loss"] = [9.0, 4.0, 3.0, 2.5, 2.04]
    assert "lr_too_large" not in kinds(history)
    history.epochs["val_loss"] = [9.0, 4.0, 4.3, 4.6, 5.0]
    assert kinds(history)[0] == "lr_too_large"


def test_the_report_header_shows_epoch_losses():
    history = History()
    history.steps.update({"loss": [5.93e3, 2.0, 0.0], "lr": [0.1] * 3, "grad_norm": [1.0] * 3})
    history.epochs["loss"] = [3.47]
    assert "epoch loss 3.47 -> 3.47" in D.report(history).splitlines()[0]


def test_a_run_that_learned_and_ends_at_its_best_validation_loss_needs_a_larger_rise():
    history = History()
    history.steps.update({"loss": [4.0] + [2.0] * 9, "lr": [0.01] * 10, "grad_norm": [1.0] * 10})
    history.epochs["loss"] = [5.0, 3.0, 3.03, 3.06, 3.09, 2.5]  # a 3 % rise mid-run
    history.epochs["val_loss"] = [6.0, 3.5, 3.4, 3.45, 3.5, 3.0]  # ends at its best
    assert "lr_too_large" not in kinds(history)
    history.epochs["val_loss"][-1] = 3.6  # ends far from its best: the rise counts
    assert kinds(history)[0] == "lr_too_large"
    history.epochs["loss"] = [2.0, 0.5, 0.3, 0.35, 0.45, 0.6]  # a rise of 100 %
    history.epochs["val_loss"] = [2.0, 0.6, 0.40, 0.41, 0.42, 0.419]
    assert kinds(history)[0] == "lr_too_large"


def test_a_small_rise_needs_the_validation_loss_to_confirm_it():
    history = History()
    history.steps.update({"loss": [2.3] * 10, "lr": [1.5] * 10, "grad_norm": [1.0] * 10})
    history.epochs["loss"] = [2.25, 2.28, 2.31, 2.33]  # +3.6 %, near chance
    assert "lr_too_large" not in kinds(history)  # without validation data: noise-sized
    history.epochs["val_loss"] = [2.2, 2.3, 2.32, 2.35]
    assert kinds(history)[0] == "lr_too_large"


def test_the_plateau_advice_knows_the_run_used_adam():
    history = History()
    history.steps.update({"loss": list(np.linspace(2.0, 1.19, 20)), "lr": [1e-3] * 20,
                          "grad_norm": [1.0] * 20})
    history.epochs["loss"] = [2.0, 1.19, 1.189, 1.188, 1.187]
    advice = {}
    for optimizer in ("Adam(lr=0.001)", "SGD(lr=0.1)"):
        history.meta = {"optimizer": optimizer}
        (verdict,) = [v for v in D.diagnose(history) if v.kind == "plateau"]
        advice[optimizer] = verdict.advice
    assert "or Adam" not in advice["Adam(lr=0.001)"] and "or Adam" in advice["SGD(lr=0.1)"]
    X, y = digits(64)
    trained = fit(mlp(), nnc.Adam(1e-3), X, y, epochs=1, diagnostics=False)
    assert trained.meta["optimizer"].startswith("Adam(")  # recorded without diagnostics


def test_a_last_layer_without_gradient_is_named_not_a_division_by_zero():
    """A zero-initialised hidden layer feeding tanh(0) = 0 into the output
    layer: the first layer's gradient is finite, the last one's 0."""
    X, y = digits(200)
    model = nnc.Sequential(nnc.Dense(64, 16, init="zeros", bias=False), nnc.Tanh(),
                           nnc.Dense(16, 10, bias=False), seed=0)
    history = nnc.Trainer(model, optimizer=nnc.SGD(lr=0.0)).fit(X, y, epochs=2, verbose=False)
    found = {v.kind: v for v in D.diagnose(history)}
    assert found["vanishing_gradients"].message.startswith(
        "no gradient reaches layer 2 (Dense) (norm 0, layer 0 (Dense): ")
    assert "init='zeros'" in found["vanishing_gradients"].advice
    history.report()


def test_losses_of_zero_are_no_division_by_zero():
    history = History()
    losses = [0.0] * D.SPIKE_START_STEPS + [5.0] * 20  # a spike from a start of 0
    history.steps.update({"loss": losses, "lr": [0.1] * 23, "grad_norm": [1.0] * 23})
    history.epochs["loss"] = [0.0] + [5.0] * (D.PLATEAU_EPOCHS + 2)  # flat, from a first 0
    assert "nnc diagnosis" in history.report()


def test_the_report_of_any_recorded_numbers_is_text_not_an_error():
    """Zeros, tiny, huge and non-finite values in every record (a ratio of
    two gradient norms once divided by zero)."""
    rng = np.random.default_rng(0)
    values = [0.0, 1.0, 1e-300, 1e300, math.nan, math.inf, 5.0]
    for _ in range(1000):
        history = History()
        n = int(rng.integers(1, 12))

        def pick():
            return [float(v) for v in rng.choice(values, n)]

        history.steps.update({"loss": pick(), "lr": pick(), "grad_norm": pick(),
                              "grad_norm.0": pick(), "grad_norm.2": pick()})
        history.epochs["loss"] = [float(v) for v in rng.choice(values, rng.integers(0, 8))]
        history.diagnostics = {"step": list(range(1, n + 1)), "epoch": [0] * n,
                               "dead_fraction.1": pick(), "update_ratio.0": pick(),
                               "input_rms": pick()}
        history.meta = {"layers": ["Dense", "ReLU", "Dense"],
                        "input_rms": float(rng.choice(values)),
                        "target_rms": float(rng.choice(values))}
        assert history.report().startswith("nnc diagnosis")


def test_records_a_callback_logs_are_left_out_of_the_report_and_kept_by_files(tmp_path):
    """Only records nnc reads must hold numbers (a checkpoint with a callback's
    "grad_norm.clipped" or text notes was written, then refused on loading)."""
    history = History()
    history.steps.update({"loss": [1.0, 0.5], "lr": [0.1, 0.1], "grad_norm": [1.0, 1.0],
                          "grad_norm.²": [1.0, 1.0], "grad_norm.clipped": [3.0, 3.0],
                          "note": ["warm-up", "main"],
                          "grad_norm.0": [1.0, 2.0], "grad_norm.3": [1e-3, 1e-3]})
    assert "layer 0 is 2e+03x layer 3's" in history.report()  # the others are left out
    history.save(tmp_path / "run.json")
    again = History.load(tmp_path / "run.json")
    assert again.steps == history.steps
    with pytest.raises(ValueError, match=r"steps\['grad_norm'\]\[0\] must be a number"):
        History.from_dict({"steps": {"grad_norm": ["x"]}, "epochs": {}})


def deep(activation, init, depth=6, batchnorm=False):
    layers, n = [], 64
    for _ in range(depth):
        layers += [nnc.Dense(n, 64, init=init, bias=not batchnorm)]
        layers += [nnc.BatchNorm(64)] if batchnorm else []
        layers += [activation()]
    return layers + [nnc.Dense(64, 10, init=init)]


@pytest.mark.parametrize("init, kind, change", [
    (nnc.init.normal(0.5), "exploding_activations", "grows"),   # std x ~2.8 per ReLU layer
    (nnc.init.normal(0.1), "vanishing_activations", "shrinks"),  # std x ~0.6 per ReLU layer
])
def test_an_initialisation_that_breaks_the_variance_rule_is_named(init, kind, change):
    history = fit(deep(nnc.ReLU, init), nnc.SGD(1e-4), *digits(512), epochs=1)
    found = {v.kind: v for v in D.diagnose(history)}
    assert kind in found
    message = found[kind].message
    assert message.startswith("at step 1 the outputs z of layer 0 (Dense) have a std of")
    assert f"the scale {change}" in message and "over 7 Dense layers" in message
    assert "he_normal" in found[kind].advice


@pytest.mark.parametrize("layers", [
    deep(nnc.ReLU, None), deep(nnc.Tanh, None), deep(nnc.Sigmoid, None),
    deep(nnc.ReLU, nnc.init.normal(0.5), batchnorm=True),  # batch-norm rescales every layer
    [nnc.Dense(64, 1, init=nnc.init.normal(0.5)), nnc.ReLU(), nnc.Dense(1, 10)],  # not deep
])
def test_the_variance_rule_holds_for_default_inits_and_batchnorm(layers):
    history = fit(layers, nnc.SGD(1e-4), *digits(512), epochs=1)
    assert not {"exploding_activations", "vanishing_activations"} & set(kinds(history))


def test_unscaled_inputs_are_named_instead_of_the_initialisation():
    X, y = digits(512)
    layers = [nnc.Dense(64, 128), nnc.Tanh(), nnc.Dense(128, 128), nnc.Tanh(), nnc.Dense(128, 10)]
    found = kinds(fit(layers, nnc.SGD(1e-3), X * 100, y, epochs=1))
    assert "unscaled_inputs" in found and "vanishing_activations" not in found
    # a bad initialisation still shows, judged from the second Dense layer on
    found = kinds(fit(deep(nnc.ReLU, nnc.init.normal(0.5)), nnc.SGD(1e-6), X * 100, y, epochs=1))
    assert "unscaled_inputs" in found and "exploding_activations" in found


def test_no_activation_verdict_for_dropout_nets_or_one_value_per_measurement():
    """Dropout's training-mode 1/(1-p) doubles the variance at every p=0.5
    layer of a healthy He net; a batch of 1 with one output has no spread."""
    import warnings

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 20)).astype(np.float32)
    layers = [nnc.Dense(20, 64, init="he_normal")]
    for _ in range(7):  # (without the rule: 9 Dense layers, their std grows ~15x)
        layers += [nnc.ReLU(), nnc.Dropout(0.5), nnc.Dense(64, 64, init="he_normal")]
    layers += [nnc.ReLU(), nnc.Dropout(0.5), nnc.Dense(64, 3)]
    trainer = nnc.Trainer(nnc.Sequential(*layers, seed=0), optimizer=nnc.SGD(0.01),
                          batch_size=64, diagnostics=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = trainer.fit(X, rng.integers(0, 3, 256), epochs=1, verbose=0)
    assert not {"exploding_activations", "vanishing_activations"} & set(kinds(history))
    model = nnc.Sequential(nnc.Dense(20, 32, init="lecun_normal"), nnc.Tanh(),
                           nnc.Dense(32, 32, init="lecun_normal"), nnc.Tanh(),
                           nnc.Dense(32, 1), seed=0)
    trainer = nnc.Trainer(model, loss="bce_with_logits", optimizer=nnc.SGD(0.01), batch_size=1,
                          diagnostics=True)
    history = trainer.fit(X[:32], (X[:32, :1] > 0).astype(np.float32), epochs=1, verbose=0)
    assert "vanishing_activations" not in kinds(history)


def test_an_all_zero_output_is_vanishing_activations():
    """Zero-initialised hidden layers: the last Dense output is exactly 0,
    the most extreme vanishing (not 'no spread')."""
    rng = np.random.default_rng(0)
    model = nnc.Sequential(nnc.Dense(20, 32, init="lecun_normal"), nnc.Tanh(),
                           nnc.Dense(32, 32, init="zeros"), nnc.Tanh(),
                           nnc.Dense(32, 32, init="zeros"), nnc.Tanh(),
                           nnc.Dense(32, 3, init="zeros"), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.01), batch_size=64, diagnostics=True)
    history = trainer.fit(rng.normal(size=(256, 20)).astype(np.float32),
                          rng.integers(0, 3, 256), epochs=1, verbose=0)
    assert "vanishing_activations" in kinds(history)
