"""Batch normalisation over the rows of a (batch, features) matrix
(lecture, section 9), in the lecture's notation:

μ_j = 1/m Σ_i z_ij          σ²_j = 1/m Σ_i (z_ij - μ_j)²     (biased)
ẑ_ij = (z_ij - μ_j) / sqrt(σ²_j + ε)
z̃_ij = γ_j ẑ_ij + β_j
running:  μ̂ ← ρ μ̂ + (1-ρ) μ,   σ̂² ← ρ σ̂² + (1-ρ) σ²

Backward (closed form), with g = dL/dz̃:
dβ_j = Σ_i g_ij,   dγ_j = Σ_i g_ij ẑ_ij
dz_ij = γ_j / (m sqrt(σ²_j + ε)) · (m g_ij - dβ_j - ẑ_ij dγ_j)

The per-feature sums are column reductions over row blocks (_reduce.pxi);
the elementwise passes are split by rows.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport malloc, free

from nnc._kernels._parallel cimport elementwise_threads
include "_reduce.pxi"

include "_checks.pxi"


cdef void normalize_rows(const floating* x, const floating* center, const floating* residual,
                         const floating* scale, const floating* shift,
                         Py_ssize_t rows, Py_ssize_t cols, floating* out,
                         const floating* scale2, const floating* shift2,
                         floating* out2) noexcept nogil:
    """out = ((x - center) - residual) * scale + shift per column and, when
    out2 is given, out2 = out * scale2 + shift2, row by row (the second loop
    reads the row the first just wrote, still in L1).

    x - center first: for a feature with a large mean, x and its mean are
    close, so the difference is exact (x * scale + shift, the same map
    expanded, cancels two large numbers); ``residual`` is the part of the
    double-precision mean that ``center`` (rounded to the data's type) lost.
    One loop writing both outputs did not vectorise: gcc gives up on
    checking the pointers for overlap."""
    cdef Py_ssize_t i
    cdef int nt = elementwise_threads(rows * cols)
    for i in prange(rows, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        normalize_row(x + i * cols, center, residual, scale, shift, cols, out + i * cols)
        if out2 != NULL:
            affine_row(out + i * cols, scale2, shift2, cols, out2 + i * cols)


cdef inline void normalize_row(const floating* x, const floating* center,
                               const floating* residual, const floating* scale,
                               const floating* shift, Py_ssize_t cols,
                               floating* out) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(cols):
        out[j] = ((x[j] - center[j]) - residual[j]) * scale[j] + shift[j]


cdef inline void affine_row(const floating* x, const floating* scale, const floating* shift,
                            Py_ssize_t cols, floating* out) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(cols):
        out[j] = x[j] * scale[j] + shift[j]


def batchnorm_forward_train(const floating[:, ::1] x not None, const floating[::1] gamma not None,
                            const floating[::1] beta not None, floating[::1] running_mean not None,
                            floating[::1] running_var not None, double momentum, double eps,
                            floating[:, ::1] out not None, floating[:, ::1] x_hat not None,
                            floating[::1] batch_mean not None, floating[::1] batch_var not None,
                            floating[::1] inv_std not None):
    """Normalise with batch statistics; writes out = γ ẑ + β, ẑ (kept for
    backward), μ, σ², 1/sqrt(σ² + ε), and updates the running averages."""
    cdef Py_ssize_t m = x.shape[0], f = x.shape[1], j
    cdef int status = 0
    check_shape("gamma", gamma.shape, 1, f, 0)
    check_shape("beta", beta.shape, 1, f, 0)
    check_shape("running_mean", running_mean.shape, 1, f, 0)
    check_shape("running_var", running_var.shape, 1, f, 0)
    check_shape("batch_mean", batch_mean.shape, 1, f, 0)
    check_shape("batch_var", batch_var.shape, 1, f, 0)
    check_shape("inv_std", inv_std.shape, 1, f, 0)
    check_same_shape("out", out.shape, "x", x.shape, 2)
    check_same_shape("x_hat", x_hat.shape, "x", x.shape, 2)
    cdef Extent arrays[10]
    arrays[0] = span2(out); arrays[1] = span2(x_hat); arrays[2] = span1(batch_mean)
    arrays[3] = span1(batch_var); arrays[4] = span1(inv_std); arrays[5] = span1(running_mean)
    arrays[6] = span1(running_var); arrays[7] = span2(x); arrays[8] = span1(gamma)
    arrays[9] = span1(beta)
    check_apart(("out", "x_hat", "batch_mean", "batch_var", "inv_std", "running_mean",
                 "running_var", "x", "gamma", "beta"), arrays, 7, 10, False)
    if m < 2:
        raise ValueError(f"batch-norm in training needs at least 2 samples per batch, got {m}")
    # 1 - ρ from the double: a ρ that rounds to 1 in float32 keeps its update
    cdef floating rho = <floating> momentum, one_minus_rho = <floating> (1 - momentum)
    cdef double offset, var
    # per feature: two sums in double; the residual μ - c and a zero shift
    cdef double* sums = <double*> malloc(2 * f * sizeof(double) + 1)
    cdef floating* work = <floating*> malloc(2 * f * sizeof(floating) + 1)
    cdef floating* residual = work
    cdef floating* zeros = work + f
    with nogil:
        if sums == NULL or work == NULL:
            status = -1
        if status == 0:
            # μ in double, rounded once: a constant feature gets exactly its value
            status = column_reduce(&x[0, 0], <const floating*> NULL, <const floating*> NULL,
                                   m, f, <floating*> NULL, <floating*> NULL, sums,
                                   <double*> NULL)
        if status == 0:
            for j in range(f):
                batch_mean[j] = <floating> (sums[j] / m)
            # Σ (z - c) and Σ (z - c)² about the rounded mean c (corrected two-pass):
            # μ - c = Σ (z - c)/m, σ² = Σ (z - c)²/m - (μ - c)²
            status = column_reduce(&x[0, 0], &x[0, 0], &batch_mean[0], m, f,
                                   <floating*> NULL, <floating*> NULL, sums, sums + f)
        if status == 0:
            for j in range(f):
                offset = sums[j] / m
                var = sums[f + j] / m - offset * offset
                if var < 0:
                    var = 0
                batch_var[j] = <floating> var
                inv_std[j] = <floating> (1 / sqrt(var + eps))
                residual[j] = <floating> offset
                zeros[j] = 0
                running_mean[j] = rho * running_mean[j] + one_minus_rho * batch_mean[j]
                running_var[j] = rho * running_var[j] + one_minus_rho * batch_var[j]
            # ẑ = ((z - c) - (μ - c)) / σ and z̃ = γ ẑ + β, in one pass
            normalize_rows(&x[0, 0], &batch_mean[0], residual, &inv_std[0], zeros, m, f,
                           &x_hat[0, 0], &gamma[0], &beta[0], &out[0, 0])
    free(sums)
    free(work)
    if status != 0:
        raise MemoryError("batchnorm_forward_train: out of memory")


def batchnorm_forward_eval(const floating[:, ::1] x not None, const floating[::1] gamma not None,
                           const floating[::1] beta not None,
                           const floating[::1] running_mean not None,
                           const floating[::1] running_var not None, double eps,
                           floating[:, ::1] out not None):
    """out = γ (z - μ̂) / sqrt(σ̂² + ε) + β with the running statistics."""
    cdef Py_ssize_t m = x.shape[0], f = x.shape[1], j
    check_shape("gamma", gamma.shape, 1, f, 0)
    check_shape("beta", beta.shape, 1, f, 0)
    check_shape("running_mean", running_mean.shape, 1, f, 0)
    check_shape("running_var", running_var.shape, 1, f, 0)
    check_same_shape("out", out.shape, "x", x.shape, 2)
    cdef Extent arrays[6]
    arrays[0] = span2(out); arrays[1] = span2(x); arrays[2] = span1(gamma)
    arrays[3] = span1(beta); arrays[4] = span1(running_mean); arrays[5] = span1(running_var)
    check_apart(("out", "x", "gamma", "beta", "running_mean", "running_var"), arrays, 1, 6,
                True)  # out may be x: one affine map per element
    cdef floating* scale = <floating*> malloc(2 * f * sizeof(floating) + 1)
    if scale == NULL:
        raise MemoryError("batchnorm_forward_eval: out of memory")
    cdef floating* zeros = scale + f
    with nogil:
        for j in range(f):
            scale[j] = <floating> (gamma[j] / sqrt(<double> running_var[j] + eps))
            zeros[j] = 0
        normalize_rows(&x[0, 0], &running_mean[0], zeros, scale, &beta[0], m, f, &out[0, 0],
                       <const floating*> NULL, <const floating*> NULL, <floating*> NULL)
    free(scale)


cdef inline void input_gradient_row(const floating* g, const floating* h, const floating* k,
                                    const floating* dbeta, const floating* dgamma,
                                    Py_ssize_t m, Py_ssize_t cols,
                                    floating* out) noexcept nogil:
    # dz = k (m g - dβ - ẑ dγ), k = γ/(m sqrt(σ² + ε)); plain pointers, so
    # gcc can check them for overlap and vectorise
    cdef Py_ssize_t j
    cdef floating mf = <floating> m
    for j in range(cols):
        out[j] = k[j] * (mf * g[j] - dbeta[j] - h[j] * dgamma[j])


def batchnorm_backward(const floating[:, ::1] dy not None, const floating[:, ::1] x_hat not None,
                       const floating[::1] gamma not None, const floating[::1] inv_std not None,
                       floating[::1] dgamma not None, floating[::1] dbeta not None,
                       floating[:, ::1] dx not None):
    """dβ, dγ in one pass over (dy, ẑ); dx in a second pass."""
    cdef Py_ssize_t m = dy.shape[0], f = dy.shape[1], i, j
    cdef int status
    check_shape("gamma", gamma.shape, 1, f, 0)
    check_shape("inv_std", inv_std.shape, 1, f, 0)
    check_shape("dgamma", dgamma.shape, 1, f, 0)
    check_shape("dbeta", dbeta.shape, 1, f, 0)
    check_same_shape("x_hat", x_hat.shape, "dy", dy.shape, 2)
    check_same_shape("dx", dx.shape, "dy", dy.shape, 2)
    cdef Extent arrays[7]
    arrays[0] = span1(dgamma); arrays[1] = span1(dbeta); arrays[2] = span2(dx)
    arrays[3] = span2(dy); arrays[4] = span2(x_hat); arrays[5] = span1(gamma)
    arrays[6] = span1(inv_std)
    check_apart(("dgamma", "dbeta", "dx", "dy", "x_hat", "gamma", "inv_std"), arrays, 3, 7,
                False)
    cdef int nt = elementwise_threads(m * f)
    cdef floating inv_m = <floating> (1.0 / m) if m > 0 else 0
    cdef const floating* g = &dy[0, 0]
    cdef const floating* h = &x_hat[0, 0]
    cdef floating* out = &dx[0, 0]
    cdef floating* k = <floating*> malloc(f * sizeof(floating) + 1)
    if k == NULL:
        raise MemoryError("batchnorm_backward: out of memory")
    with nogil:
        status = column_reduce(g, h, <const floating*> NULL, m, f, &dbeta[0], &dgamma[0],
                               <double*> NULL, <double*> NULL)
        for j in range(f):
            k[j] = gamma[j] * inv_std[j] * inv_m
        for i in prange(m, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
            input_gradient_row(g + i * f, h + i * f, k, &dbeta[0], &dgamma[0], m, f,
                               out + i * f)
    free(k)
    if status != 0:
        raise MemoryError("batchnorm_backward: out of memory for per-thread sums")
