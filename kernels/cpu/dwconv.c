/* Depthwise convolution. Weights are transposed to (kh, kw, C) so every tap is a contiguous channel
 * vector; each output pixel accumulates its taps in a channel-wide register/L1 buffer. */
#include "kernels/cpu/dwconv.h"

#include <string.h>

#include "kernels/cpu/dwconv_fast.h"
#include "kernels/cpu/kt_par.h"

#define DW_MAX_BLOCKS 64

size_t kt_cpu_dwconv_scratch(const kt_conv_shape *s) {
    if (kt_dw_fast_ok(s)) return kt_dw_fast_scratch(s, 0);
    return (size_t)(s->kh * s->kw * s->Ci) * sizeof(float);
}

static int64_t wblocks(const kt_conv_shape *s) {
    int64_t rows = s->N * s->Ho;
    return rows < DW_MAX_BLOCKS ? rows : DW_MAX_BLOCKS;
}

size_t kt_cpu_dwconv_bwd_weight_scratch(const kt_conv_shape *s) {
    if (kt_dw_fast_ok(s)) return kt_dw_fast_scratch(s, 1);
    return (size_t)(wblocks(s) * s->kh * s->kw * s->Ci) * sizeof(float);
}

static void transpose_w(const kt_conv_shape *s, const float *w, float *wt) {
    int64_t C = s->Ci, khw = s->kh * s->kw;
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < khw; k++) wt[k * C + c] = w[c * khw + k];
}

/* Channel block size: small enough for the accumulators to stay in L1 with the taps. */
#define CB 256

void kt_cpu_dwconv_fwd(const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *scratch) {
    if (kt_dw_fast_ok(s)) {
        kt_dw_fast_fwd(s, x, w, b, y, scratch);
        return;
    }
    int64_t C = s->Ci, H = s->H, W = s->W;
    float *wt = scratch;
    transpose_w(s, w, wt);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < s->N; n++)
        for (int64_t oy = 0; oy < s->Ho; oy++) {
            float acc[CB];
            for (int64_t c0 = 0; c0 < C; c0 += CB) {
                int64_t cn = C - c0 < CB ? C - c0 : CB;
                for (int64_t ox = 0; ox < s->Wo; ox++) {
                    if (b) memcpy(acc, b + c0, (size_t)cn * sizeof(float));
                    else memset(acc, 0, (size_t)cn * sizeof(float));
                    for (int64_t ky = 0; ky < s->kh; ky++) {
                        int64_t iy = oy * s->sh - s->ph + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int64_t kx = 0; kx < s->kw; kx++) {
                            int64_t ix = ox * s->sw - s->pw + kx;
                            if (ix < 0 || ix >= W) continue;
                            const float *xr = x + ((n * H + iy) * W + ix) * C + c0;
                            const float *wr = wt + (ky * s->kw + kx) * C + c0;
#pragma omp simd
                            for (int64_t c = 0; c < cn; c++) acc[c] += xr[c] * wr[c];
                        }
                    }
                    memcpy(y + ((n * s->Ho + oy) * s->Wo + ox) * C + c0, acc, (size_t)cn * sizeof(float));
                }
            }
        }
}

void kt_cpu_dwconv_bwd_data(const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch) {
    if (kt_dw_fast_ok(s)) {
        kt_dw_fast_bwd_data(s, dy, w, dx, scratch);
        return;
    }
    int64_t C = s->Ci, H = s->H, W = s->W;
    float *wt = scratch;
    transpose_w(s, w, wt);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < s->N; n++)
        for (int64_t iy = 0; iy < H; iy++) {
            float acc[CB];
            for (int64_t c0 = 0; c0 < C; c0 += CB) {
                int64_t cn = C - c0 < CB ? C - c0 : CB;
                for (int64_t ix = 0; ix < W; ix++) {
                    memset(acc, 0, (size_t)cn * sizeof(float));
                    for (int64_t ky = 0; ky < s->kh; ky++) {
                        int64_t ty = iy + s->ph - ky;
                        if (ty < 0 || ty % s->sh) continue;
                        int64_t oy = ty / s->sh;
                        if (oy >= s->Ho) continue;
                        for (int64_t kx = 0; kx < s->kw; kx++) {
                            int64_t tx = ix + s->pw - kx;
                            if (tx < 0 || tx % s->sw) continue;
                            int64_t ox = tx / s->sw;
                            if (ox >= s->Wo) continue;
                            const float *dr = dy + ((n * s->Ho + oy) * s->Wo + ox) * C + c0;
                            const float *wr = wt + (ky * s->kw + kx) * C + c0;
#pragma omp simd
                            for (int64_t c = 0; c < cn; c++) acc[c] += dr[c] * wr[c];
                        }
                    }
                    memcpy(dx + ((n * H + iy) * W + ix) * C + c0, acc, (size_t)cn * sizeof(float));
                }
            }
        }
}

void kt_cpu_dwconv_bwd_weight(const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *scratch) {
    if (kt_dw_fast_ok(s)) {
        kt_dw_fast_bwd_weight(s, dy, x, dw, scratch);
        return;
    }
    int64_t C = s->Ci, H = s->H, W = s->W, khw = s->kh * s->kw;
    int64_t rows = s->N * s->Ho, nb = wblocks(s);
    float *part = scratch; /* (nb, kh, kw, C) */
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        float *p = part + blk * khw * C;
        memset(p, 0, (size_t)(khw * C) * sizeof(float));
        for (int64_t r = rows * blk / nb; r < rows * (blk + 1) / nb; r++) {
            int64_t n = r / s->Ho, oy = r % s->Ho;
            for (int64_t ox = 0; ox < s->Wo; ox++) {
                const float *dr = dy + ((n * s->Ho + oy) * s->Wo + ox) * C;
                for (int64_t ky = 0; ky < s->kh; ky++) {
                    int64_t iy = oy * s->sh - s->ph + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int64_t kx = 0; kx < s->kw; kx++) {
                        int64_t ix = ox * s->sw - s->pw + kx;
                        if (ix < 0 || ix >= W) continue;
                        const float *xr = x + ((n * H + iy) * W + ix) * C;
                        float *pr = p + (ky * s->kw + kx) * C;
#pragma omp simd
                        for (int64_t c = 0; c < C; c++) pr[c] += dr[c] * xr[c];
                    }
                }
            }
        }
    }
    /* fixed-order sum of the blocks, then back to (C, 1, kh, kw) */
    for (int64_t k = 0; k < khw; k++)
        for (int64_t c = 0; c < C; c++) {
            double acc = 0;
            for (int64_t blk = 0; blk < nb; blk++) acc += part[(blk * khw + k) * C + c];
            dw[c * khw + k] = (float)acc;
        }
}
