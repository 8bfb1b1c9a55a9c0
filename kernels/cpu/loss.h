/* Softmax, softmax cross-entropy with label smoothing (PyTorch's definition), and binary
 * cross-entropy with logits, forward and backward, over rows of (N, C) f32 buffers. */
#ifndef KT_CPU_LOSS_H
#define KT_CPU_LOSS_H

#include <stdint.h>

void kt_cpu_softmax(float *y, const float *x, int64_t rows, int64_t C);
/* dx = y * (dy - sum(dy * y)) per row */
void kt_cpu_softmax_bwd(float *dx, const float *dy, const float *y, int64_t rows, int64_t C);
/* loss (1) = mean over rows of (1-s) * -log p[label] + s * mean_c(-log p[c]).
 * Returns -1 when all labels are in [0, C), else the index of the first bad row. */
int64_t kt_cpu_softmax_ce(float *loss, const float *logits, const int32_t *labels, int64_t N, int64_t C, float smoothing);
/* dlogits = dloss[0] * (softmax - ((1-s) onehot + s/C)) / N */
void kt_cpu_softmax_ce_bwd(float *dlogits, const float *dloss, const float *logits, const int32_t *labels, int64_t N,
                           int64_t C, float smoothing);
/* loss (1) = mean of max(x,0) - x t + log(1 + exp(-|x|)) */
void kt_cpu_bce_logits(float *loss, const float *logits, const float *targets, int64_t n);
void kt_cpu_bce_logits_bwd(float *dlogits, const float *dloss, const float *logits, const float *targets, int64_t n);

#endif
