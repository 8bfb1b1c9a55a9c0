/* Mask-free dropout: the mask is a pure function of (key, index). */
#include "kernels/cpu/dropout.h"

#include "base/rng.h"
#include "kernels/cpu/kt_par.h"

void kt_cpu_dropout(float *y, const float *x, int64_t n, float p, uint64_t key) {
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > KT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = kt_hash_uniform(key, (uint64_t)i) >= p ? x[i] * scale : 0.0f;
}

void kt_cpu_drop_path(float *y, const float *x, int64_t N, int64_t per, float p, uint64_t key) {
    float scale = 1.0f / (1.0f - p);
    for (int64_t n = 0; n < N; n++) {
        float m = kt_hash_uniform(key, (uint64_t)n) >= p ? scale : 0.0f;
        const float *xr = x + n * per;
        float *yr = y + n * per;
#pragma omp parallel for simd schedule(static) if (per > KT_PAR_MIN)
        for (int64_t i = 0; i < per; i++) yr[i] = xr[i] * m;
    }
}
