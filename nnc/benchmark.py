"""Speed of one training epoch, nnc against the alternatives, measured side by side.

Contenders train the same MLP (784-256-128-10 by default, ReLU, softmax
cross-entropy, Adam) on the same ``make_mnist_like`` data:

* ``nnc``        nnc with the compiled (Cython) backend
* ``nnc-numpy``  nnc with its NumPy reference backend (same Python above the kernels)
* ``numpy-mlp``  ``NumpyMLP`` below: a standalone, idiomatic NumPy MLP as a
                 competent user would write it (vectorised, in place where natural)
* ``torch``      PyTorch eager on the CPU, when ``torch`` is importable
* ``gemm-floor`` the step's matrix products alone through the same BLAS
                 (scipy's OpenBLAS), nothing else: the floor nnc can approach

Contenders are interleaved (A B C A B C ...) and each reports the median of
``repeats`` epochs; ratios are taken within one run. ``python -m nnc bench``
runs a small sweep; ``benchmarks/run_benchmarks.py`` the full one.
"""
import json
import os
import platform
import statistics
import time

import numpy as np

import nnc
from nnc.datasets import load_digits, make_mnist_like


def median_seconds(f, repeats=7, inner=None):
    """Median over ``repeats`` samples of the mean time of ``inner`` calls
    of ``f()`` (``inner=None``: enough calls for ~2 ms per sample), after
    one warm-up call."""
    from nnc._validation import check_int

    if not callable(f):
        raise TypeError(f"f must be a function to time (called with no arguments), got {f!r:.60}")
    repeats = check_int(repeats, "repeats", low=1)
    inner = None if inner is None else check_int(inner, "inner", low=1)
    f()
    if inner is None:
        start = time.perf_counter()
        f()
        inner = max(1, int(2e-3 / max(time.perf_counter() - start, 1e-7)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            f()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


class NumpyMLP:
    """A plain NumPy MLP with ReLU hidden layers, softmax cross-entropy and
    Adam — independent of nnc, written the way a competent user would."""

    def __init__(self, sizes, lr=1e-3, seed=0, dtype=np.float32):
        rng = np.random.default_rng(seed)
        self.W = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(dtype)
                  for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b, dtype) for b in sizes[1:]]
        self.params = self.W + self.b
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.lr, self.t = lr, 0

    def step(self, x, y):
        activations = [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = activations[-1] @ W
            z += b
            if i < len(self.W) - 1:
                np.maximum(z, 0, out=z)
            activations.append(z)
        logits = activations[-1]
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        n = len(y)
        loss = -np.log(logits[np.arange(n), y] + 1e-12).mean()
        delta = logits
        delta[np.arange(n), y] -= 1
        delta /= n
        grads_W, grads_b = [None] * len(self.W), [None] * len(self.W)
        for i in range(len(self.W) - 1, -1, -1):
            grads_W[i] = activations[i].T @ delta
            grads_b[i] = delta.sum(axis=0)
            if i:
                delta = delta @ self.W[i].T
                delta *= activations[i] > 0
        self.t += 1
        c1, c2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        for p, g, m, v in zip(self.params, grads_W + grads_b, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + 1e-8)
        return loss


def _epoch_runner(name, sizes, X, y, batch_size, batchnorm, threads):
    """A function that trains one epoch, or None if the contender is unavailable."""
    rng = np.random.default_rng(0)
    n = len(X)
    if name in ("nnc", "nnc-numpy"):
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nnc.Dense(a, b, bias=not batchnorm)]
            layers += [nnc.BatchNorm(b)] if batchnorm else []
            layers += [nnc.ReLU()]
        model = nnc.Sequential(*layers, nnc.Dense(sizes[-2], sizes[-1]), seed=0,
                               backend="cython" if name == "nnc" else "numpy")
        trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=batch_size)
        return lambda: trainer.fit(X, y, epochs=1, verbose=False)
    if name == "numpy-mlp":
        if batchnorm:
            return None
        mlp = NumpyMLP(sizes)

        def run():
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                mlp.step(X[index], y[index])
        return run
    if name == "torch":
        try:
            import torch
        except ImportError:
            return None
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [torch.nn.Linear(a, b, bias=not batchnorm, dtype=torch.float32)]
            if batchnorm:
                layers += [torch.nn.BatchNorm1d(b, momentum=0.1, dtype=torch.float32)]
            layers += [torch.nn.ReLU()]
        model = torch.nn.Sequential(
            *layers, torch.nn.Linear(sizes[-2], sizes[-1], dtype=torch.float32))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

        def run():
            order = torch.from_numpy(rng.permutation(n))
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                if batchnorm and len(index) < 2:
                    continue
                optimizer.zero_grad()
                loss_fn(model(Xt[index]), yt[index]).backward()
                optimizer.step()
        return run
    if name == "gemm-floor":
        from nnc._kernels._blas import gemm_into
        from nnc.threads import pin_scipy_blas

        pin_scipy_blas()  # as the compiled backend does when it loads
        pairs = list(zip(sizes[:-1], sizes[1:]))
        bufs = []
        for a, b in pairs:
            bufs.append(dict(x=np.ones((batch_size, a), np.float32), w=np.ones((a, b), np.float32),
                             y=np.empty((batch_size, b), np.float32),
                             dw=np.empty((a, b), np.float32),
                             dx=np.empty((batch_size, a), np.float32)))
        steps = -(-n // batch_size)

        def run():
            for _ in range(steps):
                for buf in bufs:
                    gemm_into(buf["x"], buf["w"], buf["y"])
                for i, buf in enumerate(bufs):
                    gemm_into(buf["x"], buf["y"], buf["dw"], trans_a=True)
                    if i:
                        gemm_into(buf["y"], buf["w"], buf["dx"], trans_b=True)
        return run
    raise ValueError(f"unknown contender {name!r}")


CONTENDERS = ("nnc", "nnc-numpy", "numpy-mlp", "torch", "gemm-floor")
IDLE_BETWEEN_CONTENDERS = 0.25  # seconds


def _limit_other_blas(threads):
    """Give every BLAS other than scipy's (numpy's own OpenBLAS, used by the
    NumPy contenders) the same thread count as the contenders; scipy's
    stays at one thread, nnc's OpenMP pool splits its GEMMs. Returns the
    previous counts."""
    from threadpoolctl import ThreadpoolController

    from nnc.threads import _is_scipy_blas

    libs = [lib for lib in ThreadpoolController().lib_controllers
            if lib.user_api == "blas" and not _is_scipy_blas(lib)]
    previous = [(lib, lib.num_threads) for lib in libs]
    for lib in libs:
        lib.set_num_threads(threads)
    return previous


def _values(values, name, check, unique=True):
    """A non-empty tuple of checked values (``unique``: duplicates dropped)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list or tuple of values, got {values!r:.60}")
    values = tuple(check(v, name) for v in values)
    if unique:
        values = tuple(dict.fromkeys(values))
    if not values:
        raise ValueError(f"{name} must name at least one value")
    return values


def _check_contender(name, argument):
    if name not in CONTENDERS:
        raise ValueError(f"{argument}: unknown contender {name!r}, expected some of "
                         f"{', '.join(CONTENDERS)}")
    return name


#: the input width and the classes of make_mnist_like's data
MNIST_FEATURES, MNIST_CLASSES = 784, 10
#: the most weights a benchmark model may have (2^27: 0.5 GB in float32 per copy)
MAX_WEIGHTS = 2 ** 27


def run_sweep(n_samples=60000, sizes=(784, 256, 128, 10), batch_sizes=(32, 128, 512),
              batchnorm=(False, True), threads=(1, 2), repeats=3, contenders=CONTENDERS,
              tiny_steps=2000, progress=True):
    """Time every contender in every configuration; returns a result dict."""
    from tqdm.auto import tqdm

    from nnc._validation import check_bool, check_int

    # every argument checked before any work (a bad one must not cost a run)
    repeats = check_int(repeats, "repeats", low=1)
    tiny_steps = check_int(tiny_steps, "tiny_steps", low=1)
    batch_sizes = _values(batch_sizes, "batch_sizes", lambda b, name: check_int(b, name, low=1))
    threads = _values(threads, "threads", lambda t, name: check_int(
        t, name, low=1, high=nnc.threads.MAX_THREADS))
    batchnorm = _values(batchnorm, "batchnorm", check_bool)
    contenders = _values(contenders, "contenders", _check_contender)
    sizes = _values(sizes, "sizes", lambda n, name: check_int(n, name, low=1), unique=False)
    if len(sizes) < 2:
        raise ValueError(f"sizes must give the input width and at least one layer width, e.g. "
                         f"(784, 256, 10), got {sizes}")
    if sizes[0] != MNIST_FEATURES or sizes[-1] != MNIST_CLASSES:
        raise ValueError(f"sizes: the MNIST-shaped data fixes the input width (sizes[0]) at "
                         f"{MNIST_FEATURES} and the classes (sizes[-1]) at {MNIST_CLASSES}, "
                         f"got {sizes}")
    sizes = list(sizes)
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    if weights > MAX_WEIGHTS:
        raise ValueError(f"sizes {sizes} make {weights} weights, more than the {MAX_WEIGHTS} a "
                         "benchmark run holds (each contender keeps its own copies)")
    progress = check_bool(progress, "progress")
    n_samples = check_int(n_samples, "n_samples", low=1)
    if max(batch_sizes) > n_samples:
        raise ValueError(f"batch_sizes: {max(batch_sizes)} is larger than the "
                         f"{n_samples} samples")
    X, y = make_mnist_like(n_samples, seed=0)
    configs = [(b, bn, t) for t in threads for bn in batchnorm for b in batch_sizes]
    rows = []
    before = nnc.get_num_threads()
    other_blas = _limit_other_blas(1)
    bar = tqdm(total=len(configs) * repeats, desc="benchmark", disable=not progress)
    try:
        for batch_size, bn, t in configs:
            nnc.set_num_threads(t)
            _limit_other_blas(t)
            runners = {c: _epoch_runner(c, sizes, X, y, batch_size, bn, t) for c in contenders}
            runners = {c: r for c, r in runners.items() if r is not None}
            for r in runners.values():  # warm-up: workspaces, caches, first-touch pages
                r()
            times = {c: [] for c in runners}
            for _ in range(repeats):
                for c, r in runners.items():
                    # let the previous contender's thread pool (PyTorch's
                    # spins after each op) fall asleep before timing the next
                    time.sleep(IDLE_BETWEEN_CONTENDERS)
                    start = time.perf_counter()
                    r()
                    times[c].append(time.perf_counter() - start)
                bar.update(1)
            medians = {c: statistics.median(v) for c, v in times.items()}
            rows.append({
                "batch_size": batch_size, "batchnorm": bn, "threads": t,
                "seconds": medians,
                "ratio_to_nnc": {c: medians[c] / medians["nnc"] for c in medians} if "nnc" in medians else {},
            })
    finally:
        bar.close()
        nnc.set_num_threads(before)
        for lib, count in other_blas:
            lib.set_num_threads(count)
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "nnc": nnc.__version__},
        "setup": {"n_samples": n_samples, "sizes": sizes, "optimizer": "Adam(1e-3)",
                  "dtype": "float32", "repeats": repeats,
                  "unavailable": [c for c in contenders if c not in rows[0]["seconds"]] if rows else []},
        "rows": rows,
        "tiny": tiny_net_step_times(tiny_steps),
    }


def tiny_net_step_times(steps=2000, batch_sizes=(1, 16)):
    """Microseconds per training step of 64-128-10 on the digits (median of up
    to 25 blocks of steps): the per-step overhead that decides small-batch speed."""
    from nnc._validation import check_int

    X, y = load_digits()
    steps = check_int(steps, "steps", low=1)
    batch_sizes = _values(batch_sizes, "batch_sizes", lambda b, name: check_int(
        b, name, low=1, high=len(X)))
    result = {}
    for batch_size in batch_sizes:
        model = nnc.Sequential(nnc.Dense(64, 128), nnc.ReLU(), nnc.Dense(128, 10), seed=0)
        trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=batch_size)
        xb, yb = X[:batch_size].copy(), y[:batch_size].copy()
        for _ in range(100):
            trainer._train_step(xb, yb)
        # many short blocks: on a shared machine a burst of other work then
        # spoils a few blocks instead of moving the median
        time.sleep(IDLE_BETWEEN_CONTENDERS)
        blocks, n_blocks = [], min(25, steps)
        per_block = steps // n_blocks
        for _ in range(n_blocks):
            start = time.perf_counter()
            for _ in range(per_block):
                trainer._train_step(xb, yb)
            blocks.append((time.perf_counter() - start) / per_block)
        result[f"batch_{batch_size}_us_per_step"] = statistics.median(blocks) * 1e6
    return result


def markdown_table(result):
    names = [c for c in CONTENDERS if any(c in r["seconds"] for r in result["rows"])]
    compared = [c for c in names if c != "nnc"] if "nnc" in names else []  # ratios to nnc
    header = ["batch", "batch-norm", "threads"] + [f"{c} (s)" for c in names] \
        + [f"{c} / nnc" for c in compared]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in result["rows"]:
        secs = [f"{r['seconds'][c]:.3f}" if c in r["seconds"] else "—" for c in names]
        ratios = [f"{r['ratio_to_nnc'][c]:.2f}" if c in r["ratio_to_nnc"] else "—"
                  for c in compared]
        lines.append(f"| {r['batch_size']} | {'yes' if r['batchnorm'] else 'no'} | "
                     f"{r['threads']} | " + " | ".join(secs + ratios) + " |")
    tiny = result.get("tiny", {})
    if tiny:
        lines.append("")
        lines.append("Tiny net (64-128-10, digits, Adam): " + ", ".join(
            f"{k.replace('_us_per_step', '').replace('_', ' ')}: {v:.1f} µs/step"
            for k, v in tiny.items()))
    return "\n".join(lines)


def write_results(result, folder):
    """JSON, Markdown and (with matplotlib) a PNG bar chart; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = {"json": os.path.join(folder, "benchmark.json"),
             "markdown": os.path.join(folder, "benchmark.md")}
    with open(paths["json"], "w") as f:
        json.dump(result, f, indent=2)
    with open(paths["markdown"], "w") as f:
        f.write(markdown_table(result) + "\n")
    from nnc import plotting

    try:
        plotting.require_matplotlib()
    except ImportError:  # (the chart is optional: the JSON and the table are written)
        return paths
    rows = result["rows"]
    names = [c for c in CONTENDERS if any(c in r["seconds"] for r in rows)]
    if not names:
        return paths
    # an Agg canvas without pyplot: a notebook's matplotlib backend is left alone
    fig, axes = plotting.new_figure(1, 1, figsize=(max(6, len(rows) * 1.2) + 1.6, 4))
    ax = axes[0, 0]
    width = 0.8 / len(names)
    for k, c in enumerate(names):  # no bar where a contender did not run (not a 0 s one)
        ran = [(i, r["seconds"][c]) for i, r in enumerate(rows) if c in r["seconds"]]
        ax.bar([i + k * width for i, _ in ran], [t for _, t in ran], width, label=c)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
    ax.set_xticklabels([f"b{r['batch_size']}{' bn' if r['batchnorm'] else ''} t{r['threads']}"
                        for r in rows], rotation=45, ha="right")
    ax.set_ylabel("seconds per epoch")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    paths["png"] = plotting.save(fig, os.path.join(folder, "benchmark.png"))
    return paths
