"""06 - Adaptive learning rates: RMSprop and Adam (lecture, section 6).

    RMSprop   r <- p r + (1 - p) g^2;         w <- w - a g / sqrt(r + eps)
    Adam      m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
              w <- w - a m_hat / (sqrt(v_hat) + eps),
              m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

Dividing by the root mean square of each coordinate's gradient gives every
direction a step of the same size, of order a (RMSprop's first is
a / sqrt(1 - p), about 3.2 a with p = 0.9, as r starts at 0; it shrinks
towards a as r fills): on the ravine L = (x^2 + 100 y^2) / 2 the steep y
and the flat x move at the same speed, with no tuning to the curvature.
The price: near the minimum the step stays of order a, so RMSprop with a
constant rate hovers at a distance of order a.

Run:  python examples/06_adaptive.py [--quick] [--out DIR]
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


def report(surface, paths, tol):
    for name, path in paths.items():
        reached = playground.steps_to_reach(surface, path, tol)
        tail = max(surface.distance_to_minimum(w) for w in path[-50:])
        print(f"  {name:24s} {'never' if reached is None else reached:>6}   "
              f"largest distance over the last 50 steps {tail:.1e}")


def main(argv=None):
    args = parse_args(argv)
    ravine, valley = playground.ravine(condition=100), playground.rosenbrock()

    print("1. Ravine from (-4, 1), 400 steps: first step within 0.01 of the minimum")
    ravine_runs = {"SGD a=0.019": nnc.SGD(0.019),
                   "momentum a=0.1": nnc.SGD(0.1, momentum=0.9),
                   "RMSprop a=0.02": nnc.RMSprop(0.02),
                   "Adam a=0.1": nnc.Adam(0.1)}
    ravine_paths = {name: playground.run(opt, ravine, steps=400)
                    for name, opt in ravine_runs.items()}
    report(ravine, ravine_paths, 1e-2)
    rms = ravine_paths["RMSprop a=0.02"]
    step = np.abs(np.diff(rms[:6], axis=0))
    print("  RMSprop's first steps |dx|, |dy| (the first gradient, (-4, 100), is 25x larger in y;\n"
          "  the steps are the same size):")
    for t, (dx, dy) in enumerate(step, start=1):
        print(f"    step {t}: {dx:.4f}  {dy:.4f}")

    steps = 2000 if args.quick else 6000
    print(f"\n2. Rosenbrock valley from (-1.2, 1), {steps} steps: first step within 0.01 of (1, 1)")
    valley_runs = {"SGD a=0.002": nnc.SGD(2e-3),
                   "momentum a=0.01": nnc.SGD(0.01, momentum=0.9),
                   "RMSprop a=0.001": nnc.RMSprop(1e-3),
                   "RMSprop a=0.01": nnc.RMSprop(1e-2),
                   "Adam a=0.05": nnc.Adam(0.05)}
    valley_paths = {name: playground.run(opt, valley, steps=steps)
                    for name, opt in valley_runs.items()}
    report(valley, valley_paths, 1e-2)

    print("\nLesson: RMSprop and Adam scale each coordinate's step by its own gradient "
          "history, so ill-scaled directions need no hand tuning (RMSprop's first steps are "
          "the same size in x and y); Adam adds momentum and a bias correction for the first "
          "steps. Along Rosenbrock's curved valley RMSprop, without momentum, still crawls, "
          "where Adam's momentum carries it to the minimum. Near a minimum their step stays "
          "of order a: lower or decay it for a precise answer.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 2, figsize=(13, 4.8))
        playground.plot_paths({k: v[:200] for k, v in ravine_paths.items()}, ravine,
                              ax=axes[0, 0], title="ravine: first 200 steps")
        playground.plot_paths(valley_paths, valley, ax=axes[0, 1],
                              title=f"Rosenbrock: {steps} steps")
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "06_adaptive.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return {"ravine": ravine_paths, "rosenbrock": valley_paths}


if __name__ == "__main__":
    main()
