/* Multi-label metrics (definitions in metrics_multilabel.h). */
#include "train/metrics_multilabel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/metrics_binary.h"

void kt_ml_metrics_free(kt_ml_metrics *m) {
    if (!m) return;
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->support);
    free(m->predicted);
    free(m->auc);
    free(m->ap);
    free(m->ece);
    memset(m, 0, sizeof *m);
}

static double ratio0(double a, double b) { return b == 0.0 ? 0.0 : a / b; }
static double f1_of(double p, double r) { return p + r == 0.0 ? 0.0 : 2.0 * p * r / (p + r); }

kt_status kt_ml_metrics_compute(kt_ml_metrics *m, const double *probs, const uint8_t *targets,
                                int n, int n_labels, double threshold, int ece_bins, kt_err *err) {
    if (!m) return kt_err_set(err, KT_ERR_ARG, "multi-label metrics: output struct is NULL");
    memset(m, 0, sizeof *m);
    if (n <= 0) return kt_err_set(err, KT_ERR_ARG, "multi-label metrics: no samples (n = %d)", n);
    if (n_labels < 1)
        return kt_err_set(err, KT_ERR_ARG, "multi-label metrics: %d labels, need at least 1",
                          n_labels);
    if (!probs || !targets)
        return kt_err_set(err, KT_ERR_ARG, "multi-label metrics: %s is NULL",
                          probs ? "targets" : "probs");
    if (threshold == 0.0) threshold = 0.5;
    if (!(threshold > 0.0 && threshold <= 1.0))
        return kt_err_set(err, KT_ERR_ARG, "multi-label metrics: threshold %g is outside (0, 1]",
                          threshold);
    if (ece_bins == 0) ece_bins = KT_ECE_BINS_DEFAULT;
    kt_calib_bins probe;
    kt_status st = kt_calib_bins_init(&probe, ece_bins, err);
    if (st != KT_OK) return st;
    size_t L = (size_t)n_labels;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < L; j++) {
            double p = probs[(size_t)i * L + j];
            uint8_t t = targets[(size_t)i * L + j];
            if (!isfinite(p) || p < 0.0 || p > 1.0)
                return kt_err_set(err, KT_ERR_ARG,
                                  "multi-label metrics: probs[row %d, label %zu] = %g: "
                                  "probabilities must be finite numbers in [0, 1]", i, j, p);
            if (t > 1)
                return kt_err_set(err, KT_ERR_ARG,
                                  "multi-label metrics: targets[row %d, label %zu] = %u, must be 0 or 1",
                                  i, j, (unsigned)t);
        }

    m->n = n;
    m->n_labels = n_labels;
    m->threshold = threshold;
    m->precision = calloc(L, sizeof(double));
    m->recall = calloc(L, sizeof(double));
    m->f1 = calloc(L, sizeof(double));
    m->support = calloc(L, sizeof(int64_t));
    m->predicted = calloc(L, sizeof(int64_t));
    m->auc = calloc(L, sizeof(double));
    m->ap = calloc(L, sizeof(double));
    m->ece = calloc(L, sizeof(double));
    int64_t *tp = calloc(L, sizeof *tp);
    double *col = malloc((size_t)n * sizeof *col);
    uint8_t *yb = malloc((size_t)n);
    if (!m->precision || !m->recall || !m->f1 || !m->support || !m->predicted || !m->auc ||
        !m->ap || !m->ece || !tp || !col || !yb) {
        free(tp);
        free(col);
        free(yb);
        kt_ml_metrics_free(m);
        return kt_err_set(err, KT_ERR_NOMEM, "multi-label metrics: out of memory for %d x %d", n,
                          n_labels);
    }

    /* Per-sample pass: counts, subset accuracy, Hamming loss, samples average. */
    int64_t exact = 0, wrong = 0;
    double sp = 0.0, sr = 0.0, sf = 0.0;
    for (int i = 0; i < n; i++) {
        int64_t row_tp = 0, row_pred = 0, row_true = 0, row_wrong = 0;
        for (size_t j = 0; j < L; j++) {
            int pr = probs[(size_t)i * L + j] >= threshold;
            int t = targets[(size_t)i * L + j];
            row_tp += pr && t;
            row_pred += pr;
            row_true += t;
            row_wrong += pr != t;
            tp[j] += pr && t;
            m->predicted[j] += pr;
            m->support[j] += t;
        }
        exact += row_wrong == 0;
        wrong += row_wrong;
        double p = ratio0((double)row_tp, (double)row_pred);
        double r = ratio0((double)row_tp, (double)row_true);
        sp += p;
        sr += r;
        sf += f1_of(p, r);
    }
    m->subset_accuracy = (double)exact / n;
    m->hamming_loss = (double)wrong / ((double)n * (double)L);
    m->samples = (kt_prf){sp / n, sr / n, sf / n};

    /* Per-label pass. */
    int64_t all_tp = 0, all_pred = 0, all_true = 0;
    double wsum = 0.0, auc_sum = 0.0, ap_sum = 0.0, ece_sum = 0.0;
    int auc_cnt = 0, ap_cnt = 0;
    for (size_t j = 0; j < L; j++) {
        m->precision[j] = ratio0((double)tp[j], (double)m->predicted[j]);
        m->recall[j] = ratio0((double)tp[j], (double)m->support[j]);
        m->f1[j] = f1_of(m->precision[j], m->recall[j]);
        all_tp += tp[j];
        all_pred += m->predicted[j];
        all_true += m->support[j];
        m->macro.precision += m->precision[j];
        m->macro.recall += m->recall[j];
        m->macro.f1 += m->f1[j];
        double s = (double)m->support[j];
        m->weighted.precision += s * m->precision[j];
        m->weighted.recall += s * m->recall[j];
        m->weighted.f1 += s * m->f1[j];
        wsum += s;

        kt_calib_bins b;
        kt_calib_bins_init(&b, ece_bins, NULL);
        for (int i = 0; i < n; i++) {
            col[i] = probs[(size_t)i * L + j];
            yb[i] = targets[(size_t)i * L + j];
            kt_calib_bins_add(&b, col[i], yb[i]);
        }
        m->ece[j] = kt_calib_bins_ece(&b);
        ece_sum += m->ece[j];
        if ((st = kt_rank_metrics(col, yb, n, &m->auc[j], &m->ap[j], err)) != KT_OK) {
            free(tp);
            free(col);
            free(yb);
            kt_ml_metrics_free(m);
            return st;
        }
        if (!isnan(m->auc[j])) auc_sum += m->auc[j], auc_cnt++;
        if (!isnan(m->ap[j])) ap_sum += m->ap[j], ap_cnt++;
    }
    free(tp);
    free(col);
    free(yb);
    m->macro.precision /= (double)L;
    m->macro.recall /= (double)L;
    m->macro.f1 /= (double)L;
    if (wsum > 0.0) {
        m->weighted.precision /= wsum;
        m->weighted.recall /= wsum;
        m->weighted.f1 /= wsum;
    } else { /* no positive label anywhere: sklearn's zero_division = 0 answer */
        m->weighted = (kt_prf){0.0, 0.0, 0.0};
    }
    m->micro.precision = ratio0((double)all_tp, (double)all_pred);
    m->micro.recall = ratio0((double)all_tp, (double)all_true);
    m->micro.f1 = f1_of(m->micro.precision, m->micro.recall);
    m->roc_auc_macro = auc_cnt ? auc_sum / auc_cnt : NAN;
    m->average_precision_macro = ap_cnt ? ap_sum / ap_cnt : NAN;
    m->ece_mean = ece_sum / (double)L;
    return KT_OK;
}
