/* im2col convolution. Weights are first reordered to (Co, kh, kw, Ci/g) so each im2col row is kh*kw
 * contiguous runs of input channels (NHWC), copied with memcpy. Chunks are whole images so the
 * data gradient can be gathered per input pixel (no scatter races, deterministic). */
#include "kernels/cpu/conv.h"

#include <string.h>

#include "kernels/cpu/gemm.h"

#define CHUNK_FLOATS (1 << 21) /* 8 MiB of im2col rows per chunk */

void kt_conv_shape_finish(kt_conv_shape *s) {
    s->Ho = (s->H + 2 * s->ph - s->kh) / s->sh + 1;
    s->Wo = (s->W + 2 * s->pw - s->kw) / s->sw + 1;
}

int kt_conv_is_depthwise(const kt_conv_shape *s) { return s->groups > 1 && s->groups == s->Ci && s->Co == s->Ci; }

static int is_pointwise(const kt_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0 && s->groups == 1;
}

static int64_t kdim(const kt_conv_shape *s) { return (s->Ci / s->groups) * s->kh * s->kw; }

static int64_t imgs_per_chunk(const kt_conv_shape *s) {
    int64_t per = s->Ho * s->Wo * kdim(s);
    int64_t k = per > 0 ? CHUNK_FLOATS / per : 1;
    if (k < 1) k = 1;
    return k > s->N ? s->N : k;
}

size_t kt_cpu_conv2d_scratch(const kt_conv_shape *s) {
    if (is_pointwise(s)) return 0;
    int64_t K = kdim(s);
    /* col chunk + reordered weight (or weight gradient) */
    return (size_t)(imgs_per_chunk(s) * s->Ho * s->Wo * K + s->Co * K) * sizeof(float);
}

/* wt (Co, kh, kw, Cig) from w (Co, Cig, kh, kw) */
static void reorder_weight(const kt_conv_shape *s, const float *w, float *wt) {
    int64_t Cig = s->Ci / s->groups, khw = s->kh * s->kw;
    for (int64_t o = 0; o < s->Co; o++)
        for (int64_t ci = 0; ci < Cig; ci++)
            for (int64_t k = 0; k < khw; k++) wt[(o * khw + k) * Cig + ci] = w[(o * Cig + ci) * khw + k];
}

static void unorder_weight(const kt_conv_shape *s, const float *wt, float *w) {
    int64_t Cig = s->Ci / s->groups, khw = s->kh * s->kw;
    for (int64_t o = 0; o < s->Co; o++)
        for (int64_t ci = 0; ci < Cig; ci++)
            for (int64_t k = 0; k < khw; k++) w[(o * Cig + ci) * khw + k] = wt[(o * khw + k) * Cig + ci];
}

/* col (rows of images n0..n0+nimg, K) for group g; zero where the window leaves the image. */
static void im2col(const kt_conv_shape *s, const float *x, int64_t n0, int64_t nimg, int64_t g, float *col) {
    int64_t Cig = s->Ci / s->groups, K = kdim(s);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < nimg; n++)
        for (int64_t oy = 0; oy < s->Ho; oy++)
            for (int64_t ox = 0; ox < s->Wo; ox++) {
                float *row = col + ((n * s->Ho + oy) * s->Wo + ox) * K;
                for (int64_t ky = 0; ky < s->kh; ky++) {
                    int64_t iy = oy * s->sh - s->ph + ky;
                    for (int64_t kx = 0; kx < s->kw; kx++) {
                        int64_t ix = ox * s->sw - s->pw + kx;
                        float *dst = row + (ky * s->kw + kx) * Cig;
                        if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) memset(dst, 0, (size_t)Cig * sizeof(float));
                        else memcpy(dst, x + (((n0 + n) * s->H + iy) * s->W + ix) * s->Ci + g * Cig, (size_t)Cig * sizeof(float));
                    }
                }
            }
}

/* dx[images n0.., group g channels] = gather of dcol rows over the windows covering each pixel. */
static void col2im(const kt_conv_shape *s, const float *col, int64_t n0, int64_t nimg, int64_t g, float *dx) {
    int64_t Cig = s->Ci / s->groups, K = kdim(s);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < nimg; n++)
        for (int64_t iy = 0; iy < s->H; iy++)
            for (int64_t ix = 0; ix < s->W; ix++) {
                float *d = dx + (((n0 + n) * s->H + iy) * s->W + ix) * s->Ci + g * Cig;
                memset(d, 0, (size_t)Cig * sizeof(float));
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
                        const float *src = col + ((n * s->Ho + oy) * s->Wo + ox) * K + (ky * s->kw + kx) * Cig;
#pragma omp simd
                        for (int64_t c = 0; c < Cig; c++) d[c] += src[c];
                    }
                }
            }
}

void kt_cpu_conv2d_fwd(const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *scratch) {
    int64_t M = s->N * s->Ho * s->Wo;
    if (b) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < M; r++) memcpy(y + r * s->Co, b, (size_t)s->Co * sizeof(float));
    }
    float beta = b ? 1.0f : 0.0f;
    if (is_pointwise(s)) {
        kt_cpu_gemm(0, 1, M, s->Co, s->Ci, 1.0f, x, s->Ci, w, s->Ci, beta, y, s->Co);
        return;
    }
    int64_t K = kdim(s), Cog = s->Co / s->groups, chunk = imgs_per_chunk(s), rows_img = s->Ho * s->Wo;
    float *col = scratch, *wt = col + chunk * rows_img * K;
    reorder_weight(s, w, wt);
    for (int64_t n0 = 0; n0 < s->N; n0 += chunk) {
        int64_t nimg = s->N - n0 < chunk ? s->N - n0 : chunk;
        for (int64_t g = 0; g < s->groups; g++) {
            im2col(s, x, n0, nimg, g, col);
            kt_cpu_gemm(0, 1, nimg * rows_img, Cog, K, 1.0f, col, K, wt + g * Cog * K, K, beta,
                        y + n0 * rows_img * s->Co + g * Cog, s->Co);
        }
    }
}

void kt_cpu_conv2d_bwd_data(const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch) {
    int64_t M = s->N * s->Ho * s->Wo;
    if (is_pointwise(s)) {
        kt_cpu_gemm(0, 0, M, s->Ci, s->Co, 1.0f, dy, s->Co, w, s->Ci, 0.0f, dx, s->Ci);
        return;
    }
    int64_t K = kdim(s), Cog = s->Co / s->groups, chunk = imgs_per_chunk(s), rows_img = s->Ho * s->Wo;
    float *col = scratch, *wt = col + chunk * rows_img * K;
    reorder_weight(s, w, wt);
    for (int64_t n0 = 0; n0 < s->N; n0 += chunk) {
        int64_t nimg = s->N - n0 < chunk ? s->N - n0 : chunk;
        for (int64_t g = 0; g < s->groups; g++) {
            /* dcol (rows, K) = dy_g (rows, Cog) x wt_g (Cog, K) */
            kt_cpu_gemm(0, 0, nimg * rows_img, K, Cog, 1.0f, dy + n0 * rows_img * s->Co + g * Cog, s->Co, wt + g * Cog * K, K,
                        0.0f, col, K);
            col2im(s, col, n0, nimg, g, dx);
        }
    }
}

void kt_cpu_conv2d_bwd_weight(const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *scratch) {
    int64_t M = s->N * s->Ho * s->Wo;
    if (is_pointwise(s)) {
        kt_cpu_gemm(1, 0, s->Co, s->Ci, M, 1.0f, dy, s->Co, x, s->Ci, 0.0f, dw, s->Ci);
        return;
    }
    int64_t K = kdim(s), Cog = s->Co / s->groups, chunk = imgs_per_chunk(s), rows_img = s->Ho * s->Wo;
    float *col = scratch, *dwt = col + chunk * rows_img * K;
    for (int64_t n0 = 0; n0 < s->N; n0 += chunk) {
        int64_t nimg = s->N - n0 < chunk ? s->N - n0 : chunk;
        for (int64_t g = 0; g < s->groups; g++) {
            im2col(s, x, n0, nimg, g, col);
            /* dwt_g (Cog, K) += dy_g^T (Cog, rows) x col (rows, K) */
            kt_cpu_gemm(1, 0, Cog, K, nimg * rows_img, 1.0f, dy + n0 * rows_img * s->Co + g * Cog, s->Co, col, K,
                        n0 ? 1.0f : 0.0f, dwt + g * Cog * K, K);
        }
    }
    unorder_weight(s, dwt, dw);
}
