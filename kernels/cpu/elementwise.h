/* Elementwise arithmetic and row reductions on contiguous f32 buffers. Outputs may alias the first
 * input. Reductions use fixed blocking (kt_par.h), so results do not depend on the thread count. */
#ifndef KT_CPU_ELEMENTWISE_H
#define KT_CPU_ELEMENTWISE_H

#include <stddef.h>
#include <stdint.h>

void kt_cpu_add(float *y, const float *a, const float *b, int64_t n);
void kt_cpu_mul(float *y, const float *a, const float *b, int64_t n);
/* y (rows, C) = a (rows, C) * b (C) */
void kt_cpu_mul_bcast(float *y, const float *a, const float *b, int64_t rows, int64_t C);
void kt_cpu_scale(float *y, const float *x, float s, int64_t n);
/* y (rows, C) = x (rows, C) + b (C) */
void kt_cpu_bias(float *y, const float *x, const float *b, int64_t rows, int64_t C);
void kt_cpu_copy(float *y, const float *x, int64_t n);

/* out (C) = sum over nb blocks of part (nb, C), in block order with double accumulation: the last
 * step of every fixed-block reduction, so sums do not depend on the thread count. */
void kt_cpu_sum_blocks(float *out, const float *part, int64_t nb, int64_t C);
/* Scratch (bytes) for the reductions below. */
size_t kt_cpu_reduce_rows_scratch(int64_t rows, int64_t C);
/* out (C) = sum over rows of x (rows, C) */
void kt_cpu_reduce_rows(float *out, const float *x, int64_t rows, int64_t C, void *scratch);
/* out (C) = sum over rows of dy (rows, C) * a (rows, C) */
void kt_cpu_mul_bcast_bwd(float *out, const float *dy, const float *a, int64_t rows, int64_t C, void *scratch);
/* out (1) = scale * sum of x (n), accumulated in double */
void kt_cpu_sum(float *out, const float *x, int64_t n, float scale);
/* dx (n) = dy[0] * scale */
void kt_cpu_fill_scaled(float *dx, const float *dy, int64_t n, float scale);

#endif
