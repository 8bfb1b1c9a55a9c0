// LayerNorm (one warp per row, float two-pass statistics as the CPU kernel; f32 or bf16 activations
// with f32 weights) and BatchNorm (batch statistics in double through the deterministic column
// reductions of reduce.cu). Backward recomputes statistics from x instead of storing them.
#include "kernels/cuda/kt_cuda_internal.cuh"

#define ROWS_PER_BLOCK 8 /* one warp per row */

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }

/* Mean and 1/sqrt(var + eps) of one row, all 32 lanes of the warp taking part. */
template <typename T> __device__ __forceinline__ void row_stats(const T *xr, int64_t C, float eps, float *mean, float *rstd) {
    int lane = threadIdx.x & 31;
    float s = 0;
    for (int64_t c = lane; c < C; c += 32) s += ld(xr, c);
    float m = kt_cu_warp_sum(s) / (float)C, v = 0;
    for (int64_t c = lane; c < C; c += 32) {
        float d = ld(xr, c) - m;
        v += d * d;
    }
    v = kt_cu_warp_sum(v);
    *mean = m;
    *rstd = 1.0f / sqrtf(v / (float)C + eps);
}

static unsigned ln_blocks(int64_t rows) { return (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK); }

/* the warp's row, or -1 past the end (a whole warp leaves together) */
__device__ __forceinline__ int64_t warp_row(int64_t rows) {
    int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    return r < rows ? r : -1;
}

template <typename T, typename TO = T>
__global__ void k_ln_fwd(TO *y, const T *x, const float *w, const float *b, int64_t rows, int64_t C, float eps) {
    int64_t r = warp_row(rows);
    if (r < 0) return;
    const T *xr = x + r * C;
    TO *yr = y + r * C;
    float m, rs;
    row_stats(xr, C, eps, &m, &rs);
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) {
        float v = (ld(xr, c) - m) * rs;
        kt_cu_put(yr + c, w ? v * w[c] + b[c] : v);
    }
}

/* g = dy w of one element (the product rounded on its own, as in the fused backward) */
template <typename T> __device__ __forceinline__ float ln_g(const T *dr, const float *w, int64_t c) {
    return w ? __fmul_rn(ld(dr, c), w[c]) : ld(dr, c);
}

/* A row's backward statistics: mean and rstd of x, and the means of g and g xhat over the row */
template <typename T, typename TX>
__device__ __forceinline__ void ln_bwd_row(const T *dr, const TX *xr, const float *w, int64_t C, float eps, float out[4]) {
    float m, rs;
    row_stats(xr, C, eps, &m, &rs);
    float sg = 0, sgx = 0;
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) {
        float g = ln_g(dr, w, c);
        sg += g;
        sgx += g * (ld(xr, c) - m) * rs;
    }
    out[0] = m, out[1] = rs, out[2] = kt_cu_warp_sum(sg) / (float)C, out[3] = kt_cu_warp_sum(sgx) / (float)C;
}

/* T: dx and dy; TX: x (a depthwise output stored in 16 bits under autocast, with f32 gradients) */
template <typename T, typename TX = T>
__global__ void k_ln_bwd_x(T *dx, const T *dy, const TX *x, const float *w, int64_t rows, int64_t C, float eps) {
    int64_t r = warp_row(rows);
    if (r < 0) return;
    const TX *xr = x + r * C;
    const T *dr = dy + r * C;
    float s[4];
    ln_bwd_row(dr, xr, w, C, eps, s);
    T *o = dx + r * C;
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) kt_cu_put(o + c, kt_cu_ln_dx(ln_g(dr, w, c), ld(xr, c), s[0], s[1], s[2], s[3]));
}

/* the fused backward's row pass: rs (rows, 4) = ln_bwd_row's statistics; dy f32 or x's 16-bit type */
template <typename TX, typename TD>
__global__ void k_ln_bwd_rows(float *rs, const TD *dy, const TX *x, const float *w, int64_t rows, int64_t C, float eps) {
    int64_t r = warp_row(rows);
    if (r < 0) return;
    float s[4];
    ln_bwd_row(dy + r * C, x + r * C, w, C, eps, s);
    if ((threadIdx.x & 31) == 0) ((float4 *)rs)[r] = make_float4(s[0], s[1], s[2], s[3]);
}

/* rs (rows, 2) = mean, rstd per row */
template <typename TX> __global__ void k_ln_stats(float *rs, const TX *x, int64_t rows, int64_t C, float eps) {
    int64_t r = warp_row(rows);
    if (r < 0) return;
    float m, s;
    row_stats(x + r * C, C, eps, &m, &s);
    if ((threadIdx.x & 31) == 0) {
        rs[2 * r] = m;
        rs[2 * r + 1] = s;
    }
}

extern "C" int kt_cuda_layernorm_fwd(kt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, int64_t rows,
                                     int64_t C, float eps) {
    k_ln_fwd<float><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(y, x, w, b, rows, C, eps);
    return kt_cu_launched(c, "layernorm");
}

extern "C" int kt_cuda_layernorm_bwd_x(kt_cuda_ctx *c, float *dx, const float *dy, const float *x, const float *w, int64_t rows,
                                       int64_t C, float eps) {
    k_ln_bwd_x<float><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(dx, dy, x, w, rows, C, eps);
    return kt_cu_launched(c, "layernorm backward (x)");
}

extern "C" int kt_cuda_layernorm_fwd_bf16(kt_cuda_ctx *c, uint16_t *y, const uint16_t *x, const float *w, const float *b,
                                          int64_t rows, int64_t C, float eps) {
    k_ln_fwd<__nv_bfloat16><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(
        (__nv_bfloat16 *)y, (const __nv_bfloat16 *)x, w, b, rows, C, eps);
    return kt_cu_launched(c, "layernorm bf16");
}

/* f32 in, bf16 out: a LayerNorm whose output only autocast GEMMs read (engine/backend_cuda.c) */
extern "C" int kt_cuda_layernorm_fwd_f32_to_bf16(kt_cuda_ctx *c, uint16_t *y, const float *x, const float *w, const float *b,
                                                 int64_t rows, int64_t C, float eps) {
    k_ln_fwd<float, __nv_bfloat16><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>((__nv_bfloat16 *)y, x, w, b, rows, C, eps);
    return kt_cu_launched(c, "layernorm f32 -> bf16");
}

extern "C" int kt_cuda_layernorm_fwd_f32_to_f16(kt_cuda_ctx *c, uint16_t *y, const float *x, const float *w, const float *b,
                                                int64_t rows, int64_t C, float eps) {
    k_ln_fwd<float, __half><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>((__half *)y, x, w, b, rows, C, eps);
    return kt_cu_launched(c, "layernorm f32 -> f16");
}

extern "C" int kt_cuda_layernorm_bwd_x_bf16(kt_cuda_ctx *c, uint16_t *dx, const uint16_t *dy, const uint16_t *x, const float *w,
                                            int64_t rows, int64_t C, float eps) {
    k_ln_bwd_x<__nv_bfloat16><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(
        (__nv_bfloat16 *)dx, (const __nv_bfloat16 *)dy, (const __nv_bfloat16 *)x, w, rows, C, eps);
    return kt_cu_launched(c, "layernorm backward (x) bf16");
}

/* scratch: row statistics (rows, 2) floats | column partials */
extern "C" size_t kt_cuda_layernorm_bwd_wb_scratch(int64_t rows, int64_t C) {
    return kt_cu_align((size_t)(2 * rows) * sizeof(float)) + kt_cu_colred_scratch(KT_CR_LNWB, rows, C);
}

extern "C" int kt_cuda_layernorm_bwd_wb(kt_cuda_ctx *c, float *dwb, const float *dy, const float *x, int64_t rows, int64_t C,
                                        float eps, void *scratch) {
    float *rs = (float *)scratch;
    double *part = (double *)((char *)scratch + kt_cu_align((size_t)(2 * rows) * sizeof(float)));
    k_ln_stats<float><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(rs, x, rows, C, eps);
    if (kt_cu_launched(c, "layernorm row statistics")) return 1;
    return kt_cu_colred(c, KT_CR_LNWB, dy, x, NULL, NULL, rs, rows, C, part, 1.0, dwb, NULL);
}

/* ---- LayerNorm over an input stored in 16 bits (xt: a depthwise output under autocast) ---- */

template <typename TX, typename TO>
static int ln_fwd_x16(kt_cuda_ctx *c, TO *y, const TX *x, const float *w, const float *b, int64_t rows, int64_t C, float eps) {
    k_ln_fwd<TX, TO><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(y, x, w, b, rows, C, eps);
    return kt_cu_launched(c, "layernorm (16-bit input)");
}

extern "C" int kt_cuda_layernorm_fwd_x16(kt_cuda_ctx *c, void *y, kt_cuda_dtype yt, const uint16_t *x, kt_cuda_dtype xt, const float *w,
                                         const float *b, int64_t rows, int64_t C, float eps) {
    if (xt == KT_CUDA_BF16 && yt == KT_CUDA_BF16) return ln_fwd_x16(c, (__nv_bfloat16 *)y, (const __nv_bfloat16 *)x, w, b, rows, C, eps);
    if (xt == KT_CUDA_BF16 && yt == KT_CUDA_F32) return ln_fwd_x16(c, (float *)y, (const __nv_bfloat16 *)x, w, b, rows, C, eps);
    if (xt == KT_CUDA_F16 && yt == KT_CUDA_F16) return ln_fwd_x16(c, (__half *)y, (const __half *)x, w, b, rows, C, eps);
    if (xt == KT_CUDA_F16 && yt == KT_CUDA_F32) return ln_fwd_x16(c, (float *)y, (const __half *)x, w, b, rows, C, eps);
    return kt_cu_errf(c, "layernorm: a 16-bit input writes its own type or f32");
}

extern "C" int kt_cuda_layernorm_bwd_x_x16(kt_cuda_ctx *c, float *dx, const float *dy, const uint16_t *x, kt_cuda_dtype xt, const float *w,
                                           int64_t rows, int64_t C, float eps) {
    if (xt == KT_CUDA_BF16)
        k_ln_bwd_x<float, __nv_bfloat16><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(dx, dy, (const __nv_bfloat16 *)x, w, rows,
                                                                                                 C, eps);
    else if (xt == KT_CUDA_F16)
        k_ln_bwd_x<float, __half><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(dx, dy, (const __half *)x, w, rows, C, eps);
    else return kt_cu_errf(c, "layernorm backward: the 16-bit input must be bf16 or f16");
    return kt_cu_launched(c, "layernorm backward (x, 16-bit input)");
}

extern "C" int kt_cuda_layernorm_bwd_wb_x16(kt_cuda_ctx *c, float *dwb, const float *dy, const uint16_t *x, kt_cuda_dtype xt, int64_t rows,
                                            int64_t C, float eps, void *scratch) {
    float *rs = (float *)scratch;
    double *part = (double *)((char *)scratch + kt_cu_align((size_t)(2 * rows) * sizeof(float)));
    if (xt == KT_CUDA_BF16)
        k_ln_stats<__nv_bfloat16><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(rs, (const __nv_bfloat16 *)x, rows, C, eps);
    else if (xt == KT_CUDA_F16)
        k_ln_stats<__half><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(rs, (const __half *)x, rows, C, eps);
    else return kt_cu_errf(c, "layernorm backward: the 16-bit input must be bf16 or f16");
    if (kt_cu_launched(c, "layernorm row statistics (16-bit input)")) return 1;
    return kt_cu_colred(c, xt == KT_CUDA_BF16 ? KT_CR_LNWB_BF16 : KT_CR_LNWB_F16, dy, (const float *)x, NULL, NULL, rs, rows, C, part, 1.0,
                        dwb, NULL);
}

/* ---- LayerNorm's backward in two passes (planner fusions KT_FUSE_LAYERNORM_BWD, KT_FUSE_OTHER_COLSUM) ----
 * Apart, the data gradient, the row statistics of the weight gradient, the weight gradient's column
 * sums and the column sum of dx (the bias gradient of the op before: the depthwise conv in ConvNeXt)
 * read x and dy three times and dx once more. Here a row pass reads x and dy for each row's four
 * statistics, and one column-reduction pass reads them again, writes dx and sums all three outputs:
 * 16 instead of 22 bytes per element with f32 dy and dx and a 16-bit x. The same bits as the separate
 * kernels (same row statistics, same dx rounding, same reduction order). */

extern "C" size_t kt_cuda_layernorm_bwd_fused_scratch(int64_t rows, int64_t C) {
    return kt_cu_align((size_t)(4 * rows) * sizeof(float)) + kt_cu_colred_scratch(KT_CR_LNB, rows, C);
}

template <typename TX, typename TD>
static void ln_bwd_rows(kt_cuda_ctx *c, float *rs, const void *dy, const void *x, const float *w, int64_t rows, int64_t C, float eps) {
    k_ln_bwd_rows<TX, TD><<<ln_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(rs, (const TD *)dy, (const TX *)x, w, rows, C, eps);
}

extern "C" int kt_cuda_layernorm_bwd_fused(kt_cuda_ctx *c, float *dx, const void *dy, kt_cuda_dtype dyt, const void *x, kt_cuda_dtype xt,
                                           const float *w, int64_t rows, int64_t C, float eps, float *dwb, float *dbias, void *scratch) {
    float *rs = (float *)scratch;
    double *part = (double *)((char *)scratch + kt_cu_align((size_t)(4 * rows) * sizeof(float)));
    if (xt != KT_CUDA_F32 && xt != KT_CUDA_BF16 && xt != KT_CUDA_F16) return kt_cu_errf(c, "layernorm backward: x must be f32, bf16 or f16");
    if (dyt != KT_CUDA_F32 && dyt != xt) return kt_cu_errf(c, "layernorm backward: a 16-bit dy needs x in the same type");
    if (xt == KT_CUDA_F32) ln_bwd_rows<float, float>(c, rs, dy, x, w, rows, C, eps);
    else if (xt == KT_CUDA_BF16 && dyt == KT_CUDA_F32) ln_bwd_rows<__nv_bfloat16, float>(c, rs, dy, x, w, rows, C, eps);
    else if (xt == KT_CUDA_BF16) ln_bwd_rows<__nv_bfloat16, __nv_bfloat16>(c, rs, dy, x, w, rows, C, eps);
    else if (dyt == KT_CUDA_F32) ln_bwd_rows<__half, float>(c, rs, dy, x, w, rows, C, eps);
    else ln_bwd_rows<__half, __half>(c, rs, dy, x, w, rows, C, eps);
    if (kt_cu_launched(c, "layernorm backward (row pass)")) return 1;
    return kt_cu_colred_ln_bwd(c, dx, dy, dyt, x, xt, w, rs, rows, C, part, dwb, dbias);
}

/* ---- BatchNorm: the double formulas of kernels/cpu/norm.c ---- */

typedef struct {
    double *part, *mean, *var, *sums; /* sums (2, C): sum dy, sum dy*xhat */
    float *scale, *shift;
} bn_scratch;

static bn_scratch bn_carve(void *scratch, int64_t rows, int64_t C) {
    bn_scratch s;
    char *p = (char *)scratch;
    size_t cd = kt_cu_align((size_t)C * sizeof(double)), cf = kt_cu_align((size_t)C * sizeof(float));
    s.part = (double *)p;
    p += kt_cu_colred_scratch(KT_CR_BNGRAD, rows, C);
    s.mean = (double *)p;
    s.var = (double *)(p + cd);
    s.sums = (double *)(p + 2 * cd);
    s.scale = (float *)(p + 4 * cd);
    s.shift = (float *)(p + 4 * cd + cf);
    return s;
}

extern "C" size_t kt_cuda_batchnorm_scratch(int64_t rows, int64_t C) {
    return kt_cu_colred_scratch(KT_CR_BNGRAD, rows, C) + 4 * kt_cu_align((size_t)C * sizeof(double)) +
           2 * kt_cu_align((size_t)C * sizeof(float));
}

/* Batch mean and biased variance per channel (double). */
static int batch_stats(kt_cuda_ctx *c, const float *x, int64_t rows, int64_t C, bn_scratch *s) {
    if (kt_cu_colred(c, KT_CR_SUM, x, NULL, NULL, NULL, NULL, rows, C, s->part, (double)rows, NULL, s->mean)) return 1;
    return kt_cu_colred(c, KT_CR_SQDEV, x, NULL, s->mean, NULL, NULL, rows, C, s->part, (double)rows, NULL, s->var);
}

__global__ void k_bn_running(float *rm, float *rv, const double *mean, const double *var, int64_t C, double mom, double unbias) {
    KT_CU_LOOP(c, C) {
        rm[c] = (float)((1.0 - mom) * rm[c] + mom * mean[c]);
        rv[c] = (float)((1.0 - mom) * rv[c] + mom * var[c] * unbias);
    }
}

/* training: mean/var from the batch (double); eval: the running statistics */
__global__ void k_bn_scale_shift(float *scale, float *shift, const double *mean, const double *var, const float *rm,
                                 const float *rv, const float *w, const float *b, int64_t C, float eps, int training) {
    KT_CU_LOOP(c, C) {
        double m = training ? mean[c] : (double)rm[c], v = training ? var[c] : (double)rv[c];
        double rs = 1.0 / sqrt(v + eps);
        scale[c] = (float)(rs * w[c]);
        shift[c] = (float)(b[c] - m * rs * w[c]);
    }
}

template <typename I> __global__ void k_bn_apply(float *y, const float *x, const float *scale, const float *shift, I n, I C) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I c = i % C;
        y[i] = x[i] * scale[c] + shift[c];
    }
}

extern "C" int kt_cuda_batchnorm_fwd(kt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, float *rm,
                                     float *rv, int64_t rows, int64_t C, float eps, float momentum, int training,
                                     void *scratch) {
    bn_scratch s = bn_carve(scratch, rows, C);
    unsigned cb = kt_cu_blocks(C, KT_CU_THREADS);
    if (training) {
        if (batch_stats(c, x, rows, C, &s)) return 1;
        double unbias = rows > 1 ? (double)rows / (double)(rows - 1) : 1.0;
        k_bn_running<<<cb, KT_CU_THREADS, 0, c->stream>>>(rm, rv, s.mean, s.var, C, (double)momentum, unbias);
        if (kt_cu_launched(c, "batchnorm running statistics")) return 1;
    }
    k_bn_scale_shift<<<cb, KT_CU_THREADS, 0, c->stream>>>(s.scale, s.shift, s.mean, s.var, rm, rv, w, b, C, eps, training);
    if (kt_cu_launched(c, "batchnorm scale and shift")) return 1;
    int64_t n = rows * C;
    if (n < ((int64_t)1 << 31))
        k_bn_apply<uint32_t><<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(y, x, s.scale, s.shift, (uint32_t)n,
                                                                                             (uint32_t)C);
    else
        k_bn_apply<int64_t><<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(y, x, s.scale, s.shift, n, C);
    return kt_cu_launched(c, "batchnorm");
}

/* mean (C) and rstd (C, in place of var) for backward: batch statistics or running ones */
__global__ void k_bn_rstd(double *mean, double *var, const float *rm, const float *rv, int64_t C, float eps, int training) {
    KT_CU_LOOP(c, C) {
        if (!training) {
            mean[c] = rm[c];
            var[c] = rv[c];
        }
        var[c] = 1.0 / sqrt(var[c] + eps);
    }
}

static int stats_for(kt_cuda_ctx *c, const float *x, const float *rm, const float *rv, int64_t rows, int64_t C, float eps,
                     int training, bn_scratch *s) {
    if (training && batch_stats(c, x, rows, C, s)) return 1;
    k_bn_rstd<<<kt_cu_blocks(C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(s->mean, s->var, rm, rv, C, eps, training);
    return kt_cu_launched(c, "batchnorm statistics");
}

__global__ void k_bn_bwd_x_eval(float *dx, const float *dy, const float *w, const float *rv, int64_t n, int64_t C, float eps) {
    KT_CU_LOOP(i, n) {
        int64_t c = i % C;
        float p = dy[i] * w[c];
        dx[i] = (float)(p / sqrt((double)rv[c] + eps));
    }
}

__global__ void k_bn_bwd_x(float *dx, const float *dy, const float *x, const float *w, const double *mean, const double *rstd,
                           const double *sums, int64_t n, int64_t C, double inv_n) {
    KT_CU_LOOP(i, n) {
        int64_t c = i % C;
        double xh = (x[i] - mean[c]) * rstd[c];
        dx[i] = (float)(w[c] * rstd[c] * (dy[i] - sums[c] * inv_n - xh * sums[C + c] * inv_n));
    }
}

extern "C" int kt_cuda_batchnorm_bwd_x(kt_cuda_ctx *c, float *dx, const float *dy, const float *x, const float *w,
                                       const float *rv, int64_t rows, int64_t C, float eps, int training, void *scratch) {
    int64_t n = rows * C;
    if (!training) {
        k_bn_bwd_x_eval<<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dx, dy, w, rv, n, C, eps);
        return kt_cu_launched(c, "batchnorm backward (x, eval)");
    }
    bn_scratch s = bn_carve(scratch, rows, C);
    if (stats_for(c, x, NULL, NULL, rows, C, eps, 1, &s)) return 1;
    if (kt_cu_colred(c, KT_CR_BNGRAD, dy, x, s.mean, s.var, NULL, rows, C, s.part, 1.0, NULL, s.sums)) return 1;
    k_bn_bwd_x<<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dx, dy, x, w, s.mean, s.var, s.sums, n, C,
                                                                                 1.0 / (double)rows);
    return kt_cu_launched(c, "batchnorm backward (x)");
}

__global__ void k_bn_wb_out(float *dwb, const double *sums, int64_t C) {
    KT_CU_LOOP(c, C) {
        dwb[c] = (float)sums[C + c]; /* row 0: dw = sum dy * xhat */
        dwb[C + c] = (float)sums[c]; /* row 1: db = sum dy */
    }
}

extern "C" int kt_cuda_batchnorm_bwd_wb(kt_cuda_ctx *c, float *dwb, const float *dy, const float *x, const float *rm,
                                        const float *rv, int64_t rows, int64_t C, float eps, int training, void *scratch) {
    bn_scratch s = bn_carve(scratch, rows, C);
    if (stats_for(c, x, rm, rv, rows, C, eps, training, &s)) return 1;
    if (kt_cu_colred(c, KT_CR_BNGRAD, dy, x, s.mean, s.var, NULL, rows, C, s.part, 1.0, NULL, s.sums)) return 1;
    k_bn_wb_out<<<kt_cu_blocks(C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dwb, s.sums, C);
    return kt_cu_launched(c, "batchnorm backward (weight, bias)");
}
