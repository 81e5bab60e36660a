"""EarlyStopping, ModelCheckpoint, ReduceLROnPlateau and CSVLogger.

Most tests feed the callback a scripted metric ("score") through a
LambdaCallback that runs first and writes it into the epoch logs, so the
expected behaviour is exact."""
import pickle
import csv
import warnings

import numpy as np
import pytest

import nnc
from nnc.callbacks import (CSVLogger, EarlyStopping, LambdaCallback, ModelCheckpoint,
                           ReduceLROnPlateau)


@pytest.fixture(scope="module")
def data():
    X, y = nnc.datasets.load_digits()
    return X[:96], y[:96]


def make_trainer(seed=0, **kwargs):
    model = nnc.Sequential(nnc.Dense(64, 8, bias=False), nnc.BatchNorm(8), nnc.ReLU(),
                           nnc.Dense(8, 10), seed=seed)
    return nnc.Trainer(model, optimizer=kwargs.pop("optimizer", nnc.SGD(0.05)), batch_size=32,
                       **kwargs)


def scripted(scores, snapshots=None):
    """Writes scores[epoch] into logs["score"]; records the weights per epoch."""
    def on_epoch_end(trainer, epoch, logs):
        logs["score"] = scores[epoch]
        if snapshots is not None:
            snapshots.append(trainer.model.flat_params.copy())
    return LambdaCallback(on_epoch_end=on_epoch_end)


def test_early_stopping_stops_after_patience_and_restores_the_best(data):
    snapshots = []
    stopper = EarlyStopping(monitor="score", patience=2)
    trainer = make_trainer()
    history = trainer.fit(*data, epochs=10, verbose=False,
                          callbacks=[scripted([5, 3, 4, 2, 2.5, 2.2, 1, 0], snapshots), stopper])
    # best at epoch 3; epochs 4 and 5 do not improve: stop after epoch 5
    assert len(history.epochs["loss"]) == 6
    assert stopper.best == 2 and stopper.best_epoch == 3 and stopper.stopped_epoch == 5
    assert np.array_equal(trainer.model.flat_params, snapshots[3])
    assert not np.array_equal(snapshots[3], snapshots[5])


def test_early_stopping_modes_min_delta_and_no_restore(data):
    stopper = EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05,
                            restore_best=False)
    assert stopper._best.mode == "max"  # "auto" for an accuracy
    trainer = make_trainer()
    snapshots = []
    trainer.fit(*data, epochs=10, verbose=False,
                callbacks=[scripted([0] * 10, snapshots),
                           LambdaCallback(on_epoch_end=lambda t, e, logs: logs.update(
                               val_accuracy=[0.5, 0.53, 0.9][min(e, 2)])), stopper])
    assert stopper.best == 0.5 and stopper.stopped_epoch == 1  # +0.03 is below min_delta
    assert np.array_equal(trainer.model.flat_params, snapshots[-1])


def test_early_stopping_on_real_validation_loss(data):
    X, y = data
    trainer = make_trainer(optimizer=nnc.SGD(0.5))
    stopper = EarlyStopping(patience=1)
    trainer.fit(X[:64], y[:64], epochs=30, validation_data=(X[64:], y[64:]), verbose=False,
                callbacks=[stopper])
    val = trainer.history.epochs["val_loss"]
    assert stopper.best == min(val) and val[stopper.best_epoch] == min(val)
    assert trainer.evaluate(X[64:], y[64:])["loss"] == pytest.approx(min(val), rel=1e-6)


def test_monitor_missing_from_the_logs_is_named(data):
    with pytest.raises(ValueError, match="monitors 'val_loss'.*validation_data"):
        make_trainer().fit(*data, epochs=2, verbose=False, callbacks=[EarlyStopping()])
    X, y = data
    with pytest.raises(ValueError, match=r"monitors 'val_accurcy'.*val_accuracy.*misspelled"):
        make_trainer().fit(X, y, epochs=2, verbose=False, validation_data=(X[:32], y[:32]),
                           callbacks=[EarlyStopping("val_accurcy")])


def test_model_checkpoint_writes_best_only(tmp_path, data):
    snapshots = []
    checkpoint = ModelCheckpoint(tmp_path / "best.npz", monitor="score", save_best_only=True)
    trainer = make_trainer()
    trainer.fit(*data, epochs=5, verbose=False,
                callbacks=[scripted([3, 2, 2.5, 1, 1.5], snapshots), checkpoint])
    assert [epoch for epoch, _ in checkpoint.saved] == [0, 1, 3]
    best = nnc.load(tmp_path / "best.npz")
    assert np.array_equal(best.flat_params, snapshots[3])


def test_model_checkpoint_every_epoch_with_a_name_template(tmp_path, data):
    checkpoint = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}-{loss:.2f}.npz"))
    make_trainer().fit(*data, epochs=2, verbose=False, callbacks=[checkpoint])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].startswith("ckpt-01-") and names[1].startswith("ckpt-02-")
    with pytest.raises(ValueError, match="cannot be filled in"):
        make_trainer().fit(*data, epochs=1, verbose=False,
                           callbacks=[ModelCheckpoint(str(tmp_path / "{nope}.npz"))])


def test_model_checkpoint_files_resume_bit_identically(tmp_path, data):
    uninterrupted = make_trainer()
    uninterrupted.fit(*data, epochs=3, verbose=False)
    make_trainer().fit(*data, epochs=2, verbose=False,
                       callbacks=[ModelCheckpoint(str(tmp_path / "e{epoch}.npz"))])
    resumed = make_trainer(seed=4)
    resumed.fit(*data, epochs=3, verbose=False, resume_from=tmp_path / "e2.npz")
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)
    assert resumed.history.steps == uninterrupted.history.steps


def test_reduce_lr_on_plateau(data):
    reducer = ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, min_lr=0.02)
    trainer = make_trainer(optimizer=nnc.SGD(0.1))
    history = trainer.fit(*data, epochs=8, verbose=False,
                          callbacks=[scripted([1.0, 0.5] + [0.6] * 6), reducer])
    # plateau from epoch 2: reduce after epochs 3 and 5; the floor 0.02 is hit at epoch 7
    assert reducer.reductions == [(3, 0.05), (5, 0.025), (7, 0.02)]
    assert trainer.optimizer.lr == 0.02
    lrs = history.steps["lr"]
    per_epoch = len(lrs) // 8
    assert lrs[0] == 0.1 and lrs[4 * per_epoch] == 0.05 and lrs[6 * per_epoch] == 0.025


def test_reduce_lr_refuses_a_schedule(data):
    trainer = make_trainer(schedule=nnc.schedules.Constant(0.1))
    with pytest.raises(ValueError, match="schedule"):
        trainer.fit(*data, epochs=1, verbose=False, callbacks=[ReduceLROnPlateau("loss")])


def test_csv_logger_writes_a_header_and_one_row_per_epoch(tmp_path, data):
    path = tmp_path / "log.csv"
    trainer = make_trainer()
    X, y = data
    history = trainer.fit(X[:64], y[:64], epochs=3, validation_data=(X[64:], y[64:]),
                          verbose=False, callbacks=[CSVLogger(path)])
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert len(rows) == 4 and [row[0] for row in rows[1:]] == ["1", "2", "3"]
    assert [float(row[3]) for row in rows[1:]] == history.epochs["val_loss"]  # exact
    trainer.fit(X[:64], y[:64], epochs=1, verbose=False, callbacks=[CSVLogger(path, append=True)])
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    assert len(rows) == 5 and rows[4][0] == "4" and rows[4][3] == ""  # no val_loss this time


@pytest.mark.parametrize("make, error", [
    (lambda: EarlyStopping(patience=-1), ValueError),
    (lambda: EarlyStopping(mode="best"), ValueError),
    (lambda: EarlyStopping(monitor=None), TypeError),
    (lambda: ReduceLROnPlateau(factor=1.5), ValueError),
    (lambda: ReduceLROnPlateau(min_lr=-1), ValueError),
    (lambda: ModelCheckpoint(None), TypeError),
    (lambda: CSVLogger(7), TypeError),
])
def test_bad_arguments(make, error):
    with pytest.raises(error):
        make()


def test_a_refused_fit_changes_nothing_first(tmp_path, data):
    """Callback settings that this fit cannot use are refused before the
    checkpoint is loaded and before any log file is truncated."""
    trainer = make_trainer()
    trainer.fit(*data, epochs=2, verbose=False)
    trainer.save_checkpoint(tmp_path / "c.npz")
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss\n1,0.5\n")
    scheduled = make_trainer(schedule=nnc.schedules.CosineDecay(0.1, 200))
    before = scheduled.state_dict()
    with pytest.raises(ValueError, match="ReduceLROnPlateau changes optimizer.lr"):
        scheduled.fit(*data, epochs=4, verbose=False, resume_from=tmp_path / "c.npz",
                      callbacks=[CSVLogger(log), ReduceLROnPlateau("loss")])
    assert log.read_text() == "epoch,loss\n1,0.5\n"
    np.testing.assert_array_equal(scheduled.model.flat_params, before["params"])
    assert scheduled.step_count == 0
    with pytest.raises(ValueError, match="ModelCheckpoint: the folder .* does not exist"):
        trainer.fit(*data, epochs=1, verbose=False,
                    callbacks=[ModelCheckpoint(tmp_path / "missing" / "m.npz")])


def test_csv_logger_appending_adds_columns_a_later_fit_brings(tmp_path, data):
    X, y = data
    log = CSVLogger(tmp_path / "log.csv", append=True)
    trainer = make_trainer()
    trainer.fit(X, y, epochs=2, verbose=False, callbacks=[log])
    trainer.fit(X[:64], y[:64], epochs=2, validation_data=(X[64:], y[64:]), verbose=False,
                callbacks=[log])
    rows = list(csv.DictReader(open(tmp_path / "log.csv", newline="")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["val_loss"] == "" for r in rows] == [True, True, False, False]
    assert float(rows[3]["val_loss"]) == pytest.approx(trainer.history.epochs["val_loss"][-1])


def test_a_checkpoint_saved_during_an_epoch_warns(tmp_path, data):
    saved = []

    def save(trainer, logs):
        if logs["step"] == 2:
            with pytest.warns(UserWarning, match="save_checkpoint during an epoch"):
                trainer.save_checkpoint(tmp_path / "mid.npz")
            saved.append(True)

    trainer = make_trainer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and none at the end of an epoch
        trainer.fit(*data, epochs=2, verbose=False, callbacks=[
            LambdaCallback(on_step_end=save), ModelCheckpoint(tmp_path / "end.npz")])
    assert saved == [True]


def test_model_checkpoint_best_only_never_replaces_a_better_file_after_resuming(tmp_path, data):
    X, y = data
    first = make_trainer(optimizer=nnc.SGD(0.5))
    checkpoint = ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    first.fit(X[:64], y[:64], epochs=6, validation_data=(X[64:], y[64:]), verbose=False,
              callbacks=[checkpoint])
    best = min(first.history.epochs["val_loss"])
    first.save_checkpoint(tmp_path / "run.npz")
    resumed = make_trainer(optimizer=nnc.SGD(0.5))
    again = ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    resumed.fit(X[:64], y[:64], epochs=12, validation_data=(X[64:], y[64:]), verbose=False,
                resume_from=tmp_path / "run.npz", callbacks=[again])
    later = resumed.history.epochs["val_loss"][6:]
    assert len(again.saved) == sum(v < min([best] + later[:i]) for i, v in enumerate(later))
    kept = nnc.Trainer(make_trainer().model, optimizer=nnc.SGD(0.5), batch_size=32)
    kept.load_checkpoint(tmp_path / "best.npz")
    assert min(kept.history.epochs["val_loss"]) == min([best] + later)


def test_verbose_2_prints_one_line_per_epoch_and_no_bar(data, capsys):
    X, y = data
    make_trainer().fit(X, y, epochs=3, verbose=2, validation_data=(X[:32], y[:32]))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3: loss ")
    assert "val_accuracy" in lines[2] and "batch" not in err
    make_trainer().fit(X, y, epochs=1, verbose=0)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00binary", "is not a CSV file to append to"),
    (b"\nepoch,loss\n1,0.5\n", "first line .* is not a header"),
])
def test_csv_logger_append_refuses_a_file_it_cannot_extend(tmp_path, data, content, message):
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    trainer = make_trainer()
    before = trainer.model.flat_params.copy()
    with pytest.raises(ValueError, match=message):
        trainer.fit(*data, epochs=1, verbose=False, callbacks=[CSVLogger(str(path), append=True)])
    assert path.read_bytes() == content  # refused before anything was written
    np.testing.assert_array_equal(trainer.model.flat_params, before)


@pytest.mark.parametrize("template", ["c{loss[0]}.npz", "c{loss.real.x}.npz", "c{nothing}.npz"])
def test_model_checkpoint_template_errors_name_the_template(tmp_path, data, template):
    callback = ModelCheckpoint(str(tmp_path / template), monitor="loss")
    with pytest.raises(ValueError, match="ModelCheckpoint path .* cannot be filled in"):
        make_trainer().fit(*data, epochs=1, verbose=False, callbacks=[callback])


def test_a_callback_given_twice_runs_once(data):
    calls = []
    a = LambdaCallback(on_epoch_end=lambda trainer, epoch, logs: calls.append("a"))
    b = LambdaCallback(on_epoch_end=lambda trainer, epoch, logs: calls.append("b"))
    trainer = make_trainer(callbacks=[a])
    trainer.fit(*data, epochs=2, verbose=False, callbacks=[b, a, b])
    assert calls == ["a", "b", "a", "b"]


@pytest.mark.parametrize("callback", [EarlyStopping("val_loss"), ModelCheckpoint(
    "never-written.npz", save_best_only=True), ReduceLROnPlateau("val_accuracy")])
def test_a_validation_monitor_without_validation_data_fails_before_training(data, callback):
    trainer = make_trainer()
    before = trainer.model.flat_params.copy()
    with pytest.raises(ValueError, match="validation_data"):
        trainer.fit(*data, epochs=2, verbose=False, callbacks=[callback])
    assert trainer.step_count == 0 and np.array_equal(trainer.model.flat_params, before)


def test_an_accuracy_monitor_of_a_regression_loss_fails_before_training():
    X = np.random.default_rng(0).normal(size=(20, 3))
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    trainer = nnc.Trainer(model, loss="mse", batch_size=10)
    with pytest.raises(ValueError, match="no accuracy"):
        trainer.fit(X, X[:, :2], verbose=False, validation_data=(X, X[:, :2]),
                    callbacks=[EarlyStopping("val_accuracy")])
    assert trainer.step_count == 0


def test_one_early_stopping_serves_models_of_another_layout():
    """The same parameter count, other batch-norm buffers: the snapshot is
    taken afresh instead of failing on the old model's buffer names."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), np.arange(40) % 3
    first = nnc.Sequential(nnc.Dense(4, 5, bias=False), nnc.BatchNorm(5), nnc.Dense(5, 3), seed=0)
    second = nnc.Sequential(nnc.Dense(4, 6), nnc.ReLU(), nnc.Dense(6, 3, bias=False), seed=0)
    assert first.flat_params.size == second.flat_params.size  # the premise
    stopper = EarlyStopping("loss", patience=3)
    for model in (first, second):
        trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.05), batch_size=10)
        trainer.fit(X, y, epochs=3, verbose=False, callbacks=[stopper])
        assert stopper.best == min(trainer.history.epochs["loss"])


@pytest.mark.parametrize("make", [
    lambda: nnc.callbacks.EarlyStopping("val_acc"),
    lambda: nnc.callbacks.ReduceLROnPlateau("val_acc"),
    lambda: nnc.callbacks.ModelCheckpoint("never-written.npz", monitor="val_acc",
                                          save_best_only=True)])
def test_an_unknown_monitor_is_refused_before_any_step(make, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.arange(16) % 2
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0), batch_size=8)
    before = trainer.model.flat_params.copy()
    with pytest.raises(ValueError, match="monitors 'val_acc'.*names it 'val_accuracy'"):
        trainer.fit(X, y, epochs=2, validation_data=(X, y), callbacks=[make()], verbose=False)
    assert trainer.history.steps["loss"] == [] and np.array_equal(trainer.model.flat_params, before)
    assert not (tmp_path / "never-written.npz").exists()


@pytest.mark.parametrize("make, attribute, value, error, match", [
    (lambda: nnc.callbacks.EarlyStopping(), "patience", "x", TypeError, "patience must be an int"),
    (lambda: nnc.callbacks.EarlyStopping(), "patience", -1, ValueError, "patience must be >= 0"),
    (lambda: nnc.callbacks.EarlyStopping(), "restore_best", "no", TypeError, "restore_best"),
    (lambda: nnc.callbacks.ReduceLROnPlateau(), "factor", float("nan"), ValueError, "factor"),
    (lambda: nnc.callbacks.ReduceLROnPlateau(), "factor", 5, ValueError, r"factor must lie in \(0, 1\)"),
    (lambda: nnc.callbacks.ReduceLROnPlateau(), "min_lr", -1, ValueError, "min_lr"),
    (lambda: nnc.callbacks.ReduceLROnPlateau(), "cooldown", 1.5, TypeError, "cooldown"),
    (lambda: nnc.callbacks.ModelCheckpoint("a.npz"), "path", 3, TypeError, "path"),
    (lambda: nnc.callbacks.EarlyStopping(), "monitor", "", TypeError, "monitor must be the name"),
    (lambda: nnc.Diagnostics(), "every", 0, ValueError, "every must be >= 1"),
])
def test_callback_settings_are_checked_when_changed(make, attribute, value, error, match):
    callback = make()
    before = getattr(callback, attribute)
    with pytest.raises(error, match=match):
        setattr(callback, attribute, value)
    assert getattr(callback, attribute) == before


def test_a_new_monitor_is_the_one_watched():
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.arange(16) % 2
    stopping = nnc.callbacks.EarlyStopping(patience=0)  # val_loss: needs validation data
    stopping.monitor = "accuracy"
    assert stopping._best.mode == "max"  # "auto" follows the new name
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0), batch_size=8)
    trainer.fit(X, y, epochs=3, callbacks=[stopping], verbose=False)  # no validation_data
    assert stopping.best == max(trainer.history["accuracy"][:stopping.best_epoch + 1])


def test_a_subclass_may_set_monitor_before_the_base_init():
    class Watching(EarlyStopping):
        def __init__(self, monitor="loss", **kwargs):
            self.monitor = monitor  # before super().__init__: no _best yet
            super().__init__(monitor=monitor, **kwargs)

    watching = Watching(patience=2)
    assert watching.monitor == "loss" and watching.patience == 2


def test_an_old_pickled_monitor_can_be_reassigned():
    stopping = EarlyStopping("val_accuracy", mode="auto")
    del stopping._best.requested_mode  # as pickled before the mode was kept
    old = pickle.loads(pickle.dumps(stopping))
    old.monitor = "val_loss"
    assert old.monitor == "val_loss" and old._best.mode == "min"
