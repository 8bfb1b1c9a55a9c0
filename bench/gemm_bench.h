/* GFLOP/s of the engine's GEMM (kt_cpu_gemm, which splits tall products into row pieces) against
 * one OpenBLAS call, on the products a ConvNeXt linear layer makes: the evidence for where pieces pay. */
#ifndef KT_BENCH_GEMM_H
#define KT_BENCH_GEMM_H

#include <stdint.h>

#include "base/status.h"

typedef struct kt_bench_gemm_row {
    int64_t M, N, K;     /* C = A (M x K) B^T (B: N x K), as a linear layer's forward */
    int pieces;          /* kt_cpu_gemm splits this one (at the thread count it ran with) */
    double gflops_engine; /* best of the repetitions */
    double gflops_whole;
} kt_bench_gemm_row;

/* Times product (M, N, K) reps times each way, alternating so that a slow spell of the machine
 * lands on both; fills r. KT_ERR_NOMEM when the operands cannot be allocated. */
kt_status kt_bench_gemm_run(int64_t M, int64_t N, int64_t K, int reps, kt_bench_gemm_row *r, kt_err *err);

#endif
