"""nnc.sklearn: NNClassifier and NNRegressor as scikit-learn estimators.

Every check of ``sklearn.utils.estimator_checks`` runs on both estimators
with their default parameters (``nnc.sklearn.EXPECTED_FAILED_CHECKS`` lists
the checks expected to fail, with the reason; it is empty)."""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nnc  # noqa: E402
from nnc.sklearn import (EXPECTED_FAILED_CHECKS, OPTIMIZERS, NNClassifier,  # noqa: E402
                         NNRegressor, expected_failed_checks)


@parametrize_with_checks([NNClassifier(), NNRegressor()],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_no_check_is_expected_to_fail():
    assert EXPECTED_FAILED_CHECKS == {"NNClassifier": {}, "NNRegressor": {}}


def blobs(n=90, n_classes=3, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(n_classes, n_features))
    y = np.arange(n) % n_classes
    X = centres[y] + rng.normal(0, 0.5, size=(n, n_features))
    return X, y


def small(cls=NNClassifier, **kw):
    params = dict(hidden_layer_sizes=(16,), epochs=30, lr=0.01, random_state=0)
    params.update(kw)
    return cls(**params)


# --- classifier -----------------------------------------------------------------

@pytest.mark.parametrize("labels", [
    pytest.param(["cat", "dog", "emu"], id="strings"),
    pytest.param([-5, 3, 100], id="non-contiguous-ints"),
    pytest.param([2.0, -1.0, 7.0], id="integral-floats"),
    pytest.param([True, False], id="bool-binary"),
    pytest.param(["no", "yes"], id="strings-binary"),
])
def test_classifier_maps_labels_through_classes(labels):
    X, y = blobs(n_classes=len(labels))
    y_named = np.array(labels, dtype=object if isinstance(labels[0], str) else None)[y]
    clf = small().fit(X, y_named)
    np.testing.assert_array_equal(clf.classes_, np.unique(y_named))
    pred = clf.predict(X)
    assert set(np.unique(pred)) <= set(clf.classes_)
    assert clf.score(X, y_named) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(labels)) and proba.dtype == np.float64
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(1)])
    # the network has one output per class, binary problems included
    assert clf.model_.out_features == len(labels)


def test_predict_proba_is_a_softmax_summing_to_one():
    X, y = blobs()
    clf = small().fit(X, y)
    proba = clf.predict_proba(X * 1000)  # large logits: must not overflow
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    logits = clf.model_.predict(np.asarray(X, np.float32)).astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)),
                               rtol=1e-9, atol=1e-12)


def test_int_and_list_input_is_converted_like_sklearn_does():
    X, y = blobs()
    X_int = np.round(X * 10).astype(np.int64)
    a = small().fit(X_int, y)
    b = small().fit(X_int.astype(np.float64), y)
    c = small().fit(X_int.tolist(), y.tolist())
    for other in (b, c):
        np.testing.assert_array_equal(a.predict_proba(X_int), other.predict_proba(X_int))


def test_fit_is_reproducible_and_refit_starts_afresh():
    X, y = blobs()
    a = small().fit(X, y)
    proba = a.predict_proba(X)
    np.testing.assert_array_equal(small().fit(X, y).predict_proba(X), proba)
    a.fit(X, y)  # a second fit is a new network, not a continuation
    np.testing.assert_array_equal(a.predict_proba(X), proba)
    assert a.n_iter_ == 30 and len(a.loss_curve_) == 30


def test_classifier_learns_digits():
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=0)
    clf = NNClassifier(hidden_layer_sizes=(64,), epochs=15, random_state=0)
    assert clf.fit(X_train, y_train).score(X_test, y_test) > 0.93
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_name_trains(optimizer):
    X, y = blobs()
    lr = {"sgd": 0.3, "nesterov": 0.3, "adagrad": 0.1}.get(optimizer, 0.01)
    clf = small(optimizer=optimizer, lr=lr).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


@pytest.mark.parametrize("options", [
    dict(batchnorm=True), dict(dropout=0.2), dict(activation="tanh"),
    dict(activation="logistic", lr=0.05), dict(activation="leaky_relu"),
    dict(activation="identity"), dict(hidden_layer_sizes=()), dict(hidden_layer_sizes=(8, 8)),
    dict(l2=1e-3, clip_norm=1.0), dict(dtype="float64"), dict(backend="numpy"),
    dict(shuffle=False), dict(batch_size=1000),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_options_build_the_network_and_train(options):
    X, y = blobs()
    clf = small(**options).fit(X, y)
    assert clf.score(X, y) > 0.9
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    if options.get("batchnorm"):
        assert kinds[:3] == ["Dense", "BatchNorm", "ReLU"] and not clf.model_.layers[0].bias
    if options.get("dropout"):
        assert "Dropout" in kinds
    if options.get("hidden_layer_sizes") == ():
        assert kinds == ["Dense"]
    if "dtype" in options:
        assert clf.model_.dtype == np.float64
    if "backend" in options:
        assert clf.model_.backend.name == "numpy"


def test_backends_agree():
    X, y = blobs()
    a = small(backend="cython", dtype="float64").fit(X, y)
    b = small(backend="numpy", dtype="float64").fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-6, atol=1e-9)


def test_optimizer_instance_is_a_template():
    X, y = blobs()
    template = nnc.SGD(lr=0.2, momentum=0.5)
    clf = small(optimizer=template).fit(X, y)
    assert template.params is None  # the estimator trained a fresh copy
    assert type(clf.trainer_.optimizer) is nnc.SGD and clf.trainer_.optimizer.momentum == 0.5
    clf.fit(X, y)  # and can do so again
    assert clf.score(X, y) > 0.9


def test_batch_size_is_clipped_to_the_data():
    X, y = blobs(n=12)
    clf = small(batch_size=500, epochs=2).fit(X, y)
    assert clf.t_ == 2  # one full batch per epoch


# --- regressor ---------------------------------------------------------------

def linear_data(n=120, n_targets=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    W = rng.normal(size=(3, n_targets or 1))
    Y = X @ W + 0.01 * rng.normal(size=(n, n_targets or 1))
    return X, (Y[:, 0] if n_targets is None else Y)


def test_regressor_with_1d_y():
    X, y = linear_data()
    reg = small(NNRegressor, epochs=60).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (len(X),) and pred.dtype == np.float64
    assert reg.n_outputs_ == 1 and reg.score(X, y) > 0.95


@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_with_2d_y(n_targets):
    X, Y = linear_data(n_targets=n_targets)
    reg = small(NNRegressor, epochs=60).fit(X, Y)
    pred = reg.predict(X)
    assert pred.shape == Y.shape and reg.n_outputs_ == n_targets
    assert reg.score(X, Y) > 0.95


def test_regressor_1d_and_column_y_give_the_same_model():
    X, y = linear_data()
    a = small(NNRegressor).fit(X, y)
    b = small(NNRegressor).fit(X, y[:, None])
    np.testing.assert_array_equal(a.predict(X), b.predict(X)[:, 0])


def test_regressor_int_targets():
    X, y = linear_data()
    y_int = np.round(y * 3).astype(np.int32)
    a = small(NNRegressor).fit(X, y_int)
    b = small(NNRegressor).fit(X, y_int.astype(float))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


# --- predictions do not depend on what else is predicted ------------------------

@pytest.mark.parametrize("cls", [NNClassifier, NNRegressor])
def test_predictions_are_invariant_to_batching_and_order(cls):
    X, y = blobs(n=150)
    est = small(cls).fit(X, y)
    method = est.predict_proba if cls is NNClassifier else est.predict
    full = method(X)
    order = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_array_equal(method(X[order]), full[order])
    np.testing.assert_array_equal(np.concatenate([method(X[i:i + 7]) for i in range(0, 150, 7)]),
                                  full)
    np.testing.assert_array_equal(method(X[3:4]), full[3:4])


# --- partial_fit --------------------------------------------------------------

def test_classifier_partial_fit():
    X, y = blobs(n=120)
    labels = np.array(["a", "b", "c", "d"])  # "d" never occurs in the data
    clf = small()
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, labels[y])
    losses = []
    for epoch in range(20):
        for start in range(0, 120, 40):
            clf.partial_fit(X[start:start + 40], labels[y[start:start + 40]],
                            classes=labels if epoch == 0 and start == 0 else None)
        losses.append(clf.loss_curve_[-1])
    np.testing.assert_array_equal(clf.classes_, labels)
    assert clf.predict_proba(X).shape == (120, 4)
    assert clf.n_iter_ == 60 and clf.t_ == 120  # one epoch per call, 40 rows = 2 steps of 32
    assert losses[-1] < losses[0]
    assert clf.score(X, labels[y]) > 0.9
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:5], np.array(["a", "b", "z", "a", "b"]))
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:5], labels[y[:5]], classes=["a", "b"])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:5, :2], labels[y[:5]])


def test_partial_fit_continues_where_fit_stopped():
    X, y = blobs()
    a = small(epochs=3).fit(X, y)
    steps = a.t_
    a.partial_fit(X, y)
    assert a.n_iter_ == 4 and a.t_ > steps
    assert a.trainer_.optimizer.t == a.t_


def test_regressor_partial_fit():
    X, Y = linear_data(n_targets=2)
    reg = small(NNRegressor)
    for _ in range(40):
        reg.partial_fit(X, Y)
    assert reg.n_iter_ == 40 and reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.9
    with pytest.raises(ValueError, match="target column"):
        reg.partial_fit(X, Y[:, 0])


# --- get/set_params, clone, pickle, Pipeline, GridSearchCV --------------------

def test_params_are_stored_unchanged():
    sizes = [32, 16]  # a list stays the same list object
    template = nnc.Adam(lr=0.01)
    clf = NNClassifier(hidden_layer_sizes=sizes, optimizer=template, lr=0.5, epochs=3,
                       random_state=np.random.RandomState(0))
    params = clf.get_params()
    assert params["hidden_layer_sizes"] is sizes and params["optimizer"] is template
    assert params["lr"] == 0.5 and params["epochs"] == 3
    assert set(params) == {"hidden_layer_sizes", "activation", "optimizer", "lr", "momentum",
                           "batch_size", "epochs", "tol", "n_iter_no_change", "batchnorm",
                           "dropout", "l2", "clip_norm",
                           "shuffle", "dtype", "backend", "random_state", "verbose", "init",
                           "schedule"}
    clf.set_params(lr=0.1, hidden_layer_sizes=(8,))
    assert clf.lr == 0.1 and clf.hidden_layer_sizes == (8,)
    clf.fit(*blobs())
    assert sizes == [32, 16] and clf.get_params()["lr"] == 0.1
    assert clf.model_.layers[0].out_features == 8
    other = clone(clf)
    assert other.get_params()["lr"] == 0.1 and not hasattr(other, "model_")
    # bad values are stored by set_params and refused by fit, naming the parameter
    clf.set_params(lr=-1.0)
    with pytest.raises(ValueError, match="lr"):
        clf.fit(*blobs())


@pytest.mark.parametrize("cls", [NNClassifier, NNRegressor])
def test_pickle_round_trip(cls):
    X, y = blobs()
    est = small(cls, epochs=5).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    method = "predict_proba" if cls is NNClassifier else "predict"
    np.testing.assert_array_equal(getattr(copy, method)(X), getattr(est, method)(X))
    # training continues identically (optimizer state and shuffling restored)
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(getattr(copy, method)(X), getattr(est, method)(X))
    # set_params after fit does not change the network a pickle rebuilds
    est.set_params(hidden_layer_sizes=(3,), activation="tanh")
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(getattr(again, method)(X), getattr(est, method)(X))


def test_pipeline_and_grid_search():
    X, y = nnc.datasets.load_digits()
    X, y = X[:400] * 16, y[:400]  # unscaled pixel counts: the scaler matters
    pipe = make_pipeline(StandardScaler(), NNClassifier(epochs=10, random_state=0))
    grid = GridSearchCV(pipe, {"nnclassifier__hidden_layer_sizes": [(16,), (32,)],
                               "nnclassifier__lr": [1e-3, 1e-2]}, cv=2)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.8
    assert grid.best_estimator_.score(X, y) > 0.9
    assert grid.best_estimator_[-1].get_params()["lr"] in (1e-3, 1e-2)


def test_regressor_in_pipeline():
    X, y = linear_data()
    pipe = make_pipeline(StandardScaler(), small(NNRegressor, epochs=60)).fit(X * 100, y)
    assert pipe.score(X * 100, y) > 0.95


def test_verbose_shows_the_progress_bar(capsys):
    X, y = blobs(n=30)
    small(epochs=1, verbose=True).fit(X, y)
    assert "epoch 1/1" in capsys.readouterr().err


def test_fit_stops_once_the_training_loss_stops_improving():
    """MLPClassifier's rule: no improvement > tol for n_iter_no_change epochs
    ends fit early; tol=None runs every epoch. The kept weights are the best
    epoch's."""
    X, y = blobs()
    clf = small(epochs=300, tol=1e-2, n_iter_no_change=3).fit(X, y)
    assert 3 < clf.n_iter_ < 300
    best = int(np.argmin(clf.loss_curve_))
    assert clf.trainer_.history.epochs["loss"][best] == min(clf.loss_curve_)
    assert small(epochs=7, tol=None).fit(X, y).n_iter_ == 7
    with pytest.raises(ValueError, match=r"tol must lie in \[0, inf\), got -1.0"):
        small(tol=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="n_iter_no_change must be >= 1"):
        small(n_iter_no_change=0).fit(X, y)


def test_defaults_fit_a_real_regression_problem():
    """The defaults train long enough for targets of a real data set
    (diabetes, y in [25, 346], unscaled): R^2 > 0.3 on held-out data."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    assert NNRegressor(random_state=0).fit(X_train, y_train).score(X_test, y_test) > 0.3



def test_fit_keeps_the_last_weights_like_mlpclassifier():
    """With a large tol the stopping rule counts small improvements as none;
    the model keeps the weights of the last epoch that ran (as scikit-learn),
    not those of the last "big" improvement."""
    X, y = blobs()
    stopped = small(epochs=40, tol=0.05, n_iter_no_change=5, lr=0.003).fit(X, y)
    curve = stopped.loss_curve_
    assert all(b < a for a, b in zip(curve, curve[1:]))  # the premise
    plain = small(epochs=stopped.n_iter_, tol=None, lr=0.003).fit(X, y)
    np.testing.assert_array_equal(stopped.model_.flat_params, plain.model_.flat_params)


def test_an_early_stop_after_a_loss_spike_keeps_the_last_weights():
    """Unscaled features and a large rate make the full-batch loss jump; the
    epoch's loss was measured before its update, so restoring "the best
    epoch's" weights would keep weights one update later than the ones that
    scored it. The model is the one training ended with, as scikit-learn's."""
    X, y = blobs()
    X = X * 50
    stopped = small(batch_size=len(X), epochs=200, lr=0.2, n_iter_no_change=3).fit(X, y)
    curve = stopped.loss_curve_
    assert stopped.n_iter_ < 200 and min(curve) < curve[-1]  # the premise: it stopped after a rise
    plain = small(batch_size=len(X), epochs=stopped.n_iter_, lr=0.2, tol=None).fit(X, y)
    np.testing.assert_array_equal(stopped.model_.flat_params, plain.model_.flat_params)


@pytest.mark.parametrize("drop_per_epoch,expected", [(0.6e-4, 12), (0.0, 12), (2e-4, None)])
def test_the_stopping_rule_is_mlpclassifiers(drop_per_epoch, expected):
    """scikit-learn's _update_no_improvement_count: no improvement when the
    loss is not below best - tol; stop when the count exceeds n_iter_no_change
    (a loss falling by 0.6 tol per epoch stops at epoch 12, like a flat one)."""
    from nnc.sklearn import _Convergence

    class Stub:
        stop_training = False

    rule, trainer = _Convergence(1e-4, 10), Stub()
    rule.on_train_begin(trainer)
    stopped = None
    for epoch in range(40):
        rule.on_epoch_end(trainer, epoch, {"loss": 1.0 - drop_per_epoch * epoch})
        if trainer.stop_training:
            stopped = epoch + 1
            break
    assert stopped == expected


def test_convergence_warning_as_mlpclassifier():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with pytest.warns(ConvergenceWarning, match=r"maximum number of epochs \(3\)") as caught:
        NNClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0).fit(X, y)
    assert caught[0].filename == __file__  # points at the caller's fit
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = NNClassifier(hidden_layer_sizes=(8,), epochs=500, tol=1e-2, random_state=0)
        assert clf.fit(X, y).n_iter_ < 500  # stopped by the rule: no warning
        NNClassifier(hidden_layer_sizes=(8,), epochs=3, tol=None, random_state=0).fit(X, y)


def test_labels_of_mixed_kinds_are_named():
    X = np.random.default_rng(0).normal(size=(6, 2))
    y = np.array(["a", 1] * 3, dtype=object)
    with pytest.raises(TypeError, match="y must hold labels of one kind"):
        NNClassifier(epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="y must hold labels of one kind"):
        NNClassifier(epochs=1).partial_fit(X, y, classes=["a", "b"])
    with pytest.raises(TypeError, match="y must hold labels of one kind"):
        NNClassifier(epochs=1).fit(X, np.array([1, "a"] * 3, dtype=object))
    masked = np.ma.masked_array(X, mask=np.zeros_like(X, dtype=bool))
    masked[0, 0] = np.ma.masked
    with pytest.raises(TypeError, match="X has masked entries"):
        NNClassifier(epochs=1).fit(masked, [0, 1] * 3)


def test_init_is_a_parameter_with_scikit_learns_default():
    X, y = blobs()
    clf = NNClassifier(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X, y)
    assert clf.model_.layers[0].config()["init"] == "glorot_uniform"  # as MLPClassifier
    he = NNClassifier(hidden_layer_sizes=(8,), epochs=1, init="he_normal", random_state=0)
    assert he.fit(X, y).model_.layers[0].config()["init"] == "he_normal"
    with pytest.raises(ValueError, match="init must be one of"):
        NNClassifier(init="glorot").fit(X, y)


# --- the README's mapping from scikit-learn's MLP settings ------------------------

def _sklearn_mlp_from(W0, estimator, X, y, epochs):
    """``estimator`` trained for ``epochs`` from the weights ``W0`` (zero biases):
    a first fit makes its attributes, warm_start then trains from the ones set."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
        estimator.coefs_ = [W.copy() for W in W0]
        estimator.intercepts_ = [np.zeros(W.shape[1]) for W in W0]
        estimator.set_params(max_iter=epochs).fit(X, y)
    return estimator


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_the_readme_maps_scikit_learns_mlp_settings_exactly(kind, nesterov):
    """Full batches, SGD: lr = learning_rate_init / (1 - momentum) and
    l2 = alpha / batch_size give MLPClassifier's weights; MLPRegressor's
    squared error has a factor 1/2, so there lr is halved and l2 doubled."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    n, lr, momentum, alpha, epochs = 40, 0.05, 0.9, 0.3, 6
    X = rng.normal(size=(n, 4))
    if kind == "classifier":
        y = np.arange(n) % 3
        W0 = [rng.normal(0, 0.5, (4, 6)), rng.normal(0, 0.5, (6, 3))]
        reference, ours, factor = MLPClassifier, NNClassifier, 1
    else:
        y = rng.normal(size=n)
        W0 = [rng.normal(0, 0.5, (4, 6)), rng.normal(0, 0.5, (6, 1))]
        reference, ours, factor = MLPRegressor, NNRegressor, 2
    sk = _sklearn_mlp_from(W0, reference(
        hidden_layer_sizes=(6,), activation="tanh", solver="sgd", momentum=momentum,
        nesterovs_momentum=nesterov, learning_rate_init=lr, batch_size=n, alpha=alpha,
        shuffle=False, max_iter=1, warm_start=True, tol=0.0, n_iter_no_change=1000,
        random_state=0), X, y, epochs)
    weights = iter(W0)
    nn = ours(hidden_layer_sizes=(6,), activation="tanh",
              optimizer="nesterov" if nesterov else "sgd", momentum=momentum,
              lr=lr / (1 - momentum) / factor, l2=factor * alpha / n, batch_size=n,
              epochs=epochs, tol=None, init=lambda shape, rng: next(weights).copy(),
              shuffle=False, dtype="float64", backend="numpy").fit(X, y)
    for layer, W, b in zip(nn.model_.layers[::2], sk.coefs_, sk.intercepts_):
        np.testing.assert_allclose(layer.params["W"], W, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.params["b"], b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(nn.loss_curve_, factor * np.array(sk.loss_curve_[-epochs:]),
                               rtol=1e-12)


@pytest.mark.parametrize("make, y", [
    (lambda: NNClassifier(hidden_layer_sizes=(5,), epochs=2, random_state=0), np.arange(40) % 2),
    (lambda: NNRegressor(hidden_layer_sizes=(5,), epochs=2, random_state=0),
     np.linspace(-1, 1, 40))])
def test_a_refused_refit_leaves_the_fitted_estimator_working(make, y, tmp_path):
    rng = np.random.default_rng(0)
    X4, X6 = rng.normal(size=(40, 4)), rng.normal(size=(40, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = make().fit(X4, y)
    before = estimator.predict(X4)
    with pytest.raises(ValueError, match="lr"):
        estimator.set_params(lr=-1).fit(X6, y)
    assert estimator.n_features_in_ == 4
    np.testing.assert_array_equal(estimator.predict(X4), before)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(estimator)).predict(X4), before)
    with pytest.raises(ValueError, match="X has 6 features, but .* is expecting 4"):
        estimator.predict(X6)


def test_a_fit_that_ends_in_a_warning_raised_as_error_keeps_its_new_model():
    rng = np.random.default_rng(0)
    X4, X6 = rng.normal(size=(40, 4)), rng.normal(size=(40, 6))
    regressor = NNRegressor(hidden_layer_sizes=(4,), epochs=1, tol=1e-12, n_iter_no_change=5,
                            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        regressor.fit(X4, X4[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            regressor.fit(X6, X6[:, 0])  # trained to the end, then warned
    assert regressor.n_features_in_ == 6 == regressor.model_.in_features
    assert regressor.predict(X6).shape == (40,)


@pytest.mark.parametrize("schedule, first, last", [("constant", 0.01, 0.01),
                                                    ("linear", 0.01, 0.0001),
                                                    ("cosine", 0.01, 0.0)])
def test_the_schedule_spans_the_planned_epochs(schedule, first, last):
    X, y = load_iris(return_X_y=True)
    clf = NNClassifier(hidden_layer_sizes=(8,), optimizer="sgd", lr=0.01, batch_size=50,
                       epochs=4, tol=None, schedule=schedule, random_state=0).fit(X, y)
    rates = clf.trainer_.history.steps["lr"]
    assert len(rates) == 12 and rates[0] == pytest.approx(first)  # 4 epochs of 3 batches
    assert rates[-1] == pytest.approx(last + (first - last) / 12 * (schedule == "linear"),
                                      abs=2e-4 if schedule == "cosine" else 1e-12)
    with pytest.raises(ValueError, match="schedule must be one of"):
        clone(clf).set_params(schedule="step").fit(X, y)


def test_a_warning_raised_as_error_leaves_every_fitted_attribute_in_step():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    three, five = np.array(["a", "b", "c"])[np.arange(60) % 3], np.arange(60) % 5
    classifier = NNClassifier(hidden_layer_sizes=(4,), epochs=2, tol=1e-12, n_iter_no_change=5,
                              random_state=0)
    regressor = NNRegressor(hidden_layer_sizes=(4,), epochs=2, tol=1e-12, n_iter_no_change=5,
                            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(X, three)
        regressor.fit(X, X[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            classifier.fit(X[:, :3], five)
        with pytest.raises(ConvergenceWarning):
            regressor.fit(X[:, :3], X[:, :2])
    assert list(classifier.classes_) == [0, 1, 2, 3, 4]
    assert set(classifier.predict(X[:, :3])) <= set(range(5))
    assert regressor.n_outputs_ == 2 and regressor.predict(X[:, :3]).shape == (60, 2)


def test_a_pickled_estimator_keeps_its_schedule():
    X, y = load_iris(return_X_y=True)
    clf = NNClassifier(hidden_layer_sizes=(8,), optimizer="sgd", lr=0.1, batch_size=50,
                       epochs=4, schedule="linear", random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    copy = pickle.loads(pickle.dumps(clf))
    for estimator in (clf, copy):
        estimator.partial_fit(X, y)
    assert copy.trainer_.history.steps["lr"] == clf.trainer_.history.steps["lr"]
    assert clf.trainer_.history.steps["lr"][-1] < 0.1
    old = pickle.loads(pickle.dumps(clf))
    del old.__dict__["schedule"]  # as pickled before the parameter existed
    assert pickle.loads(pickle.dumps(old)).get_params()["schedule"] == "constant"
