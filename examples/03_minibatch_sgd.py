"""03 - Stochastic mini-batch gradient descent (lecture, section 3).

The gradient of the empirical risk is a mean over all N samples; a
mini-batch of N_b samples estimates it,

    grad L(w) ~ 1/N_b sum_{i in batch} grad L(y_i, h(x_i; w)),

with a standard error that falls like sigma / sqrt(N_b): less than
linear returns for a larger batch. This script writes the lecture's
Algorithm 2 out with nnc's parts (it is what Trainer.fit does), measures that noise, the
time of an epoch for several batch sizes, and what happens without the
per-epoch shuffle when the data arrive sorted by class.

Run:  python examples/03_minibatch_sgd.py [--quick] [--out DIR]
"""
import argparse
import os
import time

import numpy as np

import nnc
from nnc import plotting


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (the full one takes seconds too)")
    parser.add_argument("--out", default=".", help="folder for the PNG (default: .)")
    return parser.parse_args(argv)


def network(seed=0):
    return nnc.Sequential(nnc.Dense(64, 64), nnc.ReLU(), nnc.Dense(64, 10), seed=seed)


def algorithm_2(X, y, lr, batch_size, epochs, seed=0):
    """The lecture's Algorithm 2 written out with nnc's parts: what
    ``Trainer(model, optimizer=nnc.SGD(lr), batch_size, seed).fit`` does."""
    model, loss = network(), nnc.SoftmaxCrossEntropy()
    optimizer = nnc.SGD(lr).bind(model)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(X))  # iid batches: a fresh shuffle every epoch
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]  # D_b
            loss.forward(model.forward(X[batch], training=True), y[batch])  # L on D_b
            model.backward(loss.backward())  # grad_w L, by back-propagation
            optimizer.step()  # w <- w - a grad_w L
    return model


def gradient(model, loss, X, y):
    """The flat gradient of the mean loss over (X, y)."""
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    return model.flat_grads.astype(np.float64)


def gradient_noise(X, y, batch_sizes, draws, seed=0):
    """Mean ||g_batch - g_full|| over random batches, at fixed weights."""
    model, loss = network(seed), nnc.SoftmaxCrossEntropy()
    full = gradient(model, loss, X, y)
    rng = np.random.default_rng(seed)
    noise = {}
    for b in batch_sizes:
        errors = [np.linalg.norm(gradient(model, loss, X[idx], y[idx]) - full)
                  for idx in (rng.choice(len(X), b, replace=False) for _ in range(draws))]
        noise[b] = float(np.mean(errors))
    return noise


def main(argv=None):
    args = parse_args(argv)
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=0)
    batch_sizes = [1, 4, 16, 64, 256]
    draws, epochs = (20, 3) if args.quick else (200, 15)

    by_hand = algorithm_2(X_train, y_train, 0.05, 32, epochs=2)
    trainer = nnc.Trainer(network(), optimizer=nnc.SGD(0.05), batch_size=32, seed=0)
    trainer.fit(X_train, y_train, epochs=2, verbose=False)
    same = float(np.abs(by_hand.flat_params - trainer.model.flat_params).max())
    print("0. Algorithm 2 written out (shuffle; per batch: forward, loss, backward, "
          "optimizer.step()) for 2 epochs,\n   against Trainer.fit with the same seed: largest "
          f"weight difference {same:g}")

    print("\n1. Gradient noise at fixed weights: ||g_batch - g_full||, mean over "
          f"{draws} random batches")
    noise = gradient_noise(X_train, y_train, batch_sizes, draws)
    print("batch  noise    noise x sqrt(batch)")
    for b, value in noise.items():
        print(f"{b:5d}  {value:.4f}   {value * np.sqrt(b):.4f}")
    print("   (a roughly constant last column is the sigma / sqrt(N_b) law; batches drawn "
          "without replacement\n    from N samples are a little less noisy, by "
          f"sqrt(1 - (N_b - 1)/(N - 1)): {np.sqrt(1 - 255 / (len(X_train) - 1)):.2f} at N_b = 256)")

    print(f"\n2. Batch size vs time per epoch and loss after {epochs} epochs (SGD, lr 0.05)")
    print("batch  steps/epoch  ms/epoch  held-out loss")
    timing = {}
    for b in [4, 16, 64, 256]:
        trainer = nnc.Trainer(network(), optimizer=nnc.SGD(0.05), batch_size=b, seed=0)
        start = time.perf_counter()
        trainer.fit(X_train, y_train, epochs=epochs, verbose=False)
        ms = (time.perf_counter() - start) / epochs * 1e3
        held_out = trainer.evaluate(X_test, y_test)["loss"]
        timing[b] = (ms, held_out)
        print(f"{b:5d}  {-(-len(X_train) // b):11d}  {ms:8.2f}  {held_out:.4f}")
    print("   (small batches: more updates per epoch, each cheap but noisy; large batches: "
          "fewer, more accurate,\n    better use of the CPU; after the same number of epochs "
          "the large batches have taken far fewer steps)")

    print("\n3. Shuffling: the training data sorted by class, batch 32, SGD lr 0.05")
    order = np.argsort(y_train, kind="stable")
    curves = {}
    for shuffle in (True, False):
        trainer = nnc.Trainer(network(), optimizer=nnc.SGD(0.05), batch_size=32, seed=0)
        history = trainer.fit(X_train[order], y_train[order], epochs=epochs, shuffle=shuffle,
                              verbose=False)
        accuracy = trainer.evaluate(X_test, y_test)["accuracy"]
        curves[shuffle] = (history.steps["loss"], accuracy)
        print(f"shuffle={shuffle!s:5s}: held-out accuracy {accuracy:.3f}")
    print("   (unshuffled, every batch holds one class: consecutive gradients are not "
          "independent and the model chases the latest class)")

    print("\nLesson: a mini-batch gives a noisy but unbiased gradient whose noise falls like "
          "1/sqrt(N_b); shuffle every epoch so that batches are independent samples.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 3, figsize=(15, 4))
        ax = axes[0, 0]
        b = np.array(batch_sizes, dtype=float)
        ax.loglog(b, list(noise.values()), "o-", label="measured")
        ax.loglog(b, noise[1] / np.sqrt(b), "k:", label="sigma / sqrt(N_b)")
        ax.set_xlabel("batch size N_b")
        ax.set_title("gradient noise")
        ax.legend()
        ax = axes[0, 1]
        ax.plot(list(timing), [v[0] for v in timing.values()], "o-")
        ax.set_xscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("ms per epoch")
        ax.set_title("time per epoch")
        ax = axes[0, 2]
        for shuffle, (losses, accuracy) in curves.items():
            ax.plot(losses, lw=0.8, label=f"shuffle={shuffle} (acc {accuracy:.2f})")
        ax.set_xlabel("step")
        ax.set_title("mini-batch loss, data sorted by class")
        ax.legend()
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "03_minibatch_sgd.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return {"noise": noise, "timing": timing, "by_hand_vs_fit": same,
            "accuracy": {shuffle: acc for shuffle, (_, acc) in curves.items()}}


if __name__ == "__main__":
    main()
