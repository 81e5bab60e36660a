/* float32 exp and tanh written so that the compiler can vectorise the loops
 * that call them: straight-line arithmetic, no branches, no library calls.
 * libm's expf/tanhf are scalar calls (tanhf cost ~15 ns an element here,
 * forty times NumPy's SIMD tanh). The polynomials are Cephes' (S. L.
 * Moshier): tanh and log1p within 1.7 ulp, sigmoid 2.4 ulp (measured
 * against float64); float64 kernels keep libm.
 *
 * NaN propagates through every function below. */
#ifndef NNC_VECTOR_MATH_H
#define NNC_VECTOR_MATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* round to the nearest integer (ties to even) for |v| < 2^22 without
 * roundf/floorf, which baseline x86-64 (SSE2) can only call, not inline */
static inline float nnc_round_f(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

/* e^x for x <= 0 (callers pass -|z|). x = n ln2 + r with |r| <= ln2/2, so
 * e^x = 2^n e^r; ln2 is split in two constants (Cody-Waite) so that r is
 * exact, and e^r is a degree-7 polynomial. Below log(FLT_MIN) the result is
 * 0, not a denormal. */
static inline float nnc_exp_nonpositive_f(float x) {
    const float lowest = -87.33654475f; /* log(FLT_MIN) */
    float clamped = x < lowest ? lowest : x; /* a NaN is kept */
    float n = nnc_round_f(clamped * 1.44269504088896341f);
    float r = clamped - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e_r = p * (r * r) + r + 1.0f;
    /* 2^n from its bit pattern (n >= -126: a normal float); the comparison
     * also keeps a NaN out of the integer conversion (e_r carries it) */
    int32_t n_int = (int32_t) (n > -127.0f ? n : -127.0f);
    uint32_t bits = (uint32_t) (n_int + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return x < lowest ? 0.0f : e_r * two_n;
}

/* tanh x: an odd polynomial for |x| < 0.625, else (1 - e)/(1 + e) with
 * e = e^{-2|x|} <= 0.29 (no cancellation), sign restored. Both are computed
 * and one selected, so the loop has no branch. */
static inline float nnc_tanh_f(float x) {
    float z = fabsf(x);
    float e = nnc_exp_nonpositive_f(-2.0f * z);
    float large = copysignf((1.0f - e) / (1.0f + e), x);
    float s = x * x;
    float p = -5.70498872745e-3f;
    p = p * s + 2.06390887954e-2f;
    p = p * s - 5.37397155531e-2f;
    p = p * s + 1.33314422036e-1f;
    p = p * s - 3.33332819422e-1f;
    float small = copysignf(p * s * x + x, x); /* copysign keeps tanh(-0) = -0 */
    return z < 0.625f ? small : large;
}

/* log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1]: Cephes' logf polynomial */
static inline float nnc_log1p_reduced_f(float f) {
    float z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    return f + (p * f * z - 0.5f * z);
}

/* log(1 + e) for e in [0, 1] (the softplus term log(1 + e^{-|z|})): below
 * sqrt(2) - 1 the polynomial takes e itself, so small e keeps its full
 * precision; above, 1 + e = 2 (1 + (e - 1)/2) (e - 1 exact from e = 1/2 on;
 * below, one rounding: <= 1.7 ulp in all). */
static inline float nnc_log1p_unit_f(float e) {
    float low = nnc_log1p_reduced_f(e);
    float high = nnc_log1p_reduced_f((e - 1.0f) * 0.5f) + 0.693147180559945309f;
    return e < 0.41421356237f ? low : high;
}

/* sigmoid x = 1/(1 + e^{-x}) for x >= 0 and e^x/(1 + e^x) below: with
 * e = e^{-|x|} both are (x >= 0 ? 1 : e)/(1 + e), and no exp overflows. */
static inline float nnc_sigmoid_f(float x) {
    float e = nnc_exp_nonpositive_f(-fabsf(x));
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}
#endif
