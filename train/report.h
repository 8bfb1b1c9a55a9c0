/* The evaluation report of one model on one split, as the seed's backend/eval_report.json and
 * classification_report.txt, plus plots: what `keratrack train` and `keratrack eval` write.
 *
 * kt_eval_report_write(dir, ...) computes every metric (train/metrics.h) and writes into dir
 * (created if missing), each file atomically, eval_report.json last so that its presence means
 * the set is complete:
 *   classification_report.txt        sklearn.metrics.classification_report's layout (digits 2)
 *   confusion_matrix.png             counts, class names on both axes, colour bar
 *   confusion_matrix_normalized.png  rows divided by the class support
 *   calibration_curve.png            top-label reliability diagram (+ calibrated curve if given)
 *   eval_report.json                 the seed's keys: accuracy, balanced_accuracy, cohen_kappa,
 *       matthews_corrcoef, log_loss, brier_score, roc_auc_macro, average_precision_macro,
 *       topk {"top1".."topK"}, per_class_auc / per_class_ap / ece_per_class {class: value},
 *       ece_mean; plus model, split, task, n, n_classes, class_names, cohen_kappa_quadratic,
 *       ece_top_label, ece_bins, per_class {class: {precision, recall, f1, support}}, macro_avg,
 *       weighted_avg, confusion_matrix, undefined_auc_classes (when any), definitions (the
 *       Brier/ECE/AUC conventions in words), and the optional calibrated / temperature blocks.
 *       Undefined numbers (AUC of a class absent from the labels) are null.
 * The multi-label variant writes eval_report.json (task "multi_label", the shared AUC/AP/ECE keys
 * and a "multilabel" block: per-label precision/recall/f1/support/auc/ap, micro/macro/weighted/
 * samples averages, micro_f1, macro_f1, subset_accuracy, hamming_loss), classification_report.txt
 * (sklearn's multi-label layout) and per_label_auc.png. */
#ifndef KT_REPORT_H
#define KT_REPORT_H

#include <stdint.h>

#include "base/status.h"
#include "train/calibration.h"
#include "train/metrics.h"
#include "train/metrics_multilabel.h"

#define KT_REPORT_JSON "eval_report.json"
#define KT_REPORT_TXT "classification_report.txt"
#define KT_REPORT_CM_PNG "confusion_matrix.png"
#define KT_REPORT_CM_NORM_PNG "confusion_matrix_normalized.png"
#define KT_REPORT_CALIB_PNG "calibration_curve.png"
#define KT_REPORT_AUC_PNG "per_label_auc.png"

typedef struct kt_report_opts {
    const char *split;        /* recorded as "split" ("test", "oof", ...); NULL: not recorded */
    int ece_bins;             /* 0: KT_ECE_BINS_DEFAULT (15) */
    int digits;               /* decimals in classification_report.txt; 0: 2 (sklearn's) */
    int no_plots;             /* 1: write the JSON and text only */
    double threshold;         /* multi-label decision threshold; 0: 0.5 */
    const kt_temperature *temperature; /* optional: recorded as the "temperature" block */
    const float *calibrated_probs;     /* optional (n, c): the same samples after temperature
                                          scaling; adds a "calibrated" block (log_loss,
                                          brier_score, ece_mean, ece_top_label, accuracy) and a
                                          second curve to calibration_curve.png */
} kt_report_opts;

/* Single-label report. class_names: (c) unique non-empty names; probs: (n, c) softmax
 * probabilities (rows sum to 1); labels: (n) in [0, c). opts may be NULL (defaults). Bad input
 * (0 classes, NaN probabilities, a label out of range, duplicate names) fails before any file
 * is written, with the row/class at fault in err. */
kt_status kt_eval_report_write(const char *dir, const char *model_name,
                               const char *const *class_names, int c, const float *probs,
                               const int32_t *labels, int n, const kt_report_opts *opts,
                               kt_err *err);

/* Multi-label report. probs: (n, L) sigmoid probabilities; targets: (n, L) 0/1. */
kt_status kt_eval_report_write_multilabel(const char *dir, const char *model_name,
                                          const char *const *label_names, int n_labels,
                                          const float *probs, const uint8_t *targets, int n,
                                          const kt_report_opts *opts, kt_err *err);

/* sklearn's classification_report text for computed metrics (digits: decimals, 0 -> 2).
 * malloc'd; NULL when out of memory. */
char *kt_classification_report_text(const kt_cls_metrics *m, const char *const *names, int digits);
char *kt_classification_report_text_multilabel(const kt_ml_metrics *m, const char *const *names,
                                               int digits);

#endif
