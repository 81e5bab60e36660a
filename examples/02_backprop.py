"""02 - Back-propagation (lecture, section 2).

The numerical derivative of the loss with respect to one weight, all
other weights held fixed, is the central difference

    dL/dw ~ (L(w + d) - L(w - d)) / 2d,

two forward passes per weight. Back-propagation gets every derivative from
one forward and one backward pass by the chain rule. This script checks
one against the other for a small float64 network (``nnc.gradcheck``),
works one weight out by hand, and times both ways.

Run:  python examples/02_backprop.py [--quick] [--out DIR]
"""
import argparse
import os
import time

import numpy as np

import nnc
from nnc import plotting
from nnc.benchmark import median_seconds


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (the full one takes seconds too)")
    parser.add_argument("--out", default=".", help="folder for the PNG (default: .)")
    return parser.parse_args(argv)


def loss_of(model, loss, X, y):
    """L(w) at the current weights (training mode, no gradient kept)."""
    return loss.forward(model.forward(X, training=True), y)


def main(argv=None):
    args = parse_args(argv)
    X, y = nnc.datasets.load_digits(dtype="float64")
    n, hidden = (16, 8) if args.quick else (64, 32)
    X, y = X[:n], y[:n]
    model = nnc.Sequential(nnc.Dense(64, hidden, bias=False), nnc.BatchNorm(hidden), nnc.Tanh(),
                           nnc.Dense(hidden, 10), dtype="float64", seed=0)
    loss = nnc.SoftmaxCrossEntropy()
    print(model.summary())

    # analytic gradients: one forward, one backward (timed: the median of
    # repeats after a warm-up call, which also sizes the workspaces)
    def backprop():
        loss_of(model, loss, X, y)
        model.backward(loss.backward())

    backprop_seconds = median_seconds(backprop, repeats=9)
    analytic = model.layers[3].grads["W"].copy()

    # one weight by hand: w = W[0, 0] of the last Dense layer
    W = model.layers[3].params["W"]
    delta, w0 = 1e-6, W[0, 0]
    W[0, 0] = w0 + delta
    up = loss_of(model, loss, X, y)
    W[0, 0] = w0 - delta
    down = loss_of(model, loss, X, y)
    W[0, 0] = w0
    numeric_one = (up - down) / (2 * delta)
    print(f"\none weight, W[0, 0] of layer 3: (L(w+d) - L(w-d)) / 2d = {numeric_one:.10f}"
          f"\n                                  back-propagation = {analytic[0, 0]:.10f}")

    # every weight of that layer numerically: 2 forward passes each
    start = time.perf_counter()
    numeric = np.zeros_like(W)
    for index in np.ndindex(W.shape):
        w0 = W[index]
        W[index] = w0 + delta
        up = loss_of(model, loss, X, y)
        W[index] = w0 - delta
        down = loss_of(model, loss, X, y)
        W[index] = w0
        numeric[index] = (up - down) / (2 * delta)
    numeric_seconds = time.perf_counter() - start
    every_weight = numeric_seconds / W.size * model.n_params
    print(f"\n{W.size} weights of layer 3: numerically {numeric_seconds * 1e3:.1f} ms "
          f"({2 * W.size} forward passes), so ~{every_weight * 1e3:.0f} ms for all "
          f"{model.n_params} parameters;\nback-propagation of all {model.n_params} parameters: "
          f"{backprop_seconds * 1e3:.2f} ms (one forward and one backward pass, median of 9), "
          f"~{every_weight / backprop_seconds:.0f}x less")

    errors = nnc.gradcheck(model, loss, X, y)
    print("\nnnc.gradcheck, relative error |analytic - numeric| / (|analytic| + |numeric|):")
    for name, error in errors.items():
        print(f"  {name:8s} {error:.2e}")
    worst = max(errors.values())
    print(f"\nLesson: back-propagation is the chain rule; it agrees with finite differences "
          f"to {worst:.1e} (> 1e-6 would point at a bug) at the cost of one backward pass.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 2)
        ax = axes[0, 0]
        ax.plot(numeric.ravel(), analytic.ravel(), ".", ms=4)
        lim = np.abs(numeric).max() * 1.1
        ax.plot([-lim, lim], [-lim, lim], "k:", lw=1)
        ax.set_xlabel("numerical dL/dw (central difference)")
        ax.set_ylabel("back-propagated dL/dw")
        ax.set_title("layer 3 weights")
        ax = axes[0, 1]
        ax.bar(list(errors), [max(e, 1e-16) for e in errors.values()])
        ax.axhline(1e-6, color="r", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_title("gradcheck relative error per parameter")
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "02_backprop.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return {"errors": errors, "analytic": analytic, "numeric": numeric}


if __name__ == "__main__":
    main()
