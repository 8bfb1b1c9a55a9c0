/* One-vs-rest building blocks shared by the single-label, multi-label and calibration code:
 * ROC-AUC and average precision of one score column, and the equal-width bins behind ECE. */
#ifndef KT_METRICS_BINARY_H
#define KT_METRICS_BINARY_H

#include <stdint.h>

#include "base/status.h"

/* ECE bins: 15 equal-width bins over [0, 1] (Guo et al. 2017, torchmetrics' default). A score p
 * falls in bin b = #{j in 1..M-1 : j*(1/M) < p}, i.e. bins are (lo, hi] and the first is [0, hi]:
 * exactly sklearn.calibration.calibration_curve(strategy="uniform")'s binning. */
#define KT_ECE_BINS_DEFAULT 15
#define KT_ECE_BINS_MAX 100

typedef struct kt_calib_bins {
    int n_bins;                         /* M, 1..KT_ECE_BINS_MAX */
    int64_t total;                      /* samples added */
    int64_t count[KT_ECE_BINS_MAX];     /* (M) samples per bin */
    double sum_conf[KT_ECE_BINS_MAX];   /* (M) sum of scores in the bin */
    double sum_hit[KT_ECE_BINS_MAX];    /* (M) sum of 0/1 outcomes in the bin */
} kt_calib_bins;

/* Clears b and sets its bin count (n_bins outside 1..KT_ECE_BINS_MAX -> KT_ERR_ARG). */
kt_status kt_calib_bins_init(kt_calib_bins *b, int n_bins, kt_err *err);
/* Bin index of score p in [0, 1] for n_bins equal-width bins (see the rule above). */
int kt_calib_bin_index(double p, int n_bins);
/* Adds one (score, outcome) pair; hit is 1 when the event happened (class true, prediction right). */
void kt_calib_bins_add(kt_calib_bins *b, double p, int hit);
/* ECE = sum_m |B_m|/N |acc(B_m) - conf(B_m)|; 0 when nothing was added. */
double kt_calib_bins_ece(const kt_calib_bins *b);

/* ROC-AUC and average precision of scores against binary targets, as sklearn's roc_auc_score
 * (trapezoid over the ROC curve; tied scores form one step, so a tie counts one half) and
 * average_precision_score (sum over distinct thresholds of (R_k - R_{k-1}) P_k).
 * score: (n), y: (n) 0/1. *auc is NaN without positives or without negatives; *ap is NaN without
 * positives (sklearn raises or returns 0 there; we call it undefined and leave it out of macro
 * means). Either output pointer may be NULL. Fails only on a bad argument or out of memory. */
kt_status kt_rank_metrics(const double *score, const uint8_t *y, int n, double *auc, double *ap,
                          kt_err *err);

#endif
