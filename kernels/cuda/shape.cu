// Data movement: permute (one thread per output element, any element size) and strided row
// copies (concat, slice and its backward are runs of rows).
#include "kernels/cuda/kt_cuda_internal.cuh"

#define MAXD 8

typedef struct {
    int ndim;
    int64_t yshape[MAXD];  /* output shape */
    int64_t xstride[MAXD]; /* stride in x (elements) of output axis i */
} perm_geom;

template <typename T> __global__ void k_permute(T *y, const T *x, perm_geom g, int64_t n) {
    KT_CU_LOOP(i, n) {
        int64_t rem = i, off = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            off += (rem % g.yshape[d]) * g.xstride[d];
            rem /= g.yshape[d];
        }
        y[i] = x[off];
    }
}

extern "C" int kt_cuda_permute(kt_cuda_ctx *c, void *y, const void *x, int ndim, const int64_t *xshape, const int *perm, int elem) {
    if (ndim < 1 || ndim > MAXD) return kt_cu_errf(c, "permute: %d axes (1..%d supported)", ndim, MAXD);
    perm_geom g;
    int64_t xs[MAXD], s = 1, n = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        xs[i] = s;
        s *= xshape[i];
    }
    g.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        g.yshape[i] = xshape[perm[i]];
        g.xstride[i] = xs[perm[i]];
        n *= g.yshape[i];
    }
    unsigned b = kt_cu_blocks(n, KT_CU_THREADS);
    switch (elem) {
    case 1: k_permute<uint8_t><<<b, KT_CU_THREADS, 0, c->stream>>>((uint8_t *)y, (const uint8_t *)x, g, n); break;
    case 2: k_permute<uint16_t><<<b, KT_CU_THREADS, 0, c->stream>>>((uint16_t *)y, (const uint16_t *)x, g, n); break;
    case 4: k_permute<uint32_t><<<b, KT_CU_THREADS, 0, c->stream>>>((uint32_t *)y, (const uint32_t *)x, g, n); break;
    case 8: k_permute<uint64_t><<<b, KT_CU_THREADS, 0, c->stream>>>((uint64_t *)y, (const uint64_t *)x, g, n); break;
    default: return kt_cu_errf(c, "permute: element size %d (1, 2, 4 or 8 supported)", elem);
    }
    return kt_cu_launched(c, "permute");
}

__global__ void k_copy_rows(float *dst, int64_t dp, const float *src, int64_t sp, int64_t width, int64_t height) {
    KT_CU_LOOP(i, width * height) {
        int64_t r = i / width, k = i % width;
        dst[r * dp + k] = src[r * sp + k];
    }
}

extern "C" int kt_cuda_copy_rows(kt_cuda_ctx *c, float *dst, int64_t dp, const float *src, int64_t sp, int64_t width,
                                 int64_t height) {
    if (width <= 0 || height <= 0) return 0;
    k_copy_rows<<<kt_cu_blocks(width * height, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dst, dp, src, sp, width, height);
    return kt_cu_launched(c, "row copy");
}
