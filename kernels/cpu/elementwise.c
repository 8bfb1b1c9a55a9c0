/* Elementwise kernels and deterministic blocked row reductions. */
#include "kernels/cpu/elementwise.h"

#include <string.h>

#include "kernels/cpu/kt_par.h"

void kt_cpu_add(float *y, const float *a, const float *b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void kt_cpu_mul(float *y, const float *a, const float *b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

void kt_cpu_mul_bcast(float *y, const float *a, const float *b, int64_t rows, int64_t C) {
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *ar = a + r * C;
        float *yr = y + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yr[c] = ar[c] * b[c];
    }
}

void kt_cpu_scale(float *y, const float *x, float s, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s;
}

void kt_cpu_bias(float *y, const float *x, const float *b, int64_t rows, int64_t C) {
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) yr[c] = xr[c] + b[c];
    }
}

void kt_cpu_copy(float *y, const float *x, int64_t n) {
    if (y != x) memcpy(y, x, (size_t)n * sizeof(float));
}

size_t kt_cpu_reduce_rows_scratch(int64_t rows, int64_t C) { return (size_t)(kt_red_blocks(rows) * C) * sizeof(float); }

void kt_cpu_sum_blocks(float *out, const float *part, int64_t nb, int64_t C) {
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t b = 0; b < nb; b++) s += part[b * C + c];
        out[c] = (float)s;
    }
}

void kt_cpu_reduce_rows(float *out, const float *x, int64_t rows, int64_t C, void *scratch) {
    float *part = scratch;
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *p = part + b * C;
        memset(p, 0, (size_t)C * sizeof(float));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++) {
            const float *xr = x + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) p[c] += xr[c];
        }
    }
    kt_cpu_sum_blocks(out, part, nb, C);
}

void kt_cpu_mul_bcast_bwd(float *out, const float *dy, const float *a, int64_t rows, int64_t C, void *scratch) {
    float *part = scratch;
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *p = part + b * C;
        memset(p, 0, (size_t)C * sizeof(float));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++) {
            const float *dr = dy + r * C, *ar = a + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) p[c] += dr[c] * ar[c];
        }
    }
    kt_cpu_sum_blocks(out, part, nb, C);
}

void kt_cpu_sum(float *out, const float *x, int64_t n, float scale) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    out[0] = (float)(s * scale);
}

void kt_cpu_fill_scaled(float *dx, const float *dy, int64_t n, float scale) {
    float v = dy[0] * scale;
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] = v;
}
