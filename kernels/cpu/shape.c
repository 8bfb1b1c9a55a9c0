/* Permute via an odometer over the output; concat and slice as runs of contiguous memcpy. */
#include "kernels/cpu/shape.h"

#include <string.h>

void kt_cpu_permute(void *y, const void *x, int ndim, const int64_t *xshape, const int *perm, int elem) {
    int64_t xstride[8], ystride_src[8], yshape[8], n = 1;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        xstride[i] = s;
        s *= xshape[i];
    }
    for (int i = 0; i < ndim; i++) {
        yshape[i] = xshape[perm[i]];
        ystride_src[i] = xstride[perm[i]];
        n *= yshape[i];
    }
    /* innermost output axis contiguous in x too: copy runs */
    int64_t run = ystride_src[ndim - 1] == 1 ? yshape[ndim - 1] : 1;
    int64_t outer = n / run;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t o = 0; o < outer; o++) {
        int64_t rem = o, off = 0;
        for (int i = ndim - 1 - (run > 1); i >= 0; i--) {
            off += (rem % yshape[i]) * ystride_src[i];
            rem /= yshape[i];
        }
        if (run > 1) memcpy((char *)y + (size_t)(o * run) * elem, (const char *)x + (size_t)off * elem, (size_t)(run * elem));
        else memcpy((char *)y + (size_t)o * elem, (const char *)x + (size_t)off * elem, (size_t)elem);
    }
}

void kt_cpu_concat(float *y, const float *const *xs, const int64_t *lens, int n, int64_t outer, int64_t inner) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            memcpy(y + (o * total + off) * inner, xs[i] + o * lens[i] * inner, (size_t)(lens[i] * inner) * sizeof(float));
            off += lens[i];
        }
    }
}

void kt_cpu_slice(float *y, const float *x, int64_t outer, int64_t axis_len, int64_t start, int64_t len, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        memcpy(y + o * len * inner, x + (o * axis_len + start) * inner, (size_t)(len * inner) * sizeof(float));
}

void kt_cpu_slice_bwd(float *dx, const float *dy, int64_t outer, int64_t axis_len, int64_t start, int64_t len,
                      int64_t inner) {
    memset(dx, 0, (size_t)(outer * axis_len * inner) * sizeof(float));
    for (int64_t o = 0; o < outer; o++)
        memcpy(dx + (o * axis_len + start) * inner, dy + o * len * inner, (size_t)(len * inner) * sizeof(float));
}
