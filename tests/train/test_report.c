/* eval_report.json / classification_report.txt / probability tables / epoch log: the written
 * files against sklearn's numbers and text (tests/golden/metrics), and bad inputs. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "kt_test.h"
#include "test_metrics_golden.h"
#include "train/report.h"
#include "train/report_csv.h"
#include "train/report_log.h"

typedef struct {
    cJSON *g;
    int n, c;
    float *probs;     /* (n, c) */
    int32_t *labels;  /* (n) */
    const char **names;
} cls_case;

static int load_case(cls_case *k, const char *name) {
    memset(k, 0, sizeof *k);
    k->g = kt_golden_metrics_load(name);
    if (!k->g) return 0;
    int np_, nl;
    k->n = (int)kt_golden_num(k->g, "n");
    k->c = (int)kt_golden_num(k->g, "c");
    double *p = kt_golden_doubles(k->g, "probs", &np_);
    k->labels = kt_golden_ints(k->g, "labels", &nl);
    k->probs = malloc((size_t)np_ * sizeof *k->probs);
    for (int i = 0; i < np_; i++) k->probs[i] = (float)p[i]; /* golden values are float32 */
    free(p);
    const cJSON *cn = cJSON_GetObjectItem(k->g, "class_names");
    k->names = malloc((size_t)k->c * sizeof *k->names);
    for (int i = 0; i < k->c; i++) k->names[i] = cJSON_GetArrayItem(cn, i)->valuestring;
    return 1;
}

static void free_case(cls_case *k) {
    free(k->probs);
    free(k->labels);
    free(k->names);
    cJSON_Delete(k->g);
}

static cJSON *read_json(const char *dir, const char *file) {
    char path[4096], *data = NULL;
    size_t len = 0;
    kt_err err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (kt_file_read(path, &data, &len, &err) != KT_OK) {
        kt_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    cJSON *j = cJSON_Parse(data);
    free(data);
    if (!j) kt_test_fail(__FILE__, __LINE__, "%s is not JSON", path);
    return j;
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!e) kt_test_fail(__FILE__, __LINE__, "key \"%s\" missing from the report", key);
    return cJSON_IsNumber(e) ? e->valuedouble : NAN;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

KT_TEST(test_report_json_has_seed_keys_matching_sklearn) {
    cls_case k;
    if (!load_case(&k, "cls_random_c6")) return;
    const char *dir = kt_test_tmpdir();
    kt_err err = {0};
    kt_report_opts o = {.split = "test"};
    KT_REQUIRE_OK(kt_eval_report_write(dir, "convnext_atto", k.names, k.c, k.probs, k.labels, k.n, &o,
                                       &err), &err);
    cJSON *r = read_json(dir, KT_REPORT_JSON);
    KT_REQUIRE(r, "report parsed");
    static const char *scalars[] = {"accuracy", "balanced_accuracy", "cohen_kappa",
                                    "matthews_corrcoef", "log_loss", "brier_score", "roc_auc_macro",
                                    "average_precision_macro", "ece_mean", "ece_top_label",
                                    "cohen_kappa_quadratic"};
    for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++)
        KT_CHECK_GOLDEN(jnum(r, scalars[i]), kt_golden_num(k.g, scalars[i]), scalars[i]);
    int nt;
    double *topk = kt_golden_doubles(k.g, "topk", &nt);
    const cJSON *tk = cJSON_GetObjectItem(r, "topk");
    for (int i = 0; i < nt; i++) {
        char key[16];
        snprintf(key, sizeof key, "top%d", i + 1);
        KT_CHECK_GOLDEN(jnum(tk, key), topk[i], key);
    }
    KT_CHECK(cJSON_GetArraySize(tk) == 5, "top1..top5 for 6 classes");
    free(topk);
    static const char *per_class[] = {"per_class_auc", "per_class_ap", "ece_per_class"};
    for (int q = 0; q < 3; q++) {
        int nv;
        double *v = kt_golden_doubles(k.g, per_class[q], &nv);
        const cJSON *obj = cJSON_GetObjectItem(r, per_class[q]);
        KT_CHECK(cJSON_GetArraySize(obj) == k.c, "%s has every class", per_class[q]);
        for (int i = 0; i < nv; i++) KT_CHECK_GOLDEN(jnum(obj, k.names[i]), v[i], per_class[q]);
        free(v);
    }
    KT_CHECK(jnum(r, "n") == k.n && jnum(r, "n_classes") == k.c, "n and n_classes");
    KT_CHECK(strcmp(cJSON_GetObjectItem(r, "model")->valuestring, "convnext_atto") == 0, "model");
    KT_CHECK(strcmp(cJSON_GetObjectItem(r, "split")->valuestring, "test") == 0, "split");
    KT_CHECK(strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "class_names"), 2)->valuestring,
                    "Terry-s nail") == 0, "class names in order");
    const cJSON *pc = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "per_class"), "Bluish Nail");
    int nf;
    double *f1 = kt_golden_doubles(k.g, "f1", &nf);
    KT_CHECK_GOLDEN(jnum(pc, "f1"), f1[3], "per_class f1");
    free(f1);
    KT_CHECK_GOLDEN(jnum(cJSON_GetObjectItem(r, "weighted_avg"), "f1"), kt_golden_num(k.g, "weighted_f1"),
                    "weighted f1");
    const cJSON *cm = cJSON_GetObjectItem(r, "confusion_matrix");
    const cJSON *gcm = cJSON_GetObjectItem(k.g, "confusion_matrix");
    for (int i = 0; i < k.c; i++)
        for (int j = 0; j < k.c; j++)
            KT_CHECK(cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j)->valuedouble ==
                         cJSON_GetArrayItem(cJSON_GetArrayItem(gcm, i), j)->valuedouble,
                     "confusion[%d][%d]", i, j);
    KT_CHECK(cJSON_GetObjectItem(r, "undefined_auc_classes") == NULL, "every AUC defined here");
    KT_CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "definitions"), "brier_score"), "definitions");
    cJSON_Delete(r);
    static const char *files[] = {KT_REPORT_TXT, KT_REPORT_CM_PNG, KT_REPORT_CM_NORM_PNG,
                                  KT_REPORT_CALIB_PNG};
    for (int i = 0; i < 4; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        KT_CHECK(kt_file_exists(path), "%s written", files[i]);
    }
    KT_CHECK(count_files(dir) == 5, "exactly the 5 report files, no temp files left");
    free_case(&k);
}

static void check_text(const char *name) {
    cls_case k;
    if (!load_case(&k, name)) return;
    double *p = malloc((size_t)k.n * k.c * sizeof *p);
    for (int i = 0; i < k.n * k.c; i++) p[i] = k.probs[i];
    kt_cls_metrics m;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_cls_metrics_compute(&m, p, k.labels, k.n, k.c, 0, &err), &err);
    char *t2 = kt_classification_report_text(&m, k.names, 0);
    char *t4 = kt_classification_report_text(&m, k.names, 4);
    const char *w2 = cJSON_GetObjectItem(k.g, "classification_report")->valuestring;
    const char *w4 = cJSON_GetObjectItem(k.g, "classification_report_digits4")->valuestring;
    KT_CHECK(t2 && strcmp(t2, w2) == 0, "%s digits 2:\n--- ours\n%s--- sklearn\n%s", name, t2, w2);
    KT_CHECK(t4 && strcmp(t4, w4) == 0, "%s digits 4:\n--- ours\n%s--- sklearn\n%s", name, t4, w4);
    free(t2);
    free(t4);
    free(p);
    kt_cls_metrics_free(&m);
    free_case(&k);
}

KT_TEST(test_report_text_matches_sklearn_byte_for_byte) {
    static const char *cases[] = {"cls_random_c6", "cls_perfect", "cls_constant", "cls_absent_class",
                                  "cls_unused_class", "cls_ties", "cls_binary"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_text(cases[i]);
}

KT_TEST(test_report_multilabel_matches_sklearn) {
    static const char *cases[] = {"ml_random", "ml_edge"};
    for (int q = 0; q < 2; q++) {
        cJSON *g = kt_golden_metrics_load(cases[q]);
        if (!g) return;
        int n = (int)kt_golden_num(g, "n"), L = (int)kt_golden_num(g, "c"), np_, nt;
        double *pd = kt_golden_doubles(g, "probs", &np_);
        uint8_t *t = kt_golden_bytes(g, "targets", &nt);
        float *p = malloc((size_t)np_ * sizeof *p);
        for (int i = 0; i < np_; i++) p[i] = (float)pd[i];
        const char **names = malloc((size_t)L * sizeof *names);
        for (int i = 0; i < L; i++)
            names[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "class_names"), i)->valuestring;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", kt_test_tmpdir(), cases[q]);
        kt_err err = {0};
        KT_REQUIRE_OK(kt_eval_report_write_multilabel(dir, "acne", names, L, p, t, n, NULL, &err), &err);
        cJSON *r = read_json(dir, KT_REPORT_JSON);
        KT_REQUIRE(r, "parsed");
        const cJSON *ml = cJSON_GetObjectItem(r, "multilabel");
        int k3;
        double *micro = kt_golden_doubles(g, "micro", &k3), *macro = kt_golden_doubles(g, "macro", &k3);
        KT_CHECK_GOLDEN(jnum(ml, "micro_f1"), micro[2], "micro_f1");
        KT_CHECK_GOLDEN(jnum(ml, "macro_f1"), macro[2], "macro_f1");
        KT_CHECK_GOLDEN(jnum(ml, "subset_accuracy"), kt_golden_num(g, "subset_accuracy"), "subset");
        KT_CHECK_GOLDEN(jnum(ml, "hamming_loss"), kt_golden_num(g, "hamming_loss"), "hamming");
        KT_CHECK_GOLDEN(jnum(r, "roc_auc_macro"), kt_golden_num(g, "roc_auc_macro"), "auc macro");
        int nv;
        double *auc = kt_golden_doubles(g, "per_label_auc", &nv), *rec = kt_golden_doubles(g, "recall", &nv);
        for (int i = 0; i < L; i++) {
            const cJSON *pl = cJSON_GetObjectItem(cJSON_GetObjectItem(ml, "per_label"), names[i]);
            KT_CHECK_GOLDEN(jnum(pl, "auc"), auc[i], "per-label auc");
            KT_CHECK_GOLDEN(jnum(pl, "recall"), rec[i], "per-label recall");
            KT_CHECK_GOLDEN(jnum(cJSON_GetObjectItem(r, "per_class_auc"), names[i]), auc[i], "per_class_auc");
        }
        char *data = NULL, path[4200];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, KT_REPORT_TXT);
        KT_REQUIRE_OK(kt_file_read(path, &data, &len, &err), &err);
        const char *want = cJSON_GetObjectItem(g, "classification_report")->valuestring;
        KT_CHECK(strcmp(data, want) == 0, "%s text:\n--- ours\n%s--- sklearn\n%s", cases[q], data, want);
        snprintf(path, sizeof path, "%s/%s", dir, KT_REPORT_AUC_PNG);
        KT_CHECK(kt_file_exists(path), "per-label AUC plot");
        free(data);
        free(micro);
        free(macro);
        free(auc);
        free(rec);
        cJSON_Delete(r);
        free(names);
        free(p);
        free(pd);
        free(t);
        cJSON_Delete(g);
    }
}

KT_TEST(test_report_absent_class_auc_is_null) {
    cls_case k;
    if (!load_case(&k, "cls_absent_class")) return;
    const char *dir = kt_test_tmpdir();
    kt_err err = {0};
    kt_report_opts o = {.no_plots = 1};
    KT_REQUIRE_OK(kt_eval_report_write(dir, "m", k.names, k.c, k.probs, k.labels, k.n, &o, &err), &err);
    cJSON *r = read_json(dir, KT_REPORT_JSON);
    KT_REQUIRE(r, "parsed");
    KT_CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "per_class_auc"), "class_3")),
             "AUC of the absent class is null");
    KT_CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "per_class_ap"), "class_3")),
             "AP of the absent class is null");
    const cJSON *u = cJSON_GetObjectItem(r, "undefined_auc_classes");
    KT_CHECK(cJSON_GetArraySize(u) == 1 && strcmp(cJSON_GetArrayItem(u, 0)->valuestring, "class_3") == 0,
             "undefined_auc_classes names class_3");
    KT_CHECK_GOLDEN(jnum(r, "roc_auc_macro"), kt_golden_num(k.g, "roc_auc_macro"), "macro over 4 classes");
    KT_CHECK(count_files(dir) == 2, "no plots with no_plots");
    cJSON_Delete(r);
    free_case(&k);
}

KT_TEST(test_report_with_temperature_scaling) {
    cJSON *g = kt_golden_metrics_load("temp_overconfident");
    if (!g) return;
    int n = (int)kt_golden_num(g, "n"), c = (int)kt_golden_num(g, "c"), nz, ny;
    double *zd = kt_golden_doubles(g, "logits", &nz);
    int32_t *y = kt_golden_ints(g, "labels", &ny);
    float *z = malloc((size_t)nz * sizeof *z), *p0 = malloc((size_t)nz * sizeof *p0),
          *p1 = malloc((size_t)nz * sizeof *p1);
    double *pd = malloc((size_t)nz * sizeof *pd);
    for (int i = 0; i < nz; i++) z[i] = (float)zd[i];
    kt_temperature t;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_temperature_fit(z, y, n, c, 0, &t, &err), &err);
    KT_REQUIRE_OK(kt_temperature_apply(z, n, c, 1.0, pd, &err), &err);
    for (int i = 0; i < nz; i++) p0[i] = (float)pd[i];
    KT_REQUIRE_OK(kt_temperature_apply(z, n, c, t.temperature, pd, &err), &err);
    for (int i = 0; i < nz; i++) p1[i] = (float)pd[i];
    const char *names[] = {"a", "b", "c", "d", "e"};
    const char *dir = kt_test_tmpdir();
    kt_report_opts o = {.split = "test", .temperature = &t, .calibrated_probs = p1};
    KT_REQUIRE_OK(kt_eval_report_write(dir, "m", names, c, p0, y, n, &o, &err), &err);
    cJSON *r = read_json(dir, KT_REPORT_JSON);
    KT_REQUIRE(r, "parsed");
    const cJSON *tb = cJSON_GetObjectItem(r, "temperature"), *cb = cJSON_GetObjectItem(r, "calibrated");
    KT_CHECK(fabs(jnum(tb, "temperature") - kt_golden_num(g, "temperature")) < 1e-6 * t.temperature,
             "T recorded");
    KT_CHECK(jnum(tb, "nll_after") < jnum(tb, "nll_before"), "NLL falls");
    KT_CHECK(jnum(cb, "ece_top_label") < jnum(r, "ece_top_label"), "calibrated ECE lower: %g vs %g",
             jnum(cb, "ece_top_label"), jnum(r, "ece_top_label"));
    KT_CHECK(jnum(cb, "log_loss") < jnum(r, "log_loss"), "calibrated log loss lower");
    KT_CHECK_NEAR(jnum(cb, "accuracy"), jnum(r, "accuracy"), 1e-12); /* T keeps the argmax */
    cJSON_Delete(r);
    free(z);
    free(p0);
    free(p1);
    free(pd);
    free(zd);
    free(y);
    cJSON_Delete(g);
}

KT_TEST(test_report_bad_inputs_write_nothing) {
    const char *dir = kt_test_tmpdir();
    const char *names[] = {"a", "b", "c"};
    float p[6] = {0.7f, 0.2f, 0.1f, 0.1f, 0.8f, 0.1f};
    int32_t y[2] = {0, 1};
    kt_err err = {0};
    KT_CHECK(kt_eval_report_write(dir, "m", names, 0, p, y, 2, NULL, &err) == KT_ERR_ARG, "0 classes");
    KT_CHECK(strstr(err.msg, "0 classes"), "message: %s", err.msg);
    float nanp[6] = {0.7f, 0.2f, 0.1f, NAN, 0.8f, 0.1f};
    KT_CHECK(kt_eval_report_write(dir, "m", names, 3, nanp, y, 2, NULL, &err) == KT_ERR_ARG, "NaN");
    KT_CHECK(strstr(err.msg, "row 1, class 0"), "message: %s", err.msg);
    int32_t y_bad[2] = {0, 3};
    KT_CHECK(kt_eval_report_write(dir, "m", names, 3, p, y_bad, 2, NULL, &err) == KT_ERR_ARG,
             "label 3 with 3 classes");
    KT_CHECK(strstr(err.msg, "labels[1] = 3"), "message: %s", err.msg);
    /* Mismatched sizes: 2 classes claimed for rows of 3 probabilities. */
    KT_CHECK(kt_eval_report_write(dir, "m", names, 2, p, y, 3, NULL, &err) == KT_ERR_ARG, "c = 2");
    KT_CHECK(strstr(err.msg, "sums to"), "message: %s", err.msg);
    const char *dup[] = {"a", "b", "a"};
    KT_CHECK(kt_eval_report_write(dir, "m", dup, 3, p, y, 2, NULL, &err) == KT_ERR_ARG, "duplicate");
    KT_CHECK(strstr(err.msg, "share the name \"a\""), "message: %s", err.msg);
    const char *hole[] = {"a", NULL, "c"};
    KT_CHECK(kt_eval_report_write(dir, "m", hole, 3, p, y, 2, NULL, &err) == KT_ERR_ARG, "NULL name");
    KT_CHECK(kt_eval_report_write(dir, "m", names, 3, p, y, 0, NULL, &err) == KT_ERR_ARG, "n = 0");
    uint8_t t[6] = {1, 0, 0, 0, 1, 3};
    KT_CHECK(kt_eval_report_write_multilabel(dir, "m", names, 3, p, t, 2, NULL, &err) == KT_ERR_ARG,
             "target 3");
    KT_CHECK(count_files(dir) == 0, "nothing written for refused input");
    char file_as_dir[4096];
    snprintf(file_as_dir, sizeof file_as_dir, "%s/plain_file", dir);
    KT_REQUIRE_OK(kt_file_write_atomic(file_as_dir, "x", 1, &err), &err);
    snprintf(file_as_dir, sizeof file_as_dir, "%s/plain_file/report", dir);
    KT_CHECK(kt_eval_report_write(file_as_dir, "m", names, 3, p, y, 2, NULL, &err) == KT_ERR_IO,
             "output folder under a file: %s", err.msg);
}

KT_TEST(test_report_probability_tables_format) {
    const char *dir = kt_test_tmpdir();
    const char *names[] = {"Bluish Nail", "Terry-s, nail", "say \"hi\""};
    const char *files[] = {"a.jpg", "b,c.jpg"};
    float p[6] = {0.7f, 0.2f, 0.1f, 0.125f, 0.75f, 0.125f};
    int32_t y[2] = {0, 1}, folds[2] = {1, 3};
    kt_err err = {0};
    KT_REQUIRE_OK(kt_probs_csv_write(dir, "oof", "convnext_atto", names, 3, files, y, p, 2, &err), &err);
    KT_REQUIRE_OK(kt_meta_csv_write(dir, "convnext_atto", folds, files, y, 2, &err), &err);
    uint8_t t[6] = {1, 0, 1, 0, 0, 0};
    KT_REQUIRE_OK(kt_probs_csv_write_multilabel(dir, "test", "m", names, 3, files, t, p, 2, &err), &err);
    char path[4096], *data = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/oof_probs_convnext_atto.csv", dir);
    KT_REQUIRE_OK(kt_file_read(path, &data, &len, &err), &err);
    const char *want = "filename,label,Bluish Nail,\"Terry-s, nail\",\"say \"\"hi\"\"\"\n"
                       "a.jpg,0,0.699999988,0.200000003,0.100000001\n"
                       "\"b,c.jpg\",1,0.125,0.75,0.125\n";
    KT_CHECK(strcmp(data, want) == 0, "oof table:\n%s", data);
    free(data);
    snprintf(path, sizeof path, "%s/meta_convnext_atto.csv", dir);
    KT_REQUIRE_OK(kt_file_read(path, &data, &len, &err), &err);
    KT_CHECK(strcmp(data, "fold,filename,label\n1,a.jpg,0\n3,\"b,c.jpg\",1\n") == 0, "meta:\n%s", data);
    free(data);
    snprintf(path, sizeof path, "%s/test_probs_m.csv", dir);
    KT_REQUIRE_OK(kt_file_read(path, &data, &len, &err), &err);
    KT_CHECK(strncmp(data, "filename,labels,", 16) == 0 && strstr(data, "\na.jpg,0 2,") &&
                 strstr(data, "\n\"b,c.jpg\",,"), "multi-label table:\n%s", data);
    free(data);
    KT_CHECK(kt_probs_csv_write(dir, "oof", "../evil", names, 3, files, y, p, 2, &err) == KT_ERR_ARG,
             "model name with a path");
    KT_CHECK(strstr(err.msg, "must not be a path"), "message: %s", err.msg);
    KT_CHECK(kt_probs_csv_write(dir, "oof", "..", names, 3, files, y, p, 2, &err) == KT_ERR_ARG, "..");
    int32_t y_bad[2] = {0, 7};
    KT_CHECK(kt_probs_csv_write(dir, "oof", "m", names, 3, files, y_bad, p, 2, &err) == KT_ERR_ARG,
             "label 7");
    KT_CHECK(count_files(dir) == 3, "only the three good tables");
}

KT_TEST(test_report_epoch_log_round_trip) {
    const char *dir = kt_test_tmpdir();
    kt_epoch_record r[3] = {{1, 1, 1.25, 1.5, NAN, 0.5, 3e-4, 10.5},
                            {2, 1, 0.75, 1.0, 0.8, 0.625, 1e-4, 9.25},
                            {1, 2, 1.0, NAN, NAN, NAN, 3e-4, 11.0}};
    kt_err err = {0};
    KT_REQUIRE_OK(kt_training_log_write(dir, "convnext_atto", r, 3, 1, &err), &err);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, KT_EPOCH_LOG_FILE);
    kt_epoch_record *back = NULL;
    int n = 0;
    KT_REQUIRE_OK(kt_epoch_log_read(path, &back, &n, &err), &err);
    KT_REQUIRE(n == 3, "3 records back, got %d", n);
    for (int i = 0; i < 3; i++) {
        KT_CHECK(back[i].epoch == r[i].epoch && back[i].fold == r[i].fold, "record %d ids", i);
        const double *a = &r[i].train_loss, *b = &back[i].train_loss;
        for (int f = 0; f < 6; f++)
            KT_CHECK((isnan(a[f]) && isnan(b[f])) || a[f] == b[f], "record %d field %d", i, f);
    }
    free(back);
    char *data = NULL;
    size_t len;
    KT_REQUIRE_OK(kt_file_read(path, &data, &len, &err), &err);
    KT_CHECK(strncmp(data, "{\"epoch\":1,\"fold\":1,\"train_loss\":1.25,\"val_loss\":1.5,\"train_acc\":null,", 70) == 0,
             "JSON lines with null for not measured: %s", data);
    free(data);
    snprintf(path, sizeof path, "%s/%s", dir, KT_CURVES_PNG);
    KT_CHECK(kt_file_exists(path), "learning curves plotted");
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    const char *bad = "{\"epoch\":1,\"fold\":1,\"train_loss\":1,\"val_loss\":1,\"train_acc\":1,\"val_acc\":1,\"lr\":1,\"seconds\":1}\n"
                      "{\"epoch\":2,\"fold\":1,\"train_loss\":\"x\"}\n";
    KT_REQUIRE_OK(kt_file_write_atomic(path, bad, strlen(bad), &err), &err);
    KT_CHECK(kt_epoch_log_read(path, &back, &n, &err) == KT_ERR_FORMAT, "bad line refused");
    KT_CHECK(strstr(err.msg, "bad.jsonl:2") && strstr(err.msg, "train_loss"), "message: %s", err.msg);
    KT_CHECK(back == NULL && n == 0, "nothing returned on error");
}

/* A second report into the same folder that fails halfway (a folder where a plot goes, as a full
 * disk would fail it) must not leave the first report's eval_report.json describing the new files. */
KT_TEST(test_report_failed_rewrite_leaves_no_stale_json) {
    const char *names[] = {"a", "b"};
    float probs[] = {0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f};
    int32_t labels[] = {0, 1, 1};
    char dir[4200], png[4300];
    snprintf(dir, sizeof dir, "%s/rewrite", kt_test_tmpdir());
    kt_err err = {0};
    kt_report_opts o = {.split = "test"};
    KT_REQUIRE_OK(kt_eval_report_write(dir, "m", names, 2, probs, labels, 3, &o, &err), &err);
    char json[4300];
    snprintf(json, sizeof json, "%s/%s", dir, KT_REPORT_JSON);
    KT_REQUIRE(kt_file_exists(json), "first report");
    snprintf(png, sizeof png, "%s/%s", dir, KT_REPORT_CM_PNG);
    KT_REQUIRE(unlink(png) == 0 && mkdir(png, 0755) == 0, "block %s", png);
    KT_CHECK(kt_eval_report_write(dir, "m", names, 2, probs, labels, 3, &o, &err) != KT_OK, "the rewrite did not fail");
    KT_CHECK(!kt_file_exists(json), "the first report's %s is still there beside the second's files", KT_REPORT_JSON);
    rmdir(png);
}
