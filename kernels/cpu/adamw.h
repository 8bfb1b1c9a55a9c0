/* AdamW (decoupled weight decay, PyTorch's torch.optim.AdamW update) over a contiguous range of
 * parameters, gradients and moments: one pass, no allocation. */
#ifndef KT_CPU_ADAMW_H
#define KT_CPU_ADAMW_H

#include <stdint.h>

typedef struct kt_adamw_hp {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step; /* 1-based step number after this update */
} kt_adamw_hp;

/* p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
void kt_cpu_adamw(float *p, const float *g, float *m, float *v, int64_t n, const kt_adamw_hp *hp);
/* Sum of squares of g (n), in double, fixed blocks (for gradient clipping). */
double kt_cpu_sumsq(const float *g, int64_t n);

#endif
