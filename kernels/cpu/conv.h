/* General 2-D convolution on NHWC images with PyTorch-layout weights (Co, Ci/groups, kh, kw):
 * im2col in chunks of whole images + OpenBLAS GEMM; 1x1 stride-1 convolutions skip im2col. */
#ifndef KT_CPU_CONV_H
#define KT_CPU_CONV_H

#include <stddef.h>
#include <stdint.h>

typedef struct kt_conv_shape {
    int64_t N, H, W, Ci; /* input (N, H, W, Ci) */
    int64_t Co, kh, kw;  /* weight (Co, Ci/groups, kh, kw) */
    int64_t sh, sw, ph, pw, groups;
    int64_t Ho, Wo; /* output (N, Ho, Wo, Co) */
} kt_conv_shape;

void kt_conv_shape_finish(kt_conv_shape *s); /* fills Ho, Wo */
/* 1 when a and b are the same geometry (every field): the key of the CUDA backend's per-geometry
 * choices (cuDNN plans, depthwise kernel kinds). Inline, so C and the .cu files share it. */
static inline int kt_conv_shape_same(const kt_conv_shape *a, const kt_conv_shape *b) {
    return a->N == b->N && a->H == b->H && a->W == b->W && a->Ci == b->Ci && a->Co == b->Co && a->kh == b->kh && a->kw == b->kw &&
           a->sh == b->sh && a->sw == b->sw && a->ph == b->ph && a->pw == b->pw && a->groups == b->groups && a->Ho == b->Ho &&
           a->Wo == b->Wo;
}
int kt_conv_is_depthwise(const kt_conv_shape *s);

size_t kt_cpu_conv2d_scratch(const kt_conv_shape *s);
void kt_cpu_conv2d_fwd(const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *scratch);
void kt_cpu_conv2d_bwd_data(const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch);
void kt_cpu_conv2d_bwd_weight(const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *scratch);

#endif
