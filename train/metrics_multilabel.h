/* Multi-label metrics (several independent 0/1 labels per image, e.g. the acne conditions):
 * per-label precision/recall/F1/AUC/AP/ECE at a threshold, micro/macro/weighted/samples means.
 *
 * Definitions (pinned against sklearn 1.2 by tests/reference/metrics_ref.py):
 * - a label is predicted when p >= threshold (0.5 by default);
 * - precision / recall / F1 per label and the micro, macro, weighted (by support) and samples
 *   averages are sklearn's precision_recall_fscore_support on indicator matrices with
 *   zero_division = 0 (a 0/0 ratio counts 0, also per sample in the samples average);
 * - subset_accuracy: rows whose every label is right (sklearn's accuracy_score);
 *   hamming_loss: wrong (row, label) cells / (N L);
 * - per-label AUC / AP / ECE: as the single-label one-vs-rest columns (metrics.h): AUC is NaN
 *   for a label that is never or always positive, AP is NaN for a label never positive; the
 *   macro means skip NaN; ece_mean averages every label's ECE. */
#ifndef KT_METRICS_MULTILABEL_H
#define KT_METRICS_MULTILABEL_H

#include <stdint.h>

#include "base/status.h"

typedef struct kt_prf {
    double precision, recall, f1;
} kt_prf;

typedef struct kt_ml_metrics {
    int n;                        /* samples */
    int n_labels;                 /* L >= 1 */
    double threshold;             /* p >= threshold predicts the label */
    double *precision, *recall, *f1; /* (L) */
    int64_t *support;             /* (L) samples where the label is true */
    int64_t *predicted;           /* (L) samples where the label is predicted */
    double *auc, *ap;             /* (L) NaN where undefined */
    double *ece;                  /* (L) one-vs-rest ECE of each label */
    kt_prf micro, macro, weighted, samples;
    double subset_accuracy, hamming_loss;
    double roc_auc_macro, average_precision_macro; /* mean over defined labels; NaN if none */
    double ece_mean;
} kt_ml_metrics;

/* probs: (n, L) row-major, finite, in [0, 1]; targets: (n, L) 0/1; threshold in (0, 1] (0 means
 * 0.5); ece_bins: 0 means KT_ECE_BINS_DEFAULT. Release with kt_ml_metrics_free. */
kt_status kt_ml_metrics_compute(kt_ml_metrics *m, const double *probs, const uint8_t *targets,
                                int n, int n_labels, double threshold, int ece_bins, kt_err *err);
void kt_ml_metrics_free(kt_ml_metrics *m);

#endif
