"""09 - Batch normalisation (lecture, section 9).

The section starts from the inputs: features in their raw units (one in
the hundreds, the next below one) make one learning rate too large for
some weights and too small for others, so they are standardised with the
training set's statistics, x~_j = (x_j - mu_j) / sigma_j (nnc.Standardiser).
Part 1 trains the same network on raw and on standardised features.

In training, batch-norm normalises each feature of z = W x with the
statistics of the mini-batch,

    mu = 1/m sum_i z_i,  s^2 = 1/m sum_i (z_i - mu)^2,
    z_hat = (z - mu) / sqrt(s^2 + eps),  z_tilde = gamma z_hat + beta,

and keeps running averages mu_hat <- p mu_hat + (1 - p) mu (the same for
s^2) to use at test time, when there is no batch. This script trains
5-layer networks with and without it, compares the speed of training,
and shows why the layer before a batch-norm needs no bias (the batch mean
subtracts it again) and the train/eval difference: in training mode a
sample's output depends on the other samples in its batch, in evaluation
mode it does not.

Run:  python examples/09_batchnorm.py [--quick] [--out DIR]
"""
import argparse
import os
import textwrap
import time
import warnings

import numpy as np

import nnc
from nnc import plotting


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (the full one takes seconds too)")
    parser.add_argument("--out", default=".", help="folder for the PNG (default: .)")
    return parser.parse_args(argv)


def network(batchnorm, activation, depth=5, width=64, seed=0):
    layers, n = [], 64
    for _ in range(depth):
        layers.append(nnc.Dense(n, width, bias=not batchnorm))  # BN cancels a bias
        if batchnorm:
            layers.append(nnc.BatchNorm(width))
        layers.append(activation())
        n = width
    layers.append(nnc.Dense(n, 10))
    return nnc.Sequential(*layers, seed=seed)


class BatchStatistics(nnc.callbacks.Callback):
    """After every step, the feature-averaged batch mean and variance that a
    BatchNorm layer used (``layer.batch_mean``, ``layer.batch_var``; with
    ``Trainer(diagnostics=True)`` they land in ``history.diagnostics`` as
    ``bn_mean.<i>`` and ``bn_var.<i>``)."""

    def __init__(self, layer):
        self.layer, self.means, self.variances = layer, [], []

    def on_step_end(self, trainer, logs):
        self.means.append(float(self.layer.batch_mean.mean()))
        self.variances.append(float(self.layer.batch_var.mean()))


def record_batch_statistics(model):
    return [BatchStatistics(next(l for l in model.layers if isinstance(l, nnc.BatchNorm)))]


def raw_units(X, seed=0):
    """The digits' pixels as if each were measured in its own unit: scaled by
    1 to 100 and shifted by up to 100, as raw tabular features often are."""
    rng = np.random.default_rng(seed)
    scale = 10 ** rng.uniform(0, 2, X.shape[1])
    offset = rng.uniform(0, 100, X.shape[1])
    return (X * scale + offset).astype(np.float32)


def standardisation(X_train, X_test, y_train, y_test, epochs):
    """Held-out accuracy of one network, SGD at several rates, on raw and on
    standardised features; returns {lr: (raw, standardised)}."""
    raw_train, raw_test = raw_units(X_train), raw_units(X_test)
    scaler = nnc.Standardiser().fit(raw_train)  # mu and sigma from the training set only
    inputs = {"raw": (raw_train, raw_test),
              "standardised": (scaler.transform(raw_train), scaler.transform(raw_test))}
    print(f"1. Input standardisation: 64-64-10 ReLU network, SGD, batch 32, {epochs} epochs; "
          "the digits' pixels in made-up units (each scaled by 1-100, shifted by up to 100)")
    print(f"  {'lr':>6s}  {'raw features':^36s}  {'standardised features':^36s}"
          "   (loss: epoch 1 -> last)")
    results, warned = {}, []
    for lr in (0.1, 0.01, 0.001, 3e-4, 1e-4):
        row = {}
        for name, (train, test) in inputs.items():
            model = nnc.Sequential(nnc.Dense(64, 64), nnc.ReLU(), nnc.Dense(64, 10), seed=0)
            trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr), batch_size=32, seed=0,
                                  nan_guard=False)  # let the raw run show what it does
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                history = trainer.fit(train, y_train, epochs=epochs, verbose=False,
                                      validation_data=(test, y_test))
            warned += [str(w.message) for w in caught]
            row[name] = (history["loss"][0], history["loss"][-1], history["val_accuracy"][-1])
        results[lr] = (row["raw"][2], row["standardised"][2])
        print(f"  {lr:6g}" + "".join(f"  loss {a:8.4g} -> {b:6.3f}, held-out acc {c:.3f}"
                                     for a, b, c in row.values()))
    best = {name: max((accuracies[i], lr) for lr, accuracies in results.items())
            for i, name in enumerate(inputs)}
    print("  best held-out accuracy: " + ", ".join(f"{name} {acc:.3f} (lr {lr:g})"
                                                   for name, (acc, lr) in best.items())
          + ": no rate suits every raw feature; one small enough for the largest is too small "
            "for the rest")
    if warned:
        print(textwrap.fill(f"fit warned on the raw features: {warned[0]}", width=100,
                            initial_indent="  ", subsequent_indent="    "))
    before, after = raw_train.astype(np.float64), inputs["standardised"][0].astype(np.float64)
    constant = int((scaler.std == 0).sum())
    print(f"  per feature, before: means {before.mean(0).min():.0f} to {before.mean(0).max():.0f}, "
          f"stds {before.std(0).min():.2g} to {before.std(0).max():.3g}; after: means within "
          f"{np.abs(after.mean(0)).max():.0e} of 0, stds 1 ({constant} constant pixels: 0)")
    return results


def bias_before_batchnorm(X, seed=0):
    """Dense(bias=True) -> BatchNorm: the largest |gradient| of that bias and
    of the weights, and how much the output moves when the bias grows by 5."""
    y = np.arange(len(X)) % 10
    loss = nnc.SoftmaxCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (nnc warns about exactly this bias)
        model = nnc.Sequential(nnc.Dense(64, 32, bias=True), nnc.BatchNorm(32), nnc.ReLU(),
                               nnc.Dense(32, 10), seed=seed, dtype="float64")
        dense = model.layers[0]
        out = model.forward(X, training=True)
        loss.forward(out, y)
        model.backward(loss.backward())
        dense.params["b"] += 5.0
        moved = float(np.abs(model.forward(X, training=True) - out).max())
    return (float(np.abs(dense.grads["b"]).max()), float(np.abs(dense.grads["W"]).max()), moved)


def main(argv=None):
    args = parse_args(argv)
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=0)
    epochs = 3 if args.quick else 15
    standardised = standardisation(X_train, X_test, y_train, y_test, 3 if args.quick else 5)

    print(f"\n2. Training speed: 5 hidden layers of 64, SGD, batch 32, {epochs} epochs")
    # five epochs evenly from the first to the last
    shown_epochs = sorted({round(i * (epochs - 1) / 4) for i in range(5)})
    header = "loss at epoch " + ", ".join(str(e + 1) for e in shown_epochs)
    print(f"{'network':34s} {header:>40s}  {'largest rise':>12s}  {'held-out acc':>12s} "
          f"{'ms/epoch':>8s}")
    runs = {}
    for activation, lr in ((nnc.Sigmoid, 0.1), (nnc.ReLU, 0.1), (nnc.ReLU, 0.5)):
        for batchnorm in (False, True):
            name = f"{activation.__name__}, lr {lr}, " + ("batch-norm" if batchnorm else "plain")
            model = network(batchnorm, activation)
            trainer = nnc.Trainer(model, optimizer=nnc.SGD(lr), batch_size=32, seed=0)
            stats = record_batch_statistics(model) if batchnorm else []
            start = time.perf_counter()
            history = trainer.fit(X_train, y_train, epochs=epochs, callbacks=stats,
                                  validation_data=(X_test, y_test), verbose=False)
            ms = (time.perf_counter() - start) / epochs * 1e3
            runs[name] = (trainer, history, stats)
            shown = [history["loss"][e] for e in shown_epochs]
            rise = max([0.0, *np.diff(history["loss"])])  # an unstable run's loss jumps
            print(f"{name:34s} {' '.join(f'{v:7.3f}' for v in shown):>40s}  {rise:+12.3f}  "
                  f"{history['val_accuracy'][-1]:12.3f} {ms:8.1f}")
    print("   (largest rise: the largest increase of the epoch loss from one epoch to the next; "
          "batch-norm costs more\n    time per epoch, and trains fast by needing fewer epochs)")

    bias_grad, weight_grad, moved = bias_before_batchnorm(X_train[:256])
    print("\n3. A bias before batch-norm (Dense(bias=True) -> BatchNorm, one batch of 256):")
    print(f"  largest |dL/db| {bias_grad:.1e} against |dL/dW| {weight_grad:.1e}; adding 5 to "
          f"every b moves the output by {moved:.1e}: the batch mean takes b away again, "
          "so the layer is built with bias=False and BatchNorm's beta is the shift")

    trainer, history, stats = runs["ReLU, lr 0.5, batch-norm"]
    model = trainer.model
    print("\n4. Train/eval difference (the batch-norm ReLU network)")
    eval_out = model.predict(X_test)  # running averages: each sample on its own
    eval_acc = float(np.mean(eval_out.argmax(axis=1) == y_test))
    print(f"  evaluation mode (running averages):        accuracy {eval_acc:.3f}")
    saved = [{k: v.copy() for k, v in layer.buffers.items()} for layer in model.layers]
    modes = {}
    for batch in (2, 8, 64, len(X_test)):
        outs = [model.forward(X_test[s:s + batch], training=True)
                for s in range(0, len(X_test) - batch + 1, batch)]
        out = np.concatenate(outs)
        n = len(out)
        acc = float(np.mean(out.argmax(axis=1) == y_test[:n]))
        diff = float(np.abs(out - eval_out[:n]).max())
        modes[batch] = (acc, diff)
        print(f"  training mode, batches of {batch:3d} (batch stats): accuracy {acc:.3f}, "
              f"largest output difference to evaluation mode {diff:.3f}")
    for layer, buffers in zip(model.layers, saved):  # training-mode passes moved them
        for k, v in buffers.items():
            layer.buffers[k][...] = v
    means, variances = stats[0].means, stats[0].variances
    print(f"  the batch means of layer 1 (averaged over its features) ranged over "
          f"[{min(means):.3f}, {max(means):.3f}] and the variances over [{min(variances):.3f}, "
          f"{max(variances):.3f}] from batch to batch: in training a sample's output depends "
          "on its batch")

    print("\nLesson: standardise the inputs with the training set's mean and std (in raw units "
          "no learning rate comes close: one small enough for the largest feature is too slow for "
          "the rest); normalising each layer's input per mini-batch "
          "lets deep networks train fast and at larger learning rates, where the plain ones "
          "stall (sigmoid) or become unstable (ReLU, lr 0.5), and makes the bias before it "
          "useless; at test time the running averages replace the batch statistics, so call "
          "model.eval() / predict to get each sample's own answer.")

    if plotting.available():
        fig, axes = plotting.new_figure(1, 4, figsize=(21, 4.4))
        for name, (_, h, _) in runs.items():
            axes[0, 0].plot(range(1, epochs + 1), h["loss"], "o-", ms=3, label=name)
        axes[0, 0].set_yscale("log")
        axes[0, 0].set_xlabel("epoch")
        axes[0, 0].xaxis.get_major_locator().set_params(integer=True)  # whole epochs
        axes[0, 0].set_title("training loss")
        axes[0, 0].legend(fontsize="x-small")
        ax = axes[0, 1]
        ax.plot(means, lw=0.8, label="batch mean (avg over features)")
        ax.plot(variances, lw=0.8, label="batch variance (avg)")
        ax.set_xlabel("step")
        ax.set_title("batch statistics of layer 1 (BatchNorm)")
        ax.legend(fontsize="small")
        ax = axes[0, 2]
        sizes = list(modes)
        ax.bar([str(b) for b in sizes], [modes[b][0] for b in sizes], label="training mode")
        ax.axhline(eval_acc, color="k", ls="--", label="evaluation mode")
        ax.set_ylim(0, 1.2)  # (room above the bars for the legend)
        ax.set_xlabel("batch size")
        ax.set_title("held-out accuracy, batch vs running statistics")
        ax.legend(fontsize="small", loc="upper left", ncol=2)
        ax = axes[0, 3]
        rates = list(standardised)
        positions = np.arange(len(rates))
        ax.bar(positions - 0.2, [standardised[lr][0] for lr in rates], 0.4, label="raw features")
        ax.bar(positions + 0.2, [standardised[lr][1] for lr in rates], 0.4,
               label="standardised features")
        ax.set_xticks(positions, [f"lr {lr:g}" for lr in rates])
        ax.set_ylim(0, 1.05)
        ax.set_title("held-out accuracy, raw vs standardised inputs (SGD)")
        ax.legend(fontsize="small")
        os.makedirs(args.out, exist_ok=True)
        print("figure:", plotting.save(fig, os.path.join(args.out, "09_batchnorm.png")))
    else:
        print("(install matplotlib for the figure: pip install matplotlib)")
    return {"histories": {name: h for name, (_, h, _) in runs.items()},
            "eval_accuracy": eval_acc, "train_mode": modes, "standardisation": standardised,
            "bias_before_batchnorm": {"bias_grad": bias_grad, "weight_grad": weight_grad,
                                      "output_moved": moved}}


if __name__ == "__main__":
    main()
