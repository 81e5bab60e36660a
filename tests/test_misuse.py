"""Misuse that used to pass silently (a wrong result, NaN weights or a
broken object) and now either works or stops with a clear error."""
import re

import numpy as np
import pytest

import nnc

X = np.array([[1.0, 0.0, 0.5], [2.0, 0.0, -0.5], [3.0, 0.0, 0.25], [4.0, 0.0, -1.0]],
             np.float32)
Y = np.array([0, 1, 0, 1])


def test_one_loss_object_serves_a_float32_trainer_and_a_float64_gradcheck():
    loss = nnc.SoftmaxCrossEntropy()
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0), loss=loss, batch_size=4)
    errors = nnc.gradcheck(nnc.Sequential(nnc.Dense(3, 2), dtype="float64", seed=0), loss,
                           X.astype(np.float64), Y)
    assert max(errors.values()) < 1e-6
    trainer.fit(X, Y, verbose=False)  # was: Buffer dtype mismatch
    # the public forward picks the kernels of the output's dtype
    expected = np.log(2)
    assert trainer.loss.forward(np.zeros((2, 2)), [0, 1]) == pytest.approx(expected)
    assert loss.forward(np.zeros((2, 2), np.float32), [0, 1]) == pytest.approx(expected)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", [
    lambda eps: nnc.Adam(eps=eps), lambda eps: nnc.AdamW(eps=eps),
    lambda eps: nnc.RMSprop(eps=eps), lambda eps: nnc.Adagrad(eps=eps)],
    ids=["Adam", "AdamW", "RMSprop", "Adagrad"])
def test_eps_too_small_for_the_dtype_is_refused(backend, dtype, make):
    tiny = float(np.finfo(dtype).tiny)
    model = nnc.Sequential(nnc.Dense(3, 2), dtype=dtype, backend=backend, seed=0)
    with pytest.raises(ValueError, match=rf"eps must be >= .*{dtype}.*got {re.escape(repr(tiny / 100))}"):
        nnc.Trainer(model, optimizer=make(tiny / 100), batch_size=4)
    # at the limit the update is finite even where a gradient is exactly zero
    # (the second input column is all zeros)
    smallest = make(1.0)._smallest_eps(dtype)
    model = nnc.Sequential(nnc.Dense(3, 2), dtype=dtype, backend=backend, seed=0)
    trainer = nnc.Trainer(model, optimizer=make(smallest * 1.01), batch_size=4)
    trainer.fit(X.astype(dtype), Y, epochs=2, verbose=False)
    assert np.isfinite(model.flat_params).all()


def test_adamw_decay_that_would_flip_the_weights_is_refused():
    with pytest.raises(ValueError, match=r"lr \* weight_decay must be < 1"):
        nnc.AdamW(1e-3, weight_decay=1e10)
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.AdamW(1e-3, weight_decay=1.0),
                          schedule=lambda t: 2.0, batch_size=4)
    before = model.flat_params.copy()
    with pytest.raises(ValueError, match=r"lr \* weight_decay must be < 1 .*got 2.0 \* 1.0"):
        trainer.fit(X, Y, verbose=False)
    np.testing.assert_array_equal(model.flat_params, before)


@pytest.mark.parametrize("call,match", [
    (lambda: nnc.SGD(0.1, momentum=0.9, nesterov="no"), "nesterov must be True or False"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2)), batch_size=4).fit(
        X, Y, shuffle="no"), "shuffle must be True or False"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2)), batch_size=4).fit(
        X, Y, verbose="no"), "verbose must be True, False or an int >= 0"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2)), batch_size=4).fit(
        X, Y, verbose=-1), "verbose must be True, False or an int >= 0"),
    (lambda: nnc.Sequential(nnc.Dense(3, 2)).forward(X, training="no"),
     "training must be True or False"),
    (lambda: nnc.callbacks.EarlyStopping(restore_best="yes"),
     "restore_best must be True or False"),
])
def test_flags_take_booleans_not_any_truthy_value(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_flags_accept_numpy_booleans_and_keras_style_integers():
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0), batch_size=4)
    trainer.fit(X, Y, shuffle=np.bool_(False), verbose=0)
    trainer.fit(X, Y, shuffle=1, verbose=np.int64(0))
    assert nnc.SGD(0.1, momentum=0.5, nesterov=np.bool_(True)).nesterov is True


def test_forward_keeps_its_own_copy_of_an_array_subclass(tmp_path):
    """A memmap (or any ndarray subclass) is a different object over the same
    memory: writing to it after forward must not change the gradients."""
    X64 = np.memmap(tmp_path / "x.dat", dtype="float64", mode="w+", shape=(4, 3))
    X64[:] = 1
    model = nnc.Sequential(nnc.Dense(3, 2), dtype="float64", seed=0)
    model.forward(X64)
    X64[:] = 100
    model.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(model.layers[0].grads["W"], np.full((3, 2), 4.0))


@pytest.mark.parametrize("between", ["fit", "gradcheck", "predict"])
def test_backward_after_other_work_on_the_model_is_refused(between):
    model = nnc.Sequential(nnc.Dense(3, 2), dtype="float64", seed=0)
    model.forward(X.astype(np.float64))
    if between == "fit":
        with pytest.warns(UserWarning, match="X has a root-mean-square"):
            nnc.Trainer(model, batch_size=4).fit(100 * X, Y, verbose=False)
    elif between == "gradcheck":
        nnc.gradcheck(model, "softmax_cross_entropy", X[:2].astype(np.float64), Y[:2])
    else:
        model.predict(X)
    with pytest.raises(RuntimeError, match="backward\\(\\) needs a forward\\(\\) first"):
        model.backward(np.ones((4, 2)))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_propagates_nan_like_numpy_and_pytorch(backend, dtype):
    be = nnc.backends.get_backend(backend, dtype)
    x = np.array([[np.nan, -1.0, 0.0, 2.0, -np.inf, np.inf]], dtype)
    out = np.empty_like(x)
    be.relu_forward(x, out)
    np.testing.assert_array_equal(out, [[np.nan, 0, 0, 2, 0, np.inf]])
    model = nnc.Sequential(nnc.Dense(3, 2), nnc.ReLU(), dtype=dtype, backend=backend, seed=0)
    model.layers[0].params["W"][0, 0] = np.nan
    prediction = model.predict(X.astype(dtype))
    assert np.isnan(prediction[:, 0]).all() and np.isfinite(prediction[:, 1]).all()


def test_big_endian_arrays_are_read_like_native_ones():
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    np.testing.assert_array_equal(model.forward(X.astype(">f4")), model.forward(X))
    trainer = nnc.Trainer(model, loss="mse", batch_size=4)
    assert trainer.evaluate(X.astype(">f8"), np.zeros((4, 2), ">f8"))["loss"] == pytest.approx(
        trainer.evaluate(X, np.zeros((4, 2)))["loss"])


def test_targets_beyond_the_float32_range_are_named_as_such():
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2)), loss="mse", batch_size=4)
    with pytest.raises(ValueError, match="y has values beyond the float32 range"):
        trainer.fit(X, np.full((4, 2), 1e39), verbose=False)
    with pytest.raises(TypeError, match=r"y must hold real numbers \(float32, float64 or "
                                        r"integers\), got dtype float16"):
        trainer.fit(X, np.zeros((4, 2), np.float16), verbose=False)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("loss", [nnc.MeanSquaredError, nnc.BCEWithLogits,
                                  nnc.SoftmaxCrossEntropy])
def test_loss_of_an_output_without_columns_or_ragged(backend, loss):
    with pytest.raises(ValueError, match=r"output has no columns \(shape \(3, 0\)\)"):
        loss(backend).forward(np.zeros((3, 0)), np.zeros((3, 0)))
    with pytest.raises(TypeError, match="output could not be read as an array"):
        loss(backend).forward([[1.0, 2.0], [3.0]], [0, 1])


@pytest.mark.parametrize("init,match", [
    (np.zeros, "init 'zeros' failed .*called as init\\(shape, rng\\)"),
    (lambda shape, rng: np.full(shape, "a"), "returned str"),
    (lambda shape, rng: np.full(shape, 1e39), "beyond the float32 range"),
])
def test_a_failed_init_leaves_the_layers_free_for_a_corrected_model(init, match):
    dense, relu = nnc.Dense(3, 2, init=init), nnc.ReLU()
    with pytest.raises((TypeError, ValueError), match=match):
        nnc.Sequential(dense, relu)
    dense.init = None  # corrected: the default initialiser
    model = nnc.Sequential(dense, relu, seed=0)
    assert np.isfinite(model.forward(X)).all()


def test_a_refused_trainer_leaves_the_optimizer_free():
    optimizer = nnc.Adam(1e-3)
    with pytest.raises(ValueError, match="batch_size"):
        nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2)), optimizer=optimizer, batch_size=0)
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2)), optimizer=optimizer, batch_size=4)
    trainer.fit(X, Y, verbose=False)
    assert optimizer.t == 1


def _trained(optimizer):
    model = nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4), nnc.ReLU(),
                           nnc.Dense(4, 2),
                           seed=0)
    trainer = nnc.Trainer(model, optimizer=optimizer, batch_size=4)
    trainer.fit(X, Y, verbose=False)
    return trainer


def _corrupt(state, where, value):
    if where == "optimizer.config":
        state["optimizer"]["config"] = value
    elif where == "optimizer.m":
        state["optimizer"]["state"]["m"] = value
    elif where == "optimizer":
        state["optimizer"] = value
    elif where == "buffers":
        state["buffers"] = value
    else:
        state[where] = value
    return state


@pytest.mark.parametrize("where,value,match", [
    ("optimizer.config", {"lr": 1e-3, "beta1": 3.0, "beta2": 0.999, "eps": 1e-8},
     r"state_dict\['config'\] .* is invalid: beta1"),
    ("optimizer.config", {"params": None}, r"is invalid"),
    ("optimizer.m", np.full(5, 1.0), r"state array 'm' has shape \(5,\)"),
    ("optimizer.m", "nan", r"state array 'm' has shape \(\) and dtype str"),
    ("optimizer", "x", r"state\[.optimizer.\] must be a dict from optimizer.state_dict\(\)"),
    ("history", None, r"state\[.history.\] must be a dict from History.to_dict\(\)"),
    ("step_count", "abc", r"state\['step_count'\] must be an int in \[0, 2\*\*63 - 1\]"),
    ("buffers", [{"foo": 1}], r"state\['buffers'\] must be a list of one dict per layer"),
    ("rng", {"bit_generator": "PCG64", "state": "x"}, r"state\['rng'\] is not a valid"),
    ("params", np.full(30, np.nan), r"contains NaN or Inf"),
    ("params", "huge", r"state\['params'\].* beyond the float32 range"),
    ("optimizer.v", -1.0,
     r"state array 'v' contains negative values .*averages of squared gradients"),
    ("rng", None, r"state\['rng'\] is not a valid"),
])
def test_load_state_dict_checks_everything_before_changing_anything(where, value, match):
    source = _trained(nnc.Adam(1e-2))
    source.fit(X, Y, verbose=False)
    target = _trained(nnc.Adam(1e-3))
    before = target.state_dict()
    state = source.state_dict()
    state["params"] = np.asarray(state["params"])
    if where == "params":
        value = np.full(state["params"].shape, 1e300 if isinstance(value, str) else np.nan)
    if where == "optimizer.v":
        state["optimizer"]["state"]["v"] = np.full_like(state["optimizer"]["state"]["v"], value)
        where, value = "step_count", state["step_count"]
    with pytest.raises((ValueError, TypeError), match=match):
        target.load_state_dict(_corrupt(state, where, value))
    after = target.state_dict()
    np.testing.assert_array_equal(after["params"], before["params"])
    np.testing.assert_array_equal(after["optimizer"]["state"]["m"],
                                  before["optimizer"]["state"]["m"])
    assert after["step_count"] == before["step_count"]
    assert target.optimizer.lr == 1e-3 and target.optimizer.t == before["optimizer"]["t"]


def test_a_momentum_state_loaded_into_plain_sgd_brings_its_velocity():
    source = _trained(nnc.SGD(0.1, momentum=0.9))
    target = _trained(nnc.SGD(0.1))
    target.load_state_dict(source.state_dict())
    assert target.optimizer.momentum == 0.9
    target.fit(X, Y, verbose=False)  # was: KeyError 'velocity'
    source.fit(X, Y, verbose=False)
    np.testing.assert_array_equal(target.model.flat_params, source.model.flat_params)


@pytest.mark.parametrize("replace", ["params", "grads"])
def test_a_parameter_array_replaced_instead_of_written_is_refused(replace):
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=4)
    getattr(model.layers[0], replace)["W"] = np.ones((3, 2), np.float32)
    for call in (lambda: trainer.fit(X, Y, verbose=False), lambda: trainer.evaluate(X, Y),
                 lambda: model.forward(X), lambda: model.predict(X)):
        with pytest.raises(ValueError, match=r"layer 0 \(Dense\): params\['W'\] or "
                                             r"grads\['W'\] was replaced .*\[\.\.\.\] = values"):
            call()
    # the way that works: write into the view
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    model.layers[0].params["W"][...] = 1.0
    np.testing.assert_array_equal(model.flat_params[:6], 1.0)
    nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=4).fit(X, Y, verbose=False)
    assert (model.layers[0].params["W"] != 1.0).any()


def test_resuming_with_other_optimizer_settings_warns_and_uses_the_checkpoints(tmp_path):
    source = _trained(nnc.Adam(1e-3))
    source.save_checkpoint(tmp_path / "run.npz")
    target = _trained(nnc.Adam(0.1))
    with pytest.warns(UserWarning, match=r"optimizer settings replace the trainer.s: "
                                         r"lr=0.001 \(was 0.1\)"):
        target.load_checkpoint(tmp_path / "run.npz")
    assert target.optimizer.lr == 1e-3



def test_the_shuffle_gather_takes_any_integer_indices():
    """The compiled gather kernel takes int64; other integer types (a platform
    whose default int is 32-bit) are converted, and the trainer passes int64."""
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    for backend in ("cython", "numpy"):
        be = nnc.backends.get_backend(backend, np.float32)
        for dtype in (np.int32, np.uint32, np.int16, np.uint64):
            out = np.empty((3, 3), np.float32)
            be.gather_rows(x, np.array([3, 0, 2], dtype), out)
            np.testing.assert_array_equal(out, x[[3, 0, 2]])
        out = np.empty((2, 3), np.float32)
        be.gather_rows(x, np.array([3, 1, 0, 2])[::2], out)  # non-contiguous
        np.testing.assert_array_equal(out, x[[3, 0]])
        with pytest.raises(TypeError, match="index must hold integers"):
            be.gather_rows(x, np.array([0.0, 1.0]), np.empty((2, 3), np.float32))
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    trainer = nnc.Trainer(model, batch_size=2, seed=1)

    class Int32Permutations(np.random.Generator):  # a platform whose default int is 32-bit
        def permutation(self, n):
            return super().permutation(n).astype(np.int32)

    trainer.rng = Int32Permutations(np.random.PCG64(1))
    trainer.fit(X, Y, epochs=2, verbose=False)
    assert np.isfinite(model.flat_params).all()


def test_a_refused_adamw_step_changes_nothing():
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.AdamW(1e-3, weight_decay=0.5),
                          schedule=lambda t: 1e-3 if t < 2 else 3.0, batch_size=4)
    trainer.fit(X, Y, epochs=2, verbose=False)
    before = model.flat_params.copy()
    with pytest.raises(ValueError, match=r"lr \* weight_decay must be < 1"):
        trainer.fit(X, Y, verbose=False)
    np.testing.assert_array_equal(model.flat_params, before)
    assert trainer.optimizer.t == trainer.step_count == 2
    steps = trainer.history.steps
    assert len(steps["grad_norm"]) == len(steps["loss"]) == 2
    with pytest.raises(ValueError, match=r"lr \* weight_decay must be < 1"):
        trainer.optimizer.step(5.0)
    assert trainer.optimizer.t == 2


def test_a_refused_trainer_leaves_the_models_generator_undrawn():
    def trained(refuse_first):
        model = nnc.Sequential(nnc.Dense(3, 4), nnc.Dropout(0.3), nnc.Dense(4, 2), seed=0)
        if refuse_first:
            with pytest.raises(ValueError):
                nnc.Trainer(model, batch_size=0)
            bound = nnc.Adam().bind(nnc.Sequential(nnc.Dense(3, 2)))
            with pytest.raises(ValueError, match="already bound"):
                nnc.Trainer(model, optimizer=bound, batch_size=4)
        trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-2), batch_size=2)
        trainer.fit(X, Y, epochs=3, verbose=False)
        return model.flat_params

    np.testing.assert_array_equal(trained(True), trained(False))


def test_forward_copies_a_memoryview_it_would_otherwise_alias():
    data = np.ones((4, 3))
    model = nnc.Sequential(nnc.Dense(3, 2), dtype="float64", seed=0)
    model.forward(memoryview(data))
    data[:] = 100
    model.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(model.layers[0].grads["W"], np.full((3, 2), 4.0))


def test_optimizer_state_loaded_before_bind_is_checked_at_bind():
    source = nnc.Adam(1e-3).bind(nnc.Sequential(nnc.Dense(3, 2)))
    optimizer = nnc.Adam(1e-3)
    optimizer.load_state_dict(source.state_dict())
    with pytest.raises(ValueError, match=r"state array 'm' has shape \(8,\) and dtype "
                                         r"float32, expected shape \(20,\)"):
        optimizer.bind(nnc.Sequential(nnc.Dense(3, 5)))
    assert optimizer.params is None
    optimizer.bind(nnc.Sequential(nnc.Dense(3, 2)))
