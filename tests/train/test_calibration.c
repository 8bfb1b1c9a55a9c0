/* Temperature scaling against a PyTorch LBFGS fit of the same logits (golden files from
 * tests/reference/metrics_ref.py), the NLL decrease, and bad inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kt_test.h"
#include "test_metrics_golden.h"
#include "train/calibration.h"

static void check_temperature_case(const char *name) {
    cJSON *g = kt_golden_metrics_load(name);
    if (!g) return;
    int n = (int)kt_golden_num(g, "n"), c = (int)kt_golden_num(g, "c"), nz, ny;
    double *z = kt_golden_doubles(g, "logits", &nz);
    int32_t *y = kt_golden_ints(g, "labels", &ny);
    KT_REQUIRE(nz == n * c && ny == n, "%s sizes", name);
    float *zf = malloc((size_t)nz * sizeof *zf);
    for (int i = 0; i < nz; i++) zf[i] = (float)z[i]; /* the golden logits are float32 values */
    kt_temperature t;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_temperature_fit(zf, y, n, c, 0, &t, &err), &err);
    double want_t = kt_golden_num(g, "temperature");
    /* Both optimisers stop on a flat minimum: T agrees to ~1e-9; allow 1e-7 relative. */
    KT_CHECK(fabs(t.temperature - want_t) <= 1e-7 * want_t, "%s: T = %.12g, torch LBFGS %.12g", name,
             t.temperature, want_t);
    KT_CHECK(!t.at_bound, "%s: optimum inside the bounds", name);
    KT_CHECK_GOLDEN(t.nll_before, kt_golden_num(g, "nll_before"), "nll_before");
    KT_CHECK_GOLDEN(t.nll_after, kt_golden_num(g, "nll_after"), "nll_after");
    KT_CHECK(t.nll_after < t.nll_before, "%s: NLL falls %.6g -> %.6g", name, t.nll_before, t.nll_after);
    /* The NLL at T is a minimum: a step either side raises it. */
    KT_CHECK(kt_softmax_nll(zf, y, n, c, t.temperature * 1.01) > t.nll_after, "%s: T*1.01 worse", name);
    KT_CHECK(kt_softmax_nll(zf, y, n, c, t.temperature / 1.01) > t.nll_after, "%s: T/1.01 worse", name);
    KT_CHECK_GOLDEN(t.ece_top_before, kt_golden_num(g, "ece_top_before"), "ece_top_before");
    KT_CHECK_GOLDEN(t.ece_mean_before, kt_golden_num(g, "ece_mean_before"), "ece_mean_before");
    KT_CHECK_NEAR(t.ece_top_after, kt_golden_num(g, "ece_top_after"), 1e-6);
    KT_CHECK_NEAR(t.ece_mean_after, kt_golden_num(g, "ece_mean_after"), 1e-6);
    KT_CHECK(t.ece_top_after < t.ece_top_before, "%s: ECE %.4f -> %.4f", name, t.ece_top_before,
             t.ece_top_after);
    KT_CHECK(t.ece_bins == 15, "default bins");
    free(zf);
    free(z);
    free(y);
    cJSON_Delete(g);
}

KT_TEST(test_calibration_overconfident_matches_torch_lbfgs) {
    check_temperature_case("temp_overconfident");
}
KT_TEST(test_calibration_underconfident_matches_torch_lbfgs) {
    check_temperature_case("temp_underconfident");
}

KT_TEST(test_calibration_apply_is_softmax_over_t) {
    float z[] = {1.0f, 2.0f, 3.0f};
    double p[3];
    kt_err err = {0};
    KT_REQUIRE_OK(kt_temperature_apply(z, 1, 3, 2.0, p, &err), &err);
    double s = exp(0.5) + exp(1.0) + exp(1.5);
    KT_CHECK_NEAR(p[0], exp(0.5) / s, 1e-15);
    KT_CHECK_NEAR(p[2], exp(1.5) / s, 1e-15);
    KT_CHECK(kt_temperature_apply(z, 1, 3, 0.0, p, &err) == KT_ERR_ARG, "T = 0 refused");
    KT_CHECK(kt_temperature_apply(z, 1, 3, NAN, p, &err) == KT_ERR_ARG, "T = NaN refused");
}

/* Separable data: the NLL keeps falling as T -> 0, so T stops at the lower bound and says so. */
KT_TEST(test_calibration_separable_stops_at_bound) {
    float z[] = {5.0f, 0.0f, 0.0f, 5.0f, 4.0f, 1.0f};
    int32_t y[] = {0, 1, 0};
    kt_temperature t;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_temperature_fit(z, y, 3, 2, 0, &t, &err), &err);
    KT_CHECK(t.at_bound, "at_bound set");
    KT_CHECK_NEAR(t.temperature, KT_TEMP_MIN, 1e-12);
    KT_CHECK(t.nll_after < t.nll_before, "NLL falls");
    /* All wrong: the best positive T is the largest (predictions flattened towards uniform). */
    int32_t wrong[] = {1, 0, 1};
    KT_REQUIRE_OK(kt_temperature_fit(z, wrong, 3, 2, 0, &t, &err), &err);
    KT_CHECK(t.at_bound && fabs(t.temperature - KT_TEMP_MAX) < 1e-6, "T = %g", t.temperature);
}

KT_TEST(test_calibration_bad_inputs_named) {
    float z[] = {1.0f, 2.0f, INFINITY, 0.0f};
    int32_t y[] = {0, 1};
    kt_temperature t;
    kt_err err = {0};
    KT_CHECK(kt_temperature_fit(z, y, 2, 2, 0, &t, &err) == KT_ERR_ARG, "inf logit");
    KT_CHECK(strstr(err.msg, "logits[row 1, class 0]"), "message: %s", err.msg);
    float ok[] = {1.0f, 2.0f, 0.5f, 0.0f};
    int32_t bad[] = {0, 3};
    KT_CHECK(kt_temperature_fit(ok, bad, 2, 2, 0, &t, &err) == KT_ERR_ARG, "label 3");
    KT_CHECK(strstr(err.msg, "labels[1] = 3"), "message: %s", err.msg);
    KT_CHECK(kt_temperature_fit(ok, y, 0, 2, 0, &t, &err) == KT_ERR_ARG, "n = 0");
    KT_CHECK(kt_temperature_fit(ok, y, 2, 1, 0, &t, &err) == KT_ERR_ARG, "one class");
    KT_CHECK(kt_temperature_evaluate(ok, y, 2, 2, 1.0, 500, &t, &err) == KT_ERR_ARG, "500 bins");
}
