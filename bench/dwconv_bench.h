/* Time of the engine's CPU depthwise convolution (forward, data gradient, weight gradient) on one
 * NHWC shape: the per-kernel rows beside PyTorch's (bench/pytorch_dwconv.py) in bench/README.md. */
#ifndef KT_BENCH_DWCONV_H
#define KT_BENCH_DWCONV_H

#include <stdint.h>

#include "base/status.h"

typedef struct kt_bench_dwconv_row {
    int64_t N, H, W, C, k; /* input (N, H, W, C), kernel k x k, stride 1, padding k/2 */
    double best_s[3];      /* forward, data gradient, weight gradient: best of the repetitions */
    double gflops[3];      /* 2 per multiply-add: N H W C k^2 each */
} kt_bench_dwconv_row;

/* Runs the three passes reps times each, in turn, after one untimed round; fills r. KT_ERR_NOMEM
 * when the buffers cannot be allocated. */
kt_status kt_bench_dwconv_run(int64_t N, int64_t H, int64_t W, int64_t C, int64_t k, int reps, kt_bench_dwconv_row *r,
                              kt_err *err);

#endif
