/* Dropout and drop path (stochastic depth) with masks from a counter-based hash of (key, index),
 * so forward and backward agree without storing a mask, whatever the thread count. */
#ifndef KT_CPU_DROPOUT_H
#define KT_CPU_DROPOUT_H

#include <stdint.h>

/* y = keep ? x / (1-p) : 0, keep = uniform(key, i) >= p. Used for forward and backward alike. */
void kt_cpu_dropout(float *y, const float *x, int64_t n, float p, uint64_t key);
/* Per sample (axis 0 of (N, per_sample)): one keep/drop draw per sample, as timm's drop_path. */
void kt_cpu_drop_path(float *y, const float *x, int64_t N, int64_t per_sample, float p, uint64_t key);

#endif
