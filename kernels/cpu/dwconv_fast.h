/* Stride-1 depthwise convolution (the ConvNeXt 7x7 case) on dense per-thread tiles of one image,
 * one band of rows and one SIMD-width channel block, several output pixels per pass sharing the taps. */
#ifndef KT_CPU_DWCONV_FAST_H
#define KT_CPU_DWCONV_FAST_H

#include <stddef.h>

#include "kernels/cpu/conv.h"

/* 1 when the fast kernels apply: stride 1, channels a multiple of the SIMD width, kernel <= 7. */
int kt_dw_fast_ok(const kt_conv_shape *s);
size_t kt_dw_fast_scratch(const kt_conv_shape *s, int weight_grad);
void kt_dw_fast_fwd(const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *scratch);
void kt_dw_fast_bwd_data(const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch);
void kt_dw_fast_bwd_weight(const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *scratch);

#endif
