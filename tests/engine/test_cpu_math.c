/* The vectorisable float approximations of kernels/cpu/kt_math.h against libm in double, on a dense
 * grid: exp within 2 ulp-ish relative error, erf within its stated 3e-7, and the GELU derivative
 * (one exp shared by erf and the normal density) as close to Phi(x) + x phi(x) as erf allows. */
#include <math.h>

#include "kernels/cpu/kt_math.h"
#include "kt_test.h"

KT_TEST(test_cpu_math_exp_erf_gelu_grad_against_libm) {
    double we = 0, wf = 0, wg = 0, xe = 0, xf = 0, xg = 0;
    for (double d = -87.0; d <= 88.0; d += 1.37e-3) {
        float x = (float)d;
        double e = fabs(kt_expf(x) - exp((double)x)) / exp((double)x);
        if (e > we) we = e, xe = x;
    }
    for (double d = -12.0; d <= 12.0; d += 1.1e-4) {
        float x = (float)d;
        double f = fabs(kt_erff(x) - erf((double)x));
        if (f > wf) wf = f, xf = x;
        double ref = 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * (double)x * x) / sqrt(2.0 * M_PI);
        double g = fabs(kt_gelu_grad(x) - ref);
        if (g > wg) wg = g, xg = x;
    }
    KT_CHECK(we < 3e-7, "kt_expf relative error %.3g at x = %g", we, xe);
    KT_CHECK(wf < 3e-7, "kt_erff absolute error %.3g at x = %g", wf, xf);
    KT_CHECK(wg < 3e-7, "kt_gelu_grad absolute error %.3g at x = %g", wg, xg);
    /* the far tails: 0 (to exp's clamp at e^-87) and 1, no NaN or overflow */
    KT_CHECK(fabsf(kt_gelu_grad(-30.0f)) < 1e-30f && kt_gelu_grad(30.0f) == 1.0f, "tails %g %g", kt_gelu_grad(-30.0f),
             kt_gelu_grad(30.0f));
}
