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
    constant feature has σ = 0: it is only centred (divided by 1). 1-D
    input (regression targets, say) is one feature, and then ``(n, 1)``
    columns (``model.predict``'s) are read as that feature too;
    ``inverse_transform`` maps standardised predictions back to their units. ``transform`` returns
    float32 for float32 input and float64 otherwise (integers included).
    """

    def __init__(self):
        self.mean = None
        self.std = None

    def fit(self, X):
        x, _ = self._as_float64(X, "X")
        if x.shape[0] == 0:
            raise ValueError(f"X is empty (shape {x.shape}): at least one sample is needed "
                             "to measure a mean and a standard deviation")
        with np.errstate(over="ignore", invalid="ignore"):  # (refused below)
            mean = x.mean(axis=0)
            std = np.sqrt(np.mean(np.square(x - mean), axis=0))  # the biased σ, as on the slide
        # a constant column measures an σ of rounding error (~1e-16 |μ|), not 0
        constant = std <= 10 * np.finfo(np.float64).eps * np.abs(mean)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError("X has values too large to standardise (their mean or spread "
                             "overflows float64): rescale X first")
        self.mean, self.std = mean, np.where(constant, 0.0, std)
        self._width = x.shape[1:]
        return self

    def transform(self, X):
        """(X - μ) / σ (σ = 0 taken as 1)."""
        x, out_dtype = self._fitted_input(X, "X")
        return self._finite(lambda: (x - self.mean) / self._divisor(), out_dtype,
                            "(X - mean) / std")

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        """X σ + μ: standardised values (predictions of standardised
        targets, say) back in the data's units."""
        x, out_dtype = self._fitted_input(X, "X")
        return self._finite(lambda: x * self._divisor() + self.mean, out_dtype, "X * std + mean")

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
        one_feature = {x.shape[1:], self._width} == {(), (1,)}  # y and predict's (n, 1)
        if x.shape[1:] != self._width and not one_feature:
            expected = (f"{self._width[0]} features (shape (n, {self._width[0]}))"
                        if self._width else "a 1-D vector")
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
