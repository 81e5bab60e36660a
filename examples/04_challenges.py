"""04 - Challenges in neural-network optimisation (lecture, section 4).

Three of the lecture's obstacles, each made visible:

1. A saddle point, L = x^2/2 + y^4/4 - y^2/2: on the ridge y ~ 0 the
   gradient nearly vanishes, and gradient descent lingers there before it
   escapes to a minimum (0, +-1); Adam, and momentum with a step size a
   large enough (here a = 1), leave it sooner. At SGD's a the lecture's
   momentum (z <- b z - (1-b) g) only averages the gradients, whose steady
   step is SGD's, and lingers longer.
2. A cliff: on its face the gradient is huge and one step throws the
   parameters far away; clipping the gradient norm to a threshold,
   g <- g * c / ||g|| when ||g|| > c, keeps the step bounded.
3. Vanishing gradients: in a 10-layer sigmoid network each layer multiplies
   the back-propagated gradient by sigma'(z) <= 1/4, so the first layers
   get gradients orders of magnitude smaller than the last.

Run:  python examples/04_challenges.py [--quick] [--out DIR]
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


def deep_net(activation, init, depth=10, width=32, seed=0):
    layers = [nnc.Dense(64, width, init=init), activation()]
    for _ in range(depth - 2):
        layers += [nnc.Dense(width, width, init=init), activation()]
    layers.append(nnc.Dense(width, 10, init=init))
    return nnc.Sequential(*layers, seed=seed)


def main(argv=None):
    args = parse_args(argv)
    results = {}

    print("1. Saddle point at (0, 0), started on the ridge at (-1.5, 0.001)")
    saddle = playground.saddle()
    # the lecture's momentum, z <- b z - (1-b) g; w <- w + a z, takes a (1-b) g as its first
    # step and a g once z has built up: with a = 1 it starts as SGD lr 0.1 does
    saddle_paths = {"SGD lr 0.1": playground.run(nnc.SGD(0.1), saddle, steps=300),
                    "momentum 0.9, a 1": playground.run(nnc.SGD(1.0, momentum=0.9), saddle,
                                                        steps=300),
                    "momentum 0.9, a 0.1": playground.run(nnc.SGD(0.1, momentum=0.9), saddle,
                                                          steps=300),
                    "Adam lr 0.05": playground.run(nnc.Adam(0.05), saddle, steps=300)}
    near_ridge = {}
    for name, path in saddle_paths.items():
        near_ridge[name] = int((np.abs(path[:, 1]) < 0.05).sum())
        reached = playground.steps_to_reach(saddle, path, 1e-2)
        print(f"  {name:19s} {near_ridge[name]:3d} steps near the ridge (|y| < 0.05); minimum "
              f"within 0.01 after {reached} steps")
    print("  momentum escapes by building up speed along the slowly growing direction; with "
          "the same a as SGD the lecture's\n  momentum only averages the gradients (its steady "
          "step is a g, as SGD's) and lingers longer")
    results["saddle"] = saddle_paths
    results["near_ridge"] = near_ridge

    print("\n2. Cliff: SGD lr 0.1 from (3, 1.5), with and without clip_norm = 10")
    cliff = playground.cliff()
    cliff_paths = {"no clipping": playground.run(nnc.SGD(0.1), cliff, steps=100),
                   "clip_norm=10": playground.run(nnc.SGD(0.1), cliff, steps=100, clip_norm=10)}
    for name, path in cliff_paths.items():
        steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
        print(f"  {name:13s} largest step {steps.max():6.2f}, thrown as far as x = "
              f"{path[:, 0].min():6.2f} (minimum at x = -4)")
    results["cliff"] = cliff_paths

    epochs = 2 if args.quick else 10
    X, y = nnc.datasets.load_digits()
    X = X[:512] if args.quick else X
    y = y[:512] if args.quick else y
    print(f"\n3. Gradient norm per layer over {epochs} epochs of a 10-layer network (SGD lr 0.02)")
    histories = {}
    for name, activation, init in (("sigmoid, Xavier", nnc.Sigmoid, "glorot_normal"),
                                   ("ReLU, He", nnc.ReLU, "he_normal")):
        model = deep_net(activation, init)
        trainer = nnc.Trainer(model, optimizer=nnc.SGD(0.02), batch_size=32, seed=0,
                              diagnostics=5)  # per-layer statistics every 5 steps
        history = trainer.fit(X, y, epochs=epochs, verbose=False)
        dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, nnc.Dense)]
        first = np.median(history.steps[f"grad_norm.{dense[0]}"])
        last = np.median(history.steps[f"grad_norm.{dense[-1]}"])
        print(f"  {name:16s} median gradient norm: first layer {first:.1e}, last layer "
              f"{last:.1e} (ratio {first / last:.1e}); final loss {history['loss'][-1]:.3f}")
        histories[name] = (history, dense)
    print("\n  The diagnosis of the sigmoid run (history.report()):")
    print("  " + histories["sigmoid, Xavier"][0].report().replace("\n", "\n  "))
    results["histories"] = {name: h for name, (h, _) in histories.items()}

    print("\nLesson: gradients can be too small (saddles, deep sigmoid stacks) or too large "
          "(cliffs); plot the gradient norm over time to see which, clip the norm against "
          "cliffs, and use ReLU with He initialisation against vanishing gradients.")

    if plotting.available():
        fig, axes = plotting.new_figure(2, 2, figsize=(12, 8.5))
        playground.plot_paths(saddle_paths, saddle, ax=axes[0, 0], title="saddle point")
        playground.plot_paths(cliff_paths, cliff, ax=axes[0, 1], xlim=(-14, 4),
                              title="cliff: with and without gradient clipping")
        for ax, (name, (history, dense)) in zip(axes[1], histories.items()):
            for i in dense:
                norms = history.steps[f"grad_norm.{i}"]
                ax.plot(range(1, len(norms) + 1), np.maximum(norms, 1e-30), lw=0.8,
                        label=f"layer {i}")
            ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_title(f"gradient norm per layer: {name}")
            ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))  # beside
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "04_challenges.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return results


if __name__ == "__main__":
    main()
