"""07 - Choosing an optimizer (lecture, section 7).

There is no consensus on the best optimizer; the lecture compares them by
speed and memory. This script trains the same network on the bundled
digits with SGD, SGD + momentum, RMSprop and Adam (each at a common
learning rate for it), and prints the learning curves next to the memory
each one keeps besides the weights, ``optimizer.state_bytes()``:
none for SGD, one buffer for momentum (z) and RMSprop (r), two for Adam
(m and v).

Run:  python examples/07_choosing.py [--quick] [--out DIR]
"""
import argparse
import os
import time

import nnc
from nnc import plotting


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (the full one takes seconds too)")
    parser.add_argument("--out", default=".", help="folder for the PNG (default: .)")
    return parser.parse_args(argv)


OPTIMIZERS = {
    "SGD a=0.1": lambda: nnc.SGD(0.1),
    "momentum a=0.1 b=0.9": lambda: nnc.SGD(0.1, momentum=0.9),
    "RMSprop a=1e-3": lambda: nnc.RMSprop(1e-3),
    "Adam a=1e-3": lambda: nnc.Adam(1e-3),
}


def main(argv=None):
    args = parse_args(argv)
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=0)
    epochs = 3 if args.quick else 25
    results = {}
    print(f"64-128-64-10 ReLU network, batch 32, {epochs} epochs, the same initial weights")
    print(f"{'optimizer':22s} {'state bytes':>11s} {'train loss':>10s} {'held-out acc':>12s} "
          f"{'seconds':>8s}")
    for name, make in OPTIMIZERS.items():
        model = nnc.Sequential(nnc.Dense(64, 128), nnc.ReLU(), nnc.Dense(128, 64), nnc.ReLU(),
                               nnc.Dense(64, 10), seed=0)
        trainer = nnc.Trainer(model, optimizer=make(), batch_size=32, seed=0)
        start = time.perf_counter()
        history = trainer.fit(X_train, y_train, epochs=epochs,
                              validation_data=(X_test, y_test), verbose=False)
        seconds = time.perf_counter() - start
        state = trainer.optimizer.state_bytes()
        results[name] = {"history": history, "state_bytes": state, "seconds": seconds}
        print(f"{name:22s} {state:11,d} {history['loss'][-1]:10.4f} "
              f"{history['val_accuracy'][-1]:12.3f} {seconds:8.2f}")
    n_params = model.n_params
    print(f"\n(the model has {n_params:,} float32 parameters = {4 * n_params:,} bytes; "
          "momentum and RMSprop keep one more copy, Adam two)")
    print("\nLesson: on an easy problem all four get there; what differs is memory and "
          "tuning. SGD keeps nothing; momentum one buffer (in the lecture's form z averages "
          "the gradients, so at equal a it moves as far per step as SGD and pays off on "
          "ill-conditioned problems, see 05); RMSprop and Adam adapt the step per parameter "
          "and work with their default settings, for one or two buffers.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 3, figsize=(16, 4.4))
        for name, result in results.items():
            history = result["history"]
            axes[0, 0].plot(range(1, epochs + 1), history["loss"], "o-", ms=3, label=name)
            axes[0, 1].plot(range(1, epochs + 1), history["val_accuracy"], "o-", ms=3,
                            label=name)
        axes[0, 0].set_yscale("log")
        axes[0, 0].set_title("training loss")
        axes[0, 1].set_title("held-out accuracy")
        for ax in axes[0, :2]:
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)  # whole epochs
            ax.legend(fontsize="small")
        ax = axes[0, 2]
        ax.bar(range(len(results)), [r["state_bytes"] / 1024 for r in results.values()])
        ax.set_xticks(range(len(results)), [n.split(" ")[0] for n in results])
        ax.set_ylabel("KiB")
        ax.set_title("optimizer state, optimizer.state_bytes()")
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "07_choosing.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return {name: {"state_bytes": r["state_bytes"], "loss": r["history"]["loss"],
                   "val_accuracy": r["history"]["val_accuracy"]} for name, r in results.items()}


if __name__ == "__main__":
    main()
