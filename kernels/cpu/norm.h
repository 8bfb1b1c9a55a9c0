/* LayerNorm and BatchNorm over the last (channel) axis of (rows, C) f32 buffers, forward and
 * backward. Backward recomputes row/channel statistics from x instead of storing them. */
#ifndef KT_CPU_NORM_H
#define KT_CPU_NORM_H

#include <stddef.h>
#include <stdint.h>

/* y = (x - mean) / sqrt(var + eps) * w + b per row; w, b may be NULL (no affine). */
void kt_cpu_layernorm_fwd(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t C, float eps);
void kt_cpu_layernorm_bwd_x(float *dx, const float *dy, const float *x, const float *w, int64_t rows, int64_t C, float eps);
size_t kt_cpu_layernorm_bwd_wb_scratch(int64_t rows, int64_t C);
/* dwb (2, C): row 0 = sum dy * xhat, row 1 = sum dy */
void kt_cpu_layernorm_bwd_wb(float *dwb, const float *dy, const float *x, int64_t rows, int64_t C, float eps, void *scratch);

size_t kt_cpu_batchnorm_scratch(int64_t rows, int64_t C);
/* training: batch statistics, and running = (1-m) running + m batch (unbiased variance), as PyTorch.
 * eval: running statistics. */
void kt_cpu_batchnorm_fwd(float *y, const float *x, const float *w, const float *b, float *running_mean,
                          float *running_var, int64_t rows, int64_t C, float eps, float momentum, int training,
                          void *scratch);
void kt_cpu_batchnorm_bwd_x(float *dx, const float *dy, const float *x, const float *w, const float *running_var,
                            int64_t rows, int64_t C, float eps, int training, void *scratch);
/* dwb (2, C): row 0 dw, row 1 db; xhat from batch statistics (training) or running ones (eval) */
void kt_cpu_batchnorm_bwd_wb(float *dwb, const float *dy, const float *x, const float *running_mean,
                             const float *running_var, int64_t rows, int64_t C, float eps, int training, void *scratch);

#endif
