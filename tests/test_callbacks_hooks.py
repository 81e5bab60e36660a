"""The callback hooks of Trainer.fit: order, arguments, stop_training."""
import numpy as np
import pytest

import nnc
from nnc.callbacks import Callback, LambdaCallback


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, trainer):
        self.events.append("train_begin")

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(f"epoch_begin {epoch}")

    def on_before_update(self, trainer):
        self.params_before = trainer.model.flat_params.copy()
        self.events.append("before_update")

    def on_step_end(self, trainer, logs):
        assert not np.array_equal(self.params_before, trainer.model.flat_params)
        self.events.append(f"step_end {logs['step']}")

    def on_epoch_end(self, trainer, epoch, logs):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, trainer):
        self.events.append("train_end")


def data():
    X, y = nnc.datasets.load_digits()
    return X[:64], y[:64]


def model():
    return nnc.Sequential(nnc.Dense(64, 8), nnc.ReLU(), nnc.Dense(8, 10), seed=0)


def test_hooks_run_in_order_with_their_arguments():
    recorder = Recorder()
    trainer = nnc.Trainer(model(), optimizer=nnc.SGD(0.1), batch_size=32)
    trainer.fit(*data(), epochs=2, verbose=False, callbacks=[recorder])
    assert recorder.events == [
        "train_begin", "epoch_begin 0", "before_update", "step_end 1", "before_update",
        "step_end 2", "epoch_end 0 ['accuracy', 'loss']", "epoch_begin 1", "before_update",
        "step_end 3", "before_update", "step_end 4", "epoch_end 1 ['accuracy', 'loss']",
        "train_end"]
    trainer.fit(*data(), epochs=1, verbose=False)  # fit-level callbacks do not persist
    assert len(recorder.events) == 14


def test_stop_training_ends_fit_after_the_current_step():
    def stop_at_three(trainer, logs):
        if logs["step"] == 3:
            trainer.stop_training = True

    trainer = nnc.Trainer(model(), optimizer=nnc.SGD(0.1), batch_size=16,
                          callbacks=[LambdaCallback(on_step_end=stop_at_three)])
    history = trainer.fit(*data(), epochs=5, verbose=False)
    assert len(history.steps["loss"]) == 3 and len(history.epochs["loss"]) == 1


def test_bad_callbacks_are_refused():
    with pytest.raises(TypeError, match="callbacks"):
        nnc.Trainer(model(), callbacks=[print])
    with pytest.raises(ValueError, match="hook"):
        LambdaCallback(on_lunch=print)
