"""Input standardisation, the lecture's section 9 before batch-norm:

    μ_j = 1/N Σ_i x_j⁽ⁱ⁾;   σ_j² = 1/N Σ_i (x_j⁽ⁱ⁾ - μ_j)²;   x̃_j⁽ⁱ⁾ = (x_j⁽ⁱ⁾ - μ_j) / σ_j

μ and σ come from the training set and are then applied unchanged to
validation and test data (statistics taken from the test set would leak
it into the model). The same computation as scikit-learn's
``StandardScaler``; ``BatchNorm`` does it per mini-batch inside the network.
"""
import numpy as np

from nnc._validation import all_finite, as_array, as_finite


class Standardiser:
    """Scale every feature (column) to mean 0 and variance 1.

    >>> scaler = nnc.Standardiser().fit(X_train)
    >>> trainer.fit(scaler.transform(X_train), y_train)
    >>> model.predict(scaler.transform(X_test))

    After ``fit``: ``mean`` (μ) and ``std`` (σ), one value per feature. A
    constant feature (σ within the rounding of its mean, scikit-learn's
    rule) has σ = 0 and is only centred. 1-D input (regression targets,
    say) is one feature, and then ``(n, 1)`` columns (``model.predict``'s)
    are read as that feature too; ``inverse_transform`` maps standardised
    predictions back to their units. ``transform`` returns float32 for
    float32 input and float64 otherwise. Unlike ``StandardScaler`` it
    refuses NaN (nnc's models do too) and booleans. It fits in a
    scikit-learn ``Pipeline`` (``fit(X, y=None)``, no hyper-parameters).
    """

    def __init__(self):
        self.mean = None
        self.std = None

    def fit(self, X, y=None):
        """μ and σ of every column of X (``y`` is ignored, as in scikit-learn)."""
        x, _ = self._as_float64(X, "X")
        if x.shape[0] == 0:
            raise ValueError(f"X is empty (shape {x.shape}): at least one sample is needed "
                             "to measure a mean and a standard deviation")
        n, eps = x.shape[0], np.finfo(np.float64).eps
        with np.errstate(over="ignore", invalid="ignore"):
            mean = x.mean(axis=0)
            if not all_finite(mean):  # a sum beyond float64's range
                mean = np.sum(x / n, axis=0)
            deviation, unit = x - mean, 1.0
            if not all_finite(deviation):  # values spanning more than float64's range
                deviation, unit = x / 2 - mean / 2, 2.0
        # σ² in units of each column's largest |deviation|: no square overflows
        largest = np.max(np.abs(deviation), axis=0)
        largest = np.where(largest > 0, largest, 1.0)
        variance = np.mean(np.square(deviation / largest), axis=0)  # biased, as on the slide
        # the variance of a constant column is rounding error (scikit-learn's bound;
        # inf for a huge constant column, whose largest deviation is 0: constant)
        with np.errstate(over="ignore"):
            constant = variance <= n * eps * variance + (n * (mean / largest / unit) * eps) ** 2
        self.mean = mean
        self.std = np.where(constant, 0.0, np.sqrt(variance) * largest * unit)
        return self

    def transform(self, X):
        """(X - μ) / σ (σ = 0 taken as 1)."""
        x, out_dtype = self._fitted_input(X, "X")
        return self._finite(lambda: self._standardised(x), out_dtype, "(X - mean) / std")

    def _restored(self, x):
        divisor = self._divisor()
        x_out = x * divisor + self.mean
        overflowed = np.isinf(x_out) & np.isfinite(x)
        if overflowed.any():  # x σ beyond float64 while x σ + μ is not
            x_out = np.where(overflowed, (x + self.mean / divisor) * divisor, x_out)
        return x_out

    def _standardised(self, x):
        divisor = self._divisor()
        z = (x - self.mean) / divisor
        overflowed = np.isinf(z) & np.isfinite(x)
        if overflowed.any():  # x - μ beyond float64 (|x|, |μ| near 1e308, as fit allows)
            z = np.where(overflowed, x / divisor - self.mean / divisor, z)
        return z

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        """X σ + μ: standardised values (predictions of standardised
        targets, say) back in the data's units."""
        x, out_dtype = self._fitted_input(X, "X")
        return self._finite(lambda: self._restored(x), out_dtype, "X * std + mean")

    # scikit-learn's estimator protocol (clone, Pipeline, check_is_fitted);
    # scikit-learn is imported only when it asks
    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        if params:
            raise ValueError(f"Standardiser has no parameters, got {sorted(params)}")
        return self

    def __sklearn_is_fitted__(self):
        return self.mean is not None

    def __sklearn_tags__(self):
        from sklearn.base import BaseEstimator, TransformerMixin

        class Transformer(TransformerMixin, BaseEstimator):
            pass

        return Transformer().__sklearn_tags__()

    @staticmethod
    def _finite(compute, dtype, formula):
        with np.errstate(over="ignore", invalid="ignore"):
            result = compute().astype(dtype, copy=False)
        if not all_finite(result):
            raise ValueError(f"{formula} overflows {np.dtype(dtype).name} for some values of X: "
                             "X is far outside the range the Standardiser was fitted on")
        return result

    def _divisor(self):
        return np.where(self.std > 0, self.std, 1.0)

    def _fitted_input(self, X, name):
        if self.mean is None:
            raise RuntimeError("this Standardiser is not fitted yet: call fit(X_train) first")
        x, dtype = self._as_float64(X, name)
        features = x.shape[1] if x.ndim == 2 else 1
        fitted = self.mean.size
        if features != fitted:
            expected = (f"{fitted} features (shape (n, {fitted}))" if self.mean.ndim
                        else "a 1-D vector (or one column)")
            raise ValueError(f"{name} has shape {x.shape}, expected {expected}: the shape "
                             "the Standardiser was fitted on")
        return x, np.float32 if dtype == np.float32 else np.float64

    @staticmethod
    def _as_float64(X, name):
        x = as_array(X, name)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers (float or int), got dtype "
                            f"{x.dtype.name}")
        if x.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D (one feature) or 2-D (samples, features), "
                             f"got shape {x.shape}")
        return as_finite(x, name, np.float64), x.dtype

    def __repr__(self):
        fitted = f"fitted on {self.mean.size} feature(s)" if self.mean is not None else "not fitted"
        return f"Standardiser({fitted})"
