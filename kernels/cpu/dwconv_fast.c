/* Stride-1 depthwise convolution with register blocking. The input (or, for the data gradient,
 * the output gradient) is copied once into a zero-padded buffer so the inner loops have no bounds
 * checks; the data gradient is the forward pass of the padded gradient with flipped taps. */
#include "kernels/cpu/dwconv_fast.h"

#include <string.h>

#if defined(__AVX512F__)
#define VW 16
#else
#define VW 8
#endif
#define T 4 /* output pixels per pass */
#define WB 64 /* weight-gradient partial blocks (fixed: results do not depend on the thread count) */

typedef float vf __attribute__((vector_size(VW * 4)));

static inline vf ld(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void st(float *p, vf v) { memcpy(p, &v, sizeof v); }

int kt_dw_fast_ok(const kt_conv_shape *s) {
    return s->sh == 1 && s->sw == 1 && s->Ci % VW == 0 && s->kw <= 7 && s->kh <= 7 && s->ph < s->kh && s->pw < s->kw;
}

static int64_t nblocks(const kt_conv_shape *s) {
    int64_t rows = s->N * s->Ho;
    return rows < WB ? rows : WB;
}

size_t kt_dw_fast_scratch(const kt_conv_shape *s, int weight_grad) {
    int64_t C = s->Ci, khw = s->kh * s->kw;
    /* padded copy large enough for both the input (forward, weight grad) and dy (data grad) */
    int64_t hp = s->H + 2 * s->ph, wp = s->W + 2 * s->pw;
    int64_t hq = s->Ho + 2 * (s->kh - 1 - s->ph), wq = s->Wo + 2 * (s->kw - 1 - s->pw);
    int64_t pad = s->N * (hp * wp > hq * wq ? hp * wp : hq * wq) * C;
    return (size_t)(pad + khw * C + (weight_grad ? nblocks(s) * khw * C : 0)) * sizeof(float);
}

/* dst (N, H+2ph, W+2pw, C) = src (N, H, W, C) with zero borders */
static void pad_copy(float *dst, const float *src, int64_t N, int64_t H, int64_t W, int64_t C, int64_t ph, int64_t pw) {
    int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t y = 0; y < Hp; y++) {
            float *d = dst + (n * Hp + y) * Wp * C;
            int64_t sy = y - ph;
            if (sy < 0 || sy >= H) {
                memset(d, 0, (size_t)(Wp * C) * sizeof(float));
                continue;
            }
            memset(d, 0, (size_t)(pw * C) * sizeof(float));
            memcpy(d + pw * C, src + (n * H + sy) * W * C, (size_t)(W * C) * sizeof(float));
            memset(d + (pw + W) * C, 0, (size_t)(pw * C) * sizeof(float));
        }
}

/* y (N, Ho, Wo, C) = depthwise correlation of padded xp (N, Ho+kh-1, Wo+kw-1, C) with wt (kh, kw, C). */
static inline void fwd_core(const float *xp, const float *wt, const float *b, float *y, int64_t N, int64_t Ho, int64_t Wo,
                            int64_t C, const int kh, const int kw) {
    int64_t Hp = Ho + kh - 1, Wp = Wo + kw - 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t oy = 0; oy < Ho; oy++) {
            for (int64_t c0 = 0; c0 < C; c0 += VW) {
                vf bias = b ? ld(b + c0) : (vf){0};
                float *yr = y + ((n * Ho + oy) * Wo) * C + c0;
                int64_t ox = 0;
                for (; ox + T <= Wo; ox += T) {
                    vf acc[T];
                    for (int t = 0; t < T; t++) acc[t] = bias;
                    for (int ky = 0; ky < kh; ky++) {
                        const float *row = xp + ((n * Hp + oy + ky) * Wp + ox) * C + c0;
                        vf xv[T + 6] = {0};
#pragma GCC unroll 10
                        for (int j = 0; j < T + kw - 1; j++) xv[j] = ld(row + j * C);
#pragma GCC unroll 7
                        for (int kx = 0; kx < kw; kx++) {
                            vf wv = ld(wt + (ky * kw + kx) * C + c0);
#pragma GCC unroll 4
                            for (int t = 0; t < T; t++) acc[t] += xv[t + kx] * wv;
                        }
                    }
                    for (int t = 0; t < T; t++) st(yr + (ox + t) * C, acc[t]);
                }
                for (; ox < Wo; ox++) {
                    vf acc = bias;
                    for (int ky = 0; ky < kh; ky++) {
                        const float *row = xp + ((n * Hp + oy + ky) * Wp + ox) * C + c0;
                        for (int kx = 0; kx < kw; kx++) acc += ld(row + kx * C) * ld(wt + (ky * kw + kx) * C + c0);
                    }
                    st(yr + ox * C, acc);
                }
            }
        }
}

/* Dispatch with compile-time kernel sizes so the tap loops unroll fully into registers. */
static void fwd_dispatch(const float *xp, const float *wt, const float *b, float *y, int64_t N, int64_t Ho, int64_t Wo,
                         int64_t C, int kh, int kw) {
    if (kh == 7 && kw == 7) fwd_core(xp, wt, b, y, N, Ho, Wo, C, 7, 7);
    else if (kh == 5 && kw == 5) fwd_core(xp, wt, b, y, N, Ho, Wo, C, 5, 5);
    else if (kh == 3 && kw == 3) fwd_core(xp, wt, b, y, N, Ho, Wo, C, 3, 3);
    else fwd_core(xp, wt, b, y, N, Ho, Wo, C, kh, kw);
}

void kt_dw_fast_fwd(const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *scratch) {
    int64_t C = s->Ci, khw = s->kh * s->kw;
    float *wt = scratch, *xp = wt + khw * C;
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < khw; k++) wt[k * C + c] = w[c * khw + k];
    pad_copy(xp, x, s->N, s->H, s->W, C, s->ph, s->pw);
    fwd_dispatch(xp, wt, b, y, s->N, s->Ho, s->Wo, C, (int)s->kh, (int)s->kw);
}

void kt_dw_fast_bwd_data(const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch) {
    int64_t C = s->Ci, khw = s->kh * s->kw;
    float *wt = scratch, *dyp = wt + khw * C;
    /* flipped taps: wt[ky][kx] = w[kh-1-ky][kw-1-kx] */
    for (int64_t c = 0; c < C; c++)
        for (int64_t ky = 0; ky < s->kh; ky++)
            for (int64_t kx = 0; kx < s->kw; kx++)
                wt[(ky * s->kw + kx) * C + c] = w[c * khw + (s->kh - 1 - ky) * s->kw + (s->kw - 1 - kx)];
    pad_copy(dyp, dy, s->N, s->Ho, s->Wo, C, s->kh - 1 - s->ph, s->kw - 1 - s->pw);
    fwd_dispatch(dyp, wt, NULL, dx, s->N, s->H, s->W, C, (int)s->kh, (int)s->kw);
}

static inline void wgrad_core(const float *xp, const float *dy, float *part, int64_t N, int64_t Ho, int64_t Wo, int64_t C,
                              int64_t nb, const int kh, const int kw) {
    int64_t Hp = Ho + kh - 1, Wp = Wo + kw - 1, rows = N * Ho;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        float *p = part + blk * kh * kw * C;
        memset(p, 0, (size_t)(kh * kw * C) * sizeof(float));
        for (int64_t r = rows * blk / nb; r < rows * (blk + 1) / nb; r++) {
            int64_t n = r / Ho, oy = r % Ho;
            const float *dr = dy + (n * Ho + oy) * Wo * C;
            for (int64_t c0 = 0; c0 < C; c0 += VW)
                for (int ky = 0; ky < kh; ky++) {
                    const float *row = xp + ((n * Hp + oy + ky) * Wp) * C + c0;
                    vf acc[7] = {0};
#pragma GCC unroll 2
                    for (int64_t ox = 0; ox < Wo; ox++) {
                        vf d = ld(dr + ox * C + c0);
#pragma GCC unroll 7
                        for (int kx = 0; kx < kw; kx++) acc[kx] += d * ld(row + (ox + kx) * C);
                    }
                    for (int kx = 0; kx < kw; kx++) {
                        float *pr = p + (ky * kw + kx) * C + c0;
                        st(pr, ld(pr) + acc[kx]);
                    }
                }
        }
    }
}

void kt_dw_fast_bwd_weight(const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *scratch) {
    int64_t C = s->Ci, khw = s->kh * s->kw, nb = nblocks(s);
    float *xp = (float *)scratch + khw * C;
    int64_t hp = s->H + 2 * s->ph, wp = s->W + 2 * s->pw;
    int64_t hq = s->Ho + 2 * (s->kh - 1 - s->ph), wq = s->Wo + 2 * (s->kw - 1 - s->pw);
    float *part = xp + s->N * (hp * wp > hq * wq ? hp * wp : hq * wq) * C;
    pad_copy(xp, x, s->N, s->H, s->W, C, s->ph, s->pw);
    int kh = (int)s->kh, kw = (int)s->kw;
    if (kh == 7 && kw == 7) wgrad_core(xp, dy, part, s->N, s->Ho, s->Wo, C, nb, 7, 7);
    else if (kh == 3 && kw == 3) wgrad_core(xp, dy, part, s->N, s->Ho, s->Wo, C, nb, 3, 3);
    else wgrad_core(xp, dy, part, s->N, s->Ho, s->Wo, C, nb, kh, kw);
    /* fixed-order sum of the blocks (double), back to (C, 1, kh, kw) */
    for (int64_t k = 0; k < khw; k++)
        for (int64_t c = 0; c < C; c++) {
            double acc = 0;
            for (int64_t blk = 0; blk < nb; blk++) acc += part[(blk * khw + k) * C + c];
            dw[c * khw + k] = (float)acc;
        }
}
