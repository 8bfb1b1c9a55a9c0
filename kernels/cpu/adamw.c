/* AdamW sweep; the bias corrections use the current beta1, as PyTorch does when OneCycleLR cycles it. */
#include "kernels/cpu/adamw.h"

#include <math.h>

#include "kernels/cpu/kt_par.h"

void kt_cpu_adamw(float *p, const float *g, float *m, float *v, int64_t n, const kt_adamw_hp *hp) {
    double bc1 = 1.0 - pow((double)hp->beta1, (double)hp->step);
    double bc2 = 1.0 - pow((double)hp->beta2, (double)hp->step);
    float step_size = (float)(hp->lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    float decay = 1.0f - hp->lr * hp->weight_decay;
    float b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps;
#pragma omp parallel for simd schedule(static) if (n > KT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * mi / denom;
    }
}

double kt_cpu_sumsq(const float *g, int64_t n) {
    int64_t nb = kt_red_blocks(n / 64 + 1);
    double part[64];
#pragma omp parallel for schedule(static) if (n > KT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        double s = 0;
        for (int64_t i = n * b / nb; i < n * (b + 1) / nb; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    double s = 0;
    for (int64_t b = 0; b < nb; b++) s += part[b];
    return s;
}
