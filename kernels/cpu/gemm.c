/* cblas_sgemm wrappers: every dense product of the engine goes through here. */
#include "kernels/cpu/gemm.h"

#include <cblas.h>

void kt_cpu_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
                (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

void kt_cpu_gemm_batched(int ta, int tb, int64_t batch, int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                         float *C) {
    for (int64_t i = 0; i < batch; i++)
        kt_cpu_gemm(ta, tb, M, N, K, 1.0f, A + i * M * K, ta ? M : K, B + i * K * N, tb ? K : N, 0.0f, C + i * M * N, N);
}
