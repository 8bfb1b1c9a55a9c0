/* Loss kernels: log-sum-exp in double per row for accuracy; batches are small, so no OpenMP. */
#include "kernels/cpu/loss.h"

#include <math.h>

void kt_cpu_softmax(float *y, const float *x, int64_t rows, int64_t C) {
#pragma omp parallel for schedule(static) if (rows * C > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float m = xr[0];
        for (int64_t c = 1; c < C; c++) m = xr[c] > m ? xr[c] : m;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += exp((double)xr[c] - m);
        for (int64_t c = 0; c < C; c++) yr[c] = (float)(exp((double)xr[c] - m) / s);
    }
}

void kt_cpu_softmax_bwd(float *dx, const float *dy, const float *y, int64_t rows, int64_t C) {
#pragma omp parallel for schedule(static) if (rows * C > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *dr = dy + r * C, *yr = y + r * C;
        double dot = 0;
        for (int64_t c = 0; c < C; c++) dot += (double)dr[c] * yr[c];
        for (int64_t c = 0; c < C; c++) dx[r * C + c] = (float)(yr[c] * (dr[c] - dot));
    }
}

/* log-softmax of one row into lp (C), returns nothing; double precision. */
static void row_logsoftmax(double *lp, const float *xr, int64_t C) {
    double m = xr[0];
    for (int64_t c = 1; c < C; c++) m = xr[c] > m ? xr[c] : m;
    double s = 0;
    for (int64_t c = 0; c < C; c++) s += exp((double)xr[c] - m);
    double lse = m + log(s);
    for (int64_t c = 0; c < C; c++) lp[c] = (double)xr[c] - lse;
}

int64_t kt_cpu_softmax_ce(float *loss, const float *logits, const int32_t *labels, int64_t N, int64_t C, float smoothing) {
    for (int64_t r = 0; r < N; r++)
        if (labels[r] < 0 || labels[r] >= C) return r;
    double total = 0;
    double lp_stack[256];
    for (int64_t r = 0; r < N; r++) {
        const float *xr = logits + r * C;
        /* classes beyond the stack buffer: recompute log-sum-exp per element (rare, C > 256) */
        if (C <= 256) {
            row_logsoftmax(lp_stack, xr, C);
            double mean_nll = 0;
            for (int64_t c = 0; c < C; c++) mean_nll -= lp_stack[c];
            mean_nll /= (double)C;
            total += (1.0 - smoothing) * -lp_stack[labels[r]] + smoothing * mean_nll;
        } else {
            double m = xr[0];
            for (int64_t c = 1; c < C; c++) m = xr[c] > m ? xr[c] : m;
            double s = 0, sum_x = 0;
            for (int64_t c = 0; c < C; c++) {
                s += exp((double)xr[c] - m);
                sum_x += xr[c];
            }
            double lse = m + log(s);
            double mean_nll = lse - sum_x / (double)C;
            total += (1.0 - smoothing) * (lse - xr[labels[r]]) + smoothing * mean_nll;
        }
    }
    loss[0] = (float)(total / (double)N);
    return -1;
}

void kt_cpu_softmax_ce_bwd(float *dlogits, const float *dloss, const float *logits, const int32_t *labels, int64_t N,
                           int64_t C, float smoothing) {
    double g = (double)dloss[0] / (double)N;
    for (int64_t r = 0; r < N; r++) {
        const float *xr = logits + r * C;
        float *dr = dlogits + r * C;
        double m = xr[0];
        for (int64_t c = 1; c < C; c++) m = xr[c] > m ? xr[c] : m;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += exp((double)xr[c] - m);
        int32_t y = labels[r];
        for (int64_t c = 0; c < C; c++) {
            double p = exp((double)xr[c] - m) / s;
            double t = smoothing / (double)C + (c == y ? 1.0 - smoothing : 0.0);
            dr[c] = (float)(g * (p - t));
        }
    }
}

void kt_cpu_bce_logits(float *loss, const float *logits, const float *targets, int64_t n) {
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = logits[i], t = targets[i];
        total += (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
    }
    loss[0] = (float)(total / (double)n);
}

void kt_cpu_bce_logits_bwd(float *dlogits, const float *dloss, const float *logits, const float *targets, int64_t n) {
    double g = (double)dloss[0] / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double x = logits[i];
        double s = x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
        dlogits[i] = (float)(g * (s - targets[i]));
    }
}
