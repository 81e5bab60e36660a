"""Bad input at every public entry point: a ValueError or TypeError whose
message names the argument, raised at the call that made the mistake, and
no change to the model when a call is refused."""
import numpy as np
import pytest

import nnc
from nnc.backends import get_backend

N, F_IN, F_OUT = 10, 4, 3


def good_X(dtype=np.float32):
    return np.random.default_rng(0).standard_normal((N, F_IN)).astype(dtype)


def good_y():
    return np.arange(N) % F_OUT


def make_model(backend="cython", dtype="float32"):
    return nnc.Sequential(nnc.Dense(F_IN, 5), nnc.ReLU(), nnc.Dense(5, F_OUT),
                          dtype=dtype, backend=backend, seed=0)


def make_trainer(loss="softmax_cross_entropy", batch_size=4, backend="cython"):
    return nnc.Trainer(make_model(backend), loss=loss, optimizer=nnc.SGD(lr=0.1),
                       batch_size=batch_size)


def with_value(X, index, value):
    X = X.copy()
    X[index] = value
    return X


# Bad feature matrices, shared by every entry point that takes X:
# (id, array, exception, what the message must say besides the name)
BAD_X = [
    ("int", good_X().astype(np.int64), TypeError, "dtype int64"),
    ("bool", good_X() > 0, TypeError, "dtype bool"),
    ("object", good_X().astype(object), TypeError, "dtype object"),
    ("float16", good_X().astype(np.float16), TypeError, "dtype float16"),
    ("complex", good_X().astype(np.complex128), TypeError, "dtype complex128"),
    ("nan", with_value(good_X(), (3, 1), np.nan), ValueError, "NaN"),
    ("inf", with_value(good_X(), (0, 0), np.inf), ValueError, "Inf"),
    ("-inf", with_value(good_X(), (9, 3), -np.inf), ValueError, "Inf"),
    ("overflows-float32", with_value(good_X(np.float64), (2, 2), 1e39), ValueError, "float32 range"),
    ("empty", np.zeros((0, F_IN), np.float32), ValueError, "empty"),
    ("0-d", np.float32(1.0), ValueError, "2-D"),
    ("1-d", np.zeros(F_IN, np.float32), ValueError, "2-D"),
    ("3-d", np.zeros((N, F_IN, 1), np.float32), ValueError, "2-D"),
    ("wrong-features", np.zeros((N, F_IN + 1), np.float32), ValueError, "features"),
    ("ragged-list", [[1.0, 2.0], [3.0]], TypeError, ""),
    ("none", None, TypeError, ""),
]


def bad_x_params(name="X"):
    return [pytest.param(x, exc, f"{name}.*{msg}" if msg else name, id=case)
            for case, x, exc, msg in BAD_X]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("X,exc,match", bad_x_params())
@pytest.mark.parametrize("entry", ["fit", "evaluate", "predict", "model.forward",
                                   "model.predict", "gradcheck"])
def test_bad_X_everywhere(entry, X, exc, match):
    if entry == "gradcheck" and isinstance(X, np.ndarray) and X.dtype == np.float64:
        X = with_value(X, (2, 2), np.inf)  # 1e39 is a fine float64: gradcheck's model is float64
        match = "X.*Inf"
    trainer = make_trainer()
    model = trainer.model
    y = good_y()
    calls = {
        "fit": lambda: trainer.fit(X, y, epochs=1, verbose=False),
        "evaluate": lambda: trainer.evaluate(X, y),
        "predict": lambda: trainer.predict(X),
        "model.forward": lambda: model.forward(X),
        "model.predict": lambda: model.predict(X),
        "gradcheck": lambda: nnc.gradcheck(make_model(dtype="float64"), "softmax_cross_entropy",
                                           X, y),
    }
    with pytest.raises(exc, match=match):
        calls[entry]()


BAD_LABELS = [
    ("too-large", np.r_[good_y()[:-1], F_OUT], ValueError, "y.*label 3"),
    ("negative", np.r_[-1, good_y()[1:]], ValueError, "y.*label -1"),
    ("float", good_y().astype(np.float64), TypeError, "y.*integer"),
    ("bool", good_y() > 0, TypeError, "y.*integer"),
    ("object", good_y().astype(object), TypeError, "y"),
    ("too-short", good_y()[:-1], ValueError, "y has 9 labels"),
    ("too-long", np.r_[good_y(), 0], ValueError, "y has 11 labels"),
    ("2-d", np.zeros((N, 2), np.int64), ValueError, "y must be 1-D"),
    ("0-d", np.int64(1), ValueError, "y must be 1-D"),
    ("none", None, TypeError, "y"),
]


@pytest.mark.parametrize("y,exc,match", [pytest.param(y, e, m, id=c) for c, y, e, m in BAD_LABELS])
@pytest.mark.parametrize("entry", ["fit", "evaluate", "loss.forward", "gradcheck"])
def test_bad_labels_everywhere(entry, y, exc, match):
    trainer = make_trainer()
    X = good_X()
    calls = {
        "fit": lambda: trainer.fit(X, y, epochs=1, verbose=False),
        "evaluate": lambda: trainer.evaluate(X, y),
        "loss.forward": lambda: nnc.SoftmaxCrossEntropy().forward(np.zeros((N, F_OUT)), y),
        "gradcheck": lambda: nnc.gradcheck(make_model(dtype="float64"), "softmax_cross_entropy",
                                           X, y),
    }
    with pytest.raises(exc, match=match):
        calls[entry]()


def test_column_of_labels_is_accepted():
    trainer = make_trainer()
    trainer.fit(good_X(), good_y().reshape(-1, 1), epochs=1, verbose=False)


BAD_TARGETS = [  # regression / BCE targets for an output of shape (N, F_OUT)
    ("mse", "wrong-shape", np.zeros((N, F_OUT + 1)), ValueError, "y has shape"),
    ("mse", "too-few-rows", np.zeros((N - 1, F_OUT)), ValueError, "y has shape"),
    ("mse", "1-d-for-3-outputs", np.zeros(N), ValueError, "y has shape"),
    ("mse", "nan", with_value(np.zeros((N, F_OUT)), (1, 1), np.nan), ValueError, "y.*NaN"),
    ("mse", "inf", with_value(np.zeros((N, F_OUT)), (1, 1), np.inf), ValueError, "y.*Inf"),
    ("mse", "complex", np.zeros((N, F_OUT), complex), TypeError, "y.*real"),
    ("mse", "bool", np.zeros((N, F_OUT), bool), TypeError, "y.*real"),
    ("mse", "float16", np.zeros((N, F_OUT), np.float16), TypeError, "y.*real"),
    ("mse", "object", np.zeros((N, F_OUT), object), TypeError, "y.*real"),
    ("bce_with_logits", "above-1", np.full((N, F_OUT), 1.5), ValueError, r"y must lie in \[0"),
    ("bce_with_logits", "negative", np.full((N, F_OUT), -0.5), ValueError, r"y must lie in \[0"),
]


@pytest.mark.parametrize("loss,y,exc,match",
                         [pytest.param(l, y, e, m, id=f"{l}-{c}") for l, c, y, e, m in BAD_TARGETS])
@pytest.mark.parametrize("entry", ["fit", "evaluate", "loss.forward"])
def test_bad_targets(entry, loss, y, exc, match):
    trainer = make_trainer(loss=loss)
    X = good_X()
    calls = {
        "fit": lambda: trainer.fit(X, y, epochs=1, verbose=False),
        "evaluate": lambda: trainer.evaluate(X, y),
        "loss.forward": lambda: nnc.losses.get_loss(loss).forward(np.zeros((N, F_OUT)), y),
    }
    with pytest.raises(exc, match=match):
        calls[entry]()


# --- constructors and simple arguments ---------------------------------------

def _reused_layer():
    dense = nnc.Dense(2, 2)
    nnc.Sequential(dense)
    return nnc.Sequential(dense)


def _twice():
    dense = nnc.Dense(2, 2)
    return nnc.Sequential(dense, dense)


class NotABackend:
    pass


BAD_CALLS = [
    # Sequential
    ("seq-no-layers", lambda: nnc.Sequential(), ValueError, "layer"),
    ("seq-not-a-layer", lambda: nnc.Sequential(nnc.Dense(2, 2), "relu"), TypeError, "layer 1"),
    ("seq-layer-class", lambda: nnc.Sequential(nnc.Dense), TypeError, "layer 0"),
    ("seq-same-layer-twice", _twice, ValueError, "layer"),
    ("seq-layer-reused", _reused_layer, ValueError, "layer 0"),
    ("seq-chain-mismatch", lambda: nnc.Sequential(nnc.Dense(4, 5), nnc.Dense(6, 2)),
     ValueError, "6 input features.*gives 5"),
    ("seq-no-dense", lambda: nnc.Sequential(nnc.ReLU()), ValueError, "in_features"),
    ("seq-dtype-float16", lambda: nnc.Sequential(nnc.Dense(2, 2), dtype="float16"),
     TypeError, "dtype"),
    ("seq-dtype-int", lambda: nnc.Sequential(nnc.Dense(2, 2), dtype=np.int32), TypeError, "dtype"),
    ("seq-dtype-complex", lambda: nnc.Sequential(nnc.Dense(2, 2), dtype=complex),
     TypeError, "dtype"),
    ("seq-dtype-garbage", lambda: nnc.Sequential(nnc.Dense(2, 2), dtype="banana"),
     TypeError, "dtype"),
    ("seq-backend-unknown", lambda: nnc.Sequential(nnc.Dense(2, 2), backend="torch"),
     ValueError, "backend"),
    ("seq-backend-object", lambda: nnc.Sequential(nnc.Dense(2, 2), backend=NotABackend()),
     TypeError, "backend"),
    ("seq-seed-negative", lambda: nnc.Sequential(nnc.Dense(2, 2), seed=-1), ValueError, "seed"),
    ("seq-seed-float", lambda: nnc.Sequential(nnc.Dense(2, 2), seed=1.5), TypeError, "seed"),
    ("seq-seed-str", lambda: nnc.Sequential(nnc.Dense(2, 2), seed="0"), TypeError, "seed"),
    # Dense and activations
    ("dense-in-0", lambda: nnc.Dense(0, 3), ValueError, "in_features"),
    ("dense-out-0", lambda: nnc.Dense(3, 0), ValueError, "out_features"),
    ("dense-in-negative", lambda: nnc.Dense(-2, 3), ValueError, "in_features"),
    ("dense-in-float", lambda: nnc.Dense(2.0, 3), TypeError, "in_features"),
    ("dense-out-bool", lambda: nnc.Dense(2, True), TypeError, "out_features"),
    ("dense-out-none", lambda: nnc.Dense(2, None), TypeError, "out_features"),
    ("dense-init-unknown", lambda: nnc.Dense(2, 3, init="kaiming_magic"), ValueError, "init"),
    ("dense-init-number", lambda: nnc.Dense(2, 3, init=0.1), ValueError, "init"),
    ("dense-init-wrong-shape",
     lambda: nnc.Sequential(nnc.Dense(2, 3, init=lambda shape, rng: np.zeros((3, 2)))),
     ValueError, "init"),
    ("dense-bias-str", lambda: nnc.Dense(2, 3, bias="no"), TypeError, "bias"),
    ("leaky-alpha-str", lambda: nnc.LeakyReLU("0.1"), TypeError, "alpha"),
    ("leaky-alpha-nan", lambda: nnc.LeakyReLU(float("nan")), ValueError, "alpha"),
    ("init-normal-negative-std", lambda: nnc.init.normal(-1.0), ValueError, "std"),
    # optimizer
    ("sgd-lr-negative", lambda: nnc.SGD(lr=-0.1), ValueError, "lr"),
    ("sgd-lr-zero", lambda: nnc.SGD(lr=0.0), ValueError, "lr"),
    ("sgd-lr-nan", lambda: nnc.SGD(lr=float("nan")), ValueError, "lr"),
    ("sgd-lr-inf", lambda: nnc.SGD(lr=float("inf")), ValueError, "lr"),
    ("sgd-lr-str", lambda: nnc.SGD(lr="0.1"), TypeError, "lr"),
    ("sgd-lr-bool", lambda: nnc.SGD(lr=True), TypeError, "lr"),
    ("sgd-lr-none", lambda: nnc.SGD(lr=None), TypeError, "lr"),
    # Trainer construction
    ("trainer-model", lambda: nnc.Trainer("model"), TypeError, "model"),
    ("trainer-loss-unknown", lambda: nnc.Trainer(make_model(), loss="hinge"), ValueError, "loss"),
    ("trainer-loss-number", lambda: nnc.Trainer(make_model(), loss=3), ValueError, "loss"),
    ("trainer-optimizer", lambda: nnc.Trainer(make_model(), optimizer="sgd"),
     TypeError, "optimizer"),
    ("trainer-batch-0", lambda: nnc.Trainer(make_model(), batch_size=0), ValueError, "batch_size"),
    ("trainer-batch-negative", lambda: nnc.Trainer(make_model(), batch_size=-3),
     ValueError, "batch_size"),
    ("trainer-batch-float", lambda: nnc.Trainer(make_model(), batch_size=4.0),
     TypeError, "batch_size"),
    ("trainer-seed-negative", lambda: nnc.Trainer(make_model(), seed=-1), ValueError, "seed"),
    # Trainer.fit arguments other than X, y
    ("fit-epochs-0", lambda: make_trainer().fit(good_X(), good_y(), epochs=0, verbose=False),
     ValueError, "epochs"),
    ("fit-epochs-negative", lambda: make_trainer().fit(good_X(), good_y(), epochs=-1,
                                                       verbose=False), ValueError, "epochs"),
    ("fit-epochs-float", lambda: make_trainer().fit(good_X(), good_y(), epochs=2.0,
                                                    verbose=False), TypeError, "epochs"),
    ("fit-epochs-none", lambda: make_trainer().fit(good_X(), good_y(), epochs=None,
                                                   verbose=False), TypeError, "epochs"),
    ("fit-batch-larger-than-data",
     lambda: make_trainer(batch_size=N + 1).fit(good_X(), good_y(), verbose=False),
     ValueError, "batch_size"),
    ("fit-validation-not-a-pair",
     lambda: make_trainer().fit(good_X(), good_y(), validation_data=(good_X(),), verbose=False),
     TypeError, "validation_data"),
    ("fit-validation-array",
     lambda: make_trainer().fit(good_X(), good_y(), validation_data=good_X(), verbose=False),
     TypeError, "validation_data"),
    ("fit-validation-X-features",
     lambda: make_trainer().fit(good_X(), good_y(), verbose=False,
                                validation_data=(np.zeros((N, F_IN + 1)), good_y())),
     ValueError, "X_val"),
    ("fit-validation-X-nan",
     lambda: make_trainer().fit(good_X(), good_y(), verbose=False,
                                validation_data=(with_value(good_X(), (0, 0), np.nan), good_y())),
     ValueError, "X_val"),
    ("fit-validation-y-range",
     lambda: make_trainer().fit(good_X(), good_y(), verbose=False,
                                validation_data=(good_X(), good_y() + 1)),
     ValueError, "y_val"),
    ("fit-validation-y-length",
     lambda: make_trainer().fit(good_X(), good_y(), verbose=False,
                                validation_data=(good_X(), good_y()[:5])),
     ValueError, "y_val"),
    # evaluate / predict arguments
    ("evaluate-batch-0", lambda: make_trainer().evaluate(good_X(), good_y(), batch_size=0),
     ValueError, "batch_size"),
    ("evaluate-batch-float", lambda: make_trainer().evaluate(good_X(), good_y(), batch_size=2.5),
     TypeError, "batch_size"),
    ("trainer-predict-batch-negative", lambda: make_trainer().predict(good_X(), batch_size=-1),
     ValueError, "batch_size"),
    ("trainer-predict-batch-0", lambda: make_trainer().predict(good_X(), batch_size=0),
     ValueError, "batch_size"),
    ("model-predict-batch-0", lambda: make_model().predict(good_X(), batch_size=0),
     ValueError, "batch_size"),
    ("model-predict-batch-float", lambda: make_model().predict(good_X(), batch_size=1.0),
     TypeError, "batch_size"),
    # loss objects
    ("loss-backend", lambda: nnc.MeanSquaredError(backend="torch"), ValueError, "backend"),
    ("loss-output-int", lambda: nnc.MeanSquaredError().forward(np.zeros((2, 2), int),
                                                               np.zeros((2, 2))),
     TypeError, "output"),
    ("loss-output-1d", lambda: nnc.MeanSquaredError().forward(np.zeros(2), np.zeros(2)),
     ValueError, "output"),
    ("loss-output-nan", lambda: nnc.MeanSquaredError().forward(np.full((2, 2), np.nan),
                                                               np.zeros((2, 2))),
     ValueError, "output"),
    ("loss-output-empty", lambda: nnc.SoftmaxCrossEntropy().forward(np.zeros((0, 3)),
                                                                    np.zeros(0, int)),
     ValueError, "output"),
    # gradcheck arguments
    ("gradcheck-float32", lambda: nnc.gradcheck(make_model(), "softmax_cross_entropy",
                                                good_X(), good_y()), TypeError, "float64"),
    ("gradcheck-eps-0", lambda: nnc.gradcheck(make_model(dtype="float64"), "mse", good_X(),
                                              np.zeros((N, F_OUT)), eps=0.0), ValueError, "eps"),
    ("gradcheck-eps-negative", lambda: nnc.gradcheck(make_model(dtype="float64"), "mse",
                                                     good_X(), np.zeros((N, F_OUT)), eps=-1e-6),
     ValueError, "eps"),
    ("gradcheck-loss", lambda: nnc.gradcheck(make_model(dtype="float64"), "hinge", good_X(),
                                             good_y()), ValueError, "loss"),
    # backends
    ("get-backend-unknown", lambda: get_backend("fortran"), ValueError, "backend"),
    ("get-backend-object", lambda: get_backend(NotABackend()), TypeError, "backend"),
    # threads
    ("threads-0", lambda: nnc.set_num_threads(0), ValueError, "n must"),
    ("threads-negative", lambda: nnc.set_num_threads(-2), ValueError, "n must"),
    ("threads-float", lambda: nnc.set_num_threads(2.0), (ValueError, TypeError), "n must"),
    ("threads-str", lambda: nnc.set_num_threads("2"), (ValueError, TypeError), "n must"),
    ("threads-bool", lambda: nnc.set_num_threads(True), (ValueError, TypeError), "n must"),
    ("threads-huge", lambda: nnc.set_num_threads(2 ** 40), (ValueError, TypeError), "n"),
    # datasets
    ("split-length", lambda: nnc.datasets.train_test_split(np.zeros((5, 2)), np.zeros(4)),
     ValueError, "X has 5 samples but y has 4"),
    ("split-fraction-0", lambda: nnc.datasets.train_test_split(np.zeros((5, 2)), np.zeros(5), 0.0),
     ValueError, "test_fraction"),
    ("split-fraction-1", lambda: nnc.datasets.train_test_split(np.zeros((5, 2)), np.zeros(5), 1.0),
     ValueError, "test_fraction"),
    ("mnist-n-0", lambda: nnc.datasets.make_mnist_like(n=0), ValueError, "n must"),
    ("mnist-classes-1", lambda: nnc.datasets.make_mnist_like(n=10, n_classes=1),
     ValueError, "n_classes"),
]


@pytest.mark.parametrize("call,exc,match", [pytest.param(f, e, m, id=c) for c, f, e, m in BAD_CALLS])
def test_bad_arguments(call, exc, match, restore_threads):
    with pytest.raises(exc, match=match):
        call()


# --- model.backward ----------------------------------------------------------

@pytest.mark.parametrize("dY,exc,match", [
    pytest.param(np.zeros((N - 1, F_OUT)), ValueError, "dY has 9 rows", id="rows"),
    pytest.param(np.zeros((N, F_OUT + 1)), ValueError, "dY has 4 features", id="features"),
    pytest.param(np.zeros((N, F_OUT), int), TypeError, "dY.*dtype", id="int"),
    pytest.param(np.zeros((N, F_OUT), complex), TypeError, "dY.*dtype", id="complex"),
    pytest.param(with_value(np.zeros((N, F_OUT)), (0, 0), np.nan), ValueError, "dY.*NaN", id="nan"),
    pytest.param(np.zeros(F_OUT), ValueError, "dY must be 2-D", id="1-d"),
    pytest.param(np.zeros((N, F_OUT, 1)), ValueError, "dY must be 2-D", id="3-d"),
])
def test_bad_backward(backend_name, dY, exc, match):
    model = make_model(backend_name)
    model.forward(good_X())
    grads_before = model.flat_grads.copy()
    with pytest.raises(exc, match=match):
        model.backward(dY)
    np.testing.assert_array_equal(model.flat_grads, grads_before)


# --- refused calls leave the model alone --------------------------------------

REFUSED_FITS = {
    "X-nan": lambda t: t.fit(with_value(good_X(), (5, 1), np.nan), good_y(), verbose=False),
    "y-range": lambda t: t.fit(good_X(), np.r_[good_y()[:-1], 7], verbose=False),
    "y-length": lambda t: t.fit(good_X(), good_y()[:-2], verbose=False),
    "epochs-0": lambda t: t.fit(good_X(), good_y(), epochs=0, verbose=False),
    "bad-validation": lambda t: t.fit(good_X(), good_y(), verbose=False,
                                      validation_data=(good_X(), good_y() - 1)),
    "X-int": lambda t: t.fit(good_X().astype(int), good_y(), verbose=False),
}


@pytest.mark.parametrize("case", sorted(REFUSED_FITS))
def test_rejected_fit_changes_nothing(backend_name, case):
    trainer = make_trainer(backend=backend_name)
    trainer.fit(good_X(), good_y(), epochs=1, verbose=False)  # some state to keep
    params = trainer.model.flat_params.copy()
    history = trainer.history.to_dict()
    steps, t = trainer.step_count, trainer.optimizer.t
    rng_state = trainer.rng.bit_generator.state
    with pytest.raises((ValueError, TypeError)):
        REFUSED_FITS[case](trainer)
    np.testing.assert_array_equal(trainer.model.flat_params, params)
    assert trainer.history.to_dict() == history
    assert trainer.step_count == steps and trainer.optimizer.t == t
    assert trainer.rng.bit_generator.state == rng_state
    # and the trainer still works afterwards
    trainer.fit(good_X(), good_y(), epochs=1, verbose=False)
    assert trainer.step_count == steps + 3


# --- layouts: non-contiguous and Fortran-ordered X are fine --------------------

def layouts(X):
    wide = np.zeros((X.shape[0], 2 * X.shape[1]), X.dtype)
    wide[:, ::2] = X
    tall = np.zeros((2 * X.shape[0], X.shape[1]), X.dtype)
    tall[::2] = X
    return {
        "fortran": np.asfortranarray(X),
        "column-strided": wide[:, ::2],
        "row-strided": tall[::2],
        "negative-strides": X[::-1].copy()[::-1],
        "float64-into-float32": X.astype(np.float64),
        "list": X.tolist(),
    }


@pytest.mark.parametrize("layout", sorted(layouts(good_X())))
def test_layouts_give_the_same_results(backend_name, layout):
    X = good_X()
    X_other = layouts(X)[layout]
    if layout not in ("list", "float64-into-float32"):
        assert not X_other.flags.c_contiguous
    y = good_y()
    results = []
    for data in (X, X_other):
        trainer = make_trainer(backend=backend_name)
        trainer.fit(data, y, epochs=2, validation_data=(data, y), verbose=False)
        results.append(dict(params=trainer.model.flat_params.copy(),
                            predict=trainer.predict(data),
                            forward=trainer.model.forward(data),
                            evaluate=trainer.evaluate(data, y),
                            history=trainer.history.to_dict()))
    a, b = results
    for key in ("params", "predict", "forward"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a["evaluate"] == b["evaluate"]
    assert a["history"] == b["history"]


def test_layouts_in_gradcheck_and_loss(backend_name):
    X = good_X(np.float64)
    y = good_y()
    model = make_model(backend_name, dtype="float64")
    expected = nnc.gradcheck(model, "softmax_cross_entropy", X, y)
    for name, X_other in layouts(X).items():
        assert nnc.gradcheck(model, "softmax_cross_entropy", X_other, y) == expected, name
    out = model.forward(X)
    loss = nnc.SoftmaxCrossEntropy(backend_name)
    value = loss.forward(out, y)
    assert loss.forward(np.asfortranarray(out), y) == value
    strided_labels = np.repeat(y, 2)[::2]
    assert not strided_labels.flags.c_contiguous
    assert loss.forward(out, strided_labels) == value


def test_forward_does_not_modify_the_callers_array(backend_name):
    X = good_X()
    kept = X.copy()
    model = make_model(backend_name)
    model.forward(X)
    model.backward(np.ones((N, F_OUT), np.float32))
    model.predict(X)
    np.testing.assert_array_equal(X, kept)


def test_set_num_threads_accepts_numpy_integers(restore_threads):
    """Every other int argument of nnc accepts numpy integers (numbers.Integral)."""
    nnc.set_num_threads(np.int64(1))
    assert nnc.get_num_threads() == 1
