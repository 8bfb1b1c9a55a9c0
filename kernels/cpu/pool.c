/* Pooling kernels, parallel over (image, output row); channels are the contiguous inner loop. */
#include "kernels/cpu/pool.h"

#include <float.h>
#include <string.h>

static inline int64_t lo_clip(int64_t v) { return v < 0 ? 0 : v; }

static int64_t window(const kt_pool_shape *s, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1) {
    int64_t ys = oy * s->sh - s->ph, xs = ox * s->sw - s->pw;
    *y0 = lo_clip(ys);
    *x0 = lo_clip(xs);
    *y1 = ys + s->kh < s->H ? ys + s->kh : s->H;
    *x1 = xs + s->kw < s->W ? xs + s->kw : s->W;
    if (s->count_include_pad) {
        int64_t ye = ys + s->kh < s->H + s->ph ? ys + s->kh : s->H + s->ph;
        int64_t xe = xs + s->kw < s->W + s->pw ? xs + s->kw : s->W + s->pw;
        return (ye - ys) * (xe - xs);
    }
    return (*y1 - *y0) * (*x1 - *x0);
}

void kt_cpu_avgpool_fwd(const kt_pool_shape *s, const float *x, float *y) {
    int64_t C = s->C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < s->N; n++)
        for (int64_t oy = 0; oy < s->Ho; oy++)
            for (int64_t ox = 0; ox < s->Wo; ox++) {
                int64_t y0, y1, x0, x1;
                float inv = 1.0f / (float)window(s, oy, ox, &y0, &y1, &x0, &x1);
                float *yr = y + ((n * s->Ho + oy) * s->Wo + ox) * C;
                memset(yr, 0, (size_t)C * sizeof(float));
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        const float *xr = x + ((n * s->H + iy) * s->W + ix) * C;
#pragma omp simd
                        for (int64_t c = 0; c < C; c++) yr[c] += xr[c];
                    }
#pragma omp simd
                for (int64_t c = 0; c < C; c++) yr[c] *= inv;
            }
}

void kt_cpu_avgpool_bwd(const kt_pool_shape *s, const float *dy, float *dx) {
    int64_t C = s->C;
    /* scatter per image: windows of one image overlap, images do not */
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s->N; n++) {
        memset(dx + n * s->H * s->W * C, 0, (size_t)(s->H * s->W * C) * sizeof(float));
        for (int64_t oy = 0; oy < s->Ho; oy++)
            for (int64_t ox = 0; ox < s->Wo; ox++) {
                int64_t y0, y1, x0, x1;
                float inv = 1.0f / (float)window(s, oy, ox, &y0, &y1, &x0, &x1);
                const float *dr = dy + ((n * s->Ho + oy) * s->Wo + ox) * C;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        float *xr = dx + ((n * s->H + iy) * s->W + ix) * C;
#pragma omp simd
                        for (int64_t c = 0; c < C; c++) xr[c] += dr[c] * inv;
                    }
            }
    }
}

void kt_cpu_maxpool_fwd(const kt_pool_shape *s, const float *x, float *y) {
    int64_t C = s->C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < s->N; n++)
        for (int64_t oy = 0; oy < s->Ho; oy++)
            for (int64_t ox = 0; ox < s->Wo; ox++) {
                int64_t y0, y1, x0, x1;
                window(s, oy, ox, &y0, &y1, &x0, &x1);
                float *yr = y + ((n * s->Ho + oy) * s->Wo + ox) * C;
                for (int64_t c = 0; c < C; c++) yr[c] = -FLT_MAX;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        const float *xr = x + ((n * s->H + iy) * s->W + ix) * C;
                        for (int64_t c = 0; c < C; c++) yr[c] = xr[c] > yr[c] ? xr[c] : yr[c];
                    }
            }
}

void kt_cpu_maxpool_bwd(const kt_pool_shape *s, const float *dy, const float *x, float *dx) {
    int64_t C = s->C;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s->N; n++) {
        memset(dx + n * s->H * s->W * C, 0, (size_t)(s->H * s->W * C) * sizeof(float));
        for (int64_t oy = 0; oy < s->Ho; oy++)
            for (int64_t ox = 0; ox < s->Wo; ox++) {
                int64_t y0, y1, x0, x1;
                window(s, oy, ox, &y0, &y1, &x0, &x1);
                const float *dr = dy + ((n * s->Ho + oy) * s->Wo + ox) * C;
                for (int64_t c = 0; c < C; c++) {
                    float best = -FLT_MAX;
                    int64_t at = -1;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++) {
                            float v = x[((n * s->H + iy) * s->W + ix) * C + c];
                            if (at < 0 || v > best) {
                                best = v;
                                at = (iy * s->W + ix) * C + c;
                            }
                        }
                    if (at >= 0) dx[n * s->H * s->W * C + at] += dr[c];
                }
            }
    }
}

void kt_cpu_gap_fwd(const float *x, float *y, int64_t N, int64_t HW, int64_t C) {
    float inv = 1.0f / (float)HW;
#pragma omp parallel for schedule(static) if (N * HW * C > 65536)
    for (int64_t n = 0; n < N; n++) {
        float *yr = y + n * C;
        memset(yr, 0, (size_t)C * sizeof(float));
        for (int64_t p = 0; p < HW; p++) {
            const float *xr = x + (n * HW + p) * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) yr[c] += xr[c];
        }
        for (int64_t c = 0; c < C; c++) yr[c] *= inv;
    }
}

void kt_cpu_gap_bwd(const float *dy, float *dx, int64_t N, int64_t HW, int64_t C) {
    float inv = 1.0f / (float)HW;
#pragma omp parallel for collapse(2) schedule(static) if (N * HW * C > 65536)
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < HW; p++) {
            float *xr = dx + (n * HW + p) * C;
            const float *dr = dy + n * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) xr[c] = dr[c] * inv;
        }
}
