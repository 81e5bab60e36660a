"""More cross-checks of nnc against PyTorch, through the conventions of
README.md / nnc/optim.py (skipped when torch is not installed).

tests/test_against_torch.py checks the optimizers on the cython backend in
float64 with mostly default hyper-parameters and one Adam training run per
loss; this file adds both backends and both dtypes for every layer's
gradients, the losses at edge values, every optimizer with non-default
hyper-parameters and a varying learning rate, the Trainer's clipping, L2
and schedules, and the initialisers' statistics.

Tolerances: float64 ~1e-10 relative, float32 ~1e-5 (relative to the
largest entry of the reference array, so that entries that cancel to ~0 do
not count as relative errors of order 1).
"""
import copy
from types import SimpleNamespace

import numpy as np
import pytest

import nnc
from nnc import schedules
from nnc.callbacks import Callback

torch = pytest.importorskip("torch")
F = torch.nn.functional

BACKENDS = ["cython", "numpy"]
DTYPES = ["float32", "float64"]


def tol_for(dtype):
    return 1e-5 if dtype == "float32" else 1e-10


def torch_dtype(dtype):
    return torch.float32 if dtype == "float32" else torch.float64


def t(array, dtype=None):
    array = np.ascontiguousarray(array)
    return torch.tensor(array, dtype=None if dtype is None else torch_dtype(dtype))


def close(actual, expected, tol, atol=0.0):
    """|actual - expected| <= tol * max|expected| + atol, elementwise."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale + atol)


def linear_like(layer, dtype):
    """A torch.nn.Linear holding the weights of an nnc Dense (W is (in, out))."""
    linear = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias,
                             dtype=torch_dtype(dtype))
    with torch.no_grad():
        linear.weight.copy_(t(layer.params["W"].T))
        if layer.bias:
            linear.bias.copy_(t(layer.params["b"]))
    return linear


# --- layers -----------------------------------------------------------------

ACTIVATIONS = {
    "dense": (lambda: None, lambda: None),
    "relu": (nnc.ReLU, torch.nn.ReLU),
    "leaky_relu_0.3": (lambda: nnc.LeakyReLU(0.3), lambda: torch.nn.LeakyReLU(0.3)),
    "leaky_relu_-0.5": (lambda: nnc.LeakyReLU(-0.5), lambda: torch.nn.LeakyReLU(-0.5)),
    "sigmoid": (nnc.Sigmoid, torch.nn.Sigmoid),
    "tanh": (nnc.Tanh, torch.nn.Tanh),
}


def compare_forward_backward(model, net, X, dY, tol):
    """nnc's output, input gradient and first-layer weight gradient against
    torch's for the output gradient dY."""
    out = model.forward(X)
    dX = model.backward(dY)
    xt = t(X).requires_grad_(True)
    yt = net(xt)
    yt.backward(t(dY))
    close(out, yt.detach().numpy(), tol)
    close(dX, xt.grad.numpy(), tol)
    close(model.layers[0].grads["W"], net[0].weight.grad.numpy().T, tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_dense_and_activation_gradients_match_torch(backend, dtype, activation):
    """Dense with and without bias, then the activation: output, dL/dX, dW, db."""
    ours, theirs = ACTIVATIONS[activation]
    rng = np.random.default_rng(0)
    tol = tol_for(dtype)
    for bias in (True, False):
        act = ours()
        model = nnc.Sequential(nnc.Dense(4, 5, bias=bias), *([act] if act else []),
                               dtype=dtype, backend=backend, seed=0)
        if bias:
            model.layers[0].params["b"][...] = np.linspace(-1, 1, 5)
        net = torch.nn.Sequential(linear_like(model.layers[0], dtype),
                                  *([theirs()] if act else []))
        X = (rng.normal(size=(6, 4)) * 3).astype(dtype)
        X[0] = 0  # exact zeros before the activation (without a bias): ReLU/LeakyReLU kinks
        dY = rng.normal(size=(6, 5)).astype(dtype)
        compare_forward_backward(model, net, X, dY, tol)
        if bias:
            close(model.layers[0].grads["b"], net[0].bias.grad.numpy(), tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 3, 1), (2, 1, 4), (1, 5, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_tiny_shapes_match_torch(backend, shape):
    """Batch of 1, one input feature, one output column (float64)."""
    n, fan_in, fan_out = shape
    model = nnc.Sequential(nnc.Dense(fan_in, fan_out), nnc.Sigmoid(), nnc.Dense(fan_out, 1),
                           dtype="float64", backend=backend, seed=0)
    net = torch.nn.Sequential(linear_like(model.layers[0], "float64"), torch.nn.Sigmoid(),
                              linear_like(model.layers[2], "float64"))
    rng = np.random.default_rng(1)
    X, dY = rng.normal(size=(n, fan_in)), rng.normal(size=(n, 1))
    out = model.forward(X)
    dX = model.backward(dY)
    xt = t(X).requires_grad_(True)
    yt = net(xt)
    yt.backward(t(dY))
    close(out, yt.detach().numpy(), 1e-12)
    close(dX, xt.grad.numpy(), 1e-12)
    for i in (0, 2):
        close(model.layers[i].grads["W"], net[i].weight.grad.numpy().T, 1e-12)
        close(model.layers[i].grads["b"], net[i].bias.grad.numpy(), 1e-12)


def batchnorm_pair(backend, dtype, rho, eps):
    model = nnc.Sequential(nnc.Dense(3, 4, bias=False), nnc.BatchNorm(4, momentum=rho, eps=eps),
                           dtype=dtype, backend=backend, seed=1)
    bn = model.layers[1]
    bn.params["gamma"][...] = [0.5, 1.5, -2.0, 1.0]
    bn.params["beta"][...] = [0.1, -0.2, 0.3, 0.0]
    model.layers[0].params["W"][:, 2] = 0  # feature 2 is constant: zero batch variance
    tbn = torch.nn.BatchNorm1d(4, momentum=1 - rho, eps=eps, dtype=torch_dtype(dtype))
    with torch.no_grad():
        tbn.weight.copy_(t(bn.params["gamma"]))
        tbn.bias.copy_(t(bn.params["beta"]))
    return model, torch.nn.Sequential(linear_like(model.layers[0], dtype), tbn)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_training_steps_running_stats_and_eval_match_torch(backend, dtype):
    """ρ = 0.7 ↔ torch momentum 0.3; torch keeps the unbiased variance in
    its running average (README's conventions table), everything else is identical."""
    rho, eps, m, steps = 0.7, 1e-3, 6, 5
    model, net = batchnorm_pair(backend, dtype, rho, eps)
    bn, tbn = model.layers[1], net[1]
    tol = tol_for(dtype)
    rng = np.random.default_rng(2)
    for _ in range(steps):
        X = (rng.normal(size=(m, 3)) * 2 + 1).astype(dtype)
        dY = rng.normal(size=(m, 4)).astype(dtype)
        model.train()
        net.train()
        net.zero_grad()
        compare_forward_backward(model, net, X, dY, tol)
        close(bn.grads["gamma"], tbn.weight.grad.numpy(), tol)
        close(bn.grads["beta"], tbn.bias.grad.numpy(), tol)
    close(bn.buffers["running_mean"], tbn.running_mean.numpy(), tol, atol=tol)
    # from σ̂²₀ = 1: torch - ρᵏ = m/(m-1) (nnc - ρᵏ)
    close(tbn.running_var.numpy() - rho ** steps,
          m / (m - 1) * (bn.buffers["running_var"] - rho ** steps), tol, atol=tol)
    with torch.no_grad():
        tbn.running_var.copy_(t(bn.buffers["running_var"]))
    X = rng.normal(size=(5, 3)).astype(dtype)
    model.eval()
    net.eval()
    close(model.predict(X), net(t(X)).detach().numpy(), tol)
    close(model.forward(X), net(t(X)).detach().numpy(), tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_backward_in_eval_mode_matches_torch(backend):
    """In evaluation mode batch-norm is the affine map γ (z - μ̂)/sqrt(σ̂² + ε) + β;
    torch back-propagates through it (input gradients of a trained network,
    fine-tuning with frozen statistics), and so does nnc."""
    rho, eps = 0.7, 1e-3
    model, net = batchnorm_pair(backend, "float64", rho, eps)
    bn, tbn = model.layers[1], net[1]
    bn.buffers["running_mean"][...] = [0.3, -0.1, 0.0, 2.0]
    bn.buffers["running_var"][...] = [0.5, 2.0, 1.0, 0.1]
    with torch.no_grad():
        tbn.running_mean.copy_(t(bn.buffers["running_mean"]))
        tbn.running_var.copy_(t(bn.buffers["running_var"]))
    rng = np.random.default_rng(3)
    X, dY = rng.normal(size=(4, 3)), rng.normal(size=(4, 4))
    model.eval()
    net.eval()
    out = model.forward(X)
    xt = t(X).requires_grad_(True)
    yt = net(xt)
    yt.backward(t(dY))
    close(out, yt.detach().numpy(), 1e-12)
    dX = model.backward(dY)  # RuntimeError today
    close(dX, xt.grad.numpy(), 1e-12)
    close(model.layers[0].grads["W"], net[0].weight.grad.numpy().T, 1e-12)
    close(bn.grads["gamma"], tbn.weight.grad.numpy(), 1e-12)
    close(bn.grads["beta"], tbn.bias.grad.numpy(), 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.3, 0.9])
def test_dropout_with_nncs_mask_matches_torch(backend, dtype, p):
    """Inverted dropout: torch's x * mask / (1-p) with nnc's mask [u >= p]."""
    model = nnc.Sequential(nnc.Dense(4, 6), nnc.Dropout(p), dtype=dtype, backend=backend, seed=3)
    rng = np.random.default_rng(4)
    X, dY = rng.normal(size=(5, 4)).astype(dtype), rng.normal(size=(5, 6)).astype(dtype)
    out = model.forward(X)
    dX = model.backward(dY)
    dropout = model.layers[1]
    mask = t(dropout._u >= p, dtype)
    linear = linear_like(model.layers[0], dtype)
    xt = t(X).requires_grad_(True)
    yt = linear(xt) * mask / (1 - p)
    yt.backward(t(dY))
    tol = tol_for(dtype)
    close(out, yt.detach().numpy(), tol)
    close(dX, xt.grad.numpy(), tol)
    close(model.layers[0].grads["W"], linear.weight.grad.numpy().T, tol)
    close(model.layers[0].grads["b"], linear.bias.grad.numpy(), tol)
    model.eval()
    close(model.predict(X), linear(t(X)).detach().numpy(), tol)


# --- losses -----------------------------------------------------------------

def loss_cases():
    rng = np.random.default_rng(5)
    cases = []
    for n, k in [(1, 1), (1, 3), (5, 1), (4, 3), (33, 7)]:
        normal = rng.normal(size=(n, k)) * 3
        huge = np.where(rng.uniform(size=(n, k)) < 0.5, 100.0, -100.0)
        for tag, Z in (("normal", normal), ("pm100", huge)):
            cases.append((f"sce-{tag}-{n}x{k}", "softmax_cross_entropy", Z,
                          rng.integers(0, k, n)))
            cases.append((f"sce-{tag}-{n}x{k}-worst", "softmax_cross_entropy", Z,
                          np.argmin(Z, axis=1)))
            cases.append((f"mse-{tag}-{n}x{k}", "mse", Z, rng.normal(size=(n, k))))
            for name, y in (("soft", rng.uniform(size=(n, k))), ("zeros", np.zeros((n, k))),
                            ("ones", np.ones((n, k))), ("right", (Z > 0) * 1.0),
                            ("wrong", (Z < 0) * 1.0)):
                cases.append((f"bce-{tag}-{n}x{k}-{name}", "bce_with_logits", Z, y))
    return cases


LOSS_CASES = loss_cases()
TORCH_LOSSES = {"softmax_cross_entropy": F.cross_entropy, "mse": F.mse_loss,
                "bce_with_logits": F.binary_cross_entropy_with_logits}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_and_gradients_match_torch_at_edge_values(backend, dtype):
    """Logits ±100, targets exactly 0/1, a batch of 1, one output column.
    (At logits ±100 with the right BCE target the loss is ~4e-44: the
    absolute tolerance 1e-30 lets nnc's log1p, which is exact there, and
    torch's value differ; float32 nnc flushes it to 0.)"""
    tol = tol_for(dtype)
    for label, name, Z, y in LOSS_CASES:
        loss = nnc.losses.get_loss(name, backend)
        Z = Z.astype(dtype)
        y = y if name == "softmax_cross_entropy" else y.astype(dtype)
        value = loss.forward(Z, y)
        grad = loss.backward()
        zt = t(Z).requires_grad_(True)
        expected = TORCH_LOSSES[name](zt, t(y))
        expected.backward()
        np.testing.assert_allclose(value, expected.item(), rtol=tol, atol=1e-30, err_msg=label)
        np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=tol,
                                   atol=tol * float(np.abs(zt.grad.numpy()).max()) + 1e-30,
                                   err_msg=label)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_elementwise_over_a_grid(backend, dtype):
    """Each element alone (batch 1, one column): the float32 kernels use
    polynomial exp/log1p, which must stay within the float32 tolerance.
    The loss is held to the exact max(z,0) - z t + log1p(e^{-|z|}) (in float64
    from the same inputs); torch's loss only to a few absolute dtype epsilons,
    because torch loses the small term (at z = -30, t = 0 it gives 9.237e-14
    in float64 where the exact value, and nnc's, is 9.358e-14; at z = -15 in
    float32 it gives 0 instead of 3.06e-7). Gradients are held to torch's."""
    loss = nnc.losses.get_loss("bce_with_logits", backend)
    tol = tol_for(dtype)
    for z in np.concatenate([np.linspace(-30, 30, 41), [-88.0, 88.0, 1e-8, 0.0]]):
        for target in (0.0, 1.0, 0.3):
            Z, y = np.array([[z]], dtype), np.array([[target]], dtype)
            zz, tt = float(Z[0, 0]), float(y[0, 0])
            exact = max(zz, 0.0) - zz * tt + np.log1p(np.exp(-abs(zz)))
            value = loss.forward(Z, y)
            zt = t(Z).requires_grad_(True)
            expected = F.binary_cross_entropy_with_logits(zt, t(y))
            expected.backward()
            where = f"z={z}, t={target}"
            np.testing.assert_allclose(value, exact, rtol=tol, atol=1e-30, err_msg=where)
            np.testing.assert_allclose(value, expected.item(), rtol=tol,
                                       atol=16 * float(np.finfo(dtype).eps), err_msg=where)
            np.testing.assert_allclose(loss.backward(), zt.grad.numpy(), rtol=tol, atol=1e-30,
                                       err_msg=where)


# --- optimizers ---------------------------------------------------------------

STEPS = 25
_rng = np.random.default_rng(6)
GRADS = _rng.normal(size=(STEPS, 30)) * np.linspace(0.1, 2.0, 30)
GRADS[:, 0] = 0.0  # one parameter whose gradient is always zero
W0 = _rng.normal(size=30)
LRS = 1 + 0.5 * np.sin(np.arange(STEPS))  # a varying learning-rate factor (a schedule)
A, B = 0.2, 0.7  # nnc's α and β for momentum

OPTIMIZERS = {
    # name: (nnc optimizer, torch optimizer factory, base lr of torch,
    #        torch lr = factor * this, per the documented mapping)
    "sgd": (lambda: nnc.SGD(lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05), 0.05),
    "momentum": (lambda: nnc.SGD(lr=A, momentum=B),
                 lambda p: torch.optim.SGD(p, lr=A * (1 - B), momentum=B, dampening=0),
                 A * (1 - B)),
    "nesterov": (lambda: nnc.SGD(lr=A, momentum=B, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=A * (1 - B), momentum=B, nesterov=True),
                 A * (1 - B)),
    # ε inside (nnc) or outside (torch) the root: with ε below every r the two agree
    "rmsprop-tiny-eps": (lambda: nnc.RMSprop(lr=0.01, rho=0.8, eps=1e-30),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.8, eps=1e-30), 0.01),
    "adam": (lambda: nnc.Adam(lr=0.02, beta1=0.8, beta2=0.99, eps=1e-6),
             lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6), 0.02),
    "adam-b1=0-b2=0": (lambda: nnc.Adam(lr=0.01, beta1=0.0, beta2=0.0, eps=1e-3),
                       lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.0, 0.0), eps=1e-3), 0.01),
    "adamw": (lambda: nnc.AdamW(lr=0.02, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.3),
              lambda p: torch.optim.AdamW(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                                          weight_decay=0.3), 0.02),
    "adagrad": (lambda: nnc.Adagrad(lr=0.3, eps=1e-3),
                lambda p: torch.optim.Adagrad(p, lr=0.3, eps=1e-3), 0.3),
}


def nnc_trajectory(make, backend, dtype, lr_factors):
    w = W0.astype(dtype)
    g = np.zeros_like(w)
    optimizer = make().bind(w, g, backend)
    for step in range(STEPS):
        g[...] = GRADS[step]
        optimizer.step(None if lr_factors is None else float(optimizer.lr * lr_factors[step]))
    return w


def torch_trajectory(make, base_lr, dtype, lr_factors):
    w = torch.tensor(W0, dtype=torch_dtype(dtype), requires_grad=True)
    optimizer = make([w])
    for step in range(STEPS):
        if lr_factors is not None:
            optimizer.param_groups[0]["lr"] = base_lr * lr_factors[step]
        w.grad = torch.tensor(GRADS[step], dtype=torch_dtype(dtype))
        optimizer.step()
    return w.detach().numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_trajectories_match_torch_through_the_mapping(backend, dtype, name):
    """25 steps with a constant learning rate, then 25 with a varying one
    (as a schedule gives it: ``step(lr)``, and torch's param_group lr)."""
    ours, theirs, base_lr = OPTIMIZERS[name]
    tol = 1e-10 if dtype == "float64" else 2e-5
    for factors in (None, LRS):
        close(nnc_trajectory(ours, backend, dtype, factors),
              torch_trajectory(theirs, base_lr, dtype, factors), tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rmsprop_keeps_eps_inside_the_root_where_r_is_tiny(backend, dtype):
    """nnc: w -= α g/sqrt(r + ε), as documented; torch's g/(sqrt(r) + ε)
    moves the small-gradient coordinates much further."""
    g0 = np.array([1e-6, 1e-4, 0.0, 1.0, -3e-5])
    w = np.zeros(5, dtype)
    g = np.zeros_like(w)
    optimizer = nnc.RMSprop(lr=0.01, rho=0.9, eps=1e-8).bind(w, g, backend)
    r, by_hand = np.zeros(5), np.zeros(5)
    wt = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    theirs = torch.optim.RMSprop([wt], lr=0.01, alpha=0.9, eps=1e-8)
    for step in range(20):
        grad = g0 * (1 + 0.1 * step)
        g[...] = grad
        optimizer.step()
        r = 0.9 * r + 0.1 * grad * grad
        by_hand -= 0.01 * grad / np.sqrt(r + 1e-8)
        wt.grad = torch.tensor(grad)
        theirs.step()
    np.testing.assert_allclose(w, by_hand, rtol=tol_for(dtype) * 10, atol=0)
    torch_w = wt.detach().numpy()
    assert abs(torch_w[0]) > 50 * abs(w[0])  # the documented difference, where r << ε
    np.testing.assert_allclose(torch_w[3], w[3], rtol=1e-6)  # and none where r >> ε


# --- Trainer: clipping, L2, schedules ------------------------------------------

X_TRAIN = np.random.default_rng(7).normal(size=(8, 5))
Y_TRAIN = np.random.default_rng(8).integers(0, 3, 8)


def trainer_pair(backend, dtype, batchnorm=False):
    layers = [nnc.Dense(5, 6, bias=not batchnorm)]
    layers += [nnc.BatchNorm(6)] if batchnorm else []
    layers += [nnc.Tanh(), nnc.Dense(6, 3)]
    model = nnc.Sequential(*layers, dtype=dtype, backend=backend, seed=0)
    rng = np.random.default_rng(9)
    modules = []
    for layer in model.layers:
        if isinstance(layer, nnc.Dense):
            if layer.bias:
                layer.params["b"][...] = rng.normal(size=layer.out_features)
            modules.append(linear_like(layer, dtype))
        elif isinstance(layer, nnc.BatchNorm):
            modules.append(torch.nn.BatchNorm1d(6, momentum=1 - layer.momentum, eps=layer.eps,
                                                dtype=torch_dtype(dtype)))
        else:
            modules.append(torch.nn.Tanh())
    return model, torch.nn.Sequential(*modules)


def flat_torch_params(net):
    return np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])


def flat_nnc_params(model):
    """The parameters in torch's order (weight (out, in), then bias / gamma, beta)."""
    parts = []
    for layer in model.layers:
        for key in ("W", "b", "gamma", "beta"):
            if key in layer.params:
                value = layer.params[key]
                parts.append((value.T if key == "W" else value).ravel())
    return np.concatenate(parts)


def run_pair(backend, dtype, optimizer, torch_optimizer, steps=20, l2=0.0, clip_norm=None,
             clip_value=None, exact_clip=True, schedule=None, torch_schedule=None,
             batchnorm=False, l2_as_weight_decay=False):
    """The same full-batch training in nnc (Trainer) and torch (by hand);
    returns (nnc history steps, torch losses, torch pre-clip norms, torch
    per-layer norms, model, net)."""
    model, net = trainer_pair(backend, dtype, batchnorm)
    trainer = nnc.Trainer(model, loss="softmax_cross_entropy", optimizer=optimizer,
                          batch_size=8, l2=l2, clip_norm=clip_norm, clip_value=clip_value,
                          schedule=schedule)
    weights = [m.weight for m in net if isinstance(m, torch.nn.Linear)]
    if l2_as_weight_decay:  # torch's coupled weight_decay on the weights only
        others = [p for p in net.parameters() if all(p is not w for w in weights)]
        opt = torch_optimizer([{"params": weights, "weight_decay": l2},
                               {"params": others, "weight_decay": 0.0}])
    else:
        opt = torch_optimizer(net.parameters())
    scheduler = torch_schedule(opt) if torch_schedule else None
    X, y = t(X_TRAIN, dtype), torch.tensor(Y_TRAIN)
    losses, norms, layer_norms = [], [], []
    for _ in range(steps):
        trainer.fit(X_TRAIN, Y_TRAIN, epochs=1, shuffle=False, verbose=False)
        opt.zero_grad()
        loss = F.cross_entropy(net(X), y)
        if l2 and not l2_as_weight_decay:  # nnc's λR(w), R = ½ Σ w² over weights
            loss = loss + l2 / 2 * sum((w ** 2).sum() for w in weights)
        loss.backward()
        grads = [p.grad for p in net.parameters()]
        norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
        norms.append(norm)
        layer_norms.append([float(torch.sqrt(sum((p.grad.double() ** 2).sum()
                                                 for p in m.parameters())))
                            for m in net if list(m.parameters())])
        if clip_norm is not None:
            if exact_clip:  # the documented rule: rescale to norm clip_norm when above
                if norm > clip_norm:
                    for g in grads:
                        g.mul_(clip_norm / norm)
            else:
                returned = torch.nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
                assert returned.item() == pytest.approx(norm, rel=1e-6)
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(net.parameters(), clip_value)
        opt.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return trainer.history.steps, losses, norms, layer_norms, model, net


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["clip_norm", "clip_value", "clip_both", "l2", "l2-adam",
                                  "l2-batchnorm-momentum", "adamw-l2-clip"])
def test_trainer_clipping_and_l2_match_torch(backend, dtype, case):
    sgd = (nnc.SGD(0.3), lambda p: torch.optim.SGD(p, lr=0.3))
    kwargs = {
        "clip_norm": dict(optimizer=sgd, clip_norm=0.05),
        "clip_value": dict(optimizer=sgd, clip_value=0.02),
        "clip_both": dict(optimizer=sgd, clip_norm=0.05, clip_value=0.02),
        "l2": dict(optimizer=sgd, l2=0.1),
        "l2-adam": dict(optimizer=(nnc.Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
                        l2=0.1),
        "l2-batchnorm-momentum": dict(
            optimizer=(nnc.SGD(0.3, momentum=0.8),
                       lambda p: torch.optim.SGD(p, lr=0.3 * 0.2, momentum=0.8)),
            l2=0.1, batchnorm=True),
        "adamw-l2-clip": dict(
            optimizer=(nnc.AdamW(0.01, weight_decay=0.5),
                       lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.5)),
            l2=0.05, clip_norm=0.1),
    }[case]
    ours, theirs = kwargs.pop("optimizer")
    steps, losses, norms, layer_norms, model, net = run_pair(backend, dtype, ours, theirs,
                                                             **kwargs)
    tol = tol_for(dtype)
    np.testing.assert_allclose(steps["loss"], losses, rtol=tol)  # includes λR(w)
    np.testing.assert_allclose(steps["grad_norm"], norms, rtol=tol)  # pre-clip, with λw
    layer_keys = sorted((k for k in steps if k.startswith("grad_norm.")),
                        key=lambda k: int(k.split(".")[1]))
    np.testing.assert_allclose(np.array([steps[k] for k in layer_keys]).T, layer_norms,
                               rtol=tol)
    close(flat_nnc_params(model), flat_torch_params(net), tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_trainer_l2_equals_torch_weight_decay_on_weights_only(backend):
    """Trainer(l2=λ) with SGD ≡ torch SGD(weight_decay=λ) on the weights'
    parameter group (biases undecayed)."""
    *_, model, net = run_pair(backend, "float64", nnc.SGD(0.3),
                              lambda groups: torch.optim.SGD(groups, lr=0.3), l2=0.1,
                              l2_as_weight_decay=True)
    close(flat_nnc_params(model), flat_torch_params(net), 1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_norm_and_torch_clip_grad_norm_differ_by_its_1e6_only(backend):
    """torch.nn.utils.clip_grad_norm_ scales by max_norm/(norm + 1e-6),
    nnc by max_norm/norm (as documented): they agree to ~1e-6/norm."""
    steps, losses, norms, _, model, net = run_pair(
        backend, "float64", nnc.SGD(0.3), lambda p: torch.optim.SGD(p, lr=0.3),
        clip_norm=0.05, exact_clip=False)
    np.testing.assert_allclose(steps["grad_norm"], norms, rtol=1e-5)
    close(flat_nnc_params(model), flat_torch_params(net), 1e-5)


SCHEDULES = {
    "step": (lambda: schedules.StepDecay(0.3, 4, 0.5),
             lambda o, scale=1.0: torch.optim.lr_scheduler.StepLR(o, 4, 0.5)),
    "exponential": (lambda: schedules.ExponentialDecay(0.3, 0.9),
                    lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    # eta_min is absolute: scaled with the lr when the lr is mapped (momentum)
    "cosine": (lambda: schedules.CosineDecay(0.3, 20, 0.03),
               lambda o, scale=1.0: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20,
                                                                               0.03 * scale)),
    "linear": (lambda: schedules.LinearDecay(0.3, 0.03, 10),
               lambda o, scale=1.0: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.1, 10)),
    "warmup-exponential": (
        lambda: schedules.Warmup(schedules.ExponentialDecay(0.3, 0.8), 5, start_lr=0.06),
        lambda o: torch.optim.lr_scheduler.SequentialLR(
            o, [torch.optim.lr_scheduler.LinearLR(o, 0.2, 1.0, 5),
                torch.optim.lr_scheduler.ExponentialLR(o, 0.8)], milestones=[5])),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_match_torch_lr_schedulers(name):
    """Over t = 0 … T (CosineDecay stays at lr_min after T, as documented,
    where torch's CosineAnnealingLR climbs back: compared up to T only)."""
    ours, theirs = SCHEDULES[name]
    schedule = ours()
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.3)
    scheduler = theirs(opt)
    for step in range(21):
        assert schedule(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        opt.step()
        scheduler.step()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["step", "cosine", "linear"])
def test_trainer_schedule_matches_torch_scheduler(backend, dtype, name):
    """The schedule's α_t is used at step t = 0, 1, … like a torch scheduler
    stepped after every optimizer step (momentum through the mapping)."""
    ours, theirs = SCHEDULES[name]
    beta = 0.5
    steps, losses, _, _, model, net = run_pair(
        backend, dtype, nnc.SGD(0.3, momentum=beta, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.3 * (1 - beta), momentum=beta, nesterov=True),
        schedule=ours(), torch_schedule=lambda o: theirs(o, scale=1 - beta))
    expected_lr = [ours()(step) for step in range(20)]
    np.testing.assert_allclose(steps["lr"], expected_lr, rtol=1e-12)
    tol = tol_for(dtype)
    np.testing.assert_allclose(steps["loss"], losses, rtol=tol)
    close(flat_nnc_params(model), flat_torch_params(net), tol)


class _MaskRecorder(Callback):
    def __init__(self, layer):
        self.layer, self.masks = layer, []

    def on_before_update(self, trainer):
        self.masks.append((self.layer._u >= self.layer.p).copy())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_shuffled_minibatches_with_batchnorm_dropout_and_adam_match_torch(backend, dtype):
    """Three shuffled epochs of 11 samples in batches of 4 (the last batch
    of 3), MSE, Adam(β₁=0.5); torch replays nnc's permutations and dropout
    masks."""
    p = 0.25
    model = nnc.Sequential(nnc.Dense(4, 6, bias=False), nnc.BatchNorm(6, momentum=0.8),
                           nnc.ReLU(), nnc.Dropout(p), nnc.Dense(6, 1),
                           dtype=dtype, backend=backend, seed=3)
    tbn = torch.nn.BatchNorm1d(6, momentum=0.2, dtype=torch_dtype(dtype))
    first, last = linear_like(model.layers[0], dtype), linear_like(model.layers[4], dtype)
    rng = np.random.default_rng(10)
    X, y = rng.normal(size=(11, 4)), rng.normal(size=(11, 1))
    recorder = _MaskRecorder(model.layers[3])
    trainer = nnc.Trainer(model, loss="mse", optimizer=nnc.Adam(0.05, beta1=0.5), batch_size=4,
                          callbacks=[recorder], seed=7)
    order_rng = copy.deepcopy(trainer.rng)
    trainer.fit(X, y, epochs=3, verbose=False)
    params = [*first.parameters(), *tbn.parameters(), *last.parameters()]
    opt = torch.optim.Adam(params, lr=0.05, betas=(0.5, 0.999))
    masks = [t(mask, dtype) for mask in recorder.masks]
    losses = []
    for _ in range(3):
        order = order_rng.permutation(11)
        for start in range(0, 11, 4):
            index = order[start:start + 4]
            opt.zero_grad()
            hidden = torch.relu(tbn(first(t(X[index], dtype))))
            out = last(hidden * masks[len(losses)] / (1 - p))
            loss = F.mse_loss(out, t(y[index], dtype))
            loss.backward()
            opt.step()
            losses.append(loss.item())
    tol = tol_for(dtype)
    np.testing.assert_allclose(trainer.history.steps["loss"], losses, rtol=tol)
    close(model.layers[4].params["W"].T, last.weight.detach().numpy(), tol)
    close(model.layers[1].buffers["running_mean"], tbn.running_mean.numpy(), tol, atol=tol)


# --- initialisers ---------------------------------------------------------------

INITS = {
    # name: (torch.nn.init equivalent, Var(w) of the nnc docs for (fan_in, fan_out), bound)
    "he_normal": (lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu"),
                  lambda i, o: 2 / i, None),
    "he_uniform": (lambda w: torch.nn.init.kaiming_uniform_(w, nonlinearity="relu"),
                   lambda i, o: 2 / i, lambda i, o: np.sqrt(6 / i)),
    "glorot_normal": (torch.nn.init.xavier_normal_, lambda i, o: 2 / (i + o), None),
    "glorot_uniform": (torch.nn.init.xavier_uniform_, lambda i, o: 2 / (i + o),
                       lambda i, o: np.sqrt(6 / (i + o))),
    "lecun_normal": (lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="linear"),
                     lambda i, o: 1 / i, None),
}


@pytest.mark.parametrize("name", list(INITS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_initialiser_statistics_match_torch_nn_init(name, backend):
    """Over a 600 x 150 matrix (fan_in ≠ fan_out, so a swapped fan shows):
    nnc's variance, torch's and the documented one agree within sampling
    noise (~2 % here, tested at 4 %); uniform bounds agree; the normals are
    not truncated (kurtosis 3, like torch's)."""
    fan_in, fan_out = 600, 150
    init, variance, bound = INITS[name]
    model = nnc.Sequential(nnc.Dense(fan_in, fan_out, init=name), dtype="float64",
                           backend=backend, seed=1)
    ours = model.layers[0].params["W"]
    torch.manual_seed(0)
    theirs = init(torch.empty(fan_out, fan_in, dtype=torch.float64)).numpy()
    expected = variance(fan_in, fan_out)
    assert ours.var() == pytest.approx(expected, rel=0.04)
    assert theirs.var() == pytest.approx(expected, rel=0.04)
    assert abs(ours.mean()) < 4 * np.sqrt(expected / ours.size)
    kurtosis = ((ours - ours.mean()) ** 4).mean() / ours.var() ** 2
    torch_kurtosis = ((theirs - theirs.mean()) ** 4).mean() / theirs.var() ** 2
    assert kurtosis == pytest.approx(torch_kurtosis, abs=0.1)
    if bound is not None:
        limit = bound(fan_in, fan_out)
        assert np.abs(ours).max() <= limit
        assert np.abs(ours).max() == pytest.approx(limit, rel=1e-3)
        assert np.abs(theirs).max() == pytest.approx(limit, rel=1e-3)


# --- the same checks through the multi-threaded kernel paths --------------------

@pytest.fixture
def parallel_kernels():
    """Every compiled kernel takes its OpenMP path, whatever the size
    (restored afterwards)."""
    from nnc._kernels import _threads

    saved = _threads.get_parallel_thresholds()
    _threads.set_parallel_thresholds(elementwise=1, gemm=1)
    try:
        yield
    finally:
        _threads.set_parallel_thresholds(**saved)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threaded_kernels_match_torch(parallel_kernels, dtype):
    test_losses_and_gradients_match_torch_at_edge_values("cython", dtype)
    test_batchnorm_training_steps_running_stats_and_eval_match_torch("cython", dtype)
    test_dense_and_activation_gradients_match_torch("cython", dtype, "tanh")
    test_dropout_with_nncs_mask_matches_torch("cython", dtype, 0.3)
    for name in OPTIMIZERS:
        test_optimizer_trajectories_match_torch_through_the_mapping("cython", dtype, name)
    test_trainer_clipping_and_l2_match_torch("cython", dtype, "adamw-l2-clip")


def test_reduce_lr_on_plateau_matches_torch_with_one_more_patience():
    """ReduceLROnPlateau counts as Keras; its docstring's PyTorch mapping:
    torch's patience=p, threshold=d, threshold_mode="abs" is nnc's
    patience=p + 1, min_delta=d."""
    from nnc.callbacks import ReduceLROnPlateau

    rng = np.random.default_rng(0)
    for _ in range(100):
        values = np.round(rng.random(15), 1).tolist()
        patience, min_delta = int(rng.integers(0, 4)), float(rng.choice([0.0, 0.05]))
        ours = ReduceLROnPlateau("val_loss", factor=0.5, patience=patience + 1,
                                 min_delta=min_delta)
        trainer = SimpleNamespace(optimizer=nnc.SGD(1.0))  # what the callback uses
        w = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([w], lr=1.0)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=patience, threshold=min_delta, threshold_mode="abs")
        for epoch, value in enumerate(values):
            ours.on_epoch_end(trainer, epoch, {"val_loss": value})
            theirs.step(value)
            assert trainer.optimizer.lr == opt.param_groups[0]["lr"], (values, patience, epoch)
