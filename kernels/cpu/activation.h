/* Pointwise activations and their derivatives on contiguous f32 buffers (y may alias x). */
#ifndef KT_CPU_ACTIVATION_H
#define KT_CPU_ACTIVATION_H

#include <stdint.h>

typedef enum { KT_ACT_GELU, KT_ACT_RELU, KT_ACT_SILU, KT_ACT_SIGMOID } kt_act;

/* GELU is the erf form (PyTorch's default approximate='none'). */
void kt_cpu_act_fwd(kt_act a, float *y, const float *x, int64_t n);
/* dx = dy * f'(v), where v is the input x (GELU, ReLU, SiLU) or the output y (sigmoid). dx may alias dy. */
void kt_cpu_act_bwd(kt_act a, float *dx, const float *dy, const float *v, int64_t n);

/* z (rows, C) += b (C) (b may be NULL); y = GELU(z). y may alias z (then z ends as GELU(z + b)). */
void kt_cpu_bias_gelu(float *z, float *y, const float *b, int64_t rows, int64_t C);
/* y = GELU(z + b) and z left as it is: when nothing reads z + b later (inference), its write-back is
 * a pass over memory saved. y may alias z. */
void kt_cpu_bias_gelu_out(float *z, float *y, const float *b, int64_t rows, int64_t C);

#endif
