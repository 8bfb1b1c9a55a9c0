/* Runs are deterministic (README): the same thread count gives the same bits, run after run. Another
 * thread count changes only rounding: our own kernels (fixed reduction blocks, depthwise tiles) give
 * the same bits at any count, but OpenBLAS's sgemm hands its edge tiles to other micro-kernels when
 * it splits the work differently (measured: 1 and 2 threads differ in the last bits of every
 * ConvNeXt product, 300 x 70 x 50 up to 16384 x 160 x 40). One convnext_atto training step
 * (forward, label-smoothed cross-entropy, backward) at batch 16 and 128 px - the nail-disease
 * recipe's shape, whose first stage has the 16384-row products the GEMM cuts into pieces - must
 * repeat bit for bit with 2 threads, and agree with 1 and 3 threads to float rounding; a race or a
 * partition bug would show as either. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kt_test.h"
#include "nets/model.h"

/* loss, logits and gradients of one step with `threads` threads, into a fresh buffer */
static float *step(int threads, int64_t *n_out) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    kt_model m;
    kt_err err;
    kt_model_opts o = {.arch = "convnext_atto", .num_classes = 4, .batch = 16, .img_h = 128, .img_w = 128, .train = 1,
                       .label_smoothing = 0.1f};
    if (kt_model_create(&m, &o, NULL, &err) || kt_model_init_weights(&m, 7, &err)) {
        kt_test_fail(__FILE__, __LINE__, "convnext_atto: %s", err.msg);
        return NULL;
    }
    m.g.training = 1;
    float *x = kt_node_f32(m.input);
    for (int64_t i = 0; i < kt_node_numel(m.input); i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < 16; i++) ((int32_t *)m.labels->data)[i] = i % 4;
    float *out = NULL;
    if (kt_graph_run(&m.g, &err)) {
        kt_test_fail(__FILE__, __LINE__, "step with %d threads: %s", threads, err.msg);
    } else {
        int64_t np = m.g.n_param_elems, nl = kt_node_numel(m.logits);
        *n_out = 1 + nl + np;
        out = malloc(sizeof(float) * (size_t)*n_out);
        out[0] = kt_node_f32(m.loss)[0];
        memcpy(out + 1, kt_node_f32(m.logits), sizeof(float) * (size_t)nl);
        memcpy(out + 1 + nl, m.g.grad_buf, sizeof(float) * (size_t)np);
    }
    kt_model_free(&m);
    return out;
}

/* max |a - b| over a tensor, relative to max |a| */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i])), s = fmax(s, fabs((double)a[i]));
    return d / fmax(s, 1e-30);
}

KT_TEST(test_convnext_step_repeats_and_thread_counts_agree) {
    int saved = omp_get_max_threads();
    int64_t n2 = 0, n;
    float *two = step(2, &n2);
    KT_REQUIRE(two, "the two-thread step failed");
    float *again = step(2, &n);
    KT_CHECK(again && n == n2 && !memcmp(two, again, sizeof(float) * (size_t)n2), "two runs with 2 threads differ");
    free(again);
    for (int t = 1; t <= 3; t += 2) {
        float *other = step(t, &n);
        if (!other) continue;
        int64_t nl = 16 * 4;
        double eloss = rel_diff(two, other, 1), elog = rel_diff(two + 1, other + 1, nl);
        double egrad = rel_diff(two + 1 + nl, other + 1 + nl, n2 - 1 - nl);
        KT_CHECK(n == n2 && eloss < 1e-5 && elog < 1e-5 && egrad < 1e-5,
                 "%d threads against 2: loss %.3g, logits %.3g, gradients %.3g (relative to each one's largest)", t, eloss, elog,
                 egrad);
        free(other);
    }
    free(two);
    omp_set_num_threads(saved);
    openblas_set_num_threads(saved);
}
