// Patch convolutions (kernel == stride, no padding, one group: ConvNeXt's 2x2/2 downsampling layers
// and its 4x4/4 stem, which the CUDA backend leaves to cuDNN: engine/backend_cuda.c says why) as
// tensor-core GEMMs under autocast. Each output pixel reads its own
// kh x kw x Ci patch and nothing else, so the convolution is y (M, Co) = P (M, K) W'^T with
// M = N*Ho*Wo, K = kh*kw*Ci, P the patches in (ky, kx, ci) order and W' the weight in that order:
// a 16-bit gather of x (the rounding autocast does anyway) turns it into one cuBLAS call, as
// PyTorch's autocast runs these convolutions in bf16. Before, they went through cuDNN in TF32: by
// run 5's per-op profile about 1 ms of each of the three passes of the convnext_base bf16 step, far
// below the tensor cores' rate for their ~40 GFLOP a pass (an estimate: the profile lumps them with
// the depthwise convolutions).
#include "kernels/cuda/kt_cuda_internal.cuh"

extern "C" int kt_cuda_conv_is_patch(const kt_conv_shape *s) {
    return s->groups == 1 && s->kh == s->sh && s->kw == s->sw && s->ph == 0 && s->pw == 0;
}

static int64_t rows_of(const kt_conv_shape *s) { return s->N * s->Ho * s->Wo; }
static int64_t patch_len(const kt_conv_shape *s) { return s->kh * s->kw * s->Ci; }

/* P (M, K) from x (N, H, W, Ci): a warp per output pixel. Within kernel row ky the patch's
 * kw*Ci values are contiguous in x (kw == sw), so lanes read and write runs of consecutive values. */
template <typename X, typename P> __global__ void k_patch_gather(kt_conv_shape s, const X *x, P *p) {
    int64_t K = s.kh * s.kw * s.Ci, L = s.kw * s.Ci, M = s.N * s.Ho * s.Wo, rowpitch = s.W * s.Ci;
    int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5, warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    int lane = threadIdx.x & 31;
    for (int64_t m = warp; m < M; m += warps) {
        int64_t ox = m % s.Wo, t = m / s.Wo, oy = t % s.Ho, n = t / s.Ho;
        const X *src = x + ((n * s.H + oy * s.sh) * s.W + ox * s.sw) * s.Ci;
        P *dst = p + m * K;
        for (int64_t k = lane; k < K; k += 32) {
            int64_t ky = k / L;
            kt_cu_put(dst + k, kt_cu_widen(src[ky * rowpitch + (k - ky * L)]));
        }
    }
}

/* dx (N, H, W, Ci) from dP (M, K): a warp per input pixel; pixels no patch covers (the rows and
 * columns past the last whole patch) get 0 */
__global__ void k_patch_scatter(kt_conv_shape s, const float *dp, float *dx) {
    int64_t K = s.kh * s.kw * s.Ci, pixels = s.N * s.H * s.W;
    int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5, warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    int lane = threadIdx.x & 31;
    for (int64_t q = warp; q < pixels; q += warps) {
        int64_t ix = q % s.W, t = q / s.W, iy = t % s.H, n = t / s.H;
        int64_t oy = iy / s.sh, ox = ix / s.sw;
        float *dst = dx + q * s.Ci;
        if (oy < s.Ho && ox < s.Wo) {
            const float *src = dp + ((n * s.Ho + oy) * s.Wo + ox) * K + ((iy - oy * s.sh) * s.kw + (ix - ox * s.sw)) * s.Ci;
            for (int64_t c = lane; c < s.Ci; c += 32) dst[c] = src[c];
        } else {
            for (int64_t c = lane; c < s.Ci; c += 32) dst[c] = 0.0f;
        }
    }
}

/* dst (Co, B, A) = src (Co, A, B) converted: the weight (Co, Ci, kh*kw) into patch order (Co, kh*kw,
 * Ci), and the patch-order weight gradient back */
template <typename I, typename O> __global__ void k_patch_weight(O *dst, const I *src, int64_t Co, int64_t A, int64_t B) {
    KT_CU_LOOP(i, Co * A * B) {
        int64_t a = i % A, t = i / A, b = t % B, co = t / B;
        kt_cu_put(dst + i, kt_cu_widen(src[(co * A + a) * B + b]));
    }
}

static unsigned warp_blocks(int64_t warps) { return kt_cu_blocks(warps * 32, KT_CU_THREADS); }

template <typename X, typename P> static int gather_t(kt_cuda_ctx *c, const kt_conv_shape *s, const X *x, P *p) {
    k_patch_gather<X, P><<<warp_blocks(rows_of(s)), KT_CU_THREADS, 0, c->stream>>>(*s, x, p);
    return kt_cu_launched(c, "patch convolution (gather)");
}

template <typename P> static int gather_to(kt_cuda_ctx *c, const kt_conv_shape *s, const void *x, kt_cuda_dtype xt, P *p) {
    if (xt == KT_CUDA_BF16) return gather_t(c, s, (const __nv_bfloat16 *)x, p);
    if (xt == KT_CUDA_F16) return gather_t(c, s, (const __half *)x, p);
    return gather_t(c, s, (const float *)x, p);
}

static int not_patch(kt_cuda_ctx *c, const kt_conv_shape *s) {
    return kt_cu_errf(c, "patch convolution: kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld, groups %lld is not one", (long long)s->kh,
                      (long long)s->kw, (long long)s->sh, (long long)s->sw, (long long)s->ph, (long long)s->pw, (long long)s->groups);
}

extern "C" int kt_cuda_patch_gather(kt_cuda_ctx *c, const kt_conv_shape *s, const void *x, kt_cuda_dtype xt, void *p, kt_cuda_dtype pt) {
    if (!kt_cuda_conv_is_patch(s)) return not_patch(c, s);
    if (pt == KT_CUDA_BF16) return gather_to(c, s, x, xt, (__nv_bfloat16 *)p);
    if (pt == KT_CUDA_F16) return gather_to(c, s, x, xt, (__half *)p);
    return gather_to(c, s, x, xt, (float *)p);
}

/* the weight (Co, Ci, kh, kw) in patch order, in t */
static int weight_to(kt_cuda_ctx *c, const kt_conv_shape *s, const float *w, void *wp, kt_cuda_dtype t) {
    int64_t n = s->Co * patch_len(s), khw = s->kh * s->kw;
    unsigned g = kt_cu_blocks(n, KT_CU_THREADS);
    if (t == KT_CUDA_BF16) k_patch_weight<<<g, KT_CU_THREADS, 0, c->stream>>>((__nv_bfloat16 *)wp, w, s->Co, s->Ci, khw);
    else if (t == KT_CUDA_F16) k_patch_weight<<<g, KT_CU_THREADS, 0, c->stream>>>((__half *)wp, w, s->Co, s->Ci, khw);
    else k_patch_weight<<<g, KT_CU_THREADS, 0, c->stream>>>((float *)wp, w, s->Co, s->Ci, khw);
    return kt_cu_launched(c, "patch convolution (weight order)");
}

static size_t esize(kt_cuda_dtype t) { return t == KT_CUDA_F32 ? 4 : 2; }

/* dy's 16-bit copy in the backward scratch (none in f32: the GEMM reads dy itself) */
static size_t dy_bytes(const kt_conv_shape *s, kt_cuda_dtype t) {
    return t == KT_CUDA_F32 ? 0 : kt_cu_align((size_t)(rows_of(s) * s->Co) * esize(t));
}

/* Sub-buffers of the scratch block: [first: M x (K or Co) in t][second][f32 result] */
extern "C" size_t kt_cuda_patch_conv_scratch(const kt_conv_shape *s, int kind, kt_cuda_dtype t) {
    size_t e = esize(t), M = (size_t)rows_of(s), K = (size_t)patch_len(s), Co = (size_t)s->Co;
    if (kind == 0) return kt_cu_align(M * K * e) + Co * K * e;                                   /* P, W' */
    if (kind == 1) return dy_bytes(s, t) + kt_cu_align(Co * K * e) + M * K * sizeof(float);    /* dy, W', dP */
    return dy_bytes(s, t) + kt_cu_align(M * K * e) + Co * K * sizeof(float);                   /* dy, P, dW' */
}

/* dy as the GEMM's operand in t: rounded into d16, or dy itself in f32 */
static int dy_in(kt_cuda_ctx *c, const float *dy, void *d16, int64_t n, kt_cuda_dtype t, const void **op) {
    *op = t == KT_CUDA_F32 ? (const void *)dy : d16;
    if (t == KT_CUDA_BF16) return kt_cuda_f32_to_bf16(c, (uint16_t *)d16, dy, n);
    if (t == KT_CUDA_F16) return kt_cuda_f32_to_f16(c, (uint16_t *)d16, dy, n);
    return 0;
}

extern "C" int kt_cuda_patch_conv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const void *x, kt_cuda_dtype xt, const float *w, const float *b,
                                      float *y, kt_cuda_dtype t, void *scratch) {
    int64_t M = rows_of(s), K = patch_len(s);
    char *p = (char *)scratch, *wp = p + kt_cu_align((size_t)(M * K) * esize(t));
    if (kt_cuda_patch_gather(c, s, x, xt, p, t) || weight_to(c, s, w, wp, t)) return 1;
    if (b) { /* the bias in cuBLASLt's epilogue, else a row fill the GEMM adds to */
        int e = kt_cuda_gemm_bias(c, M, s->Co, K, p, wp, b, y, t, KT_CUDA_F32);
        if (e >= 0) return e;
        if (kt_cuda_fill_rows(c, y, b, M, s->Co)) return 1;
    }
    return kt_cuda_gemm(c, 0, 1, M, s->Co, K, 1.0f, p, K, wp, K, b ? 1.0f : 0.0f, y, s->Co, t, KT_CUDA_F32);
}

extern "C" int kt_cuda_patch_conv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx, kt_cuda_dtype t,
                                           void *scratch) {
    int64_t M = rows_of(s), K = patch_len(s);
    size_t e = esize(t);
    char *d16 = (char *)scratch, *wp = d16 + dy_bytes(s, t);
    float *dp = (float *)(wp + kt_cu_align((size_t)(s->Co * K) * e));
    const void *dyt;
    if (!kt_cuda_conv_is_patch(s)) return not_patch(c, s);
    if (dy_in(c, dy, d16, M * s->Co, t, &dyt) || weight_to(c, s, w, wp, t)) return 1;
    /* dP (M, K) = dy (M, Co) W' (Co, K) */
    if (kt_cuda_gemm(c, 0, 0, M, K, s->Co, 1.0f, dyt, s->Co, wp, K, 0.0f, dp, K, t, KT_CUDA_F32)) return 1;
    k_patch_scatter<<<warp_blocks(s->N * s->H * s->W), KT_CU_THREADS, 0, c->stream>>>(*s, dp, dx);
    return kt_cu_launched(c, "patch convolution (scatter)");
}

extern "C" int kt_cuda_patch_conv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const void *x, kt_cuda_dtype xt, float *dw,
                                             kt_cuda_dtype t, void *scratch) {
    int64_t M = rows_of(s), K = patch_len(s);
    size_t e = esize(t);
    char *d16 = (char *)scratch, *p = d16 + dy_bytes(s, t);
    float *dwp = (float *)(p + kt_cu_align((size_t)(M * K) * e));
    const void *dyt;
    if (dy_in(c, dy, d16, M * s->Co, t, &dyt) || kt_cuda_patch_gather(c, s, x, xt, p, t)) return 1;
    /* dW' (Co, K) = dy^T (Co, M) P (M, K), then back to (Co, Ci, kh, kw) */
    if (kt_cuda_gemm(c, 1, 0, s->Co, K, M, 1.0f, dyt, s->Co, p, K, 0.0f, dwp, K, t, KT_CUDA_F32)) return 1;
    k_patch_weight<<<kt_cu_blocks(s->Co * K, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dw, dwp, s->Co, s->kh * s->kw, s->Ci);
    return kt_cu_launched(c, "patch convolution (weight gradient order)");
}
