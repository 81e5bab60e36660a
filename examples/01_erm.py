"""01 - Empirical risk minimisation (lecture, section 1).

We cannot minimise the risk E_{(x,y)~p_data} L(y, h(x; w)), because p_data
is unknown. Training minimises the empirical risk instead, the mean loss
over the training set,

    L(w) = 1/N sum_i L(y_i, h(x_i; w)),

and a held-out set estimates the risk we actually care about. This script
trains the same network on 150 and on all 1438 training digits and prints
both curves, each measured on the weights at the end of every epoch: the
training loss keeps falling, the held-out loss stops following it, and the
gap shrinks with more data.

Run:  python examples/01_erm.py [--quick] [--out DIR]
"""
import argparse
import os

import nnc
from nnc import plotting


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (the full one takes seconds too)")
    parser.add_argument("--out", default=".", help="folder for the PNG (default: .)")
    return parser.parse_args(argv)


def train(X, y, X_test, y_test, epochs, seed=0):
    """Per-epoch training and held-out loss, both on the end-of-epoch weights
    (the History's own "loss" is the mean over the epoch's mini-batches,
    measured while the weights were still moving)."""
    model = nnc.Sequential(nnc.Dense(64, 128), nnc.ReLU(), nnc.Dense(128, 10), seed=seed)
    trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr=0.1, momentum=0.9), batch_size=16,
                          seed=seed)
    risk = {"loss": [], "val_loss": [], "val_accuracy": []}

    def measure(trainer, epoch, logs):
        risk["loss"].append(trainer.evaluate(X, y)["loss"])
        risk["val_loss"].append(logs["val_loss"])
        risk["val_accuracy"].append(logs["val_accuracy"])

    trainer.fit(X, y, epochs=epochs, validation_data=(X_test, y_test), verbose=False,
                callbacks=[nnc.callbacks.LambdaCallback(on_epoch_end=measure)])
    return risk


def main(argv=None):
    args = parse_args(argv)
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=0)
    epochs = 15 if args.quick else 80
    runs = {}
    for n in (150, len(X_train)):
        history = train(X_train[:n], y_train[:n], X_test, y_test, epochs)
        runs[n] = history
        train_loss, test_loss = history["loss"], history["val_loss"]
        print(f"\n{n} training samples: empirical risk (training loss) vs held-out loss")
        print("epoch  training  held-out   gap")
        for e in sorted({0, 1, 2, 4, 9, epochs // 2, epochs - 1} & set(range(epochs))):
            print(f"{e + 1:5d}  {train_loss[e]:8.4f}  {test_loss[e]:8.4f}  "
                  f"{test_loss[e] - train_loss[e]:6.3f}")
        best = min(range(epochs), key=test_loss.__getitem__)
        print(f"lowest held-out loss {test_loss[best]:.4f} at epoch {best + 1}; "
              f"final held-out accuracy {history['val_accuracy'][-1]:.3f}")
    small, large = runs[150], runs[len(X_train)]
    print("\nLesson: training minimises the empirical risk; the held-out loss estimates the "
          f"risk. Final gap: {small['val_loss'][-1] - small['loss'][-1]:.3f} with 150 samples, "
          f"{large['val_loss'][-1] - large['loss'][-1]:.3f} with {len(X_train)}.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 2)
        for ax, (n, history) in zip(axes[0], runs.items()):
            epochs_axis = range(1, epochs + 1)
            ax.plot(epochs_axis, history["loss"], label="training loss (empirical risk)")
            ax.plot(epochs_axis, history["val_loss"], label="held-out loss (estimates the risk)")
            ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_title(f"{n} training samples")
            ax.legend(fontsize="small")
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "01_erm.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return runs


if __name__ == "__main__":
    main()
