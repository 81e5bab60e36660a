"""scikit-learn estimators built on nnc: ``NNClassifier`` and ``NNRegressor``.

::

    from nnc.sklearn import NNClassifier
    clf = NNClassifier(hidden_layer_sizes=(128,), epochs=20, random_state=0)
    clf.fit(X_train, y_train).score(X_test, y_test)

They are ordinary scikit-learn estimators (``BaseEstimator`` plus
``ClassifierMixin``/``RegressorMixin``): ``fit``, ``predict``, ``score``,
``get_params``/``set_params``, ``clone``, pickling, ``Pipeline`` and
``GridSearchCV`` work as with any other estimator, and ``partial_fit`` trains
one more epoch on the data it is given. Underneath, ``fit`` builds an
``nnc.Sequential`` multi-layer perceptron and trains it with an
``nnc.Trainer``; both stay available after fitting as ``model_`` and
``trainer_`` (``trainer_.history`` has the loss of every step).

The network: for every entry ``h`` of ``hidden_layer_sizes`` a ``Dense``
layer of ``h`` units (without a bias when ``batchnorm=True``), then
``BatchNorm`` (if ``batchnorm``), the activation and ``Dropout`` (if
``dropout > 0``); then a ``Dense`` output layer. ``NNClassifier`` has one
output per class and minimises the softmax cross-entropy (binary problems
too: two outputs), ``NNRegressor`` one output per target column and the mean
squared error.

Input: X is validated the scikit-learn way (``validate_data``): lists,
integer, boolean and numeric ``object`` arrays are converted to floating
point (nnc's own core refuses them), then to ``dtype``; NaN/Inf, complex,
sparse, empty and non-2-D input is refused with scikit-learn's messages.
``batch_size`` larger than the data is clipped to the number of samples (as
``MLPClassifier`` does); a training batch of a single sample is skipped
when ``batchnorm=True`` (see ``nnc.Trainer``).

Not in the estimators: ``sample_weight``, early stopping, ``class_weight``,
``decision_function``. Hyper-parameters are checked in ``fit`` (scikit-learn
convention: ``__init__`` and ``set_params`` only store them), each error
naming the parameter.

scikit-learn compatibility: ``tests/test_sklearn.py`` runs every check of
``sklearn.utils.estimator_checks.parametrize_with_checks`` on both
estimators. ``EXPECTED_FAILED_CHECKS`` (passed to it as
``expected_failed_checks``, the mechanism of scikit-learn >= 1.6) is empty:
no check is expected to fail. Checks that scikit-learn itself leaves out
or skips because they do not apply here: the ``sample_weight`` checks
(``fit`` has no ``sample_weight``), the multi-label classifier checks
(``classifier_tags.multi_label`` is False), ``check_class_weight_*`` (no
``class_weight``), ``check_decision_proba_consistency`` (no
``decision_function``), ``check_array_api_input`` (skipped unless
``SCIPY_ARRAY_API=1``; nnc computes with NumPy only) and the
``*_data_not_an_array``/dataframe checks when pandas is not installed.

Predictions go through the network in blocks of a fixed number of rows
(``PREDICT_BLOCK``), so that a sample's prediction is bit-for-bit the same
whichever other samples it is predicted with: BLAS rounds a float32 matrix
product differently for different row counts, which would otherwise fail
``check_methods_subset_invariance`` by a few float32 ulps.
"""
import functools
import numbers
import re
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import (check_array, check_is_fitted, column_or_1d,
                                          validate_data)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("nnc.sklearn needs scikit-learn >= 1.6: pip install scikit-learn "
                      "(or pip install -e '.[sklearn]' from nnc's clone)") from exc

from nnc._validation import (check_bool, check_dtype, check_float, check_int, check_verbose,
                             unmasked)
from nnc.callbacks import Callback
from nnc.init import get_initializer
from nnc.backends import NAMES as BACKENDS
from nnc.layers import BatchNorm, Dense, Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from nnc.model import Sequential
from nnc.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from nnc.schedules import RUN_SCHEDULES, over_run
from nnc.trainer import Trainer

__all__ = ["NNClassifier", "NNRegressor", "EXPECTED_FAILED_CHECKS"]

#: checks of ``sklearn.utils.estimator_checks`` expected to fail, per
#: estimator class name: ``{check name: reason}``. None at present.
EXPECTED_FAILED_CHECKS = {"NNClassifier": {}, "NNRegressor": {}}

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "logistic": Sigmoid,
               "sigmoid": Sigmoid, "identity": None}
OPTIMIZERS = ("sgd", "nesterov", "rmsprop", "adam", "adamw", "adagrad")

#: rows per forward pass in predict (see ``_NNEstimator._output``)
PREDICT_BLOCK = 64

# validate_data keeps float32/float64 and converts everything else numeric to float64
_X_DTYPES = (np.float64, np.float32)


_NO_Y = object()


def _validate(estimator, X, y=_NO_Y, **kwargs):
    """scikit-learn's ``validate_data`` (X converted to float64/float32); an
    error converting the input to numbers, whose message names neither X
    nor y, is re-raised with the name of the argument in front."""
    X = unmasked(X, "X")
    if y is not _NO_Y:
        y = unmasked(y, "y")
    try:
        if y is _NO_Y:
            return validate_data(estimator, X, dtype=_X_DTYPES, **kwargs)
        return validate_data(estimator, X, y, dtype=_X_DTYPES, **kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        converting = isinstance(exc, TypeError) or any(
            word in message for word in ("convert", "sequence", "inhomogeneous"))
        if not converting or re.search(r"\b[Xy]\b", message) or type(exc) not in (
                TypeError, ValueError):
            raise
        culprit = "X"
        if y is not _NO_Y:
            try:
                check_array(X, dtype=_X_DTYPES, ensure_all_finite=False, ensure_2d=False,
                            allow_nd=True, ensure_min_samples=0, ensure_min_features=0)
            except (TypeError, ValueError):
                pass
            else:
                culprit = "y"
        raise type(exc)(f"{culprit} could not be read as numbers: {message}") from exc


def _restores_inputs_on_failure(fit):
    """A fit method that, when it fails (a refused hyper-parameter, a
    diverged run, ...), puts back what ``validate_data`` reset before the
    failure (``n_features_in_``, ``feature_names_in_``): an estimator fitted
    before keeps predicting as it did."""
    @functools.wraps(fit)
    def fit_or_restore(self, *args, **kwargs):
        saved = {name: self.__dict__[name] for name in _INPUT_ATTRIBUTES if name in self.__dict__}
        model = self.__dict__.get("model_")
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            if self.__dict__.get("model_") is model:  # (a new model_ fits the new inputs)
                for name in _INPUT_ATTRIBUTES:
                    self.__dict__.pop(name, None)
                self.__dict__.update(saved)
            raise
    return fit_or_restore


_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


def expected_failed_checks(estimator):
    """``{check name: reason}`` for ``parametrize_with_checks(...,
    expected_failed_checks=expected_failed_checks)``."""
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))


class _Convergence(Callback):
    """MLPClassifier's stopping rule on the epoch's training loss: an epoch
    whose loss is not below the best so far minus ``tol`` counts as no
    improvement; more than ``n_iter_no_change`` such epochs in a row stop
    training."""

    def __init__(self, tol, n_iter_no_change):
        self.tol, self.n_iter_no_change = tol, n_iter_no_change
        self.converged = False

    def on_train_begin(self, trainer):
        self.best, self.count, self.converged = np.inf, 0, False

    def on_epoch_end(self, trainer, epoch, logs):
        loss = logs["loss"]
        self.count = self.count + 1 if not loss < self.best - self.tol else 0
        self.best = min(self.best, loss)
        if self.count > self.n_iter_no_change:
            trainer.stop_training = self.converged = True


class _NNEstimator(BaseEstimator):
    """Shared parameters, network construction and training."""

    _loss = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", optimizer="adam",
                 lr=1e-3, momentum=0.9, batch_size=32, epochs=200, tol=1e-4,
                 n_iter_no_change=10, batchnorm=False, dropout=0.0, l2=0.0, clip_norm=None,
                 shuffle=True, dtype="float32", backend="cython", random_state=None,
                 verbose=False, init="glorot_uniform", schedule="constant"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.l2 = l2
        self.clip_norm = clip_norm
        self.shuffle = shuffle
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose
        self.init = init
        self.schedule = schedule

    # --- hyper-parameters -----------------------------------------------------
    def _checked_params(self):
        """The hyper-parameters, validated; errors name the parameter."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        if not isinstance(sizes, (tuple, list, range, np.ndarray)):
            # a generator would be used up by the first fit
            raise TypeError(f"hidden_layer_sizes must be a tuple of positive ints, got {sizes!r}")
        sizes = tuple(check_int(h, f"hidden_layer_sizes[{i}]", low=1)
                      for i, h in enumerate(sizes))
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if isinstance(self.optimizer, Optimizer):
            if type(self.optimizer) not in (SGD, RMSprop, Adam, AdamW, Adagrad):
                raise TypeError(f"optimizer must be one of {OPTIMIZERS} or an nnc optimizer "
                                f"(SGD, RMSprop, Adam, AdamW, Adagrad), got {self.optimizer!r}")
        elif not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS} or an nnc optimizer, "
                             f"got {self.optimizer!r}")
        if not isinstance(self.batchnorm, (bool, np.bool_)):
            raise TypeError(f"batchnorm must be True or False, got {self.batchnorm!r}")
        if not isinstance(self.backend, str) or self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        get_initializer(self.init)  # a ValueError naming init for an unknown name
        if not isinstance(self.schedule, str) or self.schedule not in RUN_SCHEDULES:
            raise ValueError(f"schedule must be one of {RUN_SCHEDULES}, got {self.schedule!r}")
        opt = self.optimizer
        return {
            "sizes": sizes,
            "activation": self.activation,
            "batchnorm": bool(self.batchnorm),
            "backend": self.backend,
            # (class, keyword arguments) or a name: a fresh optimizer per model
            "optimizer": (type(opt), opt.config()) if isinstance(opt, Optimizer) else opt,
            "lr": check_float(self.lr, "lr", low=0, low_open=True),
            "momentum": check_float(self.momentum, "momentum", low=0, high=1, high_open=True),
            "batch_size": check_int(self.batch_size, "batch_size", low=1),
            "epochs": check_int(self.epochs, "epochs", low=1),
            "tol": None if self.tol is None else check_float(self.tol, "tol", low=0),
            "n_iter_no_change": check_int(self.n_iter_no_change, "n_iter_no_change", low=1),
            "dropout": check_float(self.dropout, "dropout", low=0, high=1, high_open=True),
            "l2": check_float(self.l2, "l2", low=0),
            "clip_norm": None if self.clip_norm is None else check_float(
                self.clip_norm, "clip_norm", low=0, low_open=True),
            "dtype": check_dtype(self.dtype),
            "shuffle": check_bool(self.shuffle, "shuffle"),
            "init": self.init,
            "schedule": self.schedule,
            "verbose": check_verbose(self.verbose),
            "seed": self._seed(),
        }

    def _seed(self):
        """An int seed for nnc drawn from ``random_state``."""
        try:
            random_state = check_random_state(self.random_state)
        except (ValueError, TypeError):
            raise ValueError(f"random_state must be None, an int in [0, 2**32) or a "
                             f"numpy RandomState, got {self.random_state!r}") from None
        return int(random_state.randint(np.iinfo(np.int32).max))

    @staticmethod
    def _make_optimizer(p):
        opt = p["optimizer"]
        if isinstance(opt, tuple):  # an optimizer given as a template: a fresh copy
            cls, config = opt
            return cls(**config)
        if opt in ("sgd", "nesterov"):
            return SGD(p["lr"], momentum=p["momentum"], nesterov=opt == "nesterov")
        return {"rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad}[opt](p["lr"])

    def _build(self, p, n_features, n_outputs):
        """A new model and trainer for ``n_features`` inputs and ``n_outputs``
        outputs, from the checked hyper-parameters ``p`` alone (so that
        unpickling rebuilds the same network after a ``set_params``)."""
        activation = ACTIVATIONS[p["activation"]]
        layers, width = [], n_features
        for units in p["sizes"]:
            layers.append(Dense(width, units, init=p["init"], bias=not p["batchnorm"]))
            if p["batchnorm"]:
                layers.append(BatchNorm(units))
            if activation is not None:
                layers.append(activation())
            if p["dropout"] > 0:
                layers.append(Dropout(p["dropout"]))
            width = units
        layers.append(Dense(width, n_outputs, init=p["init"]))
        model = Sequential(*layers, dtype=p["dtype"], backend=p["backend"], seed=p["seed"])
        trainer = Trainer(model, loss=self._loss, optimizer=self._make_optimizer(p),
                          batch_size=p["batch_size"], l2=p["l2"], clip_norm=p["clip_norm"])
        trainer.warn_unscaled = False  # as MLPClassifier (the README says to scale)
        return trainer

    # --- training -------------------------------------------------------------
    def _train(self, trainer, X, y, p, epochs, callbacks=None):
        n, batch_size = X.shape[0], p["batch_size"]
        if trainer.step_count == 0:  # the rate over the run: p["epochs"] epochs of this data
            trainer.schedule = over_run(p["schedule"], trainer.optimizer.lr,
                                        p["epochs"] * -(-n // min(batch_size, n)))
        if trainer.model.needs_batch_statistics and min(batch_size, n) < 2:
            what = (f"{n} sample" if n < 2 else f"batch_size={batch_size}")
            raise ValueError(f"batchnorm=True needs training batches of at least 2 samples "
                             f"(the variance of one sample is undefined); got {what}")
        trainer.batch_size = min(batch_size, n)
        trainer.fit(X, y, epochs=epochs, shuffle=p["shuffle"], verbose=p["verbose"],
                    callbacks=callbacks)

    def _fit(self, X, y, n_outputs, **fitted):
        """Train a new network; ``fitted``: the estimator's own attributes
        (``classes_``, ...), set together with ``model_`` before any warning."""
        p = self._checked_params()
        trainer = self._build(p, X.shape[1], n_outputs)
        # MLPClassifier's convergence rule, and like it the last weights: the
        # epoch's loss is a mean over its steps, measured before each update,
        # so no epoch's weights are the ones that scored it
        converged = None if p["tol"] is None else [
            _Convergence(p["tol"], p["n_iter_no_change"])]
        self._train(trainer, X, y, p, p["epochs"], converged)
        self._set_fitted(trainer, p, n_outputs, fitted)
        if converged is not None and not converged[0].converged:
            warnings.warn(f"{type(self).__name__}: the maximum number of epochs ({p['epochs']}) "
                          "was reached before the training loss converged (tol, "
                          "n_iter_no_change); raise epochs or lr", ConvergenceWarning,
                          stacklevel=4)  # _fit, fit, its wrapper, the caller
        return self

    def _partial_fit(self, X, y, n_outputs, first, **fitted):
        if first:
            p = self._checked_params()
            trainer = self._build(p, X.shape[1], n_outputs)
        else:  # continue with the network and hyper-parameters of the first call
            trainer, p = self.trainer_, self._nnc_params
        self._train(trainer, X, y, p, 1)
        self._set_fitted(trainer, p, n_outputs, fitted)
        return self

    def _set_fitted(self, trainer, p, n_outputs, fitted):
        for name, value in fitted.items():
            setattr(self, name, value)
        self.trainer_ = trainer
        self.model_ = trainer.model
        self._nnc_params = p
        self._nnc_outputs = n_outputs
        self.loss_curve_ = list(trainer.history.epochs["loss"])
        self.n_iter_ = len(self.loss_curve_)
        self.t_ = trainer.step_count

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def _validate_X(self, X):
        check_is_fitted(self)
        return _validate(self, X, reset=False)

    def _output(self, X):
        """The network's output for X in evaluation mode, as float64.

        The rows go through the network in blocks of exactly
        ``PREDICT_BLOCK`` rows (the last one padded with zeros): BLAS rounds
        a float32 matrix product differently for different numbers of rows,
        and fixed blocks make a sample's prediction independent of which
        other samples are predicted with it."""
        X = self._validate_X(X)
        n, block = X.shape[0], PREDICT_BLOCK
        if n % block:
            # X's own dtype: nnc's check then names values beyond the model's range
            padded = np.zeros((n + block - n % block, X.shape[1]), dtype=X.dtype)
            padded[:n] = X
            X = padded
        return self.model_.predict(X, batch_size=block)[:n].astype(np.float64)

    # --- pickling: nnc's compiled backend is rebuilt, not pickled -------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # may be self.__dict__ itself: copy
        trainer = state.pop("trainer_", None)
        state.pop("model_", None)
        if trainer is not None:
            state["_nnc_trainer_state"] = trainer.state_dict()
            state["_nnc_schedule"] = trainer.schedule  # (a state_dict has none)
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_nnc_trainer_state", None)
        schedule = state.pop("_nnc_schedule", None)
        state.setdefault("schedule", "constant")  # (pickled before the parameter existed)
        if "_nnc_params" in state:
            state["_nnc_params"] = {"schedule": "constant", **state["_nnc_params"]}
        super().__setstate__(state)
        if saved is not None:
            trainer = self._build(self._nnc_params, self.n_features_in_, self._nnc_outputs)
            trainer.load_state_dict(saved)
            trainer.schedule = schedule
            self.trainer_, self.model_ = trainer, trainer.model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _check_class_labels(y):
    """scikit-learn's check that ``y`` holds class labels, after naming
    labels of mixed kinds (strings and numbers cannot be sorted)."""
    if y.dtype == object and len({isinstance(v, str) for v in y.ravel()}) > 1:
        raise TypeError("y must hold labels of one kind (all numbers or all strings), "
                        f"got a mix, e.g. {y.ravel()[:4].tolist()!r}")
    check_classification_targets(y)


def _unique_classes(classes):
    """The sorted distinct labels of partial_fit's ``classes``."""
    try:
        unique = np.unique(column_or_1d(classes))
    except (TypeError, ValueError) as exc:  # mixed kinds (None and 1) cannot be sorted
        raise type(exc)(f"classes must be a 1-D array of labels of one kind (all numbers or "
                        f"all strings), got {classes!r}: {exc}") from None
    if unique.dtype.kind == "f" and not np.isfinite(unique).all():
        raise ValueError(f"classes must be finite labels, got {classes!r} (NaN is no class)")
    return unique


class NNClassifier(ClassifierMixin, _NNEstimator):
    """A multi-layer perceptron classifier trained by nnc (softmax
    cross-entropy, one output per class).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Units of each hidden layer; ``()`` gives multinomial logistic regression.
    activation : {"relu", "leaky_relu", "tanh", "logistic", "sigmoid", "identity"}
    optimizer : {"sgd", "nesterov", "rmsprop", "adam", "adamw", "adagrad"} or an
        nnc optimizer used as a template (its own ``lr`` etc. apply; ``fit``
        works on a fresh copy).
    lr : learning rate α.
    momentum : β of "sgd" (0 for plain SGD) and "nesterov", in the lecture's
        convention ``z ← βz - (1-β)g; w ← w + αz`` (see ``nnc.SGD``).
    batch_size : samples per step, clipped to the number of samples.
    epochs : the most passes over the data in ``fit`` (``partial_fit`` does one).
    tol, n_iter_no_change : ``fit`` stops early once the mean training loss of
        an epoch has not fallen below the best so far minus ``tol`` for more
        than ``n_iter_no_change`` epochs in a row (``MLPClassifier``'s rule;
        as there, the model keeps the last weights). ``tol=None``: always
        ``epochs`` epochs. ``n_iter_`` says how many ran.
    batchnorm : ``BatchNorm`` after every hidden ``Dense`` layer.
    dropout : dropout probability after every hidden activation (0: none).
    l2 : λ of the L2 penalty on the weights (``nnc.Trainer(l2=...)``).
    clip_norm : global gradient-norm clipping (None: off).
    shuffle : reshuffle the samples every epoch.
    dtype : "float32" or "float64", the model's precision.
    backend : "cython" (compiled kernels) or "numpy" (the reference).
    random_state : None, int or RandomState; seeds weights, dropout and shuffling.
    verbose : show nnc's per-epoch progress bar.
    init : the weights' initialiser, a name from ``nnc.init`` or a callable;
        the default ``"glorot_uniform"`` is ``MLPClassifier``'s for every
        activation but ``"logistic"`` (for which scikit-learn narrows the
        bound by sqrt(3)); nnc's own default before ReLU is ``"he_normal"``.
    schedule : the learning rate over the ``epochs`` of ``fit``: ``"constant"``
        (``lr``), ``"linear"`` (the lecture's decay from ``lr`` to ``lr``/100,
        then constant) or ``"cosine"`` (to 0); ``nnc.schedules.over_run``.
        ``partial_fit`` plans ``epochs`` calls the size of its first one, and
        later calls (after ``fit`` too) continue where the schedule ended:
        ``lr``/100 for ``"linear"``, 0 for ``"cosine"`` (no more learning).

    Attributes
    ----------
    classes_ : the labels, sorted; the network's output ``k`` is ``classes_[k]``.
    n_features_in_, feature_names_in_ : as in scikit-learn.
    model_ : the trained ``nnc.Sequential``.
    trainer_ : its ``nnc.Trainer`` (``trainer_.history``).
    loss_curve_ : mean training loss of every epoch; ``n_iter_`` epochs so far;
        ``t_`` optimizer steps so far.
    """

    _loss = "softmax_cross_entropy"

    @_restores_inputs_on_failure
    def fit(self, X, y):
        """Train a new network on (X, y) for ``epochs`` epochs; returns self."""
        X, y = _validate(self, X, y)
        _check_class_labels(y)
        classes, encoded = np.unique(y, return_inverse=True)
        self._fit(X, encoded.reshape(-1), len(classes), classes_=classes)
        return self

    @_restores_inputs_on_failure
    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y). The first call (before any ``fit``) needs
        ``classes``, every label that will ever occur; later calls continue
        training the same network (optimizer state included)."""
        first = not hasattr(self, "model_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(an array of every label that can occur)")
            all_classes = _unique_classes(classes)
        else:
            all_classes = self.classes_
            if classes is not None and not np.array_equal(_unique_classes(classes),
                                                          all_classes):
                raise ValueError(f"classes={classes!r} is not the same as classes_ "
                                 f"{all_classes!r} of the first call to partial_fit")
        X, y = _validate(self, X, y, reset=first)
        _check_class_labels(y)
        unknown = ~np.isin(y, all_classes)
        if unknown.any():
            raise ValueError(f"y contains labels {np.unique(y[unknown])!r} that are not in "
                             f"classes {all_classes!r}")
        encoded = np.searchsorted(all_classes, y)
        self._partial_fit(X, encoded, len(all_classes), first, classes_=all_classes)
        return self

    def predict_proba(self, X):
        """Softmax of the network's output: (n_samples, n_classes) float64,
        each row summing to 1, columns in the order of ``classes_``."""
        z = self._output(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict_log_proba(self, X):
        """Log of ``predict_proba``, computed stably (log-softmax)."""
        z = self._output(X)
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z

    def predict(self, X):
        """The most probable label of each sample (from ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        return tags


class NNRegressor(RegressorMixin, _NNEstimator):
    """A multi-layer perceptron regressor trained by nnc (mean squared error,
    one output per target column).

    Parameters are those of ``NNClassifier``. ``y`` may be 1-D (``predict``
    then returns shape (n,)) or 2-D (n, n_targets). Targets are not
    rescaled: for targets far from unit scale wrap the estimator in
    ``sklearn.compose.TransformedTargetRegressor(transformer=StandardScaler())``.
    The loss is mean((y - ŷ)²), twice ``MLPRegressor``'s squared error (which
    has a factor 1/2): its settings map to half the ``lr`` and twice the
    ``l2`` of the classifier's mapping (README, scikit-learn estimators).

    Attributes
    ----------
    n_outputs_ : number of target columns.
    n_features_in_, feature_names_in_, model_, trainer_, loss_curve_,
    n_iter_, t_ : as in ``NNClassifier``.
    """

    _loss = "mse"

    def _check_y(self, y):
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"y could not be read as numbers: {exc}") from None
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError(f"y has no target columns (shape {y.shape})")
        return y

    @_restores_inputs_on_failure
    def fit(self, X, y):
        """Train a new network on (X, y) for ``epochs`` epochs; returns self."""
        X, y = _validate(self, X, y, multi_output=True, y_numeric=True)
        y = self._check_y(y)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        self._fit(X, y, n_outputs, n_outputs_=n_outputs, _y_ndim=y.ndim)
        return self

    @_restores_inputs_on_failure
    def partial_fit(self, X, y):
        """One epoch over (X, y); later calls continue training the same network."""
        first = not hasattr(self, "model_")
        X, y = _validate(self, X, y, reset=first, multi_output=True, y_numeric=True)
        y = self._check_y(y)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if not first and n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} target column(s), but the first call "
                             f"to partial_fit/fit had {self.n_outputs_}")
        fitted = {"n_outputs_": n_outputs, "_y_ndim": y.ndim} if first else {}
        self._partial_fit(X, y, n_outputs, first, **fitted)
        return self

    def predict(self, X):
        """Predicted targets, float64: shape (n,) if ``fit`` saw a 1-D y,
        else (n, n_outputs_)."""
        out = self._output(X)
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
