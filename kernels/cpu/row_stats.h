/* Mean and 1/sqrt(var + eps) of one row of C floats, two-pass in float (rows are short and in L1):
 * the statistics every LayerNorm kernel, plain or fused, starts from. */
#ifndef KT_CPU_ROW_STATS_H
#define KT_CPU_ROW_STATS_H

#include <math.h>
#include <stdint.h>

static inline void kt_cpu_row_stats(const float *xr, int64_t C, float eps, float *mean, float *rstd) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++) s += xr[c];
    float m = s / (float)C, v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t c = 0; c < C; c++) {
        float d = xr[c] - m;
        v += d * d;
    }
    *mean = m;
    *rstd = 1.0f / sqrtf(v / (float)C + eps);
}

#endif
