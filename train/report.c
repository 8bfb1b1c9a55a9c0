/* eval_report.json, classification_report.txt and the plots of one evaluation (see report.h). */
#include "train/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "train/plot.h"

static const char *DEF_BRIER =
    "multiclass Brier score: mean over samples of the sum over classes of (p_ic - [y_i = c])^2, "
    "range [0, 2]";
static const char *DEF_ECE =
    "expected calibration error with equal-width bins (lo, hi] (first bin [0, hi]): "
    "sum_m |B_m|/N |acc(B_m) - conf(B_m)|; ece_per_class one-vs-rest on p[:, c], ece_mean their "
    "mean, ece_top_label on the max probability";
static const char *DEF_AUC =
    "one-vs-rest per class (sklearn roc_auc_score / average_precision_score); classes without "
    "positives (AUC: or without negatives) are null and left out of the macro means";
static const char *DEF_LOGLOSS =
    "sklearn log_loss: probabilities clipped to [2.22e-16, 1 - 2.22e-16], rows renormalised, "
    "mean of -ln p(true class)";
static const char *DEF_TOPK =
    "sklearn top_k_accuracy_score: among tied scores the higher class index ranks first";

/* Number or null (NaN/inf); returns 0 on allocation failure. */
static int num(cJSON *o, const char *key, double v) {
    cJSON *item = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    return item && cJSON_AddItemToObject(o, key, item);
}

static int str(cJSON *o, const char *key, const char *v) {
    return cJSON_AddStringToObject(o, key, v) != NULL;
}

/* {name: value} over classes. */
static int by_class(cJSON *o, const char *key, const char *const *names, const double *v, int c) {
    cJSON *m = cJSON_AddObjectToObject(o, key);
    if (!m) return 0;
    for (int k = 0; k < c; k++)
        if (!num(m, names[k], v[k])) return 0;
    return 1;
}

static kt_status check_names(const char *const *names, int c, const char *what, kt_err *err) {
    if (c < 1) return kt_err_set(err, KT_ERR_ARG, "report: %d %s: need at least 1", c, what);
    if (!names) return kt_err_set(err, KT_ERR_ARG, "report: %s names are NULL", what);
    for (int i = 0; i < c; i++) {
        if (!names[i] || !names[i][0])
            return kt_err_set(err, KT_ERR_ARG, "report: name of %s %d is %s", what, i,
                              names[i] ? "empty" : "NULL");
        if (strpbrk(names[i], "\r\n"))
            return kt_err_set(err, KT_ERR_ARG, "report: name of %s %d contains a line break", what, i);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return kt_err_set(err, KT_ERR_ARG, "report: %s %d and %d share the name \"%s\"",
                                  what, j, i, names[i]);
    }
    return KT_OK;
}

static kt_status write_text(const char *dir, const char *file, const char *text, kt_err *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return kt_err_set(err, KT_ERR_ARG, "report: output folder path is too long");
    if (!text) return kt_err_set(err, KT_ERR_NOMEM, "report %s: out of memory", path);
    return kt_file_write_atomic(path, text, strlen(text), err);
}

/* eval_report.json is written last and stands for the whole set: an older one goes before any new
 * file, so a report that fails halfway (full disk) leaves no JSON describing files of two runs. */
static void drop_old_json(const char *dir) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, KT_REPORT_JSON) < sizeof path) unlink(path);
}

static kt_status write_json(const char *dir, cJSON *root, kt_err *err) {
    char *text = root ? cJSON_Print(root) : NULL;
    if (!text) return kt_err_set(err, KT_ERR_NOMEM, "report: out of memory building %s", KT_REPORT_JSON);
    size_t len = strlen(text);
    char *with_nl = realloc(text, len + 2);
    if (!with_nl) {
        free(text);
        return kt_err_set(err, KT_ERR_NOMEM, "report: out of memory");
    }
    with_nl[len] = '\n';
    with_nl[len + 1] = '\0';
    kt_status st = write_text(dir, KT_REPORT_JSON, with_nl, err);
    free(with_nl);
    return st;
}

static int path_in(char *buf, size_t n, const char *dir, const char *file) {
    return (size_t)snprintf(buf, n, "%s/%s", dir, file) < n;
}

static double *widen(const float *p, size_t count) {
    double *d = malloc((count ? count : 1) * sizeof *d);
    if (d)
        for (size_t i = 0; i < count; i++) d[i] = p[i];
    return d;
}

static cJSON *common_head(const char *model, const kt_report_opts *o, const char *task, int n,
                          const char *const *names, int c) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    str(root, "model", model ? model : "");
    if (o->split) str(root, "split", o->split);
    str(root, "task", task);
    num(root, "n", n);
    num(root, "n_classes", c);
    cJSON *cn = cJSON_CreateStringArray(names, c);
    if (!cn || !cJSON_AddItemToObject(root, "class_names", cn)) {
        cJSON_Delete(cn);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int add_prf(cJSON *o, const char *key, double p, double r, double f, double support) {
    cJSON *x = cJSON_AddObjectToObject(o, key);
    return x && num(x, "precision", p) && num(x, "recall", r) && num(x, "f1", f) &&
           (isnan(support) || num(x, "support", support));
}

static cJSON *single_label_json(const kt_cls_metrics *m, const char *model,
                                const char *const *names, const kt_report_opts *o,
                                const kt_cls_metrics *cal) {
    int c = m->n_classes;
    cJSON *root = common_head(model, o, "single_label", m->n, names, c);
    if (!root) return NULL;
    int ok = num(root, "accuracy", m->accuracy) &&
             num(root, "balanced_accuracy", m->balanced_accuracy) &&
             num(root, "cohen_kappa", m->cohen_kappa) &&
             num(root, "cohen_kappa_quadratic", m->cohen_kappa_quadratic) &&
             num(root, "matthews_corrcoef", m->matthews_corrcoef) &&
             num(root, "log_loss", m->log_loss) && num(root, "brier_score", m->brier_score) &&
             num(root, "roc_auc_macro", m->roc_auc_macro) &&
             num(root, "average_precision_macro", m->average_precision_macro);
    cJSON *topk = ok ? cJSON_AddObjectToObject(root, "topk") : NULL;
    ok = topk != NULL;
    for (int k = 0; ok && k < m->n_topk; k++) {
        char key[16];
        snprintf(key, sizeof key, "top%d", k + 1);
        ok = num(topk, key, m->topk[k]);
    }
    ok = ok && by_class(root, "per_class_auc", names, m->per_class_auc, c) &&
         by_class(root, "per_class_ap", names, m->per_class_ap, c) &&
         by_class(root, "ece_per_class", names, m->ece_per_class, c) &&
         num(root, "ece_mean", m->ece_mean) && num(root, "ece_top_label", m->ece_top_label) &&
         num(root, "ece_bins", m->top_bins.n_bins);
    cJSON *pc = ok ? cJSON_AddObjectToObject(root, "per_class") : NULL;
    ok = pc != NULL;
    for (int k = 0; ok && k < c; k++)
        ok = add_prf(pc, names[k], m->precision[k], m->recall[k], m->f1[k], (double)m->support[k]);
    ok = ok && add_prf(root, "macro_avg", m->macro_precision, m->macro_recall, m->macro_f1, m->n) &&
         add_prf(root, "weighted_avg", m->weighted_precision, m->weighted_recall, m->weighted_f1, m->n);
    cJSON *cm = ok ? cJSON_AddArrayToObject(root, "confusion_matrix") : NULL;
    ok = cm != NULL;
    for (int i = 0; ok && i < c; i++) {
        cJSON *r = cJSON_CreateArray();
        ok = r && cJSON_AddItemToArray(cm, r);
        for (int j = 0; ok && j < c; j++) {
            cJSON *v = cJSON_CreateNumber((double)m->confusion[(size_t)i * c + j]);
            ok = v && cJSON_AddItemToArray(r, v);
        }
    }
    if (ok && m->n_undefined_auc) {
        cJSON *u = cJSON_AddArrayToObject(root, "undefined_auc_classes");
        ok = u != NULL;
        for (int k = 0; ok && k < c; k++)
            if (isnan(m->per_class_auc[k])) {
                cJSON *s = cJSON_CreateString(names[k]);
                ok = s && cJSON_AddItemToArray(u, s);
            }
    }
    if (ok && cal) {
        cJSON *x = cJSON_AddObjectToObject(root, "calibrated");
        ok = x && num(x, "accuracy", cal->accuracy) && num(x, "log_loss", cal->log_loss) &&
             num(x, "brier_score", cal->brier_score) && num(x, "ece_mean", cal->ece_mean) &&
             num(x, "ece_top_label", cal->ece_top_label);
    }
    if (ok && o->temperature) {
        const kt_temperature *t = o->temperature;
        cJSON *x = cJSON_AddObjectToObject(root, "temperature");
        ok = x && num(x, "temperature", t->temperature) && num(x, "nll_before", t->nll_before) &&
             num(x, "nll_after", t->nll_after) && num(x, "ece_top_before", t->ece_top_before) &&
             num(x, "ece_top_after", t->ece_top_after) &&
             num(x, "ece_mean_before", t->ece_mean_before) &&
             num(x, "ece_mean_after", t->ece_mean_after) && num(x, "ece_bins", t->ece_bins) &&
             cJSON_AddBoolToObject(x, "at_bound", t->at_bound) != NULL;
    }
    cJSON *d = ok ? cJSON_AddObjectToObject(root, "definitions") : NULL;
    ok = d && str(d, "brier_score", DEF_BRIER) && str(d, "ece", DEF_ECE) &&
         str(d, "roc_auc_ap", DEF_AUC) && str(d, "log_loss", DEF_LOGLOSS) && str(d, "topk", DEF_TOPK);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

kt_status kt_eval_report_write(const char *dir, const char *model_name,
                               const char *const *class_names, int c, const float *probs,
                               const int32_t *labels, int n, const kt_report_opts *opts,
                               kt_err *err) {
    kt_report_opts o = opts ? *opts : (kt_report_opts){0};
    if (!dir || !*dir) return kt_err_set(err, KT_ERR_ARG, "report: no output folder");
    kt_status st = check_names(class_names, c, "classes", err);
    if (st != KT_OK) return st;
    if (!probs || n <= 0)
        return kt_err_set(err, KT_ERR_ARG, "report: need probabilities for n = %d > 0 samples", n);
    double *p = widen(probs, (size_t)n * (size_t)c);
    double *pc = o.calibrated_probs ? widen(o.calibrated_probs, (size_t)n * (size_t)c) : NULL;
    if (!p || (o.calibrated_probs && !pc)) {
        free(p);
        free(pc);
        return kt_err_set(err, KT_ERR_NOMEM, "report: out of memory for %d x %d", n, c);
    }
    kt_cls_metrics m, cal;
    memset(&cal, 0, sizeof cal);
    st = kt_cls_metrics_compute(&m, p, labels, n, c, o.ece_bins, err);
    free(p);
    if (st != KT_OK) {
        free(pc);
        return st;
    }
    if (pc) {
        st = kt_cls_metrics_compute(&cal, pc, labels, n, c, o.ece_bins, err);
        free(pc);
        if (st != KT_OK) {
            kt_err_prefix(err, "calibrated probabilities: ");
            kt_cls_metrics_free(&m);
            return st;
        }
    }
    char path[4096];
    char *text = NULL;
    cJSON *root = NULL;
    if ((st = kt_mkdirs(dir, err)) != KT_OK) goto done;
    drop_old_json(dir);
    text = kt_classification_report_text(&m, class_names, o.digits);
    if ((st = write_text(dir, KT_REPORT_TXT, text, err)) != KT_OK) goto done;
    if (!o.no_plots) {
        char title[256];
        snprintf(title, sizeof title, "%s%sconfusion matrix (n = %d)", model_name ? model_name : "",
                 model_name && *model_name ? ": " : "", n);
        if (!path_in(path, sizeof path, dir, KT_REPORT_CM_PNG) ||
            (st = kt_plot_confusion(path, m.confusion, c, class_names, 0, title, 0, 0, err)) != KT_OK)
            goto plot_fail;
        snprintf(title, sizeof title, "%s%sconfusion matrix, normalised by true class",
                 model_name ? model_name : "", model_name && *model_name ? ": " : "");
        if (!path_in(path, sizeof path, dir, KT_REPORT_CM_NORM_PNG) ||
            (st = kt_plot_confusion(path, m.confusion, c, class_names, 1, title, 0, 0, err)) != KT_OK)
            goto plot_fail;
        snprintf(title, sizeof title, "Reliability (top label, %d bins)", m.top_bins.n_bins);
        char after_label[64];
        if (o.temperature) snprintf(after_label, sizeof after_label, "T = %.3g", o.temperature->temperature);
        if (!path_in(path, sizeof path, dir, KT_REPORT_CALIB_PNG) ||
            (st = kt_plot_reliability(path, &m.top_bins, pc ? &cal.top_bins : NULL,
                                      model_name && *model_name ? model_name : "model",
                                      o.temperature ? after_label : "calibrated", title, 0, 0, err)) != KT_OK)
            goto plot_fail;
    }
    root = single_label_json(&m, model_name, class_names, &o, pc ? &cal : NULL);
    st = write_json(dir, root, err);
    goto done;
plot_fail:
    if (st == KT_OK) st = kt_err_set(err, KT_ERR_ARG, "report: output folder path is too long");
done:
    cJSON_Delete(root);
    free(text);
    kt_cls_metrics_free(&m);
    kt_cls_metrics_free(&cal);
    return st;
}

static cJSON *multilabel_json(const kt_ml_metrics *m, const char *model, const char *const *names,
                              const kt_report_opts *o) {
    int L = m->n_labels;
    cJSON *root = common_head(model, o, "multi_label", m->n, names, L);
    if (!root) return NULL;
    int ok = num(root, "threshold", m->threshold) &&
             num(root, "roc_auc_macro", m->roc_auc_macro) &&
             num(root, "average_precision_macro", m->average_precision_macro) &&
             by_class(root, "per_class_auc", names, m->auc, L) &&
             by_class(root, "per_class_ap", names, m->ap, L) &&
             by_class(root, "ece_per_class", names, m->ece, L) && num(root, "ece_mean", m->ece_mean) &&
             num(root, "ece_bins", o->ece_bins ? o->ece_bins : KT_ECE_BINS_DEFAULT);
    cJSON *ml = ok ? cJSON_AddObjectToObject(root, "multilabel") : NULL;
    cJSON *pl = ml ? cJSON_AddObjectToObject(ml, "per_label") : NULL;
    ok = pl != NULL;
    for (int k = 0; ok && k < L; k++) {
        cJSON *x = cJSON_AddObjectToObject(pl, names[k]);
        ok = x && num(x, "precision", m->precision[k]) && num(x, "recall", m->recall[k]) &&
             num(x, "f1", m->f1[k]) && num(x, "support", (double)m->support[k]) &&
             num(x, "auc", m->auc[k]) && num(x, "ap", m->ap[k]);
    }
    ok = ok && num(ml, "micro_f1", m->micro.f1) && num(ml, "macro_f1", m->macro.f1) &&
         add_prf(ml, "micro", m->micro.precision, m->micro.recall, m->micro.f1, NAN) &&
         add_prf(ml, "macro", m->macro.precision, m->macro.recall, m->macro.f1, NAN) &&
         add_prf(ml, "weighted", m->weighted.precision, m->weighted.recall, m->weighted.f1, NAN) &&
         add_prf(ml, "samples", m->samples.precision, m->samples.recall, m->samples.f1, NAN) &&
         num(ml, "subset_accuracy", m->subset_accuracy) && num(ml, "hamming_loss", m->hamming_loss);
    cJSON *d = ok ? cJSON_AddObjectToObject(root, "definitions") : NULL;
    ok = d && str(d, "ece", DEF_ECE) && str(d, "roc_auc_ap", DEF_AUC) &&
         str(d, "prediction", "a label is predicted when p >= threshold; ratios 0/0 count 0");
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

kt_status kt_eval_report_write_multilabel(const char *dir, const char *model_name,
                                          const char *const *label_names, int n_labels,
                                          const float *probs, const uint8_t *targets, int n,
                                          const kt_report_opts *opts, kt_err *err) {
    kt_report_opts o = opts ? *opts : (kt_report_opts){0};
    if (!dir || !*dir) return kt_err_set(err, KT_ERR_ARG, "report: no output folder");
    kt_status st = check_names(label_names, n_labels, "labels", err);
    if (st != KT_OK) return st;
    if (!probs || n <= 0)
        return kt_err_set(err, KT_ERR_ARG, "report: need probabilities for n = %d > 0 samples", n);
    double *p = widen(probs, (size_t)n * (size_t)n_labels);
    if (!p) return kt_err_set(err, KT_ERR_NOMEM, "report: out of memory for %d x %d", n, n_labels);
    kt_ml_metrics m;
    st = kt_ml_metrics_compute(&m, p, targets, n, n_labels, o.threshold, o.ece_bins, err);
    free(p);
    if (st != KT_OK) return st;
    char path[4096];
    char *text = NULL;
    cJSON *root = NULL;
    if ((st = kt_mkdirs(dir, err)) != KT_OK) goto done;
    drop_old_json(dir);
    text = kt_classification_report_text_multilabel(&m, label_names, o.digits);
    if ((st = write_text(dir, KT_REPORT_TXT, text, err)) != KT_OK) goto done;
    if (!o.no_plots) {
        char title[256];
        snprintf(title, sizeof title, "%s%sper-label ROC-AUC (n = %d)", model_name ? model_name : "",
                 model_name && *model_name ? ": " : "", n);
        if (!path_in(path, sizeof path, dir, KT_REPORT_AUC_PNG)) {
            st = kt_err_set(err, KT_ERR_ARG, "report: output folder path is too long");
            goto done;
        }
        if ((st = kt_plot_bars(path, label_names, m.auc, n_labels, 0.0, 1.0, 0.5, title, "ROC-AUC",
                               0, 0, err)) != KT_OK)
            goto done;
    }
    root = multilabel_json(&m, model_name, label_names, &o);
    st = write_json(dir, root, err);
done:
    cJSON_Delete(root);
    free(text);
    kt_ml_metrics_free(&m);
    return st;
}
