"""End to end: the demo network learns the bundled digits; the Trainer's
History, continuation, determinism, predict and forward contracts."""
import contextlib
import copy
import functools
import os
import pickle

import numpy as np
import pytest

import nnc
from nnc.layers import Layer

DEMO_EPOCHS = 20
DEMO_BATCH = 32
TARGET_ACCURACY = 0.95
# float32 training, cython vs numpy: rounding differences grow over 900
# steps; measured ~1.5e-6 relative on the step loss.
HISTORY_RTOL = 1e-4


@functools.lru_cache(maxsize=None)
def _digits():
    X, y = nnc.datasets.load_digits()
    return nnc.datasets.train_test_split(X, y, 0.2, seed=0)


def demo_model(backend, seed=0, dtype="float32"):
    return nnc.Sequential(nnc.Dense(64, 128), nnc.ReLU(), nnc.Dense(128, 10),
                          dtype=dtype, backend=backend, seed=seed)


@functools.lru_cache(maxsize=None)
def trained_demo(backend):
    Xtr, Xte, ytr, yte = _digits()
    model = demo_model(backend)
    trainer = nnc.Trainer(model, loss="softmax_cross_entropy", optimizer=nnc.SGD(lr=0.1),
                          batch_size=DEMO_BATCH)
    history = trainer.fit(Xtr, ytr, epochs=DEMO_EPOCHS, validation_data=(Xte, yte),
                          verbose=False)
    return model, trainer, history


# --- the demo ----------------------------------------------------------------

def test_demo_reaches_target_accuracy(backend_name):
    Xtr, Xte, ytr, yte = _digits()
    model, trainer, history = trained_demo(backend_name)
    result = trainer.evaluate(Xte, yte)
    assert result["accuracy"] >= TARGET_ACCURACY, result
    # independent check: argmax of predict on the held-out set
    assert np.mean(model.predict(Xte).argmax(axis=1) == yte) == pytest.approx(result["accuracy"])
    assert history.epochs["val_accuracy"][-1] == result["accuracy"]
    assert history.epochs["val_loss"][-1] == pytest.approx(result["loss"], rel=1e-12)
    assert history.epochs["loss"][-1] < 0.5 * history.epochs["loss"][0]
    assert history.epochs["accuracy"][-1] > 0.95


def test_backends_give_the_same_history():
    _, _, h_cy = trained_demo("cython")
    m_np, _, h_np = trained_demo("numpy")
    m_cy = trained_demo("cython")[0]
    np.testing.assert_allclose(h_cy.steps["loss"], h_np.steps["loss"], rtol=HISTORY_RTOL)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(h_cy.epochs[key], h_np.epochs[key], rtol=HISTORY_RTOL)
    for key in ("accuracy", "val_accuracy"):
        np.testing.assert_allclose(h_cy.epochs[key], h_np.epochs[key], atol=2 / 1437)
    np.testing.assert_allclose(m_cy.flat_params, m_np.flat_params, rtol=1e-3, atol=1e-4)


def test_history_contents():
    Xtr, _, _, _ = _digits()
    _, trainer, history = trained_demo("cython")
    n = Xtr.shape[0]
    steps_per_epoch = -(-n // DEMO_BATCH)
    assert len(history.steps["loss"]) == DEMO_EPOCHS * steps_per_epoch == trainer.step_count
    assert set(history.epochs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in history.epochs.items():
        assert len(values) == DEMO_EPOCHS, key
        assert all(isinstance(v, float) and np.isfinite(v) for v in values), key
    assert all(0 <= a <= 1 for a in history.epochs["accuracy"] + history.epochs["val_accuracy"])
    assert history["loss"] is history.epochs["loss"]
    assert "val_accuracy" in history and "loss" in history and "nope" not in history
    # an epoch's loss is the sample-weighted mean of its step losses
    sizes = [DEMO_BATCH] * (steps_per_epoch - 1) + [n - DEMO_BATCH * (steps_per_epoch - 1)]
    for epoch in (0, DEMO_EPOCHS - 1):
        steps = history.steps["loss"][epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        assert history.epochs["loss"][epoch] == pytest.approx(
            np.dot(steps, sizes) / n, rel=1e-12)
    d = history.to_dict()
    assert d["steps"]["loss"] == history.steps["loss"]
    assert d["epochs"]["val_loss"] == history.epochs["val_loss"]
    assert d["epochs"]["loss"] is not history.epochs["loss"]  # a copy


def _small_run(backend="cython", seed=0, epochs=2, dtype="float32"):
    Xtr, _, ytr, _ = _digits()
    X, y = Xtr[:300], ytr[:300]
    model = nnc.Sequential(nnc.Dense(64, 16), nnc.ReLU(), nnc.Dense(16, 10),
                           dtype=dtype, backend=backend, seed=seed)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=0.1), batch_size=32)
    return model, trainer, X, y


def test_second_fit_continues(backend_name):
    model, trainer, X, y = _small_run(backend_name)
    trainer.fit(X, y, epochs=2, verbose=False)
    steps_after_first = trainer.step_count
    assert steps_after_first == 2 * 10
    history = trainer.fit(X, y, epochs=1, verbose=False)
    assert history is trainer.history
    assert trainer.step_count == 3 * 10
    assert len(history.steps["loss"]) == 30
    assert len(history.epochs["loss"]) == 3
    # and it continues exactly where a single 3-epoch fit would be
    model3, trainer3, _, _ = _small_run(backend_name)
    trainer3.fit(X, y, epochs=3, verbose=False)
    np.testing.assert_array_equal(model.flat_params, model3.flat_params)
    assert history.steps["loss"] == trainer3.history.steps["loss"]


def test_same_seed_gives_bit_identical_weights(backend_name):
    runs = []
    for _ in range(2):
        model, trainer, X, y = _small_run(backend_name, seed=5)
        trainer.fit(X, y, epochs=2, verbose=False)
        runs.append((model.flat_params.copy(), list(trainer.history.steps["loss"])))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other, trainer, X, y = _small_run(backend_name, seed=6)
    trainer.fit(X, y, epochs=2, verbose=False)
    assert not np.array_equal(other.flat_params, runs[0][0])


def test_same_seed_same_initial_weights_in_both_backends(dtype):
    a = demo_model("cython", seed=3, dtype=dtype)
    b = demo_model("numpy", seed=3, dtype=dtype)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert a.flat_params.dtype == dtype
    assert not np.array_equal(a.flat_params, demo_model("cython", seed=4, dtype=dtype).flat_params)
    # biases start at zero, weights do not
    assert (a.layers[0].params["b"] == 0).all() and a.layers[0].params["W"].std() > 0


def test_mse_regression_learns_a_linear_target(backend_name, dtype):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(256, 3))
    w_true, b_true = np.array([[1.0], [-2.0], [0.5]]), 0.3
    y = X @ w_true + b_true
    model = nnc.Sequential(nnc.Dense(3, 1), dtype=dtype, backend=backend_name, seed=0)
    trainer = nnc.Trainer(model, loss="mse", optimizer=nnc.SGD(lr=0.1), batch_size=16)
    history = trainer.fit(X, y, epochs=40, verbose=False)
    assert "accuracy" not in history.epochs
    np.testing.assert_allclose(model.layers[0].params["W"], w_true, atol=1e-3)
    np.testing.assert_allclose(model.layers[0].params["b"], [b_true], atol=1e-3)
    assert trainer.evaluate(X, y)["loss"] < 1e-6
    assert set(trainer.evaluate(X, y)) == {"loss"}
    # a 1-d target vector is accepted for a single output
    trainer.fit(X, y.ravel(), epochs=1, verbose=False)


def test_bce_training_learns_a_threshold(backend_name):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 2))
    y = (X[:, :1] + X[:, 1:] > 0).astype(np.float64)
    model = nnc.Sequential(nnc.Dense(2, 1), dtype="float64", backend=backend_name, seed=0)
    trainer = nnc.Trainer(model, loss="bce_with_logits", optimizer=nnc.SGD(lr=1.0),
                          batch_size=20)
    history = trainer.fit(X, y, epochs=30, verbose=False)
    assert history.epochs["loss"][-1] < 0.5 * history.epochs["loss"][0]
    accuracy = np.mean((model.predict(X) > 0) == (y > 0.5))
    assert accuracy > 0.95
    # binary accuracy (Keras'), also over several outputs
    assert trainer.evaluate(X, y)["accuracy"] == accuracy
    assert history.epochs["accuracy"][-1] > 0.9
    two = np.hstack([y, 1 - y])
    model2 = nnc.Sequential(nnc.Dense(2, 2), dtype="float64", backend=backend_name, seed=0)
    trainer2 = nnc.Trainer(model2, loss="bce_with_logits", batch_size=20)
    expected = np.mean((model2.predict(X) > 0) == (two > 0.5))
    assert trainer2.evaluate(X, two)["accuracy"] == expected


# --- predict, forward, modes -------------------------------------------------

class Probe(Layer):
    """Identity layer that records the ``training`` flag it is called with."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, training=True):
        self.seen.append(training)
        return x

    def backward(self, dy, need_input_grad=True):
        return dy


def probe_model(backend, dtype="float32"):
    probe = Probe()
    model = nnc.Sequential(nnc.Dense(5, 4), nnc.Tanh(), probe, nnc.Dense(4, 3),
                           dtype=dtype, backend=backend, seed=0)
    return model, probe


def test_predict_uses_eval_mode_and_batches(backend_name, dtype):
    model, probe = probe_model(backend_name, dtype)
    X = np.random.default_rng(0).standard_normal((23, 5))
    assert model.training
    p7 = model.predict(X, batch_size=7)
    assert probe.seen == [False] * 4  # ceil(23 / 7) batches, all in eval mode
    assert model.training  # predict does not change the mode
    p1000 = model.predict(X, batch_size=1000)
    p1 = model.predict(X, batch_size=1)
    assert p7.shape == (23, 3) and p7.dtype == dtype
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(p7, p1000, **tol)
    np.testing.assert_allclose(p1, p1000, **tol)
    np.testing.assert_allclose(model.forward(X, training=False), p1000, **tol)
    trainer = nnc.Trainer(model, loss="mse", batch_size=5)
    np.testing.assert_allclose(trainer.predict(X), p1000, **tol)
    np.testing.assert_allclose(trainer.predict(X, batch_size=4), p1000, **tol)


def test_forward_uses_the_current_mode(backend_name):
    model, probe = probe_model(backend_name)
    X = np.ones((2, 5))
    model.forward(X)
    model.eval()
    model.forward(X)
    model.forward(X, training=True)
    model.train()
    model.forward(X)
    assert probe.seen == [True, False, True, True]


def test_trainer_modes(backend_name):
    model, probe = probe_model(backend_name)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 5)), rng.standard_normal((10, 3))
    trainer = nnc.Trainer(model, loss="mse", batch_size=5)
    model.eval()
    trainer.fit(X, y, epochs=1, validation_data=(X, y), verbose=False)
    # 2 training steps, then 2 validation batches
    assert probe.seen == [True, True, False, False]
    probe.seen.clear()
    model.train()
    trainer.evaluate(X, y)
    assert probe.seen == [False, False]
    assert model.training  # evaluate restores the mode


def test_forward_returns_an_array_the_caller_owns(backend_name):
    model, _ = probe_model(backend_name)
    rng = np.random.default_rng(0)
    X1, X2 = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    out1 = model.forward(X1)
    kept = out1.copy()
    out2 = model.forward(X2)
    np.testing.assert_array_equal(out1, kept)
    assert not np.shares_memory(out1, out2)
    out2[...] = 0  # writing into it does not break the model
    np.testing.assert_array_equal(model.forward(X1), kept)
    dx1 = model.backward(np.ones((6, 3)))
    kept_dx = dx1.copy()
    model.forward(X2)
    model.backward(2 * np.ones((6, 3)))
    np.testing.assert_array_equal(dx1, kept_dx)
    p1 = model.predict(X1)
    model.predict(X2)
    np.testing.assert_array_equal(p1, kept)


def test_backward_overwrites_gradients(backend_name):
    model, _ = probe_model(backend_name, dtype="float64")
    X = np.random.default_rng(0).standard_normal((4, 5))
    model.forward(X)
    model.backward(np.ones((4, 3)))
    first = model.flat_grads.copy()
    model.forward(X)
    model.backward(np.ones((4, 3)))
    np.testing.assert_allclose(model.flat_grads, first, rtol=1e-14)  # not 2x: no accumulation
    assert np.abs(first).sum() > 0


def test_backward_before_forward_raises(backend_name):
    model, _ = probe_model(backend_name)
    with pytest.raises(RuntimeError, match="forward"):
        model.backward(np.ones((2, 3)))


def test_unshuffled_first_step_is_the_first_batch(backend_name):
    model, trainer, X, y = _small_run(backend_name, dtype="float64")
    expected = nnc.SoftmaxCrossEntropy(backend_name).forward(model.forward(X[:32]), y[:32])
    history = trainer.fit(X, y, epochs=1, shuffle=False, verbose=False)
    assert history.steps["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_verbose_fit_prints_progress(capsys):
    model, trainer, X, y = _small_run()
    trainer.fit(X, y, epochs=1, verbose=True)
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.err + captured.out
    trainer.fit(X, y, epochs=1, verbose=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_backward_after_predict_is_refused_not_silently_wrong(backend_name):
    """DESIGN: model.backward(dY) back-propagates "through the last forward".
    predict() (or Trainer.evaluate) reuses the layers' buffers, so a
    backward() after it must raise instead of using predict's activations;
    a fresh forward() makes backward() right again."""
    rng = np.random.default_rng(0)
    model = nnc.Sequential(nnc.Dense(4, 5), nnc.ReLU(), nnc.Dense(5, 3),
                           dtype="float64", backend=backend_name, seed=0)
    X1, X2, dY = (rng.standard_normal((6, 4)), rng.standard_normal((6, 4)),
                  rng.standard_normal((6, 3)))
    model.forward(X1)
    dx_expected = model.backward(dY)
    grads_expected = model.flat_grads.copy()
    model.forward(X1)
    model.predict(X2)
    with pytest.raises(RuntimeError, match="predict"):
        model.backward(dY)
    model.forward(X1)
    dx = model.backward(dY)
    np.testing.assert_allclose(model.flat_grads, grads_expected, rtol=1e-12)
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-12)


def test_backward_is_not_affected_by_the_caller_changing_X(backend_name):
    """forward() validates X once; the gradient of backward() must belong to
    the X that was passed, even if the caller reuses its buffer afterwards."""
    rng = np.random.default_rng(0)
    model = nnc.Sequential(nnc.Dense(4, 3), dtype="float64", backend=backend_name, seed=0)
    X, dY = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    model.forward(X)
    model.backward(dY)
    expected = model.layers[0].grads["W"].copy()
    buffer = X.copy()
    model.forward(buffer)
    buffer += 1.0  # e.g. the next batch is loaded into the same array
    model.backward(dY)
    np.testing.assert_allclose(model.layers[0].grads["W"], expected, rtol=1e-12)


def test_last_batch_of_one_row(backend_name):
    Xtr, _, ytr, _ = _digits()
    model, trainer, _, _ = _small_run(backend_name)
    history = trainer.fit(Xtr[:33], ytr[:33], epochs=2, verbose=False)
    assert len(history.steps["loss"]) == 4  # 32 + 1 rows per epoch
    assert np.isfinite(history.steps["loss"]).all()
    assert np.isfinite(model.flat_params).all()


@pytest.mark.parametrize("copy_trainer", [copy.deepcopy, lambda t: pickle.loads(pickle.dumps(t))])
def test_a_copied_trainer_keeps_decaying_the_weights(copy_trainer):
    """L2 works on views of the flat buffers, which a copy must rebuild."""
    X, y = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32), np.arange(10) % 3

    def trainer():
        return nnc.Trainer(nnc.Sequential(nnc.Dense(4, 5), nnc.ReLU(), nnc.Dense(5, 3), seed=0),
                           optimizer=nnc.SGD(0.1), batch_size=5, l2=5.0)
    original, copied = trainer(), copy_trainer(trainer())
    for t in (original, copied):
        t.fit(X, y, epochs=5, verbose=False, shuffle=False)
    np.testing.assert_array_equal(copied.model.flat_params, original.model.flat_params)
    assert copied.history.steps["loss"] == original.history.steps["loss"]


def test_evaluating_inside_a_step_callback_leaves_the_training_accuracy_alone():
    from nnc.callbacks import LambdaCallback

    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)

    def accuracies(callbacks):
        trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 5), nnc.ReLU(), nnc.Dense(5, 3), seed=0),
                              optimizer=nnc.SGD(0.1), batch_size=20, seed=0)
        trainer.fit(X, y, epochs=3, verbose=False, callbacks=callbacks)
        return trainer.history.epochs["accuracy"]
    evaluating = [LambdaCallback(on_step_end=lambda t, logs: t.evaluate(X[:20], y[:20]),
                                 on_before_update=lambda t: t.model.predict(X[:7]))]
    assert accuracies(evaluating) == accuracies([])


def test_fit_refuses_to_run_twice_at_once():
    from nnc.callbacks import LambdaCallback

    X, y = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32), np.arange(10) % 3
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=5)
    again = LambdaCallback(on_epoch_end=lambda t, epoch, logs: t.fit(X, y, verbose=False))
    with pytest.raises(RuntimeError, match="already running fit"):
        trainer.fit(X, y, verbose=False, callbacks=[again])
    steps = trainer.step_count
    trainer.fit(X, y, verbose=False)  # the lock was released
    assert trainer.step_count == steps + 2
    copy.deepcopy(trainer).fit(X, y, verbose=False)  # a copy has its own lock


def _small_trainer(**kwargs):
    return nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=10, **kwargs)


def _small_data(n=40):
    return np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32), np.arange(n) % 3


def test_a_callbacks_own_epoch_record_leaves_the_trainers_aligned():
    from nnc.callbacks import LambdaCallback

    X, y = _small_data()
    trainer = _small_trainer()
    own = LambdaCallback(on_epoch_end=lambda t, epoch, logs: t.history.epochs.setdefault(
        "f1", []).append(epoch))
    trainer.fit(X, y, epochs=2, verbose=False, callbacks=[own])
    trainer.fit(X, y, epochs=1, verbose=False, validation_data=(X, y), callbacks=[own])
    epochs = trainer.history.epochs
    assert {name: len(values) for name, values in epochs.items()} == dict.fromkeys(epochs, 3)
    assert epochs["f1"] == [0, 1, 2] and np.isnan(epochs["val_loss"][:2]).all()


def test_a_trainer_pickles_after_a_fit_with_lambda_callbacks():
    from nnc.callbacks import LambdaCallback

    X, y = _small_data()
    trainer = _small_trainer()
    trainer.fit(X, y, verbose=False, callbacks=[LambdaCallback(on_epoch_end=lambda *a: None)])
    pickle.loads(pickle.dumps(trainer)).fit(X, y, verbose=False)


def test_fit_warnings_point_at_the_callers_line(tmp_path):
    X, y = _small_data()
    trainer = _small_trainer()
    trainer.fit(X, y, verbose=False)
    trainer.save_checkpoint(tmp_path / "c.npz")
    with pytest.warns(UserWarning, match="nothing to train") as caught:
        trainer.fit(X, y, epochs=1, verbose=False, resume_from=tmp_path / "c.npz")
    assert caught[0].filename == __file__


@contextlib.contextmanager
def fit_paused_in_a_thread(trainer, X, y, at_pause=None):
    """Runs trainer.fit in another thread; the block runs while that fit waits
    at the end of its first epoch (after ``at_pause(trainer)``)."""
    import threading

    started, finish = threading.Event(), threading.Event()

    class Hold(nnc.callbacks.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if at_pause is not None and not started.is_set():
                at_pause(trainer)
            started.set()
            finish.wait(10)

    fitting = threading.Thread(target=lambda: trainer.fit(X, y, verbose=False,
                                                          callbacks=[Hold()]))
    fitting.start()
    try:
        assert started.wait(10)
        yield
    finally:
        finish.set()
        fitting.join()


def test_a_second_thread_is_refused_while_a_fit_uses_the_model():
    """The layers keep one set of buffers: a second thread's predict, fit
    or state dict during a fit is refused (before, a predict mixed its
    batch into the fit's). Refused, not queued: a fit calls back into user
    code, where waiting could hang both threads."""
    X, y = _small_data(400)
    model = nnc.Sequential(nnc.Dense(4, 3), seed=0)
    trainer = nnc.Trainer(model, batch_size=10)
    with fit_paused_in_a_thread(trainer, X, y):
        for use in (lambda: model.predict(X[:5]), trainer.state_dict,
                    lambda: nnc.Trainer(model, batch_size=10).fit(X[:20], y[:20],
                                                                 verbose=False)):
            with pytest.raises(RuntimeError, match="in use in another thread"):
                use()
    assert trainer.step_count == 40
    model.predict(X[:5])  # free again


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_may_use_a_model_a_thread_of_its_parent_was_fitting():
    """The child has no copy of the fitting thread, so the model's lock (and
    its optimizer's, the same) starts free there."""
    X, y = _small_data(400)
    model = nnc.Sequential(nnc.Dense(4, 3), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=10)
    with fit_paused_in_a_thread(trainer, X, y):
        with pytest.raises(RuntimeError, match="in use in another thread"):
            model.predict(X[:5])
        pid = os.fork()
        if pid == 0:  # the child: predict, step and fit must work
            code = 1
            try:
                model.predict(X[:5])
                trainer.optimizer.step()
                nnc.Trainer(model, batch_size=10).fit(X[:20], y[:20], verbose=False)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_a_second_thread_cannot_change_the_weights_of_a_model_in_a_fit(tmp_path):
    """load_checkpoint, optimizer.step and optimizer.load_state_dict from
    another thread are refused before they write (load_checkpoint once
    copied the file's weights in, then was refused, leaving them)."""
    X, y = _small_data(400)
    model = nnc.Sequential(nnc.Dense(4, 3), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=10)
    other = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=1), optimizer=nnc.Adam(1e-3),
                        batch_size=10)
    other.fit(X, y, verbose=False)
    other.save_checkpoint(tmp_path / "other.npz")
    state = trainer.optimizer.state_dict()
    seen = {}

    def remember(trainer):
        seen.update(params=trainer.model.flat_params.copy(), t=trainer.optimizer.t,
                    grads=trainer.model.flat_grads.copy())

    with fit_paused_in_a_thread(trainer, X, y, at_pause=remember):
        for use in (lambda: trainer.load_checkpoint(tmp_path / "other.npz"),
                    trainer.optimizer.step, trainer.optimizer.zero_grad,
                    lambda: trainer.optimizer.load_state_dict(state)):
            with pytest.raises(RuntimeError, match="in use in another thread"):
                use()
            np.testing.assert_array_equal(model.flat_params, seen["params"])
            np.testing.assert_array_equal(model.flat_grads, seen["grads"])
            assert trainer.optimizer.t == seen["t"]
    trainer.optimizer.step()  # free again


def test_the_trainer_calls_the_optimizers_step_and_the_layers_forward():
    """User overrides are honoured: a step that skips updates, a forward that
    doubles its input."""
    import functools

    class Frozen(nnc.SGD):
        calls = 0

        def step(self, lr=None):
            Frozen.calls += 1  # and no update

    def doubled(method):
        @functools.wraps(method)
        def call(self, x, training=True):
            return method(self, x * 2, training)
        return call

    class Doubling(nnc.Dense):
        forward = doubled(nnc.Dense.forward)

    X, y = _small_data()
    model = nnc.Sequential(nnc.Dense(4, 3), seed=0)
    before = model.flat_params.copy()
    nnc.Trainer(model, optimizer=Frozen(0.1), batch_size=10).fit(X, y, verbose=False)
    assert Frozen.calls == 4 and np.array_equal(model.flat_params, before)
    plain = nnc.Sequential(nnc.Dense(4, 3), seed=0)
    twice = nnc.Sequential(Doubling(4, 3), seed=0)
    np.testing.assert_allclose(twice.predict(X), plain.predict(2 * X), rtol=1e-6)


def test_callbacks_changed_in_place_are_checked_at_fit():
    X, y = _small_data()
    trainer = _small_trainer()
    trainer.callbacks.append("not a callback")
    with pytest.raises(TypeError, match="callbacks must be"):
        trainer.fit(X, y, verbose=False)
    assert trainer.step_count == 0



@pytest.mark.parametrize("batchnorm", [False, True])
def test_shuffled_batches_are_the_permuted_rows(monkeypatch, backend_name, batchnorm):
    """Every step sees exactly X[order[start:stop]] for the epoch's permutation
    of the trainer's generator; batch-norm skips a last batch of one row."""
    Xtr, _, ytr, _ = _digits()
    X, y = Xtr[:101], ytr[:101]  # batches of 10: ten full, then one row
    normalise = [nnc.BatchNorm(8)] if batchnorm else []
    layers = [nnc.Dense(64, 8, bias=not batchnorm), *normalise, nnc.ReLU(), nnc.Dense(8, 10)]
    model = nnc.Sequential(*layers, backend=backend_name, seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=0.1), batch_size=10)
    seen = []
    step = trainer._train_step

    def spy(xb, yb):
        seen.append((xb.copy(), yb.copy()))
        return step(xb, yb)

    monkeypatch.setattr(trainer, "_train_step", spy)
    for epoch in range(2):
        order = copy.deepcopy(trainer.rng).permutation(len(X))
        seen.clear()
        trainer.fit(X, y, epochs=1, verbose=False)
        expected = [order[start:start + 10] for start in range(0, len(X), 10)]
        if batchnorm:
            expected = expected[:-1]
        assert len(seen) == len(expected)
        for (xb, yb), index in zip(seen, expected):
            np.testing.assert_array_equal(xb, X[index])
            np.testing.assert_array_equal(yb, y[index])


@pytest.mark.parametrize("backend", ["numpy", "cython"])
@pytest.mark.parametrize("make_optimizer", [lambda: nnc.SGD(0.05, momentum=0.9),
                                            lambda: nnc.Adam(1e-3)], ids=["momentum", "adam"])
def test_the_loop_written_out_with_the_public_parts_is_fit(backend, make_optimizer):
    """Algorithm 2 by hand (model.forward/backward, loss.forward/backward,
    optimizer.step) and Trainer.fit with the same seed: the same weights, bit
    for bit (what examples/03 shows)."""
    X, y = nnc.datasets.load_digits()
    X, y = X[:300], y[:300]

    def network():
        return nnc.Sequential(nnc.Dense(64, 16), nnc.ReLU(), nnc.Dense(16, 10), seed=0,
                              backend=backend)

    model, loss = network(), nnc.SoftmaxCrossEntropy(backend=backend)
    optimizer = make_optimizer().bind(model)
    rng = np.random.default_rng(7)
    for _ in range(2):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 32):
            batch = order[start:start + 32]
            loss.forward(model.forward(X[batch], training=True), y[batch])
            model.backward(loss.backward())
            optimizer.step()
    trainer = nnc.Trainer(network(), optimizer=make_optimizer(), batch_size=32, seed=7)
    trainer.fit(X, y, epochs=2, verbose=False)
    np.testing.assert_array_equal(model.flat_params, trainer.model.flat_params)
