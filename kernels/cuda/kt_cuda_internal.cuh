// Shared by the .cu files only: the context struct, error helpers, launch sizing, warp reductions
// and the device copy of base/rng.h's counter hash (dropout masks equal to the CPU backend's).
#ifndef KT_CUDA_INTERNAL_CUH
#define KT_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

#include "kernels/cuda/blas_loader.cuh"
#include "kernels/cuda/kt_cuda.h"

struct kt_cu_convplan; /* conv_cudnn.cu */
struct kt_cu_ltplan;   /* gemm.cu */

struct kt_cuda_ctx {
    int device;
    int sm_count;
    cudaStream_t stream;         /* every launch, cuBLAS and cuDNN call goes here (in order) */
    const kt_cu_blas_api *blas_api; /* cuBLAS, loaded with the first context (blas_loader.cu) */
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    void *blas_ws;               /* cuBLAS workspace (device), set once so GEMMs never allocate */
    size_t blas_ws_bytes;
    double *red;                 /* (KT_CU_SUM_BLOCKS + 1) device doubles for sumsq */
    int tf32;
    kt_cuda_dtype gemm_half;     /* autocast f32 GEMM operands to bf16 or f16 (F32: off; kt_cuda_ctx_set_gemm_half) */
    int dw_kind;                 /* kt_cuda_dwkind: the depthwise kernels to take (AUTO: timed per geometry) */
    int dw_log;                  /* KT_CUDA_DWCONV_LOG=1: print each timing choice to stderr */
    int64_t dw_wgrad_threads;    /* the depthwise weight gradient's first-stage thread target (dwconv.cu) */
    struct kt_cu_dwchoice *dw_choices; /* (n_dw) AUTO's choices, one per geometry, pass and flavour (dwconv_tune.cu) */
    int n_dw, cap_dw;
    struct kt_cu_convplan *plans; /* (n_plans) cuDNN algorithm choices, one per geometry and kind */
    int n_plans, cap_plans;
    int lt_off;                  /* KT_CUDA_NO_LT=1: no cuBLASLt bias-epilogue GEMMs (the cuBLAS path instead) */
    int patch_off;               /* KT_CUDA_NO_PATCH_GEMM=1: patch convolutions through cuDNN even under autocast */
    int patch_f32;               /* KT_CUDA_PATCH_F32=1: the patch convolutions cuDNN would run as our f32 patch GEMM */
    void *lt;                    /* cuBLASLt handle, made on first use (gemm.cu) */
    struct kt_cu_ltplan *lt_plans; /* (n_lt) cuBLASLt descriptors and algorithms, one per GEMM shape */
    int n_lt, cap_lt;
    size_t mem_limit;            /* KT_CUDA_MEMORY_MIB / kt_cuda_ctx_set_memory_limit: most bytes kt_cuda_ctx_alloc hands out (0: no cap) */
    size_t mem_used;             /* bytes handed out by kt_cuda_ctx_alloc and not yet freed */
    struct kt_cu_alloc *allocs;  /* (n_allocs) what kt_cuda_ctx_alloc handed out, for its size at free */
    int n_allocs, cap_allocs;
    char err[1024];
};

/* Depthwise kernel choice (dwconv_tune.cu). run launches one kind of a pass (0 forward, 1 data
 * gradient, 2 weight gradient) on its arguments; eligible is a mask of the kinds this call can take
 * (1 << kind). Runs the pass once with: the context's forced kind if eligible; else the kind chosen
 * before for (pass, s, flavor); else, when may_time and more than one kind is eligible, each timed
 * on the card and the fastest recorded (may_time: running the pass several times gives the same
 * outputs, i.e. no output aliases an input); else, for a data gradient, the forward's choice for
 * the geometry; else VEC4 if eligible, else SCALAR. 0, or 1 with the error in c->err. */
typedef int (*kt_cu_dw_run)(kt_cuda_ctx *c, int kind, void *arg);
int kt_cu_dw_dispatch(kt_cuda_ctx *c, int pass, const kt_conv_shape *s, int flavor, unsigned eligible, int may_time,
                      kt_cu_dw_run run, void *arg);
void kt_cu_dw_tune_free(kt_cuda_ctx *c);

/* Records a message in c->err and returns 1. */
int kt_cu_errf(kt_cuda_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns 0 for cudaSuccess, else records "what: CUDA's message" and returns 1. */
int kt_cu_check(kt_cuda_ctx *c, cudaError_t e, const char *what);
/* After a launch: 0, or the launch error named by what. */
int kt_cu_launched(kt_cuda_ctx *c, const char *what);

#define KT_CU_THREADS 256
#define KT_CU_SUM_BLOCKS 256 /* most blocks of a full reduction (partials summed in order) */

/* Blocks for a grid-stride loop over n items. */
static inline unsigned kt_cu_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > (1 << 20)) b = 1 << 20;
    return (unsigned)b;
}

#define KT_CU_LOOP(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* Row blocks of a column reduction over rows: depends on rows only, so results are the same bits
 * whatever the device. */
static inline int64_t kt_cu_row_blocks(int64_t rows) {
    int64_t b = (rows + 63) / 64;
    return b < 1 ? 1 : (b > 1024 ? 1024 : b);
}

__device__ __forceinline__ float kt_cu_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double kt_cu_warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float kt_cu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* base/rng.c's splitmix64 and kt_hash_u64, bit for bit. */
__device__ __forceinline__ uint64_t kt_cu_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ float kt_cu_hash_uniform(uint64_t key, uint64_t counter) {
    uint64_t x = key ^ (counter * 0xD1B54A32D192ED03ull);
    uint64_t a = kt_cu_splitmix64(&x);
    uint64_t h = a ^ kt_cu_splitmix64(&x);
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/* Activations: the formulas of kernels/cpu/activation.c (GELU in erf form, as PyTorch's default). */
#define KT_CU_INV_SQRT2 0.70710678118654752f
#define KT_CU_INV_SQRT_2PI 0.39894228040143268f

__device__ __forceinline__ float kt_cu_act_f(int a, float v) {
    switch (a) {
    case KT_ACT_GELU: return 0.5f * v * (1.0f + erff(v * KT_CU_INV_SQRT2));
    case KT_ACT_RELU: return v > 0 ? v : 0.0f;
    case KT_ACT_SILU: return v / (1.0f + expf(-v));
    default: return 1.0f / (1.0f + expf(-v));
    }
}

/* derivative times dy; v is the input (GELU, ReLU, SiLU) or the output (sigmoid) */
__device__ __forceinline__ float kt_cu_act_b(int a, float d, float v) {
    switch (a) {
    case KT_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(v * KT_CU_INV_SQRT2));
        float pdf = KT_CU_INV_SQRT_2PI * expf(-0.5f * v * v);
        return d * (cdf + v * pdf);
    }
    case KT_ACT_RELU: return v > 0 ? d : 0.0f;
    case KT_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-v));
        return d * s * (1.0f + v * (1.0f - s));
    }
    default: return d * v * (1.0f - v);
    }
}

/* 16-bit storage helpers: H is __nv_bfloat16 or __half (float passes through). */
template <typename H> struct alignas(8) kt_cu_half4 { /* four values moved as one 8-byte access */
    H v[4];
};
__device__ __forceinline__ float kt_cu_widen(float v) { return v; }
__device__ __forceinline__ float kt_cu_widen(__nv_bfloat16 h) { return __bfloat162float(h); }
__device__ __forceinline__ float kt_cu_widen(__half h) { return __half2float(h); }
/* v stored in *p's type, rounded to nearest even (float: as is): kt_cu_widen's inverse */
__device__ __forceinline__ void kt_cu_put(float *p, float v) { *p = v; }
__device__ __forceinline__ void kt_cu_put(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void kt_cu_put(__half *p, float v) { *p = __float2half_rn(v); }
template <typename H> __device__ __forceinline__ float4 kt_cu_load4(const H *p, int64_t i4) {
    kt_cu_half4<H> h = ((const kt_cu_half4<H> *)p)[i4];
    return make_float4(kt_cu_widen(h.v[0]), kt_cu_widen(h.v[1]), kt_cu_widen(h.v[2]), kt_cu_widen(h.v[3]));
}
template <> __device__ __forceinline__ float4 kt_cu_load4<float>(const float *p, int64_t i4) { return ((const float4 *)p)[i4]; }

/* Column reductions over rows of (rows, C) (reduce.cu), deterministic:
 *   SUM    out0 = sum a                       DOT   out0 = sum a*b
 *   SQDEV  out0 = sum (a - cm[c])^2           BNGRAD out0 = sum a, out1 = sum a*(b - cm[c])*cr[c]
 *   LNWB   out0 = sum a*(b - rs[2r])*rs[2r+1], out1 = sum a   (rs: per-row float mean, rstd)
 *   ACTBWD + act (kt_act)  out0 = sum y, y = act'(b) a written too (kt_cuda_act_bwd_colsum);
 *                          ACTBWD + 4 / + 5: GELU with b in bf16 / f16
 *   LNWB_BF16 / LNWB_F16   LNWB with b (x) stored in 16 bits
 *   LNB (_BF16, _F16)      LayerNorm's backward after its row pass (kt_cu_colred_ln_bwd)
 * part: kt_cu_colred_scratch bytes; outputs (nout, C) divided by div, as float and/or double. */
enum { KT_CR_SUM, KT_CR_DOT, KT_CR_SQDEV, KT_CR_BNGRAD, KT_CR_LNWB, KT_CR_ACTBWD, KT_CR_LNWB_BF16 = 32, KT_CR_LNWB_F16, KT_CR_LNB, KT_CR_LNB_BF16,
       KT_CR_LNB_F16, KT_CR_LNB_BF16_A16, KT_CR_LNB_F16_A16 /* LNB with dy in x's 16-bit type too */ };
size_t kt_cu_colred_scratch(int mode, int64_t rows, int64_t C);
int kt_cu_colred(kt_cuda_ctx *c, int mode, const float *a, const float *b, const double *cm, const double *cr, const float *rs,
                 int64_t rows, int64_t C, double *part, double div, float *outf, double *outd);
/* LayerNorm's backward over rows of (rows, C) after the row pass wrote rs (rows, 4: mean, rstd, mean g,
 * mean g xhat; g = dy w): dx written (kt_cu_ln_dx), and summed over rows: dw = sum dy xhat, db = sum dy
 * (dwb: (2, C), or NULL) and dbias = sum dx (or NULL). x in xt (f32, bf16, f16), dy in f32 or x's
 * 16-bit type (dyt); w may be NULL. part:
 * kt_cu_colred_scratch(KT_CR_LNB) bytes. */
int kt_cu_colred_ln_bwd(kt_cuda_ctx *c, float *dx, const void *dy, kt_cuda_dtype dyt, const void *x, kt_cuda_dtype xt, const float *w,
                        const float *rs, int64_t rows, int64_t C, double *part, float *dwb, float *dbias);
/* LayerNorm's data gradient of one element from its row's statistics: the same rounding wherever it is
 * computed (no contraction into fused multiply-adds), so the fused backward gives the bits of the
 * separate kernels */
__device__ __forceinline__ float kt_cu_ln_dx(float g, float x, float m, float rs, float mg, float mgx) {
    return __fmul_rn(rs, __fsub_rn(__fsub_rn(g, mg), __fmul_rn(__fmul_rn(__fsub_rn(x, m), rs), mgx)));
}
/* loss (1) = mean BCE-with-logits term over n; part: kt_cuda_sum_scratch(n) bytes */
int kt_cu_bce_sum(kt_cuda_ctx *c, float *loss, const float *logits, const float *targets, int64_t n, double *part);

/* Rounds up to a multiple of 256 bytes (sub-buffers carved out of one scratch block). */
static inline size_t kt_cu_align(size_t n) { return (n + 255) & ~(size_t)255; }

#endif
