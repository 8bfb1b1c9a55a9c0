/* Single-label classification metrics (definitions in metrics.h). */
#include "train/metrics.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

kt_status kt_cls_inputs_check(const double *probs, const int32_t *labels, int n, int c,
                              kt_err *err) {
    if (n <= 0) return kt_err_set(err, KT_ERR_ARG, "metrics: no samples (n = %d)", n);
    if (c < 2)
        return kt_err_set(err, KT_ERR_ARG,
                          "metrics: %d class%s: single-label metrics need at least 2 classes", c,
                          c == 1 ? "" : "es");
    if (!probs || !labels)
        return kt_err_set(err, KT_ERR_ARG, "metrics: %s is NULL", probs ? "labels" : "probs");
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= c)
            return kt_err_set(err, KT_ERR_ARG, "metrics: labels[%d] = %d is outside [0, %d)", i,
                              (int)labels[i], c);
        double s = 0.0;
        for (int j = 0; j < c; j++) {
            double p = probs[(size_t)i * c + j];
            if (!isfinite(p) || p < 0.0 || p > 1.0)
                return kt_err_set(err, KT_ERR_ARG,
                                  "metrics: probs[row %d, class %d] = %g: probabilities must be "
                                  "finite numbers in [0, 1]", i, j, p);
            s += p;
        }
        if (fabs(s - 1.0) > KT_PROB_SUM_TOL)
            return kt_err_set(err, KT_ERR_ARG,
                              "metrics: probs row %d sums to %.6g, not 1: pass softmax "
                              "probabilities, not logits", i, s);
    }
    return KT_OK;
}

void kt_cls_metrics_free(kt_cls_metrics *m) {
    if (!m) return;
    free(m->confusion);
    free(m->per_class_auc);
    free(m->per_class_ap);
    free(m->ece_per_class);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->support);
    free(m->predicted);
    memset(m, 0, sizeof *m);
}

static int argmax_first(const double *row, int c) {
    int best = 0;
    for (int j = 1; j < c; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

/* Cohen's kappa as sklearn: 1 - sum(w * observed) / sum(w * expected), expected from the
 * marginals (support: row sums, predicted: column sums); w = 1 off the diagonal (plain) or
 * (i - j)^2 (quadratic). */
static double kappa(const int64_t *cm, const int64_t *support, const int64_t *predicted, int c,
                    int n, int quadratic) {
    double num = 0.0, den = 0.0;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double w = quadratic ? (double)(i - j) * (double)(i - j) : (i != j ? 1.0 : 0.0);
            num += w * (double)cm[i * c + j];
            den += w * ((double)predicted[i] * (double)support[j] / (double)n);
        }
    if (den == 0.0) return NAN; /* all labels and predictions in one class: undefined */
    return 1.0 - num / den;
}

/* Multiclass Matthews correlation (Gorodkin 2004) as sklearn computes it. */
static double mcc(const int64_t *cm, const int64_t *support, const int64_t *predicted, int c,
                  int n) {
    double trace = 0.0, tp_dot = 0.0, pp = 0.0, tt = 0.0, ns = (double)n;
    for (int i = 0; i < c; i++) {
        trace += (double)cm[i * c + i];
        tp_dot += (double)support[i] * (double)predicted[i];
        pp += (double)predicted[i] * (double)predicted[i];
        tt += (double)support[i] * (double)support[i];
    }
    double cov_ytyp = trace * ns - tp_dot;
    double cov_ypyp = ns * ns - pp;
    double cov_ytyt = ns * ns - tt;
    if (cov_ypyp * cov_ytyt == 0.0) return 0.0;
    return cov_ytyp / sqrt(cov_ytyt * cov_ypyp);
}

/* Ratio with sklearn's zero_division = 0. */
static double ratio0(double a, double b) { return b == 0.0 ? 0.0 : a / b; }

kt_status kt_cls_metrics_compute(kt_cls_metrics *m, const double *probs, const int32_t *labels,
                                 int n, int c, int ece_bins, kt_err *err) {
    if (!m) return kt_err_set(err, KT_ERR_ARG, "metrics: output struct is NULL");
    memset(m, 0, sizeof *m);
    kt_status st = kt_cls_inputs_check(probs, labels, n, c, err);
    if (st != KT_OK) return st;
    if (ece_bins == 0) ece_bins = KT_ECE_BINS_DEFAULT;
    if ((st = kt_calib_bins_init(&m->top_bins, ece_bins, err)) != KT_OK) return st;
    m->n = n;
    m->n_classes = c;
    size_t uc = (size_t)c;
    m->confusion = calloc(uc * uc, sizeof *m->confusion);
    m->per_class_auc = calloc(uc, sizeof(double));
    m->per_class_ap = calloc(uc, sizeof(double));
    m->ece_per_class = calloc(uc, sizeof(double));
    m->precision = calloc(uc, sizeof(double));
    m->recall = calloc(uc, sizeof(double));
    m->f1 = calloc(uc, sizeof(double));
    m->support = calloc(uc, sizeof(int64_t));
    m->predicted = calloc(uc, sizeof(int64_t));
    double *col = malloc((size_t)n * sizeof *col);
    uint8_t *yb = malloc((size_t)n);
    if (!m->confusion || !m->per_class_auc || !m->per_class_ap || !m->ece_per_class ||
        !m->precision || !m->recall || !m->f1 || !m->support || !m->predicted || !col || !yb) {
        free(col);
        free(yb);
        kt_cls_metrics_free(m);
        return kt_err_set(err, KT_ERR_NOMEM, "metrics: out of memory for %d x %d", n, c);
    }

    /* Per-sample pass: prediction, confusion, log loss, Brier, top-k, top-label bins. */
    double ll = 0.0, brier = 0.0;
    int64_t topk_hits[KT_TOPK_MAX] = {0};
    m->n_topk = c < KT_TOPK_MAX ? c : KT_TOPK_MAX;
    const double eps = DBL_EPSILON;
    for (int i = 0; i < n; i++) {
        const double *row = probs + (size_t)i * uc;
        int y = labels[i];
        int pred = argmax_first(row, c);
        m->confusion[(size_t)y * uc + pred]++;
        m->support[y]++;
        m->predicted[pred]++;
        kt_calib_bins_add(&m->top_bins, row[pred], pred == y);

        double sum = 0.0;
        for (int j = 0; j < c; j++) {
            double p = row[j] < eps ? eps : (row[j] > 1.0 - eps ? 1.0 - eps : row[j]);
            sum += p;
        }
        double py = row[y] < eps ? eps : (row[y] > 1.0 - eps ? 1.0 - eps : row[y]);
        ll += -log(py / sum);

        int rank = 0; /* classes ranked above y: higher score, or equal score and higher index */
        for (int j = 0; j < c; j++) {
            double d = row[j] - (j == y ? 1.0 : 0.0);
            brier += d * d;
            if (row[j] > row[y] || (row[j] == row[y] && j > y)) rank++;
        }
        for (int k = 1; k <= m->n_topk; k++)
            if (rank < k) topk_hits[k - 1]++;
    }
    m->log_loss = ll / n;
    m->brier_score = brier / n;
    for (int k = 0; k < m->n_topk; k++) m->topk[k] = (double)topk_hits[k] / n;
    m->ece_top_label = kt_calib_bins_ece(&m->top_bins);

    /* One-vs-rest pass per class: AUC, AP, ECE. */
    double auc_sum = 0.0, ap_sum = 0.0, ece_sum = 0.0;
    int auc_cnt = 0, ap_cnt = 0;
    for (int k = 0; k < c; k++) {
        kt_calib_bins b;
        kt_calib_bins_init(&b, ece_bins, NULL);
        for (int i = 0; i < n; i++) {
            col[i] = probs[(size_t)i * uc + k];
            yb[i] = labels[i] == k;
            kt_calib_bins_add(&b, col[i], yb[i]);
        }
        m->ece_per_class[k] = kt_calib_bins_ece(&b);
        ece_sum += m->ece_per_class[k];
        if ((st = kt_rank_metrics(col, yb, n, &m->per_class_auc[k], &m->per_class_ap[k], err)) !=
            KT_OK) {
            free(col);
            free(yb);
            kt_cls_metrics_free(m);
            return st;
        }
        if (isnan(m->per_class_auc[k])) m->n_undefined_auc++;
        else auc_sum += m->per_class_auc[k], auc_cnt++;
        if (!isnan(m->per_class_ap[k])) ap_sum += m->per_class_ap[k], ap_cnt++;
    }
    free(col);
    free(yb);
    m->roc_auc_macro = auc_cnt ? auc_sum / auc_cnt : NAN;
    m->average_precision_macro = ap_cnt ? ap_sum / ap_cnt : NAN;
    m->ece_mean = ece_sum / c;

    /* Confusion-matrix metrics. */
    int64_t correct = 0;
    double bal = 0.0;
    int bal_cnt = 0, used = 0;
    double wsum = 0.0;
    for (int k = 0; k < c; k++) {
        double tp = (double)m->confusion[(size_t)k * uc + k];
        correct += m->confusion[(size_t)k * uc + k];
        m->precision[k] = ratio0(tp, (double)m->predicted[k]);
        m->recall[k] = ratio0(tp, (double)m->support[k]);
        double den = m->precision[k] + m->recall[k];
        m->f1[k] = den == 0.0 ? 0.0 : 2.0 * m->precision[k] * m->recall[k] / den;
        if (m->support[k] > 0) bal += m->recall[k], bal_cnt++;
        if (m->support[k] > 0 || m->predicted[k] > 0) used++;
        m->macro_precision += m->precision[k];
        m->macro_recall += m->recall[k];
        m->macro_f1 += m->f1[k];
        double s = (double)m->support[k];
        m->weighted_precision += s * m->precision[k];
        m->weighted_recall += s * m->recall[k];
        m->weighted_f1 += s * m->f1[k];
        wsum += s;
    }
    m->macro_precision /= c;
    m->macro_recall /= c;
    m->macro_f1 /= c;
    m->weighted_precision /= wsum;
    m->weighted_recall /= wsum;
    m->weighted_f1 /= wsum;
    m->accuracy = (double)correct / n;
    m->balanced_accuracy = bal / bal_cnt;
    m->micro_is_accuracy = used == c;
    m->cohen_kappa = kappa(m->confusion, m->support, m->predicted, c, n, 0);
    m->cohen_kappa_quadratic = kappa(m->confusion, m->support, m->predicted, c, n, 1);
    m->matthews_corrcoef = mcc(m->confusion, m->support, m->predicted, c, n);
    return KT_OK;
}
