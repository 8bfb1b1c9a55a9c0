/* Temperature scaling: a convex 1-D fit on b = 1/T (see calibration.h). */
#include "train/calibration.h"

#include <math.h>
#include <stdlib.h>

#include "train/metrics_binary.h"

static kt_status check_inputs(const float *logits, const int32_t *labels, int n, int c,
                              kt_err *err) {
    if (n <= 0) return kt_err_set(err, KT_ERR_ARG, "temperature scaling: no samples (n = %d)", n);
    if (c < 2) return kt_err_set(err, KT_ERR_ARG, "temperature scaling: %d classes, need >= 2", c);
    if (!logits || !labels)
        return kt_err_set(err, KT_ERR_ARG, "temperature scaling: %s is NULL",
                          logits ? "labels" : "logits");
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= c)
            return kt_err_set(err, KT_ERR_ARG, "temperature scaling: labels[%d] = %d is outside [0, %d)",
                              i, (int)labels[i], c);
        for (int j = 0; j < c; j++)
            if (!isfinite(logits[(size_t)i * c + j]))
                return kt_err_set(err, KT_ERR_ARG,
                                  "temperature scaling: logits[row %d, class %d] is not finite", i, j);
    }
    return KT_OK;
}

/* Mean NLL at inverse temperature beta and its first two derivatives in beta. */
static void nll_derivs(const float *logits, const int32_t *labels, int n, int c, double beta,
                       double *f, double *g, double *h) {
    double fs = 0.0, gs = 0.0, hs = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * c;
        double mx = z[0];
        for (int j = 1; j < c; j++)
            if (z[j] > mx) mx = z[j];
        double s = 0.0, e1 = 0.0;
        for (int j = 0; j < c; j++) {
            double w = exp(beta * ((double)z[j] - mx));
            s += w;
            e1 += w * (double)z[j];
        }
        e1 /= s;
        double var = 0.0;
        for (int j = 0; j < c; j++) {
            double w = exp(beta * ((double)z[j] - mx)), d = (double)z[j] - e1;
            var += w * d * d;
        }
        fs += beta * mx + log(s) - beta * (double)z[labels[i]];
        gs += e1 - (double)z[labels[i]];
        hs += var / s;
    }
    if (f) *f = fs / n;
    if (g) *g = gs / n;
    if (h) *h = hs / n;
}

double kt_softmax_nll(const float *logits, const int32_t *labels, int n, int c, double t) {
    double f;
    nll_derivs(logits, labels, n, c, 1.0 / t, &f, NULL, NULL);
    return f;
}

kt_status kt_temperature_apply(const float *logits, int n, int c, double t, double *probs,
                               kt_err *err) {
    if (!logits || !probs || n <= 0 || c < 1)
        return kt_err_set(err, KT_ERR_ARG, "temperature apply: need logits and output for n = %d, c = %d",
                          n, c);
    if (!(t > 0.0) || !isfinite(t))
        return kt_err_set(err, KT_ERR_ARG, "temperature apply: T = %g must be a finite number > 0", t);
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * c;
        double *p = probs + (size_t)i * c;
        double mx = z[0];
        for (int j = 1; j < c; j++)
            if (z[j] > mx) mx = z[j];
        double s = 0.0;
        for (int j = 0; j < c; j++) s += p[j] = exp(((double)z[j] - mx) / t);
        for (int j = 0; j < c; j++) p[j] /= s;
    }
    return KT_OK;
}

/* Top-label and mean one-vs-rest ECE of probabilities P (n, c). */
static void ece_pair(const double *P, const int32_t *labels, int n, int c, int bins, double *top,
                     double *mean) {
    kt_calib_bins tb, cb;
    kt_calib_bins_init(&tb, bins, NULL);
    for (int i = 0; i < n; i++) {
        const double *r = P + (size_t)i * c;
        int best = 0;
        for (int j = 1; j < c; j++)
            if (r[j] > r[best]) best = j;
        kt_calib_bins_add(&tb, r[best], best == labels[i]);
    }
    *top = kt_calib_bins_ece(&tb);
    double sum = 0.0;
    for (int j = 0; j < c; j++) {
        kt_calib_bins_init(&cb, bins, NULL);
        for (int i = 0; i < n; i++) kt_calib_bins_add(&cb, P[(size_t)i * c + j], labels[i] == j);
        sum += kt_calib_bins_ece(&cb);
    }
    *mean = sum / c;
}

kt_status kt_temperature_evaluate(const float *logits, const int32_t *labels, int n, int c,
                                  double t, int ece_bins, kt_temperature *out, kt_err *err) {
    if (!out) return kt_err_set(err, KT_ERR_ARG, "temperature evaluate: output is NULL");
    kt_status st = check_inputs(logits, labels, n, c, err);
    if (st != KT_OK) return st;
    if (ece_bins == 0) ece_bins = KT_ECE_BINS_DEFAULT;
    kt_calib_bins probe;
    if ((st = kt_calib_bins_init(&probe, ece_bins, err)) != KT_OK) return st;
    double *P = malloc((size_t)n * c * sizeof *P);
    if (!P) return kt_err_set(err, KT_ERR_NOMEM, "temperature evaluate: out of memory (%d x %d)", n, c);
    if ((st = kt_temperature_apply(logits, n, c, 1.0, P, err)) != KT_OK) goto done;
    ece_pair(P, labels, n, c, ece_bins, &out->ece_top_before, &out->ece_mean_before);
    if ((st = kt_temperature_apply(logits, n, c, t, P, err)) != KT_OK) goto done;
    ece_pair(P, labels, n, c, ece_bins, &out->ece_top_after, &out->ece_mean_after);
    out->temperature = t;
    out->nll_before = kt_softmax_nll(logits, labels, n, c, 1.0);
    out->nll_after = kt_softmax_nll(logits, labels, n, c, t);
    out->ece_bins = ece_bins;
    out->iterations = 0;
    out->at_bound = 0;
done:
    free(P);
    return st;
}

kt_status kt_temperature_fit(const float *logits, const int32_t *labels, int n, int c,
                             int ece_bins, kt_temperature *out, kt_err *err) {
    if (!out) return kt_err_set(err, KT_ERR_ARG, "temperature fit: output is NULL");
    kt_status st = check_inputs(logits, labels, n, c, err);
    if (st != KT_OK) return st;
    /* The NLL is convex in beta = 1/T, so its derivative g rises: bracket the root of g. */
    double lo = 1.0 / KT_TEMP_MAX, hi = 1.0 / KT_TEMP_MIN, g, h;
    int at_bound = 0, it = 0;
    double beta;
    nll_derivs(logits, labels, n, c, lo, NULL, &g, NULL);
    if (g >= 0.0) {
        beta = lo, at_bound = 1;
    } else {
        nll_derivs(logits, labels, n, c, hi, NULL, &g, NULL);
        if (g <= 0.0) {
            beta = hi, at_bound = 1;
        } else {
            beta = 1.0; /* T = 1 is inside the bracket and usually near the answer */
            for (it = 1; it <= 200; it++) {
                nll_derivs(logits, labels, n, c, beta, NULL, &g, &h);
                if (g == 0.0) break;
                if (g < 0.0) lo = beta;
                else hi = beta;
                double next = h > 0.0 ? beta - g / h : NAN;
                /* Newton when it stays strictly inside the bracket, else bisect in log space. */
                if (!(next > lo && next < hi)) next = sqrt(lo * hi);
                double step = fabs(next - beta);
                beta = next;
                if (step <= 1e-14 * beta || (hi - lo) <= 1e-15 * beta) break;
            }
        }
    }
    if ((st = kt_temperature_evaluate(logits, labels, n, c, 1.0 / beta, ece_bins, out, err)) !=
        KT_OK)
        return st;
    out->iterations = it;
    out->at_bound = at_bound;
    return KT_OK;
}
