"""The NaN/Inf guard: training stops before a non-finite update, names the
step and the layer, and leaves the last finite weights."""
import math
import warnings

import numpy as np
import pytest

import nnc
from nnc.callbacks import LambdaCallback


@pytest.fixture(scope="module")
def digits():
    X, y = nnc.datasets.load_digits()
    return X[:256], y[:256], np.eye(10, dtype=np.float32)[y[:256]]


def exploding(backend, hidden):
    """MSE regression with lr=1e4: the loss grows ~1e8-fold per step."""
    layers = [nnc.Dense(64, 16), nnc.ReLU(), nnc.Dense(16, 10)] if hidden else [nnc.Dense(64, 10)]
    model = nnc.Sequential(*layers, seed=0, backend=backend)
    after_steps = [model.flat_params.copy()]
    trainer = nnc.Trainer(model, loss="mse", optimizer=nnc.SGD(1e4), batch_size=32,
                          callbacks=[LambdaCallback(on_step_end=lambda t, logs: after_steps.append(
                              t.model.flat_params.copy()))])
    return trainer, after_steps


@pytest.mark.parametrize("hidden", [False, True], ids=["linear", "mlp"])
def test_guard_stops_before_the_update_with_the_last_finite_weights(digits, backend_name,
                                                                    hidden):
    X, _, Y = digits
    trainer, after_steps = exploding(backend_name, hidden)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # the NumPy reference overflowing
        with pytest.raises(nnc.TrainingDiverged) as info:
            trainer.fit(X, Y, epochs=5, verbose=False)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert error.step == trainer.step_count == len(after_steps) - 1 > 0
    message = str(error)
    assert f"step {error.step + 1} (epoch {error.epoch + 1})" in message  # words count from 1
    assert error.layer is not None and f"layer {error.layer} (Dense" in message
    assert "lower learning rate" in message and "clip_norm" in message
    # weights: exactly those after the last step that was applied, all finite
    assert np.array_equal(trainer.model.flat_params, after_steps[-1])
    assert np.isfinite(trainer.model.flat_params).all()
    # the history holds the applied steps only
    steps = trainer.history.steps
    assert len(steps["loss"]) == len(steps["grad_norm"]) == len(steps["grad_norm.0"]) \
        == trainer.step_count
    assert all(math.isfinite(v) for v in steps["loss"])


def test_non_finite_weights_are_named(digits):
    X, y, _ = digits
    model = nnc.Sequential(nnc.Dense(64, 16), nnc.ReLU(), nnc.Dense(16, 10), seed=0)
    model.layers[0].params["W"][3, 2] = np.inf
    before = model.flat_params.copy()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1))
    with pytest.raises(nnc.TrainingDiverged, match=r"step 1 \(epoch 1\).*loss is nan.* layer 2 "
                                                   r"\(Dense.*weights of layer 0 are already "
                                                   r"non-finite") as raised:
        trainer.fit(X, y, verbose=False)
    assert np.array_equal(model.flat_params, before, equal_nan=True)
    assert trainer.step_count == raised.value.step == 0  # the attributes count from 0


def test_guard_off_and_warn_modes(digits):
    X, _, Y = digits
    trainer, _ = exploding("cython", hidden=False)
    trainer.nan_guard = None  # what nan_guard=False sets
    trainer.fit(X, Y, epochs=2, verbose=False)
    assert not all(math.isfinite(v) for v in trainer.history.steps["loss"])

    ended = []
    model = nnc.Sequential(nnc.Dense(64, 10), seed=0)
    trainer = nnc.Trainer(model, loss="mse", optimizer=nnc.SGD(1e4), nan_guard="warn",
                          callbacks=[LambdaCallback(on_train_end=lambda t: ended.append(1))])
    with pytest.warns(RuntimeWarning, match="training diverged at step"):
        history = trainer.fit(X, Y, epochs=5, verbose=False)
    assert ended and np.isfinite(model.flat_params).all()
    assert len(history.steps["loss"]) == trainer.step_count


def test_guard_argument_is_checked():
    model = nnc.Sequential(nnc.Dense(4, 2), seed=0)
    assert nnc.Trainer(model, nan_guard=False).nan_guard is None
    assert nnc.Trainer(model).nan_guard == "raise"
    for bad in ("ignore", 1, None):
        with pytest.raises(ValueError, match="nan_guard"):
            nnc.Trainer(model, nan_guard=bad)


def test_guard_does_not_change_a_healthy_run(digits):
    X, y, _ = digits
    runs = []
    for guard in (True, False):
        model = nnc.Sequential(nnc.Dense(64, 16), nnc.ReLU(), nnc.Dense(16, 10), seed=0)
        trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1, momentum=0.9), nan_guard=guard)
        trainer.fit(X, y, epochs=2, verbose=False)
        runs.append((model.flat_params, trainer.history.steps))
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


def _bn_model():
    return nnc.Sequential(nnc.Dense(64, 32, bias=False), nnc.BatchNorm(32), nnc.ReLU(),
                          nnc.Dense(32, 10), seed=0)


def test_a_refused_step_puts_back_the_running_statistics_its_forward_changed():
    X, y = nnc.datasets.load_digits()
    model = _bn_model()
    model.layers[0].params["W"][...] *= 1e37  # finite weights, non-finite activations
    before = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=0.1), batch_size=64)
    with pytest.raises(nnc.TrainingDiverged, match="running statistics were put back. The "
                                                   "model keeps the weights of the last"):
        trainer.fit(X, y, epochs=1, verbose=False)
    for name, value in before.items():
        np.testing.assert_array_equal(model.layers[1].buffers[name], value)


def test_running_statistics_that_overflow_stop_training_and_the_model_stays_loadable(
        tmp_path):
    """A learning rate that blows up the activations but not (yet) the loss:
    batch-norm's running variance would overflow; the guard refuses that
    step, so what is saved can be loaded."""
    X, y = nnc.datasets.load_digits()
    model = _bn_model()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=100.0), batch_size=64)
    with pytest.raises(nnc.TrainingDiverged, match=r"the running statistics of layer 1 "
                                                   r"\(BatchNorm.*\) became non-finite"):
        trainer.fit(X, y, epochs=20, verbose=False)
    assert all(np.isfinite(b).all() for b in model.layers[1].buffers.values())
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nnc.load(tmp_path / "m.npz").predict(X), model.predict(X))


@pytest.mark.filterwarnings("ignore:y has a root-mean-square")  # on purpose
@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("make", [lambda: nnc.Adam(1e-3), lambda: nnc.RMSprop(1e-3),
                                  lambda: nnc.Adagrad(1e-3)], ids=["Adam", "RMSprop", "Adagrad"])
def test_a_gradient_whose_square_overflows_the_state_is_refused(backend, make):
    """A finite spike of 6e20 would square to inf in the optimizer's state
    and freeze the weight for good (m / inf = 0 afterwards)."""
    model = nnc.Sequential(nnc.Dense(1, 1), backend=backend, seed=0)
    trainer = nnc.Trainer(model, loss="mse", optimizer=make(), batch_size=1)
    X = np.ones((1, 1), np.float32)
    before = model.flat_params.copy()
    with pytest.raises(nnc.TrainingDiverged, match="squared would overflow float32"):
        trainer.fit(X, np.array([[3e20]], np.float32), verbose=False)
    np.testing.assert_array_equal(model.flat_params, before)
    assert all(np.isfinite(v).all() for v in trainer.optimizer.state.values())
    # clipped first, the same spike is harmless
    clipped = nnc.Trainer(model, loss="mse", optimizer=make(), batch_size=1, clip_norm=1.0)
    clipped.fit(X, np.array([[3e20]], np.float32), verbose=False)
    assert np.isfinite(model.flat_params).all()


@pytest.mark.filterwarnings("ignore:y has a root-mean-square")  # on purpose
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_adagrad_sum_that_would_overflow_over_several_steps_is_refused(backend):
    """Adagrad's r only grows: four steps of |g| ≈ 1.2e19 each fit in float32
    alone but not summed. The guard keeps a bound of max(r) as a float."""
    model = nnc.Sequential(nnc.Dense(1, 1), backend=backend, seed=0)
    optimizer = nnc.Adagrad(1e-3)
    trainer = nnc.Trainer(model, loss="mse", optimizer=optimizer, batch_size=1)
    with pytest.raises(nnc.TrainingDiverged, match="squared would overflow float32"):
        trainer.fit(np.ones((8, 1), np.float32), np.full((8, 1), -6e18, np.float32),
                    verbose=False, shuffle=False)
    assert 1 <= trainer.step_count < 8
    assert np.isfinite(optimizer.state["sum_squares"]).all()
    # a state loaded later is read exactly again
    optimizer.load_state_dict(optimizer.state_dict())
    assert optimizer.can_take(1.0)
