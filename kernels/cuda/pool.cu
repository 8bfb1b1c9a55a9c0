// Average and max pooling over NHWC images. Backward gathers per input element over the windows
// that cover it, in the CPU kernel's (oy, ox) order, so no atomics and the same sums.
#include <float.h>

#include "kernels/cuda/kt_cuda_internal.cuh"

/* Clipped window of output (oy, ox) and its averaging divisor (kernels/cpu/pool.c's rule). */
__device__ __forceinline__ int64_t window(const kt_pool_shape &s, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1, int64_t *x0,
                                          int64_t *x1) {
    int64_t ys = oy * s.sh - s.ph, xs = ox * s.sw - s.pw;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + s.kh < s.H ? ys + s.kh : s.H;
    *x1 = xs + s.kw < s.W ? xs + s.kw : s.W;
    if (s.count_include_pad) {
        int64_t ye = ys + s.kh < s.H + s.ph ? ys + s.kh : s.H + s.ph;
        int64_t xe = xs + s.kw < s.W + s.pw ? xs + s.kw : s.W + s.pw;
        return (ye - ys) * (xe - xs);
    }
    return (*y1 - *y0) * (*x1 - *x0);
}

/* outputs whose windows contain input coordinate i along one axis: [lo, hi] */
__device__ __forceinline__ void covering(int64_t i, int64_t p, int64_t k, int64_t st, int64_t n_out, int64_t *lo, int64_t *hi) {
    int64_t a = i + p - k + 1;
    *lo = a <= 0 ? 0 : (a + st - 1) / st;
    int64_t h = (i + p) / st;
    *hi = h < n_out - 1 ? h : n_out - 1;
}

__global__ void k_avgpool_fwd(kt_pool_shape s, const float *x, float *y) {
    KT_CU_LOOP(i, s.N * s.Ho * s.Wo * s.C) {
        int64_t c = i % s.C, t = i / s.C, ox = t % s.Wo, oy = (t / s.Wo) % s.Ho, n = t / (s.Wo * s.Ho);
        int64_t y0, y1, x0, x1;
        float inv = 1.0f / (float)window(s, oy, ox, &y0, &y1, &x0, &x1);
        float acc = 0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) acc += x[((n * s.H + iy) * s.W + ix) * s.C + c];
        y[i] = acc * inv;
    }
}

__global__ void k_avgpool_bwd(kt_pool_shape s, const float *dy, float *dx) {
    KT_CU_LOOP(i, s.N * s.H * s.W * s.C) {
        int64_t c = i % s.C, t = i / s.C, ix = t % s.W, iy = (t / s.W) % s.H, n = t / (s.W * s.H);
        int64_t oy0, oy1, ox0, ox1;
        covering(iy, s.ph, s.kh, s.sh, s.Ho, &oy0, &oy1);
        covering(ix, s.pw, s.kw, s.sw, s.Wo, &ox0, &ox1);
        float acc = 0;
        for (int64_t oy = oy0; oy <= oy1; oy++)
            for (int64_t ox = ox0; ox <= ox1; ox++) {
                int64_t y0, y1, x0, x1;
                float inv = 1.0f / (float)window(s, oy, ox, &y0, &y1, &x0, &x1);
                acc += dy[((n * s.Ho + oy) * s.Wo + ox) * s.C + c] * inv;
            }
        dx[i] = acc;
    }
}

__global__ void k_maxpool_fwd(kt_pool_shape s, const float *x, float *y) {
    KT_CU_LOOP(i, s.N * s.Ho * s.Wo * s.C) {
        int64_t c = i % s.C, t = i / s.C, ox = t % s.Wo, oy = (t / s.Wo) % s.Ho, n = t / (s.Wo * s.Ho);
        int64_t y0, y1, x0, x1;
        window(s, oy, ox, &y0, &y1, &x0, &x1);
        float best = -FLT_MAX;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                float v = x[((n * s.H + iy) * s.W + ix) * s.C + c];
                best = v > best ? v : best;
            }
        y[i] = best;
    }
}

/* dx = sum of dy over the windows whose first maximum (scan order) is this element */
__global__ void k_maxpool_bwd(kt_pool_shape s, const float *dy, const float *x, float *dx) {
    KT_CU_LOOP(i, s.N * s.H * s.W * s.C) {
        int64_t c = i % s.C, t = i / s.C, ix = t % s.W, iy = (t / s.W) % s.H, n = t / (s.W * s.H);
        int64_t oy0, oy1, ox0, ox1;
        covering(iy, s.ph, s.kh, s.sh, s.Ho, &oy0, &oy1);
        covering(ix, s.pw, s.kw, s.sw, s.Wo, &ox0, &ox1);
        float acc = 0;
        for (int64_t oy = oy0; oy <= oy1; oy++)
            for (int64_t ox = ox0; ox <= ox1; ox++) {
                int64_t y0, y1, x0, x1;
                window(s, oy, ox, &y0, &y1, &x0, &x1);
                float best = -FLT_MAX;
                int64_t at_y = -1, at_x = -1;
                for (int64_t wy = y0; wy < y1; wy++)
                    for (int64_t wx = x0; wx < x1; wx++) {
                        float v = x[((n * s.H + wy) * s.W + wx) * s.C + c];
                        if (at_y < 0 || v > best) {
                            best = v;
                            at_y = wy;
                            at_x = wx;
                        }
                    }
                if (at_y == iy && at_x == ix) acc += dy[((n * s.Ho + oy) * s.Wo + ox) * s.C + c];
            }
        dx[i] = acc;
    }
}

extern "C" int kt_cuda_avgpool_fwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *x, float *y) {
    k_avgpool_fwd<<<kt_cu_blocks(s->N * s->Ho * s->Wo * s->C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, x, y);
    return kt_cu_launched(c, "average pool");
}

extern "C" int kt_cuda_avgpool_bwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *dy, float *dx) {
    k_avgpool_bwd<<<kt_cu_blocks(s->N * s->H * s->W * s->C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, dy, dx);
    return kt_cu_launched(c, "average pool backward");
}

extern "C" int kt_cuda_maxpool_fwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *x, float *y) {
    k_maxpool_fwd<<<kt_cu_blocks(s->N * s->Ho * s->Wo * s->C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, x, y);
    return kt_cu_launched(c, "max pool");
}

extern "C" int kt_cuda_maxpool_bwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *dy, const float *x, float *dx) {
    k_maxpool_bwd<<<kt_cu_blocks(s->N * s->H * s->W * s->C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, dy, x, dx);
    return kt_cu_launched(c, "max pool backward");
}
