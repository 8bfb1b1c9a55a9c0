/* The engine's GEMM against one OpenBLAS call: see gemm_bench.h. */
#include "bench/gemm_bench.h"

#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/gemm.h"

kt_status kt_bench_gemm_run(int64_t M, int64_t N, int64_t K, int reps, kt_bench_gemm_row *r, kt_err *err) {
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K), *C = malloc(sizeof(float) * M * N);
    if (!A || !B || !C) {
        free(A), free(B), free(C);
        return kt_err_set(err, KT_ERR_NOMEM, "bench gemm: no memory for a %lld x %lld x %lld product", (long long)M, (long long)N,
                          (long long)K);
    }
    for (int64_t i = 0; i < M * K; i++) A[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (int64_t i = 0; i < N * K; i++) B[i] = (float)(i % 5) * 0.1f - 0.2f;
    for (int64_t i = 0; i < M * N; i++) C[i] = 0.0f; /* first touch outside the timing */
    double best_e = 1e30, best_w = 1e30;
    for (int i = 0; i < reps; i++) {
        double t = omp_get_wtime();
        kt_cpu_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        t = omp_get_wtime() - t;
        if (t < best_e) best_e = t;
        t = omp_get_wtime();
        kt_cpu_gemm_whole(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        t = omp_get_wtime() - t;
        if (t < best_w) best_w = t;
    }
    double flop = 2.0 * (double)M * (double)N * (double)K;
    *r = (kt_bench_gemm_row){M, N, K, kt_cpu_gemm_in_pieces(M, N, K), flop / best_e / 1e9, flop / best_w / 1e9};
    free(A), free(B), free(C);
    return KT_OK;
}
