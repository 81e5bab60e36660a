"""Per-step time of the 784-256-128-10 MLP (Adam) and its parts, against the
GEMM floor, for each batch size: where does a training step spend its time?

    python benchmarks/step_profile.py --threads 1
"""
import argparse
import numpy as np

import nnc
from nnc.benchmark import median_seconds


def median_us(f):
    return median_seconds(f, repeats=9, inner=20) * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", default="1,32,128,512")
    args = parser.parse_args()
    nnc.set_num_threads(args.threads)
    X, y = nnc.datasets.make_mnist_like(2048, seed=0)
    be = nnc.backends.get_backend("cython", np.float32)
    sizes = [784, 256, 128, 10]
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        model = nnc.Sequential(nnc.Dense(784, 256), nnc.ReLU(), nnc.Dense(256, 128), nnc.ReLU(),
                               nnc.Dense(128, 10), seed=0)
        trainer = nnc.Trainer(model, optimizer=nnc.Adam(1e-3), batch_size=bs)
        xb, yb = X[:bs].copy(), y[:bs].copy()
        out = model._forward(xb, True)
        trainer.loss._forward(out, yb)
        bufs = [dict(x=np.ones((bs, a), np.float32), w=np.ones((a, b), np.float32),
                     y=np.empty((bs, b), np.float32), dw=np.empty((a, b), np.float32),
                     dx=np.empty((bs, a), np.float32)) for a, b in zip(sizes[:-1], sizes[1:])]

        def floor():
            for buf in bufs:
                be.gemm(buf["x"], buf["w"], buf["y"])
            for i, buf in enumerate(bufs):
                be.gemm(buf["x"], buf["y"], buf["dw"], trans_a=True)
                if i:
                    be.gemm(buf["y"], buf["w"], buf["dx"], trans_b=True)

        parts = {
            "step": lambda: trainer._train_step(xb, yb),
            "gemm_floor": floor,
            "forward": lambda: model._forward(xb, True),
            "loss": lambda: trainer.loss._forward(out, yb),
            "backward": lambda: model._backward(trainer.loss._grad),
            "norms": lambda: trainer._record_gradient_norms(trainer.history.steps),  # (appends)
            "adam": trainer.optimizer.step,
        }
        times = {name: median_us(f) for name, f in parts.items()}
        print(f"batch {bs:4d}: " + "  ".join(f"{k} {v:8.1f}us" for k, v in times.items())
              + f"  step/floor {times['step'] / times['gemm_floor']:.2f}")


if __name__ == "__main__":
    main()
