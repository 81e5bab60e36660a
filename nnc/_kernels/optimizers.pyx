"""In-place optimizer updates over a flat parameter buffer.

Every parameter and gradient of a model is a view into one flat buffer, so
one call updates the whole model; each element is read and written once
(the whole update fused in one pass, no temporaries). In the notation of
the lecture (α learning rate, g the gradient):

SGD        w ← w - α g
Momentum   z ← β z - (1-β) g;           w ← w + α z
Nesterov   z ← β z - (1-β) g;           w ← w + α (β z - (1-β) g)
RMSprop    r ← ρ r + (1-ρ) g²;          w ← w - α g / sqrt(r + ε)
Adam       m ← β₁ m + (1-β₁) g;  v ← β₂ v + (1-β₂) g²
           w ← w - α m̂ / (sqrt(v̂) + ε),  m̂ = m/(1-β₁ᵗ),  v̂ = v/(1-β₂ᵗ)
AdamW      w ← w - α λ w, then Adam
Adagrad    r ← r + g²;                  w ← w - α g / (sqrt(r) + ε)

The updates run with denormals flushed to zero (see _openmp_shim.h): state
that decays towards zero would otherwise crawl through denormal arithmetic.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt, sqrtf

from nnc._kernels._parallel cimport (elementwise_threads, nnc_denormals_off,
                                     nnc_denormals_restore)

include "_checks.pxi"


cdef inline floating root(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


def sgd_update(floating[::1] w not None, const floating[::1] g not None, double lr):
    """w -= lr * g, in place."""
    check_same_shape("g", g.shape, "w", w.shape, 1)
    cdef Extent arrays[2]
    arrays[0] = span1(w); arrays[1] = span1(g)
    check_apart(("w", "g"), arrays, 1, 2, True)
    cdef Py_ssize_t i, size = w.shape[0]
    cdef floating* wp = &w[0]
    cdef const floating* gp = &g[0]
    cdef floating alpha = <floating> lr
    cdef int nt = elementwise_threads(size)
    cdef unsigned int mode = 0  # (set in the parallel block; 0 keeps gcc's uninitialised-use warning quiet)
    with nogil, parallel(num_threads=nt, use_threads_if=nt > 1):
        mode = nnc_denormals_off()
        for i in prange(size, schedule="static"):
            wp[i] -= alpha * gp[i]
        nnc_denormals_restore(mode)


def momentum_update(floating[::1] w not None, const floating[::1] g not None,
                    floating[::1] z not None, double lr, double beta, bint nesterov):
    """The lecture's momentum (velocity z), or its Nesterov look-ahead form."""
    check_same_shape("g", g.shape, "w", w.shape, 1)
    check_same_shape("z", z.shape, "w", w.shape, 1)
    cdef Extent arrays[3]
    arrays[0] = span1(w); arrays[1] = span1(z); arrays[2] = span1(g)
    check_apart(("w", "z", "g"), arrays, 2, 3, True)
    cdef Py_ssize_t i, size = w.shape[0]
    cdef floating* wp = &w[0]
    cdef const floating* gp = &g[0]
    cdef floating* zp = &z[0]
    cdef floating alpha = <floating> lr, b = <floating> beta, one_minus_b = <floating> (1 - beta)
    cdef floating step
    cdef int nt = elementwise_threads(size)
    cdef unsigned int mode = 0
    with nogil, parallel(num_threads=nt, use_threads_if=nt > 1):
        mode = nnc_denormals_off()
        for i in prange(size, schedule="static"):
            step = -one_minus_b * gp[i]
            zp[i] = b * zp[i] + step
            if nesterov:
                wp[i] += alpha * (b * zp[i] + step)
            else:
                wp[i] += alpha * zp[i]
        nnc_denormals_restore(mode)


def rmsprop_update(floating[::1] w not None, const floating[::1] g not None,
                   floating[::1] r not None, double lr, double rho, double eps):
    """RMSprop with ε inside the root, as in the lecture."""
    check_same_shape("g", g.shape, "w", w.shape, 1)
    check_same_shape("r", r.shape, "w", w.shape, 1)
    cdef Extent arrays[3]
    arrays[0] = span1(w); arrays[1] = span1(r); arrays[2] = span1(g)
    check_apart(("w", "r", "g"), arrays, 2, 3, True)
    cdef Py_ssize_t i, size = w.shape[0]
    cdef floating* wp = &w[0]
    cdef const floating* gp = &g[0]
    cdef floating* rp = &r[0]
    cdef floating alpha = <floating> lr, p = <floating> rho, one_minus_p = <floating> (1 - rho)
    cdef floating e = <floating> eps
    cdef int nt = elementwise_threads(size)
    cdef unsigned int mode = 0
    with nogil, parallel(num_threads=nt, use_threads_if=nt > 1):
        mode = nnc_denormals_off()
        for i in prange(size, schedule="static"):
            rp[i] = p * rp[i] + one_minus_p * gp[i] * gp[i]
            wp[i] -= alpha * gp[i] / root(rp[i] + e)
        nnc_denormals_restore(mode)


def adam_update(floating[::1] w not None, const floating[::1] g not None,
                floating[::1] m not None, floating[::1] v not None, double lr,
                double beta1, double beta2, double eps, long t, double weight_decay=0.0):
    """Adam (Kingma & Ba, Algorithm 1) at step t ≥ 1; weight_decay > 0 makes
    it AdamW (decoupled: w ← w - α λ w before the Adam step)."""
    check_same_shape("g", g.shape, "w", w.shape, 1)
    check_same_shape("m", m.shape, "w", w.shape, 1)
    check_same_shape("v", v.shape, "w", w.shape, 1)
    cdef Extent arrays[4]
    arrays[0] = span1(w); arrays[1] = span1(m); arrays[2] = span1(v); arrays[3] = span1(g)
    check_apart(("w", "m", "v", "g"), arrays, 3, 4, True)
    if t < 1:
        raise ValueError(f"t must be >= 1, got {t}")
    cdef Py_ssize_t i, size = w.shape[0]
    cdef floating* wp = &w[0]
    cdef const floating* gp = &g[0]
    cdef floating* mp = &m[0]
    cdef floating* vp = &v[0]
    cdef floating b1 = <floating> beta1, b2 = <floating> beta2
    cdef floating one_minus_b1 = <floating> (1 - beta1), one_minus_b2 = <floating> (1 - beta2)
    # α m̂/(sqrt(v̂) + ε) with c = 1 - βᵗ is exactly α_t m/(sqrt(v) + ε̂), where
    # α_t = α sqrt(c2)/c1 and ε̂ = ε sqrt(c2) (the paper's section 2 remark):
    # one division per element instead of two. (Keras uses ε̂ = ε instead.)
    cdef double root_c2 = sqrt(1 - beta2 ** t)
    cdef floating step_size = <floating> (lr * root_c2 / (1 - beta1 ** t))
    cdef floating e = <floating> (eps * root_c2)
    cdef floating decay = <floating> (1 - lr * weight_decay)
    cdef bint decoupled = weight_decay != 0
    cdef int nt = elementwise_threads(size)
    cdef unsigned int mode = 0
    with nogil, parallel(num_threads=nt, use_threads_if=nt > 1):
        mode = nnc_denormals_off()
        for i in prange(size, schedule="static"):
            if decoupled:
                wp[i] *= decay
            mp[i] = b1 * mp[i] + one_minus_b1 * gp[i]
            vp[i] = b2 * vp[i] + one_minus_b2 * gp[i] * gp[i]
            wp[i] -= step_size * mp[i] / (root(vp[i]) + e)
        nnc_denormals_restore(mode)


def adagrad_update(floating[::1] w not None, const floating[::1] g not None,
                   floating[::1] r not None, double lr, double eps):
    """Adagrad: per-parameter rate α / (sqrt(Σ g²) + ε)."""
    check_same_shape("g", g.shape, "w", w.shape, 1)
    check_same_shape("r", r.shape, "w", w.shape, 1)
    cdef Extent arrays[3]
    arrays[0] = span1(w); arrays[1] = span1(r); arrays[2] = span1(g)
    check_apart(("w", "r", "g"), arrays, 2, 3, True)
    cdef Py_ssize_t i, size = w.shape[0]
    cdef floating* wp = &w[0]
    cdef const floating* gp = &g[0]
    cdef floating* rp = &r[0]
    cdef floating alpha = <floating> lr, e = <floating> eps
    cdef int nt = elementwise_threads(size)
    cdef unsigned int mode = 0
    with nogil, parallel(num_threads=nt, use_threads_if=nt > 1):
        mode = nnc_denormals_off()
        for i in prange(size, schedule="static"):
            rp[i] += gp[i] * gp[i]
            wp[i] -= alpha * gp[i] / (root(rp[i]) + e)
        nnc_denormals_restore(mode)
