"""08 - Parameter initialisation (lecture, section 8).

Three points of the lecture, made visible:

1. Keep the activations' scale through the layers: E h = 0 and Var h the
   same in every layer. With w ~ N(0, s^2), a unit sums n_in terms, so its
   variance is multiplied by about n_in s^2 per layer: too small and the
   signal (and the gradient) vanishes over 10 layers, too large and it
   explodes (ReLU) or saturates (tanh). The lecture's rule, Var w = 1/n_in
   (LeCun; Xavier's 2/(n_in + n_out) is the same for square layers), keeps
   tanh activations within the same order of magnitude; He (Var w = 2/n_in)
   makes up for the half of the signal a ReLU zeroes and keeps ReLU layers
   steady. Trained with diagnostics on, nnc's report names a broken rule.
2. Break the symmetry: units with the same inputs and the same initial
   weights get the same gradient and stay identical forever; with all
   weights zero nothing reaches the first layer at all.
3. The initial point decides which minimum gradient descent ends in (on a
   playground surface with a deep and a shallow valley).

The activation statistics are read from each layer's output of the last
forward pass, ``layer.last_output``.

Run:  python examples/08_initialization.py [--quick] [--out DIR]
"""
import argparse
import os

import numpy as np

import nnc
from nnc import playground, plotting


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (the full one takes seconds too)")
    parser.add_argument("--out", default=".", help="folder for the PNG (default: .)")
    return parser.parse_args(argv)


INITS = {
    "zeros": "zeros",
    "too small N(0, 0.01^2)": nnc.init.normal(0.01),
    "too large N(0, 1)": nnc.init.normal(1.0),
    "lecture N(0, 1/n_in)": "lecun_normal",  # = Xavier (2/(n_in+n_out)) for square layers
    "He (he_normal)": "he_normal",
}


def deep_net(activation, init, depth=10, width=64, seed=0):
    layers = []
    for i in range(depth):
        layers += [nnc.Dense(64 if i == 0 else width, width, init=init), activation()]
    layers.append(nnc.Dense(width, 10, init=init))
    return nnc.Sequential(*layers, seed=seed)


def layer_statistics(model, X, y):
    """Std of each activation layer's output and the gradient norm of each
    Dense layer's weights, from one forward and backward pass."""
    loss = nnc.SoftmaxCrossEntropy()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    stds = [float(layer.last_output.std()) for layer in model.layers
            if not isinstance(layer, nnc.Dense)]
    grads = [float(np.linalg.norm(layer.grads["W"])) for layer in model.layers
             if isinstance(layer, nnc.Dense)]
    return stds, grads


def count_distinct_units(W, tol=1e-4):
    """Hidden units (columns of W) that differ by more than tol * max|W|.
    Exactly identical units can drift apart by rounding (BLAS may add each
    output column in its own order), far below this."""
    scale = tol * max(float(np.abs(W).max()), np.finfo(np.float64).tiny)
    representatives = []
    for column in W.T:
        if all(np.abs(column - r).max() > scale for r in representatives):
            representatives.append(column)
    return len(representatives)


def symmetry(X, y, epochs):
    """Train 64-32-10 tanh nets from constant and zero weights."""
    results = {}
    for name, init in (("constant 0.1", nnc.init.constant(0.1)), ("zeros", "zeros"),
                       ("Xavier", "glorot_normal")):
        model = nnc.Sequential(nnc.Dense(64, 32, init=init), nnc.Tanh(),
                               nnc.Dense(32, 10, init=init), seed=0)
        W_start = model.layers[0].params["W"].copy()
        trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.1), batch_size=32, seed=0)
        trainer.fit(X, y, epochs=epochs, verbose=False)
        W = model.layers[0].params["W"]
        distinct = count_distinct_units(W)
        results[name] = {"distinct_units": distinct,
                         "first_layer_moved": float(np.abs(W - W_start).max()),
                         "accuracy": trainer.evaluate(X, y)["accuracy"]}
    return results


def main(argv=None):
    args = parse_args(argv)
    X, y = nnc.datasets.load_digits()
    X = (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-3)  # zero mean, unit variance
    batch = X[:256] if args.quick else X[:1024]
    labels = y[:len(batch)]
    stats = {}
    for net, activation in (("tanh", nnc.Tanh), ("ReLU", nnc.ReLU)):
        print(f"\n10 Dense(64) + {net} layers: std of each layer's activations, "
              "and the weight-gradient norm of the first and last layer")
        print(f"{'init':24s} " + " ".join(f"{f'h{i}':>7s}" for i in range(1, 11))
              + "   |grad W1|  |grad W11|")
        for name, init in INITS.items():
            stds, grads = layer_statistics(deep_net(activation, init), batch, labels)
            stats[(net, name)] = (stds, grads)
            print(f"{name:24s} " + " ".join(f"{s:7.1e}" for s in stds)
                  + f"   {grads[0]:9.1e}  {grads[-1]:9.1e}")
        if net == "tanh":
            big, lecun, he = (stats[(net, k)] for k in ("too large N(0, 1)",
                                                         "lecture N(0, 1/n_in)", "He (he_normal)"))
            print(f"  N(0, 1): the units saturate (std ~{big[0][-1]:.2f}, near tanh's +-1), and the "
                  "gradient grows on its way back (|grad W1| / |grad W11| = "
                  f"{big[1][0] / big[1][-1]:.0f}):\n  each W^T of N(0, 1) weights multiplies it "
                  "by up to sqrt(64) = 8 wherever a unit is not saturated, so too large weights break "
                  "the scale both ways.\n  The lecture's 1/n_in assumes tanh's linear range: the "
                  f"std drifts from {lecun[0][0]:.2f} to {lecun[0][-1]:.2f} over 10 layers, He's "
                  f"twice the variance holds it near {he[0][-1]:.2f}; both keep its order of "
                  "magnitude.")

    print("\nThe diagnostics judge the rule too: 4 ReLU layers, N(0, 1) weights, one epoch "
          "with Trainer(diagnostics=True), then history.report() says:")
    trainer = nnc.Trainer(deep_net(nnc.ReLU, INITS["too large N(0, 1)"], depth=4),
                          optimizer=nnc.SGD(1e-6), batch_size=64, diagnostics=True)
    history = trainer.fit(batch, labels, epochs=1, verbose=False)
    verdict = next((v for v in nnc.diagnostics.diagnose(history)
                    if v.kind == "exploding_activations"), None)
    print(f"  {verdict.message}\n  try: {verdict.advice}" if verdict else "  (no verdict)")

    epochs = 3 if args.quick else 20
    print(f"\nSymmetry: a 64-32-10 tanh network trained {epochs} epochs (SGD lr 0.1)")
    sym = symmetry(X, y, epochs)
    for name, r in sym.items():
        print(f"  {name:13s} distinct hidden units {r['distinct_units']:2d}/32, first layer "
              f"moved by {r['first_layer_moved']:.3g}, training accuracy {r['accuracy']:.3f}")

    print("\nThe starting point decides the minimum: SGD (lr 0.05) on L = (x^2 - 1)^2 + 0.3 x "
          "+ y^2/2, which has a deep valley at x = -1.04 (L = -0.31) and a shallow one at "
          "x = 0.96 (L = 0.29)")
    surface = playground.two_minima(0.3)
    starts = {f"start x = {x0:+.1f}": (x0, 1.0) for x0 in (-1.8, -0.6, 0.3, 1.8)}
    landscape = {name: playground.run(nnc.SGD(0.05), surface, start=start, steps=300)
                 for name, start in starts.items()}
    for name, path in landscape.items():
        print(f"  {name}: ends at x = {path[-1, 0]:+.3f}, L = {surface(path[-1]):+.3f}")

    print("\nLesson: a fixed scale shrinks or grows the signal by a constant factor per "
          "layer; scale the weights to the layer (the lecture's 1/n_in or Xavier for tanh, He for ReLU) so activations "
          "and gradients keep their order of magnitude through depth, and draw them at random: "
          "identical units stay identical, and all-zero weights pass no gradient back; where the "
          "descent starts decides which minimum it ends in.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 3, figsize=(19, 4.4))
        playground.plot_paths(landscape, surface, ax=axes[0, 2],
                              title="two minima: the start decides (SGD)")
        for ax, net in zip(axes[0], ("tanh", "ReLU")):
            for name in INITS:
                stds = np.asarray(stats[(net, name)][0])
                if not stds.any():  # (a log axis cannot show 0)
                    name += ": std 0 (off the log scale)"
                ax.semilogy(range(1, 11), np.maximum(stds, 1e-30), "o-", ms=3, label=name)
            ax.set_ylim(1e-12, 1e12)
            ax.set_xlabel("layer")
            ax.set_title(f"std of the activations, {net}")
            ax.legend(fontsize="x-small")
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "08_initialization.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return {"stats": stats, "symmetry": sym, "diagnosis": verdict and verdict.kind,
            "landscape": {name: path[-1] for name, path in landscape.items()}}


if __name__ == "__main__":
    main()
