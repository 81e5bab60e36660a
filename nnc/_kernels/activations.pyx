"""Elementwise activations and their derivatives (row-major 2-D arrays).

ReLU        y = max(x, 0)                     dx = dy * [x > 0]
LeakyReLU   y = x if x > 0 else alpha*x       dx = dy * (1 if x > 0 else alpha)
Sigmoid     y = 1 / (1 + exp(-x))             dx = dy * y * (1 - y)
Tanh        y = tanh(x)                       dx = dy * (1 - y²)

ReLU, sigmoid and tanh derivatives are written in terms of the output y
(for ReLU, y > 0 exactly when x > 0), so a layer keeps only its output.
In float32, sigmoid and tanh come from _vector_math.h (branch-free, so the
loops vectorise; within 2.4 ulp, and sigmoid(x) is 0 below x = -87.3 where
the exact value is a denormal); float64 uses libm.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, tanh

from nnc._kernels._parallel cimport elementwise_threads

include "_checks.pxi"

cdef extern from "_vector_math.h" nogil:
    float nnc_sigmoid_f(float x)
    float nnc_tanh_f(float x)


def relu_forward(const floating[:, ::1] x not None, floating[:, ::1] out not None):
    check_same_shape("out", out.shape, "x", x.shape, 2)
    cdef Extent arrays[2]
    arrays[0] = span2(out); arrays[1] = span2(x)
    check_apart(("out", "x"), arrays, 1, 2, True)
    cdef Py_ssize_t i, size = x.shape[0] * x.shape[1]
    cdef const floating* xp = &x[0, 0]
    cdef floating* yp = &out[0, 0]
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        # written so that NaN stays NaN (NaN <= 0 is false), as in NumPy and PyTorch
        yp[i] = 0 if xp[i] <= 0 else xp[i]


def relu_backward(const floating[:, ::1] y not None, const floating[:, ::1] dy not None,
                  floating[:, ::1] dx not None):
    check_same_shape("dy", dy.shape, "y", y.shape, 2)
    check_same_shape("dx", dx.shape, "y", y.shape, 2)
    cdef Extent arrays[3]
    arrays[0] = span2(dx); arrays[1] = span2(y); arrays[2] = span2(dy)
    check_apart(("dx", "y", "dy"), arrays, 1, 3, True)
    cdef Py_ssize_t i, size = y.shape[0] * y.shape[1]
    cdef const floating* yp = &y[0, 0]
    cdef const floating* gp = &dy[0, 0]
    cdef floating* dp = &dx[0, 0]
    cdef floating g
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        # dy is read unconditionally so the select compiles to a vector blend,
        # not a branch that mispredicts on every other element
        g = gp[i]
        dp[i] = g if yp[i] > 0 else 0


def leaky_relu_forward(const floating[:, ::1] x not None, double alpha,
                       floating[:, ::1] out not None):
    check_same_shape("out", out.shape, "x", x.shape, 2)
    cdef Extent arrays[2]
    arrays[0] = span2(out); arrays[1] = span2(x)
    check_apart(("out", "x"), arrays, 1, 2, True)
    cdef Py_ssize_t i, size = x.shape[0] * x.shape[1]
    cdef const floating* xp = &x[0, 0]
    cdef floating* yp = &out[0, 0]
    cdef floating a = <floating> alpha
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        yp[i] = xp[i] if xp[i] > 0 else a * xp[i]


def leaky_relu_backward(const floating[:, ::1] x not None, double alpha,
                        const floating[:, ::1] dy not None, floating[:, ::1] dx not None):
    check_same_shape("dy", dy.shape, "x", x.shape, 2)
    check_same_shape("dx", dx.shape, "x", x.shape, 2)
    cdef Extent arrays[3]
    arrays[0] = span2(dx); arrays[1] = span2(x); arrays[2] = span2(dy)
    check_apart(("dx", "x", "dy"), arrays, 1, 3, True)
    cdef Py_ssize_t i, size = x.shape[0] * x.shape[1]
    cdef const floating* xp = &x[0, 0]
    cdef const floating* gp = &dy[0, 0]
    cdef floating* dp = &dx[0, 0]
    cdef floating a = <floating> alpha
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        dp[i] = gp[i] if xp[i] > 0 else a * gp[i]


cdef inline floating stable_sigmoid(floating x) noexcept nogil:
    cdef double e
    if floating is float:
        return nnc_sigmoid_f(x)
    elif x >= 0:  # exp of a non-positive number never overflows
        return 1 / (1 + exp(-x))
    else:
        e = exp(x)
        return e / (1 + e)


def sigmoid_forward(const floating[:, ::1] x not None, floating[:, ::1] out not None):
    check_same_shape("out", out.shape, "x", x.shape, 2)
    cdef Extent arrays[2]
    arrays[0] = span2(out); arrays[1] = span2(x)
    check_apart(("out", "x"), arrays, 1, 2, True)
    cdef Py_ssize_t i, size = x.shape[0] * x.shape[1]
    cdef const floating* xp = &x[0, 0]
    cdef floating* yp = &out[0, 0]
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        yp[i] = stable_sigmoid(xp[i])


def sigmoid_backward(const floating[:, ::1] y not None, const floating[:, ::1] dy not None,
                     floating[:, ::1] dx not None):
    check_same_shape("dy", dy.shape, "y", y.shape, 2)
    check_same_shape("dx", dx.shape, "y", y.shape, 2)
    cdef Extent arrays[3]
    arrays[0] = span2(dx); arrays[1] = span2(y); arrays[2] = span2(dy)
    check_apart(("dx", "y", "dy"), arrays, 1, 3, True)
    cdef Py_ssize_t i, size = y.shape[0] * y.shape[1]
    cdef const floating* yp = &y[0, 0]
    cdef const floating* gp = &dy[0, 0]
    cdef floating* dp = &dx[0, 0]
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        dp[i] = gp[i] * yp[i] * (1 - yp[i])


def tanh_forward(const floating[:, ::1] x not None, floating[:, ::1] out not None):
    check_same_shape("out", out.shape, "x", x.shape, 2)
    cdef Extent arrays[2]
    arrays[0] = span2(out); arrays[1] = span2(x)
    check_apart(("out", "x"), arrays, 1, 2, True)
    cdef Py_ssize_t i, size = x.shape[0] * x.shape[1]
    cdef const floating* xp = &x[0, 0]
    cdef floating* yp = &out[0, 0]
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        if floating is float:
            yp[i] = nnc_tanh_f(xp[i])
        else:
            yp[i] = tanh(xp[i])


def tanh_backward(const floating[:, ::1] y not None, const floating[:, ::1] dy not None,
                  floating[:, ::1] dx not None):
    check_same_shape("dy", dy.shape, "y", y.shape, 2)
    check_same_shape("dx", dx.shape, "y", y.shape, 2)
    cdef Extent arrays[3]
    arrays[0] = span2(dx); arrays[1] = span2(y); arrays[2] = span2(dy)
    check_apart(("dx", "y", "dy"), arrays, 1, 3, True)
    cdef Py_ssize_t i, size = y.shape[0] * y.shape[1]
    cdef const floating* yp = &y[0, 0]
    cdef const floating* gp = &dy[0, 0]
    cdef floating* dp = &dx[0, 0]
    cdef int nt = elementwise_threads(size)
    for i in prange(size, nogil=True, num_threads=nt, use_threads_if=nt > 1, schedule="static"):
        dp[i] = gp[i] * (1 - yp[i] * yp[i])
