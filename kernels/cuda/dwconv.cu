// Depthwise convolution on NHWC images, weight (C, 1, kh, kw): channels across the threads of a warp
// (coalesced), no im2col. Square stride-1 kernels (3, 5, 7: ConvNeXt's 7x7) take one of several
// register-tiled kinds (kt_cuda_dwkind): SCALAR, each thread TW outputs of one row from one loaded
// strip of inputs per kernel row; VEC4, the same with 4 channels as one float4 (a quarter of the load
// instructions and index arithmetic) when C is a multiple of 4; TILE (7x7), a thread per channel and
// a TH x TWT output tile with the 49 weights in registers, so each loaded input row serves up to TH
// output rows (a third of SCALAR's loads per output, from L2 too). Every kind sums each output's taps
// in the CPU kernel's (ky, kx) order from the same starting value, so they give the same bits and
// dwconv_tune.cu may pick the fastest per geometry. Other geometries take a plain path. The weight
// gradient sums fixed row blocks into partials (SCALAR and VEC4 a kernel row per thread, TAPS all 49
// taps per thread, each tap over the same rows in the same order), then the blocks in order
// (deterministic).
#include "kernels/cuda/kt_cuda_internal.cuh"

#define TW 8     /* outputs per thread along a row */
#define TW4 4    /* ... on the 4-channel path (4x the registers per output) */
#define TROWS 4  /* thread rows per block (each a TW-wide tile) */
#define TH 4     /* output rows per thread of the TILE kinds */

__device__ __forceinline__ void madd4(float4 &a, float4 x, float4 w) { /* a += x * w per channel, as the scalar kernels */
    a.x += x.x * w.x;
    a.y += x.y * w.y;
    a.z += x.z * w.z;
    a.w += x.w * w.w;
}

/* 4 channels at once when C allows and every buffer is aligned for it */
static int vec4_ok(const kt_conv_shape *s, const void *a, const void *b, const void *c, const void *d) {
    uintptr_t m = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d;
    return s->Ci % 4 == 0 && (m & 15) == 0;
}

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
__device__ __forceinline__ void put4(float *y, int64_t i4, float4 v) { ((float4 *)y)[i4] = v; }
template <typename H> __device__ __forceinline__ void put4(H *y, int64_t i4, float4 v) {
    kt_cu_half4<H> o;
    kt_cu_put(&o.v[0], v.x);
    kt_cu_put(&o.v[1], v.y);
    kt_cu_put(&o.v[2], v.z);
    kt_cu_put(&o.v[3], v.w);
    ((kt_cu_half4<H> *)y)[i4] = o;
}

/* the 4-channel twin of k_dw_fwd_fast: thread (4 channels c, TW4 outputs of one row) */
template <int K, typename O, typename S>
__global__ void k_dw_fwd_v4(kt_conv_shape s, const float4 *x, const float4 *wt, const float4 *b, O *y, S *xs) {
    int C4 = (int)(s.Ci / 4), c = blockIdx.z * 32 + threadIdx.x, row = blockIdx.x, H = (int)s.H, W = (int)s.W;
    int ox0 = (blockIdx.y * TROWS + threadIdx.y) * TW4;
    if (c >= C4 || ox0 >= s.Wo) return;
    int n = row / (int)s.Ho, oy = row % (int)s.Ho;
    float4 acc[TW4];
    float4 bv = b ? b[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int t = 0; t < TW4; t++) acc[t] = bv;
#pragma unroll
    for (int ky = 0; ky < K; ky++) {
        int iy = oy - (int)s.ph + ky;
        if (iy < 0 || iy >= H) continue;
        int64_t r0 = (int64_t)(n * H + iy) * W * C4 + c; /* (n, iy, 0, c) in float4 units */
        float4 xv[TW4 + K - 1];
#pragma unroll
        for (int j = 0; j < TW4 + K - 1; j++) {
            int ix = ox0 - (int)s.pw + j;
            xv[j] = (ix >= 0 && ix < W) ? x[r0 + (int64_t)ix * C4] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        if (xs && ky == s.ph) { /* iy == oy: this thread's inputs, at j = t + (K-1)/2 */
#pragma unroll
            for (int t = 0; t < TW4; t++)
                if (ox0 + t < W) put4(xs, r0 + (int64_t)(ox0 + t) * C4, xv[t + (K - 1) / 2]);
        }
#pragma unroll
        for (int kx = 0; kx < K; kx++) {
            float4 wv = wt[(ky * K + kx) * C4 + c];
#pragma unroll
            for (int t = 0; t < TW4; t++) madd4(acc[t], xv[t + kx], wv);
        }
    }
#pragma unroll
    for (int t = 0; t < TW4; t++)
        if (ox0 + t < s.Wo) put4(y, ((int64_t)row * s.Wo + ox0 + t) * C4 + c, acc[t]);
}

/* xs: when not NULL, x rounded to 16 bits, written by the threads of the centre kernel row (the
 * weight gradient's saved input; only for 'same' geometry, where those rows cover x once) */
template <int K, typename O, typename S>
__global__ void k_dw_fwd_fast(kt_conv_shape s, const float *x, const float *wt, const float *b, O *y, S *xs) {
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
        if (xs && ky == s.ph) { /* iy == oy: this thread's TW inputs, at j = t + pw = t + (K-1)/2 */
            S *xo = xs + (xr - x) + ox0 * C;
#pragma unroll
            for (int t = 0; t < TW; t++)
                if (ox0 + t < s.W) kt_cu_put(xo + t * C, xv[t + (K - 1) / 2]);
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
        if (ox0 + t < s.Wo) kt_cu_put(yr + t * C, acc[t]);
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
        kt_cu_put(y + i, acc);
    }
}

/* the TILE kinds' twin of k_dw_fwd_fast: thread (channel c, TH output rows x TWT columns). Input row j
 * of the tile (iy = oy0 - ph + j) serves output rows t = j - ky, so streaming the rows downwards adds
 * each output's taps in (ky, kx) order, as the other kinds; rows outside the image are skipped and
 * columns outside it add zeros, as theirs. */
template <int K, int TWT, typename O, typename S>
__global__ void k_dw_fwd_tile(kt_conv_shape s, const float *x, const float *wt, const float *b, O *y, S *xs) {
    int C = (int)s.Ci, c = blockIdx.z * 32 + threadIdx.x, H = (int)s.H, W = (int)s.W, Ho = (int)s.Ho, Wo = (int)s.Wo;
    int ty = (Ho + TH - 1) / TH, n = blockIdx.x / ty, oy0 = (blockIdx.x % ty) * TH;
    int ox0 = (blockIdx.y * TROWS + threadIdx.y) * TWT;
    if (c >= C || ox0 >= Wo) return;
    float wr[K * K];
#pragma unroll
    for (int k = 0; k < K * K; k++) wr[k] = wt[k * C + c];
    float acc[TH][TWT];
    float b0 = b ? b[c] : 0.0f;
#pragma unroll
    for (int t = 0; t < TH; t++)
#pragma unroll
        for (int u = 0; u < TWT; u++) acc[t][u] = b0;
#pragma unroll
    for (int j = 0; j < TH + K - 1; j++) {
        int iy = oy0 - (int)s.ph + j;
        if (iy < 0 || iy >= H) continue;
        int64_t r0 = (int64_t)(n * H + iy) * W * C + c; /* (n, iy, 0, c) */
        float xv[TWT + K - 1];
#pragma unroll
        for (int u = 0; u < TWT + K - 1; u++) {
            int ix = ox0 - (int)s.pw + u;
            xv[u] = (ix >= 0 && ix < W) ? x[r0 + (int64_t)ix * C] : 0.0f;
        }
        if (xs && j >= (K - 1) / 2 && j < (K - 1) / 2 + TH) { /* iy is output row j - ph of the tile: its inputs, once */
#pragma unroll
            for (int u = 0; u < TWT; u++)
                if (ox0 + u < W) kt_cu_put(xs + r0 + (int64_t)(ox0 + u) * C, xv[u + (K - 1) / 2]);
        }
#pragma unroll
        for (int t = 0; t < TH; t++) {
            const int ky = j - t;
            if (ky < 0 || ky >= K) continue;
#pragma unroll
            for (int kx = 0; kx < K; kx++) {
                float wv = wr[ky * K + kx];
#pragma unroll
                for (int u = 0; u < TWT; u++) acc[t][u] += xv[u + kx] * wv;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < TH; t++) {
        if (oy0 + t >= Ho) break;
        int64_t o = ((int64_t)(n * Ho + oy0 + t) * Wo + ox0) * C + c;
#pragma unroll
        for (int u = 0; u < TWT; u++)
            if (ox0 + u < Wo) kt_cu_put(y + o + (int64_t)u * C, acc[t][u]);
    }
}

static dim3 tile_grid(int64_t rows, int64_t width, int64_t C) {
    return dim3((unsigned)rows, (unsigned)((width + TW * TROWS - 1) / (TW * TROWS)), (unsigned)((C + 31) / 32));
}
static dim3 tile_grid4(int64_t rows, int64_t width, int64_t C) {
    return dim3((unsigned)rows, (unsigned)((width + TW4 * TROWS - 1) / (TW4 * TROWS)), (unsigned)((C / 4 + 31) / 32));
}
/* the TILE kinds: blocks of (32 channels, TROWS tiles along a row), grid (N x row tiles, column tiles, channel groups) */
static dim3 tile_grid2(int64_t N, int64_t height, int64_t width, int64_t C, int twt) {
    return dim3((unsigned)(N * ((height + TH - 1) / TH)), (unsigned)((width + twt * TROWS - 1) / (twt * TROWS)), (unsigned)((C + 31) / 32));
}

/* The kinds a call may take: SCALAR always (the plain kernel for other geometries); VEC4 with C a
 * multiple of 4 and aligned buffers; for 7x7 the TILE kinds (forward, data gradient) or TAPS
 * (weight gradient). */
static unsigned kinds_for(const kt_conv_shape *s, int vec4, int weight_grad) {
    int k = fast_k(s);
    unsigned el = 1u << KT_CUDA_DW_SCALAR;
    if (k && vec4) el |= 1u << KT_CUDA_DW_VEC4;
    if (k && vec4 && weight_grad) el |= 1u << KT_CUDA_DW_ROT4;
    if (k && weight_grad) el |= 1u << KT_CUDA_DW_ROT1;
    if (k == 7) el |= weight_grad ? 1u << KT_CUDA_DW_TAPS : (1u << KT_CUDA_DW_TILE4X4) | (1u << KT_CUDA_DW_TILE4X8);
    return el;
}

/* stride 1, square 3/5/7 kernel, 'same' padding: the register-tiled path, whose centre kernel row
 * reads every input exactly once (so it can write x's 16-bit copy) */
extern "C" int kt_cuda_dwconv_can_copy_input(const kt_conv_shape *s) {
    int k = fast_k(s);
    return k && s->ph == (k - 1) / 2 && s->pw == (k - 1) / 2 && s->Ho == s->H && s->Wo == s->W;
}

template <typename O, typename S> struct fwd_args {
    const kt_conv_shape *s;
    const float *x, *wt, *b;
    O *y;
    S *xs;
};

template <typename O, typename S> static int fwd_run(kt_cuda_ctx *c, int kind, void *p) {
    const fwd_args<O, S> *a = (const fwd_args<O, S> *)p;
    const kt_conv_shape *s = a->s;
    dim3 block(32, TROWS);
    int k = fast_k(s);
    if (!k) {
        k_dw_fwd<O><<<kt_cu_blocks(s->N * s->Ho * s->Wo * s->Ci, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, a->x, a->wt, a->b, a->y);
        return kt_cu_launched(c, "depthwise conv");
    }
    if (kind == KT_CUDA_DW_VEC4) {
        dim3 g4 = tile_grid4(s->N * s->Ho, s->Wo, s->Ci);
        const float4 *x4 = (const float4 *)a->x, *w4 = (const float4 *)a->wt, *b4 = (const float4 *)a->b;
        switch (k) {
        case 3: k_dw_fwd_v4<3, O, S><<<g4, block, 0, c->stream>>>(*s, x4, w4, b4, a->y, a->xs); break;
        case 5: k_dw_fwd_v4<5, O, S><<<g4, block, 0, c->stream>>>(*s, x4, w4, b4, a->y, a->xs); break;
        default: k_dw_fwd_v4<7, O, S><<<g4, block, 0, c->stream>>>(*s, x4, w4, b4, a->y, a->xs); break;
        }
        return kt_cu_launched(c, "depthwise conv (4 channels per thread)");
    }
    if (kind == KT_CUDA_DW_TILE4X4) { /* 7x7 only (kinds_for) */
        k_dw_fwd_tile<7, 4, O, S><<<tile_grid2(s->N, s->Ho, s->Wo, s->Ci, 4), block, 0, c->stream>>>(*s, a->x, a->wt, a->b, a->y, a->xs);
        return kt_cu_launched(c, "depthwise conv (4x4 tiles)");
    }
    if (kind == KT_CUDA_DW_TILE4X8) {
        k_dw_fwd_tile<7, 8, O, S><<<tile_grid2(s->N, s->Ho, s->Wo, s->Ci, 8), block, 0, c->stream>>>(*s, a->x, a->wt, a->b, a->y, a->xs);
        return kt_cu_launched(c, "depthwise conv (4x8 tiles)");
    }
    dim3 grid = tile_grid(s->N * s->Ho, s->Wo, s->Ci);
    switch (k) {
    case 3: k_dw_fwd_fast<3, O, S><<<grid, block, 0, c->stream>>>(*s, a->x, a->wt, a->b, a->y, a->xs); break;
    case 5: k_dw_fwd_fast<5, O, S><<<grid, block, 0, c->stream>>>(*s, a->x, a->wt, a->b, a->y, a->xs); break;
    default: k_dw_fwd_fast<7, O, S><<<grid, block, 0, c->stream>>>(*s, a->x, a->wt, a->b, a->y, a->xs); break;
    }
    return kt_cu_launched(c, "depthwise conv");
}

/* flavor: the output and copy types, so that each instantiation is timed on its own */
template <typename O, typename S>
static int dw_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, O *y, S *xs,
                  void *scratch, int flavor) {
    if (xs && !kt_cuda_dwconv_can_copy_input(s)) return kt_cu_errf(c, "depthwise conv: this geometry cannot copy its input");
    float *wt = (float *)scratch;
    if (transpose_w(c, s, w, wt)) return 1;
    fwd_args<O, S> a = {s, x, wt, b, y, xs};
    unsigned el = kinds_for(s, vec4_ok(s, x, wt, b, y) && ((uintptr_t)xs & 7) == 0, 0);
    return kt_cu_dw_dispatch(c, 0, s, flavor, el, 1, fwd_run<O, S>, &a);
}

template <typename O>
static int dw_fwd_xs(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, O *y, int yflavor,
                     void *xs, kt_cuda_dtype xst, void *scratch) {
    if (!xs) return dw_fwd(c, s, x, w, b, y, (__nv_bfloat16 *)NULL, scratch, yflavor * 3);
    if (xst == KT_CUDA_BF16) return dw_fwd(c, s, x, w, b, y, (__nv_bfloat16 *)xs, scratch, yflavor * 3 + 1);
    if (xst == KT_CUDA_F16) return dw_fwd(c, s, x, w, b, y, (__half *)xs, scratch, yflavor * 3 + 2);
    return kt_cu_errf(c, "depthwise conv: the input's copy must be bf16 or f16");
}

extern "C" int kt_cuda_dwconv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b,
                                  float *y, void *scratch) {
    return dw_fwd_xs(c, s, x, w, b, y, 0, NULL, KT_CUDA_F32, scratch);
}

extern "C" int kt_cuda_dwconv_fwd_ex(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, void *y,
                                     kt_cuda_dtype yt, void *xs, kt_cuda_dtype xst, void *scratch) {
    if (yt == KT_CUDA_F32) return dw_fwd_xs(c, s, x, w, b, (float *)y, 0, xs, xst, scratch);
    if (yt == KT_CUDA_BF16) return dw_fwd_xs(c, s, x, w, b, (__nv_bfloat16 *)y, 1, xs, xst, scratch);
    if (yt == KT_CUDA_F16) return dw_fwd_xs(c, s, x, w, b, (__half *)y, 2, xs, xst, scratch);
    return kt_cu_errf(c, "depthwise conv: the output must be f32, bf16 or f16");
}


/* ---- data gradient: dx[iy, ix] = sum over taps of dy[iy + ph - ky, ix + pw - kx] * w[ky, kx] ---- */

/* add: when not NULL, the gradient dx is summed into (dx = add + the data gradient, rounded as the
 * separate add rounds it; the planner's KT_FUSE_DWCONV_BWD_ADD), else dx is the data gradient */
template <int K> __global__ void k_dw_bwd_data_fast(kt_conv_shape s, const float *dy, const float *wt, const float *add, float *dx) {
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
    int64_t o = (row * s.W + ix0) * C + c;
#pragma unroll
    for (int t = 0; t < TW; t++)
        if (ix0 + t < s.W) dx[o + t * C] = add ? __fadd_rn(add[o + t * C], acc[t]) : acc[t];
}

/* the 4-channel twin of k_dw_bwd_data_fast */
template <int K> __global__ void k_dw_bwd_data_v4(kt_conv_shape s, const float4 *dy, const float4 *wt, const float4 *add, float4 *dx) {
    int C4 = (int)(s.Ci / 4), c = blockIdx.z * 32 + threadIdx.x, row = blockIdx.x, Ho = (int)s.Ho, Wo = (int)s.Wo;
    int ix0 = (blockIdx.y * TROWS + threadIdx.y) * TW4;
    if (c >= C4 || ix0 >= s.W) return;
    int n = row / (int)s.H, iy = row % (int)s.H;
    float4 acc[TW4];
#pragma unroll
    for (int t = 0; t < TW4; t++) acc[t] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int ky = 0; ky < K; ky++) {
        int oy = iy + (int)s.ph - ky;
        if (oy < 0 || oy >= Ho) continue;
        int64_t r0 = (int64_t)(n * Ho + oy) * Wo * C4 + c;
        float4 dv[TW4 + K - 1]; /* dv[j]: ox = ix0 + pw - (K-1) + j */
#pragma unroll
        for (int j = 0; j < TW4 + K - 1; j++) {
            int ox = ix0 + (int)s.pw - (K - 1) + j;
            dv[j] = (ox >= 0 && ox < Wo) ? dy[r0 + (int64_t)ox * C4] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int kx = 0; kx < K; kx++) {
            float4 wv = wt[(ky * K + kx) * C4 + c];
#pragma unroll
            for (int t = 0; t < TW4; t++) madd4(acc[t], dv[t + (K - 1) - kx], wv);
        }
    }
#pragma unroll
    for (int t = 0; t < TW4; t++)
        if (ix0 + t < s.W) {
            int64_t i = ((int64_t)row * s.W + ix0 + t) * C4 + c;
            float4 v = acc[t];
            if (add) { /* the gradient this one is summed into, as the separate add rounds it */
                float4 u = add[i];
                v = make_float4(__fadd_rn(u.x, v.x), __fadd_rn(u.y, v.y), __fadd_rn(u.z, v.z), __fadd_rn(u.w, v.w));
            }
            dx[i] = v;
        }
}

__global__ void k_dw_bwd_data(kt_conv_shape s, const float *dy, const float *wt, const float *add, float *dx) {
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
        dx[i] = add ? __fadd_rn(add[i], acc) : acc;
    }
}

/* the TILE kinds' twin of k_dw_bwd_data_fast: thread (channel c, TH rows x TWT columns of dx). dy row
 * j of the tile (oy = iy0 + ph - (K-1) + j) serves dx rows t with ky = t + K-1 - j, so streaming the
 * rows upwards adds each output's taps in ascending ky, as the other kinds. */
template <int K, int TWT> __global__ void k_dw_bwd_data_tile(kt_conv_shape s, const float *dy, const float *wt, const float *add, float *dx) {
    int C = (int)s.Ci, c = blockIdx.z * 32 + threadIdx.x, H = (int)s.H, W = (int)s.W, Ho = (int)s.Ho, Wo = (int)s.Wo;
    int ty = (H + TH - 1) / TH, n = blockIdx.x / ty, iy0 = (blockIdx.x % ty) * TH;
    int ix0 = (blockIdx.y * TROWS + threadIdx.y) * TWT;
    if (c >= C || ix0 >= W) return;
    float wr[K * K];
#pragma unroll
    for (int k = 0; k < K * K; k++) wr[k] = wt[k * C + c];
    float acc[TH][TWT];
#pragma unroll
    for (int t = 0; t < TH; t++)
#pragma unroll
        for (int u = 0; u < TWT; u++) acc[t][u] = 0.0f;
#pragma unroll
    for (int j = TH + K - 2; j >= 0; j--) {
        int oy = iy0 + (int)s.ph - (K - 1) + j;
        if (oy < 0 || oy >= Ho) continue;
        int64_t r0 = (int64_t)(n * Ho + oy) * Wo * C + c;
        float dv[TWT + K - 1]; /* dv[u]: ox = ix0 + pw - (K-1) + u */
#pragma unroll
        for (int u = 0; u < TWT + K - 1; u++) {
            int ox = ix0 + (int)s.pw - (K - 1) + u;
            dv[u] = (ox >= 0 && ox < Wo) ? dy[r0 + (int64_t)ox * C] : 0.0f;
        }
#pragma unroll
        for (int t = 0; t < TH; t++) {
            const int ky = t + (K - 1) - j;
            if (ky < 0 || ky >= K) continue;
#pragma unroll
            for (int kx = 0; kx < K; kx++) {
                float wv = wr[ky * K + kx];
#pragma unroll
                for (int u = 0; u < TWT; u++) acc[t][u] += dv[u + (K - 1) - kx] * wv;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < TH; t++) {
        if (iy0 + t >= H) break;
        int64_t o = ((int64_t)(n * H + iy0 + t) * W + ix0) * C + c;
#pragma unroll
        for (int u = 0; u < TWT; u++)
            if (ix0 + u < W) {
                int64_t i = o + (int64_t)u * C;
                dx[i] = add ? __fadd_rn(add[i], acc[t][u]) : acc[t][u];
            }
    }
}

struct bwd_data_args {
    const kt_conv_shape *s;
    const float *dy, *wt, *add;
    float *dx;
};

static int bwd_data_run(kt_cuda_ctx *c, int kind, void *p) {
    const bwd_data_args *a = (const bwd_data_args *)p;
    const kt_conv_shape *s = a->s;
    dim3 block(32, TROWS);
    int k = fast_k(s);
    if (!k) {
        k_dw_bwd_data<<<kt_cu_blocks(s->N * s->H * s->W * s->Ci, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(*s, a->dy, a->wt, a->add, a->dx);
        return kt_cu_launched(c, "depthwise conv data gradient");
    }
    if (kind == KT_CUDA_DW_VEC4) {
        dim3 g4 = tile_grid4(s->N * s->H, s->W, s->Ci);
        const float4 *d4 = (const float4 *)a->dy, *w4 = (const float4 *)a->wt, *a4 = (const float4 *)a->add;
        switch (k) {
        case 3: k_dw_bwd_data_v4<3><<<g4, block, 0, c->stream>>>(*s, d4, w4, a4, (float4 *)a->dx); break;
        case 5: k_dw_bwd_data_v4<5><<<g4, block, 0, c->stream>>>(*s, d4, w4, a4, (float4 *)a->dx); break;
        default: k_dw_bwd_data_v4<7><<<g4, block, 0, c->stream>>>(*s, d4, w4, a4, (float4 *)a->dx); break;
        }
        return kt_cu_launched(c, "depthwise conv data gradient (4 channels per thread)");
    }
    if (kind == KT_CUDA_DW_TILE4X4) { /* 7x7 only (kinds_for) */
        k_dw_bwd_data_tile<7, 4><<<tile_grid2(s->N, s->H, s->W, s->Ci, 4), block, 0, c->stream>>>(*s, a->dy, a->wt, a->add, a->dx);
        return kt_cu_launched(c, "depthwise conv data gradient (4x4 tiles)");
    }
    if (kind == KT_CUDA_DW_TILE4X8) {
        k_dw_bwd_data_tile<7, 8><<<tile_grid2(s->N, s->H, s->W, s->Ci, 8), block, 0, c->stream>>>(*s, a->dy, a->wt, a->add, a->dx);
        return kt_cu_launched(c, "depthwise conv data gradient (4x8 tiles)");
    }
    dim3 grid = tile_grid(s->N * s->H, s->W, s->Ci);
    switch (k) {
    case 3: k_dw_bwd_data_fast<3><<<grid, block, 0, c->stream>>>(*s, a->dy, a->wt, a->add, a->dx); break;
    case 5: k_dw_bwd_data_fast<5><<<grid, block, 0, c->stream>>>(*s, a->dy, a->wt, a->add, a->dx); break;
    default: k_dw_bwd_data_fast<7><<<grid, block, 0, c->stream>>>(*s, a->dy, a->wt, a->add, a->dx); break;
    }
    return kt_cu_launched(c, "depthwise conv data gradient");
}

extern "C" int kt_cuda_dwconv_bwd_data_add(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, const float *add,
                                           float *dx, void *scratch) {
    float *wt = (float *)scratch;
    if (transpose_w(c, s, w, wt)) return 1;
    bwd_data_args a = {s, dy, wt, add, dx};
    /* summed in place (add == dx), a second run would add twice: no timing then */
    return kt_cu_dw_dispatch(c, 1, s, 0, kinds_for(s, vec4_ok(s, dy, wt, dx, add), 0), !add || add != dx, bwd_data_run, &a);
}

extern "C" int kt_cuda_dwconv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx,
                                       void *scratch) {
    return kt_cuda_dwconv_bwd_data_add(c, s, dy, w, NULL, dx, scratch);
}

/* ---- weight gradient ---- */

/* Row blocks of the first stage: about c->dw_wgrad_threads threads in all (a thread per 4 channels
 * when C allows; 256K unless KT_CUDA_DW_WGRAD_THREADS says otherwise), a function of the geometry and
 * that setting only. Each block writes K*K*C partials (29 MB per convolution at 256K threads), which
 * the second stage reads again: fewer, longer blocks mean less of that traffic and fewer per-row
 * window loads per output, but less parallel work; the card decides (bench/gpu). */
static int64_t wblocks(const kt_cuda_ctx *c, const kt_conv_shape *s) {
    int64_t rows = s->N * s->Ho, per = (s->Ci % 4 == 0 ? s->Ci / 4 : s->Ci) * s->kh;
    int64_t target = c->dw_wgrad_threads > 0 ? c->dw_wgrad_threads : KT_CUDA_DW_WGRAD_THREADS_DEFAULT;
    int64_t nb = (target + per - 1) / per;
    if (nb > rows) nb = rows;
    if (nb > 4096) nb = 4096;
    return nb < 1 ? 1 : nb;
}

extern "C" int64_t kt_cuda_dwconv_bwd_weight_blocks(const kt_cuda_ctx *c, const kt_conv_shape *s) { return wblocks(c, s); }

extern "C" size_t kt_cuda_dwconv_bwd_weight_scratch(const kt_cuda_ctx *c, const kt_conv_shape *s) {
    return kt_cu_align((size_t)(wblocks(c, s) * s->kh * s->kw * s->Ci) * sizeof(float));
}

/* thread (channel, ky, block): the K taps of one kernel row, sliding along each output row */
/* x in f32, or the 16-bit copy the forward saved (widened as read: the f32 kernel's sums on those values).
 * ROT (the ROT1 kind): the window rotates instead of shifting: along a row the columns go K at a
 * time, and in step q the slot of x at ox - pw + k is (q + k) % K, known at compile time, so no
 * registers move between columns (TAPS's trick); the same sums in the same order, the same partials. */
template <int K, typename X, bool ROT>
__global__ void k_dw_bwd_w_fast(kt_conv_shape s, const float *dy, const X *x, float *part, int64_t nb) {
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
        const X *xr = x + (n * s.H + iy) * s.W * C + c;
        const float *dr = dy + r * s.Wo * C + c;
        float win[K]; /* win[k]: x at ix = ox - pw + k (ROT: in slot (ox + k) % K) */
        if constexpr (ROT) {
            int W = (int)s.W, Wo = (int)s.Wo, pw = (int)s.pw;
#pragma unroll
            for (int k = 0; k < K - 1; k++) { /* slots 0..K-2: x at ix = k - pw, for ox = 0 */
                int ix = k - pw;
                win[k] = (ix >= 0 && ix < W) ? kt_cu_widen(xr[(int64_t)ix * C]) : 0.0f;
            }
            for (int ox0 = 0; ox0 < Wo; ox0 += K) {
#pragma unroll
                for (int q = 0; q < K; q++) {
                    int ox = ox0 + q, ix = ox - pw + K - 1;
                    if (ox >= Wo) break;
                    win[(q + K - 1) % K] = (ix >= 0 && ix < W) ? kt_cu_widen(xr[(int64_t)ix * C]) : 0.0f;
                    float d = dr[(int64_t)ox * C];
#pragma unroll
                    for (int k = 0; k < K; k++) acc[k] += d * win[(q + k) % K];
                }
            }
        } else {
#pragma unroll
            for (int k = 0; k < K; k++) {
                int64_t ix = k - s.pw;
                win[k] = (ix >= 0 && ix < s.W) ? kt_cu_widen(xr[ix * C]) : 0.0f;
            }
            for (int64_t ox = 0; ox < s.Wo; ox++) {
                float d = dr[ox * C];
#pragma unroll
                for (int k = 0; k < K; k++) acc[k] += d * win[k];
#pragma unroll
                for (int k = 0; k < K - 1; k++) win[k] = win[k + 1];
                int64_t ix = ox + 1 - s.pw + K - 1;
                win[K - 1] = (ix >= 0 && ix < s.W) ? kt_cu_widen(xr[ix * C]) : 0.0f;
            }
        }
    }
    float *p = part + (blk * K * K + (int64_t)ky * K) * C + c;
#pragma unroll
    for (int k = 0; k < K; k++) p[k * C] = acc[k];
}

/* the 4-channel twin of k_dw_bwd_w_fast; part as float4 (nb, K*K, C/4); ROT: the ROT4 kind (rotating
 * window, as k_dw_bwd_w_fast's; it saves K - 1 float4 moves per column beside K multiply-adds) */
template <int K, typename X, bool ROT>
__global__ void k_dw_bwd_w_v4(kt_conv_shape s, const float4 *dy, const X *x, float4 *part, int64_t nb) {
    int C4 = (int)(s.Ci / 4), c = blockIdx.x * 32 + threadIdx.x, ky = threadIdx.y, W = (int)s.W, Wo = (int)s.Wo;
    int64_t blk = blockIdx.y;
    if (c >= C4) return;
    int64_t rows = s.N * s.Ho, r0 = rows * blk / nb, r1 = rows * (blk + 1) / nb;
    float4 acc[K];
#pragma unroll
    for (int k = 0; k < K; k++) acc[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / s.Ho, oy = r % s.Ho, iy = oy - s.ph + ky;
        if (iy < 0 || iy >= s.H) continue;
        int64_t xb = (n * s.H + iy) * W * C4 + c; /* (n, iy, 0, c) in units of 4 */
        const float4 *dr = dy + r * Wo * C4 + c;
        float4 win[K]; /* win[k]: x at ix = ox - pw + k (ROT: in slot (ox + k) % K) */
        if constexpr (ROT) {
            const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            int pw = (int)s.pw;
#pragma unroll
            for (int k = 0; k < K - 1; k++) { /* slots 0..K-2: x at ix = k - pw, for ox = 0 */
                int ix = k - pw;
                win[k] = (ix >= 0 && ix < W) ? kt_cu_load4(x, xb + (int64_t)ix * C4) : zero;
            }
            for (int ox0 = 0; ox0 < Wo; ox0 += K) {
#pragma unroll
                for (int q = 0; q < K; q++) {
                    int ox = ox0 + q, ix = ox - pw + K - 1;
                    if (ox >= Wo) break;
                    win[(q + K - 1) % K] = (ix >= 0 && ix < W) ? kt_cu_load4(x, xb + (int64_t)ix * C4) : zero;
                    float4 d = dr[(int64_t)ox * C4];
#pragma unroll
                    for (int k = 0; k < K; k++) madd4(acc[k], d, win[(q + k) % K]);
                }
            }
        } else {
#pragma unroll
            for (int k = 0; k < K; k++) {
                int ix = k - (int)s.pw;
                win[k] = (ix >= 0 && ix < W) ? kt_cu_load4(x, xb + (int64_t)ix * C4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
            for (int ox = 0; ox < Wo; ox++) {
                float4 d = dr[(int64_t)ox * C4];
#pragma unroll
                for (int k = 0; k < K; k++) madd4(acc[k], d, win[k]);
#pragma unroll
                for (int k = 0; k < K - 1; k++) win[k] = win[k + 1];
                int ix = ox + 1 - (int)s.pw + K - 1;
                win[K - 1] = (ix >= 0 && ix < W) ? kt_cu_load4(x, xb + (int64_t)ix * C4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
        }
    }
    float4 *p = part + (blk * K * K + (int64_t)ky * K) * C4 + c;
#pragma unroll
    for (int k = 0; k < K; k++) p[k * C4] = acc[k];
}

/* the TAPS kind (weight gradient, 7x7): thread (channel, row block) sums all K*K taps, the K input
 * rows an output row reads held as K-column windows, so each loaded dy value serves K*K taps (the
 * kernels above load it once per kernel row). The windows rotate instead of shifting: along a row,
 * columns go K at a time, and in step q the slot of x at ox - pw + k is (q + k) % K, known at
 * compile time (shifted windows took 255 registers and spilled). Each tap's sum runs over the
 * block's rows, then along each row, as theirs: the same partials. */
template <int K, typename X> __global__ void k_dw_bwd_w_taps(kt_conv_shape s, const float *dy, const X *x, float *part, int64_t nb) {
    int C = (int)s.Ci, c = blockIdx.x * 32 + threadIdx.x, H = (int)s.H, W = (int)s.W, Wo = (int)s.Wo, ph = (int)s.ph, pw = (int)s.pw;
    int64_t Ho = s.Ho;
    int64_t blk = (int64_t)blockIdx.y * TROWS + threadIdx.y;
    if (c >= C || blk >= nb) return;
    int64_t rows = s.N * Ho, r0 = rows * blk / nb, r1 = rows * (blk + 1) / nb;
    float acc[K][K];
#pragma unroll
    for (int ky = 0; ky < K; ky++)
#pragma unroll
        for (int kx = 0; kx < K; kx++) acc[ky][kx] = 0.0f;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / Ho;
        int oy = (int)(r % Ho);
        const float *dr = dy + r * Wo * C + c;
        int64_t xb = ((n * H + oy - ph) * W) * (int64_t)C + c; /* (n, oy - ph, 0, c), kernel row ky at + ky W C (an offset: it may be negative) */
        unsigned ok = 0; /* bit ky: input row oy - ph + ky inside the image (rows outside add nothing, as above) */
        float win[K][K];
#pragma unroll
        for (int ky = 0; ky < K; ky++) {
            int iy = oy - ph + ky;
            if (iy >= 0 && iy < H) ok |= 1u << ky;
#pragma unroll
            for (int k = 0; k < K - 1; k++) { /* slots 0..K-2: x at ix = k - pw, for ox = 0 */
                int ix = k - pw;
                win[ky][k] = ((ok >> ky & 1) && ix >= 0 && ix < W) ? kt_cu_widen(x[xb + ((int64_t)ky * W + ix) * C]) : 0.0f;
            }
        }
        for (int ox0 = 0; ox0 < Wo; ox0 += K) {
#pragma unroll
            for (int q = 0; q < K; q++) {
                int ox = ox0 + q, ix = ox - pw + K - 1;
                if (ox >= Wo) break;
#pragma unroll
                for (int ky = 0; ky < K; ky++)
                    if (ok >> ky & 1) win[ky][(q + K - 1) % K] = (ix >= 0 && ix < W) ? kt_cu_widen(x[xb + ((int64_t)ky * W + ix) * C]) : 0.0f;
                float d = dr[(int64_t)ox * C];
#pragma unroll
                for (int ky = 0; ky < K; ky++) {
                    if (!(ok >> ky & 1)) continue;
#pragma unroll
                    for (int kx = 0; kx < K; kx++) acc[ky][kx] += d * win[ky][(q + kx) % K];
                }
            }
        }
    }
    float *p = part + blk * K * K * C + c;
#pragma unroll
    for (int ky = 0; ky < K; ky++)
#pragma unroll
        for (int kx = 0; kx < K; kx++) p[(ky * K + kx) * C] = acc[ky][kx];
}

/* thread (channel, tap, block) */
template <typename X> __global__ void k_dw_bwd_w(kt_conv_shape s, const float *dy, const X *x, float *part, int64_t nb) {
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
            acc += dy[(r * s.Wo + ox) * C + c] * kt_cu_widen(x[((n * s.H + iy) * s.W + ix) * C + c]);
        }
    }
    part[(blk * khw + k) * C + c] = acc;
}

/* dw (C, 1, kh, kw) = fixed-order double sum of the block partials (nb, kh*kw, C), in a warp's order
 * (kt_cuda.h): "lane" l sums blocks l, l + 32, ... in turn, then the 32 lane sums combine as
 * kt_cu_warp_sum_d's butterfly does (l with l ^ o, o = 16 ... 1; a + b is b + a, so every lane of it
 * ends with lane 0's bits). Block (32, 32): x 32 consecutive channels of one tap, so a warp reads 32
 * consecutive partials (4 sectors; the first version gave each weight a warp, whose lanes read
 * partials 49 x C floats apart: 32 sectors a load), y the lane; the butterfly in shared memory. */
__global__ void k_dw_bwd_w_final(float *dw, const float *part, int64_t nb, int64_t khw, int64_t C) {
    __shared__ double lane_sum[32][33];
    int tx = threadIdx.x, l = threadIdx.y;
    int64_t c = (int64_t)blockIdx.x * 32 + tx;
    for (int64_t k = blockIdx.y; k < khw; k += gridDim.y) { /* taps past the grid's 65535 rows: again */
        double acc = 0;
        if (c < C)
            for (int64_t b = l; b < nb; b += 32) acc += part[(b * khw + k) * C + c];
        lane_sum[l][tx] = acc;
        __syncthreads();
        for (int o = 16; o > 0; o >>= 1) {
            if (l < o) lane_sum[l][tx] = lane_sum[l][tx] + lane_sum[l + o][tx];
            __syncthreads();
        }
        if (l == 0 && c < C) dw[c * khw + k] = (float)lane_sum[0][tx];
        __syncthreads(); /* lane_sum is written again for the next tap */
    }
}

template <typename X> struct bwd_w_args {
    const kt_conv_shape *s;
    const float *dy;
    const X *x;
    float *part;
    int64_t nb;
};

template <typename X> static int bwd_w_run(kt_cuda_ctx *c, int kind, void *p) {
    const bwd_w_args<X> *a = (const bwd_w_args<X> *)p;
    const kt_conv_shape *s = a->s;
    int64_t khw = s->kh * s->kw, cb = (s->Ci + 31) / 32, nb = a->nb;
    int k = fast_k(s);
    if (kind == KT_CUDA_DW_TAPS) { /* 7x7 only (kinds_for) */
        dim3 grid((unsigned)cb, (unsigned)((nb + TROWS - 1) / TROWS)), block(32, TROWS);
        k_dw_bwd_w_taps<7, X><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
    } else if (k && (kind == KT_CUDA_DW_VEC4 || kind == KT_CUDA_DW_ROT4)) { /* ROT4: where VEC4 runs (kinds_for) */
        dim3 grid((unsigned)((s->Ci / 4 + 31) / 32), (unsigned)nb), block(32, (unsigned)k);
        const float4 *d4 = (const float4 *)a->dy;
        float4 *p4 = (float4 *)a->part;
        if (kind == KT_CUDA_DW_ROT4) {
            if (k == 3) k_dw_bwd_w_v4<3, X, true><<<grid, block, 0, c->stream>>>(*s, d4, a->x, p4, nb);
            else if (k == 5) k_dw_bwd_w_v4<5, X, true><<<grid, block, 0, c->stream>>>(*s, d4, a->x, p4, nb);
            else k_dw_bwd_w_v4<7, X, true><<<grid, block, 0, c->stream>>>(*s, d4, a->x, p4, nb);
        } else if (k == 3) k_dw_bwd_w_v4<3, X, false><<<grid, block, 0, c->stream>>>(*s, d4, a->x, p4, nb);
        else if (k == 5) k_dw_bwd_w_v4<5, X, false><<<grid, block, 0, c->stream>>>(*s, d4, a->x, p4, nb);
        else k_dw_bwd_w_v4<7, X, false><<<grid, block, 0, c->stream>>>(*s, d4, a->x, p4, nb);
    } else if (k && kind == KT_CUDA_DW_ROT1) {
        dim3 grid((unsigned)cb, (unsigned)nb), block(32, (unsigned)k);
        if (k == 3) k_dw_bwd_w_fast<3, X, true><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
        else if (k == 5) k_dw_bwd_w_fast<5, X, true><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
        else k_dw_bwd_w_fast<7, X, true><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
    } else if (k) {
        dim3 grid((unsigned)cb, (unsigned)nb), block(32, (unsigned)k);
        if (k == 3) k_dw_bwd_w_fast<3, X, false><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
        else if (k == 5) k_dw_bwd_w_fast<5, X, false><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
        else k_dw_bwd_w_fast<7, X, false><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
    } else {
        dim3 grid((unsigned)cb, (unsigned)nb, (unsigned)((khw + 7) / 8)), block(32, 8);
        k_dw_bwd_w<X><<<grid, block, 0, c->stream>>>(*s, a->dy, a->x, a->part, nb);
    }
    return kt_cu_launched(c, "depthwise conv weight gradient (partials)");
}

/* the partials of every kind are the same bits (the same blocks, each channel's sums in one order) */
template <typename X>
static int dw_bwd_w_partials(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const X *x, float *part, int64_t nb, int flavor) {
    bwd_w_args<X> a = {s, dy, x, part, nb};
    return kt_cu_dw_dispatch(c, 2, s, flavor, kinds_for(s, vec4_ok(s, dy, x, part, NULL), 1), 1, bwd_w_run<X>, &a);
}

extern "C" int kt_cuda_dwconv_bwd_weight_x16(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const void *x, kt_cuda_dtype xt,
                                             float *dw, void *scratch) {
    float *part = (float *)scratch;
    int64_t nb = wblocks(c, s);
    int e;
    if (xt == KT_CUDA_F32) e = dw_bwd_w_partials(c, s, dy, (const float *)x, part, nb, 0);
    else if (xt == KT_CUDA_BF16) e = dw_bwd_w_partials(c, s, dy, (const __nv_bfloat16 *)x, part, nb, 1);
    else if (xt == KT_CUDA_F16) e = dw_bwd_w_partials(c, s, dy, (const __half *)x, part, nb, 2);
    else return kt_cu_errf(c, "depthwise conv weight gradient: x must be f32, bf16 or f16");
    if (e) return 1;
    return kt_cuda_dwconv_bwd_weight_sum(c, s, part, dw);
}

extern "C" int kt_cuda_dwconv_bwd_weight_sum(kt_cuda_ctx *c, const kt_conv_shape *s, const void *scratch, float *dw) {
    int64_t nb = wblocks(c, s), khw = s->kh * s->kw;
    dim3 grid((unsigned)((s->Ci + 31) / 32), (unsigned)(khw < 65535 ? khw : 65535)), block(32, 32);
    k_dw_bwd_w_final<<<grid, block, 0, c->stream>>>(dw, (const float *)scratch, nb, khw, s->Ci);
    return kt_cu_launched(c, "depthwise conv weight gradient (sum)");
}

extern "C" int kt_cuda_dwconv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *x, float *dw,
                                         void *scratch) {
    return kt_cuda_dwconv_bwd_weight_x16(c, s, dy, x, KT_CUDA_F32, dw, scratch);
}
