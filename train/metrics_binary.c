/* One-vs-rest ROC-AUC, average precision and calibration bins (see metrics_binary.h). */
#include "train/metrics_binary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

kt_status kt_calib_bins_init(kt_calib_bins *b, int n_bins, kt_err *err) {
    if (!b) return kt_err_set(err, KT_ERR_ARG, "kt_calib_bins_init: bins is NULL");
    if (n_bins < 1 || n_bins > KT_ECE_BINS_MAX)
        return kt_err_set(err, KT_ERR_ARG, "ECE bin count %d is outside 1..%d", n_bins,
                          KT_ECE_BINS_MAX);
    memset(b, 0, sizeof *b);
    b->n_bins = n_bins;
    return KT_OK;
}

int kt_calib_bin_index(double p, int n_bins) {
    /* The edges are computed as numpy.linspace does (j * step), and the bin is the number of
     * inner edges strictly below p (numpy.searchsorted side='left'), so a score that sits exactly
     * on an edge lands where sklearn puts it. */
    double step = 1.0 / (double)n_bins;
    int b = 0;
    for (int j = 1; j < n_bins; j++) {
        if ((double)j * step < p) b = j;
        else break;
    }
    return b;
}

void kt_calib_bins_add(kt_calib_bins *b, double p, int hit) {
    int i = kt_calib_bin_index(p, b->n_bins);
    b->count[i]++;
    b->sum_conf[i] += p;
    b->sum_hit[i] += hit ? 1.0 : 0.0;
    b->total++;
}

double kt_calib_bins_ece(const kt_calib_bins *b) {
    if (b->total == 0) return 0.0;
    double ece = 0.0;
    for (int i = 0; i < b->n_bins; i++) {
        if (b->count[i] == 0) continue;
        double n = (double)b->count[i];
        ece += n / (double)b->total * fabs(b->sum_hit[i] / n - b->sum_conf[i] / n);
    }
    return ece;
}

typedef struct {
    double s;
    uint8_t y;
} scored;

static int cmp_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

kt_status kt_rank_metrics(const double *score, const uint8_t *y, int n, double *auc, double *ap,
                          kt_err *err) {
    if (auc) *auc = NAN;
    if (ap) *ap = NAN;
    if (!score || !y || n <= 0)
        return kt_err_set(err, KT_ERR_ARG, "kt_rank_metrics: need scores and targets for n = %d > 0", n);
    scored *v = malloc((size_t)n * sizeof *v);
    if (!v) return kt_err_set(err, KT_ERR_NOMEM, "kt_rank_metrics: cannot allocate %d pairs", n);
    double pos = 0.0;
    for (int i = 0; i < n; i++) {
        v[i].s = score[i];
        v[i].y = y[i] ? 1 : 0;
        pos += v[i].y;
    }
    double neg = (double)n - pos;
    qsort(v, (size_t)n, sizeof *v, cmp_desc);
    /* Walk the distinct thresholds from the top: each run of equal scores is one ROC/PR point. */
    double tp = 0.0, fp = 0.0, area2 = 0.0, apsum = 0.0;
    for (int i = 0; i < n;) {
        double tp0 = tp, fp0 = fp;
        int j = i;
        while (j < n && v[j].s == v[i].s) {
            if (v[j].y) tp += 1.0;
            else fp += 1.0;
            j++;
        }
        area2 += (fp - fp0) * (tp + tp0);
        if (pos > 0.0) apsum += (tp - tp0) / pos * (tp / (tp + fp));
        i = j;
    }
    free(v);
    if (auc && pos > 0.0 && neg > 0.0) *auc = area2 / (2.0 * pos * neg);
    if (ap && pos > 0.0) *ap = apsum;
    return KT_OK;
}
