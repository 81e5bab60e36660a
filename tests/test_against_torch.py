"""nnc against PyTorch through the README's conventions table (skipped
when torch is not installed; it is never a dependency)."""
import numpy as np
import pytest

import nnc

torch = pytest.importorskip("torch")


def trajectory_nnc(make, steps, grads, w0):
    w = np.array(w0, dtype=np.float64)
    g = np.zeros_like(w)
    optimizer = make().bind(w, g, "cython")
    for grad in grads[:steps]:
        g[...] = grad
        optimizer.step()
    return w


def trajectory_torch(make, steps, grads, w0):
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    optimizer = make([w])
    for grad in grads[:steps]:
        w.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    return w.detach().numpy()


RNG = np.random.default_rng(0)
GRADS = RNG.normal(size=(20, 50))
W0 = RNG.normal(size=50)
ALPHA, BETA = 0.1, 0.9

MAPPINGS = [
    ("sgd", lambda: nnc.SGD(lr=ALPHA), lambda p: torch.optim.SGD(p, lr=ALPHA), 1e-12),
    ("momentum", lambda: nnc.SGD(lr=ALPHA, momentum=BETA),
     lambda p: torch.optim.SGD(p, lr=ALPHA * (1 - BETA), momentum=BETA, dampening=0), 1e-12),
    ("nesterov", lambda: nnc.SGD(lr=ALPHA, momentum=BETA, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=ALPHA * (1 - BETA), momentum=BETA, nesterov=True), 1e-12),
    ("adam", lambda: nnc.Adam(lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2), 1e-12),
    ("adamw", lambda: nnc.AdamW(lr=1e-2, weight_decay=0.1),
     lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1), 1e-12),
    ("adagrad", lambda: nnc.Adagrad(lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1), 1e-12),
    # RMSprop: eps inside (nnc, lecture) vs outside (torch) the root; with
    # gradients of order 1 the difference is far below this tolerance
    ("rmsprop", lambda: nnc.RMSprop(lr=1e-2, rho=0.9, eps=1e-8),
     lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.9, eps=1e-8), 1e-6),
]


@pytest.mark.parametrize("name,ours,theirs,tol", MAPPINGS, ids=[m[0] for m in MAPPINGS])
def test_optimizer_matches_torch_through_the_mapping(name, ours, theirs, tol):
    np.testing.assert_allclose(trajectory_nnc(ours, 20, GRADS, W0),
                               trajectory_torch(theirs, 20, GRADS, W0), rtol=tol, atol=tol)


def test_momentum_with_dampening_agrees_after_the_first_step():
    """torch dampening=β starts its buffer at g (not (1-β)g): the two differ
    by the first step only; from then on the velocities follow one rule."""
    ours = nnc.SGD(lr=ALPHA, momentum=BETA)
    w = W0.copy()
    g = np.zeros_like(w)
    ours.bind(w, g, "cython")
    tw = torch.tensor(W0, requires_grad=True)
    theirs = torch.optim.SGD([tw], lr=ALPHA, momentum=BETA, dampening=BETA)
    for grad in GRADS[:5]:
        g[...] = grad
        ours.step()
        tw.grad = torch.tensor(grad)
        theirs.step()
    z_ours = ours.state["velocity"]
    buf = theirs.state[tw]["momentum_buffer"].numpy()
    # torch's buffer minus nnc's -z is β⁴ times the first-step difference g₁ - (1-β) g₁
    np.testing.assert_allclose(buf - (-z_ours), BETA ** 4 * BETA * GRADS[0], rtol=1e-10)


def build_pair(backend, batchnorm):
    layers = [nnc.Dense(6, 5, bias=not batchnorm)]
    layers += [nnc.BatchNorm(5, momentum=0.9)] if batchnorm else []
    layers += [nnc.Tanh(), nnc.Dense(5, 4), nnc.LeakyReLU(0.1), nnc.Dense(4, 3)]
    model = nnc.Sequential(*layers, dtype="float64", backend=backend, seed=0)
    modules = []
    for layer in model.layers:
        if isinstance(layer, nnc.Dense):
            linear = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias,
                                     dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
                if layer.bias:
                    linear.bias.copy_(torch.from_numpy(layer.params["b"].copy()))
            modules.append(linear)
        elif isinstance(layer, nnc.BatchNorm):
            modules.append(torch.nn.BatchNorm1d(layer.num_features, momentum=1 - layer.momentum,
                                                eps=layer.eps, dtype=torch.float64))
        elif isinstance(layer, nnc.Tanh):
            modules.append(torch.nn.Tanh())
        elif isinstance(layer, nnc.LeakyReLU):
            modules.append(torch.nn.LeakyReLU(layer.alpha))
    return model, torch.nn.Sequential(*modules)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("loss,torch_loss,targets", [
    ("softmax_cross_entropy", torch.nn.CrossEntropyLoss(), "labels"),
    ("mse", torch.nn.MSELoss(), "real"),
    ("bce_with_logits", torch.nn.BCEWithLogitsLoss(), "probabilities"),
])
def test_forward_backward_and_training_match_torch(backend, batchnorm, loss, torch_loss, targets):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8, 6))
    y = {"labels": rng.integers(0, 3, 8), "real": rng.normal(size=(8, 3)),
         "probabilities": rng.uniform(size=(8, 3))}[targets]
    model, net = build_pair(backend, batchnorm)
    trainer = nnc.Trainer(model, loss=loss, optimizer=nnc.Adam(1e-2), batch_size=8,
                          clip_norm=0.5)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    yt = torch.from_numpy(y)
    for _ in range(5):
        trainer.fit(X, y, epochs=1, shuffle=False, verbose=False)
        optimizer.zero_grad()
        value = torch_loss(net(torch.from_numpy(X)), yt)
        value.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        optimizer.step()
        assert trainer.history.steps["loss"][-1] == pytest.approx(value.item(), rel=1e-6)
    if batchnorm:
        bn, tbn = model.layers[1], net[1]
        np.testing.assert_allclose(bn.buffers["running_mean"], tbn.running_mean.numpy(),
                                   rtol=1e-5, atol=1e-8)
        # torch keeps the unbiased batch variance (× m/(m-1)) in its running average:
        # after k updates from 1, σ̂²_torch - 0.9^k = (m/(m-1)) (σ̂²_nnc - 0.9^k)
        k, m = 5, 8
        np.testing.assert_allclose(tbn.running_var.numpy() - 0.9 ** k,
                                   m / (m - 1) * (bn.buffers["running_var"] - 0.9 ** k),
                                   rtol=1e-5, atol=1e-8)
        with torch.no_grad():  # same statistics, then evaluation must agree
            tbn.running_var.copy_(torch.from_numpy(bn.buffers["running_var"].copy()))
    net.eval()
    model.eval()
    np.testing.assert_allclose(model.predict(X), net(torch.from_numpy(X)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
