/* OneCycleLR against PyTorch 1.13 (tests/golden/optim/onecycle_schedule.safetensors): lr and
 * AdamW beta1 at every scheduler step for 37, 50 and 1000 total steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "kt_test.h"
#include "train/schedule.h"

/* The same formula in the same double arithmetic: agreement to 1e-12 relative (measured: exact or 1 ulp). */
#define SCHED_RTOL 1e-12

KT_TEST(test_onecycle_matches_torch) {
    char path[4096];
    kt_err err = {0};
    kt_st_file f;
    snprintf(path, sizeof path, "%s/tests/golden/optim/onecycle_schedule.safetensors", kt_test_root());
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    const int totals[3] = {37, 50, 1000};
    for (int k = 0; k < 3; k++) {
        int n = totals[k];
        char name[64];
        snprintf(name, sizeof name, "total%d.lr", n);
        const kt_st_tensor *tl = kt_st_find(&f, name);
        snprintf(name, sizeof name, "total%d.beta1", n);
        const kt_st_tensor *tb = kt_st_find(&f, name);
        KT_REQUIRE(tl && tb && tl->dtype == KT_ST_F64 && tl->numel == n && tb->numel == n, "golden total%d", n);
        double *lr = malloc((size_t)n * sizeof *lr), *b1 = malloc((size_t)n * sizeof *b1);
        memcpy(lr, tl->data, (size_t)n * sizeof *lr);
        memcpy(b1, tb->data, (size_t)n * sizeof *b1);
        kt_onecycle s;
        kt_onecycle_default(&s, 3e-4, n);
        KT_CHECK_OK(kt_onecycle_validate(&s, &err), &err);
        double worst = 0;
        for (int t = 0; t < n; t++) {
            double a = kt_onecycle_lr(&s, t), b = kt_onecycle_beta1(&s, t);
            double d = fabs(a - lr[t]) / lr[t];
            if (d > worst) worst = d;
            KT_CHECK(d <= SCHED_RTOL, "total %d step %d: lr %.17g vs torch %.17g", n, t, a, lr[t]);
            KT_CHECK(fabs(b - b1[t]) <= SCHED_RTOL, "total %d step %d: beta1 %.17g vs torch %.17g", n, t, b, b1[t]);
        }
        /* the shape PyTorch's defaults give: start max/25, peak max at 30%, end near max/25/1e4 */
        KT_CHECK_NEAR(lr[0], 3e-4 / 25, 1e-15);
        KT_CHECK_NEAR(b1[0], 0.95, 1e-15);
        printf("total %d: worst relative lr difference %.3g\n", n, worst);
        free(lr);
        free(b1);
    }
    kt_st_close(&f);
}

KT_TEST(test_onecycle_shape_and_fixed_beta1) {
    kt_onecycle s;
    kt_onecycle_default(&s, 1e-3, 100);
    /* phase 1 ends at step 0.3 * 100 - 1 = 29: the peak */
    KT_CHECK_NEAR(kt_onecycle_lr(&s, 29), 1e-3, 1e-15);
    KT_CHECK_NEAR(kt_onecycle_beta1(&s, 29), 0.85, 1e-15);
    KT_CHECK_NEAR(kt_onecycle_lr(&s, 99), 1e-3 / 25 / 1e4, 1e-18);
    KT_CHECK_NEAR(kt_onecycle_beta1(&s, 99), 0.95, 1e-15);
    for (int t = 1; t < 29; t++) KT_CHECK(kt_onecycle_lr(&s, t) > kt_onecycle_lr(&s, t - 1), "warm-up rises at %d", t);
    for (int t = 30; t < 100; t++) KT_CHECK(kt_onecycle_lr(&s, t) < kt_onecycle_lr(&s, t - 1), "annealing falls at %d", t);
    s.cycle_momentum = 0;
    for (int t = 0; t < 100; t += 7) KT_CHECK(kt_onecycle_beta1(&s, t) == 0.9, "fixed beta1 at %d", t);
    kt_err err = {0};
    s.total_steps = 0;
    KT_CHECK(kt_onecycle_validate(&s, &err) == KT_ERR_ARG && strstr(err.msg, "steps"), "%s", err.msg);
    kt_onecycle_default(&s, 1e-3, 3); /* tiny totals do not divide by zero */
    for (int t = 0; t <= 3; t++) KT_CHECK(isfinite(kt_onecycle_lr(&s, t)), "finite at %d", t);
}
