// Row-major GEMMs through cuBLAS. A row-major C (M, N) is a column-major C^T (N, M), so
// C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: swap the operands, keep the transposes.
// f32 uses FP32 compute (or TF32 tensor cores when the context allows); bf16/f16 inputs use FP32 compute.
#include <limits.h>

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
