/* Fused backward kernels: one pass over a large gradient computes both an output and the
 * per-channel sums another node needs (bias gradients, LayerNorm weight/bias gradients, the
 * layer-scale gradient), instead of re-reading the tensor. Column sums use the fixed row blocks
 * of kt_par.h, so they are the same for any thread count. */
#ifndef KT_CPU_FUSED_H
#define KT_CPU_FUSED_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/activation.h"

/* Scratch bytes for ncols column sums over rows (partials per block). */
size_t kt_cpu_colsum_scratch(int64_t rows, int64_t ncols);

/* dx = dy * f'(v) (as kt_cpu_act_bwd), and colsum (C) = sum over rows of dx. */
void kt_cpu_act_bwd_colsum(kt_act a, float *dx, const float *dy, const float *v, int64_t rows, int64_t C, float *colsum,
                           void *scratch);
/* y = a * b (b (C) broadcast over rows), and colsum (C) = sum over rows of y. */
void kt_cpu_mul_bcast_colsum(float *y, const float *a, const float *b, int64_t rows, int64_t C, float *colsum, void *scratch);
/* Backward of y = a * gamma (gamma (C)): da = dy * gamma, dgamma (C) = sum over rows of dy * a, and
 * (if colsum is not NULL) colsum (C) = sum over rows of da. */
void kt_cpu_mul_bcast_bwd_both(float *da, float *dgamma, float *colsum, const float *dy, const float *a, const float *gamma,
                               int64_t rows, int64_t C, void *scratch);
/* LayerNorm backward in one pass: dx (may be NULL), dwb (2, C) = (sum dy*xhat, sum dy) (may be NULL),
 * and colsum (C) = sum over rows of dx (may be NULL). w may be NULL (no affine). */
void kt_cpu_layernorm_bwd_fused(float *dx, float *dwb, float *colsum, const float *dy, const float *x, const float *w,
                                int64_t rows, int64_t C, float eps, void *scratch);

#endif
