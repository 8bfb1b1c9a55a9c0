// Row-major GEMMs through cuBLAS. A row-major C (M, N) is a column-major C^T (N, M), so
// C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: swap the operands, keep the transposes.
// f32 uses FP32 compute (or TF32 tensor cores when the context allows); bf16/f16 inputs use FP32 compute.
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/kt_cuda_internal.cuh"

static cudaDataType_t dt_of(kt_cuda_dtype t) { return t == KT_CUDA_BF16 ? CUDA_R_16BF : t == KT_CUDA_F16 ? CUDA_R_16F : CUDA_R_32F; }

static cublasComputeType_t compute_of(const kt_cuda_ctx *c, kt_cuda_dtype ab) {
    return ab == KT_CUDA_F32 && c->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

static int too_big(kt_cuda_ctx *c, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
    int64_t v[6] = {M, N, K, lda, ldb, ldc};
    for (int i = 0; i < 6; i++)
        if (v[i] < 1 || v[i] > INT_MAX)
            return kt_cu_errf(c, "GEMM (%lld x %lld x %lld, ld %lld/%lld/%lld): a dimension is outside cuBLAS's int range",
                              (long long)M, (long long)N, (long long)K, (long long)lda, (long long)ldb, (long long)ldc);
    return 0;
}

static int blas_check(kt_cuda_ctx *c, cublasStatus_t s, const char *what, int64_t M, int64_t N, int64_t K) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    return kt_cu_errf(c, "%s (%lld x %lld x %lld): %s", what, (long long)M, (long long)N, (long long)K, c->blas_api->status_string(s));
}

extern "C" int kt_cuda_gemm(kt_cuda_ctx *c, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const void *A,
                            int64_t lda, const void *B, int64_t ldb, float beta, void *C, int64_t ldc, kt_cuda_dtype ab,
                            kt_cuda_dtype cty) {
    if (too_big(c, M, N, K, lda, ldb, ldc)) return 1;
    cublasStatus_t s = c->blas_api->gemm(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M,
                                    (int)K, &alpha, B, dt_of(ab), (int)ldb, A, dt_of(ab), (int)lda, &beta, C, dt_of(cty),
                                    (int)ldc, compute_of(c, ab), CUBLAS_GEMM_DEFAULT);
    return blas_check(c, s, "cublasGemmEx", M, N, K);
}

extern "C" int kt_cuda_gemm_batched(kt_cuda_ctx *c, int ta, int tb, int64_t batch, int64_t M, int64_t N, int64_t K,
                                    const void *A, const void *B, void *C, kt_cuda_dtype ab, kt_cuda_dtype cty) {
    int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
    if (too_big(c, M, N, K, lda, ldb, ldc)) return 1;
    if (batch < 1 || batch > INT_MAX) return kt_cu_errf(c, "batched GEMM: batch %lld out of range", (long long)batch);
    float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t s = c->blas_api->gemm_batched(
        c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, B, dt_of(ab),
        (int)ldb, (long long)(K * N), A, dt_of(ab), (int)lda, (long long)(M * K), &beta, C, dt_of(cty), (int)ldc,
        (long long)(M * N), (int)batch, compute_of(c, ab), CUBLAS_GEMM_DEFAULT);
    return blas_check(c, s, "cublasGemmStridedBatchedEx", M, N, K);
}

/* ---- cuBLASLt with a bias epilogue ----
 * A linear with a bias went through cuBLAS in one of two ways: into an f32 result and a second pass
 * adding the bias (and rounding, for an output stored in 16 bits: 4 bytes written and read back per
 * element besides the 2 stored), or over a bias-filled output with beta 1 (a fill pass, and C read
 * back). cuBLASLt adds the bias in the GEMM's epilogue and writes the output in its type itself, as
 * autocast's linear does (its bias in the output's type: rounded to 16 bits first for a 16-bit
 * output). One descriptor set and algorithm per shape and types, chosen once by cuBLASLt's heuristic
 * for 16-byte-aligned buffers (every arena tensor is). */

struct kt_cu_ltplan {
    int64_t M, N, K;
    kt_cuda_dtype ab, dt;
    int tf32;
    int ok; /* 0: cuBLASLt has no algorithm for it (the caller takes the cuBLAS path) */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
};

static void plan_free(const kt_cu_blas_api *b, kt_cu_ltplan *p) {
    if (p->ld) b->lt_layout_destroy(p->ld);
    if (p->lb) b->lt_layout_destroy(p->lb);
    if (p->la) b->lt_layout_destroy(p->la);
    if (p->op) b->lt_desc_destroy(p->op);
}

void kt_cuda_lt_free(kt_cuda_ctx *c) {
    for (int i = 0; i < c->n_lt; i++) plan_free(c->blas_api, &c->lt_plans[i]);
    free(c->lt_plans);
    c->lt_plans = NULL;
    c->n_lt = c->cap_lt = 0;
    if (c->lt) c->blas_api->lt_destroy((cublasLtHandle_t)c->lt);
    c->lt = NULL;
}

/* The plan for D (M, N) = A (M, K) W (N, K)^T + bias, made on first use. Row-major D is column-major
 * D^T (N, M) = W A^T: cuBLASLt's A is W transposed (stored K x N), its B is A (K x M). */
static kt_cu_ltplan *lt_plan(kt_cuda_ctx *c, int64_t M, int64_t N, int64_t K, kt_cuda_dtype ab, kt_cuda_dtype dt) {
    int tf32 = ab == KT_CUDA_F32 && c->tf32;
    for (int i = 0; i < c->n_lt; i++) {
        kt_cu_ltplan *p = &c->lt_plans[i];
        if (p->M == M && p->N == N && p->K == K && p->ab == ab && p->dt == dt && p->tf32 == tf32) return p;
    }
    const kt_cu_blas_api *b = c->blas_api;
    if (!c->lt) {
        cublasLtHandle_t h;
        if (b->lt_create(&h) != CUBLAS_STATUS_SUCCESS) return NULL;
        c->lt = h;
    }
    if (c->n_lt == c->cap_lt) {
        int cap = c->cap_lt ? 2 * c->cap_lt : 16;
        kt_cu_ltplan *np = (kt_cu_ltplan *)realloc(c->lt_plans, (size_t)cap * sizeof *np);
        if (!np) return NULL;
        c->lt_plans = np, c->cap_lt = cap;
    }
    kt_cu_ltplan *p = &c->lt_plans[c->n_lt];
    memset(p, 0, sizeof *p);
    p->M = M, p->N = N, p->K = K, p->ab = ab, p->dt = dt, p->tf32 = tf32;
    cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    cublasLtMatmulPreference_t pref = NULL;
    uint64_t ws = c->blas_ws_bytes;
    uint32_t align = 16;
    /* the heuristic reads the bias pointer's alignment, not the bias: a 16-byte one, as every call's */
    const void *bias = (const void *)(uintptr_t)16;
    int ok = b->lt_desc_create(&p->op, compute_of(c, ab), CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
             b->lt_desc_set(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT) == CUBLAS_STATUS_SUCCESS &&
             b->lt_desc_set(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN) == CUBLAS_STATUS_SUCCESS &&
             b->lt_desc_set(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == CUBLAS_STATUS_SUCCESS &&
             b->lt_desc_set(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) == CUBLAS_STATUS_SUCCESS &&
             b->lt_layout_create(&p->la, dt_of(ab), (uint64_t)K, (uint64_t)N, K) == CUBLAS_STATUS_SUCCESS &&
             b->lt_layout_create(&p->lb, dt_of(ab), (uint64_t)K, (uint64_t)M, K) == CUBLAS_STATUS_SUCCESS &&
             b->lt_layout_create(&p->ld, dt_of(dt), (uint64_t)N, (uint64_t)M, N) == CUBLAS_STATUS_SUCCESS &&
             b->lt_pref_create(&pref) == CUBLAS_STATUS_SUCCESS &&
             b->lt_pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) == CUBLAS_STATUS_SUCCESS;
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; ok && i < 4; i++) ok = b->lt_pref_set(pref, aligns[i], &align, sizeof align) == CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    if (ok)
        ok = b->lt_heuristic((cublasLtHandle_t)c->lt, p->op, p->la, p->lb, p->ld, p->ld, pref, 1, &res, &found) == CUBLAS_STATUS_SUCCESS &&
             found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
    if (pref) b->lt_pref_destroy(pref);
    if (ok) p->algo = res.algo;
    else { /* remembered as declined: the heuristic is not asked again for this shape */
        plan_free(b, p);
        memset(&p->op, 0, sizeof *p - offsetof(kt_cu_ltplan, op));
    }
    p->ok = ok;
    c->n_lt++;
    return p;
}

static int al16p(const void *p) { return ((uintptr_t)p & 15) == 0; }

extern "C" int kt_cuda_gemm_bias(kt_cuda_ctx *c, int64_t M, int64_t N, int64_t K, const void *A, const void *W, const void *bias, void *D,
                                 kt_cuda_dtype ab, kt_cuda_dtype dt) {
    if (dt != ab && dt != KT_CUDA_F32) return kt_cu_errf(c, "bias GEMM: the output must have the operands' type or be f32");
    const kt_cu_blas_api *b = c->blas_api;
    if (c->lt_off || !b->lt_ok || !al16p(A) || !al16p(W) || !al16p(bias) || !al16p(D) || M > INT_MAX || N > INT_MAX || K > INT_MAX)
        return -1;
    kt_cu_ltplan *p = lt_plan(c, M, N, K, ab, dt);
    if (!p || !p->ok) return -1;
    if (b->lt_desc_set(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) != CUBLAS_STATUS_SUCCESS) return -1;
    float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t s = b->lt_matmul((cublasLtHandle_t)c->lt, p->op, &alpha, W, p->la, A, p->lb, &beta, D, p->ld, D, p->ld, &p->algo, c->blas_ws,
                                    c->blas_ws_bytes, c->stream);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED) { /* nothing ran: this shape takes the cuBLAS path from now on */
        p->ok = 0;
        return -1;
    }
    return blas_check(c, s, "cublasLtMatmul (bias epilogue)", M, N, K);
}
