/* Single-label classification metrics from predicted probabilities and integer labels: the
 * numbers of the seed's eval_report.json and classification_report.txt, matched to scikit-learn.
 *
 * Definitions (tests/reference/metrics_ref.py pins each against sklearn 1.2 at 1e-9 relative):
 * - prediction = argmax of the row, the first maximum winning on ties (numpy.argmax);
 * - accuracy, balanced_accuracy (mean recall over classes that occur in the labels),
 *   cohen_kappa (unweighted; cohen_kappa_quadratic for the ordinal stages), matthews_corrcoef
 *   (multiclass form): as sklearn. Kappa is NaN when undefined (all labels and predictions in one
 *   class); MCC is 0 there, as sklearn returns;
 * - log_loss: sklearn.metrics.log_loss on float64 input: clip to [eps, 1-eps] with
 *   eps = DBL_EPSILON (2.22e-16), renormalise each row, mean of -ln p_(i, y_i);
 * - brier_score: the multiclass Brier score (Brier 1950), mean over samples of the sum over
 *   classes of (p_ic - [y_i = c])^2, range [0, 2]. sklearn's brier_score_loss is binary-only;
 *   this equals the sum over classes of its one-vs-rest values;
 * - per-class ROC-AUC / AP: one-vs-rest with sklearn's binary definitions (ties: trapezoid). A
 *   class with no positives (AUC: or no negatives) is undefined (NaN, JSON null) and left out
 *   of roc_auc_macro / average_precision_macro, which average the defined classes;
 * - topk[k-1] for k = 1..min(5, C): sklearn's top_k_accuracy_score; among tied scores the higher
 *   class index ranks first (its stable argsort reversed), so with ties top-1 can differ from
 *   accuracy, exactly as in sklearn;
 * - ECE: equal-width bins (KT_ECE_BINS_DEFAULT = 15, metrics_binary.h), sum_m |B_m|/N |acc - conf|.
 *   ece_per_class[c] bins p[:, c] against [y = c] (one-vs-rest); ece_mean is their mean over all
 *   C classes; ece_top_label bins max_c p against argmax correctness (Guo et al.);
 * - precision / recall / f1 / support per class with zero_division = 0, macro (plain mean over
 *   all C classes) and weighted (by support) averages: sklearn's precision_recall_fscore_support.
 */
#ifndef KT_METRICS_H
#define KT_METRICS_H

#include <stdint.h>

#include "base/status.h"
#include "train/metrics_binary.h"

#define KT_TOPK_MAX 5
/* Largest accepted deviation of a probability row's sum from 1 (catches logits passed as probs). */
#define KT_PROB_SUM_TOL 1e-3

typedef struct kt_cls_metrics {
    int n;                       /* samples */
    int n_classes;               /* C >= 2 */
    double accuracy, balanced_accuracy;
    double cohen_kappa, cohen_kappa_quadratic; /* NaN when undefined */
    double matthews_corrcoef;
    double log_loss, brier_score;
    double roc_auc_macro, average_precision_macro; /* mean over defined classes; NaN if none */
    int n_topk;                  /* min(5, C) */
    double topk[KT_TOPK_MAX];    /* (n_topk) topk[k-1] = top-k accuracy */
    double ece_mean, ece_top_label;
    kt_calib_bins top_bins;      /* top-label reliability bins (the calibration plot) */
    int64_t *confusion;          /* (C, C) row = true class, column = predicted class */
    double *per_class_auc;       /* (C) NaN where undefined */
    double *per_class_ap;        /* (C) NaN where undefined */
    double *ece_per_class;       /* (C) */
    double *precision, *recall, *f1; /* (C) 0 where the ratio is 0/0 */
    int64_t *support;            /* (C) samples whose label is the class */
    int64_t *predicted;          /* (C) samples predicted as the class */
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
    int n_undefined_auc;         /* classes whose AUC is undefined */
    int micro_is_accuracy;       /* every class occurs as a label or a prediction: the text report
                                    prints an "accuracy" row, else a "micro avg" row (sklearn) */
} kt_cls_metrics;

/* Computes every metric above. probs: (n, c) row-major, each value finite in [0, 1] and each row
 * summing to 1 within KT_PROB_SUM_TOL; labels: (n) in [0, c). ece_bins: 0 means
 * KT_ECE_BINS_DEFAULT. On error (naming the row/column at fault) m holds nothing to free.
 * Release with kt_cls_metrics_free. */
kt_status kt_cls_metrics_compute(kt_cls_metrics *m, const double *probs, const int32_t *labels,
                                 int n, int c, int ece_bins, kt_err *err);
void kt_cls_metrics_free(kt_cls_metrics *m);

/* Checks probabilities and labels as kt_cls_metrics_compute does (exposed for callers that want
 * to fail before heavy work). */
kt_status kt_cls_inputs_check(const double *probs, const int32_t *labels, int n, int c,
                              kt_err *err);

#endif
