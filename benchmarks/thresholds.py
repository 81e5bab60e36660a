"""Where does a second (fourth, ...) thread start to pay? Times the compiled
kernels at growing sizes for each thread count, with the parallel thresholds
forced off (every size may use every thread), and prints the ratios.

    python benchmarks/thresholds.py --threads 1,2,4

Used to choose the defaults in nnc/_kernels/_threads.pyx
(``nnc.set_parallel_thresholds`` changes them at run time).
"""
import argparse
import numpy as np

import nnc
from nnc._kernels import _threads
from nnc.backends import get_backend
from nnc.benchmark import median_seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    be = get_backend("cython", np.float32)
    _threads.set_parallel_thresholds(elementwise=0, gemm=0)
    rng = np.random.default_rng(0)
    print("elementwise (Adam update, relu): microseconds per call")
    for size in [2 ** k for k in range(14, 25, 2)]:
        w, g, m, v = (rng.random(size, dtype=np.float32) for _ in range(4))
        x = rng.random((size // 256, 256), dtype=np.float32)
        out = np.empty_like(x)
        row = []
        for t in threads:
            nnc.set_num_threads(t)
            adam = median_seconds(lambda: be.adam_update(w, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1, 0.0))
            relu = median_seconds(lambda: be.relu_forward(x, out))
            row.append(f"t={t}: adam {adam * 1e6:9.1f} relu {relu * 1e6:8.1f}")
        print(f"  n={size:>9}  " + "  ".join(row))
    print("GEMM (batch x 784 @ 784 x 256): microseconds per call")
    for batch in (8, 32, 128, 512, 2048):
        a = rng.random((batch, 784), dtype=np.float32)
        b = rng.random((784, 256), dtype=np.float32)
        c = np.empty((batch, 256), np.float32)
        row = []
        for t in threads:
            nnc.set_num_threads(t)
            row.append(f"t={t}: {median_seconds(lambda: be.gemm(a, b, c)) * 1e6:9.1f}")
        print(f"  batch={batch:>5} ({batch * 784 * 256 / 1e6:6.1f}M MAC)  " + "  ".join(row))


if __name__ == "__main__":
    main()
