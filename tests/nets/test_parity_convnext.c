/* ConvNeXt parity with PyTorch + timm (golden files from tests/reference/parity_convnext.py):
 * logits, loss, every parameter's gradient and the parameters after one AdamW step.
 *
 * Tolerance: for each tensor, max |ours - torch| <= 1e-4 * scale (plus 1e-6 absolute), where
 * scale is the tensor's max |value| in PyTorch (from grad_stats/updated_stats for sampled ones).
 * f32 sums in different orders agree to ~1e-6 relative, so 1e-4 leaves room for reduction order
 * over tens of thousands of terms while any wrong formula is off by O(1). Full-tensor statistics
 * (sum, sum of squares) of the sampled gradients must agree to 1e-3 relative to their scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "kernels/cpu/adamw.h"
#include "kt_test.h"
#include "nets/model.h"

#define REL_TOL 1e-4
#define ABS_TOL 1e-6
#define STATS_TOL 1e-3
#define SAMPLE 4096

typedef struct {
    double worst;
    char worst_name[300];
    int failures;
} summary;

/* Compares ours (full tensor, PyTorch layout, n elements) with golden[name] (whole or sampled). */
static void compare(const kt_st_file *f, const char *kind, const char *pname, const float *ours, int64_t n, summary *sm,
                    const float *skip_mask_grad, double skip_tol) {
    char name[256], stats_name[256];
    snprintf(name, sizeof name, "%s.%s", kind, pname);
    snprintf(stats_name, sizeof stats_name, "%s_stats.%s", kind, pname);
    const kt_st_tensor *t = kt_st_find(f, name);
    if (!t) {
        kt_test_fail(__FILE__, __LINE__, "golden %s has no %s", f->path, name);
        sm->failures++;
        return;
    }
    kt_err err;
    float *ref = malloc(sizeof(float) * (size_t)t->numel);
    double st[3] = {0, 0, 0};
    const kt_st_tensor *ts = kt_st_find(f, stats_name);
    if (kt_st_read_f32(f, t, ref, t->numel, &err) || (ts && kt_st_read_f32(f, ts, (float[3]){0}, 3, &err))) {
        kt_test_fail(__FILE__, __LINE__, "reading %s: %s", name, err.msg);
        free(ref);
        sm->failures++;
        return;
    }
    double scale = 0;
    for (int64_t k = 0; k < t->numel; k++) scale = fmax(scale, fabs(ref[k]));
    int sampled = t->numel != n;
    if (ts) {
        /* the stats are F64 in the file; read them exactly */
        memcpy(st, ts->data, sizeof st);
        scale = fmax(scale, st[2]);
    }
    if (sampled && (t->numel != SAMPLE || !ts)) {
        kt_test_fail(__FILE__, __LINE__, "%s: %lld golden values for %lld parameters and no stats", name, (long long)t->numel,
                     (long long)n);
        free(ref);
        sm->failures++;
        return;
    }
    double worst = 0;
    int64_t at = -1;
    for (int64_t k = 0; k < t->numel; k++) {
        int64_t i = sampled ? (k * n) / SAMPLE : k;
        double d = fabs((double)ours[i] - ref[k]);
        /* AdamW's first step moves each parameter by ~lr * sign(grad): where the gradient is ~0 the sign
         * is noise in both implementations, so only those elements get the looser skip_tol (2 lr) */
        if (skip_mask_grad && fabs(skip_mask_grad[i]) < 1e-3 * skip_tol) d = d > 2.0 * skip_tol + 1e-7 ? d : 0;
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    double rel = worst / (scale > 0 ? scale : 1);
    if (rel > sm->worst) {
        sm->worst = rel;
        snprintf(sm->worst_name, sizeof sm->worst_name, "%s", name);
    }
    if (!(worst <= REL_TOL * scale + ABS_TOL)) {
        kt_test_fail(__FILE__, __LINE__, "%s: max |diff| %.3g at flat index %lld (ours %.8g) > %.1g x scale %.3g", name, worst,
                     (long long)at, at >= 0 ? ours[at] : 0.0, REL_TOL, scale);
        sm->failures++;
    }
    if (ts) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) {
            s += ours[i];
            s2 += (double)ours[i] * ours[i];
        }
        double tol_sum = STATS_TOL * scale * sqrt((double)n) + ABS_TOL, tol_sq = STATS_TOL * st[1] + ABS_TOL;
        if (!skip_mask_grad && (fabs(s - st[0]) > tol_sum || fabs(s2 - st[1]) > tol_sq)) {
            kt_test_fail(__FILE__, __LINE__, "%s: full-tensor sum %.8g vs %.8g, sum of squares %.8g vs %.8g", name, s, st[0], s2, st[1]);
            sm->failures++;
        }
    }
    free(ref);
}

static void parity_case(const char *file, int B, int H, int W, int check_update) {
    char path[4096], wpath[4096];
    snprintf(path, sizeof path, "%s/tests/golden/parity/%s", kt_test_root(), file);
    snprintf(wpath, sizeof wpath, "%s/tests/golden/parity/convnext_atto_weights.safetensors", kt_test_root());
    kt_err err;
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    kt_model m;
    kt_model_opts o = {.arch = "convnext_atto", .num_classes = 6, .batch = B, .img_h = H, .img_w = W, .train = 1,
                       .label_smoothing = 0.1f};
    kt_status s = kt_model_create(&m, &o, NULL, &err);
    if (s) {
        kt_st_close(&f);
        KT_REQUIRE_OK(s, &err);
    }
    kt_load_report rep;
    s = kt_model_load_weights(&m, wpath, 0, &rep, &err);
    KT_CHECK_OK(s, &err);
    KT_CHECK(kt_model_param_count(&m) == 3376446, "convnext_atto with 6 classes has %lld parameters",
             (long long)kt_model_param_count(&m));
    KT_CHECK_OK(kt_st_get_f32(&f, "input", kt_node_f32(m.input), kt_node_numel(m.input), &err), &err);
    int64_t labels[64];
    KT_CHECK_OK(kt_st_get_i64(&f, "labels", labels, B, &err), &err);
    for (int i = 0; i < B; i++) ((int32_t *)m.labels->data)[i] = (int32_t)labels[i];
    if (!s) s = kt_graph_run(&m.g, &err);
    KT_CHECK_OK(s, &err);
    if (!s) {
        summary sm = {0};
        float loss_ref;
        KT_CHECK_OK(kt_st_get_f32(&f, "loss", &loss_ref, 1, &err), &err);
        float loss = kt_node_f32(m.loss)[0];
        KT_CHECK(fabs(loss - loss_ref) <= REL_TOL * fabs(loss_ref), "loss %.8f vs torch %.8f", loss, loss_ref);
        float logits_ref[64 * 6];
        KT_CHECK_OK(kt_st_get_f32(&f, "logits", logits_ref, B * 6, &err), &err);
        double lscale = 0, lworst = 0;
        for (int i = 0; i < B * 6; i++) {
            lscale = fmax(lscale, fabs(logits_ref[i]));
            lworst = fmax(lworst, fabs(kt_node_f32(m.logits)[i] - logits_ref[i]));
        }
        KT_CHECK(lworst <= REL_TOL * lscale, "logits max |diff| %.3g vs scale %.3g", lworst, lscale);
        for (int p = 0; p < m.n_refs; p++) {
            kt_node *pn = m.g.params[p].node;
            compare(&f, "grad", pn->name, kt_node_f32(pn->grad), kt_node_numel(pn), &sm, NULL, 0);
        }
        if (check_update) {
            /* one AdamW step over the whole parameter buffer, as torch.optim.AdamW with one group */
            int64_t np = m.g.n_param_elems;
            float *mv = calloc((size_t)np * 2, sizeof(float)), *g0 = malloc(sizeof(float) * (size_t)np);
            memcpy(g0, m.g.grad_buf, sizeof(float) * (size_t)np);
            kt_adamw_hp hp = {.lr = 3e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .step = 1};
            kt_cpu_adamw(m.g.param_buf, m.g.grad_buf, mv, mv + np, np, &hp);
            for (int p = 0; p < m.n_refs; p++) {
                kt_node *pn = m.g.params[p].node;
                compare(&f, "updated", pn->name, kt_node_f32(pn), kt_node_numel(pn), &sm, g0 + m.g.params[p].offset, 3e-4);
            }
            free(mv);
            free(g0);
        }
        printf("%s: loss %.7f (torch %.7f), logits max diff %.2g; worst tensor %s at %.2g of its scale\n", file, loss, loss_ref,
               lworst, sm.worst_name, sm.worst);
        KT_CHECK(sm.failures == 0, "%d tensors outside tolerance", sm.failures);
    }
    kt_model_free(&m);
    kt_st_close(&f);
}

KT_TEST(test_parity_convnext_atto) { parity_case("convnext_atto_64x64_b4.safetensors", 4, 64, 64, 1); }
KT_TEST(test_parity_convnext_atto_96_no_droppath) { parity_case("convnext_atto_96x96_b3.safetensors", 3, 96, 96, 0); }
KT_TEST(test_parity_convnext_atto_nonsquare) { parity_case("convnext_atto_64x96_b2.safetensors", 2, 64, 96, 0); }
