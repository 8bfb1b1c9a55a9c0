/* Row-major matrix multiply through OpenBLAS: C = alpha op(A) op(B) + beta C. */
#ifndef KT_CPU_GEMM_H
#define KT_CPU_GEMM_H

#include <stdint.h>

void kt_cpu_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* The same product as one OpenBLAS call, whatever its shape (kt_cpu_gemm splits tall ones into row
 * pieces); `keratrack bench gemm` compares the two. */
void kt_cpu_gemm_whole(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* 1 when kt_cpu_gemm, called here and now, splits an M x N x K product into row pieces (tall
 * enough, a small op(B), more than one thread, not already inside a parallel region). */
int kt_cpu_gemm_in_pieces(int64_t M, int64_t N, int64_t K);
/* Batched: batch independent products of (M,K)x(K,N) with the given transposes, contiguous operands. */
void kt_cpu_gemm_batched(int trans_a, int trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, const float *A,
                         const float *B, float *C);

#endif
