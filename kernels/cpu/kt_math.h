/* Branch-free float approximations of exp and erf that GCC vectorises (libm calls block that).
 * exp: Cody-Waite reduction + degree-6 polynomial (~2 ulp); erf: polynomial below 1, A&S 7.1.26 above (< 3e-7 abs). */
#ifndef KT_MATH_H
#define KT_MATH_H

#include <stdint.h>
#include <string.h>

static inline float kt_expf(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    /* n = round(x / ln2) with the 1.5*2^23 trick, so the conversion vectorises */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* erf(x) with |error| < 2e-7, given e = exp(-x^2): for |x| < 1 an odd polynomial, else 1 - poly(t) e. */
static inline float kt_erf_given_exp(float x, float e) {
    float ax = x < 0 ? -x : x;
    /* small |x|: erf(x) = x * P(x^2), least-squares fit on [0, 1] (error ~1e-9 before rounding) */
    float x2 = x * x;
    float ps = 7.9333513e-05f;
    ps = ps * x2 - 8.0348094e-04f;
    ps = ps * x2 + 5.1912149e-03f;
    ps = ps * x2 - 2.6855398e-02f;
    ps = ps * x2 + 1.1283626e-01f;
    ps = ps * x2 - 3.7612630e-01f;
    ps = ps * x2 + 1.1283792e+00f;
    float small = x * ps;
    /* large |x|: A&S 7.1.26 form with refitted coefficients */
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float q = 1.061405429f;
    q = q * t - 1.453152027f;
    q = q * t + 1.421413741f;
    q = q * t - 0.284496736f;
    q = q * t + 0.254829592f;
    float big = 1.0f - q * t * e;
    big = x < 0 ? -big : big;
    return ax < 1.0f ? small : big;
}

static inline float kt_erff(float x) { return kt_erf_given_exp(x, kt_expf(-x * x)); }

/* d/dx of x * Phi(x) (exact GELU): Phi(x) + x phi(x). erf(x / sqrt 2) above 1 needs exp(-x^2 / 2),
 * which is phi's own exponential: one exp serves both (the gradient pass was compute-bound). */
static inline float kt_gelu_grad(float x) {
    float a = x * 0.70710678118654752f, e = kt_expf(-a * a); /* e = exp(-x^2 / 2) */
    return 0.5f * (1.0f + kt_erf_given_exp(a, e)) + x * 0.39894228040143268f * e;
}

#endif
