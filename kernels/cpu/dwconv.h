/* Direct depthwise convolution on NHWC images (weight (C, 1, kh, kw)), vectorised across channels:
 * no im2col. Forward, data gradient (gathered per input pixel) and weight gradient (fixed blocks). */
#ifndef KT_CPU_DWCONV_H
#define KT_CPU_DWCONV_H

#include <stddef.h>

#include "kernels/cpu/conv.h"

size_t kt_cpu_dwconv_scratch(const kt_conv_shape *s);
size_t kt_cpu_dwconv_bwd_weight_scratch(const kt_conv_shape *s);
void kt_cpu_dwconv_fwd(const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *scratch);
void kt_cpu_dwconv_bwd_data(const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch);
void kt_cpu_dwconv_bwd_weight(const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *scratch);

#endif
