/* Fused backward passes. Each works on fixed row blocks: rows of a block are processed in order,
 * per-block partial sums land in scratch, and a final pass adds the blocks in order in double. */
#include "kernels/cpu/fused.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/kt_math.h"
#include "kernels/cpu/kt_par.h"
#include "kernels/cpu/row_stats.h"


size_t kt_cpu_colsum_scratch(int64_t rows, int64_t ncols) { return (size_t)(kt_red_blocks(rows) * ncols) * sizeof(float); }


static inline float act_grad(kt_act a, float x) {
    switch (a) {
    case KT_ACT_GELU: return kt_gelu_grad(x);
    case KT_ACT_RELU: return x > 0 ? 1.0f : 0.0f;
    case KT_ACT_SILU: {
        float s = 1.0f / (1.0f + kt_expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    default: return x * (1.0f - x); /* sigmoid, from its output */
    }
}

void kt_cpu_act_bwd_colsum(kt_act a, float *dx, const float *dy, const float *v, int64_t rows, int64_t C, float *colsum,
                           void *scratch) {
    float *part = scratch;
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *p = part + b * C;
        memset(p, 0, (size_t)C * sizeof(float));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++) {
            const float *dr = dy + r * C, *vr = v + r * C;
            float *o = dx + r * C;
            switch (a) { /* the switch outside the channel loop keeps each loop vectorisable */
            case KT_ACT_GELU:
#pragma omp simd
                for (int64_t c = 0; c < C; c++) {
                    float g = dr[c] * act_grad(KT_ACT_GELU, vr[c]);
                    o[c] = g;
                    p[c] += g;
                }
                break;
            case KT_ACT_RELU:
#pragma omp simd
                for (int64_t c = 0; c < C; c++) {
                    float g = vr[c] > 0 ? dr[c] : 0.0f;
                    o[c] = g;
                    p[c] += g;
                }
                break;
            default:
                for (int64_t c = 0; c < C; c++) {
                    float g = dr[c] * act_grad(a, vr[c]);
                    o[c] = g;
                    p[c] += g;
                }
            }
        }
    }
    kt_cpu_sum_blocks(colsum, part, nb, C);
}

void kt_cpu_mul_bcast_colsum(float *y, const float *a, const float *bv, int64_t rows, int64_t C, float *colsum, void *scratch) {
    float *part = scratch;
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *p = part + b * C;
        memset(p, 0, (size_t)C * sizeof(float));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++) {
            const float *ar = a + r * C;
            float *o = y + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                float v = ar[c] * bv[c];
                o[c] = v;
                p[c] += v;
            }
        }
    }
    kt_cpu_sum_blocks(colsum, part, nb, C);
}

void kt_cpu_mul_bcast_bwd_both(float *da, float *dgamma, float *colsum, const float *dy, const float *a, const float *gamma,
                               int64_t rows, int64_t C, void *scratch) {
    float *part = scratch; /* (nb, 2C): dgamma, colsum of da */
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *p = part + b * 2 * C, *q = p + C;
        memset(p, 0, (size_t)(2 * C) * sizeof(float));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++) {
            const float *dr = dy + r * C, *ar = a + r * C;
            float *o = da + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                float d = dr[c], v = d * gamma[c];
                p[c] += d * ar[c];
                o[c] = v;
                q[c] += v;
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double sg = 0, sc = 0;
        for (int64_t b = 0; b < nb; b++) {
            sg += part[b * 2 * C + c];
            sc += part[b * 2 * C + C + c];
        }
        dgamma[c] = (float)sg;
        if (colsum) colsum[c] = (float)sc;
    }
}

void kt_cpu_layernorm_bwd_fused(float *dx, float *dwb, float *colsum, const float *dy, const float *x, const float *w,
                                int64_t rows, int64_t C, float eps, void *scratch) {
    float *part = scratch; /* (nb, 3C): dw, db, colsum of dx */
    int64_t nb = kt_red_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *pw = part + b * 3 * C, *pb = pw + C, *pc = pb + C;
        memset(pw, 0, (size_t)(3 * C) * sizeof(float));
        for (int64_t r = kt_red_block_start(rows, nb, b); r < kt_red_block_start(rows, nb, b + 1); r++) {
            const float *xr = x + r * C, *dr = dy + r * C;
            float m, rs;
            kt_cpu_row_stats(xr, C, eps, &m, &rs);
            float sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
            for (int64_t c = 0; c < C; c++) {
                float xh = (xr[c] - m) * rs;
                float g = w ? dr[c] * w[c] : dr[c];
                sg += g;
                sgx += g * xh;
                pw[c] += dr[c] * xh;
                pb[c] += dr[c];
            }
            if (!dx) continue;
            float mg = sg / (float)C, mgx = sgx / (float)C;
            float *o = dx + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
                float g = w ? dr[c] * w[c] : dr[c];
                float d = rs * (g - mg - (xr[c] - m) * rs * mgx);
                o[c] = d;
                pc[c] += d;
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double sw = 0, sb = 0, sc = 0;
        for (int64_t b = 0; b < nb; b++) {
            sw += part[b * 3 * C + c];
            sb += part[b * 3 * C + C + c];
            sc += part[b * 3 * C + 2 * C + c];
        }
        if (dwb) {
            dwb[c] = (float)sw;
            dwb[C + c] = (float)sb;
        }
        if (colsum) colsum[c] = (float)sc;
    }
}
