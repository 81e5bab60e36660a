"""A training step that is refused (bad learning rate, the optimizer, a
callback) leaves no trace: weights, batch-norm statistics and history are
as before it; a refused checkpoint load leaves the model as it was."""
import warnings

import numpy as np
import pytest

import nnc
from archive_edits import rewrite
from nnc.callbacks import Callback, ReduceLROnPlateau


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 3)).astype(np.float32), np.arange(16) % 2


def batchnorm_trainer(**kwargs):
    model = nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4), nnc.ReLU(),
                           nnc.Dense(4, 2), seed=0)
    return nnc.Trainer(model, batch_size=4, **kwargs)


def buffers(trainer):
    return [b for layer in trainer.model.layers for b in layer.buffers.values()]


def snapshot(trainer):
    return {"params": trainer.model.flat_params.copy(),
            "buffers": [b.copy() for b in buffers(trainer)],
            "steps": {k: list(v) for k, v in trainer.history.steps.items()},
            "step_count": trainer.step_count}


def assert_unchanged(trainer, before):
    now = snapshot(trainer)
    np.testing.assert_array_equal(now["params"], before["params"])
    for a, b in zip(now["buffers"], before["buffers"]):
        np.testing.assert_array_equal(a, b)
    assert now["steps"] == before["steps"] and now["step_count"] == before["step_count"]


class RaiseBeforeUpdate(Callback):
    def __init__(self, after):
        self.after, self.calls = after, 0

    def on_before_update(self, trainer):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("stop here")


@pytest.mark.parametrize("nan_guard", [True, False])
@pytest.mark.parametrize("lr", [-1.0, float("nan"), "0.1", None])
def test_a_bad_optimizer_lr_is_refused_before_the_step(lr, nan_guard):
    """Refused where it is set (a checked setting); one that got past that
    (written into the instance dict) is refused by fit before the step."""
    X, y = data()
    trainer = batchnorm_trainer(nan_guard=nan_guard)
    trainer.fit(X, y, epochs=1, verbose=False)
    before = snapshot(trainer)
    with pytest.raises((ValueError, TypeError), match="lr"):
        trainer.optimizer.lr = lr
    assert trainer.optimizer.lr == 0.01  # unchanged
    vars(trainer.optimizer)["lr"] = lr
    with pytest.raises((ValueError, TypeError), match="optimizer.lr"):
        trainer.fit(X, y, epochs=1, verbose=False)
    assert_unchanged(trainer, before)
    trainer.optimizer.lr = 0.05
    trainer.fit(X, y, epochs=1, verbose=False)
    steps = trainer.history.steps
    assert len(steps["loss"]) == len(steps["lr"]) == len(steps["grad_norm"]) == 8


class StopAfter(Callback):
    def __init__(self, steps):
        self.steps = steps

    def on_step_end(self, trainer, logs):
        if logs["step"] >= self.steps:
            trainer.stop_training = True


@pytest.mark.parametrize("nan_guard", [True, "warn", False])
def test_the_refused_step_leaves_the_state_of_the_steps_before(nan_guard):
    """Refused at its third step, a fit leaves exactly what a fit that
    stopped after two steps leaves: weights, batch-norm statistics, history
    and diagnostics."""
    X, y = data()
    refused = batchnorm_trainer(nan_guard=nan_guard, diagnostics=True)
    with pytest.raises(RuntimeError, match="stop here"):
        refused.fit(X, y, epochs=1, verbose=False, callbacks=[RaiseBeforeUpdate(after=2)])
    stopped = batchnorm_trainer(nan_guard=nan_guard, diagnostics=True)
    stopped.fit(X, y, epochs=1, verbose=False, callbacks=[StopAfter(2)])
    np.testing.assert_array_equal(refused.model.flat_params, stopped.model.flat_params)
    for a, b in zip(buffers(refused), buffers(stopped)):
        np.testing.assert_array_equal(a, b)
    assert refused.step_count == stopped.step_count == 2
    assert refused.history.steps == stopped.history.steps
    d = refused.history.diagnostics
    assert d["step"] == [1, 2] and {len(v) for v in d.values()} == {2}


def test_an_adamw_rate_refused_at_the_next_fit_leaves_no_trace():
    X, y = data()
    trainer = batchnorm_trainer(optimizer=nnc.AdamW(lr=0.1, weight_decay=1.0))
    trainer.fit(X, y, epochs=1, verbose=False)
    before = snapshot(trainer)
    with pytest.raises(ValueError, match="weight_decay"):  # lr * weight_decay >= 1
        trainer.optimizer.lr = 1.5
    trainer.schedule = lambda t: 1.5  # a schedule's rate is checked at each step
    with pytest.raises(ValueError, match="weight_decay"):
        trainer.fit(X, y, epochs=1, verbose=False)
    assert_unchanged(trainer, before)


def test_learning_rate_zero_is_a_valid_setting():
    X, y = data()
    trainer = batchnorm_trainer(optimizer=nnc.SGD(0.0))
    before = trainer.model.flat_params.copy()
    trainer.fit(X, y, epochs=1, verbose=False)
    np.testing.assert_array_equal(trainer.model.flat_params, before)


def test_reduce_lr_on_plateau_down_to_zero_still_checkpoints(tmp_path):
    X, y = data()
    trainer = batchnorm_trainer(optimizer=nnc.SGD(1e-300))
    callback = ReduceLROnPlateau("loss", factor=1e-10, patience=0, min_delta=1e9)
    trainer.fit(X, y, epochs=5, verbose=False, callbacks=[callback])
    assert trainer.optimizer.lr == 0.0  # 1e-300 -> 1e-310 -> 1e-320 -> 0
    path = tmp_path / "zero.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.save_checkpoint(str(path))
        resumed = batchnorm_trainer(optimizer=nnc.SGD(0.1))
        resumed.load_checkpoint(str(path))
    assert resumed.optimizer.lr == 0.0


def test_a_checkpoint_refused_by_the_optimizer_leaves_the_model_as_it_was(tmp_path):
    X, y = data()
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0), optimizer=nnc.Adam(1e-2),
                          batch_size=4)
    trainer.fit(X, y, epochs=2, verbose=False)
    path = tmp_path / "c.npz"
    trainer.save_checkpoint(str(path))
    # an eps below float32's smallest normal: the optimizer refuses it
    rewrite(path, header=lambda header: header["optimizer"]["config"].__setitem__("eps", 1e-300))
    other = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=1), optimizer=nnc.Adam(1e-2),
                        batch_size=4)
    before = snapshot(other)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"c\.npz.*eps"):
            other.load_checkpoint(str(path))
    assert_unchanged(other, before)
