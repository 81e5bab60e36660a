"""Models survive pickle and deepcopy with their flat-buffer layout intact."""
import copy
import pickle

import numpy as np
import pytest

import nnc


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("clone", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))],
                         ids=["deepcopy", "pickle"])
def test_clone_predicts_the_same_and_still_trains_through_its_flat_buffer(backend, clone):
    X, y = nnc.datasets.load_digits()
    model = nnc.Sequential(nnc.Dense(64, 16, bias=False), nnc.BatchNorm(16), nnc.ReLU(),
                           nnc.Dense(16, 10), backend=backend, seed=0)
    nnc.Trainer(model, optimizer=nnc.Adam(1e-2)).fit(X[:200], y[:200], verbose=False)
    twin = clone(model)
    np.testing.assert_array_equal(twin.predict(X[:50]), model.predict(X[:50]))
    for key, view in twin.params.items():
        assert np.shares_memory(view, twin.flat_params), key
        assert twin.layers[int(key.split(".")[0])].params[key.split(".")[1]] is view
    before = model.flat_params.copy()
    trainer = nnc.Trainer(twin, optimizer=nnc.SGD(0.1))
    trainer.fit(X[:200], y[:200], verbose=False)
    np.testing.assert_array_equal(model.flat_params, before)  # the original is untouched
    assert trainer.evaluate(X[:200], y[:200])["accuracy"] > 0.5
    assert not np.array_equal(twin.predict(X[:50]), model.predict(X[:50]))


def test_unbuilt_layer_says_it_needs_a_model():
    with pytest.raises(RuntimeError, match="Sequential"):
        nnc.Dense(3, 2).forward(np.ones((2, 3), np.float32))


def test_layers_and_models_pickled_before_their_checked_attributes_load():
    """Before this version Dense/BatchNorm kept in_features, out_features,
    bias, num_features and the model its training flag as plain attributes."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nnc.Sequential(nnc.Dense(3, 4), nnc.BatchNorm(4), nnc.Dense(4, 2), seed=0)
    old = copy.deepcopy(model)
    for obj in [old] + old.layers:  # the attributes as an older nnc stored them
        for name in ("_training", "_in_features", "_out_features", "_bias", "_num_features"):
            if name in obj.__dict__:
                obj.__dict__[name[1:]] = obj.__dict__.pop(name)
    revived = pickle.loads(pickle.dumps(old))
    assert revived.layers[0].in_features == 3 and revived.layers[1].num_features == 4
    assert revived.training is True
    X = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(revived.predict(X), model.predict(X))
    with pytest.raises(AttributeError, match="cannot change once the layer is in a model"):
        revived.layers[2].out_features = 5
