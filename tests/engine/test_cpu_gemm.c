/* kt_cpu_gemm against a double-precision loop, on the tall shapes it splits into row pieces (ConvNeXt's
 * first stage at batch 16 has 50176 rows) and on a short one it passes whole to OpenBLAS: every
 * transpose, an uneven last piece, alpha and beta (the linear op accumulates onto its bias), and
 * strides wider than the matrices. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/gemm.h"
#include "kt_test.h"

/* every step-th row, then the last one, then done (M) */
static int64_t next_row(int64_t i, int64_t M, int64_t step) {
    if (i == M - 1) return M;
    return i + step < M ? i + step : M - 1;
}

/* max |C - ref| / max(1, |ref|) over C = alpha op(A) op(B) + beta C0, on every row_step-th row and the last */
static double gemm_error(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, float beta, int64_t pad, int64_t row_step) {
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t ra = ta ? K : M, rb = tb ? N : K;
    float *A = malloc(sizeof(float) * ra * lda), *B = malloc(sizeof(float) * rb * ldb), *C = malloc(sizeof(float) * M * ldc);
    float *C0 = malloc(sizeof(float) * M * ldc);
    unsigned s = 7;
    for (int64_t i = 0; i < ra * lda; i++) A[i] = kt_test_frand(&s);
    for (int64_t i = 0; i < rb * ldb; i++) B[i] = kt_test_frand(&s);
    for (int64_t i = 0; i < M * ldc; i++) C[i] = C0[i] = kt_test_frand(&s);
    kt_cpu_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst = 0;
    for (int64_t i = 0; i < M; i = next_row(i, M, row_step))
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            double ref = alpha * acc + beta * C0[i * ldc + j], e = fabs(C[i * ldc + j] - ref) / fmax(1.0, fabs(ref));
            if (e > worst) worst = e;
        }
    for (int64_t i = 0; i < M; i++) /* the padding between rows is not C's: untouched */
        for (int64_t j = N; j < ldc; j++)
            if (C[i * ldc + j] != C0[i * ldc + j]) worst = INFINITY;
    free(A), free(B), free(C), free(C0);
    return worst;
}

KT_TEST(test_cpu_gemm_tall_products_in_row_pieces) {
    int threads = omp_get_max_threads();
    omp_set_num_threads(2); /* the pieces need more than one thread, whatever the machine has */
    /* 16384 + 37 rows: 33 pieces, the last of 37 rows; K=24, N=40 */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            double e = gemm_error(ta, tb, 16421, 40, 24, 1.0f, 0.0f, 0, 1);
            KT_CHECK(e < 1e-5, "ta %d tb %d: relative error %.3g", ta, tb, e);
        }
    double e = gemm_error(0, 1, 16421, 40, 24, 0.5f, 1.0f, 3, 1);
    KT_CHECK(e < 1e-5, "alpha 0.5, beta 1, strides 3 wider: %.3g", e);
    e = gemm_error(1, 0, 16421, 40, 24, -2.0f, 0.25f, 5, 1);
    KT_CHECK(e < 1e-5, "A transposed, strides 5 wider: %.3g", e);
    omp_set_num_threads(threads);
}

KT_TEST(test_cpu_gemm_short_and_wide_products_whole) {
    double e = gemm_error(0, 1, 300, 70, 50, 1.0f, 1.0f, 2, 1); /* short: one OpenBLAS call */
    KT_CHECK(e < 1e-5, "300 rows: %.3g", e);
    e = gemm_error(0, 0, 16400, 600, 450, 1.0f, 0.0f, 0, 41); /* op(B) over 1 MiB: one call; rows sampled */
    KT_CHECK(e < 1e-4, "16400 rows, B 450x600: %.3g", e);
}
