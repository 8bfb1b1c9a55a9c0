/* Dynamic loss scaling (train/loss_scale.h): GradScaler's rules, exactness of power-of-two scaling,
 * and the trainer with it: in f32 a scaled run must give the unscaled run's bits, also across a
 * stop and --resume (the scale and its good-step count are in the resumable state). */
#include <math.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/graph_internal.h"
#include "kt_test.h"
#include "test_trainer_util.h"
#include "train/loss_scale.h"
#include "train/trainer.h"

KT_TEST(test_loss_scale_rules) {
    kt_backend *be = kt_backend_cpu();
    kt_loss_scaler s;
    kt_loss_scaler_init(&s);
    KT_CHECK(s.scale == 65536 && s.growth == 2 && s.backoff == 0.5 && s.interval == 2000 && s.good == 0 && s.skipped == 0,
             "defaults (PyTorch's GradScaler): scale %g growth %g backoff %g interval %lld", s.scale, s.growth, s.backoff,
             (long long)s.interval);
    s.interval = 3;
    float g[4] = {32768.0f, -196608.0f, 0.0f, 1.0f};
    int take = -1;
    kt_err err;
    KT_REQUIRE_OK(kt_loss_scaler_unscale(&s, be, g, 4, &take, &err), &err);
    KT_CHECK(take == 1 && g[0] == 0.5f && g[1] == -3.0f && g[2] == 0.0f && g[3] == 0x1p-16f,
             "finite gradients divided exactly by the scale: %g %g %g %g", g[0], g[1], g[2], g[3]);
    KT_CHECK(s.good == 1 && s.scale == 65536, "good %lld, scale %g", (long long)s.good, s.scale);
    for (int i = 0; i < 2; i++) KT_REQUIRE_OK(kt_loss_scaler_unscale(&s, be, g, 4, &take, &err), &err);
    KT_CHECK(s.scale == 131072 && s.good == 0, "after %lld good steps the scale doubles: %g", (long long)s.interval, s.scale);

    const float bad[2] = {INFINITY, NAN};
    for (int k = 0; k < 2; k++) {
        float h[3] = {1.0f, bad[k], 2.0f};
        double before = s.scale;
        s.good = 2;
        KT_REQUIRE_OK(kt_loss_scaler_unscale(&s, be, h, 3, &take, &err), &err);
        KT_CHECK(take == 0, "%s gradient: step not skipped", k ? "NaN" : "inf");
        KT_CHECK(h[0] == 1.0f && h[2] == 2.0f, "skipped step's gradients changed: %g %g", h[0], h[2]);
        KT_CHECK(s.scale == before / 2 && s.good == 0 && s.skipped == k + 1, "%s: scale %g (was %g), good %lld, skipped %lld",
                 k ? "NaN" : "inf", s.scale, before, (long long)s.good, (long long)s.skipped);
    }
    s.scale = 0x1p-24;
    float h[1] = {INFINITY};
    kt_status st = kt_loss_scaler_unscale(&s, be, h, 1, &take, &err);
    KT_CHECK(st == KT_ERR_ARG && strstr(err.msg, "diverged"), "a scale that cannot go lower is an error: %s", err.msg);
}

/* The seed reaches backward: gradients come out multiplied by the scale, and unscaling restores the
 * unscaled gradients bit for bit. */
KT_TEST(test_loss_scale_seeds_backward) {
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    kt_node *x = kt_param(&g, "x", 1, (int64_t[]){3}, 0);
    kt_node *loss = kt_sum(&g, kt_mul(&g, x, x), 1.0f / 3.0f);
    KT_REQUIRE_OK(kt_graph_backward(&g, loss, &err), &err);
    kt_loss_scaler s;
    kt_loss_scaler_init(&s);
    KT_CHECK(kt_loss_scaler_seed(&s, &g, &err) == KT_ERR_STATE, "seeding an unplanned graph: %s", err.msg);
    KT_REQUIRE_OK(kt_graph_plan(&g, NULL, NULL, &err), &err);
    const float v[3] = {0.3f, -1.7f, 2.9f};
    memcpy(x->data, v, sizeof v);
    KT_REQUIRE_OK(kt_graph_run(&g, &err), &err);
    float plain[3];
    memcpy(plain, x->grad->data, sizeof plain);
    KT_REQUIRE_OK(kt_loss_scaler_seed(&s, &g, &err), &err);
    KT_REQUIRE_OK(kt_graph_run(&g, &err), &err);
    const float *gs = x->grad->data;
    for (int i = 0; i < 3; i++) KT_CHECK(gs[i] == plain[i] * 65536.0f, "gradient %d: %g, want %g x 65536", i, gs[i], plain[i]);
    int take = 0;
    KT_REQUIRE_OK(kt_loss_scaler_unscale(&s, g.backend, g.grad_buf, g.n_param_elems, &take, &err), &err);
    KT_CHECK(take && memcmp(gs, plain, sizeof plain) == 0, "unscaled gradients differ from the unscaled run's");
    kt_graph_free(&g);
}

/* A whole training run: the scaled run equals the unscaled one bit for bit (powers of two), and so
 * does a scaled run stopped and resumed. */
KT_TEST(test_train_loss_scaling_exact_and_resumable) {
    char *data = kt_tt_synth("shapes", 3, 8, 32, 5, 0), *out_a = NULL, *out_b = NULL, *out_c = NULL;
    KT_REQUIRE(data, "dataset");
    kt_train_config a, b, c;
    kt_tt_config(&a, data, "plain", &out_a);
    kt_tt_config(&b, data, "scaled", &out_b);
    kt_tt_config(&c, data, "scaled_stopped", &out_c);
    b.loss_scaling = c.loss_scaling = 1;
    kt_train_result ra, rb, rc;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_train_run(&a, &ra, &err), &err);
    KT_REQUIRE_OK(kt_train_run(&b, &rb, &err), &err);
    KT_CHECK(rb.final_params_hash == ra.final_params_hash && ra.final_params_hash != 0,
             "loss-scaled f32 run differs from the plain one: %016llx vs %016llx", (unsigned long long)rb.final_params_hash,
             (unsigned long long)ra.final_params_hash);
    c.stop_after_steps = 3;
    KT_REQUIRE(kt_train_run(&c, &rc, &err) == KT_ERR_INTERRUPTED, "stop: %s", err.msg);
    c.stop_after_steps = 0;
    c.resume = 1;
    KT_REQUIRE_OK(kt_train_run(&c, &rc, &err), &err);
    KT_CHECK(rc.final_params_hash == ra.final_params_hash, "loss-scaled run stopped and resumed differs");
    free(data);
    free(out_a);
    free(out_b);
    free(out_c);
}
