/* cblas_sgemm wrappers: every dense product of the engine goes through here. */
#include "kernels/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>

/* Tall products: C of at least TALL_ROWS rows and op(B) of at most TALL_B floats (1 MiB). One
 * OpenBLAS call splits M over the threads but streams all of C through memory twice (its beta pass,
 * then the product: 77 MB each at ConvNeXt's first stage, batch 16); in CHUNK_ROWS-row pieces, one
 * thread each, a piece of C stays in L2 between the two. On this 2-core machine those calls went
 * from 101-111 to 133-140 GFLOP/s inside a convnext_tiny training step; forced at 3136 rows, pieces
 * ran at 0.8x of one call, hence the bounds (`keratrack bench gemm`; bench/README.md section 1).
 * The pieces and their order are fixed by the shape, so a thread count still gives one result. */
#define TALL_ROWS 16384
#define TALL_B 262144
#define CHUNK_ROWS 512

static void sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
                (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

int kt_cpu_gemm_in_pieces(int64_t M, int64_t N, int64_t K) {
    /* pieces need a second thread, and inside a parallel region the caller already splits the work */
    return M >= TALL_ROWS && N * K <= TALL_B && omp_get_max_threads() > 1 && !omp_in_parallel();
}

void kt_cpu_gemm_whole(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                       int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void kt_cpu_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (kt_cpu_gemm_in_pieces(M, N, K)) {
        int64_t pieces = (M + CHUNK_ROWS - 1) / CHUNK_ROWS;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < pieces; i++) {
            int64_t r0 = i * CHUNK_ROWS, m = M - r0 < CHUNK_ROWS ? M - r0 : CHUNK_ROWS;
            /* rows r0.. of op(A): rows of A, or columns of the stored A^T */
            sgemm(ta, tb, m, N, K, alpha, ta ? A + r0 : A + r0 * lda, lda, B, ldb, beta, C + r0 * ldc, ldc);
        }
        return;
    }
    sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void kt_cpu_gemm_batched(int ta, int tb, int64_t batch, int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                         float *C) {
    for (int64_t i = 0; i < batch; i++)
        kt_cpu_gemm(ta, tb, M, N, K, 1.0f, A + i * M * K, ta ? M : K, B + i * K * N, tb ? K : N, 0.0f, C + i * M * N, N);
}
