"""05 - Basic algorithms: SGD, learning-rate decay, momentum, Nesterov
(lecture, section 5), on the ill-conditioned ravine L = (x^2 + 100 y^2) / 2.

    SGD        w <- w - a g
    momentum   z <- b z - (1 - b) g;   w <- w + a z
    Nesterov   the same with the gradient taken at the look-ahead point
    decay      a_t = (1 - t/tau) a_0 + (t/tau) a_tau, then a_tau

Plain gradient descent must keep a < 2/100 or it diverges across the
ravine, and then crawls along it. Momentum keeps the speed along the
ravine (it reaches the minimum in a third of the steps) but, carrying its
velocity, swings across the ravine longer than plain SGD; Nesterov's
look-ahead sees the far wall coming and damps that swing.
With noisy gradients (a mini-batch), a constant rate leaves the iterate
bouncing around the minimum; decaying it averages the noise out.

Run:  python examples/05_sgd_momentum.py [--quick] [--out DIR]
"""
import argparse
import os

import numpy as np

import nnc
from nnc import playground, plotting
from nnc.schedules import LinearDecay


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (the full one takes seconds too)")
    parser.add_argument("--out", default=".", help="folder for the PNG (default: .)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ravine = playground.ravine(condition=100)
    steps, tol = 800, 1e-3
    runs = {
        "SGD a=0.005 (too small)": (nnc.SGD(0.005), None),
        "SGD a=0.019 (largest stable)": (nnc.SGD(0.019), None),
        "SGD a=0.021 (too large)": (nnc.SGD(0.021), None),
        "SGD, linear decay 0.019 -> 0.01": (nnc.SGD(0.019), LinearDecay(0.019, 0.01, 300)),
        "momentum a=0.1 b=0.9": (nnc.SGD(0.1, momentum=0.9), None),
        "Nesterov a=0.1 b=0.9": (nnc.SGD(0.1, momentum=0.9, nesterov=True), None),
    }
    print(f"1. Ravine from (-4, 1), {steps} steps: the first step within {tol:g} of the minimum, "
          f"and the last step still\n   off the ravine's floor (|y| > {tol:g}; y is the steep "
          "direction: momentum swings across for longer)")
    paths = {}
    for name, (optimizer, schedule) in runs.items():
        path = playground.run(optimizer, ravine, steps=steps, schedule=schedule)
        paths[name] = path
        reached = playground.steps_to_reach(ravine, path, tol)
        end = ravine.distance_to_minimum(path[-1])
        swinging = np.flatnonzero(np.abs(path[:, 1]) > tol)
        swing = "-" if len(swinging) == 0 else swinging[-1]
        print(f"  {name:32s} {'never' if reached is None else reached:>6}   "
              f"|y| > {tol:g} until step {swing!s:>5}   final distance {end:.1e}")
    print("   (the linear decay, without gradient noise, only slows SGD down; part 2 adds the "
          "noise it is for)")

    seeds = 3 if args.quick else 20
    print(f"\n2. Noisy gradients (g + 2 N(0, I), like a mini-batch), SGD a=0.018, 1000 steps, "
          f"mean over {seeds} seeds of the distance to the minimum over the last 20 steps")
    noisy = {}
    for name, schedule in (("constant a", None),
                           ("linear decay 0.018 -> 0.001 over 500 steps",
                            LinearDecay(0.018, 0.001, 500))):
        ends = []
        for seed in range(seeds):
            path = playground.run(nnc.SGD(0.018), ravine, steps=1000, schedule=schedule,
                                  noise=2.0, seed=seed)
            ends.append(np.mean([ravine.distance_to_minimum(w) for w in path[-20:]]))
            if seed == 0:
                noisy[name] = path
        print(f"  {name:44s} {np.mean(ends):.3f}")

    print("\nLesson: the stable rate of plain SGD is set by the steepest direction, so it "
          "crawls along the flat one; momentum carries speed along the ravine (while its "
          "velocity keeps it swinging across for longer) and Nesterov's look-ahead damps "
          "that swing; decay the rate so the noise of stochastic gradients averages out.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 3, figsize=(17, 4.6))
        shown = {k: v[:150] for k, v in paths.items() if "too large" not in k}
        playground.plot_paths(shown, ravine, ax=axes[0, 0], title="ravine: first 150 steps")
        ax = axes[0, 1]
        # the paths of the first panel first, so each optimizer keeps its colour
        for name in list(shown) + [k for k in paths if k not in shown]:
            ax.semilogy(np.maximum(playground.losses(ravine, paths[name]), 1e-30), lw=1,
                        label=name)
        ax.set_ylim(1e-12, 1e4)
        ax.set_xlabel("step")
        ax.set_title("loss")
        ax.legend(fontsize="x-small")
        playground.plot_paths(noisy, ravine, ax=axes[0, 2], xlim=(-4.5, 1.5),
                              title="noisy gradients: constant rate vs linear decay")
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "05_sgd_momentum.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return paths


if __name__ == "__main__":
    main()
