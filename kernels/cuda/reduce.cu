// Deterministic reductions. Column sums over rows of (rows, C) run in two stages: a grid of
// (32 channels x row block) tiles writes double partials, then one thread per output sums the
// blocks in block order. Full sums do the same over element blocks. Block counts depend on the
// problem size only, so every run (and every GPU) adds the same numbers in the same order.
#include <type_traits>

#include "kernels/cuda/kt_cuda_internal.cuh"

#define TY 8 /* row phases per column tile */

/* The activation-gradient modes: ACTBWD + act for an f32 input v, ACTBWD + 4 / + 5 for GELU with v
 * stored in bf16 / f16 (the pre-activation under autocast). */
#define CR_ACT(a) (KT_CR_ACTBWD + (int)(a))
#define CR_GELU_BF16 (KT_CR_ACTBWD + 4)
#define CR_GELU_F16 (KT_CR_ACTBWD + 5)
/* ... and GELU with dy (a) stored in the same 16-bit type as v: the gradient fc2's data-gradient GEMM
 * writes in 16 bits under autocast (engine/backend_cuda.c, stores_gelu_grad_in_16) */
#define CR_GELU_BF16_A16 (KT_CR_ACTBWD + 14)
#define CR_GELU_F16_A16 (KT_CR_ACTBWD + 15)
/* DOT with b stored in bf16 / f16 (a layer-scale input stored in 16 bits: the gamma gradient) */
#define CR_DOT_BF16 (KT_CR_ACTBWD + 6)
#define CR_DOT_F16 (KT_CR_ACTBWD + 7)
/* Layer scale's backward in one pass (kt_cuda_layer_scale_bwd): a = dy, rs = gamma (per column),
 * b = the scaled input (f32 / bf16 / f16): y = a gamma written, out0 = sum y (the bias gradient of
 * the op before), out1 = sum a b (gamma's gradient) */
#define CR_LS (KT_CR_ACTBWD + 8)
#define CR_LS_BF16 (KT_CR_ACTBWD + 9)
#define CR_LS_F16 (KT_CR_ACTBWD + 10)
__host__ __device__ constexpr int cr_is_ls(int mode) { return mode == CR_LS || mode == CR_LS_BF16 || mode == CR_LS_F16; }
__host__ __device__ constexpr int cr_is_lnb(int mode) {
    return mode == KT_CR_LNB || mode == KT_CR_LNB_BF16 || mode == KT_CR_LNB_F16 || mode == KT_CR_LNB_BF16_A16 || mode == KT_CR_LNB_F16_A16;
}
__host__ __device__ constexpr int cr_is_lnwb(int mode) { return mode == KT_CR_LNWB || mode == KT_CR_LNWB_BF16 || mode == KT_CR_LNWB_F16; }
__host__ __device__ constexpr int cr_is_act(int mode) {
    return (mode >= KT_CR_ACTBWD && mode <= CR_GELU_F16) || mode == CR_GELU_BF16_A16 || mode == CR_GELU_F16_A16;
}
__host__ __device__ constexpr int cr_is_dot(int mode) { return mode == KT_CR_DOT || mode == CR_DOT_BF16 || mode == CR_DOT_F16; }
/* b's storage type: bf16 / f16 for the 16-bit modes, else float */
__host__ __device__ constexpr int cr_b_bf16(int mode) {
    return mode == CR_GELU_BF16 || mode == CR_DOT_BF16 || mode == CR_LS_BF16 || mode == KT_CR_LNWB_BF16 || mode == KT_CR_LNB_BF16 ||
           mode == CR_GELU_BF16_A16 || mode == KT_CR_LNB_BF16_A16;
}
__host__ __device__ constexpr int cr_b_f16(int mode) {
    return mode == CR_GELU_F16 || mode == CR_DOT_F16 || mode == CR_LS_F16 || mode == KT_CR_LNWB_F16 || mode == KT_CR_LNB_F16 ||
           mode == CR_GELU_F16_A16 || mode == KT_CR_LNB_F16_A16;
}
template <int MODE> struct cr_v {
    typedef typename std::conditional<cr_b_bf16(MODE), __nv_bfloat16, typename std::conditional<cr_b_f16(MODE), __half, float>::type>::type T;
};
/* a's storage type: float but for the modes with a 16-bit dy */
template <int MODE> struct cr_a {
    typedef typename std::conditional<MODE == CR_GELU_BF16_A16 || MODE == KT_CR_LNB_BF16_A16, __nv_bfloat16,
                                      typename std::conditional<MODE == CR_GELU_F16_A16 || MODE == KT_CR_LNB_F16_A16, __half, float>::type>::type T;
};
__host__ __device__ constexpr int cr_nout(int mode) { return cr_is_lnb(mode) ? 3 : mode == KT_CR_BNGRAD || cr_is_lnwb(mode) || cr_is_ls(mode) ? 2 : 1; }
size_t kt_cu_colred_scratch(int mode, int64_t rows, int64_t C) {
    return kt_cu_align((size_t)(kt_cu_row_blocks(rows) * cr_nout(mode) * C) * sizeof(double));
}
__host__ __device__ constexpr int cr_act(int mode) { return mode - KT_CR_ACTBWD < 4 ? mode - KT_CR_ACTBWD : (int)KT_ACT_GELU; }

/* The gradient written by the ACTBWD and LS modes: f32, or rounded to 16 bits when only autocast
 * GEMMs read it (they would round it the same way) */
__device__ __forceinline__ void cr_put4(float *y, int64_t i4, const float *t) { ((float4 *)y)[i4] = make_float4(t[0], t[1], t[2], t[3]); }
template <typename H> __device__ __forceinline__ void cr_put4(H *y, int64_t i4, const float *t) {
    kt_cu_half4<H> o;
#pragma unroll
    for (int k = 0; k < 4; k++) kt_cu_put(o.v + k, t[k]);
    ((kt_cu_half4<H> *)y)[i4] = o;
}

/* Row r's contribution to output 0 / 1 of column c. */
template <int MODE, typename Y>
__device__ __forceinline__ void cr_term(const float *a, const float *b, const double *cm, const double *cr, const float *rs, const float *cw,
                                        Y *y, int64_t r, int64_t c, int64_t C, double *t0, double *t1, double *t2) {
    int64_t i = r * C + c;
    if (cr_is_lnb(MODE)) { /* as k_ln_bwd_x (dx), LNWB (t0, t1) and SUM over dx (t2) */
        float xv = kt_cu_widen(((const typename cr_v<MODE>::T *)b)[i]), m = rs[4 * r], sd = rs[4 * r + 1];
        float av = kt_cu_widen(((const typename cr_a<MODE>::T *)a)[i]);
        float dx = kt_cu_ln_dx(cw ? __fmul_rn(av, cw[c]) : av, xv, m, sd, rs[4 * r + 2], rs[4 * r + 3]);
        kt_cu_put(y + i, dx);
        *t0 = av * (xv - m) * sd;
        *t1 = av;
        *t2 = dx;
    } else if (cr_is_act(MODE)) { /* a = dy, b = the activation's input (output for sigmoid) */
        float t = kt_cu_act_b(cr_act(MODE), kt_cu_widen(((const typename cr_a<MODE>::T *)a)[i]), kt_cu_widen(((const typename cr_v<MODE>::T *)b)[i]));
        kt_cu_put(y + i, t);
        *t0 = t;
    } else if (cr_is_ls(MODE)) { /* as the unfused kernels: a gamma (f32 product), summed; a b (f32 product), summed */
        float t = a[i] * rs[c];
        kt_cu_put(y + i, t);
        *t0 = t;
        *t1 = a[i] * kt_cu_widen(((const typename cr_v<MODE>::T *)b)[i]);
    } else if (MODE == KT_CR_SUM) {
        *t0 = a[i];
    } else if (cr_is_dot(MODE)) {
        *t0 = a[i] * kt_cu_widen(((const typename cr_v<MODE>::T *)b)[i]); /* float product, as the CPU's p += dy * a */
    } else if (MODE == KT_CR_SQDEV) {
        double d = (double)a[i] - cm[c];
        *t0 = d * d;
    } else if (MODE == KT_CR_BNGRAD) { /* a = dy, b = x */
        double d = a[i];
        *t0 = d;
        *t1 = d * ((double)b[i] - cm[c]) * cr[c];
    } else { /* KT_CR_LNWB (x f32 or, LNWB_BF16/F16, 16-bit): a = dy, b = x, rs = (rows, 2) float mean, rstd */
        *t0 = a[i] * (kt_cu_widen(((const typename cr_v<MODE>::T *)b)[i]) - rs[2 * r]) * rs[2 * r + 1]; /* the CPU's order */
        *t1 = a[i];
    }
}

template <int MODE, typename Y>
__global__ void k_colred(const float *a, const float *b, const double *cm, const double *cr, const float *rs, const float *cw, Y *y,
                         int64_t rows, int64_t C, int64_t nb, double *part) {
    constexpr int nout = cr_nout(MODE);
    __shared__ double s0[TY][33], s1[TY][33], s2[nout > 2 ? TY : 1][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t c = blockIdx.x * 32 + tx, blk = blockIdx.y;
    int64_t r0 = rows * blk / nb, r1 = rows * (blk + 1) / nb;
    double acc0 = 0, acc1 = 0, acc2 = 0;
    if (c < C)
        for (int64_t r = r0 + ty; r < r1; r += TY) {
            double t0 = 0, t1 = 0, t2 = 0;
            cr_term<MODE, Y>(a, b, cm, cr, rs, cw, y, r, c, C, &t0, &t1, &t2);
            acc0 += t0;
            acc1 += t1;
            acc2 += t2;
        }
    s0[ty][tx] = acc0;
    s1[ty][tx] = acc1;
    if (nout > 2) s2[ty][tx] = acc2;
    __syncthreads();
    if (ty == 0 && c < C) {
        double t0 = 0, t1 = 0, t2 = 0;
        for (int k = 0; k < TY; k++) {
            t0 += s0[k][tx];
            t1 += s1[k][tx];
            if (nout > 2) t2 += s2[k][tx];
        }
        part[(blk * nout) * C + c] = t0;
        if (nout > 1) part[(blk * nout + 1) * C + c] = t1;
        if (nout > 2) part[(blk * nout + 2) * C + c] = t2;
    }
}

/* The same partials four columns at a time: float4 loads (16 B per thread, 512 B per warp row) and
 * four independent accumulators keep several loads in flight, where the scalar kernel above ran at
 * ~20% of the copy bandwidth on an H200 (bench/gpu: column sum, LayerNorm w,b). Taken for the
 * modes ConvNeXt's backward uses when C % 4 == 0 and the rows are 16-byte aligned; each column still
 * sums its rows in the scalar kernel's order (row phase ty, then the TY phases in order). */
template <int MODE, typename Y>
__global__ void k_colred4(const float *a, const float *b, const float *rs, const float *cw, Y *y, int64_t rows, int64_t C, int64_t nb,
                          double *part) {
    constexpr int nout = cr_nout(MODE);
    __shared__ double s0[TY][129], s1[TY][129], s2[nout > 2 ? TY : 1][129];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t C4 = C / 4, c4 = (int64_t)blockIdx.x * 32 + tx, blk = blockIdx.y;
    int64_t r0 = rows * blk / nb, r1 = rows * (blk + 1) / nb;
    double p0[4] = {0, 0, 0, 0}, p1[4] = {0, 0, 0, 0}, p2[4] = {0, 0, 0, 0};
    float gw[4] = {1, 1, 1, 1}; /* LNB: the column's LayerNorm weights */
    if (cr_is_lnb(MODE) && cw && c4 < C4) {
        float4 v = ((const float4 *)cw)[c4];
        gw[0] = v.x, gw[1] = v.y, gw[2] = v.z, gw[3] = v.w;
    }
    if (c4 < C4) {
#pragma unroll 4
        for (int64_t r = r0 + ty; r < r1; r += TY) {
            float4 u = kt_cu_load4((const typename cr_a<MODE>::T *)a + r * C, c4); /* f32 a unless a 16-bit dy mode */
            float t[4] = {u.x, u.y, u.z, u.w};
            if (MODE == KT_CR_SUM) {
#pragma unroll
                for (int k = 0; k < 4; k++) p0[k] += t[k];
            } else {
                float4 v = kt_cu_load4((const typename cr_v<MODE>::T *)b + r * C, c4); /* f32 b unless a 16-bit mode */
                float w[4] = {v.x, v.y, v.z, v.w};
                if (cr_is_act(MODE)) { /* as cr_term: the activation gradient, written and summed */
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        t[k] = kt_cu_act_b(cr_act(MODE), t[k], w[k]);
                        p0[k] += t[k];
                    }
                    cr_put4(y + r * C, c4, t);
                } else if (cr_is_dot(MODE)) {
#pragma unroll
                    for (int k = 0; k < 4; k++) p0[k] += t[k] * w[k]; /* float product, as the scalar kernel */
                } else if (cr_is_ls(MODE)) { /* as cr_term */
                    float4 gv = ((const float4 *)rs)[c4];
                    float gg[4] = {gv.x, gv.y, gv.z, gv.w}, ys[4];
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        ys[k] = t[k] * gg[k];
                        p0[k] += ys[k];
                        p1[k] += t[k] * w[k];
                    }
                    cr_put4(y + r * C, c4, ys);
                } else if (cr_is_lnb(MODE)) { /* as cr_term */
                    float4 st = ((const float4 *)rs)[r];
                    float dx[4];
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        dx[k] = kt_cu_ln_dx(cw ? __fmul_rn(t[k], gw[k]) : t[k], w[k], st.x, st.y, st.z, st.w);
                        p0[k] += t[k] * (w[k] - st.x) * st.y;
                        p1[k] += t[k];
                        p2[k] += dx[k];
                    }
                    cr_put4(y + r * C, c4, dx);
                } else { /* KT_CR_LNWB: a = dy, b = x */
                    float m = rs[2 * r], sd = rs[2 * r + 1];
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        p0[k] += t[k] * (w[k] - m) * sd;
                        p1[k] += t[k];
                    }
                }
            }
        }
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
        s0[ty][tx * 4 + k] = p0[k];
        s1[ty][tx * 4 + k] = p1[k];
        if (nout > 2) s2[ty][tx * 4 + k] = p2[k];
    }
    __syncthreads();
    if (ty == 0 && c4 < C4) {
        for (int k = 0; k < 4; k++) {
            double t0 = 0, t1 = 0, t2 = 0;
            for (int j = 0; j < TY; j++) {
                t0 += s0[j][tx * 4 + k];
                t1 += s1[j][tx * 4 + k];
                if (nout > 2) t2 += s2[j][tx * 4 + k];
            }
            part[(blk * nout) * C + c4 * 4 + k] = t0;
            if (nout > 1) part[(blk * nout + 1) * C + c4 * 4 + k] = t1;
            if (nout > 2) part[(blk * nout + 2) * C + c4 * 4 + k] = t2;
        }
    }
}

static int al16(const void *p) { return !p || ((uintptr_t)p & 15) == 0; }

/* One warp per output: lane l sums blocks l, l + 32, ... in order, then a fixed shuffle tree (the
 * order depends on nb only: deterministic). A thread per output summing all nb blocks in a chain was
 * latency-bound: with C = 96 that was 96 threads, each waiting on 1024 loads in turn (bench/gpu). */
__global__ void k_colred_final(const double *part, int64_t nb, int nout, int64_t C, double div, float *outf, float *outf1, float *outf2,
                               double *outd) {
    int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32, warps = (int64_t)gridDim.x * blockDim.x / 32;
    int lane = threadIdx.x & 31;
    for (int64_t i = warp; i < nout * C; i += warps) { /* the whole warp takes the same i */
        int64_t k = i / C, c = i % C;
        double s = 0;
        for (int64_t b = lane; b < nb; b += 32) s += part[(b * nout + k) * C + c];
        s = kt_cu_warp_sum_d(s) / div;
        if (lane == 0) {
            float *of = k == 2 ? outf2 : k ? outf1 : outf; /* outputs 1, 2: their own buffers (outf + C when contiguous) */
            if (of) of[c] = (float)s;
            if (outd) outd[i] = s;
        }
    }
}

/* modes with a 4-wide kernel (the ones ConvNeXt's backward uses) */
__host__ __device__ constexpr int cr_has_vec(int mode) {
    return mode == KT_CR_SUM || cr_is_lnwb(mode) || cr_is_dot(mode) || cr_is_act(mode) || cr_is_ls(mode) || cr_is_lnb(mode);
}

/* the 4-wide kernel when the mode has one and the data allow (vec), else the scalar one */
template <int MODE, typename Y = float>
static void colred_launch(kt_cuda_ctx *c, int vec, int64_t nb, const float *a, const float *b, const double *cm, const double *cr,
                          const float *rs, const float *cw, Y *y, int64_t rows, int64_t C, double *part) {
    dim3 block(32, TY);
    if constexpr (cr_has_vec(MODE)) {
        if (vec) {
            dim3 grid4((unsigned)((C / 4 + 31) / 32), (unsigned)nb);
            k_colred4<MODE, Y><<<grid4, block, 0, c->stream>>>(a, b, rs, cw, y, rows, C, nb, part);
            return;
        }
    }
    dim3 grid((unsigned)((C + 31) / 32), (unsigned)nb);
    k_colred<MODE, Y><<<grid, block, 0, c->stream>>>(a, b, cm, cr, rs, cw, y, rows, C, nb, part);
}

/* kt_cu_colred, and for the KT_CR_ACTBWD + act and LS modes the gradient written to y in yt (f32, or
 * for GELU and layer scale bf16/f16) */
static int colred_run(kt_cuda_ctx *c, int mode, const float *a, const float *b, const double *cm, const double *cr, const float *rs,
                      const float *cw, void *yv, kt_cuda_dtype yt, int64_t rows, int64_t C, double *part, double div, float *outf, float *outf1,
                      float *outf2, double *outd) {
    int64_t nb = kt_cu_row_blocks(rows);
    int vec = C % 4 == 0 && al16(a) && al16(b) && al16(yv) && al16(cw) && (cr_is_ls(mode) || cr_is_lnb(mode) ? al16(rs) : ((uintptr_t)rs & 7) == 0) &&
              cr_has_vec(mode);
    float *y = (float *)yv;
    if (yt != KT_CUDA_F32) {
        if (mode != CR_ACT(KT_ACT_GELU) && mode != CR_GELU_BF16 && mode != CR_GELU_F16 && mode != CR_GELU_BF16_A16 && mode != CR_GELU_F16_A16 &&
            !cr_is_ls(mode))
            return kt_cu_errf(c, "activation backward: a 16-bit output is supported for GELU only");
        if (yt != KT_CUDA_BF16 && yt != KT_CUDA_F16) return kt_cu_errf(c, "column reduction: the written gradient must be f32, bf16 or f16");
    }
#define L(M) colred_launch<M>(c, vec, nb, a, b, cm, cr, rs, cw, y, rows, C, part)
/* the written gradient (GELU's, layer scale's) in f32 or 16 bits */
#define LG(M)                                                                                                   \
    (yt == KT_CUDA_BF16  ? colred_launch<M, __nv_bfloat16>(c, vec, nb, a, b, cm, cr, rs, cw, (__nv_bfloat16 *)yv, rows, C, part) \
     : yt == KT_CUDA_F16 ? colred_launch<M, __half>(c, vec, nb, a, b, cm, cr, rs, cw, (__half *)yv, rows, C, part)               \
                         : L(M))
    switch (mode) {
    case KT_CR_SUM: L(KT_CR_SUM); break;
    case KT_CR_DOT: L(KT_CR_DOT); break;
    case KT_CR_SQDEV: L(KT_CR_SQDEV); break;
    case KT_CR_BNGRAD: L(KT_CR_BNGRAD); break;
    case KT_CR_LNWB: L(KT_CR_LNWB); break;
    case KT_CR_LNWB_BF16: L(KT_CR_LNWB_BF16); break;
    case KT_CR_LNWB_F16: L(KT_CR_LNWB_F16); break;
    case CR_ACT(KT_ACT_GELU): LG(CR_ACT(KT_ACT_GELU)); break;
    case CR_ACT(KT_ACT_RELU): L(CR_ACT(KT_ACT_RELU)); break;
    case CR_ACT(KT_ACT_SILU): L(CR_ACT(KT_ACT_SILU)); break;
    case CR_ACT(KT_ACT_SIGMOID): L(CR_ACT(KT_ACT_SIGMOID)); break;
    case CR_GELU_BF16: LG(CR_GELU_BF16); break;
    case CR_GELU_F16: LG(CR_GELU_F16); break;
    case CR_GELU_BF16_A16: LG(CR_GELU_BF16_A16); break;
    case CR_GELU_F16_A16: LG(CR_GELU_F16_A16); break;
    case CR_DOT_BF16: L(CR_DOT_BF16); break;
    case CR_LS: LG(CR_LS); break;
    case CR_LS_BF16: LG(CR_LS_BF16); break;
    case CR_LS_F16: LG(CR_LS_F16); break;
    case KT_CR_LNB: L(KT_CR_LNB); break;
    case KT_CR_LNB_BF16: L(KT_CR_LNB_BF16); break;
    case KT_CR_LNB_F16: L(KT_CR_LNB_F16); break;
    case KT_CR_LNB_BF16_A16: L(KT_CR_LNB_BF16_A16); break;
    case KT_CR_LNB_F16_A16: L(KT_CR_LNB_F16_A16); break;
    default: L(CR_DOT_F16); break;
    }
#undef L
#undef LG
    if (kt_cu_launched(c, "column reduction (partials)")) return 1;
    int nout = cr_nout(mode);
    k_colred_final<<<kt_cu_blocks(nout * C * 32, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(part, nb, nout, C, div, outf, outf1, outf2,
                                                                                                 outd);
    return kt_cu_launched(c, "column reduction (final)");
}

int kt_cu_colred(kt_cuda_ctx *c, int mode, const float *a, const float *b, const double *cm, const double *cr, const float *rs,
                 int64_t rows, int64_t C, double *part, double div, float *outf, double *outd) {
    return colred_run(c, mode, a, b, cm, cr, rs, NULL, NULL, KT_CUDA_F32, rows, C, part, div, outf, outf ? outf + C : NULL, NULL, outd);
}

int kt_cu_colred_ln_bwd(kt_cuda_ctx *c, float *dx, const void *dy, kt_cuda_dtype dyt, const void *x, kt_cuda_dtype xt, const float *w,
                        const float *rs, int64_t rows, int64_t C, double *part, float *dwb, float *dbias) {
    int mode = xt == KT_CUDA_BF16 ? KT_CR_LNB_BF16 : xt == KT_CUDA_F16 ? KT_CR_LNB_F16 : KT_CR_LNB;
    if (dyt != KT_CUDA_F32) {
        if (dyt != xt) return kt_cu_errf(c, "layernorm backward: a 16-bit dy needs x in the same type");
        mode = xt == KT_CUDA_BF16 ? KT_CR_LNB_BF16_A16 : KT_CR_LNB_F16_A16;
    }
    return colred_run(c, mode, (const float *)dy, (const float *)x, NULL, NULL, rs, w, dx, KT_CUDA_F32, rows, C, part, 1.0, dwb, dwb ? dwb + C : NULL, dbias,
                      NULL);
}

extern "C" size_t kt_cuda_reduce_rows_scratch(int64_t rows, int64_t C) { return kt_cu_colred_scratch(KT_CR_SUM, rows, C); }

extern "C" int kt_cuda_reduce_rows(kt_cuda_ctx *c, float *out, const float *x, int64_t rows, int64_t C, void *scratch) {
    return kt_cu_colred(c, KT_CR_SUM, x, NULL, NULL, NULL, NULL, rows, C, (double *)scratch, 1.0, out, NULL);
}

/* The activation gradient and the bias gradient summed from it, one read of dy and v: unfused, the
 * column sum read the whole activation gradient back (the 4C-wide hidden tensor in ConvNeXt). */
extern "C" int kt_cuda_act_bwd_colsum(kt_cuda_ctx *c, kt_act a, void *dx, kt_cuda_dtype dxt, const void *dy, kt_cuda_dtype dyt, const void *v,
                                      kt_cuda_dtype vt, int64_t rows, int64_t C, float *db, void *scratch) {
    int mode = CR_ACT(a);
    if (vt != KT_CUDA_F32) {
        if (a != KT_ACT_GELU) return kt_cu_errf(c, "activation backward: a 16-bit input is supported for GELU only");
        mode = vt == KT_CUDA_BF16 ? CR_GELU_BF16 : CR_GELU_F16;
    }
    if (dyt != KT_CUDA_F32) {
        if (dyt != vt) return kt_cu_errf(c, "activation backward: a 16-bit gradient needs GELU's input stored in the same type");
        mode = vt == KT_CUDA_BF16 ? CR_GELU_BF16_A16 : CR_GELU_F16_A16;
    }
    return colred_run(c, mode, (const float *)dy, (const float *)v, NULL, NULL, NULL, NULL, dx, dxt, rows, C, (double *)scratch, 1.0, db, NULL,
                      NULL, NULL);
}

extern "C" int kt_cuda_mul_bcast_bwd_a16(kt_cuda_ctx *c, float *out, const float *dy, const uint16_t *a, kt_cuda_dtype at, int64_t rows,
                                         int64_t C, void *scratch) {
    if (at != KT_CUDA_BF16 && at != KT_CUDA_F16) return kt_cu_errf(c, "layer-scale gradient: the 16-bit input must be bf16 or f16");
    return colred_run(c, at == KT_CUDA_BF16 ? CR_DOT_BF16 : CR_DOT_F16, dy, (const float *)a, NULL, NULL, NULL, NULL, NULL, KT_CUDA_F32, rows,
                      C, (double *)scratch, 1.0, out, NULL, NULL, NULL);
}

extern "C" int kt_cuda_mul_bcast_bwd(kt_cuda_ctx *c, float *out, const float *dy, const float *a, int64_t rows, int64_t C,
                                     void *scratch) {
    return kt_cu_colred(c, KT_CR_DOT, dy, a, NULL, NULL, NULL, rows, C, (double *)scratch, 1.0, out, NULL);
}

/* ---- full sums ---- */

enum { FS_SUM, FS_SUMSQ, FS_BCE };

static int64_t sum_blocks(int64_t n) {
    int64_t b = (n + 2047) / 2048;
    return b < 1 ? 1 : (b > KT_CU_SUM_BLOCKS ? KT_CU_SUM_BLOCKS : b);
}

template <int MODE> __device__ __forceinline__ double fs_term(const float *a, const float *b, int64_t i) {
    if (MODE == FS_SUM) return a[i];
    if (MODE == FS_SUMSQ) return (double)a[i] * a[i];
    double x = a[i], t = b[i]; /* BCE with logits, as kernels/cpu/loss.c */
    return (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
}

template <int MODE> __global__ void k_sum_partial(const float *a, const float *b, int64_t n, int64_t nb, double *part) {
    __shared__ double sh[KT_CU_THREADS];
    int t = threadIdx.x;
    int64_t blk = blockIdx.x, i0 = n * blk / nb, i1 = n * (blk + 1) / nb;
    double acc = 0;
    for (int64_t i = i0 + t; i < i1; i += KT_CU_THREADS) acc += fs_term<MODE>(a, b, i);
    sh[t] = acc;
    __syncthreads();
    for (int s = KT_CU_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    if (t == 0) part[blk] = sh[0];
}

/* one thread: out = sum * mul, or sum / div when div != 0 */
__global__ void k_sum_final(const double *part, int64_t nb, double mul, double div, float *outf, double *outd) {
    if (blockIdx.x || threadIdx.x) return;
    double s = 0;
    for (int64_t b = 0; b < nb; b++) s += part[b];
    s = div != 0 ? s / div : s * mul;
    if (outf) outf[0] = (float)s;
    if (outd) outd[0] = s;
}

static int full_sum(kt_cuda_ctx *c, int mode, const float *a, const float *b, int64_t n, double *part, double mul, double div,
                    float *outf, double *outd) {
    int64_t nb = sum_blocks(n);
    if (mode == FS_SUM) k_sum_partial<FS_SUM><<<(unsigned)nb, KT_CU_THREADS, 0, c->stream>>>(a, b, n, nb, part);
    else if (mode == FS_SUMSQ) k_sum_partial<FS_SUMSQ><<<(unsigned)nb, KT_CU_THREADS, 0, c->stream>>>(a, b, n, nb, part);
    else k_sum_partial<FS_BCE><<<(unsigned)nb, KT_CU_THREADS, 0, c->stream>>>(a, b, n, nb, part);
    if (kt_cu_launched(c, "sum (partials)")) return 1;
    k_sum_final<<<1, 1, 0, c->stream>>>(part, nb, mul, div, outf, outd);
    return kt_cu_launched(c, "sum (final)");
}

extern "C" size_t kt_cuda_sum_scratch(int64_t n) { return kt_cu_align((size_t)sum_blocks(n) * sizeof(double)); }

extern "C" int kt_cuda_sum(kt_cuda_ctx *c, float *out, const float *x, int64_t n, float scale, void *scratch) {
    return full_sum(c, FS_SUM, x, NULL, n, (double *)scratch, (double)scale, 0.0, out, NULL);
}

extern "C" int kt_cuda_sumsq(kt_cuda_ctx *c, const float *x, int64_t n, double *host_out) {
    *host_out = 0;
    if (full_sum(c, FS_SUMSQ, x, NULL, n, c->red, 1.0, 0.0, NULL, c->red + KT_CU_SUM_BLOCKS)) return 1;
    return kt_cu_check(c, cudaMemcpy(host_out, c->red + KT_CU_SUM_BLOCKS, sizeof(double), cudaMemcpyDeviceToHost),
                       "reading the sum of squares");
}

int kt_cu_bce_sum(kt_cuda_ctx *c, float *loss, const float *logits, const float *targets, int64_t n, double *part) {
    return full_sum(c, FS_BCE, logits, targets, n, part, 1.0, (double)n, loss, NULL);
}

/* ---- global average pooling ---- */

__global__ void k_gap_fwd(const float *x, float *y, int64_t N, int64_t HW, int64_t C, float inv) {
    KT_CU_LOOP(i, N * C) {
        int64_t n = i / C, c = i % C;
        const float *xr = x + n * HW * C + c;
        float s = 0;
        for (int64_t p = 0; p < HW; p++) s += xr[p * C];
        y[i] = s * inv;
    }
}

__global__ void k_gap_bwd(const float *dy, float *dx, int64_t N, int64_t HW, int64_t C, float inv) {
    KT_CU_LOOP(i, N * HW * C) {
        int64_t n = i / (HW * C), c = i % C;
        dx[i] = dy[n * C + c] * inv;
    }
}

extern "C" int kt_cuda_gap_fwd(kt_cuda_ctx *c, const float *x, float *y, int64_t N, int64_t HW, int64_t C) {
    k_gap_fwd<<<kt_cu_blocks(N * C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(x, y, N, HW, C, 1.0f / (float)HW);
    return kt_cu_launched(c, "global average pool");
}

extern "C" int kt_cuda_gap_bwd(kt_cuda_ctx *c, const float *dy, float *dx, int64_t N, int64_t HW, int64_t C) {
    k_gap_bwd<<<kt_cu_blocks(N * HW * C, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dy, dx, N, HW, C, 1.0f / (float)HW);
    return kt_cu_launched(c, "global average pool backward");
}

extern "C" size_t kt_cuda_layer_scale_bwd_scratch(int64_t rows, int64_t C) { return kt_cu_colred_scratch(CR_LS, rows, C); }

/* Layer scale's backward (out = a * gamma) in one pass: da = dy gamma (f32, or rounded to bf16/f16
 * when only autocast GEMMs read it), the bias gradient of the op before (sum of da over rows) and
 * gamma's gradient (sum of dy a), each output optional; the same bits as kt_cuda_mul_bcast,
 * kt_cuda_reduce_rows and kt_cuda_mul_bcast_bwd(_a16) apart, which read dy three times. */
extern "C" int kt_cuda_layer_scale_bwd(kt_cuda_ctx *c, void *da, kt_cuda_dtype dat, const float *dy, const float *gamma, const void *a,
                                       kt_cuda_dtype at, int64_t rows, int64_t C, float *dbias, float *dgamma, void *scratch) {
    int mode = at == KT_CUDA_BF16 ? CR_LS_BF16 : at == KT_CUDA_F16 ? CR_LS_F16 : CR_LS;
    if (!a && dgamma) return kt_cu_errf(c, "layer-scale backward: gamma's gradient needs the scaled input");
    if (!a) mode = CR_LS, a = dy; /* no gamma gradient wanted: its sum runs over dy and is not written */
    return colred_run(c, mode, dy, (const float *)a, NULL, NULL, gamma, NULL, da, dat, rows, C, (double *)scratch, 1.0, dbias, dgamma, NULL,
                      NULL);
}
