/* train/evaluate: the host-side criterion and scores against their closed forms, and checkpoint
 * ensembles (class columns matched by name, probabilities averaged, bad checkpoints refused). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/ckpt_meta.h"
#include "kt_test.h"
#include "nets/model.h"
#include "test_trainer_util.h"
#include "train/evaluate.h"

/* F.cross_entropy(z, y, label_smoothing=s) = (1-s) * (-log p_y) + s * mean_c(-log p_c), by hand. */
KT_TEST(test_eval_loss_matches_closed_forms) {
    const float z[2 * 3] = {2.0f, -1.0f, 0.5f, 0.0f, 3.0f, -2.0f};
    const int32_t y[2] = {2, 1};
    double want = 0, sm = 0.1f; /* the smoothing as the float the API takes */
    for (int i = 0; i < 2; i++) {
        double lse = log(exp(z[3 * i]) + exp(z[3 * i + 1]) + exp(z[3 * i + 2]));
        double nll = lse - z[3 * i + y[i]], mean = 0;
        for (int c = 0; c < 3; c++) mean += (lse - z[3 * i + c]) / 3;
        want += ((1 - sm) * nll + sm * mean) / 2;
    }
    KT_CHECK_NEAR(kt_logits_loss(z, y, NULL, 2, 3, 0, 0.1f), want, 1e-12);
    /* BCE with logits, mean over all cells, stable for large |z| */
    const float zb[4] = {0.3f, -60.0f, 60.0f, -0.7f}, t[4] = {1, 0, 0, 1};
    double bce = 0;
    for (int i = 0; i < 4; i++) {
        double p = 1 / (1 + exp(-(double)zb[i]));
        bce += t[i] ? -log(p) : (zb[i] > 30 ? zb[i] : -log(1 - p)); /* -log(1 - sigmoid(60)) = 60 + tiny */
    }
    KT_CHECK_NEAR(kt_logits_loss(zb, NULL, t, 2, 2, 1, 0), bce / 4, 1e-9);
    float p[6];
    kt_logits_to_probs(z, 2, 3, 0, p);
    KT_CHECK_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
    KT_CHECK(p[0] > p[2] && p[2] > p[1], "softmax order");
}

KT_TEST(test_eval_hits_accuracy_and_micro_f1) {
    const float z[3 * 2] = {1, 0, 0, 1, 2, 1};
    const int32_t y[3] = {0, 0, 0};
    kt_hits h = {0};
    kt_hits_add(&h, z, y, NULL, 3, 2, 0);
    KT_CHECK_NEAR(kt_hits_score(&h, 0), 2.0 / 3, 1e-12);
    /* multi-label at logit >= 0: cells (pred, true) = (1,1) (0,1) (1,0) (0,0) (1,1) (1,0) */
    const float zm[3 * 2] = {0.1f, -1, 0, -0.5f, 2, 3};
    const float t[3 * 2] = {1, 1, 0, 0, 1, 0};
    kt_hits m = {0};
    kt_hits_add(&m, zm, NULL, t, 3, 2, 1);
    KT_CHECK(m.tp == 2 && m.fp == 2 && m.fn == 1, "tp %lld fp %lld fn %lld", (long long)m.tp, (long long)m.fp, (long long)m.fn);
    KT_CHECK_NEAR(kt_hits_score(&m, 1), 4.0 / 7, 1e-12);
}

/* Saves a fresh smallcnn with the given class names (NULL: no names) and returns its path. */
static char *save_model(const char *name, const char *const *classes, int n, uint64_t seed) {
    kt_model m;
    kt_model_opts o = {.arch = "smallcnn", .num_classes = n, .batch = 1, .img_h = 32, .img_w = 32};
    kt_err err = {0};
    char *path = malloc(8192);
    snprintf(path, 8192, "%s/%s.safetensors", kt_test_tmpdir(), name);
    kt_ckpt_meta md;
    kt_ckpt_meta_init(&md);
    if (classes) kt_ckpt_meta_set_classes(&md, classes, n, &err);
    if (kt_model_create(&m, &o, NULL, &err) || kt_model_init_weights(&m, seed, &err) ||
        kt_model_save_weights(&m, path, &md, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s", err.msg);
        free(path);
        path = NULL;
    }
    kt_ckpt_meta_free(&md);
    if (path) kt_model_free(&m);
    return path;
}

KT_TEST(test_eval_ensemble_maps_classes_by_name_and_averages) {
    char *data = kt_tt_synth("shapes", 3, 4, 32, 37, 0);
    KT_REQUIRE(data, "dataset");
    kt_dataset ds;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_dataset_open(&ds, data, NULL, &err), &err);
    const char *in_order[3] = {"disk", "square", "triangle"}, *reversed[3] = {"triangle", "square", "disk"};
    char *a = save_model("a", in_order, 3, 1), *b = save_model("b", reversed, 3, 1), *c = save_model("c", in_order, 3, 2);
    KT_REQUIRE(a && b && c, "checkpoints");
    int64_t n = ds.split_count[KT_SPLIT_TEST], *items = malloc((size_t)n * sizeof *items);
    for (int64_t i = 0; i < n; i++) items[i] = ds.split_first[KT_SPLIT_TEST] + i;
    float *pa = malloc((size_t)n * 3 * sizeof *pa), *pb = malloc((size_t)n * 3 * sizeof *pb), *pc = malloc((size_t)n * 3 * sizeof *pc),
          *pe = malloc((size_t)n * 3 * sizeof *pe);
    kt_eval_config ec;
    kt_eval_config_default(&ec);
    ec.batch = 5; /* a partial last batch */
    int ml = 0;
    KT_REQUIRE_OK(kt_eval_ensemble((const char *const[]){a}, 1, &ds, items, n, &ec, pa, &ml, &err), &err);
    KT_REQUIRE_OK(kt_eval_ensemble((const char *const[]){b}, 1, &ds, items, n, &ec, pb, &ml, &err), &err);
    KT_REQUIRE_OK(kt_eval_ensemble((const char *const[]){c}, 1, &ds, items, n, &ec, pc, &ml, &err), &err);
    KT_REQUIRE_OK(kt_eval_ensemble((const char *const[]){a, c}, 2, &ds, items, n, &ec, pe, &ml, &err), &err);
    KT_CHECK(ml == 0, "single-label");
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            /* b has a's weights, its head rows named in reverse: column k of b's output is class 2-k,
             * so mapped into the dataset's order b's probabilities are a's with the columns reversed */
            KT_CHECK(pb[i * 3 + k] == pa[i * 3 + (2 - k)], "item %lld class %d: %g vs %g", (long long)i, k, pb[i * 3 + k],
                     pa[i * 3 + 2 - k]);
            KT_CHECK_NEAR(pe[i * 3 + k], (pa[i * 3 + k] + pc[i * 3 + k]) / 2, 1e-7);
        }
    /* a checkpoint of other classes is refused, naming the class */
    const char *other[3] = {"disk", "square", "hexagon"};
    char *d = save_model("d", other, 3, 1);
    KT_CHECK(kt_eval_ensemble((const char *const[]){d}, 1, &ds, items, n, &ec, pa, &ml, &err) == KT_ERR_ARG &&
                 strstr(err.msg, "hexagon"),
             "%s", err.msg);
    char *e = save_model("e", NULL, 4, 1); /* no names, 4 classes */
    KT_CHECK(kt_eval_ensemble((const char *const[]){e}, 1, &ds, items, n, &ec, pa, &ml, &err) == KT_ERR_ARG &&
                 strstr(err.msg, "4 classes"),
             "%s", err.msg);
    KT_CHECK(kt_eval_ensemble((const char *const[]){"/nonexistent.safetensors"}, 1, &ds, items, n, &ec, pa, &ml, &err) != KT_OK,
             "a missing file was accepted");
    free(pa), free(pb), free(pc), free(pe), free(items);
    free(a), free(b), free(c), free(d), free(e);
    kt_dataset_close(&ds);
    free(data);
}
