// Depthwise convolution on NHWC images, weight (C, 1, kh, kw): channels across the threads of a warp
// (coalesced), no im2col. Square stride-1 kernels (3, 5, 7: ConvNeXt's 7x7) take a register-tiled
// path: each thread makes TW outputs of one row from one loaded strip of inputs per kernel row.
// Other geometries take a plain path. Taps are summed in the CPU kernel's (ky, kx) order. The
// weight gradient sums fixed row blocks into partials, then the blocks in order (deterministic).
#include "kernels/cuda/kt_cuda_internal.cuh"

#define TW 8     /* outputs per thread along a row */
#define TROWS 4  /* thread rows per block (each a TW-wide tile) */

/* wt (kh*kw, C) = w (C, kh*kw): every tap a contiguous channel vector */
__global__ void k_dw_transpose(float *wt, const float *w, int64_t C, int64_t khw) {
    KT_CU_LOOP(i, C * khw) {
        int64_t k = i / C, c = i % C;
        wt[i] = w[c * khw + k];
    }
}

static int fast_k(const kt_conv_shape *s) {
    if (s->kh != s->kw || s->sh != 1 || s->sw != 1) return 0;
    return (s->kh == 3 || s->kh == 5 || s->kh == 7) ? (int)s->kh : 0;
}

extern "C" size_t kt_cuda_dwconv_scratch(const kt_conv_shape *s) {
    return kt_cu_align((size_t)(s->kh * s->kw * s->Ci) * sizeof(float));
}

static int transpose_w(kt_cuda_ctx *c, const kt_conv_shape *s, const float *w, float *wt) {
    int64_t n = s->Ci * s->kh * s->kw;
    k_dw_transpose<<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(wt, w, s->Ci, s->kh * s->kw);
    return kt_cu_launched(c, "depthwise weight transpose");
}

/* ---- forward ---- */

/* outputs in f32, or rounded to 16 bits (a depthwise output only LayerNorm reads, under autocast) */
__device__ __forceinline__ void put1(float *y, float v) { *y = v; }
__device__ __forceinline__ void put1(__nv_bfloat16 *y, float v) { *y = __float2bfloat16_rn(v); }
__device__ __forceinline__ void put1(__half *y, float v) { *y = __float2half_rn(v); }

template <int K, typename O>
__global__ void k_dw_fwd_fast(kt_conv_shape s, const float *x, const float *wt, const float *b, O *y) {
    int64_t C = s.Ci, c = (int64_t)blockIdx.z * 32 + threadIdx.x, row = blockIdx.x;
    int64_t ox0 = ((int64_t)blockIdx.y * TROWS + threadIdx.y) * TW;
    if (c >= C || ox0 >= s.Wo) return;
    int64_t n = row / s.Ho, oy = row % s.Ho;
    float acc[TW];
#pragma unroll
    for (int t = 0; t < TW; t++) acc[t] = b ? b[c] : 0.0f;
#pragma unroll
    for (int ky = 0; ky < K; ky++) {
        int64_t iy = oy - s.ph + ky;
        if (iy < 0 || iy >= s.H) continue;
        const float *xr = x + (n * s.H + iy) * s.W * C + c;
        float xv[TW + K - 1];
#pragma unroll
        for (int j = 0; j < TW + K - 1; j++) {
            int64_t ix = ox0 - s.pw + j;
            xv[j] = (ix >= 0 && ix < s.W) ? xr[ix * C] : 0.0f;
        }
#pragma unroll
        for (int kx = 0; kx < K; kx++) {
            float wv = wt[(ky * K + kx) * C + c];
#pragma unroll
            for (int t = 0; t < TW; t++) acc[t] += xv[t + kx] * wv;
        }
    }
    O *yr = y + (row * s.Wo + ox0) * C + c;
#pragma unroll
    for (int t = 0; t < TW; t++)
        if (ox0 + t < s.Wo) put1(yr + t * C, acc[t]);
}

template <typename O> __global__ void k_dw_fwd(kt_conv_shape s, const float *x, const float *wt, const float *b, O *y) {
    int64_t C = s.Ci;
    KT_CU_LOOP(i, s.N * s.Ho * s.Wo * C) {
        int64_t c = i % C, t = i / C, ox = t % s.Wo, oy = (t / s.Wo) % s.Ho, n = t / (s.Wo * s.Ho);
        float acc = b ? b[c] : 0.0f;
        for (int64_t ky = 0; ky < s.kh; ky++) {
            int64_t iy = oy * s.sh - s.ph + ky;
            if (iy < 0 || iy >= s.H) continue;
            for (int64_t kx = 0; kx < s.kw; kx++) {
                int64_t ix = ox * s.sw - s.pw + kx;
                if (ix < 0 || ix >= s.W) continue;
                acc += x[((n * s.H + iy) * s.W + ix) * C + c] * wt[(ky * s.kw + kx) * C + c];
            }
        }
        put1(y + i, acc);
    }
}

static dim3 tile_grid(int64_t rows, int64_t width, int64_t C) {
    return dim3((unsigned)rows, (unsigned)((width + TW * TROWS - 1) / (TW * TROWS)), (unsigned)((C + 31) / 32));
}

template <typename O> static int dw_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, O *y,
                                         void *scratch) {
    float *wt = (float *)scratch;
    if (transpose_w(c, s, w, wt)) return 1;
    dim3 grid = tile_grid(s->N * s->Ho, s->Wo, s->Ci), block(32, TROWS);
    switch (fast_k(s)) {
    case 3: k_dw_fwd_fast<3, O><<<grid, block, 0, c->stream>>>(*s, x, wt, b, y); break;
    case 5: k_dw_fwd_fast<5, O><<<grid, block, 0, c->stream>>>(*s, x, wt, b, y); break;
    case 7: k_dw_fwd_fast<7, O><<<grid, block, 0, c->stream>>>(*s, x, wt, b, y); break;
    default:
        k_dw_fwd<O><<<kt_cu_blocks(s->N * s->Ho * s->Wo * s->Ci, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, x, wt, b, y);
    }
    return kt_cu_launched(c, "depthwise conv");
}

extern "C" int kt_cuda_dwconv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b,
                                  float *y, void *scratch) {
    return dw_fwd(c, s, x, w, b, y, scratch);
}

extern "C" int kt_cuda_dwconv_fwd_to16(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, void *y,
                                       kt_cuda_dtype yt, void *scratch) {
    if (yt == KT_CUDA_BF16) return dw_fwd(c, s, x, w, b, (__nv_bfloat16 *)y, scratch);
    if (yt == KT_CUDA_F16) return dw_fwd(c, s, x, w, b, (__half *)y, scratch);
    return kt_cu_errf(c, "depthwise conv: a 16-bit output must be bf16 or f16");
}

/* ---- data gradient: dx[iy, ix] = sum over taps of dy[iy + ph - ky, ix + pw - kx] * w[ky, kx] ---- */

template <int K> __global__ void k_dw_bwd_data_fast(kt_conv_shape s, const float *dy, const float *wt, float *dx) {
    int64_t C = s.Ci, c = (int64_t)blockIdx.z * 32 + threadIdx.x, row = blockIdx.x;
    int64_t ix0 = ((int64_t)blockIdx.y * TROWS + threadIdx.y) * TW;
    if (c >= C || ix0 >= s.W) return;
    int64_t n = row / s.H, iy = row % s.H;
    float acc[TW];
#pragma unroll
    for (int t = 0; t < TW; t++) acc[t] = 0.0f;
#pragma unroll
    for (int ky = 0; ky < K; ky++) {
        int64_t oy = iy + s.ph - ky;
        if (oy < 0 || oy >= s.Ho) continue;
        const float *dr = dy + (n * s.Ho + oy) * s.Wo * C + c;
        float dv[TW + K - 1]; /* dv[j]: ox = ix0 + pw - (K-1) + j */
#pragma unroll
        for (int j = 0; j < TW + K - 1; j++) {
            int64_t ox = ix0 + s.pw - (K - 1) + j;
            dv[j] = (ox >= 0 && ox < s.Wo) ? dr[ox * C] : 0.0f;
        }
#pragma unroll
        for (int kx = 0; kx < K; kx++) {
            float wv = wt[(ky * K + kx) * C + c];
#pragma unroll
            for (int t = 0; t < TW; t++) acc[t] += dv[t + (K - 1) - kx] * wv;
        }
    }
    float *o = dx + (row * s.W + ix0) * C + c;
#pragma unroll
    for (int t = 0; t < TW; t++)
        if (ix0 + t < s.W) o[t * C] = acc[t];
}

__global__ void k_dw_bwd_data(kt_conv_shape s, const float *dy, const float *wt, float *dx) {
    int64_t C = s.Ci;
    KT_CU_LOOP(i, s.N * s.H * s.W * C) {
        int64_t c = i % C, t = i / C, ix = t % s.W, iy = (t / s.W) % s.H, n = t / (s.W * s.H);
        float acc = 0.0f;
        for (int64_t ky = 0; ky < s.kh; ky++) {
            int64_t ty = iy + s.ph - ky;
            if (ty < 0 || ty % s.sh) continue;
            int64_t oy = ty / s.sh;
            if (oy >= s.Ho) continue;
            for (int64_t kx = 0; kx < s.kw; kx++) {
                int64_t tx = ix + s.pw - kx;
                if (tx < 0 || tx % s.sw) continue;
                int64_t ox = tx / s.sw;
                if (ox >= s.Wo) continue;
                acc += dy[((n * s.Ho + oy) * s.Wo + ox) * C + c] * wt[(ky * s.kw + kx) * C + c];
            }
        }
        dx[i] = acc;
    }
}

extern "C" int kt_cuda_dwconv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx,
                                       void *scratch) {
    float *wt = (float *)scratch;
    if (transpose_w(c, s, w, wt)) return 1;
    dim3 grid = tile_grid(s->N * s->H, s->W, s->Ci), block(32, TROWS);
    switch (fast_k(s)) {
    case 3: k_dw_bwd_data_fast<3><<<grid, block, 0, c->stream>>>(*s, dy, wt, dx); break;
    case 5: k_dw_bwd_data_fast<5><<<grid, block, 0, c->stream>>>(*s, dy, wt, dx); break;
    case 7: k_dw_bwd_data_fast<7><<<grid, block, 0, c->stream>>>(*s, dy, wt, dx); break;
    default:
        k_dw_bwd_data<<<kt_cu_blocks(s->N * s->H * s->W * s->Ci, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, dy, wt, dx);
    }
    return kt_cu_launched(c, "depthwise conv data gradient");
}

/* ---- weight gradient ---- */

/* Row blocks of the first stage: about 256K threads in all, a function of the geometry only. */
static int64_t wblocks(const kt_conv_shape *s) {
    int64_t rows = s->N * s->Ho, per = s->Ci * s->kh;
    int64_t nb = (262144 + per - 1) / per;
    if (nb > rows) nb = rows;
    if (nb > 4096) nb = 4096;
    return nb < 1 ? 1 : nb;
}

extern "C" size_t kt_cuda_dwconv_bwd_weight_scratch(const kt_conv_shape *s) {
    return kt_cu_align((size_t)(wblocks(s) * s->kh * s->kw * s->Ci) * sizeof(float));
}

/* thread (channel, ky, block): the K taps of one kernel row, sliding along each output row */
template <int K> __global__ void k_dw_bwd_w_fast(kt_conv_shape s, const float *dy, const float *x, float *part, int64_t nb) {
    int64_t C = s.Ci, c = (int64_t)blockIdx.x * 32 + threadIdx.x, blk = blockIdx.y;
    int ky = threadIdx.y;
    if (c >= C) return;
    int64_t rows = s.N * s.Ho, r0 = rows * blk / nb, r1 = rows * (blk + 1) / nb;
    float acc[K];
#pragma unroll
    for (int k = 0; k < K; k++) acc[k] = 0.0f;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / s.Ho, oy = r % s.Ho, iy = oy - s.ph + ky;
        if (iy < 0 || iy >= s.H) continue;
        const float *xr = x + (n * s.H + iy) * s.W * C + c, *dr = dy + r * s.Wo * C + c;
        float win[K]; /* win[k]: x at ix = ox - pw + k */
#pragma unroll
        for (int k = 0; k < K; k++) {
            int64_t ix = k - s.pw;
            win[k] = (ix >= 0 && ix < s.W) ? xr[ix * C] : 0.0f;
        }
        for (int64_t ox = 0; ox < s.Wo; ox++) {
            float d = dr[ox * C];
#pragma unroll
            for (int k = 0; k < K; k++) acc[k] += d * win[k];
#pragma unroll
            for (int k = 0; k < K - 1; k++) win[k] = win[k + 1];
            int64_t ix = ox + 1 - s.pw + K - 1;
            win[K - 1] = (ix >= 0 && ix < s.W) ? xr[ix * C] : 0.0f;
        }
    }
    float *p = part + (blk * K * K + (int64_t)ky * K) * C + c;
#pragma unroll
    for (int k = 0; k < K; k++) p[k * C] = acc[k];
}

/* thread (channel, tap, block) */
__global__ void k_dw_bwd_w(kt_conv_shape s, const float *dy, const float *x, float *part, int64_t nb) {
    int64_t C = s.Ci, khw = s.kh * s.kw, c = (int64_t)blockIdx.x * 32 + threadIdx.x, blk = blockIdx.y;
    int64_t k = (int64_t)blockIdx.z * 8 + threadIdx.y;
    if (c >= C || k >= khw) return;
    int64_t ky = k / s.kw, kx = k % s.kw;
    int64_t rows = s.N * s.Ho, r0 = rows * blk / nb, r1 = rows * (blk + 1) / nb;
    float acc = 0.0f;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / s.Ho, oy = r % s.Ho, iy = oy * s.sh - s.ph + ky;
        if (iy < 0 || iy >= s.H) continue;
        for (int64_t ox = 0; ox < s.Wo; ox++) {
            int64_t ix = ox * s.sw - s.pw + kx;
            if (ix < 0 || ix >= s.W) continue;
            acc += dy[(r * s.Wo + ox) * C + c] * x[((n * s.H + iy) * s.W + ix) * C + c];
        }
    }
    part[(blk * khw + k) * C + c] = acc;
}

/* dw (C, 1, kh, kw) = fixed-order double sum of the block partials (nb, kh*kw, C): one warp per
 * weight, lane l summing blocks l, l + 32, ... then a fixed shuffle tree (as reduce.cu's final stage;
 * a thread per weight waited on nb loads in a chain) */
__global__ void k_dw_bwd_w_final(float *dw, const float *part, int64_t nb, int64_t khw, int64_t C) {
    int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32, warps = (int64_t)gridDim.x * blockDim.x / 32;
    int lane = threadIdx.x & 31;
    for (int64_t i = warp; i < khw * C; i += warps) {
        int64_t k = i / C, c = i % C;
        double acc = 0;
        for (int64_t b = lane; b < nb; b += 32) acc += part[(b * khw + k) * C + c];
        acc = kt_cu_warp_sum_d(acc);
        if (lane == 0) dw[c * khw + k] = (float)acc;
    }
}

extern "C" int kt_cuda_dwconv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *x, float *dw,
                                         void *scratch) {
    float *part = (float *)scratch;
    int64_t nb = wblocks(s), khw = s->kh * s->kw, cb = (s->Ci + 31) / 32;
    int k = fast_k(s);
    if (k) {
        dim3 grid((unsigned)cb, (unsigned)nb), block(32, (unsigned)k);
        if (k == 3) k_dw_bwd_w_fast<3><<<grid, block, 0, c->stream>>>(*s, dy, x, part, nb);
        else if (k == 5) k_dw_bwd_w_fast<5><<<grid, block, 0, c->stream>>>(*s, dy, x, part, nb);
        else k_dw_bwd_w_fast<7><<<grid, block, 0, c->stream>>>(*s, dy, x, part, nb);
    } else {
        dim3 grid((unsigned)cb, (unsigned)nb, (unsigned)((khw + 7) / 8)), block(32, 8);
        k_dw_bwd_w<<<grid, block, 0, c->stream>>>(*s, dy, x, part, nb);
    }
    if (kt_cu_launched(c, "depthwise conv weight gradient (partials)")) return 1;
    k_dw_bwd_w_final<<<kt_cu_blocks(khw * s->Ci * 32, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dw, part, nb, khw, s->Ci);
    return kt_cu_launched(c, "depthwise conv weight gradient (sum)");
}
