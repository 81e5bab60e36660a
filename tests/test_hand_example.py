"""Small networks whose forward and backward passes are worked out by hand
(plain Python floats, no nnc and no NumPy in the expected values)."""
import math

import numpy as np
import pytest

import nnc

EXACT = dict(rel=1e-12, abs=1e-14)  # float64


def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


# The network: Dense(2, 2) -> Sigmoid -> Dense(2, 1), MSE, two samples.
W1 = [[0.1, -0.2],
      [0.3, 0.4]]          # W1[i][j]: input i -> hidden unit j
B1 = [0.05, -0.1]
W2 = [[0.5],
      [-0.6]]              # W2[j][0]: hidden unit j -> output
B2 = [0.2]
X = [[1.0, 2.0],
     [-0.5, 0.25]]
T = [[1.0],
     [0.0]]


def hand_forward_backward():
    """Every number of the example, computed step by step."""
    # hidden pre-activations z[s][j] = Σ_i X[s][i] W1[i][j] + B1[j]
    z = [[X[s][0] * W1[0][j] + X[s][1] * W1[1][j] + B1[j] for j in range(2)]
         for s in range(2)]
    # written out: sample 0: 1*0.1 + 2*0.3 + 0.05 = 0.75, 1*(-0.2) + 2*0.4 - 0.1 = 0.5
    #              sample 1: -0.05 + 0.075 + 0.05 = 0.075, 0.1 + 0.1 - 0.1 = 0.1
    for got, want in zip(sum(z, []), [0.75, 0.5, 0.075, 0.1]):
        assert got == pytest.approx(want, abs=1e-15)
    h = [[sig(z[s][j]) for j in range(2)] for s in range(2)]
    out = [[h[s][0] * W2[0][0] + h[s][1] * W2[1][0] + B2[0]] for s in range(2)]
    # MSE: mean over the 2 x 1 elements
    loss = ((out[0][0] - T[0][0]) ** 2 + (out[1][0] - T[1][0]) ** 2) / 2
    # dL/dout = 2 (out - t) / 2
    dout = [[2 * (out[s][0] - T[s][0]) / 2] for s in range(2)]
    dW2 = [[h[0][j] * dout[0][0] + h[1][j] * dout[1][0]] for j in range(2)]
    dB2 = [dout[0][0] + dout[1][0]]
    dh = [[dout[s][0] * W2[j][0] for j in range(2)] for s in range(2)]
    dz = [[dh[s][j] * h[s][j] * (1 - h[s][j]) for j in range(2)] for s in range(2)]
    dW1 = [[X[0][i] * dz[0][j] + X[1][i] * dz[1][j] for j in range(2)] for i in range(2)]
    dB1 = [dz[0][j] + dz[1][j] for j in range(2)]
    dX = [[dz[s][0] * W1[i][0] + dz[s][1] * W1[i][1] for i in range(2)] for s in range(2)]
    return dict(h=h, out=out, loss=loss, dout=dout, dW1=dW1, dB1=dB1, dW2=dW2, dB2=dB2, dX=dX)


def hand_model(backend):
    model = nnc.Sequential(nnc.Dense(2, 2), nnc.Sigmoid(), nnc.Dense(2, 1),
                           dtype="float64", backend=backend, seed=123)
    model.layers[0].params["W"][...] = W1
    model.layers[0].params["b"][...] = B1
    model.layers[2].params["W"][...] = W2
    model.layers[2].params["b"][...] = B2
    return model


def assert_matrix(actual, expected):
    actual = np.asarray(actual)
    flat_expected = np.ravel(expected).tolist()
    assert actual.shape == np.shape(expected)
    for got, want in zip(actual.ravel().tolist(), flat_expected):
        assert got == pytest.approx(want, **EXACT)


def test_hand_numbers_are_plausible():
    """The hand computation itself, against a few values worked out with a
    calculator: sigmoid(0.75) = 0.679178699175393, sigmoid(0.5) = 0.622459331201855."""
    ref = hand_forward_backward()
    assert ref["h"][0][0] == pytest.approx(0.679178699175393, abs=1e-14)
    assert ref["h"][0][1] == pytest.approx(0.622459331201855, abs=1e-14)
    # out0 = 0.5*0.679178699175393 - 0.6*0.622459331201855 + 0.2 = 0.166113750866583
    assert ref["out"][0][0] == pytest.approx(0.166113750866583, abs=1e-14)


def test_hand_forward_and_backward(backend_name):
    ref = hand_forward_backward()
    model = hand_model(backend_name)
    out = model.forward(np.array(X))
    assert_matrix(out, ref["out"])
    loss = nnc.MeanSquaredError(backend_name)
    assert loss.forward(out, np.array(T)) == pytest.approx(ref["loss"], **EXACT)
    dout = loss.backward()
    assert_matrix(dout, ref["dout"])
    dX = model.backward(dout)
    assert_matrix(dX, ref["dX"])
    assert_matrix(model.layers[0].grads["W"], ref["dW1"])
    assert_matrix(model.layers[0].grads["b"], ref["dB1"])
    assert_matrix(model.layers[2].grads["W"], ref["dW2"])
    assert_matrix(model.layers[2].grads["b"], ref["dB2"])


def test_hand_training_step(backend_name):
    """One Trainer step (full batch, no shuffle) is w - lr * g for every weight."""
    ref = hand_forward_backward()
    lr = 0.5
    model = hand_model(backend_name)
    trainer = nnc.Trainer(model, loss="mse", optimizer=nnc.SGD(lr=lr), batch_size=2)
    history = trainer.fit(np.array(X), np.array(T), epochs=1, shuffle=False, verbose=False)
    assert history.steps["loss"] == [pytest.approx(ref["loss"], **EXACT)]
    assert_matrix(model.layers[0].params["W"],
                  [[W1[i][j] - lr * ref["dW1"][i][j] for j in range(2)] for i in range(2)])
    assert_matrix(model.layers[0].params["b"], [B1[j] - lr * ref["dB1"][j] for j in range(2)])
    assert_matrix(model.layers[2].params["W"],
                  [[W2[j][0] - lr * ref["dW2"][j][0]] for j in range(2)])
    assert_matrix(model.layers[2].params["b"], [B2[0] - lr * ref["dB2"][0]])


def test_hand_sgd_step(backend_name):
    """SGD.step: w <- w - lr * g, on gradients written by hand; ``lr=`` overrides."""
    model = nnc.Sequential(nnc.Dense(2, 2), dtype="float64", backend=backend_name, seed=0)
    dense = model.layers[0]
    dense.params["W"][...] = [[1.0, -2.0], [0.5, 0.0]]
    dense.params["b"][...] = [0.25, -0.75]
    dense.grads["W"][...] = [[0.5, 1.0], [-4.0, 2.0]]
    dense.grads["b"][...] = [1.0, -0.5]
    opt = nnc.SGD(lr=0.1).bind(model)
    opt.step()
    assert_matrix(dense.params["W"], [[1.0 - 0.1 * 0.5, -2.0 - 0.1 * 1.0],
                                      [0.5 - 0.1 * -4.0, 0.0 - 0.1 * 2.0]])
    assert_matrix(dense.params["b"], [0.25 - 0.1 * 1.0, -0.75 - 0.1 * -0.5])
    assert opt.t == 1
    opt.step(lr=2.0)
    assert_matrix(dense.params["W"], [[0.95 - 2 * 0.5, -2.1 - 2 * 1.0],
                                      [0.9 - 2 * -4.0, -0.2 - 2 * 2.0]])
    assert_matrix(dense.params["b"], [0.15 - 2 * 1.0, -0.7 - 2 * -0.5])
    assert opt.t == 2


def test_sgd_step_unbound_raises():
    with pytest.raises(RuntimeError, match="bind"):
        nnc.SGD(lr=0.1).step()


# --- losses by hand ----------------------------------------------------------

def test_hand_softmax_cross_entropy(backend_name):
    logits = [[1.0, 2.0, 3.0],
              [1.0, 0.0, -1.0]]
    labels = [2, 0]
    # row 0: log(e^1 + e^2 + e^3) - 3 ; row 1: log(e^1 + e^0 + e^-1) - 1
    loss0 = math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3
    loss1 = math.log(math.exp(1) + math.exp(0) + math.exp(-1)) - 1
    expected = (loss0 + loss1) / 2
    # both rows equal log(1 + e^-1 + e^-2) = 0.4076059644443804
    assert expected == pytest.approx(0.4076059644443804, abs=1e-15)
    s0 = math.exp(1) + math.exp(2) + math.exp(3)
    s1 = math.exp(1) + math.exp(0) + math.exp(-1)
    grad = [[math.exp(1) / s0 / 2, math.exp(2) / s0 / 2, (math.exp(3) / s0 - 1) / 2],
            [(math.exp(1) / s1 - 1) / 2, math.exp(0) / s1 / 2, math.exp(-1) / s1 / 2]]
    loss = nnc.SoftmaxCrossEntropy(backend_name)
    assert loss.forward(np.array(logits), np.array(labels)) == pytest.approx(expected, **EXACT)
    assert_matrix(loss.backward(), grad)
    # float32 logits: same numbers to float32 precision
    value32 = loss.forward(np.array(logits, np.float32), labels)
    assert value32 == pytest.approx(expected, rel=1e-6)
    g32 = loss.backward()
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, grad, rtol=1e-6, atol=1e-7)


def test_hand_mse(backend_name):
    pred = [[1.0, 2.0], [3.0, 4.0]]
    target = [[0.0, 2.0], [1.0, 1.0]]
    # differences 1, 0, 2, 3: squares 1 + 0 + 4 + 9 = 14 over 4 elements
    loss = nnc.MeanSquaredError(backend_name)
    assert loss.forward(np.array(pred), np.array(target)) == pytest.approx(3.5, **EXACT)
    assert_matrix(loss.backward(), [[2 * 1 / 4, 0.0], [2 * 2 / 4, 2 * 3 / 4]])


def test_hand_bce_with_logits(backend_name):
    z = [[0.0, 2.0]]
    t = [[1.0, 0.0]]
    # element 0: -log σ(0) = log 2; element 1: -log(1 - σ(2)) = 2 + log(1 + e^-2)
    expected = (math.log(2) + 2 + math.log(1 + math.exp(-2))) / 2
    loss = nnc.BCEWithLogits(backend_name)
    assert loss.forward(np.array(z), np.array(t)) == pytest.approx(expected, **EXACT)
    assert_matrix(loss.backward(), [[(0.5 - 1) / 2, (sig(2.0) - 0) / 2]])


def test_loss_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="forward"):
        nnc.MeanSquaredError().backward()


def test_loss_backward_returns_a_copy(backend_name):
    loss = nnc.MeanSquaredError(backend_name)
    loss.forward(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    g = loss.backward()
    g[...] = 99
    np.testing.assert_array_equal(loss.backward(), [[1.0, 2.0]])
