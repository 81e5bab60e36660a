"""Is a layer's GEMM slower than the floor's? Same shapes, different inputs;
and numpy's own BLAS (np.matmul) beside scipy's, both on one thread.

    python benchmarks/gemm_probe.py
"""
import numpy as np

import nnc
from nnc.benchmark import _limit_other_blas, median_seconds


def us(f):
    return median_seconds(f, inner=30) * 1e6


nnc.set_num_threads(1)
_limit_other_blas(1)  # numpy's OpenBLAS would otherwise use every core
be = nnc.backends.get_backend("cython", np.float32)
X, y = nnc.datasets.make_mnist_like(2048, seed=0)
rng = np.random.default_rng(0)
for bs in (128, 512):
    xb = X[:bs].copy()
    ones = np.ones_like(xb)
    W = (rng.standard_normal((784, 256)) * 0.05).astype(np.float32)
    b = np.zeros(256, np.float32)
    out = np.empty((bs, 256), np.float32)
    dy = (rng.standard_normal((bs, 256)) * 1e-3).astype(np.float32)
    dW = np.empty_like(W)
    dx = np.empty_like(xb)
    print(f"bs {bs}: gemm(data) {us(lambda: be.gemm(xb, W, out)):.0f}  gemm(ones) "
          f"{us(lambda: be.gemm(ones, W, out)):.0f}  dense_fwd {us(lambda: be.dense_forward(xb, W, b, out)):.0f}"
          f"  dense_fwd(no b) {us(lambda: be.dense_forward(xb, W, None, out)):.0f}"
          f"  dW {us(lambda: be.gemm(xb, dy, dW, trans_a=True)):.0f}"
          f"  dW(ones) {us(lambda: be.gemm(ones, dy, dW, trans_a=True)):.0f}"
          f"  dx {us(lambda: be.gemm(dy, W, dx, trans_b=True)):.0f}"
          f"  np.matmul {us(lambda: np.matmul(xb, W, out=out)):.0f}")
