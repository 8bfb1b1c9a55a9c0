/* The engine's depthwise convolution on one shape: see dwconv_bench.h. */
#include "bench/dwconv_bench.h"

#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu/dwconv.h"

kt_status kt_bench_dwconv_run(int64_t N, int64_t H, int64_t W, int64_t C, int64_t k, int reps, kt_bench_dwconv_row *r,
                              kt_err *err) {
    kt_conv_shape s = {.N = N, .H = H, .W = W, .Ci = C, .Co = C, .kh = k, .kw = k, .sh = 1, .sw = 1, .ph = k / 2, .pw = k / 2,
                       .groups = C};
    kt_conv_shape_finish(&s);
    size_t n = (size_t)(N * H * W * C), no = (size_t)(N * s.Ho * s.Wo * C), nw = (size_t)(C * k * k);
    size_t sz = kt_cpu_dwconv_scratch(&s), szw = kt_cpu_dwconv_bwd_weight_scratch(&s);
    float *x = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float)), *y = malloc(no * sizeof(float));
    float *dy = malloc(no * sizeof(float)), *w = malloc(nw * sizeof(float)), *dw = malloc(nw * sizeof(float));
    float *b = malloc((size_t)C * sizeof(float));
    void *scratch = malloc(sz > szw ? sz : szw);
    if (!x || !dx || !y || !dy || !w || !dw || !b || !scratch) {
        free(x), free(dx), free(y), free(dy), free(w), free(dw), free(b), free(scratch);
        return kt_err_set(err, KT_ERR_NOMEM, "bench dwconv: no memory for a %lldx%lldx%lldx%lld image batch", (long long)N,
                          (long long)H, (long long)W, (long long)C);
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 13) * 0.1f - 0.6f, dx[i] = 0.0f;
    for (size_t i = 0; i < no; i++) dy[i] = (float)(i % 11) * 0.1f - 0.5f, y[i] = 0.0f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)(i % 7) * 0.05f - 0.15f;
    for (int64_t i = 0; i < C; i++) b[i] = 0.01f * (float)(i % 3);
    *r = (kt_bench_dwconv_row){N, H, W, C, k, {1e30, 1e30, 1e30}, {0, 0, 0}};
    for (int i = 0; i <= reps; i++) /* round 0 warms caches and pages and is not counted */
        for (int p = 0; p < 3; p++) {
            double t = omp_get_wtime();
            if (p == 0) kt_cpu_dwconv_fwd(&s, x, w, b, y, scratch);
            else if (p == 1) kt_cpu_dwconv_bwd_data(&s, dy, w, dx, scratch);
            else kt_cpu_dwconv_bwd_weight(&s, dy, x, dw, scratch);
            t = omp_get_wtime() - t;
            if (i > 0 && t < r->best_s[p]) r->best_s[p] = t;
        }
    double flop = 2.0 * (double)no * (double)(k * k);
    for (int p = 0; p < 3; p++) r->gflops[p] = flop / r->best_s[p] / 1e9;
    free(x), free(dx), free(y), free(dy), free(w), free(dw), free(b), free(scratch);
    return KT_OK;
}
