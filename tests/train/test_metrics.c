/* Single- and multi-label metrics against sklearn's numbers (tests/reference/metrics_ref.py),
 * and the errors bad inputs get. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kt_test.h"
#include "test_metrics_golden.h"
#include "train/metrics.h"
#include "train/metrics_binary.h"
#include "train/metrics_multilabel.h"

/* Compares every field of one single-label golden case; returns the number of failures added. */
static void check_cls_case(const char *name) {
    int before = kt_test_failures();
    cJSON *g = kt_golden_metrics_load(name);
    if (!g) return;
    int n = (int)kt_golden_num(g, "n"), c = (int)kt_golden_num(g, "c"), np_, nl, k;
    double *probs = kt_golden_doubles(g, "probs", &np_);
    int32_t *labels = kt_golden_ints(g, "labels", &nl);
    KT_REQUIRE(np_ == n * c && nl == n, "%s: golden sizes", name);
    kt_cls_metrics m;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_cls_metrics_compute(&m, probs, labels, n, c, 0, &err), &err);
    char what[128];
#define SCALAR(field)                                                                              \
    snprintf(what, sizeof what, "%s.%s", name, #field);                                            \
    KT_CHECK_GOLDEN(m.field, kt_golden_num(g, #field), what)
    SCALAR(accuracy);
    SCALAR(balanced_accuracy);
    SCALAR(cohen_kappa);
    SCALAR(cohen_kappa_quadratic);
    SCALAR(matthews_corrcoef);
    SCALAR(log_loss);
    SCALAR(brier_score);
    SCALAR(roc_auc_macro);
    SCALAR(average_precision_macro);
    SCALAR(ece_mean);
    SCALAR(ece_top_label);
    SCALAR(macro_precision);
    SCALAR(macro_recall);
    SCALAR(macro_f1);
    SCALAR(weighted_precision);
    SCALAR(weighted_recall);
    SCALAR(weighted_f1);
#undef SCALAR
    double *v = kt_golden_doubles(g, "topk", &k);
    KT_CHECK(k == m.n_topk, "%s: %d top-k values, sklearn %d", name, m.n_topk, k);
    for (int i = 0; i < k && i < m.n_topk; i++) {
        snprintf(what, sizeof what, "%s.top%d", name, i + 1);
        KT_CHECK_GOLDEN(m.topk[i], v[i], what);
    }
    free(v);
    struct {
        const char *key;
        const double *got;
    } vecs[] = {{"per_class_auc", m.per_class_auc}, {"per_class_ap", m.per_class_ap},
                {"ece_per_class", m.ece_per_class}, {"precision", m.precision},
                {"recall", m.recall}, {"f1", m.f1}};
    for (size_t q = 0; q < sizeof vecs / sizeof vecs[0]; q++) {
        v = kt_golden_doubles(g, vecs[q].key, &k);
        KT_CHECK(k == c, "%s.%s length", name, vecs[q].key);
        for (int i = 0; i < k && i < c; i++) {
            snprintf(what, sizeof what, "%s.%s[%d]", name, vecs[q].key, i);
            KT_CHECK_GOLDEN(vecs[q].got[i], v[i], what);
        }
        free(v);
    }
    int32_t *sup = kt_golden_ints(g, "support", &k);
    for (int i = 0; i < c && i < k; i++) KT_CHECK(m.support[i] == sup[i], "%s support[%d]", name, i);
    free(sup);
    int32_t *counts = kt_golden_ints(g, "ece_top_label_counts", &k);
    KT_CHECK(k == m.top_bins.n_bins, "%s: %d bins", name, k);
    for (int i = 0; i < k && i < m.top_bins.n_bins; i++)
        KT_CHECK(m.top_bins.count[i] == counts[i], "%s top-label bin %d: %lld vs sklearn %d", name, i,
                 (long long)m.top_bins.count[i], counts[i]);
    free(counts);
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(g, "confusion_matrix");
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            const cJSON *e = cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j);
            KT_CHECK(e && m.confusion[i * c + j] == (int64_t)e->valuedouble, "%s confusion[%d][%d]",
                     name, i, j);
        }
    KT_CHECK(m.micro_is_accuracy == (strstr(cJSON_GetObjectItem(g, "classification_report")->valuestring,
                                            "accuracy") != NULL),
             "%s: accuracy vs micro avg row", name);
    kt_cls_metrics_free(&m);
    free(probs);
    free(labels);
    cJSON_Delete(g);
    if (kt_test_failures() != before) fprintf(stderr, "  (golden case %s)\n", name);
}

KT_TEST(test_metrics_cls_random_matches_sklearn) { check_cls_case("cls_random_c6"); }
KT_TEST(test_metrics_cls_perfect_matches_sklearn) { check_cls_case("cls_perfect"); }
KT_TEST(test_metrics_cls_constant_matches_sklearn) { check_cls_case("cls_constant"); }
KT_TEST(test_metrics_cls_absent_class_matches_sklearn) { check_cls_case("cls_absent_class"); }
KT_TEST(test_metrics_cls_unused_class_matches_sklearn) { check_cls_case("cls_unused_class"); }
KT_TEST(test_metrics_cls_ties_matches_sklearn) { check_cls_case("cls_ties"); }
KT_TEST(test_metrics_cls_binary_matches_sklearn) { check_cls_case("cls_binary"); }

static void check_ml_case(const char *name) {
    int before = kt_test_failures();
    cJSON *g = kt_golden_metrics_load(name);
    if (!g) return;
    int n = (int)kt_golden_num(g, "n"), L = (int)kt_golden_num(g, "c"), np_, nt, k;
    double *probs = kt_golden_doubles(g, "probs", &np_);
    uint8_t *targets = kt_golden_bytes(g, "targets", &nt);
    KT_REQUIRE(np_ == n * L && nt == n * L, "%s: golden sizes", name);
    kt_ml_metrics m;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_ml_metrics_compute(&m, probs, targets, n, L, kt_golden_num(g, "threshold"), 0,
                                        &err), &err);
    char what[128];
    struct {
        const char *key;
        const double *got;
    } vecs[] = {{"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1},
                {"per_label_auc", m.auc}, {"per_label_ap", m.ap}, {"ece_per_label", m.ece}};
    for (size_t q = 0; q < sizeof vecs / sizeof vecs[0]; q++) {
        double *v = kt_golden_doubles(g, vecs[q].key, &k);
        KT_CHECK(k == L, "%s.%s length", name, vecs[q].key);
        for (int i = 0; i < k && i < L; i++) {
            snprintf(what, sizeof what, "%s.%s[%d]", name, vecs[q].key, i);
            KT_CHECK_GOLDEN(vecs[q].got[i], v[i], what);
        }
        free(v);
    }
    struct {
        const char *key;
        kt_prf got;
    } avgs[] = {{"micro", m.micro}, {"macro", m.macro}, {"weighted", m.weighted},
                {"samples", m.samples}};
    for (size_t q = 0; q < 4; q++) {
        double *v = kt_golden_doubles(g, avgs[q].key, &k);
        KT_REQUIRE(k == 3, "%s.%s", name, avgs[q].key);
        snprintf(what, sizeof what, "%s.%s.precision", name, avgs[q].key);
        KT_CHECK_GOLDEN(avgs[q].got.precision, v[0], what);
        snprintf(what, sizeof what, "%s.%s.recall", name, avgs[q].key);
        KT_CHECK_GOLDEN(avgs[q].got.recall, v[1], what);
        snprintf(what, sizeof what, "%s.%s.f1", name, avgs[q].key);
        KT_CHECK_GOLDEN(avgs[q].got.f1, v[2], what);
        free(v);
    }
    snprintf(what, sizeof what, "%s.subset_accuracy", name);
    KT_CHECK_GOLDEN(m.subset_accuracy, kt_golden_num(g, "subset_accuracy"), what);
    snprintf(what, sizeof what, "%s.hamming_loss", name);
    KT_CHECK_GOLDEN(m.hamming_loss, kt_golden_num(g, "hamming_loss"), what);
    snprintf(what, sizeof what, "%s.roc_auc_macro", name);
    KT_CHECK_GOLDEN(m.roc_auc_macro, kt_golden_num(g, "roc_auc_macro"), what);
    snprintf(what, sizeof what, "%s.average_precision_macro", name);
    KT_CHECK_GOLDEN(m.average_precision_macro, kt_golden_num(g, "average_precision_macro"), what);
    snprintf(what, sizeof what, "%s.ece_mean", name);
    KT_CHECK_GOLDEN(m.ece_mean, kt_golden_num(g, "ece_mean"), what);
    int32_t *sup = kt_golden_ints(g, "support", &k);
    for (int i = 0; i < L && i < k; i++) KT_CHECK(m.support[i] == sup[i], "%s support[%d]", name, i);
    free(sup);
    kt_ml_metrics_free(&m);
    free(probs);
    free(targets);
    cJSON_Delete(g);
    if (kt_test_failures() != before) fprintf(stderr, "  (golden case %s)\n", name);
}

KT_TEST(test_metrics_multilabel_random_matches_sklearn) { check_ml_case("ml_random"); }
KT_TEST(test_metrics_multilabel_edge_matches_sklearn) { check_ml_case("ml_edge"); }

/* Hand-checkable AUC with ties: scores {0.8 (+), 0.8 (-), 0.2 (+), 0.2 (-)}: the ROC goes
 * (0,0) -> (.5,.5) -> (1,1), area 0.5; AP = 0.5*0.5 + 0.5*0.5 = 0.5. */
KT_TEST(test_metrics_auc_ties_count_half) {
    double s[] = {0.8, 0.8, 0.2, 0.2};
    uint8_t y[] = {1, 0, 1, 0};
    double auc, ap;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_rank_metrics(s, y, 4, &auc, &ap, &err), &err);
    KT_CHECK_NEAR(auc, 0.5, 1e-15);
    KT_CHECK_NEAR(ap, 0.5, 1e-15);
    double s2[] = {0.9, 0.8, 0.8, 0.1}; /* +, +, -, -: one tie between a positive and a negative */
    uint8_t y2[] = {1, 1, 0, 0};
    KT_REQUIRE_OK(kt_rank_metrics(s2, y2, 4, &auc, &ap, &err), &err);
    KT_CHECK_NEAR(auc, 0.875, 1e-15); /* 3 of 4 pairs ordered, 1 tied counts 1/2 */
    uint8_t none[] = {0, 0, 0, 0};
    KT_REQUIRE_OK(kt_rank_metrics(s2, none, 4, &auc, &ap, &err), &err);
    KT_CHECK(isnan(auc) && isnan(ap), "no positives: AUC and AP undefined");
}

/* Scores on a bin edge go to the lower bin, as sklearn's calibration_curve puts them. */
KT_TEST(test_metrics_ece_bin_edges) {
    KT_CHECK(kt_calib_bin_index(0.0, 15) == 0, "0 -> bin 0");
    KT_CHECK(kt_calib_bin_index(1.0, 15) == 14, "1 -> last bin");
    KT_CHECK(kt_calib_bin_index(0.5, 10) == 4, "0.5 on an edge of 10 bins -> bin 4 (0.4, 0.5]");
    KT_CHECK(kt_calib_bin_index(0.5000001, 10) == 5, "just above an edge -> next bin");
    KT_CHECK(kt_calib_bin_index(2.0 / 15.0, 15) == 1, "edge 2/15 -> bin 1");
    kt_calib_bins b;
    kt_err err = {0};
    KT_CHECK(kt_calib_bins_init(&b, 0, &err) == KT_ERR_ARG, "0 bins refused");
    KT_CHECK(kt_calib_bins_init(&b, KT_ECE_BINS_MAX + 1, &err) == KT_ERR_ARG, "too many bins refused");
    KT_REQUIRE_OK(kt_calib_bins_init(&b, 10, &err), &err);
    kt_calib_bins_add(&b, 0.95, 1);
    kt_calib_bins_add(&b, 0.95, 0); /* conf 0.95, acc 0.5 in one bin of 2 samples */
    kt_calib_bins_add(&b, 0.25, 0); /* conf 0.25, acc 0 */
    KT_CHECK_NEAR(kt_calib_bins_ece(&b), (2.0 / 3.0) * 0.45 + (1.0 / 3.0) * 0.25, 1e-15);
}

KT_TEST(test_metrics_bad_inputs_named) {
    kt_cls_metrics m;
    kt_err err = {0};
    double p[] = {0.6, 0.4, 0.3, 0.7};
    int32_t y[] = {0, 1};
    KT_CHECK(kt_cls_metrics_compute(&m, p, y, 0, 2, 0, &err) == KT_ERR_ARG, "n = 0");
    KT_CHECK(strstr(err.msg, "no samples"), "message: %s", err.msg);
    KT_CHECK(kt_cls_metrics_compute(&m, p, y, 2, 1, 0, &err) == KT_ERR_ARG, "one class");
    KT_CHECK(strstr(err.msg, "at least 2 classes"), "message: %s", err.msg);
    KT_CHECK(kt_cls_metrics_compute(&m, p, y, 4, 0, 0, &err) == KT_ERR_ARG, "0 classes");
    int32_t bad_y[] = {0, 2};
    KT_CHECK(kt_cls_metrics_compute(&m, p, bad_y, 2, 2, 0, &err) == KT_ERR_ARG, "label 2 of 2");
    KT_CHECK(strstr(err.msg, "labels[1] = 2"), "message: %s", err.msg);
    double nan_p[] = {0.6, 0.4, NAN, 0.7};
    KT_CHECK(kt_cls_metrics_compute(&m, nan_p, y, 2, 2, 0, &err) == KT_ERR_ARG, "NaN");
    KT_CHECK(strstr(err.msg, "row 1, class 0"), "message: %s", err.msg);
    double logits[] = {2.0, -1.0, 0.3, 0.7};
    KT_CHECK(kt_cls_metrics_compute(&m, logits, y, 2, 2, 0, &err) == KT_ERR_ARG, "logits");
    double unnorm[] = {0.6, 0.4, 0.5, 0.7};
    KT_CHECK(kt_cls_metrics_compute(&m, unnorm, y, 2, 2, 0, &err) == KT_ERR_ARG, "row sum 1.2");
    KT_CHECK(strstr(err.msg, "row 1 sums to 1.2"), "message: %s", err.msg);
    KT_CHECK(kt_cls_metrics_compute(&m, p, y, 2, 2, 101, &err) == KT_ERR_ARG, "101 bins");
    KT_CHECK(kt_cls_metrics_compute(&m, NULL, y, 2, 2, 0, &err) == KT_ERR_ARG, "NULL probs");

    kt_ml_metrics ml;
    uint8_t t[] = {1, 0, 0, 2};
    KT_CHECK(kt_ml_metrics_compute(&ml, p, t, 2, 2, 0.5, 0, &err) == KT_ERR_ARG, "target 2");
    KT_CHECK(strstr(err.msg, "targets[row 1, label 1] = 2"), "message: %s", err.msg);
    uint8_t t_ok[] = {1, 0, 0, 1};
    KT_CHECK(kt_ml_metrics_compute(&ml, nan_p, t_ok, 2, 2, 0.5, 0, &err) == KT_ERR_ARG, "NaN");
    KT_CHECK(kt_ml_metrics_compute(&ml, p, t_ok, 2, 2, 1.5, 0, &err) == KT_ERR_ARG, "threshold 1.5");
    KT_CHECK(kt_ml_metrics_compute(&ml, p, t_ok, 2, 0, 0.5, 0, &err) == KT_ERR_ARG, "0 labels");
}
