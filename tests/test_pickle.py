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
