"""Losses fused with their gradient: one call returns the batch-mean loss and
(when ``grad`` is given) writes dL/d(output) into ``grad``.

softmax_cross_entropy  L = -1/n Σ_i log softmax(z_i)[y_i]
                       dL/dz_i = (softmax(z_i) - onehot(y_i)) / n
mean_squared_error     L = 1/(n k) Σ (p - t)²,        dL/dp = 2 (p - t) / (n k)
bce_with_logits        L = 1/(n k) Σ max(z,0) - z t + log(1 + exp(-|z|))
                       dL/dz = (sigmoid(z) - t) / (n k)

Rows are split into one contiguous block per thread; block losses are summed
in block order (see _reduce.pxi).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, log1p, fabs, fabsf
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

from nnc._kernels._parallel cimport elementwise_threads

include "_checks.pxi"

cdef extern from "_vector_math.h" nogil:
    float nnc_exp_nonpositive_f(float x)
    float nnc_log1p_unit_f(float e)

cdef enum LossKind:
    CROSS_ENTROPY
    SQUARED_ERROR
    LOGISTIC


cdef double cross_entropy_row(const floating* z, Py_ssize_t k, Py_ssize_t label,
                              floating* g, double scale) noexcept nogil:
    """-log softmax(z)[label] by log-sum-exp; g = scale * (softmax(z) - onehot)."""
    cdef Py_ssize_t j
    cdef double zmax = z[0], total = 0, e
    for j in range(1, k):
        if z[j] > zmax:
            zmax = z[j]
    if g == NULL:
        for j in range(k):
            total += exp(z[j] - zmax)
    else:
        for j in range(k):
            e = exp(z[j] - zmax)
            g[j] = <floating> e
            total += e
        for j in range(k):
            g[j] = <floating> (g[j] * (scale / total))
        # the label's p - 1 in double: in float32, 1 - p below 6e-8 (a
        # confident right prediction) would round to a multiple of 6e-8
        g[label] = <floating> (scale * ((exp(z[label] - zmax) - total) / total))
    # subtract (z[label] - zmax) <= 0: adding log(total) to a huge zmax
    # first would round log(total) away
    return log(total) - (z[label] - zmax)


cdef inline double squared_error_term(const floating* pred, const floating* target,
                                      floating* grad, double scale, Py_ssize_t p) noexcept nogil:
    cdef double d = <double> pred[p] - target[p]
    if grad != NULL:
        grad[p] = <floating> (2 * scale * d)
    return d * d


cdef inline floating logistic_margin(floating z, floating t) noexcept nogil:
    # max(z, 0) - z t with one rounding: z (1 - t) for z > 0 (1 - t is exact
    # for t >= 1/2), so a confident logit with a soft target does not cancel
    return z * (1 - t) if z > 0 else -z * t


cdef inline double logistic_term(const floating* logits, const floating* target,
                                 floating* grad, double scale, Py_ssize_t p) noexcept nogil:
    # with e = exp(-|z|): max(z, 0) - z t + log(1 + e) (as z (1 - t) or -z t:
    # one rounding) and sigmoid(z) = (z >= 0 ? 1 : e) / (1 + e); one exp,
    # which never overflows
    cdef double z = logits[p], t = target[p]
    cdef double e = exp(-fabs(z))
    if grad != NULL:
        grad[p] = <floating> (scale * ((1.0 if z >= 0 else e) / (1 + e) - t))
    return logistic_margin[double](z, t) + log1p(e)


cdef double logistic_sum_float(const float* logits, const float* target, float* grad,
                               double scale, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """The logistic terms of float32 elements [start, stop) with the
    branch-free exp/log1p of _vector_math.h: each chunk of 64 terms is one
    vectorisable loop into a stack buffer, then added in double."""
    cdef float terms[64]
    cdef float exps[64]
    cdef float z, e, s = <float> scale, zero = 0, one = 1
    cdef double total = 0
    cdef double acc[8]
    cdef Py_ssize_t first, q, j, n
    for j in range(8):
        acc[j] = 0
    for first in range(start, stop, 64):
        n = min(64, stop - first)
        for q in range(n):
            z = logits[first + q]
            e = nnc_exp_nonpositive_f(-fabsf(z))
            exps[q] = e
            terms[q] = logistic_margin[float](z, target[first + q]) + nnc_log1p_unit_f(e)
        if grad != NULL:
            for q in range(n):
                z = logits[first + q]
                e = exps[q]
                grad[first + q] = s * ((one if z >= zero else e) / (one + e) - target[first + q])
        if n == 64:
            for q in range(0, 64, 8):
                for j in range(8):
                    acc[j] += terms[q + j]
        else:
            for q in range(n):
                total += terms[q]
    for j in range(8):
        total += acc[j]
    return total


cdef double loss_rows(LossKind kind, const floating* pred, const int64_t* labels,
                      const floating* target, floating* grad, Py_ssize_t k,
                      double scale, Py_ssize_t first, Py_ssize_t last,
                      int* bad_label) noexcept nogil:
    """Σ of the losses of rows [first, last). Squared error and logistic
    terms are summed over the rows' elements in eight accumulators (one chain
    of dependent additions would wait on the adder for every element)."""
    cdef Py_ssize_t i, j, p, start = first * k, stop = last * k
    cdef Py_ssize_t body = start + (stop - start) // 8 * 8
    cdef double total = 0
    cdef double acc[8]
    if kind == CROSS_ENTROPY:
        for i in range(first, last):
            if labels[i] < 0 or labels[i] >= k:
                bad_label[0] = 1
                continue
            total += cross_entropy_row(pred + i * k, k, <Py_ssize_t> labels[i],
                                       grad + i * k if grad != NULL else NULL, scale)
        return total
    for j in range(8):
        acc[j] = 0
    if kind == SQUARED_ERROR:
        for p in range(start, body, 8):
            for j in range(8):
                acc[j] += squared_error_term(pred, target, grad, scale, p + j)
        for p in range(body, stop):
            total += squared_error_term(pred, target, grad, scale, p)
    elif floating is float:
        return logistic_sum_float(pred, target, grad, scale, start, stop)
    else:
        for p in range(start, body, 8):
            for j in range(8):
                acc[j] += logistic_term(pred, target, grad, scale, p + j)
        for p in range(body, stop):
            total += logistic_term(pred, target, grad, scale, p)
    for j in range(8):
        total += acc[j]
    return total


cdef double blocked_loss(LossKind kind, const floating* pred, const int64_t* labels,
                         const floating* target, floating* grad, Py_ssize_t n,
                         Py_ssize_t k, double scale, int* bad_label) noexcept nogil:
    """Σ of the per-element losses, one block of rows per thread."""
    cdef int n_threads = elementwise_threads(n * k)
    cdef Py_ssize_t t, block
    cdef double total = 0
    cdef double* partial
    cdef int* bad
    if n_threads > n:
        n_threads = <int> n
    if n_threads > 1:
        partial = <double*> malloc(n_threads * sizeof(double))
        bad = <int*> malloc(n_threads * sizeof(int))
        if partial == NULL or bad == NULL:
            free(partial)
            free(bad)
            n_threads = 1
    if n_threads <= 1:
        return loss_rows(kind, pred, labels, target, grad, k, scale, 0, n, bad_label)
    block = (n + n_threads - 1) // n_threads
    for t in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static"):
        bad[t] = 0
        partial[t] = loss_rows(kind, pred, labels, target, grad, k, scale,
                               min(n, t * block), min(n, (t + 1) * block), bad + t)
    for t in range(n_threads):
        total += partial[t]
        if bad[t]:
            bad_label[0] = 1
    free(partial)
    free(bad)
    return total


cdef inline int check_batch(Py_ssize_t* shape) except -1:
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"the batch is empty (shape {(shape[0], shape[1])}): "
                         "a mean loss needs at least one element")
    return 0


def softmax_cross_entropy(const floating[:, ::1] logits not None,
                          const int64_t[::1] labels not None, floating[:, ::1] grad=None):
    """Mean softmax cross-entropy of integer labels; gradient into grad."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1]
    cdef int bad_label = 0
    cdef double total
    check_batch(logits.shape)
    check_shape("labels", labels.shape, 1, n, 0)
    cdef floating* grad_ptr = NULL
    cdef Extent arrays[3]
    if grad is not None:
        check_same_shape("grad", grad.shape, "logits", logits.shape, 2)
        grad_ptr = &grad[0, 0]
        arrays[0] = span2(grad); arrays[1] = span2(logits)
        check_apart(("grad", "logits"), arrays, 1, 2, False)
    with nogil:
        total = blocked_loss(CROSS_ENTROPY, &logits[0, 0], &labels[0], <floating*> NULL,
                             grad_ptr, n, k, 1.0 / n,
                             &bad_label)
    if bad_label:
        raise ValueError(f"labels must lie in [0, {k}) for {k} classes")
    return total / n


def mean_squared_error(const floating[:, ::1] pred not None,
                       const floating[:, ::1] target not None, floating[:, ::1] grad=None):
    """Mean of (pred - target)² over all elements; gradient into grad."""
    cdef Py_ssize_t n = pred.shape[0], k = pred.shape[1]
    cdef double total, size = <double> n * k
    cdef int unused = 0
    check_batch(pred.shape)
    check_same_shape("target", target.shape, "pred", pred.shape, 2)
    cdef floating* grad_ptr = NULL
    cdef Extent arrays[3]
    if grad is not None:
        check_same_shape("grad", grad.shape, "pred", pred.shape, 2)
        grad_ptr = &grad[0, 0]
        arrays[0] = span2(grad); arrays[1] = span2(pred); arrays[2] = span2(target)
        check_apart(("grad", "pred", "target"), arrays, 1, 3, True)  # elementwise
    with nogil:
        total = blocked_loss(SQUARED_ERROR, &pred[0, 0], <int64_t*> NULL, &target[0, 0],
                             grad_ptr, n, k, 1.0 / size,
                             &unused)
    return total / size


def bce_with_logits(const floating[:, ::1] logits not None,
                    const floating[:, ::1] target not None, floating[:, ::1] grad=None):
    """Mean binary cross-entropy of sigmoid(logits) against target in [0, 1]."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1]
    cdef double total, size = <double> n * k
    cdef int unused = 0
    check_batch(logits.shape)
    check_same_shape("target", target.shape, "logits", logits.shape, 2)
    cdef floating* grad_ptr = NULL
    cdef Extent arrays[3]
    if grad is not None:
        check_same_shape("grad", grad.shape, "logits", logits.shape, 2)
        grad_ptr = &grad[0, 0]
        arrays[0] = span2(grad); arrays[1] = span2(logits); arrays[2] = span2(target)
        check_apart(("grad", "logits", "target"), arrays, 1, 3, True)  # elementwise
    with nogil:
        total = blocked_loss(LOGISTIC, &logits[0, 0], <int64_t*> NULL, &target[0, 0],
                             grad_ptr, n, k, 1.0 / size,
                             &unused)
    return total / size


def count_correct(const floating[:, ::1] logits not None, const int64_t[::1] labels not None):
    """Number of rows whose arg-max equals the label. The arg-max is that of
    NumPy and PyTorch: the first maximum, where NaN counts as the maximum."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j, best
    cdef Py_ssize_t correct = 0
    check_shape("labels", labels.shape, 1, n, 0)
    if k == 0:
        return 0
    with nogil:
        for i in range(n):
            best = 0
            for j in range(1, k):
                if logits[i, best] != logits[i, best]:  # NaN: nothing beats it
                    break
                if logits[i, j] > logits[i, best] or logits[i, j] != logits[i, j]:
                    best = j
            correct += best == labels[i]
    return correct


def count_binary_correct(const floating[:, ::1] logits not None,
                         const floating[:, ::1] target not None):
    """Number of elements whose prediction, logit > 0, matches target > 0.5."""
    check_same_shape("target", target.shape, "logits", logits.shape, 2)
    cdef Py_ssize_t i, size = logits.shape[0] * logits.shape[1]
    cdef Py_ssize_t correct = 0
    cdef const floating* z = &logits[0, 0]
    cdef const floating* t = &target[0, 0]
    with nogil:
        for i in range(size):
            correct += (z[i] > 0) == (t[i] > 0.5)
    return correct
