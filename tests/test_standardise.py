"""nnc.Standardiser: the lecture's input standardisation (section 9)."""
import pickle

import numpy as np
import pytest

import nnc


def test_formula_by_hand():
    X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    scaler = nnc.Standardiser().fit(X)
    # mu = (1+3+5)/3 = 3, sigma^2 = (4+0+4)/3 (biased, 1/N); the constant column: sigma 0
    np.testing.assert_allclose(scaler.mean, [3.0, 10.0])
    np.testing.assert_allclose(scaler.std, [np.sqrt(8 / 3), 0.0])
    s = np.sqrt(8 / 3)
    np.testing.assert_allclose(scaler.transform(X), [[-2 / s, 0], [0, 0], [2 / s, 0]])
    # new data with the training statistics, not its own
    np.testing.assert_allclose(scaler.transform([[7.0, 12.0]]), [[4 / s, 2.0]])


def test_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(0)
    X = rng.normal(50, 20, (200, 7)) * rng.uniform(0.01, 100, 7)
    X_test = rng.normal(50, 20, (30, 7))
    ours = nnc.Standardiser().fit(X)
    theirs = sklearn.StandardScaler().fit(X)
    np.testing.assert_allclose(ours.transform(X_test), theirs.transform(X_test), rtol=1e-12)
    np.testing.assert_allclose(ours.std, theirs.scale_, rtol=1e-12)


def test_standardised_columns_have_mean_0_and_std_1():
    rng = np.random.default_rng(1)
    X = (rng.normal(0, 1, (500, 4)) * [1e-3, 1, 1e3, 1e6] + [5, -5, 1e4, 0]).astype(np.float32)
    Z = nnc.Standardiser().fit_transform(X)
    assert Z.dtype == np.float32  # float32 in, float32 out (a model's default dtype)
    np.testing.assert_allclose(Z.mean(axis=0, dtype=np.float64), 0, atol=1e-6)
    np.testing.assert_allclose(Z.std(axis=0, dtype=np.float64), 1, rtol=1e-5)


def test_integers_and_vectors():
    scaler = nnc.Standardiser().fit(np.array([0, 2, 4, 6]))  # 1-D: one feature (targets, say)
    z = scaler.transform(np.array([0, 6]))
    assert z.dtype == np.float64 and z.shape == (2,)
    np.testing.assert_allclose(z, [-3 / np.sqrt(5), 3 / np.sqrt(5)])
    np.testing.assert_allclose(scaler.inverse_transform(z), [0.0, 6.0])
    # a model's regression output is a (n, 1) column: the same one feature
    np.testing.assert_allclose(scaler.inverse_transform(z[:, None]), [[0.0], [6.0]])
    with pytest.raises(ValueError, match=r"1-D vector \(or one column\)"):
        scaler.transform(np.zeros((2, 2)))


def test_inverse_transform_undoes_transform():
    rng = np.random.default_rng(2)
    X = rng.normal(3, 7, (50, 3))
    X[:, 1] = 4.25  # a constant feature is centred only, and comes back
    scaler = nnc.Standardiser().fit(X)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X, rtol=1e-12)
    restored = pickle.loads(pickle.dumps(scaler))
    np.testing.assert_array_equal(restored.transform(X), scaler.transform(X))


def test_training_on_standardised_features_learns():
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=0)
    scale = 10 ** np.random.default_rng(0).uniform(0, 2, 64)
    raw_train, raw_test = (X_train * scale + 50).astype(np.float32), (X_test * scale + 50).astype(np.float32)
    scaler = nnc.Standardiser().fit(raw_train)
    model = nnc.Sequential(nnc.Dense(64, 32), nnc.ReLU(), nnc.Dense(32, 10), seed=0)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=32, seed=0)
    trainer.fit(scaler.transform(raw_train), y_train, epochs=3, verbose=False)
    assert trainer.evaluate(scaler.transform(raw_test), y_test)["accuracy"] > 0.9


@pytest.mark.parametrize("bad, error, match", [
    (np.array([[1.0, np.nan]]), ValueError, "NaN"),
    (np.zeros((0, 2)), ValueError, "empty"),
    (np.zeros((2, 2, 2)), ValueError, "1-D .* or 2-D"),
    (np.array([["a", "b"]]), TypeError, "real numbers"),
    (None, TypeError, "X must be an array"),
    ([[1.0], [1.0, 2.0]], TypeError, "could not be read"),
])
def test_bad_input_to_fit(bad, error, match):
    with pytest.raises(error, match=match):
        nnc.Standardiser().fit(bad)


def test_bad_input_after_fit():
    scaler = nnc.Standardiser()
    with pytest.raises(RuntimeError, match="not fitted"):
        scaler.transform(np.zeros((1, 2)))
    scaler.fit(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match=r"shape \(1, 3\), expected 2 features"):
        scaler.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        scaler.inverse_transform(np.array([[np.inf, 0.0]]))
    tiny = nnc.Standardiser().fit(np.array([0, 1e-30], np.float32))
    with pytest.raises(ValueError, match="overflows float32"):
        tiny.transform(np.array([1e10], np.float32))



def test_huge_and_nearly_constant_columns_as_scikit_learn():
    sklearn = pytest.importorskip("sklearn.preprocessing")
    X = np.array([[1e20, 5.0], [1e20 + 131072, 5.0], [1e20 + 262144, 5.0]])
    ours, theirs = nnc.Standardiser().fit(X), sklearn.StandardScaler().fit(X)
    np.testing.assert_allclose(ours.std, [131072 * np.sqrt(2 / 3), 0.0], rtol=1e-12)  # 5: constant
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-12, atol=1e-12)
    # values whose squares (or sum, or spread) overflow float64 still standardise
    huge = nnc.Standardiser().fit(np.array([1e200, -1e200, 3e200]))
    np.testing.assert_allclose(huge.std, np.sqrt(8 / 3) * 1e200, rtol=1e-12)
    extreme = nnc.Standardiser().fit(np.array([1.7e308, -1.7e308]))
    np.testing.assert_allclose(extreme.transform(np.array([1.7e308, -1.7e308])), [1.0, -1.0])
    summed = nnc.Standardiser().fit(np.array([1.5e308, 1.5e308, 1.6e308]))
    assert np.isfinite(summed.mean) and summed.std > 0


def test_works_in_a_scikit_learn_pipeline():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = nnc.datasets.load_digits()
    X = X * 100 + 7
    pipe = make_pipeline(nnc.Standardiser(), LogisticRegression(max_iter=200))
    assert clone(pipe).fit(X[:1000], y[:1000]).score(X[1000:], y[1000:]) > 0.9
    with pytest.raises(ValueError, match="no parameters"):
        nnc.Standardiser().set_params(copy=False)
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    alone = Pipeline([("standardise", nnc.Standardiser())]).fit(X)  # as the last step
    np.testing.assert_allclose(alone.transform(X).mean(axis=0), 0, atol=1e-6)
    check_is_fitted(alone[-1])


def test_data_at_the_edge_of_float64_round_trips():
    """fit takes values near ±1.8e308 (their differences overflow); transform
    and inverse_transform of the same data must not refuse it."""
    X = np.array([[-1.7e308], [1.7e308], [1.7e308]])
    scaler = nnc.Standardiser().fit(X)
    z = scaler.transform(X)
    np.testing.assert_allclose(z.ravel(), [-np.sqrt(2), np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(z), X, rtol=1e-12)


def test_a_huge_constant_column_is_constant_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = nnc.Standardiser().fit(np.full(3, 1e200))
    assert scaler.std == 0 and (scaler.transform(np.full(3, 1e200)) == 0).all()
