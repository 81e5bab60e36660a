"""Bad input at every public entry point: a ValueError or TypeError whose
message names the argument, raised at the call that made the mistake, and
no change to the model when a call is refused.

The corpus is table-driven: each table row (or combination of an entry
point and a row) is one parametrised case, 747 in all (a test checks this
number against the cases pytest collects, so it cannot go stale); a few
properties are also checked with hypothesis on generated input. Entry
points: Dense, BatchNorm, Dropout, LeakyReLU, Sequential (construction,
forward, backward, predict), the losses, the optimizers and
``optimizer.bind``/``step``, the schedules, Trainer (construction, fit,
evaluate, predict, load_state_dict), gradcheck, ``nnc.load``, the datasets,
``set_num_threads``, the scikit-learn estimators (skipped without
scikit-learn) and the CLI (``nnc.cli.main`` returns or exits with status 2
and prints one line, no traceback).
"""
import os
import re
import subprocess
import sys
import zipfile

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


def model_state(model):
    """Copies of everything a refused call must leave alone."""
    return (model.flat_params.copy(), model.flat_grads.copy(),
            [{k: v.copy() for k, v in layer.buffers.items()} for layer in model.layers],
            model.rng.bit_generator.state)


def assert_same_state(before, after):
    for a, b in zip(before[:2], after[:2]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(before[2], after[2]):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert before[3] == after[3]


class unchanged:
    """``with unchanged(model, ...):`` asserts that the models' parameters,
    gradients, buffers and generators are the same after the block (which
    is expected to raise)."""

    def __init__(self, *models):
        self.models = models

    def __enter__(self):
        self.before = [model_state(m) for m in self.models]

    def __exit__(self, *exc_info):
        for model, before in zip(self.models, self.before):
            assert_same_state(before, model_state(model))
        return False


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
    model64 = make_model(dtype="float64")
    y = good_y()
    calls = {
        "fit": lambda: trainer.fit(X, y, epochs=1, verbose=False),
        "evaluate": lambda: trainer.evaluate(X, y),
        "predict": lambda: trainer.predict(X),
        "model.forward": lambda: model.forward(X),
        "model.predict": lambda: model.predict(X),
        "gradcheck": lambda: nnc.gradcheck(model64, "softmax_cross_entropy", X, y),
    }
    with unchanged(model, model64), pytest.raises(exc, match=match):
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
    model64 = make_model(dtype="float64")
    X = good_X()
    calls = {
        "fit": lambda: trainer.fit(X, y, epochs=1, verbose=False),
        "evaluate": lambda: trainer.evaluate(X, y),
        "loss.forward": lambda: nnc.SoftmaxCrossEntropy().forward(np.zeros((N, F_OUT)), y),
        "gradcheck": lambda: nnc.gradcheck(model64, "softmax_cross_entropy", X, y),
    }
    with unchanged(trainer.model, model64), pytest.raises(exc, match=match):
        calls[entry]()


def test_column_of_labels_is_accepted():
    trainer = make_trainer()
    trainer.fit(good_X(), good_y().reshape(-1, 1), epochs=1, verbose=False)


def test_huge_finite_values_are_not_mistaken_for_inf():
    # the finite check sums first; a sum that overflows must fall back to
    # the element-wise check instead of calling finite data "Inf"
    from nnc._validation import all_finite
    huge = np.full((N, F_IN), 3e38, np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(huge.sum())
    assert all_finite(huge)
    assert make_model().predict(huge).shape == (N, F_OUT)
    assert not all_finite(with_value(huge, (N - 1, F_IN - 1), np.nan))
    assert not all_finite(with_value(good_X(), (0, 1), -np.inf))


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
    with unchanged(trainer.model), pytest.raises(exc, match=match):
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
    ("seq-no-dense", lambda: nnc.Sequential(nnc.ReLU()), ValueError, "knows its input size"),
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
    ("sgd-lr-bool", lambda: nnc.SGD(lr=True), TypeError, "lr"),
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


# =============================================================================
# Layers, optimizers, schedules, Trainer options, gradcheck, nnc.load, datasets
# =============================================================================

def _bound_sgd():
    return nnc.SGD(lr=0.1).bind(np.ones(3), np.ones(3))


def _bind_twice():
    optimizer = nnc.Adam()
    optimizer.bind(make_model())
    optimizer.bind(make_model())


def _schedule_fit(schedule):
    return lambda: nnc.Trainer(make_model(), optimizer=nnc.SGD(0.1), batch_size=4,
                               schedule=schedule).fit(good_X(), good_y(), verbose=False)


def _bn_trainer(batch_size):
    model = nnc.Sequential(nnc.Dense(F_IN, 5, bias=False), nnc.BatchNorm(5), nnc.ReLU(),
                           nnc.Dense(5, F_OUT), seed=0)
    return nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=batch_size)


NAN, INF = float("nan"), float("inf")

MORE_BAD_CALLS = [
    # BatchNorm
    ("bn-features-0", lambda: nnc.BatchNorm(0), ValueError, "num_features"),
    ("bn-features-negative", lambda: nnc.BatchNorm(-4), ValueError, "num_features"),
    ("bn-features-float", lambda: nnc.BatchNorm(4.0), TypeError, "num_features"),
    ("bn-features-str", lambda: nnc.BatchNorm("4"), TypeError, "num_features"),
    ("bn-momentum-2", lambda: nnc.BatchNorm(4, momentum=2), ValueError, "momentum"),
    ("bn-momentum-negative", lambda: nnc.BatchNorm(4, momentum=-0.1), ValueError, "momentum"),
    ("bn-momentum-nan", lambda: nnc.BatchNorm(4, momentum=NAN), ValueError, "momentum"),
    ("bn-momentum-str", lambda: nnc.BatchNorm(4, momentum="0.9"), TypeError, "momentum"),
    ("bn-eps-0", lambda: nnc.BatchNorm(4, eps=0.0), ValueError, "eps"),
    ("bn-eps-negative", lambda: nnc.BatchNorm(4, eps=-1e-5), ValueError, "eps"),
    ("bn-eps-inf", lambda: nnc.BatchNorm(4, eps=INF), ValueError, "eps"),
    ("bn-eps-str", lambda: nnc.BatchNorm(4, eps="1e-5"), TypeError, "eps"),
    ("bn-wrong-width", lambda: nnc.Sequential(nnc.Dense(4, 5), nnc.BatchNorm(6)),
     ValueError, "6 features.*gives 5"),
    ("bn-fit-batch-1", lambda: _bn_trainer(1).fit(good_X(), good_y(), verbose=False),
     ValueError, "batch_size 1.*BatchNorm.*at least 2"),
    ("bn-fit-1-sample", lambda: _bn_trainer(1).fit(good_X()[:1], good_y()[:1], verbose=False),
     ValueError, "batch_size 1.*BatchNorm"),
    # Dropout
    ("dropout-negative", lambda: nnc.Dropout(-0.1), ValueError, "p must"),
    ("dropout-1", lambda: nnc.Dropout(1.0), ValueError, "p must"),
    ("dropout-2", lambda: nnc.Dropout(2), ValueError, "p must"),
    ("dropout-nan", lambda: nnc.Dropout(NAN), ValueError, "p must"),
    ("dropout-str", lambda: nnc.Dropout("0.5"), TypeError, "p must"),
    ("dropout-none", lambda: nnc.Dropout(None), TypeError, "p must"),
    # Dense: sizes no machine can hold are refused before allocating
    ("dense-astronomical", lambda: nnc.Sequential(nnc.Dense(2 ** 31 - 1, 2 ** 31 - 1)),
     ValueError, "parameters"),
    ("dense-beyond-blas", lambda: nnc.Sequential(nnc.Dense(2 ** 32, 2 ** 32)), ValueError,
     r"in_features must be <= 2147483647"),
    # optimizers
    ("sgd-momentum-2", lambda: nnc.SGD(0.1, momentum=2), ValueError, "momentum"),
    ("sgd-momentum-1", lambda: nnc.SGD(0.1, momentum=1.0), ValueError, "momentum"),
    ("sgd-momentum-negative", lambda: nnc.SGD(0.1, momentum=-0.5), ValueError, "momentum"),
    ("sgd-momentum-nan", lambda: nnc.SGD(0.1, momentum=NAN), ValueError, "momentum"),
    ("sgd-momentum-str", lambda: nnc.SGD(0.1, momentum="0.9"), TypeError, "momentum"),
    ("sgd-nesterov-no-momentum", lambda: nnc.SGD(0.1, nesterov=True), ValueError, "nesterov"),
    ("rmsprop-lr-inf", lambda: nnc.RMSprop(lr=INF), ValueError, "lr"),
    ("rmsprop-rho-1", lambda: nnc.RMSprop(rho=1.0), ValueError, "rho"),
    ("rmsprop-rho-negative", lambda: nnc.RMSprop(rho=-0.1), ValueError, "rho"),
    ("rmsprop-eps-0", lambda: nnc.RMSprop(eps=0.0), ValueError, "eps"),
    ("rmsprop-eps-str", lambda: nnc.RMSprop(eps="1e-8"), TypeError, "eps"),
    ("adam-lr-inf", lambda: nnc.Adam(lr=INF), ValueError, "lr"),
    ("adam-lr-str", lambda: nnc.Adam(lr="0.001"), TypeError, "lr"),
    ("adam-lr-complex", lambda: nnc.Adam(lr=1e-3 + 0j), TypeError, "lr"),
    ("adam-beta1-1", lambda: nnc.Adam(beta1=1.0), ValueError, "beta1"),
    ("adam-beta2-2", lambda: nnc.Adam(beta2=2.0), ValueError, "beta2"),
    ("adam-beta1-negative", lambda: nnc.Adam(beta1=-0.9), ValueError, "beta1"),
    ("adam-eps-negative", lambda: nnc.Adam(eps=-1e-8), ValueError, "eps"),
    ("adam-eps-nan", lambda: nnc.Adam(eps=NAN), ValueError, "eps"),
    ("adamw-decay-negative", lambda: nnc.AdamW(weight_decay=-0.01), ValueError, "weight_decay"),
    ("adamw-decay-nan", lambda: nnc.AdamW(weight_decay=NAN), ValueError, "weight_decay"),
    ("adamw-decay-str", lambda: nnc.AdamW(weight_decay="0.01"), TypeError, "weight_decay"),
    ("adagrad-lr-negative", lambda: nnc.Adagrad(lr=-1e-3), ValueError, "lr"),
    ("adagrad-lr-inf", lambda: nnc.Adagrad(lr=INF), ValueError, "lr"),
    ("adagrad-eps-0", lambda: nnc.Adagrad(eps=0.0), ValueError, "eps"),
    # optimizer.bind / step
    ("bind-str", lambda: nnc.SGD(0.1).bind("model"), TypeError, "model must be an nnc"),
    ("bind-none", lambda: nnc.SGD(0.1).bind(None), TypeError, "model must be an nnc"),
    ("bind-array-without-grads", lambda: nnc.SGD(0.1).bind(np.ones(3)), TypeError, "model"),
    ("bind-2d", lambda: nnc.SGD(0.1).bind(np.ones((2, 2)), np.ones((2, 2))), TypeError, "w must"),
    ("bind-int", lambda: nnc.SGD(0.1).bind(np.ones(2, int), np.ones(2, int)), TypeError, "w must"),
    ("bind-float16", lambda: nnc.SGD(0.1).bind(np.ones(2, np.float16), np.ones(2, np.float16)),
     TypeError, "w must"),
    ("bind-grads-list", lambda: nnc.SGD(0.1).bind(np.ones(2), [0.0, 0.0]), TypeError, "grads"),
    ("bind-non-contiguous", lambda: nnc.SGD(0.1).bind(np.ones(6)[::2], np.ones(3)),
     TypeError, "C-contiguous"),
    ("bind-shape-mismatch", lambda: nnc.SGD(0.1).bind(np.ones(3), np.ones(4)), ValueError,
     "grads"),
    ("bind-dtype-mismatch", lambda: nnc.SGD(0.1).bind(np.ones(3), np.ones(3, np.float32)),
     ValueError, "grads"),
    ("bind-backend", lambda: nnc.SGD(0.1).bind(np.ones(3), np.ones(3), backend="torch"),
     ValueError, "backend"),
    ("bind-twice", _bind_twice, ValueError, "already bound"),
    ("step-unbound", lambda: nnc.SGD(0.1).step(), RuntimeError, "not bound"),
    ("step-lr-inf", lambda: _bound_sgd().step(INF), ValueError, "lr must be finite"),
    ("step-lr-nan", lambda: _bound_sgd().step(NAN), ValueError, "lr must be finite"),
    ("step-lr-negative", lambda: _bound_sgd().step(-0.1), ValueError, "lr must lie"),
    ("step-lr-str", lambda: _bound_sgd().step("0.1"), TypeError, "lr must be a real"),
    ("step-lr-array", lambda: _bound_sgd().step(np.array([0.1, 0.2])), TypeError, "lr"),
    ("opt-load-state-empty", lambda: nnc.Adam().load_state_dict({}), ValueError, "state_dict"),
    # schedules
    ("constant-lr-str", lambda: nnc.schedules.Constant("0.1"), TypeError, "lr"),
    ("constant-lr-negative", lambda: nnc.schedules.Constant(-0.1), ValueError, "lr"),
    ("linear-lr0-negative", lambda: nnc.schedules.LinearDecay(-1.0, 0.0, 10), ValueError, "lr0"),
    ("linear-lr0-inf", lambda: nnc.schedules.LinearDecay(INF, 0.0, 10), ValueError, "lr0"),
    ("linear-final-nan", lambda: nnc.schedules.LinearDecay(0.1, NAN, 10), ValueError,
     "lr_final"),
    ("linear-steps-0", lambda: nnc.schedules.LinearDecay(0.1, 0.0, 0), ValueError,
     "decay_steps"),
    ("linear-steps-float", lambda: nnc.schedules.LinearDecay(0.1, 0.0, 10.5), TypeError,
     "decay_steps"),
    ("step-size-0", lambda: nnc.schedules.StepDecay(0.1, 0), ValueError, "step_size"),
    ("step-gamma-0", lambda: nnc.schedules.StepDecay(0.1, 10, gamma=0.0), ValueError, "gamma"),
    ("step-gamma-2", lambda: nnc.schedules.StepDecay(0.1, 10, gamma=2.0), ValueError, "gamma"),
    ("exponential-gamma-1.5", lambda: nnc.schedules.ExponentialDecay(0.1, 1.5), ValueError,
     "gamma"),
    ("exponential-steps-negative", lambda: nnc.schedules.ExponentialDecay(0.1, 0.5, -1),
     ValueError, "decay_steps"),
    ("cosine-steps-negative", lambda: nnc.schedules.CosineDecay(0.1, -1), ValueError,
     "decay_steps"),
    ("cosine-lr-min-nan", lambda: nnc.schedules.CosineDecay(0.1, 10, lr_min=NAN), ValueError,
     "lr_min"),
    ("warmup-after-str", lambda: nnc.schedules.Warmup("linear", 10), TypeError, "after"),
    ("warmup-steps-0", lambda: nnc.schedules.Warmup(nnc.schedules.Constant(0.1), 0),
     ValueError, "warmup_steps"),
    ("warmup-start-negative", lambda: nnc.schedules.Warmup(nnc.schedules.Constant(0.1), 5,
                                                           start_lr=-1.0), ValueError, "start_lr"),
    ("schedules-get-unknown", lambda: nnc.schedules.get("nope"), ValueError, "schedule"),
    ("trainer-schedule-number", lambda: nnc.Trainer(make_model(), schedule=3), TypeError,
     "schedule"),
    ("trainer-schedule-name", lambda: nnc.Trainer(make_model(), schedule="linear"), ValueError,
     "schedule"),
    # a schedule that returns nonsense stops fit before the update, naming it
    ("schedule-returns-nan", _schedule_fit(lambda t: NAN), ValueError, r"schedule\(0\)"),
    ("schedule-returns-inf", _schedule_fit(lambda t: INF), ValueError, r"schedule\(0\)"),
    ("schedule-returns-negative", _schedule_fit(lambda t: -0.1), ValueError, r"schedule\(0\)"),
    ("schedule-returns-none", _schedule_fit(lambda t: None), TypeError, r"schedule\(0\)"),
    ("schedule-returns-str", _schedule_fit(lambda t: "0.1"), TypeError, r"schedule\(0\)"),
    # Trainer options
    ("trainer-clip-norm-0", lambda: nnc.Trainer(make_model(), clip_norm=0.0), ValueError,
     "clip_norm"),
    ("trainer-clip-norm-nan", lambda: nnc.Trainer(make_model(), clip_norm=NAN), ValueError,
     "clip_norm"),
    ("trainer-clip-norm-str", lambda: nnc.Trainer(make_model(), clip_norm="1"), TypeError,
     "clip_norm"),
    ("trainer-clip-value-negative", lambda: nnc.Trainer(make_model(), clip_value=-1.0),
     ValueError, "clip_value"),
    ("trainer-l2-negative", lambda: nnc.Trainer(make_model(), l2=-1e-4), ValueError, "l2"),
    ("trainer-l2-inf", lambda: nnc.Trainer(make_model(), l2=INF), ValueError, "l2"),
    ("trainer-l2-str", lambda: nnc.Trainer(make_model(), l2="0"), TypeError, "l2"),
    ("trainer-batch-huge-float", lambda: nnc.Trainer(make_model(), batch_size=1e9), TypeError,
     "batch_size"),
    ("trainer-seed-str", lambda: nnc.Trainer(make_model(), seed="0"), TypeError, "seed"),
    ("trainer-callbacks-int", lambda: nnc.Trainer(make_model(), callbacks=3), TypeError,
     "callbacks"),
    ("trainer-callbacks-str", lambda: nnc.Trainer(make_model(), callbacks="early"), TypeError,
     "callbacks"),
    ("trainer-callbacks-item", lambda: nnc.Trainer(make_model(), callbacks=[print]), TypeError,
     "callbacks"),
    ("fit-callbacks-item", lambda: make_trainer().fit(good_X(), good_y(), callbacks=[1],
                                                      verbose=False), TypeError, "callbacks"),
    ("fit-epochs-str", lambda: make_trainer().fit(good_X(), good_y(), epochs="2", verbose=False),
     TypeError, "epochs"),
    ("fit-epochs-huge-float", lambda: make_trainer().fit(good_X(), good_y(), epochs=1e9,
                                                         verbose=False), TypeError, "epochs"),
    ("load-state-empty", lambda: make_trainer().load_state_dict({}), ValueError, "state"),
    ("load-state-none", lambda: make_trainer().load_state_dict(None), TypeError, "state"),
    ("load-state-wrong-size",
     lambda: make_trainer().load_state_dict({**make_trainer().state_dict(), "params": np.ones(3)}),
     ValueError, "parameters"),
    # gradcheck
    ("gradcheck-model-str", lambda: nnc.gradcheck("model", "mse", good_X(), good_y()), TypeError,
     "model must be an nnc.Sequential"),
    ("gradcheck-model-none", lambda: nnc.gradcheck(None, "mse", good_X(), good_y()), TypeError,
     "model"),
    ("gradcheck-eps-inf", lambda: nnc.gradcheck(make_model(dtype="float64"), "mse", good_X(),
                                                np.zeros((N, F_OUT)), eps=INF), ValueError, "eps"),
    ("gradcheck-eps-str", lambda: nnc.gradcheck(make_model(dtype="float64"), "mse", good_X(),
                                                np.zeros((N, F_OUT)), eps="1e-6"), TypeError,
     "eps"),
    ("gradcheck-targets-shape", lambda: nnc.gradcheck(make_model(dtype="float64"), "mse",
                                                      good_X(), np.zeros(N)), ValueError, "y"),
    # loss objects
    ("loss-name-none", lambda: nnc.Trainer(make_model(), loss=None), ValueError, "loss"),
    ("loss-output-3d", lambda: nnc.MeanSquaredError().forward(np.zeros((2, 2, 2)),
                                                              np.zeros((2, 2, 2))),
     ValueError, "output must be 2-D"),
    ("loss-output-complex", lambda: nnc.BCEWithLogits().forward(np.zeros((2, 2), complex),
                                                               np.zeros((2, 2))),
     TypeError, "output"),
    ("loss-labels-str", lambda: nnc.SoftmaxCrossEntropy().forward(np.zeros((2, 2)),
                                                                 np.array(["a", "b"])),
     TypeError, "y must hold integer"),
    ("loss-targets-str", lambda: nnc.MeanSquaredError().forward(np.zeros((2, 2)),
                                                               np.array([["a", "b"]] * 2)),
     TypeError, "y must hold real"),
    ("loss-backward-first", lambda: nnc.MeanSquaredError().backward(), RuntimeError, "forward"),
    ("model-backward-first", lambda: make_model().backward(np.zeros((N, F_OUT), np.float32)),
     RuntimeError, "forward"),
    # datasets
    ("split-strings", lambda: nnc.datasets.train_test_split("abc", "def"), ValueError, "X must"),
    ("split-none", lambda: nnc.datasets.train_test_split(None, None), TypeError, "X must"),
    ("split-one-sample", lambda: nnc.datasets.train_test_split(np.zeros((1, 2)), np.zeros(1)),
     ValueError, "at least 2"),
    ("split-seed-negative", lambda: nnc.datasets.train_test_split(np.zeros((5, 2)), np.zeros(5),
                                                                 seed=-1), ValueError, "seed"),
    ("split-seed-str", lambda: nnc.datasets.train_test_split(np.zeros((5, 2)), np.zeros(5),
                                                            seed="0"), TypeError, "seed"),
    ("mnist-like-seed-str", lambda: nnc.datasets.make_mnist_like(n=5, seed="x"), TypeError,
     "seed"),
    ("mnist-like-n-float", lambda: nnc.datasets.make_mnist_like(n=5.0), TypeError, "n must"),
    ("digits-dtype-int", lambda: nnc.datasets.load_digits("int32"), TypeError, "dtype"),
    # the MNIST loaders check their arguments before touching the network
    ("load-mnist-dtype", lambda: nnc.datasets.load_mnist(dtype="uint8"), TypeError, "dtype"),
    ("load-mnist-cache-dir", lambda: nnc.datasets.load_mnist(cache_dir=3), TypeError,
     "cache_dir"),
    ("load-fashion-base-url", lambda: nnc.datasets.load_fashion_mnist(base_url=3), TypeError,
     "base_url"),
]


@pytest.mark.parametrize("call,exc,match",
                         [pytest.param(f, e, m, id=c) for c, f, e, m in MORE_BAD_CALLS])
def test_more_bad_arguments(call, exc, match, monkeypatch, tmp_path):
    monkeypatch.setenv("NNC_DATA", str(tmp_path))  # never the user's cache
    with pytest.raises(exc, match=match):
        call()


# --- refused optimizer steps and schedules leave the weights alone -------------

@pytest.mark.parametrize("first_bad_step", [0, 4])
@pytest.mark.parametrize("lr", [INF, NAN, -1.0, "0.1", None, np.array([0.1])],
                         ids=["inf", "nan", "negative", "str", "none", "array"])
def test_refused_schedule_changes_nothing(backend_name, lr, first_bad_step):
    """A bad learning rate from a schedule stops fit before the step that
    would use it: weights, gradients, buffers, history and step count stay
    as the last good step left them (at step 0: the shuffling generator too)."""
    trainer = nnc.Trainer(make_model(backend_name), optimizer=nnc.Adam(), batch_size=4,
                          schedule=lambda t: 0.01 if t < first_bad_step else lr)
    seen = [(model_state(trainer.model), trainer.history.to_dict())]
    record = nnc.callbacks.LambdaCallback(on_step_end=lambda tr, logs: seen.append(
        (model_state(tr.model), tr.history.to_dict())))
    rng_state = trainer.rng.bit_generator.state
    with pytest.raises((ValueError, TypeError), match=rf"schedule\({first_bad_step}\)"):
        trainer.fit(good_X(), good_y(), epochs=3, verbose=False, callbacks=[record])
    state, history = seen[-1]
    assert_same_state(state, model_state(trainer.model))
    assert trainer.history.to_dict()["steps"] == history["steps"]
    assert trainer.step_count == trainer.optimizer.t == first_bad_step
    if first_bad_step == 0:
        assert trainer.rng.bit_generator.state == rng_state


@pytest.mark.parametrize("lr", [INF, NAN, -0.5, "x"], ids=["inf", "nan", "negative", "str"])
def test_refused_step_changes_nothing(backend_name, lr):
    w, g = np.ones(4), np.full(4, 0.5)
    optimizer = nnc.Adam().bind(w, g, backend=backend_name)
    with pytest.raises((ValueError, TypeError), match="lr"):
        optimizer.step(lr)
    np.testing.assert_array_equal(w, np.ones(4))
    assert optimizer.t == 0 and not optimizer.state["m"].any()
    optimizer.step(np.float32(0.1))  # NumPy scalars are fine
    assert optimizer.t == 1 and (w < 1).all()


# --- nnc.load (nnc/persistence.py) ------------------------------------------------

def _load_cases(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    empty_zip = tmp_path / "empty_zip.npz"
    zipfile.ZipFile(empty_zip, "w").close()
    return {
        "empty-zip": (empty_zip, ValueError, "an empty zip archive"),
        "missing-file": (tmp_path / "missing.npz", (OSError, ValueError), "missing.npz"),
        "garbage": (garbage, ValueError, "garbage.npz"),
        "empty-file": (empty, ValueError, "empty.npz"),
        "folder": (tmp_path, (OSError, ValueError), ""),
        "none": (None, TypeError, "path"),
        "int": (3, TypeError, "path"),
    }


@pytest.mark.parametrize("case", ["missing-file", "garbage", "empty-file", "empty-zip", "folder",
                                  "none", "int"])
def test_bad_load(case, tmp_path):
    if not hasattr(nnc, "load"):
        pytest.skip("nnc.load does not exist yet")
    path, exc, match = _load_cases(tmp_path)[case]
    with pytest.raises(exc, match=re.escape(match) if match else None):
        nnc.load(path)


# --- hypothesis: arbitrary arrays are accepted with the same result, or refused ---

try:
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # hypothesis is a test extra; the tables above run without it
    given = None

if given is not None:

    ARRAY_DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int8, np.int64,
                                    np.uint8, np.bool_, np.complex64])
    QUICK = settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])


    def _arrays():
        """Arrays of every dtype nnc meets, 0-3 dims of 0-5 entries; the float
        ones include NaN, Inf and values beyond the float32 range."""
        shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
        return st.tuples(ARRAY_DTYPES, shapes).flatmap(lambda a: hnp.arrays(*a))


    @QUICK
    @given(X=_arrays(), transpose=st.booleans())
    def test_forward_accepts_or_refuses_any_array(X, transpose):
        if transpose and X.ndim == 2:
            X = X.T  # a Fortran-ordered view
        model = make_model()
        ok_dtype = X.dtype in (np.float32, np.float64)
        valid = (ok_dtype and X.ndim == 2 and X.shape[0] > 0 and X.shape[1] == F_IN
                 and np.isfinite(X).all() and (X.dtype == np.float32 or np.abs(X).max()
                                               <= np.finfo(np.float32).max))
        with unchanged(model):
            if not valid:
                with pytest.raises((ValueError, TypeError), match="X"):
                    model.predict(X)
                return
        out = model.predict(X)
        expected = model.predict(np.ascontiguousarray(X, dtype=np.float32))
        np.testing.assert_array_equal(out, expected)


    @QUICK
    @given(values=st.lists(st.integers(-3, 5), min_size=0, max_size=2 * N),
           dtype=st.sampled_from([np.int64, np.int8, np.uint8, np.float64, np.bool_]))
    def test_fit_accepts_or_refuses_any_labels(values, dtype):
        y = np.array(values, dtype=np.int64).astype(dtype)
        trainer = make_trainer()
        X = good_X()
        valid = (y.dtype.kind in "iu" and y.shape == (N,) and y.min() >= 0 and y.max() < F_OUT)
        if not valid:
            with unchanged(trainer.model), pytest.raises((ValueError, TypeError), match="y"):
                trainer.fit(X, y, verbose=False)
        else:
            trainer.fit(X, y, verbose=False)
            assert trainer.step_count == 3


    HYPER = {  # constructor, argument, valid range (low, high, low_open, high_open)
        # lr 0 is a rate (PyTorch takes it too; schedules reach it)
        "SGD.lr": (lambda v: nnc.SGD(lr=v), "lr", (0, INF, False, False)),
        "SGD.momentum": (lambda v: nnc.SGD(0.1, momentum=v), "momentum", (0, 1, False, True)),
        "RMSprop.rho": (lambda v: nnc.RMSprop(rho=v), "rho", (0, 1, False, True)),
        "Adam.beta2": (lambda v: nnc.Adam(beta2=v), "beta2", (0, 1, False, True)),
        "Adam.eps": (lambda v: nnc.Adam(eps=v), "eps", (0, INF, True, False)),
        "BatchNorm.momentum": (lambda v: nnc.BatchNorm(3, momentum=v), "momentum",
                               (0, 1, False, True)),
        "Dropout.p": (lambda v: nnc.Dropout(v), "p", (0, 1, False, True)),
        "Trainer.l2": (lambda v: nnc.Trainer(make_model(), l2=v), "l2", (0, INF, False, False)),
    }


    @QUICK
    @example(name="SGD.lr", value=0)  # the ends, whatever examples hypothesis draws
    @example(name="SGD.lr", value=-1e-300)
    @example(name="Adam.eps", value=0.0)
    @example(name="SGD.momentum", value=1)
    @example(name="Dropout.p", value=0)
    @given(name=st.sampled_from(sorted(HYPER)),
           value=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                           st.integers(-10, 10), st.just("0.5"), st.none()))
    def test_hyperparameters_in_range_or_refused(name, value):
        make, arg, (low, high, low_open, high_open) = HYPER[name]
        if not isinstance(value, (int, float)):
            with pytest.raises(TypeError, match=arg):
                make(value)
            return
        inside = (np.isfinite(value) and (value > low if low_open else value >= low)
                  and (value < high if high_open else value <= high))
        if inside:
            make(value)
        else:
            with pytest.raises(ValueError, match=arg):
                make(value)


# =============================================================================
# The scikit-learn estimators (nnc.sklearn); skipped without scikit-learn
# =============================================================================

try:
    import sklearn  # noqa: F401
except ImportError:
    NNClassifier = NNRegressor = None
else:
    from nnc.sklearn import NNClassifier, NNRegressor


def need_sklearn():
    if NNClassifier is None:
        pytest.skip("scikit-learn is not installed")


ESTIMATORS = ["NNClassifier", "NNRegressor"]


def fitted(name, **params):
    cls = {"NNClassifier": NNClassifier, "NNRegressor": NNRegressor}[name]
    est = cls(hidden_layer_sizes=(5,), epochs=2, random_state=0, **params)
    y = good_y() if name == "NNClassifier" else good_y().astype(float)
    return est.fit(good_X(np.float64), y), y


def outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


class estimator_unchanged:
    """``with estimator_unchanged(est):``: the fitted network and its
    predictions are the same after the block."""

    def __init__(self, est):
        self.est = est

    def __enter__(self):
        self.model = self.est.model_
        self.state = model_state(self.model)
        self.out = outputs(self.est, good_X(np.float64))
        self.t = self.est.t_

    def __exit__(self, *exc_info):
        assert self.est.model_ is self.model and self.est.t_ == self.t
        assert_same_state(self.state, model_state(self.model))
        np.testing.assert_array_equal(outputs(self.est, good_X(np.float64)), self.out)
        return False


BAD_ESTIMATOR_PARAMS = [  # (id, params, exception, match); fit must refuse them
    ("hidden-0", dict(hidden_layer_sizes=(0,)), ValueError, r"hidden_layer_sizes\[0\]"),
    ("hidden-negative", dict(hidden_layer_sizes=(8, -1)), ValueError, r"hidden_layer_sizes\[1\]"),
    ("hidden-float", dict(hidden_layer_sizes=(3.5,)), TypeError, "hidden_layer_sizes"),
    ("hidden-generator", dict(hidden_layer_sizes=(h for h in [3])), TypeError,
     "hidden_layer_sizes"),
    ("shuffle-str", dict(shuffle="no"), TypeError, "shuffle"),
    ("verbose-str", dict(verbose="yes"), TypeError, "verbose"),
    ("verbose-negative", dict(verbose=-1), TypeError, "verbose"),
    ("hidden-str", dict(hidden_layer_sizes="100"), TypeError, "hidden_layer_sizes"),
    ("hidden-none", dict(hidden_layer_sizes=None), TypeError, "hidden_layer_sizes"),
    ("activation-unknown", dict(activation="softmax"), ValueError, "activation"),
    ("activation-none", dict(activation=None), ValueError, "activation"),
    ("optimizer-unknown", dict(optimizer="lbfgs"), ValueError, "optimizer"),
    ("optimizer-class", dict(optimizer=nnc.Adam), ValueError, "optimizer"),
    ("lr-inf", dict(lr=INF), ValueError, "lr"),
    ("lr-nan", dict(lr=NAN), ValueError, "lr"),
    ("lr-0", dict(lr=0.0), ValueError, "lr"),
    ("lr-negative", dict(lr=-0.1), ValueError, "lr"),
    ("lr-str", dict(lr="0.001"), TypeError, "lr"),
    ("momentum-2", dict(momentum=2.0, optimizer="sgd"), ValueError, "momentum"),
    ("momentum-negative", dict(momentum=-0.5), ValueError, "momentum"),
    ("nesterov-no-momentum", dict(optimizer="nesterov", momentum=0.0), ValueError, "nesterov"),
    ("batch-0", dict(batch_size=0), ValueError, "batch_size"),
    ("batch-negative", dict(batch_size=-32), ValueError, "batch_size"),
    ("batch-float", dict(batch_size=2.5), TypeError, "batch_size"),
    ("batch-str", dict(batch_size="32"), TypeError, "batch_size"),
    ("epochs-0", dict(epochs=0), ValueError, "epochs"),
    ("epochs-negative", dict(epochs=-5), ValueError, "epochs"),
    ("epochs-float", dict(epochs=1.5), TypeError, "epochs"),
    ("epochs-none", dict(epochs=None), TypeError, "epochs"),
    ("batchnorm-str", dict(batchnorm="yes"), TypeError, "batchnorm"),
    ("dropout-1", dict(dropout=1.0), ValueError, "dropout"),
    ("dropout-negative", dict(dropout=-0.1), ValueError, "dropout"),
    ("l2-negative", dict(l2=-1e-4), ValueError, "l2"),
    ("l2-inf", dict(l2=INF), ValueError, "l2"),
    ("clip-norm-0", dict(clip_norm=0.0), ValueError, "clip_norm"),
    ("clip-norm-str", dict(clip_norm="1"), TypeError, "clip_norm"),
    ("dtype-float16", dict(dtype="float16"), TypeError, "dtype"),
    ("dtype-int", dict(dtype="int32"), TypeError, "dtype"),
    ("backend-unknown", dict(backend="torch"), ValueError, "backend"),
    ("random-state-str", dict(random_state="x"), ValueError, "random_state"),
    ("random-state-negative", dict(random_state=-1), ValueError, "random_state"),
]


@pytest.mark.parametrize("params,exc,match",
                         [pytest.param(p, e, m, id=c) for c, p, e, m in BAD_ESTIMATOR_PARAMS])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_bad_hyperparameters(name, params, exc, match):
    """Stored unchanged by set_params (scikit-learn convention), refused by
    fit, which leaves the previously fitted network alone."""
    need_sklearn()
    est, y = fitted(name)
    est.set_params(**params)
    assert all(est.get_params()[k] is v for k, v in params.items())
    with estimator_unchanged(est), pytest.raises(exc, match=match):
        est.fit(good_X(np.float64), y)


BAD_ESTIMATOR_X = [  # (id, X, exception, match), for every method that takes X
    ("nan", with_value(good_X(np.float64), (3, 1), np.nan), ValueError, "Input X contains NaN"),
    ("inf", with_value(good_X(np.float64), (0, 0), np.inf), ValueError, "X contains infinity"),
    ("beyond-float32", with_value(good_X(np.float64), (2, 2), 1e39), ValueError,
     "X has values beyond the float32 range"),
    ("empty", np.zeros((0, F_IN)), ValueError, "0 sample"),
    ("0-d", np.float64(1.0), ValueError, "Expected 2D array"),
    ("1-d", np.zeros(F_IN), ValueError, "Expected 2D array"),
    ("3-d", np.zeros((N, F_IN, 1)), ValueError, "dim 3"),
    ("complex", good_X(np.float64).astype(complex), ValueError, "Complex data"),
    ("strings", np.full((N, F_IN), "a", dtype=object), ValueError,
     "X could not be read as numbers.*convert string"),
    ("ragged", [[1.0, 2.0], [3.0]], ValueError, "X could not be read.*inhomogeneous"),
    ("none", None, ValueError, "Expected 2D array"),
    ("dict", {"a": 1}, TypeError, "X could not be read as numbers"),
    ("wrong-features", np.zeros((N, F_IN + 1)), ValueError, "X has 5 features.*expecting 4"),
]
X_METHODS = ["fit", "partial_fit", "predict", "predict_proba", "score"]


@pytest.mark.parametrize("name,method,X,exc,match", [
    pytest.param(name, method, x, e, m, id=f"{name}-{method}-{c}")
    for name in ESTIMATORS for method in X_METHODS for c, x, e, m in BAD_ESTIMATOR_X
    if not (name == "NNRegressor" and method == "predict_proba")])
def test_estimator_bad_X(name, method, X, exc, match):
    need_sklearn()
    est, y = fitted(name)
    if method == "fit" and isinstance(X, np.ndarray) and X.shape == (N, F_IN + 1):
        est.fit(X, y)  # fit may change the number of features: a new network
        return
    y_for = y[:len(X)] if isinstance(X, np.ndarray) and X.ndim >= 1 else y
    calls = {"fit": lambda: est.fit(X, y_for), "partial_fit": lambda: est.partial_fit(X, y_for),
             "predict": lambda: est.predict(X), "predict_proba": lambda: est.predict_proba(X),
             "score": lambda: est.score(X, y_for)}
    with warnings_ignored(), estimator_unchanged(est), \
            pytest.raises(exc, match=match):
        calls[method]()


class warnings_ignored:
    def __enter__(self):
        import warnings
        self.ctx = warnings.catch_warnings()
        self.ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc_info):
        return self.ctx.__exit__(*exc_info)


BAD_ESTIMATOR_Y = [  # (id, estimator, method, y, exception, match)
    ("too-short", "NNClassifier", "fit", good_y()[:-1], ValueError, "inconsistent numbers"),
    ("too-long", "NNRegressor", "fit", np.zeros(N + 1), ValueError, "inconsistent numbers"),
    ("none", "NNClassifier", "fit", None, ValueError, "requires y"),
    ("none-regressor", "NNRegressor", "fit", None, ValueError, "requires y"),
    ("continuous-labels", "NNClassifier", "fit", np.linspace(0, 1, N), ValueError,
     "Unknown label type: continuous"),
    ("two-columns", "NNClassifier", "fit", np.c_[good_y(), good_y()], ValueError, "1d array"),
    ("nan-labels", "NNClassifier", "fit", np.r_[np.nan, good_y()[1:]], ValueError,
     "Input y contains NaN"),
    ("nan-targets", "NNRegressor", "fit", np.r_[np.nan, np.zeros(N - 1)], ValueError,
     "Input y contains NaN"),
    ("inf-targets", "NNRegressor", "fit", np.r_[np.inf, np.zeros(N - 1)], ValueError,
     "y contains infinity"),
    ("complex-targets", "NNRegressor", "fit", np.zeros(N, complex), ValueError, "Complex"),
    ("string-targets", "NNRegressor", "fit", np.array(["a"] * N), ValueError,
     "y could not be read as numbers"),
    ("3-d-targets", "NNRegressor", "fit", np.zeros((N, 1, 1)), ValueError, "dim 3"),
    ("no-target-columns", "NNRegressor", "fit", np.zeros((N, 0)), ValueError, "y"),
    ("unknown-label", "NNClassifier", "partial_fit", np.r_[good_y()[:-1], 7], ValueError,
     "not in classes"),
    ("other-classes", "NNClassifier", "partial_fit-classes", good_y(), ValueError, "classes"),
    ("target-columns-change", "NNRegressor", "partial_fit", np.zeros((N, 2)), ValueError,
     "target column"),
    ("score-too-short", "NNClassifier", "score", good_y()[:-1], ValueError, "inconsistent"),
]


@pytest.mark.parametrize("name,method,y,exc,match",
                         [pytest.param(n, m, y, e, r, id=c)
                          for c, n, m, y, e, r in BAD_ESTIMATOR_Y])
def test_estimator_bad_y(name, method, y, exc, match):
    need_sklearn()
    est, _ = fitted(name)
    X = good_X(np.float64)
    calls = {"fit": lambda: est.fit(X, y), "partial_fit": lambda: est.partial_fit(X, y),
             "partial_fit-classes": lambda: est.partial_fit(X, y, classes=[0, 1, 2, 3]),
             "score": lambda: est.score(X, y)}
    with warnings_ignored(), estimator_unchanged(est), pytest.raises(exc, match=match):
        calls[method]()


ESTIMATOR_MISUSE = [
    ("predict-before-fit", lambda: NNClassifier().predict(good_X()), "NotFittedError", "fit"),
    ("proba-before-fit", lambda: NNClassifier().predict_proba(good_X()), "NotFittedError", "fit"),
    ("regressor-before-fit", lambda: NNRegressor().predict(good_X()), "NotFittedError", "fit"),
    ("partial-fit-without-classes", lambda: NNClassifier().partial_fit(good_X(), good_y()),
     ValueError, "classes must be passed"),
    ("batchnorm-one-sample", lambda: NNClassifier(batchnorm=True).fit(good_X()[:1], [0]),
     ValueError, "1 sample"),
    ("batchnorm-batch-1", lambda: NNClassifier(batchnorm=True, batch_size=1).fit(good_X(),
                                                                                 good_y()),
     ValueError, "batch_size=1"),
]


@pytest.mark.parametrize("call,exc,match",
                         [pytest.param(f, e, m, id=c) for c, f, e, m in ESTIMATOR_MISUSE])
def test_estimator_misuse(call, exc, match):
    need_sklearn()
    if exc == "NotFittedError":
        from sklearn.exceptions import NotFittedError as exc
    with pytest.raises(exc, match=match):
        call()


def _values_layouts():
    """(id, X in some layout or dtype, the same values as C-contiguous float64)."""
    rng = np.random.default_rng(3)
    quarters = rng.integers(-8, 8, size=(N, F_IN)) / 4  # exact in float16 too
    ints = rng.integers(-5, 5, size=(N, F_IN))
    wide = np.zeros((N, 2 * F_IN))
    wide[:, ::2] = quarters
    return [
        ("int64", ints, ints.astype(np.float64)),
        ("int8", ints.astype(np.int8), ints.astype(np.float64)),
        ("bool", ints > 0, (ints > 0).astype(np.float64)),
        ("float16", quarters.astype(np.float16), quarters),
        ("float32", quarters.astype(np.float32), quarters),
        ("object-numbers", quarters.astype(object), quarters),
        ("list", quarters.tolist(), quarters),
        ("fortran", np.asfortranarray(quarters), quarters),
        ("column-strided", wide[:, ::2], quarters),
        ("reversed-rows", quarters[::-1].copy()[::-1], quarters),
        ("read-only", np.require(quarters, requirements="C").copy().view(), quarters),
    ]


@pytest.mark.parametrize("index", range(11),
                         ids=[c for c, _, _ in _values_layouts()])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_accepts_layouts_with_the_same_result(name, index):
    """Numeric input of any dtype and layout is converted as scikit-learn
    users expect, and predicts exactly what the float64 C array predicts."""
    need_sklearn()
    case, X, reference = _values_layouts()[index]
    if case == "read-only":
        X.flags.writeable = False
    est, y = fitted(name)
    np.testing.assert_array_equal(outputs(est, X), outputs(est, reference))
    # and fitting on it gives the same network
    a = fitted(name)[0].fit(X, y)
    b = fitted(name)[0].fit(reference, y)
    np.testing.assert_array_equal(a.model_.flat_params, b.model_.flat_params)


# =============================================================================
# The command line: status 2 and one line naming the problem, no traceback
# =============================================================================

BAD_CLI = [  # (id, argv, what the error line must say)
    ("no-command", [], "COMMAND|usage"),
    ("unknown-command", ["bogus"], "invalid choice"),
    ("demo-epochs-0", ["demo", "--epochs", "0"], "epochs"),
    ("demo-epochs-negative", ["demo", "--epochs", "-1"], "epochs"),
    ("demo-epochs-word", ["demo", "--epochs", "many"], "--epochs"),
    ("demo-batch-0", ["demo", "--batch-size", "0"], "--batch-size"),
    ("demo-batch-larger-than-data", ["demo", "--batch-size", "100000"], "--batch-size"),
    ("demo-lr-inf", ["demo", "--lr", "inf"], "lr"),
    ("demo-lr-nan", ["demo", "--lr", "nan"], "lr"),
    ("demo-lr-negative", ["demo", "--lr", "-0.1"], "lr"),
    ("demo-lr-word", ["demo", "--lr", "fast"], "--lr"),
    ("demo-threads-negative", ["demo", "--threads", "-1"], "threads"),
    ("demo-threads-huge", ["demo", "--threads", "100000000"], "threads"),
    ("demo-backend", ["demo", "--backend", "torch"], "--backend"),
    ("demo-seed-negative", ["demo", "--seed", "-1"], "seed"),
    ("bench-samples-0", ["bench", "--samples", "0"], "--samples"),
    ("bench-repeats-0", ["bench", "--repeats", "0"], "repeats"),
    ("bench-threads-0", ["bench", "--threads", "0"], "threads"),
    ("bench-threads-huge", ["bench", "--threads", "99999"], "--threads: expected thread counts"),
    ("bench-batch-0", ["bench", "--batch-sizes", "0"], "--batch-sizes"),
    ("bench-batch-words", ["bench", "--batch-sizes", "a,b"], "--batch-sizes"),
    ("bench-batch-larger-than-data", ["bench", "--samples", "10", "--batch-sizes", "32"],
     "batch_sizes"),
    ("train-hidden-0", ["train", "--hidden", "0"], "--hidden"),
    ("train-hidden-word", ["train", "--hidden", "wide"], "--hidden"),
    ("train-lr-negative", ["train", "--lr", "-1"], "--lr"),
    ("train-lr-inf", ["train", "--lr", "inf"], "--lr"),
    ("train-epochs-0", ["train", "--epochs", "0"], "--epochs"),
    ("train-dropout-1.5", ["train", "--dropout", "1.5"], "--dropout"),
    ("train-momentum-2", ["train", "--momentum", "2"], "--momentum"),
    ("train-batch-0", ["train", "--batch-size", "0"], "--batch-size"),
    ("train-threads-huge", ["train", "--threads", "100000"], "threads"),
    ("train-dataset", ["train", "--dataset", "cifar"], "--dataset"),
    ("train-batch-larger-than-data", ["train", "--batch-size", "100000"], "--batch-size"),
    ("train-save-missing-folder", ["train", "--save", "/nonexistent-nnc/dir/m.npz"], "--save"),
    ("evaluate-missing-file", ["evaluate", "/nonexistent-nnc.npz"], "nonexistent-nnc.npz"),
    ("evaluate-no-file", ["evaluate"], "MODEL.npz"),
    ("diagnose-missing-file", ["diagnose", "/nonexistent-nnc.json"], "nonexistent-nnc.json"),
]


@pytest.mark.parametrize("argv,match", [pytest.param(a, m, id=c) for c, a, m in BAD_CLI])
def test_cli_bad_arguments(argv, match, capsys, restore_threads):
    from nnc import cli
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:  # argparse exits with status 2 itself
        status = exc.code
    out, err = capsys.readouterr()
    assert status == 2, (status, out, err)
    assert "Traceback" not in out + err
    assert re.search(match, out + err), out + err
    assert nnc.get_num_threads() == restore_threads


# =============================================================================
# The number in the module docstring is the number of parametrised cases
# =============================================================================

def test_docstring_counts_the_cases():
    stated = int(re.search(r"(\d+) in all", __doc__).group(1))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         os.path.abspath(__file__)],
        capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stdout + result.stderr
    cases = [line for line in result.stdout.splitlines() if "::" in line and "[" in line]
    assert stated == len(cases), (f"the module docstring says {stated} parametrised cases, "
                                  f"pytest collects {len(cases)}: update the docstring")
