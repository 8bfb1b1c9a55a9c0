// Stand-ins for kernels/cuda/gemm.cu and conv_cudnn.cu under emulation: plain double-accumulated
// loops with the same row-major / NHWC semantics (cuBLAS and cuDNN themselves are not exercised).
#include <vector>
#include "kernels/cuda/kt_cuda_internal.cuh"

static float ld(const void *p, int64_t i, kt_cuda_dtype t) {
    if (t == KT_CUDA_BF16) { __nv_bfloat16 h = ((const __nv_bfloat16 *)p)[i]; return __bfloat162float(h); }
    if (t == KT_CUDA_F16) return __half2float(((const __half *)p)[i]);
    return ((const float *)p)[i];
}
static void st(void *p, int64_t i, float v, kt_cuda_dtype t) {
    if (t == KT_CUDA_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else if (t == KT_CUDA_F16) ((__half *)p)[i] = __float2half_rn(v);
    else ((float *)p)[i] = v;
}
/* blas_loader.cu's table, over cuemu.h's stand-ins */
const kt_cu_blas_api *kt_cu_blas(const char **why) {
    (void)why;
    static const kt_cu_blas_api api = {cublasCreate, cublasDestroy, cublasSetStream, cublasSetWorkspace, cublasSetPointerMode,
                                       cublasGetStatusString};
    return &api;
}

extern "C" int kt_cuda_gemm(kt_cuda_ctx *c, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const void *A, int64_t lda,
                            const void *B, int64_t ldb, float beta, void *C, int64_t ldc, kt_cuda_dtype ab, kt_cuda_dtype cty) {
    (void)c;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)ld(A, ta ? k * lda + i : i * lda + k, ab) * ld(B, tb ? j * ldb + k : k * ldb + j, ab);
            float prev = beta != 0 ? ld(C, i * ldc + j, cty) : 0.0f;
            st(C, i * ldc + j, (float)(alpha * s + beta * prev), cty);
        }
    return 0;
}
extern "C" int kt_cuda_gemm_batched(kt_cuda_ctx *c, int ta, int tb, int64_t batch, int64_t M, int64_t N, int64_t K, const void *A,
                                    const void *B, void *C, kt_cuda_dtype ab, kt_cuda_dtype cty) {
    size_t ea = ab == KT_CUDA_F32 ? 4 : 2, ec = cty == KT_CUDA_F32 ? 4 : 2;
    for (int64_t i = 0; i < batch; i++)
        kt_cuda_gemm(c, ta, tb, M, N, K, 1.0f, (const char *)A + i * M * K * ea, ta ? M : K, (const char *)B + i * K * N * ea, tb ? K : N,
                     0.0f, (char *)C + i * M * N * ec, N, ab, cty);
    return 0;
}
/* cuBLASLt's bias epilogue: f32 (here double) accumulation, the bias (in D's type) added, one
 * rounding; declined as gemm.cu declines (switched off, unaligned buffers) */
extern "C" int kt_cuda_gemm_bias(kt_cuda_ctx *c, int64_t M, int64_t N, int64_t K, const void *A, const void *W, const void *bias, void *D,
                                 kt_cuda_dtype ab, kt_cuda_dtype dt) {
    if (dt != ab && dt != KT_CUDA_F32) return kt_cu_errf(c, "bias GEMM: the output must have the operands' type or be f32");
    if (c->lt_off || (((uintptr_t)A | (uintptr_t)W | (uintptr_t)bias | (uintptr_t)D) & 15)) return -1;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)ld(A, i * K + k, ab) * ld(W, j * K + k, ab);
            st(D, i * N + j, (float)s + ld(bias, j, dt), dt);
        }
    return 0;
}
void kt_cuda_lt_free(kt_cuda_ctx *c) { (void)c; }
void kt_cuda_conv_plans_free(kt_cuda_ctx *c) { (void)c; }
extern "C" int kt_cuda_conv_plan(kt_cuda_ctx *c, int kind, const kt_conv_shape *s, size_t *scratch_bytes) {
    (void)c; (void)kind;
    *scratch_bytes = (size_t)(s->Co * (s->Ci / s->groups) * s->kh * s->kw) * 4 + 256;
    return 0;
}
#define X(n, y, x, ch) (((n) * s->H + (y)) * s->W + (x)) * s->Ci + (ch)
#define Y(n, y, x, ch) (((n) * s->Ho + (y)) * s->Wo + (x)) * s->Co + (ch)
#define WI(co, ci, ky, kx) (((co) * Cig + (ci)) * s->kh + (ky)) * s->kw + (kx)
extern "C" int kt_cuda_conv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *, size_t) {
    (void)c;
    int64_t Cig = s->Ci / s->groups, Cog = s->Co / s->groups;
    for (int64_t n = 0; n < s->N; n++) for (int64_t oy = 0; oy < s->Ho; oy++) for (int64_t ox = 0; ox < s->Wo; ox++) for (int64_t co = 0; co < s->Co; co++) {
        int64_t g = co / Cog; double a = b ? b[co] : 0;
        for (int64_t ky = 0; ky < s->kh; ky++) for (int64_t kx = 0; kx < s->kw; kx++) {
            int64_t iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
            if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
            for (int64_t ci = 0; ci < Cig; ci++) a += (double)x[X(n, iy, ix, g * Cig + ci)] * w[WI(co, ci, ky, kx)];
        }
        y[Y(n, oy, ox, co)] = (float)a;
    }
    return 0;
}
extern "C" int kt_cuda_conv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *, size_t) {
    (void)c;
    int64_t Cig = s->Ci / s->groups, Cog = s->Co / s->groups;
    for (int64_t i = 0; i < s->N * s->H * s->W * s->Ci; i++) dx[i] = 0;
    std::vector<double> acc(s->N * s->H * s->W * s->Ci, 0.0);
    for (int64_t n = 0; n < s->N; n++) for (int64_t oy = 0; oy < s->Ho; oy++) for (int64_t ox = 0; ox < s->Wo; ox++) for (int64_t co = 0; co < s->Co; co++) {
        int64_t g = co / Cog;
        for (int64_t ky = 0; ky < s->kh; ky++) for (int64_t kx = 0; kx < s->kw; kx++) {
            int64_t iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
            if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
            for (int64_t ci = 0; ci < Cig; ci++) acc[X(n, iy, ix, g * Cig + ci)] += (double)dy[Y(n, oy, ox, co)] * w[WI(co, ci, ky, kx)];
        }
    }
    for (size_t i = 0; i < acc.size(); i++) dx[i] = (float)acc[i];
    return 0;
}
extern "C" int kt_cuda_conv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *, size_t) {
    (void)c;
    int64_t Cig = s->Ci / s->groups, Cog = s->Co / s->groups;
    for (int64_t co = 0; co < s->Co; co++) for (int64_t ci = 0; ci < Cig; ci++) for (int64_t ky = 0; ky < s->kh; ky++) for (int64_t kx = 0; kx < s->kw; kx++) {
        int64_t g = co / Cog; double a = 0;
        for (int64_t n = 0; n < s->N; n++) for (int64_t oy = 0; oy < s->Ho; oy++) for (int64_t ox = 0; ox < s->Wo; ox++) {
            int64_t iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
            if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
            a += (double)dy[Y(n, oy, ox, co)] * x[X(n, iy, ix, g * Cig + ci)];
        }
        dw[WI(co, ci, ky, kx)] = (float)a;
    }
    return 0;
}
