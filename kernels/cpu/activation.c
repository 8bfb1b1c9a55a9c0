/* Activations with vectorisable math (kt_math.h) and OpenMP over large buffers. */
#include "kernels/cpu/activation.h"

#include "kernels/cpu/kt_math.h"
#include "kernels/cpu/kt_par.h"

#define INV_SQRT2 0.70710678118654752f

void kt_cpu_act_fwd(kt_act a, float *y, const float *x, int64_t n) {
    switch (a) {
    case KT_ACT_GELU:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.0f + kt_erff(v * INV_SQRT2));
        }
        break;
    case KT_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case KT_ACT_SILU:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = v / (1.0f + kt_expf(-v));
        }
        break;
    case KT_ACT_SIGMOID:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + kt_expf(-x[i]));
        break;
    }
}

void kt_cpu_act_bwd(kt_act a, float *dx, const float *dy, const float *v, int64_t n) {
    switch (a) {
    case KT_ACT_GELU:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            dx[i] = dy[i] * kt_gelu_grad(v[i]);
        }
        break;
    case KT_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] = v[i] > 0 ? dy[i] : 0.0f;
        break;
    case KT_ACT_SILU:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float x = v[i];
            float s = 1.0f / (1.0f + kt_expf(-x));
            dx[i] = dy[i] * s * (1.0f + x * (1.0f - s));
        }
        break;
    case KT_ACT_SIGMOID:
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * v[i] * (1.0f - v[i]);
        break;
    }
}

static inline void bias_gelu(float *z, float *y, const float *b, int64_t rows, int64_t C, const int store_z) {
#pragma omp parallel for schedule(static) if (rows * C > KT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *zr = z + r * C, *yr = y + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            float v = zr[c] + (b ? b[c] : 0.0f);
            if (store_z) zr[c] = v;
            yr[c] = 0.5f * v * (1.0f + kt_erff(v * INV_SQRT2));
        }
    }
}

void kt_cpu_bias_gelu(float *z, float *y, const float *b, int64_t rows, int64_t C) { bias_gelu(z, y, b, rows, C, 1); }

void kt_cpu_bias_gelu_out(float *z, float *y, const float *b, int64_t rows, int64_t C) { bias_gelu(z, y, b, rows, C, 0); }
