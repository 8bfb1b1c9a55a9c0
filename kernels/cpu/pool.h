/* Average, max and global-average pooling over NHWC f32 images, forward and backward. */
#ifndef KT_CPU_POOL_H
#define KT_CPU_POOL_H

#include <stdint.h>

typedef struct kt_pool_shape {
    int64_t N, H, W, C;  /* input (N, H, W, C) */
    int64_t kh, kw, sh, sw, ph, pw;
    int64_t Ho, Wo;      /* output (N, Ho, Wo, C) */
    int count_include_pad; /* average pooling divisor: kh*kw (PyTorch default) or valid taps only */
} kt_pool_shape;

void kt_cpu_avgpool_fwd(const kt_pool_shape *s, const float *x, float *y);
void kt_cpu_avgpool_bwd(const kt_pool_shape *s, const float *dy, float *dx);
/* Max pooling; ties go to the first maximum in scan order, as PyTorch. */
void kt_cpu_maxpool_fwd(const kt_pool_shape *s, const float *x, float *y);
void kt_cpu_maxpool_bwd(const kt_pool_shape *s, const float *dy, const float *x, float *dx);
/* (N, HW, C) -> (N, C) mean, and its backward broadcast. */
void kt_cpu_gap_fwd(const float *x, float *y, int64_t N, int64_t HW, int64_t C);
void kt_cpu_gap_bwd(const float *dy, float *dx, int64_t N, int64_t HW, int64_t C);

#endif
