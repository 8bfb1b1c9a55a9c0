// Elementwise kernels: arithmetic, activations (GELU in erf form, as PyTorch's default), dropout
// masks from the counter hash, AdamW, and their bf16 variants (f32 math, round to nearest even).
// Grid-stride loops; every output element is written by exactly one thread.
#include "kernels/cuda/kt_cuda_internal.cuh"

#define LAUNCH(kernel, n, ...)                                                                  \
    do {                                                                                        \
        kernel<<<kt_cu_blocks((n), KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(__VA_ARGS__); \
        return kt_cu_launched(c, #kernel);                                                      \
    } while (0)

__global__ void k_add(float *y, const float *a, const float *b, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = a[i] + b[i];
}

__global__ void k_mul(float *y, const float *a, const float *b, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = a[i] * b[i];
}

/* Broadcast kernels index with I = uint32_t when the buffer allows (64-bit division is slow on GPUs). */
#define LOOP_I(i, n) for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < (n); i += (I)gridDim.x * blockDim.x)

template <typename I> __global__ void k_mul_bcast(float *y, const float *a, const float *b, I n, I C) {
    LOOP_I(i, n) y[i] = a[i] * b[i % C];
}

__global__ void k_scale(float *y, const float *x, float s, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = x[i] * s;
}

template <typename I> __global__ void k_bias(float *y, const float *x, const float *b, I n, I C) {
    LOOP_I(i, n) y[i] = x[i] + b[i % C];
}

template <typename I> __global__ void k_fill_rows(float *y, const float *b, I n, I C) {
    LOOP_I(i, n) y[i] = b[i % C];
}

static int small(int64_t n) { return n < ((int64_t)1 << 31); }

#define LAUNCH_I(kernel, n, ...)                                                                                \
    do {                                                                                                        \
        if (small(n)) kernel<uint32_t><<<kt_cu_blocks((n), KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(__VA_ARGS__); \
        else kernel<int64_t><<<kt_cu_blocks((n), KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(__VA_ARGS__);           \
        return kt_cu_launched(c, #kernel);                                                                      \
    } while (0)

/* 16-byte vector paths: four elements per thread through float4 loads and stores, taken when the
 * element count (and the broadcast width) is a multiple of 4 and every pointer is 16-byte aligned
 * (arena offsets are; a parameter slice may not be). The scalar kernels ran these memory-bound ops at
 * 40-60% of the copy bandwidth on an H200 (bench/gpu); each element's arithmetic is unchanged. */
static int al16(const void *p) { return ((uintptr_t)p & 15) == 0; }
static int vec4(int64_t n, const void *a, const void *b, const void *c) {
    return n % 4 == 0 && al16(a) && (!b || al16(b)) && (!c || al16(c));
}
#define F4(p) ((float4 *)(p))
#define CF4(p) ((const float4 *)(p))
#define LAUNCH4(kernel, n4, ...)                                                                  \
    do {                                                                                          \
        kernel<<<kt_cu_blocks((n4), KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(__VA_ARGS__); \
        return kt_cu_launched(c, #kernel);                                                        \
    } while (0)
#define LAUNCH4_I(kernel, n4, ...)                                                                                        \
    do {                                                                                                                  \
        if (small(n4)) kernel<uint32_t><<<kt_cu_blocks((n4), KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(__VA_ARGS__); \
        else kernel<int64_t><<<kt_cu_blocks((n4), KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(__VA_ARGS__);           \
        return kt_cu_launched(c, #kernel);                                                                                \
    } while (0)

__global__ void k_add4(float4 *y, const float4 *a, const float4 *b, int64_t n4) {
    KT_CU_LOOP(i, n4) {
        float4 u = a[i], v = b[i];
        y[i] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
    }
}

__global__ void k_mul4(float4 *y, const float4 *a, const float4 *b, int64_t n4) {
    KT_CU_LOOP(i, n4) {
        float4 u = a[i], v = b[i];
        y[i] = make_float4(u.x * v.x, u.y * v.y, u.z * v.z, u.w * v.w);
    }
}

template <typename I> __global__ void k_mul_bcast4(float4 *y, const float4 *a, const float4 *b, I n4, I C4) {
    LOOP_I(i, n4) {
        float4 u = a[i], v = b[i % C4];
        y[i] = make_float4(u.x * v.x, u.y * v.y, u.z * v.z, u.w * v.w);
    }
}

template <typename I> __global__ void k_bias4(float4 *y, const float4 *x, const float4 *b, I n4, I C4) {
    LOOP_I(i, n4) {
        float4 u = x[i], v = b[i % C4];
        y[i] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
    }
}

template <typename I> __global__ void k_fill_rows4(float4 *y, const float4 *b, I n4, I C4) {
    LOOP_I(i, n4) y[i] = b[i % C4];
}

__global__ void k_fill_scaled(float *dx, const float *dy, int64_t n, float scale) {
    float v = dy[0] * scale;
    KT_CU_LOOP(i, n) dx[i] = v;
}

extern "C" int kt_cuda_add(kt_cuda_ctx *c, float *y, const float *a, const float *b, int64_t n) {
    if (vec4(n, y, a, b)) LAUNCH4(k_add4, n / 4, F4(y), CF4(a), CF4(b), n / 4);
    LAUNCH(k_add, n, y, a, b, n);
}
extern "C" int kt_cuda_mul(kt_cuda_ctx *c, float *y, const float *a, const float *b, int64_t n) {
    if (vec4(n, y, a, b)) LAUNCH4(k_mul4, n / 4, F4(y), CF4(a), CF4(b), n / 4);
    LAUNCH(k_mul, n, y, a, b, n);
}
extern "C" int kt_cuda_mul_bcast(kt_cuda_ctx *c, float *y, const float *a, const float *b, int64_t rows, int64_t C) {
    if (vec4(C, y, a, b)) LAUNCH4_I(k_mul_bcast4, rows * C / 4, F4(y), CF4(a), CF4(b), rows * C / 4, C / 4);
    LAUNCH_I(k_mul_bcast, rows * C, y, a, b, rows * C, C);
}
extern "C" int kt_cuda_scale(kt_cuda_ctx *c, float *y, const float *x, float s, int64_t n) { LAUNCH(k_scale, n, y, x, s, n); }
extern "C" int kt_cuda_bias(kt_cuda_ctx *c, float *y, const float *x, const float *b, int64_t rows, int64_t C) {
    if (vec4(C, y, x, b)) LAUNCH4_I(k_bias4, rows * C / 4, F4(y), CF4(x), CF4(b), rows * C / 4, C / 4);
    LAUNCH_I(k_bias, rows * C, y, x, b, rows * C, C);
}
extern "C" int kt_cuda_fill_rows(kt_cuda_ctx *c, float *y, const float *b, int64_t rows, int64_t C) {
    if (vec4(C, y, b, NULL)) LAUNCH4_I(k_fill_rows4, rows * C / 4, F4(y), CF4(b), rows * C / 4, C / 4);
    LAUNCH_I(k_fill_rows, rows * C, y, b, rows * C, C);
}
extern "C" int kt_cuda_fill_scaled(kt_cuda_ctx *c, float *dx, const float *dy, int64_t n, float scale) {
    LAUNCH(k_fill_scaled, n, dx, dy, n, scale);
}

/* ---- activations (formulas: kt_cu_act_f / kt_cu_act_b) ---- */

__global__ void k_act_fwd(int a, float *y, const float *x, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = kt_cu_act_f(a, x[i]);
}

__global__ void k_act_bwd(int a, float *dx, const float *dy, const float *v, int64_t n) {
    KT_CU_LOOP(i, n) dx[i] = kt_cu_act_b(a, dy[i], v[i]);
}

/* four per thread, the activation a template argument (no per-element switch) */
template <int A> __global__ void k_act_fwd4(float4 *y, const float4 *x, int64_t n4) {
    KT_CU_LOOP(i, n4) {
        float4 u = x[i];
        y[i] = make_float4(kt_cu_act_f(A, u.x), kt_cu_act_f(A, u.y), kt_cu_act_f(A, u.z), kt_cu_act_f(A, u.w));
    }
}

template <int A> __global__ void k_act_bwd4(float4 *dx, const float4 *dy, const float4 *v, int64_t n4) {
    KT_CU_LOOP(i, n4) {
        float4 d = dy[i], u = v[i];
        dx[i] = make_float4(kt_cu_act_b(A, d.x, u.x), kt_cu_act_b(A, d.y, u.y), kt_cu_act_b(A, d.z, u.z), kt_cu_act_b(A, d.w, u.w));
    }
}

extern "C" int kt_cuda_act_fwd(kt_cuda_ctx *c, kt_act a, float *y, const float *x, int64_t n) {
    if (vec4(n, y, x, NULL)) switch (a) {
        case KT_ACT_GELU: LAUNCH4(k_act_fwd4<KT_ACT_GELU>, n / 4, F4(y), CF4(x), n / 4);
        case KT_ACT_RELU: LAUNCH4(k_act_fwd4<KT_ACT_RELU>, n / 4, F4(y), CF4(x), n / 4);
        case KT_ACT_SILU: LAUNCH4(k_act_fwd4<KT_ACT_SILU>, n / 4, F4(y), CF4(x), n / 4);
        default: LAUNCH4(k_act_fwd4<KT_ACT_SIGMOID>, n / 4, F4(y), CF4(x), n / 4);
        }
    LAUNCH(k_act_fwd, n, (int)a, y, x, n);
}

extern "C" int kt_cuda_act_bwd(kt_cuda_ctx *c, kt_act a, float *dx, const float *dy, const float *v, int64_t n) {
    if (vec4(n, dx, dy, v)) switch (a) {
        case KT_ACT_GELU: LAUNCH4(k_act_bwd4<KT_ACT_GELU>, n / 4, F4(dx), CF4(dy), CF4(v), n / 4);
        case KT_ACT_RELU: LAUNCH4(k_act_bwd4<KT_ACT_RELU>, n / 4, F4(dx), CF4(dy), CF4(v), n / 4);
        case KT_ACT_SILU: LAUNCH4(k_act_bwd4<KT_ACT_SILU>, n / 4, F4(dx), CF4(dy), CF4(v), n / 4);
        default: LAUNCH4(k_act_bwd4<KT_ACT_SIGMOID>, n / 4, F4(dx), CF4(dy), CF4(v), n / 4);
        }
    LAUNCH(k_act_bwd, n, (int)a, dx, dy, v, n);
}

/* ---- dropout and drop path: keep = uniform(key, index) >= p, as kernels/cpu/dropout.c ---- */

__global__ void k_dropout(float *y, const float *x, int64_t n, float p, float scale, uint64_t key) {
    KT_CU_LOOP(i, n) y[i] = kt_cu_hash_uniform(key, (uint64_t)i) >= p ? x[i] * scale : 0.0f;
}

template <typename I> __global__ void k_drop_path(float *y, const float *x, I n, I per, float p, float scale, uint64_t key) {
    LOOP_I(i, n) {
        float m = kt_cu_hash_uniform(key, (uint64_t)(i / per)) >= p ? scale : 0.0f;
        y[i] = x[i] * m;
    }
}

extern "C" int kt_cuda_dropout(kt_cuda_ctx *c, float *y, const float *x, int64_t n, float p, uint64_t key) {
    float scale = 1.0f / (1.0f - p);
    LAUNCH(k_dropout, n, y, x, n, p, scale, key);
}

extern "C" int kt_cuda_drop_path(kt_cuda_ctx *c, float *y, const float *x, int64_t N, int64_t per, float p, uint64_t key) {
    float scale = 1.0f / (1.0f - p);
    LAUNCH_I(k_drop_path, N * per, y, x, N * per, per, p, scale, key);
}

/* ---- AdamW: the float formula of kernels/cpu/adamw.c ---- */

__global__ void k_adamw(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2, float eps, float step_size,
                        float inv_sqrt_bc2, float decay) {
    KT_CU_LOOP(i, n) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * mi / denom;
    }
}

extern "C" int kt_cuda_adamw(kt_cuda_ctx *c, float *p, const float *g, float *m, float *v, int64_t n, const kt_adamw_hp *hp) {
    double bc1 = 1.0 - pow((double)hp->beta1, (double)hp->step);
    double bc2 = 1.0 - pow((double)hp->beta2, (double)hp->step);
    float step_size = (float)(hp->lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    float decay = 1.0f - hp->lr * hp->weight_decay;
    LAUNCH(k_adamw, n, p, g, m, v, n, hp->beta1, hp->beta2, hp->eps, step_size, inv_sqrt_bc2, decay);
}

/* ---- bf16 ---- */

__global__ void k_bf16_to_f32(float *y, const __nv_bfloat16 *x, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = __bfloat162float(x[i]);
}

__global__ void k_add_bf16(__nv_bfloat16 *y, const __nv_bfloat16 *a, const __nv_bfloat16 *b, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = __float2bfloat16_rn(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

__global__ void k_act_fwd_bf16(int a, __nv_bfloat16 *y, const __nv_bfloat16 *x, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = __float2bfloat16_rn(kt_cu_act_f(a, __bfloat162float(x[i])));
}

__global__ void k_act_bwd_bf16(int a, __nv_bfloat16 *dx, const __nv_bfloat16 *dy, const __nv_bfloat16 *v, int64_t n) {
    KT_CU_LOOP(i, n) dx[i] = __float2bfloat16_rn(kt_cu_act_b(a, __bfloat162float(dy[i]), __bfloat162float(v[i])));
}

#define BF(p) ((__nv_bfloat16 *)(p))
#define CBF(p) ((const __nv_bfloat16 *)(p))

/* ---- f32 results rounded to a 16-bit type H (__nv_bfloat16 or __half) for autocast GEMMs ---- */

template <typename H> __device__ __forceinline__ H round_to(float v);
template <> __device__ __forceinline__ __nv_bfloat16 round_to<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half round_to<__half>(float v) { return __float2half_rn(v); }

/* A < 0: the value itself; else activation A of it */
template <int A> __device__ __forceinline__ float pre(float v) { return A < 0 ? v : kt_cu_act_f(A, v); }

/* four roundings per thread: one 16-byte load, one 8-byte store */
template <int A, typename H> __global__ void k_round4(kt_cu_half4<H> *y, const float4 *x, int64_t n4) {
    KT_CU_LOOP(i, n4) {
        float4 u = x[i];
        kt_cu_half4<H> o;
        o.v[0] = round_to<H>(pre<A>(u.x));
        o.v[1] = round_to<H>(pre<A>(u.y));
        o.v[2] = round_to<H>(pre<A>(u.z));
        o.v[3] = round_to<H>(pre<A>(u.w));
        y[i] = o;
    }
}

template <int A, typename H> __global__ void k_round(H *y, const float *x, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = round_to<H>(pre<A>(x[i]));
}

template <int A, typename H> static int round_launch(kt_cuda_ctx *c, void *y, const float *x, int64_t n) {
    if (n % 4 == 0 && ((uintptr_t)y & 7) == 0 && al16(x))
        k_round4<A, H><<<kt_cu_blocks(n / 4, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>((kt_cu_half4<H> *)y, CF4(x), n / 4);
    else
        k_round<A, H><<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>((H *)y, x, n);
    return kt_cu_launched(c, "rounding to 16 bits");
}

template <typename H> static int act_round(kt_cuda_ctx *c, int a, void *y, const float *x, int64_t n) {
    switch (a) {
    case -1: return round_launch<-1, H>(c, y, x, n);
    case KT_ACT_GELU: return round_launch<KT_ACT_GELU, H>(c, y, x, n);
    case KT_ACT_RELU: return round_launch<KT_ACT_RELU, H>(c, y, x, n);
    case KT_ACT_SILU: return round_launch<KT_ACT_SILU, H>(c, y, x, n);
    default: return round_launch<KT_ACT_SIGMOID, H>(c, y, x, n);
    }
}

/* ---- linear + GELU (planner fusion KT_FUSE_LINEAR_GELU) ----
 * The GEMM wrote z = x w^T (beta 0); one pass adds the bias, stores the pre-activation z + b (GELU's
 * backward reads it) as P, and writes GELU of the f32 value as O: f32, or rounded to 16 bits when
 * the plan stores it so. Unfused, the bias was a fill pass before a beta-1 GEMM (which reads C back)
 * and GELU a third pass. Each thread reads its z element before writing pre, then y: safe when pre
 * is z itself and when y is pre's own block (planner in-place). */
template <> __device__ __forceinline__ float round_to<float>(float v) { return v; }

__device__ __forceinline__ void put4(float *y, int64_t i4, float4 v) { ((float4 *)y)[i4] = v; }
template <typename H> __device__ __forceinline__ void put4(H *y, int64_t i4, float4 v) {
    kt_cu_half4<H> o;
    o.v[0] = round_to<H>(v.x);
    o.v[1] = round_to<H>(v.y);
    o.v[2] = round_to<H>(v.z);
    o.v[3] = round_to<H>(v.w);
    ((kt_cu_half4<H> *)y)[i4] = o;
}

/* write_pre: 0 when pre is z and there is no bias (nothing to store). G = 0: the pre-activation
 * only (a linear without GELU stored in 16 bits, kt_cuda_bias_store; y unused). */
template <int G, typename P, typename O, typename I>
__global__ void k_bias_gelu4(const float4 *z, const float4 *b, P *pre, int write_pre, O *y, I n4, I C4) {
    LOOP_I(i, n4) {
        float4 u = z[i];
        if (b) {
            float4 v = b[i % C4];
            u = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
        }
        if (write_pre) put4(pre, (int64_t)i, u);
        if (G)
            put4(y, (int64_t)i,
                 make_float4(kt_cu_act_f(KT_ACT_GELU, u.x), kt_cu_act_f(KT_ACT_GELU, u.y), kt_cu_act_f(KT_ACT_GELU, u.z),
                             kt_cu_act_f(KT_ACT_GELU, u.w)));
    }
}

template <int G, typename P, typename O, typename I>
__global__ void k_bias_gelu(const float *z, const float *b, P *pre, int write_pre, O *y, I n, I C) {
    LOOP_I(i, n) {
        float u = z[i];
        if (b) u += b[i % C];
        if (write_pre) pre[i] = round_to<P>(u);
        if (G) y[i] = round_to<O>(kt_cu_act_f(KT_ACT_GELU, u));
    }
}

template <int G, typename P, typename O>
static int bias_gelu_typed(kt_cuda_ctx *c, const float *z, const float *b, P *pre, O *y, int64_t rows, int64_t C) {
    int64_t n = rows * C;
    int w = b || (const void *)pre != (const void *)z;
    unsigned g4 = kt_cu_blocks(n / 4, KT_CU_THREADS), g1 = kt_cu_blocks(n, KT_CU_THREADS);
    if (C % 4 == 0 && al16(z) && (!b || al16(b)) && (uintptr_t)pre % (4 * sizeof(P)) == 0 && (uintptr_t)y % (4 * sizeof(O)) == 0) {
        if (small(n)) k_bias_gelu4<G, P, O, uint32_t><<<g4, KT_CU_THREADS, 0, c->stream>>>(CF4(z), CF4(b), pre, w, y, n / 4, C / 4);
        else k_bias_gelu4<G, P, O, int64_t><<<g4, KT_CU_THREADS, 0, c->stream>>>(CF4(z), CF4(b), pre, w, y, n / 4, C / 4);
    } else if (small(n)) k_bias_gelu<G, P, O, uint32_t><<<g1, KT_CU_THREADS, 0, c->stream>>>(z, b, pre, w, y, n, C);
    else k_bias_gelu<G, P, O, int64_t><<<g1, KT_CU_THREADS, 0, c->stream>>>(z, b, pre, w, y, n, C);
    return kt_cu_launched(c, G ? "bias + GELU" : "bias, rounded to 16 bits");
}

extern "C" int kt_cuda_bias_gelu(kt_cuda_ctx *c, const float *z, const float *b, void *pre, kt_cuda_dtype pre_t, void *y, kt_cuda_dtype y_t,
                                 int64_t rows, int64_t C) {
    if (pre_t == KT_CUDA_F32) switch (y_t) {
        case KT_CUDA_BF16: return bias_gelu_typed<1>(c, z, b, (float *)pre, (__nv_bfloat16 *)y, rows, C);
        case KT_CUDA_F16: return bias_gelu_typed<1>(c, z, b, (float *)pre, (__half *)y, rows, C);
        default: return bias_gelu_typed<1>(c, z, b, (float *)pre, (float *)y, rows, C);
        }
    if (y_t != pre_t && y_t != KT_CUDA_F32)
        return kt_cu_errf(c, "bias + GELU: a 16-bit pre-activation needs its GELU output in the same type or f32");
    if (pre_t == KT_CUDA_BF16)
        return y_t == KT_CUDA_F32 ? bias_gelu_typed<1>(c, z, b, (__nv_bfloat16 *)pre, (float *)y, rows, C)
                                  : bias_gelu_typed<1>(c, z, b, (__nv_bfloat16 *)pre, (__nv_bfloat16 *)y, rows, C);
    return y_t == KT_CUDA_F32 ? bias_gelu_typed<1>(c, z, b, (__half *)pre, (float *)y, rows, C)
                              : bias_gelu_typed<1>(c, z, b, (__half *)pre, (__half *)y, rows, C);
}

extern "C" int kt_cuda_bias_store(kt_cuda_ctx *c, const float *z, const float *b, void *y, kt_cuda_dtype yt, int64_t rows, int64_t C) {
    if (yt == KT_CUDA_BF16) return bias_gelu_typed<0>(c, z, b, (__nv_bfloat16 *)y, (__nv_bfloat16 *)y, rows, C);
    if (yt == KT_CUDA_F16) return bias_gelu_typed<0>(c, z, b, (__half *)y, (__half *)y, rows, C);
    return kt_cu_errf(c, "bias store: the output must be bf16 or f16");
}

/* GELU of a pre-activation stored in 16 bits (fc1's, written by the bias-epilogue GEMM under autocast),
 * written in that type or f32: autocast's GELU on its 16-bit input */
template <typename H, typename O> __global__ void k_gelu_x16_4(O *y, const H *x, int64_t n4) {
    KT_CU_LOOP(i, n4) {
        float4 u = kt_cu_load4(x, i);
        put4(y, i, make_float4(kt_cu_act_f(KT_ACT_GELU, u.x), kt_cu_act_f(KT_ACT_GELU, u.y), kt_cu_act_f(KT_ACT_GELU, u.z),
                               kt_cu_act_f(KT_ACT_GELU, u.w)));
    }
}
template <typename H, typename O> __global__ void k_gelu_x16(O *y, const H *x, int64_t n) {
    KT_CU_LOOP(i, n) y[i] = round_to<O>(kt_cu_act_f(KT_ACT_GELU, kt_cu_widen(x[i])));
}
template <typename H, typename O> static int gelu_x16(kt_cuda_ctx *c, O *y, const H *x, int64_t n) {
    if (n % 4 == 0 && ((uintptr_t)x & 7) == 0 && (uintptr_t)y % (4 * sizeof(O)) == 0)
        k_gelu_x16_4<H, O><<<kt_cu_blocks(n / 4, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(y, x, n / 4);
    else k_gelu_x16<H, O><<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(y, x, n);
    return kt_cu_launched(c, "GELU (16-bit input)");
}
extern "C" int kt_cuda_gelu_fwd_x16(kt_cuda_ctx *c, void *y, kt_cuda_dtype yt, const void *x, kt_cuda_dtype xt, int64_t n) {
    if (xt == KT_CUDA_BF16 && yt == KT_CUDA_BF16) return gelu_x16(c, (__nv_bfloat16 *)y, (const __nv_bfloat16 *)x, n);
    if (xt == KT_CUDA_BF16 && yt == KT_CUDA_F32) return gelu_x16(c, (float *)y, (const __nv_bfloat16 *)x, n);
    if (xt == KT_CUDA_F16 && yt == KT_CUDA_F16) return gelu_x16(c, (__half *)y, (const __half *)x, n);
    if (xt == KT_CUDA_F16 && yt == KT_CUDA_F32) return gelu_x16(c, (float *)y, (const __half *)x, n);
    return kt_cu_errf(c, "GELU: a 16-bit input writes its own type or f32");
}

/* y (rows, C) f32 = a * b[c], a stored in 16 bits (a linear's output under autocast, times layer scale) */
template <typename H, typename I> __global__ void k_mul_bcast_a16_4(float4 *y, const H *a, const float4 *b, I n4, I C4) {
    LOOP_I(i, n4) {
        float4 u = kt_cu_load4(a, (int64_t)i), v = b[i % C4];
        y[i] = make_float4(u.x * v.x, u.y * v.y, u.z * v.z, u.w * v.w);
    }
}

template <typename H, typename I> __global__ void k_mul_bcast_a16(float *y, const H *a, const float *b, I n, I C) {
    LOOP_I(i, n) y[i] = kt_cu_widen(a[i]) * b[i % C];
}

template <typename H> static int mul_bcast_a16(kt_cuda_ctx *c, float *y, const H *a, const float *b, int64_t rows, int64_t C) {
    int64_t n = rows * C;
    unsigned g4 = kt_cu_blocks(n / 4, KT_CU_THREADS), g1 = kt_cu_blocks(n, KT_CU_THREADS);
    if (C % 4 == 0 && al16(y) && al16(b) && ((uintptr_t)a & 7) == 0) {
        if (small(n)) k_mul_bcast_a16_4<H, uint32_t><<<g4, KT_CU_THREADS, 0, c->stream>>>(F4(y), a, CF4(b), n / 4, C / 4);
        else k_mul_bcast_a16_4<H, int64_t><<<g4, KT_CU_THREADS, 0, c->stream>>>(F4(y), a, CF4(b), n / 4, C / 4);
    } else if (small(n)) k_mul_bcast_a16<H, uint32_t><<<g1, KT_CU_THREADS, 0, c->stream>>>(y, a, b, n, C);
    else k_mul_bcast_a16<H, int64_t><<<g1, KT_CU_THREADS, 0, c->stream>>>(y, a, b, n, C);
    return kt_cu_launched(c, "broadcast multiply (16-bit input)");
}

extern "C" int kt_cuda_mul_bcast_a16(kt_cuda_ctx *c, float *y, const uint16_t *a, kt_cuda_dtype at, const float *b, int64_t rows, int64_t C) {
    if (at == KT_CUDA_BF16) return mul_bcast_a16(c, y, (const __nv_bfloat16 *)a, b, rows, C);
    if (at == KT_CUDA_F16) return mul_bcast_a16(c, y, (const __half *)a, b, rows, C);
    return kt_cu_errf(c, "broadcast multiply: the 16-bit input must be bf16 or f16");
}

/* y (rows, C) = a * gamma[c] + x: layer scale and the residual add in one pass (the planner's
 * KT_FUSE_SCALE_ADD; a f32, or 16-bit when fc2's output is stored so). Product and sum each rounded
 * as the two kernels apart round them, so the same bits; the product is never written. */
template <typename H, typename I> __global__ void k_scale_add4(float4 *y, const H *a, const float4 *g, const float4 *x, I n4, I C4) {
    LOOP_I(i, n4) {
        float4 u = kt_cu_load4(a, (int64_t)i), v = g[i % C4], w = x[i];
        y[i] = make_float4(__fadd_rn(__fmul_rn(u.x, v.x), w.x), __fadd_rn(__fmul_rn(u.y, v.y), w.y), __fadd_rn(__fmul_rn(u.z, v.z), w.z),
                           __fadd_rn(__fmul_rn(u.w, v.w), w.w));
    }
}

template <typename H, typename I> __global__ void k_scale_add(float *y, const H *a, const float *g, const float *x, I n, I C) {
    LOOP_I(i, n) y[i] = __fadd_rn(__fmul_rn(kt_cu_widen(a[i]), g[i % C]), x[i]);
}

template <typename H>
static int scale_add(kt_cuda_ctx *c, float *y, const H *a, const float *g, const float *x, int64_t rows, int64_t C) {
    int64_t n = rows * C;
    unsigned g4 = kt_cu_blocks(n / 4, KT_CU_THREADS), g1 = kt_cu_blocks(n, KT_CU_THREADS);
    if (C % 4 == 0 && al16(y) && al16(g) && al16(x) && ((uintptr_t)a & (sizeof(H) == 4 ? 15 : 7)) == 0) {
        if (small(n)) k_scale_add4<H, uint32_t><<<g4, KT_CU_THREADS, 0, c->stream>>>(F4(y), a, CF4(g), CF4(x), n / 4, C / 4);
        else k_scale_add4<H, int64_t><<<g4, KT_CU_THREADS, 0, c->stream>>>(F4(y), a, CF4(g), CF4(x), n / 4, C / 4);
    } else if (small(n)) k_scale_add<H, uint32_t><<<g1, KT_CU_THREADS, 0, c->stream>>>(y, a, g, x, n, C);
    else k_scale_add<H, int64_t><<<g1, KT_CU_THREADS, 0, c->stream>>>(y, a, g, x, n, C);
    return kt_cu_launched(c, "layer scale + residual add");
}

extern "C" int kt_cuda_scale_add(kt_cuda_ctx *c, float *y, const void *a, kt_cuda_dtype at, const float *g, const float *x, int64_t rows,
                                 int64_t C) {
    if (at == KT_CUDA_F32) return scale_add(c, y, (const float *)a, g, x, rows, C);
    if (at == KT_CUDA_BF16) return scale_add(c, y, (const __nv_bfloat16 *)a, g, x, rows, C);
    if (at == KT_CUDA_F16) return scale_add(c, y, (const __half *)a, g, x, rows, C);
    return kt_cu_errf(c, "layer scale + add: the scaled input must be f32, bf16 or f16");
}

/* GELU backward from a pre-activation stored in 16 bits (the f32 dy of autocast GEMMs, f32 dx) */
template <typename H> __global__ void k_gelu_bwd_v16_4(float4 *dx, const float4 *dy, const H *v, int64_t n4) {
    KT_CU_LOOP(i, n4) {
        float4 d = dy[i], u = kt_cu_load4(v, i);
        dx[i] = make_float4(kt_cu_act_b(KT_ACT_GELU, d.x, u.x), kt_cu_act_b(KT_ACT_GELU, d.y, u.y), kt_cu_act_b(KT_ACT_GELU, d.z, u.z),
                            kt_cu_act_b(KT_ACT_GELU, d.w, u.w));
    }
}

template <typename H> __global__ void k_gelu_bwd_v16(float *dx, const float *dy, const H *v, int64_t n) {
    KT_CU_LOOP(i, n) dx[i] = kt_cu_act_b(KT_ACT_GELU, dy[i], kt_cu_widen(v[i]));
}

template <typename H> static int gelu_bwd_v16(kt_cuda_ctx *c, float *dx, const float *dy, const H *v, int64_t n) {
    if (n % 4 == 0 && al16(dx) && al16(dy) && ((uintptr_t)v & 7) == 0)
        k_gelu_bwd_v16_4<H><<<kt_cu_blocks(n / 4, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(F4(dx), CF4(dy), v, n / 4);
    else k_gelu_bwd_v16<H><<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dx, dy, v, n);
    return kt_cu_launched(c, "GELU backward (16-bit input)");
}

extern "C" int kt_cuda_gelu_bwd_v16(kt_cuda_ctx *c, float *dx, const float *dy, const uint16_t *v, kt_cuda_dtype vt, int64_t n) {
    if (vt == KT_CUDA_BF16) return gelu_bwd_v16(c, dx, dy, (const __nv_bfloat16 *)v, n);
    if (vt == KT_CUDA_F16) return gelu_bwd_v16(c, dx, dy, (const __half *)v, n);
    return kt_cu_errf(c, "GELU backward: the 16-bit input must be bf16 or f16");
}

extern "C" int kt_cuda_act_fwd_f32_to_bf16(kt_cuda_ctx *c, kt_act a, uint16_t *y, const float *x, int64_t n) {
    return act_round<__nv_bfloat16>(c, (int)a, y, x, n);
}
extern "C" int kt_cuda_act_fwd_f32_to_f16(kt_cuda_ctx *c, kt_act a, uint16_t *y, const float *x, int64_t n) {
    return act_round<__half>(c, (int)a, y, x, n);
}
extern "C" int kt_cuda_f32_to_bf16(kt_cuda_ctx *c, uint16_t *y, const float *x, int64_t n) { return act_round<__nv_bfloat16>(c, -1, y, x, n); }
extern "C" int kt_cuda_f32_to_f16(kt_cuda_ctx *c, uint16_t *y, const float *x, int64_t n) { return act_round<__half>(c, -1, y, x, n); }

extern "C" int kt_cuda_bf16_to_f32(kt_cuda_ctx *c, float *y, const uint16_t *x, int64_t n) { LAUNCH(k_bf16_to_f32, n, y, CBF(x), n); }
extern "C" int kt_cuda_add_bf16(kt_cuda_ctx *c, uint16_t *y, const uint16_t *a, const uint16_t *b, int64_t n) {
    LAUNCH(k_add_bf16, n, BF(y), CBF(a), CBF(b), n);
}
extern "C" int kt_cuda_act_fwd_bf16(kt_cuda_ctx *c, kt_act a, uint16_t *y, const uint16_t *x, int64_t n) {
    LAUNCH(k_act_fwd_bf16, n, (int)a, BF(y), CBF(x), n);
}
extern "C" int kt_cuda_act_bwd_bf16(kt_cuda_ctx *c, kt_act a, uint16_t *dx, const uint16_t *dy, const uint16_t *v, int64_t n) {
    LAUNCH(k_act_bwd_bf16, n, (int)a, BF(dx), CBF(dy), CBF(v), n);
}
