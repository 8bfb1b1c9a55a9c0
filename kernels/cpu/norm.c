/* Normalisation kernels. Row statistics in float two-pass (rows are short and in L1);
 * batch statistics in double over fixed row blocks, so they do not depend on the thread count. */
#include "kernels/cpu/norm.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu/kt_par.h"
#include "kernels/cpu/row_stats.h"

void kt_cpu_layernorm_fwd(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float m, rs;
        kt_cpu_row_stats(xr, C, eps, &m, &rs);
        if (w) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * rs * w[c] + b[c];
        } else {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * rs;
        }
    }
}

void kt_cpu_layernorm_bwd_x(float *dx, const float *dy, const float *x, const float *w, int64_t rows, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *dr = dy + r * C;
        float *o = dx + r * C;
        float m, rs;
        kt_cpu_row_stats(xr, C, eps, &m, &rs);
        float sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t c = 0; c < C; c++) {
            float g = w ? dr[c] * w[c] : dr[c];
            sg += g;
            sgx += g * (xr[c] - m) * rs;
        }
        float mg = sg / (float)C, mgx = sgx / (float)C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            float g = w ? dr[c] * w[c] : dr[c];
            o[c] = rs * (g - mg - (xr[c] - m) * rs * mgx);
        }
    }
}

size_t kt_cpu_layernorm_bwd_wb_scratch(int64_t rows, int64_t C) { return (size_t)(kt_red_blocks(rows) * 2 * C) * sizeof(float); }

void kt_cpu_layernorm_bwd_wb(float *dwb, const float *dy, const float *x, int64_t rows, int64_t C, float eps, void *scratch) {
    float *part = scratch;
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *pw = part + b * 2 * C, *pb = pw + C;
        memset(pw, 0, (size_t)(2 * C) * sizeof(float));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++) {
            const float *xr = x + r * C, *dr = dy + r * C;
            float m, rs;
            kt_cpu_row_stats(xr, C, eps, &m, &rs);
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                pw[c] += dr[c] * (xr[c] - m) * rs;
                pb[c] += dr[c];
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double sw = 0, sb = 0;
        for (int64_t b = 0; b < nb; b++) {
            sw += part[b * 2 * C + c];
            sb += part[b * 2 * C + C + c];
        }
        dwb[c] = (float)sw;
        dwb[C + c] = (float)sb;
    }
}

/* ---- BatchNorm ---- */

size_t kt_cpu_batchnorm_scratch(int64_t rows, int64_t C) { return (size_t)(kt_red_blocks(rows) * 2 * C + 4 * C) * sizeof(double); }

/* Batch mean and biased variance per channel into mean (C), var (C); part is scratch. */
static void batch_stats(const float *x, int64_t rows, int64_t C, double *mean, double *var, double *part) {
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        double *p = part + b * C;
        memset(p, 0, (size_t)C * sizeof(double));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++)
            for (int64_t c = 0; c < C; c++) p[c] += x[r * C + c];
    }
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t b = 0; b < nb; b++) s += part[b * C + c];
        mean[c] = s / (double)rows;
    }
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        double *p = part + b * C;
        memset(p, 0, (size_t)C * sizeof(double));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++)
            for (int64_t c = 0; c < C; c++) {
                double d = x[r * C + c] - mean[c];
                p[c] += d * d;
            }
    }
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t b = 0; b < nb; b++) s += part[b * C + c];
        var[c] = s / (double)rows;
    }
}

/* Scratch layout: mean (C) | var (C) | sum_dy (C) | sum_dy_xhat (C) | partials (nb, 2C) doubles. */
void kt_cpu_batchnorm_fwd(float *y, const float *x, const float *w, const float *b, float *rmean, float *rvar, int64_t rows,
                          int64_t C, float eps, float momentum, int training, void *scratch) {
    double *mean = scratch, *var = mean + C, *part = var + 3 * C;
    if (training) {
        batch_stats(x, rows, C, mean, var, part);
        double unbias = rows > 1 ? (double)rows / (double)(rows - 1) : 1.0;
        for (int64_t c = 0; c < C; c++) {
            rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mean[c]);
            rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * var[c] * unbias);
        }
    } else {
        for (int64_t c = 0; c < C; c++) {
            mean[c] = rmean[c];
            var[c] = rvar[c];
        }
    }
    float *scale = (float *)part, *shift = scale + C; /* reuse: stats are done */
    for (int64_t c = 0; c < C; c++) {
        double rs = 1.0 / sqrt(var[c] + eps);
        scale[c] = (float)(rs * w[c]);
        shift[c] = (float)(b[c] - mean[c] * rs * w[c]);
    }
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < C; c++) y[r * C + c] = x[r * C + c] * scale[c] + shift[c];
}

/* Sums of dy and dy*xhat per channel (fixed blocks) into sdy, sdyx. */
static void grad_sums(const float *dy, const float *x, const double *mean, const double *rstd, int64_t rows, int64_t C,
                      double *sdy, double *sdyx, double *part) {
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        double *p = part + b * 2 * C;
        memset(p, 0, (size_t)(2 * C) * sizeof(double));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++)
            for (int64_t c = 0; c < C; c++) {
                double d = dy[r * C + c];
                p[c] += d;
                p[C + c] += d * (x[r * C + c] - mean[c]) * rstd[c];
            }
    }
    for (int64_t c = 0; c < C; c++) {
        double a = 0, s = 0;
        for (int64_t b = 0; b < nb; b++) {
            a += part[b * 2 * C + c];
            s += part[b * 2 * C + C + c];
        }
        sdy[c] = a;
        sdyx[c] = s;
    }
}

static void stats_for(const float *x, const float *rmean, const float *rvar, int64_t rows, int64_t C, float eps, int training,
                      double *mean, double *rstd, double *part) {
    if (training) batch_stats(x, rows, C, mean, rstd, part);
    for (int64_t c = 0; c < C; c++) {
        if (!training) {
            mean[c] = rmean[c];
            rstd[c] = rvar[c];
        }
        rstd[c] = 1.0 / sqrt(rstd[c] + eps);
    }
}

void kt_cpu_batchnorm_bwd_x(float *dx, const float *dy, const float *x, const float *w, const float *rvar, int64_t rows,
                            int64_t C, float eps, int training, void *scratch) {
    double *mean = scratch, *rstd = mean + C, *sdy = rstd + C, *sdyx = sdy + C, *part = sdyx + C;
    if (!training) {
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < C; c++) dx[r * C + c] = (float)(dy[r * C + c] * w[c] / sqrt((double)rvar[c] + eps));
        return;
    }
    stats_for(x, NULL, NULL, rows, C, eps, 1, mean, rstd, part);
    grad_sums(dy, x, mean, rstd, rows, C, sdy, sdyx, part);
    double inv_n = 1.0 / (double)rows;
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++) {
            double xh = (x[r * C + c] - mean[c]) * rstd[c];
            dx[r * C + c] = (float)(w[c] * rstd[c] * (dy[r * C + c] - sdy[c] * inv_n - xh * sdyx[c] * inv_n));
        }
}

void kt_cpu_batchnorm_bwd_wb(float *dwb, const float *dy, const float *x, const float *rmean, const float *rvar, int64_t rows,
                             int64_t C, float eps, int training, void *scratch) {
    double *mean = scratch, *rstd = mean + C, *sdy = rstd + C, *sdyx = sdy + C, *part = sdyx + C;
    stats_for(x, rmean, rvar, rows, C, eps, training, mean, rstd, part);
    grad_sums(dy, x, mean, rstd, rows, C, sdy, sdyx, part);
    for (int64_t c = 0; c < C; c++) {
        dwb[c] = (float)sdyx[c];
        dwb[C + c] = (float)sdy[c];
    }
}
