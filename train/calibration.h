/* Temperature scaling (Guo et al. 2017): one scalar T > 0 that minimises the NLL of
 * softmax(logits / T) on held-out logits, and the ECE / NLL before and after applying it.
 *
 * The fit works on b = 1/T, where the mean NLL is convex (a log-sum-exp of a linear function
 * minus a linear term): its derivative is monotone, so a safeguarded Newton step inside a
 * bracket (falling back to bisection in log space) converges from any start. The search is
 * limited to T in [KT_TEMP_MIN, KT_TEMP_MAX]; when the optimum lies beyond (e.g. separable data,
 * where the NLL keeps falling as T -> 0), T stops at the bound and at_bound says so. */
#ifndef KT_CALIBRATION_H
#define KT_CALIBRATION_H

#include <stdint.h>

#include "base/status.h"

#define KT_TEMP_MIN 1e-3
#define KT_TEMP_MAX 1e3

typedef struct kt_temperature {
    double temperature;            /* T: calibrated probabilities are softmax(logits / T) */
    double nll_before, nll_after;  /* mean cross-entropy (nats) at T = 1 and at T */
    double ece_top_before, ece_top_after;   /* top-label ECE */
    double ece_mean_before, ece_mean_after; /* mean one-vs-rest ECE over classes */
    int ece_bins;                  /* bins used for both ECEs */
    int iterations;                /* Newton/bisection steps the fit took (0 for evaluate) */
    int at_bound;                  /* 1 when T was stopped at KT_TEMP_MIN or KT_TEMP_MAX */
} kt_temperature;

/* Fits T on logits (n, c) row-major with labels (n) in [0, c), then fills every field of out for
 * the same data. ece_bins: 0 means KT_ECE_BINS_DEFAULT. Non-finite logits, labels out of range,
 * n < 1 or c < 2 give KT_ERR_ARG naming the row. */
kt_status kt_temperature_fit(const float *logits, const int32_t *labels, int n, int c,
                             int ece_bins, kt_temperature *out, kt_err *err);

/* Fills out's before/after fields for temperature t on another set (e.g. the test split after
 * fitting on validation); out->temperature = t, iterations = 0, at_bound = 0. */
kt_status kt_temperature_evaluate(const float *logits, const int32_t *labels, int n, int c,
                                  double t, int ece_bins, kt_temperature *out, kt_err *err);

/* probs (n, c) = softmax(logits / t), computed in double. */
kt_status kt_temperature_apply(const float *logits, int n, int c, double t, double *probs,
                               kt_err *err);

/* Mean NLL of softmax(logits / t) against labels (inputs assumed valid). */
double kt_softmax_nll(const float *logits, const int32_t *labels, int n, int c, double t);

#endif
