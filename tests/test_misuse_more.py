"""More misuse that gave a raw Python error or silent garbage and now stops
with a clear one: schedules called with a bad step or wrapping a schedule
that returns nonsense, LeakyReLU slopes beyond float32, layer-size messages
that blamed a layer that is not there, and mixed-kind ``classes`` in
NNClassifier.partial_fit. (Hand-edited files with NaN/Inf weights:
tests/test_persistence.py.)"""
import re
import warnings

import numpy as np
import pytest

import nnc
from archive_edits import rewrite
from nnc import schedules

SCHEDULES = [
    schedules.Constant(0.1),
    schedules.LinearDecay(0.1, 0.001, decay_steps=10),
    schedules.StepDecay(0.1, 1),
    schedules.ExponentialDecay(0.1, 0.5),
    schedules.CosineDecay(0.1, 10),
    schedules.Warmup(schedules.Constant(0.1), 5),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("t, error, match", [
    # StepDecay once raised OverflowError for -400, LinearDecay gave a rate > lr0 for -5
    (-400, ValueError, r"t .*must be a number from 0 to 2\*\*63 - 1, got -400"),
    (-5, ValueError, r"t .*must be a number from 0 to 2\*\*63 - 1, got -5"),
    (float("nan"), ValueError, r"t .*must be a number from 0 to 2\*\*63 - 1, got nan"),
    (10 ** 400, ValueError, r"t .*must be a number from 0 to 2\*\*63 - 1, got 1000"),
    (float("inf"), ValueError, r"t .*must be a number from 0 to 2\*\*63 - 1, got inf"),
    ("a", TypeError, "t .*must be a number >= 0, got 'a'"),
    (None, TypeError, "t .*must be a number >= 0, got None"),
    (True, TypeError, "t .*must be a number >= 0, got True"),
    (np.arange(3), TypeError, r"t .*must be a number >= 0, got .*once per step"),
])
def test_a_schedule_called_with_a_bad_step_names_t(schedule, t, error, match):
    with pytest.raises(error, match=match):
        schedule(t)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_a_schedule_takes_a_float_step_for_plotting(schedule):
    assert 0 <= schedule(2.5) <= 0.1


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_a_schedule_takes_numpy_integer_steps(schedule):
    for t in (0, 3, 12):
        assert schedule(np.int64(t)) == schedule(t)
        assert isinstance(schedule(t), float) and 0 <= schedule(t) <= 0.1


@pytest.mark.parametrize("after, error, match", [
    (lambda t: "x", TypeError, r"after\(\d+\) must be a real number, got 'x'"),
    (lambda t: None, TypeError, r"after\(\d+\) must be a real number, got None"),
    (lambda t: -0.1, ValueError, r"after\(\d+\) must lie in \[0, inf\), got -0.1"),
    (lambda t: float("nan"), ValueError, r"after\(\d+\) must be finite"),
])
@pytest.mark.parametrize("t", [2, 7])  # during the warm-up and after it
def test_warmup_names_the_schedule_it_wraps_when_that_returns_nonsense(after, error, match, t):
    warmup = schedules.Warmup(after, 5)
    with pytest.raises(error, match=r"Warmup: the schedule it wraps, after=.*" + match):
        warmup(t)


def test_warmup_of_a_bad_schedule_stops_fit_before_any_update():
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    before = model.flat_params.copy()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=4,
                          schedule=schedules.Warmup(lambda t: "x", 5))
    X = np.ones((4, 3), np.float32)
    with pytest.raises(TypeError, match="Warmup: the schedule it wraps"):
        trainer.fit(X, np.array([0, 1, 0, 1]), verbose=False)
    assert np.array_equal(model.flat_params, before)


def test_warmup_accepts_numbers_of_any_real_type():
    assert schedules.Warmup(lambda t: 1, 4)(2) == pytest.approx(0.5)
    assert schedules.Warmup(lambda t: np.float32(0.25), 4)(6) == pytest.approx(0.25)


@pytest.mark.parametrize("name, error", [
    (["x"], TypeError), ({"linear": 1}, TypeError), (None, TypeError), (3, TypeError),
    ("nope", ValueError),
])
def test_schedules_get_says_which_names_it_accepts(name, error):
    with pytest.raises(error, match=r"schedule.* one of \['constant', 'cosine', "):
        schedules.get(name)


@pytest.mark.parametrize("alpha", [1e40, -1e40, 3.5e38, 1e300])
def test_leaky_relu_slope_beyond_float32_is_refused(alpha):
    shown = re.escape(f"{alpha:g}")
    with pytest.raises(ValueError, match=rf"alpha must lie in .*float32.*got {shown}"):
        nnc.LeakyReLU(alpha)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leaky_relu_largest_float32_slope_gives_finite_outputs(dtype):
    alpha = float(np.finfo(np.float32).max)
    model = nnc.Sequential(nnc.Dense(2, 2, init=nnc.init.constant(0.5)), nnc.LeakyReLU(-alpha),
                           dtype=dtype, seed=0)
    out = model.predict(np.array([[-1, -1], [0, 0]], dtype))
    assert np.isfinite(out).all()


@pytest.mark.parametrize("layers", [
    (nnc.BatchNorm(3), nnc.Dense(4, 2)),
    (nnc.ReLU(), nnc.BatchNorm(3), nnc.Dense(4, 2)),
])
def test_a_batchnorm_in_front_of_the_first_dense_sets_the_input_size(layers):
    """BatchNorm(3) knows its width: the model's input has 3 features, and
    the Dense behind it, which expects 4, is the layer named."""
    with pytest.raises(ValueError, match=re.escape(
            "Dense(in_features=4, out_features=2, init=None, bias=True) expects 4 input "
            "features, but the previous layer gives 3")):
        nnc.Sequential(*layers)


def test_a_layer_after_the_first_dense_still_names_the_previous_layer():
    with pytest.raises(ValueError, match="expects 5 features, but the previous layer gives 3"):
        nnc.Sequential(nnc.Dense(4, 3), nnc.ReLU(), nnc.BatchNorm(5))
    model = nnc.Sequential(nnc.BatchNorm(4), nnc.Dense(4, 2), seed=0)  # agreeing sizes
    assert (model.in_features, model.out_features) == (4, 2)


@pytest.mark.parametrize("classes, error", [
    ([None, 1], TypeError),       # was: '<' not supported between 'int' and 'NoneType'
    (["a", 1.5, None], TypeError),
    ([[0, 1], [1, 2]], ValueError),
])
def test_partial_fit_with_classes_of_mixed_kinds_names_classes(classes, error):
    pytest.importorskip("sklearn")
    from nnc.sklearn import NNClassifier
    X = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(error, match=r"classes must be a 1-D array of labels of one kind"):
        NNClassifier().partial_fit(X, y, classes=classes)
    clf = NNClassifier(random_state=0).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(error, match=r"classes must be a 1-D array of labels of one kind"):
        clf.partial_fit(X, y, classes=classes)


def test_a_header_with_huge_widths_is_refused_before_allocating(tmp_path):
    path = str(tmp_path / "m.npz")
    nnc.Sequential(nnc.Dense(3, 4), nnc.ReLU(), nnc.Dense(4, 2), seed=0).save(path)

    def widen(header):
        header["layers"][0]["config"]["out_features"] = 2 ** 30
        header["layers"][2]["config"]["in_features"] = 2 ** 30

    rewrite(path, header=widen)
    with pytest.raises(ValueError, match=r"m\.npz: the header's layers have \d+ parameters, more"):
        nnc.load(path)


@pytest.mark.parametrize("field, value", [("uinteger", -1), ("has_uint32", 2 ** 100)])
def test_a_generator_state_that_overflows_names_the_file(tmp_path, field, value):
    path = str(tmp_path / "m.npz")
    nnc.Sequential(nnc.Dense(3, 2), seed=0).save(path)
    rewrite(path, header=lambda header: header["model_rng"].__setitem__(field, value))
    with pytest.raises(ValueError, match=r"m\.npz: .*model_rng.* not a valid generator state"):
        nnc.load(path)


@pytest.mark.parametrize("value", [2 ** 63, 10 ** 400, -1, 2.0])
def test_step_counts_beyond_a_c_long_are_refused(value):
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3))
    state = trainer.state_dict()
    state["optimizer"]["t"] = value
    with pytest.raises(ValueError, match=r"state_dict\['t'\] must be an int in"):
        trainer.optimizer.load_state_dict(state["optimizer"])
    state = trainer.state_dict()
    state["step_count"] = value
    with pytest.raises(ValueError, match=r"state\['step_count'\] must be an int in"):
        trainer.load_state_dict(state)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("state_dtype", [np.float32, np.int64])
def test_optimizer_state_loaded_before_bind_takes_the_parameters_dtype(backend, state_dtype):
    model = nnc.Sequential(nnc.Dense(3, 2), dtype="float64", backend=backend, seed=0)
    source = nnc.Adam(1e-2).bind(model)
    model.flat_grads[...] = 1.0
    source.step()
    state = source.state_dict()
    state["state"] = {k: v.astype(state_dtype) for k, v in state["state"].items()}
    fresh = nnc.Adam(1e-2)
    fresh.load_state_dict(state)
    fresh.bind(nnc.Sequential(nnc.Dense(3, 2), dtype="float64", backend=backend, seed=0))
    assert all(v.dtype == np.float64 for v in fresh.state.values())
    fresh.step()  # runs on the float64 kernels
    other = nnc.Adam(1e-2)
    other.load_state_dict(state)
    with pytest.raises(ValueError, match="state array 'm' has shape"):
        other.bind(nnc.Sequential(nnc.Dense(4, 2), seed=0))


@pytest.mark.parametrize("layer", [nnc.Dense(2, 2), nnc.ReLU(), nnc.Sigmoid(), nnc.Tanh(),
                                   nnc.LeakyReLU(0.1), nnc.BatchNorm(2)],
                         ids=lambda layer: type(layer).__name__)
def test_layer_backward_before_forward_is_a_clear_error(layer):
    if isinstance(layer, nnc.Dense):
        nnc.Sequential(layer, seed=0)
    else:
        nnc.Sequential(nnc.Dense(2, 2, bias=False), layer, seed=0)
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}.backward needs a forward"):
        layer.backward(np.ones((2, 2), np.float32))


@pytest.mark.parametrize("dtype", [np.dtype(">f4"), np.dtype(">f8"), "<f4"])
def test_a_non_native_float_dtype_means_that_float(dtype):
    model = nnc.Sequential(nnc.Dense(2, 2), dtype=dtype, seed=0)
    assert model.dtype == np.dtype(dtype).newbyteorder("=") and model.dtype.isnative
    X, _ = nnc.datasets.load_digits(dtype)
    assert X.dtype == model.dtype


def test_playground_paths_and_tolerances_are_checked():
    from nnc import playground

    with pytest.raises(ValueError, match=r"path must have shape \(steps \+ 1, 2\), got \(5,\)"):
        playground.steps_to_reach("ravine", np.zeros(5), 0.1)
    with pytest.raises(TypeError, match="tol must be a real number"):
        playground.steps_to_reach("ravine", np.zeros((3, 2)), "0.1")
    with pytest.raises(ValueError, match="tol must be finite"):
        playground.steps_to_reach("ravine", np.zeros((3, 2)), float("nan"))


@pytest.mark.parametrize("separator", ["\n", "\r", '"', ",,"])
def test_csv_logger_refuses_separators_that_break_the_file(tmp_path, separator):
    from nnc.callbacks import CSVLogger

    with pytest.raises(ValueError, match="separator must be one character"):
        CSVLogger(str(tmp_path / "log.csv"), separator=separator)


def test_show_config_needs_a_stream():
    with pytest.raises(TypeError, match="file must be a writable text stream"):
        nnc.show_config(file=3)


def test_json_nested_too_deeply_is_a_clear_error(tmp_path):
    from nnc.history import History

    deep = []
    for _ in range(100_000):
        deep = [deep]
    model = nnc.Sequential(nnc.Dense(2, 2), seed=0)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        model.save(str(tmp_path / "m.npz"), metadata={"a": deep})
    history = History()
    history.meta["a"] = deep
    with pytest.raises(TypeError, match="JSON-serialisable"):
        history.save(str(tmp_path / "h.json"))
    assert not (tmp_path / "h.json").exists()
    text = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text(text)
    with pytest.raises(ValueError, match="not an nnc History file"):
        History.load(str(tmp_path / "deep.json"))
    path = str(tmp_path / "m.npz")
    model.save(path)
    rewrite(path, add={"header.json": text.encode()})
    with pytest.raises(ValueError, match="header.json is not valid JSON"):
        nnc.load(path)


def test_histories_with_user_records_round_trip(tmp_path):
    """Entries a user adds (any JSON in epochs, dotted step names that are
    not per-layer statistics) load back; only what diagnose reads is checked."""
    from nnc.history import History

    X, y = np.random.default_rng(0).normal(size=(8, 3)), np.arange(8) % 2
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), dtype="float64", seed=0),
                          batch_size=4, diagnostics=True)
    trainer.fit(X, y, epochs=1, verbose=False)
    history = trainer.history
    history.epochs["val_f1"] = [None]
    history.epochs["note"] = ["first"]
    history.steps["lr.scaled"] = [0.1, 0.1]
    history.meta["layers"] = tuple(history.meta["layers"])
    path = str(tmp_path / "h.json")
    history.save(path)
    loaded = History.load(path)
    assert loaded.epochs["val_f1"] == [None] and loaded.steps["lr.scaled"] == [0.1, 0.1]
    trainer.load_state_dict(trainer.state_dict())


def test_batchnorm_eps_that_vanishes_in_float32_is_refused():
    with pytest.raises(ValueError, match="eps must lie in"):
        nnc.BatchNorm(2, eps=1e-320)
    nnc.BatchNorm(2, eps=1e-30)


def test_a_diverged_model_is_not_saved_into_a_file_load_would_refuse(tmp_path):
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    model.layers[0].params["W"][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"array 'params/0.W' contains NaN or Inf"):
        model.save(str(tmp_path / "m.npz"))
    trainer = nnc.Trainer(model)
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        trainer.save_checkpoint(str(tmp_path / "c.npz"))
    assert not list(tmp_path.iterdir())
    model.layers[0].params["W"][0, 0] = 1.0
    with pytest.raises(TypeError, match="metadata keys must be strings"):
        model.save(str(tmp_path / "m.npz"), metadata={1: "int key", "1": "str key"})


def test_masked_arrays_and_numbers_beyond_floats_are_refused():
    X = np.ma.masked_array(np.ones((4, 3)), mask=[[1, 0, 0]] + [[0, 0, 0]] * 3)
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    with pytest.raises(TypeError, match="X has masked entries"):
        model.predict(X)
    with pytest.raises(TypeError, match="y has masked entries"):
        nnc.Trainer(model).fit(np.ones((4, 3)), np.ma.masked_array([0, 1, 0, 1], mask=[1, 0, 0, 0]),
                               verbose=False)
    # nothing masked: the data as it is
    np.testing.assert_array_equal(model.predict(np.ma.masked_array(X.data)), model.predict(X.data))
    for make in (lambda: nnc.SGD(lr=10 ** 400), lambda: nnc.Dropout(10 ** 400),
                 lambda: nnc.Trainer(model, l2=10 ** 400)):
        with pytest.raises(ValueError, match="must be finite"):
            make()


@pytest.mark.parametrize("name", ["zeros", "normal", "uniform", "lecun_normal", "glorot_normal",
                                  "glorot_uniform", "he_normal", "he_uniform"])
def test_initialisers_called_directly_check_shape_and_rng(name):
    init = nnc.init.get_initializer(name)
    rng = np.random.default_rng(0)
    assert init((3, 2), rng).shape == init([3, 2], np.random.RandomState(0)).shape == (3, 2)
    assert init(4, rng).shape == (4,)
    for shape in [(0, 3), (), (2.0, 3), (True, 2), "3"]:
        with pytest.raises(ValueError, match="shape must be a tuple of positive ints"):
            init(shape, rng)
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        init((2, 3), None)


def test_datasets_name_their_arguments():
    with pytest.raises(TypeError, match="X could not be read as an array"):
        nnc.datasets.train_test_split([[1.0, 2.0], [3.0]], [0, 1])
    with pytest.raises(MemoryError, match=r"n=4611686018427387904"):
        nnc.datasets.make_mnist_like(2 ** 62)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("make", [lambda eps: nnc.Adam(1e-3, eps=eps),
                                  lambda eps: nnc.RMSprop(1e-3, eps=eps),
                                  lambda eps: nnc.Adagrad(1e-3, eps=eps)],
                         ids=["Adam", "RMSprop", "Adagrad"])
def test_eps_keeps_unregistered_gradients_from_huge_steps(backend, make):
    """A gradient whose square the state cannot hold in float32 (flushed to
    zero) must not take a step of g/ε: ε has a floor that keeps it < 1 % of lr."""
    smallest = make(1.0)._smallest_eps(np.float32)
    with pytest.raises(ValueError, match="eps must be >= "):
        make(smallest / 10).bind(np.zeros(3, np.float32), np.zeros(3, np.float32), backend)
    # the largest gradient whose square times the state's weight is below tiny
    unregistered = np.sqrt(np.finfo(np.float32).tiny / make(1.0)._square_weight())
    for g in (0.9 * unregistered, unregistered / 100, 0.0):
        w, grads = np.zeros(3, np.float32), np.full(3, g, np.float32)
        make(smallest * 1.01).bind(w, grads, backend).step()
        assert np.all(np.abs(w) <= 0.011 * 1e-3), (g, w)


def test_parallel_thresholds_are_public_and_checked():
    before = nnc.get_parallel_thresholds()
    try:
        assert nnc.set_parallel_thresholds(elementwise=0) == before
        assert nnc.get_parallel_thresholds() == {"elementwise": 0.0, "gemm": before["gemm"]}
        # every kernel threaded gives the same step as the defaults, within rounding
        X, y = nnc.datasets.load_digits()
        results = []
        for thresholds in ({"elementwise": 0, "gemm": 0}, before):
            nnc.set_parallel_thresholds(**thresholds)
            model = nnc.Sequential(nnc.Dense(64, 32), nnc.ReLU(), nnc.Dense(32, 10), seed=0)
            nnc.Trainer(model, batch_size=128).fit(X, y, epochs=1, verbose=False)
            results.append(model.flat_params.copy())
        np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
        for bad in (-1, float("nan"), "many"):
            with pytest.raises((TypeError, ValueError), match="elementwise"):
                nnc.set_parallel_thresholds(elementwise=bad)
    finally:
        nnc.set_parallel_thresholds(**before)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("lr", [3.5e38, 1e39])
def test_a_learning_rate_beyond_float32_is_refused_before_the_step(backend, lr):
    """The kernels take the rate in the parameters' dtype: 3.5e38 would be
    inf there (inf weights, or NaN from inf * 0 gradients)."""
    X = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    model = nnc.Sequential(nnc.Dense(4, 5), nnc.ReLU(), nnc.Dense(5, 3), seed=0, backend=backend)
    before = model.flat_params.copy()
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=lr), batch_size=10)
    with pytest.raises(ValueError, match=r"lr must be below 3.40\de\+38 for float32"):
        trainer.fit(X, np.arange(10) % 3, verbose=False)
    with pytest.raises(ValueError, match="lr must be below"):
        trainer.optimizer.step(lr)
    assert np.array_equal(model.flat_params, before) and trainer.optimizer.t == 0
    nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0, dtype="float64"),
                optimizer=nnc.SGD(lr=lr)).optimizer.step()  # float64 takes it


def test_adams_bias_corrected_rate_must_fit_the_dtype():
    """Adam's step size α sqrt(1-β₂ᵗ)/(1-β₁ᵗ) exceeds α when β₁ is near 1."""
    model = nnc.Sequential(nnc.Dense(4, 3), seed=0)
    optimizer = nnc.Adam(lr=1e37, beta1=0.9999).bind(model)
    with pytest.raises(ValueError, match="lr must be below"):
        optimizer.step()
    nnc.Adam(lr=1e37).bind(nnc.Sequential(nnc.Dense(4, 3), seed=0)).step()


def test_a_state_dict_of_another_architecture_is_refused():
    """The same number of parameters in other layers: the layout is compared."""
    X, y = np.random.default_rng(0).normal(size=(10, 4)), np.arange(10) % 2
    source = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), nnc.ReLU(), nnc.Dense(3, 2), seed=0),
                         batch_size=5)
    source.fit(X, y, verbose=False)
    target = nnc.Trainer(nnc.Sequential(nnc.ReLU(), nnc.Dense(4, 3), nnc.Dense(3, 2), seed=0),
                         batch_size=5)
    with pytest.raises(ValueError, match=r"state\['layout'\].*another architecture"):
        target.load_state_dict(source.state_dict())
    state = source.state_dict()
    del state["history"]["steps"]["grad_norm.0"]
    with pytest.raises(ValueError, match="grad_norm.0"):
        source.load_state_dict(state)


@pytest.mark.parametrize("y,hint", [
    (np.eye(3)[[0, 1, 2, 1]], r"y.argmax\(axis=1\)"),
    (np.eye(3, dtype=np.int64)[[0, 1, 2, 1]], r"1-D.*y.argmax\(axis=1\)"),
    (np.array([0.0, 1.0, 2.0, 1.0]), r"y.astype\(np.int64\)"),
])
def test_label_errors_hint_at_the_right_conversion(y, hint):
    with pytest.raises((TypeError, ValueError), match=hint):
        nnc.SoftmaxCrossEntropy().forward(np.zeros((4, 3)), y)


def _bn_model():
    return nnc.Sequential(nnc.Dense(4, 5, bias=False), nnc.BatchNorm(5), nnc.Dense(5, 3), seed=0)


@pytest.mark.parametrize("replacement", [[1.0] * 5, np.ones(5), np.ones(5, np.float64)])
def test_a_replaced_buffer_is_named_before_any_use(tmp_path, replacement):
    model = _bn_model()
    model.layers[1].buffers["running_var"] = replacement
    X = np.zeros((4, 4), np.float32)
    for use in (lambda: model.predict(X), lambda: model.forward(X),
                lambda: model.save(tmp_path / "m.npz"),
                lambda: nnc.Trainer(model).fit(X, np.arange(4) % 3, verbose=False)):
        with pytest.raises(ValueError, match=r"buffers\['running_var'\] was replaced"):
            use()


def test_changing_model_layers_after_building_is_named():
    model = _bn_model()
    model.layers.pop()
    with pytest.raises(ValueError, match="model.layers was changed.*3 layers, now 2"):
        model.predict(np.zeros((2, 4)))


def test_gradcheck_names_a_replaced_parameter():
    model = nnc.Sequential(nnc.Dense(4, 3), seed=0, dtype="float64")
    model.layers[0].params["W"] = model.layers[0].params["W"].copy()
    with pytest.raises(ValueError, match=r"params\['W'\].*replaced"):
        nnc.gradcheck(model, "softmax_cross_entropy", np.zeros((2, 4)), np.array([0, 1]))


def test_the_step_count_stops_at_its_limit_without_changing_anything():
    optimizer = nnc.Adam().bind(nnc.Sequential(nnc.Dense(4, 3), seed=0))
    state = optimizer.state_dict()
    state["t"] = 2 ** 63 - 1
    optimizer.load_state_dict(state)
    before = optimizer.params.copy()
    with pytest.raises(ValueError, match=r"t = 9223372036854775807 is at its limit"):
        optimizer.step()
    assert optimizer.t == 2 ** 63 - 1 and np.array_equal(optimizer.params, before)
    optimizer.load_state_dict(optimizer.state_dict())  # still a valid state


def test_csv_logger_refuses_a_file_of_another_separator_or_ragged_rows(tmp_path):
    from nnc.callbacks import CSVLogger

    X, y = np.zeros((10, 4)), np.arange(10) % 3
    for content, message in (("epoch;loss\n1;0.5\n", "not a header"),
                             ("epoch,loss\n1,0.5,7\n", "line 2 .* more values than its header")):
        path = tmp_path / "log.csv"
        path.write_text(content)
        trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=5)
        with pytest.raises(ValueError, match=message):
            trainer.fit(X, y, verbose=False, callbacks=[CSVLogger(path, append=True)])
        assert trainer.step_count == 0 and path.read_text() == content


def _built_layers():
    model = nnc.Sequential(nnc.Dense(4, 5, bias=False), nnc.BatchNorm(5), nnc.ReLU(),
                           nnc.LeakyReLU(0.1), nnc.Dropout(0.5), nnc.Dense(5, 3), seed=0)
    return model.layers


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize("bad,message", [
    (lambda shape: np.zeros(shape), r"x has dtype float64.*computes in float32"),
    (lambda shape: np.zeros(shape, np.float32).tolist(), "x must be a NumPy array of float32"),
    (lambda shape: np.zeros(shape[::-1], np.float32).T, "x must be C-contiguous"),
    (lambda shape: np.zeros(shape[1], np.float32), r"x must be 2-D"),
])
def test_a_layer_names_a_bad_input_array(index, bad, message):
    layer = _built_layers()[index]
    features = 4 if index == 0 else 5
    with pytest.raises((TypeError, ValueError), match=f"{type(layer).__name__}.forward: {message}"):
        layer.forward(bad((3, features)))


def test_a_layer_names_a_wrong_feature_count_and_gradient_shape():
    dense, batchnorm = _built_layers()[:2]
    with pytest.raises(ValueError, match=r"Dense.forward: x has 3 features .* expected 4"):
        dense.forward(np.zeros((2, 3), np.float32))
    dense.forward(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"Dense.backward: dy has shape \(3, 4\).*\(3, 5\)"):
        dense.backward(np.zeros((3, 4), np.float32))
    batchnorm.forward(np.zeros((3, 5), np.float32), training=False)
    with pytest.raises(ValueError, match=r"BatchNorm.backward: dy has shape \(2, 5\)"):
        batchnorm.backward(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("value", [1.5, np.nan])
def test_float_labels_that_are_not_whole_numbers_get_no_truncating_hint(value):
    with pytest.raises(TypeError, match=f"it holds {value!r}, which is not a class label") as info:
        nnc.SoftmaxCrossEntropy().forward(np.zeros((3, 4)), np.array([0.0, value, 2.0]))
    assert "astype" not in str(info.value)


@pytest.mark.parametrize("part,name,values,message", [
    ("epochs", "loss", ["0.5", "x"], r"epochs\['loss'\]\[0\] must be a number, got '0.5'"),
    ("epochs", "val_accuracy", [[0.5]], r"epochs\['val_accuracy'\]\[0\] must be a number"),
    ("steps", "lr", [[1.0]], r"steps\['lr'\]\[0\] must be a number"),
])
def test_history_records_nnc_reads_must_be_flat_lists_of_numbers(part, name, values, message):
    state = {"steps": {"loss": [1.0]}, "epochs": {}}
    state[part][name] = values
    with pytest.raises(ValueError, match=message):
        nnc.History.from_dict(state)
    state = {"steps": {}, "epochs": {"note": ["a callback's words"]}}
    assert nnc.History.from_dict(state).epochs["note"] == ["a callback's words"]


@pytest.mark.parametrize("factory,value", [(nnc.init.uniform, 1e308), (nnc.init.normal, 1e39),
                                           (nnc.init.constant, -1e39)])
def test_initialiser_scales_beyond_float32_are_refused_at_once(factory, value):
    with pytest.raises(ValueError, match="must lie in"):
        factory(value)


def test_a_softmax_over_one_output_hints_at_two_outputs_or_bce():
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 1), seed=0), batch_size=5)
    with pytest.raises(ValueError, match="2 outputs, or one output with loss='bce_with_logits'"):
        trainer.fit(np.ones((10, 4)), np.arange(10) % 2, verbose=False)


def _bound(optimizer):
    return optimizer.bind(nnc.Sequential(nnc.Dense(3, 2), seed=0))


SETTINGS = [
    (lambda: nnc.SGD(0.1), "lr", -1.0, "lr must lie in"),
    (lambda: nnc.SGD(0.1), "lr", "0.1", "lr must be a real number"),
    (lambda: nnc.SGD(0.1, momentum=0.9), "momentum", 1.0, "momentum must lie in"),
    (lambda: nnc.SGD(0.1, momentum=0.9, nesterov=True), "momentum", 0.0, "nesterov=True needs"),
    (lambda: _bound(nnc.SGD(0.1)), "momentum", 0.9, "switch momentum on"),
    (lambda: nnc.RMSprop(), "eps", -1.0, "eps must lie in"),
    (lambda: nnc.RMSprop(), "rho", -1, "rho must lie in"),
    (lambda: nnc.Adam(), "beta1", 1.0, "beta1 must lie in"),
    (lambda: nnc.Adam(), "beta2", float("nan"), "beta2 must be finite"),
    (lambda: _bound(nnc.Adam()), "eps", 1e-40, "eps must be >="),
    (lambda: nnc.AdamW(lr=0.1), "weight_decay", 20.0, r"lr \* weight_decay must be < 1"),
    (lambda: nnc.AdamW(), "weight_decay", "0.1", "weight_decay must be a real number"),
    (lambda: nnc.Adagrad(), "eps", 0.0, "eps must lie in"),
    (lambda: nnc.BatchNorm(3), "momentum", 2.0, "momentum must lie in"),
    (lambda: nnc.BatchNorm(3), "eps", "1e-5", "eps must be a real number"),
    (lambda: nnc.Dropout(0.5), "p", 1.0, "p must lie in"),
    (lambda: nnc.LeakyReLU(), "alpha", 1e40, "float32 range"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "batch_size", 0,
     "batch_size must be >= 1"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "clip_norm", -1.0,
     "clip_norm must lie in"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "clip_value", 0,
     "clip_value must lie in"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "l2", -1.0, "l2 must lie in"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "schedule", "cosine",
     "schedule 'cosine' needs parameters"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "nan_guard", "ignore",
     "nan_guard must be"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "callbacks", 3,
     "callbacks must be"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "model",
     nnc.Sequential(nnc.Dense(3, 2), seed=1), "model cannot be replaced"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0)), "optimizer", nnc.Adam(),
     "optimizer cannot be replaced"),
]


@pytest.mark.parametrize("make,name,value,message", SETTINGS,
                         ids=[f"{i}-{row[1]}" for i, row in enumerate(SETTINGS)])
def test_a_setting_changed_later_is_checked_like_the_constructor_argument(
        make, name, value, message):
    owner = make()
    before = getattr(owner, name)
    with pytest.raises((ValueError, TypeError, AttributeError), match=message):
        setattr(owner, name, value)
    assert getattr(owner, name) is before  # the refused value is not kept


def test_valid_settings_changed_between_fits_take_effect():
    X, y = np.random.default_rng(0).normal(size=(12, 3)), np.arange(12) % 2
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0),
                          optimizer=nnc.SGD(0.1, momentum=0.5), batch_size=4)
    trainer.fit(X, y, verbose=False)
    trainer.optimizer.lr, trainer.optimizer.momentum, trainer.batch_size = 0.0, 0.9, 6
    before = trainer.model.flat_params.copy()
    trainer.fit(X, y, verbose=False)
    assert trainer.step_count == 5 and np.array_equal(trainer.model.flat_params, before)


def test_layer_forward_and_backward_take_keyword_arguments():
    dense = nnc.Sequential(nnc.Dense(4, 3), seed=0).layers[0]
    out = dense.forward(x=np.ones((2, 4), np.float32), training=True)
    assert dense.backward(dy=np.ones_like(out)).shape == (2, 4)
    with pytest.raises(TypeError, match="Dense.forward: x has dtype float64"):
        dense.forward(x=np.ones((2, 4)))


def test_the_learning_rate_limit_message_is_a_number_when_lr_times_max_overflows():
    optimizer = nnc.Adam(lr=1e306, beta1=0.999, beta2=0.9).bind(
        nnc.Sequential(nnc.Dense(3, 2), seed=0, dtype="float64"))
    with pytest.raises(ValueError, match=r"lr must be below \d\.\d+e\+30\d"):
        optimizer.step()


def test_a_hook_that_raises_in_on_step_refused_finds_the_step_undone():
    from nnc.callbacks import LambdaCallback

    def refuse(trainer):
        raise RuntimeError("refused by a callback")

    def shout(trainer):
        raise KeyboardInterrupt

    X, y = np.random.default_rng(0).normal(size=(12, 3)), np.arange(12) % 2
    model = nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4), nnc.Dense(4, 2), seed=0)
    trainer = nnc.Trainer(model, batch_size=4)
    trainer.fit(X, y, verbose=False)
    buffers = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, verbose=False, callbacks=[LambdaCallback(
            on_before_update=refuse, on_step_refused=shout)])
    steps = trainer.history.steps
    assert len(steps["grad_norm"]) == len(steps["loss"]) == len(steps["grad_norm.0"]) == 3
    for name, value in buffers.items():
        np.testing.assert_array_equal(model.layers[1].buffers[name], value)


@pytest.mark.parametrize("template,message", [
    ("ck-{val_loss:.3f}.npz", "KeyError\\('val_loss'\\)"),
    ("ck-{epoch:s}.npz", "Unknown format code"),
    ("missing-{epoch}/ck.npz", "does not exist"),
])
def test_a_checkpoint_template_this_fit_cannot_fill_fails_before_training(
        tmp_path, template, message):
    X, y = np.random.default_rng(0).normal(size=(12, 3)), np.arange(12) % 2
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0), batch_size=4)
    with pytest.raises(ValueError, match=message):
        trainer.fit(X, y, verbose=False,
                    callbacks=[nnc.callbacks.ModelCheckpoint(tmp_path / template)])
    assert trainer.step_count == 0


def test_numpy_scalars_are_taken_where_python_ones_are():
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    assert nnc.Trainer(model, diagnostics=np.True_).diagnostics is not None
    assert schedules.StepDecay(0.1, step_size=2 ** 63)(np.int64(5)) == 0.1


def test_read_idx_names_a_bad_source():
    from nnc.datasets.mnist import read_idx

    with pytest.raises(TypeError, match="source must be a file name or the file's bytes"):
        read_idx(123)


def test_small_refusals_name_the_right_thing(tmp_path):
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    long_name = tmp_path / ("m" * 240 + ".npz")  # legal: the temporary file's name is short
    model.save(long_name)
    with pytest.raises(ValueError, match="backend must be one of"):
        nnc.load(long_name, backend="torch")
    history = tmp_path / "h.json"
    history.write_text('{"format": "nnc.History", "version": 99, "steps": {}}')
    with pytest.raises(ValueError, match="version 99"):
        nnc.History.load(history)


def test_partial_fit_refuses_nan_as_a_class():
    pytest.importorskip("sklearn")
    from nnc.sklearn import NNClassifier

    with pytest.raises(ValueError, match="NaN is no class"):
        NNClassifier(hidden_layer_sizes=(4,)).partial_fit(
            np.zeros((3, 2)), np.array([0.0, 1.0, 0.0]), classes=[0.0, 1.0, np.nan])


# --- what a newcomer passes: the message says how to convert it -------------------

def _small_trainer(loss="softmax_cross_entropy", outputs=2):
    return nnc.Trainer(nnc.Sequential(nnc.Dense(3, outputs), seed=0), loss=loss, batch_size=4)


def test_boolean_labels_and_targets_are_refused_with_the_conversion():
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y = X[:, 0] > 0
    with pytest.raises(TypeError, match=re.escape(
            "y must hold integer class labels, got dtype bool; convert it with "
            "y.astype(np.int64)")):
        _small_trainer().fit(X, y, verbose=False)
    with pytest.raises(TypeError, match=re.escape("got dtype bool; convert it with "
                                                  "y.astype(np.float32)")):
        _small_trainer("bce_with_logits", 1).fit(X, y, verbose=False)
    history = _small_trainer("bce_with_logits", 1).fit(X, y.astype(np.float32), verbose=False)
    assert np.isfinite(history["loss"]).all()  # the conversion it names works


def test_an_object_array_is_refused_with_how_to_convert_it():
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(object)
    with pytest.raises(TypeError, match=re.escape(
            "X must hold float32 or float64 values, got dtype object (mixed types or missing "
            "values") + ".*" + re.escape("np.asarray(X, dtype=np.float32)")):
        _small_trainer().fit(X, np.zeros(8, np.int64), verbose=False)


def test_a_missing_history_record_is_named_with_the_ones_there():
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    history = _small_trainer().fit(X, np.zeros(8, np.int64), verbose=False)
    with pytest.raises(KeyError, match=re.escape("no record 'val_loss' in this History (val_* "
                                                 "metrics come from fit(..., validation_data=")):
        history["val_loss"]
    with pytest.raises(KeyError, match=r"no record 'lost' in this History; it has \[.*'loss'"):
        history["lost"]
    assert history["loss"] == history.epochs["loss"] and history["lr"] == history.steps["lr"]


# --- fuzz round 4 ------------------------------------------------------------------

def test_plain_adam_has_no_weight_decay_to_set():
    adam = nnc.Adam()
    with pytest.raises(AttributeError, match=r"Adam has no weight decay to set \(got nan\).*AdamW"):
        adam.weight_decay = float("nan")
    assert adam.weight_decay == 0.0
    adamw = nnc.AdamW(weight_decay=0.1)
    adamw.weight_decay = 0.2  # AdamW's is a checked setting
    with pytest.raises(ValueError, match="weight_decay"):
        adamw.weight_decay = -1


@pytest.mark.parametrize("make", [nnc.Adam, nnc.RMSprop, nnc.Adagrad])
def test_an_eps_beyond_the_parameters_dtype_is_refused(make):
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    with pytest.raises(ValueError, match=r"eps must be <= 1.84e\+19 for float32"):
        make(eps=1e300).bind(model)
    optimizer = make(eps=1e-8).bind(model)
    with pytest.raises(ValueError, match=r"eps must be <= 1.84e\+19 for float32"):
        optimizer.eps = 1e20
    assert optimizer.eps == 1e-8
    make(eps=1e20).bind(nnc.Sequential(nnc.Dense(3, 2), dtype="float64"))  # fits float64


def test_a_batchnorm_eps_beyond_float32_is_refused():
    with pytest.raises(ValueError, match=r"eps must lie in \[1.17549e-38, 3.402823e\+38\]"):
        nnc.BatchNorm(3, eps=1e300)


def test_a_batch_size_changed_during_an_epoch_applies_from_the_next():
    X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    y = np.zeros(200, np.int64)
    trainer = _small_trainer()
    trainer.batch_size = 32
    sizes = []

    class Change(nnc.callbacks.Callback):
        def on_step_end(self, trainer, logs):
            sizes.append(len(trainer.model._last_input))
            trainer.batch_size = 50

    trainer.fit(X, y, epochs=2, verbose=False, callbacks=[Change()])
    assert sizes == [32] * 6 + [8] + [50] * 4  # every sample once per epoch


def test_a_layer_array_replaced_by_a_callback_stops_the_fit_at_once():
    X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    trainer = _small_trainer()

    class Replace(nnc.callbacks.Callback):
        def on_step_end(self, trainer, logs):
            if logs["step"] == 2:
                layer = trainer.model.layers[0]
                layer.params["W"] = layer.params["W"].copy()

    with pytest.raises(ValueError, match=r"params\['W'\] or grads\['W'\] was replaced"):
        trainer.fit(X, np.zeros(64, np.int64), epochs=3, verbose=False, callbacks=[Replace()])
    assert trainer.step_count == 2


def test_trainer_and_optimizer_attributes_that_training_reads_are_checked():
    trainer = _small_trainer()
    for name, value, error in [("history", None, TypeError), ("rng", None, TypeError),
                               ("loss", "nope", ValueError)]:
        with pytest.raises(error, match=name):
            setattr(trainer, name, value)
    with pytest.raises(AttributeError, match="diagnostics cannot be replaced"):
        trainer.diagnostics = 5
    trainer.loss = "mse"  # a name is turned into the loss object
    assert isinstance(trainer.loss, nnc.MeanSquaredError)
    optimizer = trainer.optimizer
    for value in ("a", -1, 1.5, True):
        with pytest.raises(ValueError, match=r"t must be an int in \[0, 2\*\*63 - 1\]"):
            optimizer.t = value
    assert optimizer.t == 0


def test_a_replaced_optimizer_state_array_is_named_and_the_step_not_counted():
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    optimizer = nnc.Adam().bind(model)
    optimizer.state["v"] = np.zeros(model.n_params, np.float64)
    before = model.flat_params.copy()
    with pytest.raises(ValueError, match=r"optimizer.state\['v'\] must be a writable "
                                         r"C-contiguous float32 array of shape \(8,\)"):
        optimizer.step()
    assert optimizer.t == 0
    np.testing.assert_array_equal(model.flat_params, before)


def test_enormous_ints_are_described_by_their_size():
    trainer = _small_trainer()
    trainer.batch_size = 10 ** 400
    with pytest.raises(ValueError, match=r"batch_size an int of 1329 bits is larger than the 8"):
        trainer.fit(np.zeros((8, 3), np.float32), np.zeros(8, np.int64), verbose=False)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got a negative int of "
                                         r"16610 bits"):
        trainer.batch_size = -10 ** 5000  # (its digits could not even be printed)
    with pytest.raises(ValueError, match=r"n_classes must be <= 1000, got 1000000"):
        nnc.datasets.make_mnist_like(10, n_classes=10 ** 6)


def test_a_model_may_start_with_or_be_only_a_batchnorm():
    X = np.random.default_rng(0).normal(2, 3, size=(16, 3)).astype(np.float32)
    model = nnc.Sequential(nnc.BatchNorm(3), seed=0)
    assert (model.in_features, model.out_features) == (3, 3)
    np.testing.assert_allclose(model.forward(X, training=True).std(axis=0), 1, rtol=1e-4)
    with pytest.raises(ValueError, match="needs a layer that knows its input size"):
        nnc.Sequential(nnc.Dropout(0.5), nnc.ReLU())


def test_the_scale_of_finite_data_beyond_1e154_is_finite_and_quiet():
    from nnc.diagnostics import data_rms

    with np.errstate(all="raise"):
        assert data_rms(np.full((5, 2), 1e200)) == pytest.approx(1e200)
    assert data_rms(np.zeros((3, 2))) == 0.0
    assert data_rms(np.array([[3.0, 4.0]])) == pytest.approx(np.sqrt(12.5))


def test_a_history_assigned_by_hand_is_filled_in_by_fit():
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    trainer = _small_trainer()
    trainer.history = nnc.History()  # lacks the per-layer gradient norms the trainer keeps
    trainer.fit(X, np.zeros(8, np.int64), verbose=False)
    assert len(trainer.history.steps["grad_norm.0"]) == len(trainer.history.steps["loss"]) == 2


def test_an_epoch_callback_replacing_an_array_is_caught_at_the_next_epoch():
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    trainer = _small_trainer()

    class Replace(nnc.callbacks.Callback):  # no step hook: checked between epochs
        def on_epoch_end(self, trainer, epoch, logs):
            layer = trainer.model.layers[0]
            layer.params["W"] = layer.params["W"].copy()

    with pytest.raises(ValueError, match=r"params\['W'\] or grads\['W'\] was replaced"):
        trainer.fit(X, np.zeros(16, np.int64), epochs=3, verbose=False, callbacks=[Replace()])
    assert trainer.step_count == 4  # the first epoch's steps only
    assert not trainer._step_hooks  # (its steps skipped the per-step check)


def test_an_optimizer_from_an_older_pickle_takes_its_models_lock_again():
    trainer = _small_trainer()
    state = trainer.__getstate__()
    del state["_optimizer"].__dict__["_lock"]  # as pickled before optimizers held it
    copy = nnc.Trainer.__new__(nnc.Trainer)
    copy.__setstate__(state)
    assert copy.optimizer._lock is copy.model._lock


def test_layers_without_parameters_still_get_the_suggested_initialiser():
    seen = []

    class Remember(nnc.layers.Layer):
        def initialize(self, default_init):
            seen.append(default_init)

    nnc.Sequential(nnc.Dense(3, 4), Remember(), nnc.ReLU(), nnc.Dense(4, 2), Remember())
    assert seen == ["he_normal", "glorot_normal"]


def test_a_subclass_of_adam_is_told_to_subclass_adamw_for_decay():
    class MyAdam(nnc.Adam):
        def __init__(self, decay):
            super().__init__()
            self.weight_decay = decay

    with pytest.raises(AttributeError, match=r"MyAdam has no weight decay to set.*subclass it"):
        MyAdam(0.1)


# --- fuzz round 5 ------------------------------------------------------------------

def test_the_loss_cannot_change_while_fit_steps_history_and_rng_may():
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, np.int64)
    trainer = _small_trainer()
    changes = {"loss": "mse", "history": nnc.History(), "rng": np.random.default_rng(1)}
    for name, value in changes.items():
        class Change(nnc.callbacks.Callback):
            def on_step_end(self, trainer, logs, name=name, value=value):
                setattr(trainer, name, value)

        if name == "loss":  # the targets were checked for the old one
            with pytest.raises(RuntimeError, match="trainer.loss cannot change while fit runs"):
                trainer.fit(X, y, verbose=False, callbacks=[Change()])
        else:  # a fresh History gets the records the steps append to
            trainer.fit(X, y, verbose=False, callbacks=[Change()])
            assert trainer.history is not None and getattr(trainer, name) is value
        with pytest.raises(AttributeError, match=f"trainer.{name} cannot be deleted"):
            delattr(trainer, name)
    assert len(trainer.history.steps["grad_norm.0"]) == len(trainer.history.steps["grad_norm"])


def test_callbacks_may_restore_a_state_or_change_the_loss_once_the_steps_are_done(tmp_path):
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, np.int64)
    trainer = _small_trainer()
    trainer.fit(X, y, verbose=False)
    state = trainer.state_dict()

    class Restore(nnc.callbacks.Callback):
        def on_train_end(self, trainer):
            trainer.load_state_dict(state)
            trainer.loss = "softmax_cross_entropy"

    trainer.fit(X, y, epochs=2, verbose=False, callbacks=[Restore()])
    assert trainer.step_count == 4 == len(trainer.history.steps["loss"])
    np.testing.assert_array_equal(trainer.model.flat_params, state["params"])


def test_a_history_set_by_hand_must_be_readable_and_consistent():
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    trainer = _small_trainer()
    broken = nnc.History()
    broken.steps = None
    with pytest.raises(TypeError, match="trainer.history.steps must be a dict, got NoneType"):
        trainer.history = broken
    uneven = nnc.History()
    uneven.steps.update({"grad_norm": [1.0, 2.0], "grad_norm.0": [1.0]})
    trainer.history = uneven  # (left as given until a fit uses it)
    with pytest.raises(ValueError, match=r"steps\['grad_norm.0'\] has 1 entries, "
                                         r"steps\['grad_norm'\] 2"):
        trainer.fit(X, np.zeros(8, np.int64), verbose=False)
    assert trainer.step_count == 0
    tuples = nnc.History()
    tuples.steps["loss"] = ()  # records the steps append to become lists
    trainer.history = tuples
    trainer.fit(X, np.zeros(8, np.int64), verbose=False)
    assert len(tuples.steps["loss"]) == 2


def test_the_shuffling_generator_must_be_a_numpy_generator():
    trainer = _small_trainer()
    with pytest.raises(TypeError, match="trainer.rng|rng must be a numpy.random.Generator"):
        trainer.rng = np.random.RandomState(0)  # checkpoints need its bit generator


def test_a_checkpoint_keeps_records_a_callback_logged(tmp_path):
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    trainer = _small_trainer()

    class Log(nnc.callbacks.Callback):
        def on_step_end(self, trainer, logs):
            trainer.history.steps.setdefault("grad_norm.clipped", []).append(1.0)
            trainer.history.steps.setdefault("note", []).append("warm-up")

    trainer.fit(X, np.zeros(8, np.int64), verbose=False, callbacks=[Log()])
    trainer.save_checkpoint(tmp_path / "c.npz")
    again = _small_trainer()
    again.load_checkpoint(tmp_path / "c.npz")
    assert again.history.steps["note"] == ["warm-up", "warm-up"]
    assert again.history.steps["grad_norm.clipped"] == [1.0, 1.0]


def test_warn_unscaled_is_checked_and_a_batchnorm_anywhere_before_dense_counts():
    trainer = _small_trainer()
    trainer.warn_unscaled = "False"
    with pytest.raises(TypeError, match="trainer.warn_unscaled"):
        trainer.fit(np.zeros((8, 3), np.float32), np.zeros(8, np.int64), verbose=False)

    class Quiet(nnc.Trainer):
        warn_unscaled = False  # a subclass's default holds

    X = 100 * np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Quiet(nnc.Sequential(nnc.Dense(3, 2), seed=0), batch_size=4).fit(
            X, np.zeros(16, np.int64), verbose=False)

    class MyDense(nnc.Dense):
        pass

    with pytest.warns(UserWarning, match="X has a root-mean-square"):  # a Dense comes first
        nnc.Trainer(nnc.Sequential(MyDense(3, 3, bias=False), nnc.BatchNorm(3), nnc.Dense(3, 2),
                                   seed=0),
                    batch_size=4).fit(X, np.zeros(16, np.int64), verbose=False)
    model = nnc.Sequential(nnc.Dropout(0.1), nnc.BatchNorm(3), nnc.Dense(3, 2), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = nnc.Trainer(model, batch_size=4).fit(X, np.zeros(16, np.int64), verbose=False)
    assert "unscaled_inputs" not in [v.kind for v in nnc.diagnostics.diagnose(history)]


@pytest.mark.parametrize("call, match", [
    (lambda: setattr(nnc.Adam(), "t", 10 ** 5000), "t must be an int in .* got an int of"),
    (lambda: setattr(nnc.Adam(), "lr", 10 ** 5000), "lr must be finite, got an int of"),
    (lambda: nnc.Dense(10 ** 5000, 2), "in_features must be <= 2147483647, got an int of"),
    (lambda: nnc.Sequential(nnc.Dense(2, 2), seed=10 ** 5000), "seed must be <= "),
    (lambda: _small_trainer().fit(np.zeros((8, 3), np.float32), np.zeros(8, np.int64),
                                  epochs=10 ** 5000), "epochs must be <= "),
])
def test_ints_of_thousands_of_digits_are_refused_with_a_message(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_broken_optimizer_state_or_gradient_is_named():
    model = nnc.Sequential(nnc.Dense(3, 2), seed=0)
    optimizer = nnc.Adam().bind(model)
    del optimizer.state["m"]
    with pytest.raises(ValueError, match=r"optimizer.state\['m'\] must be .* got NoneType"):
        optimizer.step()
    optimizer = nnc.Adam().bind(nnc.Sequential(nnc.Dense(3, 2), seed=0))
    optimizer.grads = None
    with pytest.raises(ValueError, match="optimizer.grads must be the float32 gradient array"):
        optimizer.step()
    assert optimizer.t == 0


def test_the_report_of_huge_losses_warns_of_no_overflow():
    history = nnc.History()
    history.steps.update({"loss": [1e308] * 20, "lr": [0.1] * 20, "grad_norm": [1.0] * 20})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert history.report().startswith("nnc diagnosis")


def test_a_user_optimizers_own_error_is_not_replaced_by_a_state_check():
    from nnc.optim import Optimizer

    class Mine(Optimizer):
        state_names = ("acc",)

        def _update(self, lr):
            raise KeyError("mine")

    optimizer = Mine(0.1).bind(nnc.Sequential(nnc.Dense(2, 2), seed=0))
    with pytest.raises(KeyError, match="mine"):
        optimizer.step()
    assert optimizer.t == 0


def test_a_model_file_with_a_seed_beyond_todays_cap_still_loads(tmp_path):
    nnc.Sequential(nnc.Dense(2, 2), seed=5).save(tmp_path / "m.npz")
    rewrite(str(tmp_path / "m.npz"), header=lambda header: header.__setitem__("seed", 2 ** 200))
    assert nnc.load(tmp_path / "m.npz").seed == 2 ** 200  # as an older nnc wrote it


def test_plots_leave_out_records_a_callback_logs_under_per_layer_looking_names(tmp_path):
    pytest.importorskip("matplotlib")
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    trainer = _small_trainer()

    class Log(nnc.callbacks.Callback):
        def on_step_end(self, trainer, logs):
            if logs["step"] % 2:  # on some steps only
                trainer.history.steps.setdefault("grad_norm.clipped", []).append(1.0)

    history = trainer.fit(X, np.zeros(16, np.int64), epochs=2, verbose=False, callbacks=[Log()])
    history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_monitored_metric_that_is_not_a_number_is_named(tmp_path):
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    trainer = _small_trainer()
    trainer.history.epochs["score"] = [None, "n/a"]  # restored from a run that logged these

    class Score(nnc.callbacks.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            logs["score"] = None if epoch else 0.5

    checkpoint = nnc.callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="score",
                                               save_best_only=True)
    with pytest.raises(TypeError, match=r"ModelCheckpoint: monitor 'score' must be a number in "
                                        r"the epoch logs, got None"):
        trainer.fit(X, np.zeros(16, np.int64), epochs=2, verbose=False,
                    callbacks=[Score(), checkpoint])
    assert (tmp_path / "best.npz").exists()  # the first epoch's 0.5 was saved


@pytest.mark.parametrize("logged", ["0.500", True, 10 ** 400])
def test_monitored_values_that_are_text_bools_or_huge_ints_are_named_or_skipped(tmp_path, logged):
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    trainer = _small_trainer()
    trainer.history.epochs["f1"] = [logged]  # restored: counts as no record

    class Score(nnc.callbacks.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            logs["f1"] = 0.5 if epoch == 0 else logged

    checkpoint = nnc.callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="f1",
                                               mode="max", save_best_only=True)
    with pytest.raises(TypeError, match=r"monitor 'f1' must be a number in the epoch logs"):
        trainer.fit(X, np.zeros(16, np.int64), epochs=2, verbose=False,
                    callbacks=[Score(), checkpoint])
    assert checkpoint._best.best == 0.5  # the first epoch's number was taken


def test_a_history_swapped_in_a_refused_step_keeps_its_records():
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, np.int64)
    trainer = _small_trainer()
    trainer.fit(X, y, verbose=False)
    fresh = nnc.History()
    fresh.steps.update({k: list(v) for k, v in trainer.history.steps.items()})

    class Swap(nnc.callbacks.Callback):
        def on_before_update(self, trainer):
            trainer.history = fresh
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        trainer.fit(X, y, verbose=False, callbacks=[Swap()])
    assert len(fresh.steps["grad_norm"]) == len(fresh.steps["loss"]) == 4
    assert len(fresh.steps["grad_norm.0"]) == 4


def test_a_bad_warn_unscaled_is_refused_before_a_checkpoint_is_loaded(tmp_path):
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, np.int64)
    first = _small_trainer()
    first.fit(X, y, verbose=False)
    first.save_checkpoint(tmp_path / "c.npz")
    second = _small_trainer()
    second.warn_unscaled = "no"
    with pytest.raises(TypeError, match="trainer.warn_unscaled"):
        second.fit(X, y, epochs=3, verbose=False, resume_from=tmp_path / "c.npz")
    assert second.step_count == 0


def test_text_under_a_record_nnc_reads_is_refused_when_written(tmp_path):
    history = nnc.History()
    history.steps["loss"] = ["1e3"]
    with pytest.raises(ValueError, match=r"cannot be written as it is: steps\['loss'\]\[0\] "
                                         r"must be a number, got '1e3'"):
        history.save(tmp_path / "run.json")
    assert not (tmp_path / "run.json").exists()
    trainer = _small_trainer()
    trainer.history.steps["lr"] = ["fast"]
    with pytest.raises(ValueError, match=r"steps\['lr'\]\[0\] must be a number"):
        trainer.save_checkpoint(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"steps\['lr'\]\[0\] must be a number"):
        trainer.state_dict()  # (load_state_dict would refuse it)


def test_text_under_a_per_layer_looking_name_is_kept_and_left_out(tmp_path):
    """A callback's own record that looks per-layer (no such layer) does not
    stop a ModelCheckpoint mid-fit; the report and plots leave it out."""
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    trainer = _small_trainer()

    class Log(nnc.callbacks.Callback):
        def on_step_end(self, trainer, logs):
            trainer.history.steps.setdefault("grad_norm.9", []).append("n/a")

    trainer.fit(X, np.zeros(16, np.int64), epochs=2, verbose=False,
                callbacks=[Log(), nnc.callbacks.ModelCheckpoint(str(tmp_path / "c.npz"))])
    again = _small_trainer()
    again.load_checkpoint(tmp_path / "c.npz")
    assert again.history.steps["grad_norm.9"] == ["n/a"] * trainer.step_count
    assert again.history.report().startswith("nnc diagnosis")


def test_a_checkpoint_of_a_history_set_by_hand_can_be_loaded(tmp_path):
    trainer = _small_trainer()
    history = nnc.History()
    history.steps.update({"grad_norm": [1.0, 2.0], "loss": [1.0, 1.0], "lr": [0.1, 0.1]})
    trainer.history = history  # no per-layer norms: filled with NaN when written
    trainer.save_checkpoint(tmp_path / "c.npz")
    _small_trainer().load_checkpoint(tmp_path / "c.npz")
    uneven = nnc.History()
    uneven.steps.update({"grad_norm": [1.0, 2.0], "grad_norm.0": [1.0]})
    trainer.history = uneven
    with pytest.raises(ValueError, match=r"steps\['grad_norm.0'\] has 1 entries"):
        trainer.save_checkpoint(tmp_path / "d.npz")


def test_a_model_file_keeps_its_seed_and_its_layers_share_its_generator(tmp_path):
    model = nnc.Sequential(nnc.Dense(3, 4), nnc.Dropout(0.5), nnc.Dense(4, 2), seed=1)
    model.seed = 2 ** 130 + 5  # as an older nnc could write
    model.save(tmp_path / "big.npz")
    loaded = nnc.load(tmp_path / "big.npz")
    assert loaded.seed == 2 ** 130 + 5 and loaded.layers[1].rng is loaded.rng
    nnc.Sequential(nnc.Dense(3, 2)).save(tmp_path / "none.npz")
    header_seed = nnc.persistence.read_header(tmp_path / "none.npz")["seed"]
    nnc.set_seed(7)
    try:
        assert nnc.load(tmp_path / "none.npz").seed == header_seed  # not today's default
    finally:
        nnc.set_seed(None)


def test_monitor_values_float_takes_are_numbers_text_and_bools_are_not():
    from decimal import Decimal

    from nnc.history import as_number as _number

    assert _number(Decimal("0.5")) == 0.5 and _number(np.array([0.25])) == 0.25
    assert _number(np.float32(2)) == 2.0 and _number(np.array(3)) == 3.0
    for value in ("0.5", True, np.bool_(False), None, 10 ** 400, np.ones(2), 1 + 2j,
                  np.ma.array(2.0, mask=True), np.ma.masked):
        assert _number(value) is None


def test_records_of_none_read_as_nan_and_numbers_of_any_type_are_numbers():
    history = nnc.History.from_dict({"steps": {"loss": [1.0, None, 10 ** 20]},
                                     "epochs": {"val_loss": [None, 0.5]}})
    assert np.isnan(history.steps["loss"][1]) and history.steps["loss"][2] == 1e20
    assert history.report().startswith("nnc diagnosis")
    kept = nnc.History.from_dict({"steps": {"loss": [1.0]}, "diagnostics": {"step": [1, 2]}})
    assert kept.diagnostics["step"] == [1, 2] and isinstance(kept.diagnostics["step"][0], int)
    for odd in ([1 + 2j], [np.datetime64("2020-01-01")]):
        with pytest.raises(ValueError, match="must be a number"):
            nnc.History.from_dict({"steps": {"loss": odd}})


def test_a_fresh_history_starts_the_best_over(tmp_path):
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, np.int64)
    checkpoint = nnc.callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_loss",
                                               save_best_only=True)
    first = _small_trainer()
    first.fit(X, y, epochs=2, verbose=False, validation_data=(X, y), callbacks=[checkpoint])
    checkpoint._best.best = -1.0  # better than anything: a carried-over best would keep it
    checkpoint._best.restore(_small_trainer().history)
    assert checkpoint._best.best == np.inf


def test_state_dict_leaves_a_history_set_by_hand_as_it_is():
    trainer = _small_trainer()
    trainer.history = nnc.History()
    state = trainer.state_dict()
    assert "grad_norm.0" in state["history"]["steps"]
    assert "grad_norm.0" not in trainer.history.steps
    _small_trainer().load_state_dict(state)


@pytest.mark.parametrize("between", ["nothing", "a reloaded state"])
def test_a_callbacks_own_best_survives_later_fits_and_a_resume(tmp_path, between):
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, np.int64)
    trainer = _small_trainer()
    scores = iter([0.9, 0.1])

    class Score(nnc.callbacks.Callback):  # a metric the history does not keep
        def on_epoch_end(self, trainer, epoch, logs):
            logs["f1"] = next(scores)

    checkpoint = nnc.callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="f1",
                                               mode="max", save_best_only=True)
    trainer.fit(X, y, verbose=False, callbacks=[Score(), checkpoint])
    if between != "nothing":
        trainer.load_state_dict(trainer.state_dict())  # a new History object
    trainer.fit(X, y, verbose=False, callbacks=[Score(), checkpoint])
    assert checkpoint._best.best == 0.9  # the worse second epoch replaced nothing


def test_a_callbacks_own_best_starts_over_with_a_fresh_history(tmp_path):
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.zeros(16, np.int64)
    scores = iter([0.9, 0.5, 0.6])

    class Score(nnc.callbacks.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            logs["f1"] = next(scores)

    checkpoint = nnc.callbacks.ModelCheckpoint(str(tmp_path / "best-{epoch}.npz"), monitor="f1",
                                               mode="max", save_best_only=True)
    _small_trainer().fit(X, y, verbose=False, callbacks=[Score(), checkpoint])
    _small_trainer().fit(X, y, epochs=2, verbose=False, callbacks=[Score(), checkpoint])
    assert checkpoint._best.best == 0.6  # a new run: its own best


def test_decimal_and_fraction_records_are_read_as_floats_and_saved(tmp_path):
    from decimal import Decimal
    from fractions import Fraction

    history = nnc.History.from_dict({"steps": {"loss": [Decimal("1.5"), Fraction(1, 2)]}})
    assert history.steps["loss"] == [1.5, 0.5]
    history.save(tmp_path / "run.json")
    assert nnc.History.load(tmp_path / "run.json").steps["loss"] == [1.5, 0.5]


@pytest.mark.parametrize("name", ["flat_params", "flat_grads"])
def test_the_flat_buffers_cannot_be_replaced(name):
    """Every layer's params/grads are views of them: a new array would
    leave training updating (or reading) nothing."""
    model = nnc.Sequential(nnc.Dense(4, 5), nnc.ReLU(), nnc.Dense(5, 3), seed=0)
    buffer = getattr(model, name)
    with pytest.raises(AttributeError, match=rf"model.{name} cannot be replaced.*\[\.\.\.\]"):
        setattr(model, name, np.zeros_like(buffer))
    assert getattr(model, name) is buffer
    getattr(model, name)[...] = 0.5  # writing into it is the way
    assert all(np.all(p == 0.5) for p in (model.params if name == "flat_params"
                                          else model.grads).values())


@pytest.mark.parametrize("index, attribute, value", [
    (0, "bias", False), (0, "in_features", 3), (3, "out_features", 9), (2, "num_features", 4)])
def test_a_built_layer_keeps_its_shape_settings(index, attribute, value):
    model = nnc.Sequential(nnc.Dense(4, 5), nnc.ReLU(), nnc.BatchNorm(5), nnc.Dense(5, 3), seed=0)
    layer = model.layers[index]
    before = getattr(layer, attribute)
    with pytest.raises(AttributeError, match=rf"{attribute} cannot change once the layer is in "
                                             rf"a model .*{attribute}={before}"):
        setattr(layer, attribute, value)
    assert getattr(layer, attribute) == before
    model.predict(np.zeros((2, 4), np.float32))


def test_an_unbuilt_layer_takes_new_shape_settings_checked():
    dense = nnc.Dense(3, 4)
    dense.bias, dense.in_features = False, 6
    assert nnc.Sequential(dense, seed=0).flat_params.size == 24
    with pytest.raises(ValueError, match="out_features"):
        nnc.Dense(3, 4).out_features = 0
    with pytest.raises(TypeError, match="bias must be True or False"):
        nnc.Dense(3, 4).bias = "no"


def test_backward_refuses_a_replaced_gradient_array():
    model = nnc.Sequential(nnc.Dense(4, 3), seed=0)
    model.forward(np.ones((2, 4), np.float32))
    model.layers[0].grads["W"] = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"grads\['W'\] was replaced"):
        model.backward(np.ones((2, 3), np.float32))


@pytest.mark.parametrize("value", ["x", 2.5, -5, True])
def test_step_count_is_checked_when_assigned(value):
    trainer = _small_trainer()
    with pytest.raises(ValueError, match=r"step_count must be an int in \[0, 2\*\*63 - 1\]"):
        trainer.step_count = value
    assert trainer.step_count == 0
    trainer.step_count = np.int64(7)  # an int of any kind is taken, as a Python int
    assert type(trainer.step_count) is int
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y = np.arange(8) % 2
    trainer.fit(X, y, epochs=1, verbose=False)
    assert trainer.step_count == 7 + len(trainer.history.steps["loss"])


@pytest.mark.parametrize("make, attribute, value, error, match", [
    (lambda: schedules.LinearDecay(0.1, 0.01, 10), "decay_steps", 0, ValueError, "decay_steps"),
    (lambda: schedules.LinearDecay(0.1, 0.01, 10), "lr0", "x", TypeError, "lr0"),
    (lambda: schedules.StepDecay(0.1, 5), "gamma", 2, ValueError, r"gamma must lie in \(0, 1\]"),
    (lambda: schedules.Warmup(schedules.Constant(0.1), 5), "warmup_steps", -3, ValueError,
     "warmup_steps"),
    (lambda: schedules.Warmup(schedules.Constant(0.1), 5), "after", 0.1, TypeError,
     "after must be a schedule"),
    (lambda: schedules.CosineDecay(0.1, 10), "lr_min", float("inf"), ValueError, "lr_min"),
    (lambda: schedules.Constant(0.1), "lr", -1, ValueError, "lr must lie in"),
])
def test_schedule_settings_are_checked_when_changed(make, attribute, value, error, match):
    schedule = make()
    rates = [schedule(t) for t in range(12)]
    with pytest.raises(error, match=match):
        setattr(schedule, attribute, value)
    assert [schedule(t) for t in range(12)] == rates  # the old value stays


@pytest.mark.parametrize("make_read_only, match", [
    (lambda m: setattr(m.flat_params.flags, "writeable", False), "model.flat_params was made read-only"),
    (lambda m: setattr(m.layers[0].params["W"].flags, "writeable", False),
     r"params\['W'\] or grads\['W'\] was made read-only; that does not freeze it"),
    (lambda m: setattr(m.layers[1].buffers["running_mean"].flags, "writeable", False),
     r"buffers\['running_mean'\] was made read-only"),
])
def test_read_only_model_arrays_are_refused_before_training(make_read_only, match):
    model = nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4), nnc.Dense(4, 2), seed=0)
    trainer = nnc.Trainer(model, batch_size=4)
    make_read_only(model)
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        trainer.fit(X, np.arange(8) % 2, epochs=1, verbose=False)
    assert trainer.step_count == 0
    # reading is fine: a served model may guard its weights this way
    model.predict(X), trainer.evaluate(X, np.arange(8) % 2), model.forward(X, training=False)


def test_diagnostics_follow_a_history_replaced_mid_fit():
    X = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 2), seed=0), batch_size=8,
                          diagnostics=True)

    class Restart(nnc.callbacks.Callback):
        def on_epoch_begin(self, trainer, epoch):
            if epoch == 1:
                trainer.history = nnc.History()

    trainer.fit(X, np.arange(32) % 2, epochs=2, callbacks=[Restart()], verbose=False)
    assert trainer.history.diagnostics["step"] == [5, 6, 7, 8]
    assert len(trainer.history.diagnostics["grad_norm.0"]) == 4


@pytest.mark.parametrize("owner, attribute", [
    (lambda: nnc.Dropout(0.5), "frozen"),
    (lambda: _small_trainer(), "stop_training"),
    (lambda: nnc.Sequential(nnc.Dense(2, 2), seed=0), "training"),
])
def test_switches_take_only_booleans(owner, attribute):
    obj = owner()
    before = getattr(obj, attribute)
    for value in ("no", None, 2):
        with pytest.raises(TypeError, match=attribute):
            setattr(obj, attribute, value)
    assert getattr(obj, attribute) is before
    setattr(obj, attribute, np.True_)
    assert getattr(obj, attribute) is True


def test_gradcheck_leaves_the_dropout_generator_where_it_was():
    X, y = np.random.default_rng(0).normal(size=(4, 3)), np.arange(4) % 2

    def model():
        return nnc.Sequential(nnc.Dense(3, 4), nnc.Dropout(0.5), nnc.Dense(4, 2),
                              dtype="float64", seed=0)

    checked, fresh = model(), model()
    assert max(nnc.gradcheck(checked, "softmax_cross_entropy", X, y).values()) < 1e-6
    np.testing.assert_array_equal(checked.forward(X, training=True),
                                  fresh.forward(X, training=True))


def test_string_labels_are_refused_with_the_encoding():
    trainer = _small_trainer()
    X = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match=re.escape(
            "y must hold integer class labels, got dtype str (strings); encode the classes as "
            "0, 1, ... with the training labels' classes: classes = np.unique(y_train), then "
            "np.searchsorted(classes, labels)")):
        trainer.fit(X, np.array(["cat", "dog", "cat", "dog"]), verbose=False)


def test_a_read_only_model_evaluates_in_training_mode_when_nothing_is_written():
    model = nnc.Sequential(nnc.Dense(3, 4), nnc.ReLU(), nnc.Dense(4, 2), seed=0)
    model.flat_params.flags.writeable = False
    model.forward(np.ones((2, 3), np.float32))  # training mode, but no running statistics


def test_a_state_is_not_half_loaded_into_a_model_with_a_read_only_buffer(tmp_path):
    model = nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4), nnc.Dense(4, 2),
                           seed=0)
    trainer = nnc.Trainer(model, batch_size=4)
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    trainer.fit(X, np.arange(8) % 2, epochs=1, verbose=False)
    state = trainer.state_dict()
    trainer.save_checkpoint(tmp_path / "c.npz")
    fresh = nnc.Trainer(nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4),
                                       nnc.Dense(4, 2), seed=1), batch_size=4)
    before = fresh.model.flat_params.copy()
    fresh.model.layers[1].buffers["running_mean"].flags.writeable = False
    for load in (lambda: fresh.load_state_dict(state),
                 lambda: fresh.load_checkpoint(tmp_path / "c.npz")):
        with pytest.raises(ValueError, match=r"buffers\['running_mean'\] was made read-only"):
            load()
        np.testing.assert_array_equal(fresh.model.flat_params, before)
        assert fresh.step_count == 0


# --- side APIs: a fourth bad-input round (plots, playground, callbacks, benchmark) ----------

def test_plot_paths_takes_any_label_and_figure_names_get_their_png(tmp_path):
    pytest.importorskip("matplotlib")
    from nnc import playground, plotting

    paths = {0.01: playground.run(nnc.SGD(0.01), "ravine", steps=5),
             ("adam", 2): playground.run(nnc.Adam(0.1), "ravine", steps=5)}
    fig = playground.plot_paths(paths, "ravine", path=tmp_path / "paths")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "0.01" in labels and "('adam', 2)" in labels
    assert (tmp_path / "paths.png").exists()  # what matplotlib writes for a bare name
    assert plotting.save(fig, str(tmp_path / "again")) == str(tmp_path / "again.png")
    assert (tmp_path / "again.png").exists()


@pytest.mark.parametrize("args, error, match", [
    ((True, 1), TypeError, "nrows must be an int"),
    ((0, 1), ValueError, "nrows must be >= 1"),
    ((1, 10 ** 6), ValueError, "ncols must be <= 100"),
    ((1, 1, "ab"), TypeError, "figsize must be a pair"),
    ((1, 1, (0, 3)), ValueError, r"figsize must be a \(width, height\)"),
])
def test_new_figure_names_its_bad_arguments(args, error, match):
    pytest.importorskip("matplotlib")
    from nnc import plotting

    with pytest.raises(error, match=match):
        plotting.new_figure(*args)


def test_plots_and_reports_name_what_they_cannot_read():
    pytest.importorskip("matplotlib")
    from nnc import plotting

    with pytest.raises(TypeError, match="history must be an nnc History, got NoneType"):
        plotting.plot_history(None)
    history = nnc.History.from_dict({"steps": {"loss": [1.0, 0.5], "lr": [0.1, 0.1],
                                               "grad_norm": [1.0, 1.0]},
                                     "diagnostics": {"step": [1], "act_std.0": [1.0, 2.0, 3.0]}})
    with pytest.raises(ValueError, match=r"diagnostics\['act_std.0'\] has 3 entries but "
                                         r"diagnostics\['step'\] 1"):
        history.plot()
    history = nnc.History()
    history.steps.update(loss=[1.0], lr=[0.1], grad_norm=[1.0])
    history.record_epoch(loss="x")  # (record_epoch takes what the Trainer gives it)
    with pytest.raises(ValueError, match="cannot be plotted as it is: .*loss"):
        history.plot()
    with pytest.raises(ValueError, match="cannot be diagnosed as it is: .*loss"):
        history.report()
    for broken in ("plot", "report", "save"):
        history = nnc.History()
        history.steps = []
        with pytest.raises(TypeError, match="history.steps must be a dict, got list"):
            getattr(history, broken)(*(["/dev/null"] if broken == "save" else []))
    with pytest.raises(ValueError, match="steps\\['lr'\\] must be a list"):
        nnc.History.from_dict({"steps": {"loss": [1.0], "lr": np.array(0.1)}})
    with pytest.raises(ValueError, match="steps\\['loss'\\] has masked entries"):
        nnc.History.from_dict({"steps": {"loss": np.ma.array([1.0, 2.0], mask=[0, 1])}})


def test_the_diagnose_command_checks_the_plot_before_the_report(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from nnc.cli import main as cli_main

    bad = tmp_path / "run.json"
    bad.write_text('{"steps": {"loss": [1.0, 0.5], "lr": [0.1, 0.1], "grad_norm": [1, 1]}, '
                   '"diagnostics": {"step": [1], "act_std.0": [1, 2, 3]}}')
    assert cli_main(["diagnose", str(bad), "--plot", str(tmp_path / "p")]) == 2
    captured = capsys.readouterr()
    assert "act_std.0" in captured.err and "nnc diagnosis" not in captured.out


def test_a_surface_checks_its_parts_and_what_its_functions_return():
    from nnc import playground

    def value(x, y):
        return x * x + y * y

    def gradient(x, y):
        return 2 * x, 2 * y

    parts = dict(name="bowl", value=value, gradient=gradient, minima=[(0, 0)], start=(1, 1),
                 xlim=(-2, 2), ylim=(-2, 2))
    for change, error, match in [
        (dict(minima=[]), ValueError, "minima must name at least one point"),
        (dict(minima=[(0, 0, 0)]), ValueError, r"minima\[\*\] must be two numbers"),
        (dict(start=(1, 1, 1)), ValueError, "start must be two numbers"),
        (dict(xlim=(1,)), ValueError, "xlim must be two numbers"),
        (dict(ylim=(1, 1)), ValueError, "ylim must be two different numbers"),
        (dict(value=3), TypeError, "value must be a function"),
    ]:
        with pytest.raises(error, match=match):
            playground.Surface(**{**parts, **change})
    three = playground.Surface(**{**parts, "gradient": lambda x, y: (x, y, 0)})
    with pytest.raises(TypeError, match="gradient of 'bowl' must return two numbers"):
        playground.run(nnc.SGD(0.1), three, steps=2)
    scalar = playground.Surface(**{**parts, "value": lambda x, y: 1.0})
    with pytest.raises(ValueError, match="must work on arrays: for 3 points it returned shape"):
        playground.losses(scalar, np.zeros((3, 2)))
    with pytest.raises(TypeError, match="path must be an array"):
        playground.losses("ravine", "x")


def test_playground_run_checks_the_schedule_and_the_seed():
    from nnc import playground

    with pytest.raises(TypeError, match=r"schedule\(0\) must be a real number, got None"):
        playground.run(nnc.SGD(0.1), "ravine", steps=2, schedule=lambda t: None)
    with pytest.raises(ValueError, match=r"schedule\(0\) must lie in \[0, inf\)"):
        playground.run(nnc.SGD(0.1), "ravine", steps=2, schedule=lambda t: -1.0)
    with pytest.raises(TypeError, match="seed"):
        playground.run(nnc.SGD(0.1), "ravine", steps=2, seed="x")


def test_model_checkpoint_templates_that_cannot_make_a_file_name_are_refused_before_training(
        tmp_path):
    X, y = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), np.arange(20) % 3
    for template, match in (("ck-{epoch:99999999999}.npz", "cannot be filled in"),
                            ("ck-{epoch:0300d}.npz", "longer than 255 bytes"),
                            ("c" * 240 + "{loss}.npz", "longer than 255 bytes"),
                            ("c" * 247 + "{epoch}.npz", "longer than 255 bytes")):
        trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=10)
        checkpoint = nnc.callbacks.ModelCheckpoint(str(tmp_path / template))
        with pytest.raises(ValueError, match=match):
            trainer.fit(X, y, epochs=1, verbose=False, callbacks=[checkpoint])
        assert trainer.step_count == 0


def test_benchmark_arguments_are_checked_before_any_work():
    from nnc import benchmark

    for sizes in ((100, 10), (784, 8, 3)):
        with pytest.raises(ValueError, match=r"sizes: .* at 784 and the classes .* at 10, got"):
            benchmark.run_sweep(n_samples=64, sizes=sizes)
    with pytest.raises(ValueError, match="weights, more than"):
        benchmark.run_sweep(n_samples=64, sizes=(784, 10 ** 12, 10))
    with pytest.raises(TypeError, match="progress"):
        benchmark.run_sweep(n_samples=64, sizes=(784, 10), progress="yes")
    with pytest.raises(TypeError, match="f must be a function to time"):
        benchmark.median_seconds(5)


def test_an_initialiser_returning_masked_or_ragged_values_is_refused():
    masked = np.ma.array(np.ones((2, 2)), mask=np.eye(2, dtype=bool))
    with pytest.raises(ValueError, match="returned an array with masked entries"):
        nnc.Sequential(nnc.Dense(2, 2, init=lambda shape, rng: masked))
    with pytest.raises(TypeError, match="returned list that is not an array of shape"):
        nnc.Sequential(nnc.Dense(2, 2, init=lambda shape, rng: [[1, 2], [3]]))
    model = nnc.Sequential(nnc.Dense(2, 2, init=lambda shape, rng: np.ma.array(np.ones(shape))))
    assert (model.layers[0].params["W"] == 1).all()  # nothing masked: its values


def test_a_ragged_record_a_callback_logs_is_kept_through_report_save_and_checkpoint(tmp_path):
    class Misclassified(nnc.callbacks.Callback):  # one list of sample indices per epoch
        def on_epoch_end(self, trainer, epoch, logs):
            trainer.history.epochs.setdefault("wrong", []).append(list(range(epoch)))

    X, y = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), np.arange(20) % 3
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=10)
    history = trainer.fit(X, y, epochs=3, verbose=False, callbacks=[Misclassified()])
    assert history.epochs["wrong"] == [[], [0], [0, 1]]
    assert history.report().startswith("nnc diagnosis")
    history.save(tmp_path / "run.json")
    assert nnc.History.load(tmp_path / "run.json").epochs["wrong"] == [[], [0], [0, 1]]
    trainer.save_checkpoint(tmp_path / "checkpoint.npz")
    again = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=10)
    again.load_checkpoint(tmp_path / "checkpoint.npz")
    assert again.history.epochs["wrong"] == [[], [0], [0, 1]]


@pytest.mark.parametrize("make, name, meant", [
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(2, 2), seed=0)), "clipnorm", "clip_norm"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(2, 2), seed=0)), "lr", "optimizer.lr"),
    (lambda: nnc.Adam(), "learning_rate", "lr"),
    (lambda: nnc.Adam(), "beta_1", "beta1"),
    (lambda: nnc.Adam(), "betas", "beta1 and beta2"),
    (lambda: nnc.RMSprop(), "alpha", "rho"),
    (lambda: nnc.SGD(0.1), "weight_decay", "Trainer(l2=...)"),
    (lambda: nnc.SGD(0.1), "clipnorm", "Trainer(clip_norm=...)"),
])
def test_another_librarys_name_for_a_setting_is_refused_with_nnc_s(make, name, meant):
    """Keras' trainer.clipnorm or optimizer.learning_rate set an attribute nnc
    never reads: silently nothing would change."""
    owner = make()
    with pytest.raises(AttributeError, match=f"no setting '{name}'; set {re.escape(meant)}"):
        setattr(owner, name, 0.5)
    assert name not in owner.__dict__


def test_other_new_attributes_and_subclasses_are_left_alone():
    class Adam3(nnc.Adam):  # a subclass may give the names a meaning of its own
        def __init__(self):
            super().__init__()
            self.beta3, self.momentum2, self.epsilon, self.learning_rate = 0.9, 0.5, 1e-8, 1e-3

    assert Adam3().beta3 == 0.9
    sgd = nnc.SGD(0.1)
    sgd.epsilon = 1e-8  # (SGD has no eps to point to: an attribute like any other)
    sgd.my_note = "notes"

    class Losses(nnc.callbacks.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if not hasattr(trainer, "losses"):
                trainer.losses = []
            trainer.losses.append(logs["loss"])

    X, y = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), np.arange(20) % 3
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(4, 3), seed=0), batch_size=10)
    trainer.fit(X, y, epochs=2, verbose=False, callbacks=[Losses()])
    assert len(trainer.losses) == 2


def test_over_run_names_its_arguments():
    from nnc.schedules import over_run

    for args, error, match in (((0.1, "10"), TypeError, "total_steps must be an int"),
                               ((0.1, -5), ValueError, "total_steps must be >= 0"),
                               (("x", 10), TypeError, "lr0 must be a real number")):
        with pytest.raises(error, match=match):
            over_run("linear", *args)
    assert over_run("linear", 0.1, 0)(0) == 0.1  # (a run of no steps: one step's schedule)
