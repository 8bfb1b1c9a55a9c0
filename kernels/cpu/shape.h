/* Data movement: permute, concat and slice (and its backward) on contiguous buffers. */
#ifndef KT_CPU_SHAPE_H
#define KT_CPU_SHAPE_H

#include <stdint.h>

/* y = x with axes permuted: y.shape[i] = x.shape[perm[i]]. elem = bytes per element. */
void kt_cpu_permute(void *y, const void *x, int ndim, const int64_t *xshape, const int *perm, int elem);
/* Concat along an axis viewed as (outer, len_i, inner): y (outer, sum len_i, inner). */
void kt_cpu_concat(float *y, const float *const *xs, const int64_t *lens, int n, int64_t outer, int64_t inner);
/* y (outer, len, inner) = x (outer, start:start+len, inner) with x's axis of size axis_len */
void kt_cpu_slice(float *y, const float *x, int64_t outer, int64_t axis_len, int64_t start, int64_t len, int64_t inner);
/* dx (outer, axis_len, inner) = 0, then dx[:, start:start+len, :] = dy */
void kt_cpu_slice_bwd(float *dx, const float *dy, int64_t outer, int64_t axis_len, int64_t start, int64_t len,
                      int64_t inner);

#endif
