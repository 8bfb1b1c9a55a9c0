/* Every op forward and backward on the GPU against the CPU backend, on random inputs, with NaN-poisoned
 * GPU buffers and a bitwise rerun (cuda_twin.c). Bounds, relative to each tensor's largest value:
 *   TOL_ELEM 1e-6  elementwise ops, data movement, pooling (same formulas; erff/expf differ by ulps)
 *   TOL_RED  1e-5  reductions, norms, softmax and losses (other summation orders, fp32)
 *   TOL_GEMM 2e-5  cuBLAS / cuDNN / depthwise products (fp32 FMA, K-long sums in other orders)
 * TF32 is off (the backend's default), so fp32 bounds apply to the GEMMs too. */
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "kt_test.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"
#endif

#define TOL_ELEM 1e-6
#define TOL_RED 1e-5
#define TOL_GEMM 2e-5

#define P(g, name, ...) kt_param(g, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}, 0)
#define IN(g, name, ...) kt_input(g, name, KT_F32, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

static void twin(kt_twin_build_fn fn, void *arg, const char *label, double tol, int training) {
    kt_twin_opts o = {.label = label, .tol = tol, .training = training, .lo = -1.0f, .hi = 1.0f, .seed = 1234u};
    KT_CHECK(kt_twin_check(fn, arg, &o) == 0, "%s: GPU differs from CPU (details above)", label);
}

static void twin_range(kt_twin_build_fn fn, void *arg, const char *label, double tol, float lo, float hi, float min_abs) {
    kt_twin_opts o = {.label = label, .tol = tol, .training = 1, .lo = lo, .hi = hi, .min_abs = min_abs, .seed = 99u};
    KT_CHECK(kt_twin_check(fn, arg, &o) == 0, "%s: GPU differs from CPU (details above)", label);
}

/* ---- convolutions ---- */

typedef struct conv_case {
    int64_t N, H, W, Ci, Co, k, kw;
    int sh, sw, ph, pw, groups, bias;
} conv_case;

static kt_node *build_conv(kt_graph *g, void *arg) {
    const conv_case *c = arg;
    kt_node *x = P(g, "x", c->N, c->H, c->W, c->Ci);
    kt_node *w = P(g, "w", c->Co, c->Ci / c->groups, c->k, c->kw);
    kt_node *b = c->bias ? P(g, "b", c->Co) : NULL;
    return kt_conv2d_ex(g, x, w, b, c->sh, c->sw, c->ph, c->pw, c->groups);
}

KT_TEST(test_cuda_conv2d_cudnn) {
    kt_twin_backend();
    conv_case c1 = {2, 9, 7, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1};
    twin(build_conv, &c1, "conv 3x3 stride 2 pad 1 (cuDNN)", TOL_GEMM, 1);
    conv_case c2 = {2, 8, 8, 3, 12, 4, 4, 4, 4, 0, 0, 1, 1};
    twin(build_conv, &c2, "conv 4x4 stride 4 (ConvNeXt stem, cuDNN)", TOL_GEMM, 1);
    conv_case c3 = {2, 8, 6, 16, 24, 2, 2, 2, 2, 0, 0, 1, 1};
    twin(build_conv, &c3, "conv 2x2 stride 2 (ConvNeXt downsample, cuDNN)", TOL_GEMM, 1);
    conv_case c4 = {2, 5, 5, 4, 6, 3, 3, 1, 1, 1, 0, 2, 0};
    twin(build_conv, &c4, "conv groups=2 pad 1x0 (cuDNN)", TOL_GEMM, 1);
    /* a non-square kernel and stride: the filter's height and width are not interchangeable */
    conv_case c5 = {2, 7, 6, 4, 6, 3, 2, 2, 1, 1, 0, 1, 1};
    twin(build_conv, &c5, "conv 3x2 stride 2x1 pad 1x0 (cuDNN)", TOL_GEMM, 1);
}

KT_TEST(test_cuda_conv2d_pointwise_gemm) {
    kt_twin_backend();
    conv_case c = {2, 5, 3, 40, 24, 1, 1, 1, 1, 0, 0, 1, 1};
    twin(build_conv, &c, "conv 1x1 (cuBLAS)", TOL_GEMM, 1);
}

KT_TEST(test_cuda_dwconv_7x7) {
    kt_twin_backend();
    /* 40 channels (not a multiple of 32) and 13 columns (not a multiple of the 8-wide tiles) */
    conv_case c = {2, 13, 13, 40, 40, 7, 7, 1, 1, 3, 3, 40, 1};
    twin(build_conv, &c, "depthwise 7x7 pad 3 (register-tiled path)", TOL_GEMM, 1);
    conv_case c2 = {1, 6, 37, 72, 72, 7, 7, 1, 1, 3, 3, 72, 0};
    twin(build_conv, &c2, "depthwise 7x7 pad 3, wide rows", TOL_GEMM, 1);
    /* channels a multiple of 4 take the 4-channel kernels (above); these the scalar ones, and 136
     * (34 groups of 4: a second, partly filled block of channels) the 4-channel ones again */
    conv_case c3 = {2, 11, 13, 38, 38, 7, 7, 1, 1, 3, 3, 38, 1};
    twin(build_conv, &c3, "depthwise 7x7 pad 3, 38 channels (scalar register-tiled path)", TOL_GEMM, 1);
    conv_case c4 = {1, 9, 10, 136, 136, 7, 7, 1, 1, 3, 3, 136, 1};
    twin(build_conv, &c4, "depthwise 7x7 pad 3, 136 channels (4-channel path, two channel blocks)", TOL_GEMM, 1);
}

KT_TEST(test_cuda_dwconv_other_geometries) {
    kt_twin_backend();
    conv_case c1 = {2, 9, 7, 6, 6, 3, 3, 2, 2, 1, 1, 6, 1};
    twin(build_conv, &c1, "depthwise 3x3 stride 2 (plain path)", TOL_GEMM, 1);
    conv_case c2 = {2, 6, 9, 5, 5, 3, 3, 1, 1, 1, 1, 5, 1};
    twin(build_conv, &c2, "depthwise 3x3 stride 1 (tiled path, K=3)", TOL_GEMM, 1);
    conv_case c3 = {1, 7, 8, 4, 4, 5, 3, 1, 1, 2, 0, 4, 0};
    twin(build_conv, &c3, "depthwise 5x3 pad 2x0 (plain path)", TOL_GEMM, 1);
    conv_case c4 = {2, 6, 9, 12, 12, 3, 3, 1, 1, 1, 1, 12, 1};
    twin(build_conv, &c4, "depthwise 3x3 stride 1, 12 channels (4-channel tiled path, K=3)", TOL_GEMM, 1);
    conv_case c5 = {2, 8, 7, 8, 8, 5, 5, 1, 1, 1, 1, 8, 0};
    twin(build_conv, &c5, "depthwise 5x5 pad 1 (4-channel tiled path, K=5, output smaller than input)", TOL_GEMM, 1);
}

/* ---- GEMMs ---- */

static kt_node *build_linear(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *x = P(g, "x", 3, 7, 48), *w = P(g, "w", 40, 48), *b = P(g, "b", 40);
    return kt_linear(g, x, w, b);
}

typedef struct mm_case {
    int ta, tb, batched;
} mm_case;

static kt_node *build_matmul(kt_graph *g, void *arg) {
    const mm_case *m = arg;
    int64_t M = 5, K = 9, N = 7;
    kt_node *a, *b;
    if (m->batched) {
        a = m->ta ? P(g, "a", 3, K, M) : P(g, "a", 3, M, K);
        b = m->tb ? P(g, "b", 3, N, K) : P(g, "b", 3, K, N);
    } else {
        a = m->ta ? P(g, "a", K, M) : P(g, "a", M, K);
        b = m->tb ? P(g, "b", N, K) : P(g, "b", K, N);
    }
    return kt_matmul(g, a, b, m->ta, m->tb);
}

KT_TEST(test_cuda_linear_matmul) {
    kt_twin_backend();
    twin(build_linear, NULL, "linear with bias on (3, 7, 48)", TOL_GEMM, 1);
    for (int batched = 0; batched < 2; batched++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                mm_case m = {ta, tb, batched};
                char label[64];
                snprintf(label, sizeof label, "%smatmul ta=%d tb=%d", batched ? "batched " : "", ta, tb);
                twin(build_matmul, &m, label, TOL_GEMM, 1);
            }
}

/* ---- normalisation ---- */

typedef struct norm_case {
    int64_t rows_a, rows_b, C;
    int affine;
} norm_case;

static kt_node *build_layernorm(kt_graph *g, void *arg) {
    const norm_case *c = arg;
    kt_node *x = P(g, "x", c->rows_a, c->rows_b, c->C);
    kt_node *w = c->affine ? P(g, "w", c->C) : NULL, *b = c->affine ? P(g, "b", c->C) : NULL;
    return kt_layernorm(g, x, w, b, 1e-6f);
}

KT_TEST(test_cuda_layernorm) {
    kt_twin_backend();
    norm_case a = {2, 3, 96, 1};
    twin(build_layernorm, &a, "layernorm affine C=96", TOL_RED, 1);
    norm_case b = {5, 7, 33, 0};
    twin(build_layernorm, &b, "layernorm plain C=33", TOL_RED, 1);
    norm_case c = {40, 80, 24, 1}; /* 3200 rows: many row blocks in the weight/bias reduction */
    twin(build_layernorm, &c, "layernorm affine, 3200 rows", TOL_RED, 1);
    norm_case d = {30, 40, 35, 1}; /* C % 4 != 0: the scalar weight/bias reduction */
    twin(build_layernorm, &d, "layernorm affine C=35, 1200 rows", TOL_RED, 1);
}

static kt_node *build_batchnorm(kt_graph *g, void *arg) {
    const norm_case *c = arg;
    kt_node *x = P(g, "x", c->rows_a, 3, 2, c->C), *w = P(g, "w", c->C), *b = P(g, "b", c->C);
    kt_node *rm = kt_param(g, "running_mean", 1, (int64_t[]){c->C}, KT_NODE_BUFFER);
    kt_node *rv = kt_param(g, "running_var", 1, (int64_t[]){c->C}, KT_NODE_BUFFER);
    return kt_batchnorm(g, x, w, b, rm, rv, 1e-5f, 0.1f);
}

KT_TEST(test_cuda_batchnorm) {
    kt_twin_backend();
    norm_case c = {4, 0, 37, 1};
    twin(build_batchnorm, &c, "batchnorm training (running statistics updated)", TOL_RED, 1);
    twin(build_batchnorm, &c, "batchnorm eval", TOL_RED, 0);
    norm_case big = {300, 0, 16, 1};
    twin(build_batchnorm, &big, "batchnorm training, 1800 rows", TOL_RED, 1);
}

/* ---- elementwise ---- */

static kt_node *(*const unary_ops[5])(kt_graph *, kt_node *) = {kt_gelu, kt_relu, kt_silu, kt_sigmoid, kt_copy};

/* op index and width: 37 columns take the scalar kernels, 40 the 4-wide ones */
typedef struct unary_case {
    int op;
    int64_t C;
} unary_case;

static kt_node *build_unary(kt_graph *g, void *arg) {
    const unary_case *u = arg;
    return unary_ops[u->op](g, P(g, "x", 6, u->C));
}

KT_TEST(test_cuda_activations) {
    kt_twin_backend();
    for (int64_t C = 37; C <= 40; C += 3) {
        unary_case gelu = {0, C}, relu = {1, C}, silu = {2, C}, sigmoid = {3, C}, copy = {4, C};
        char l[5][32];
        snprintf(l[0], sizeof l[0], "gelu, width %lld", (long long)C);
        snprintf(l[1], sizeof l[1], "relu, width %lld", (long long)C);
        snprintf(l[2], sizeof l[2], "silu, width %lld", (long long)C);
        snprintf(l[3], sizeof l[3], "sigmoid, width %lld", (long long)C);
        snprintf(l[4], sizeof l[4], "copy, width %lld", (long long)C);
        twin_range(build_unary, &gelu, l[0], TOL_ELEM, -4, 4, 0);
        twin_range(build_unary, &relu, l[1], TOL_ELEM, -3, 3, 0.05f);
        twin_range(build_unary, &silu, l[2], TOL_ELEM, -4, 4, 0);
        twin_range(build_unary, &sigmoid, l[3], TOL_ELEM, -4, 4, 0);
        twin_range(build_unary, &copy, l[4], TOL_ELEM, -1, 1, 0);
    }
}

/* width 24 takes the 4-wide elementwise kernels and column sums, 23 the scalar ones */
static kt_node *build_arith(kt_graph *g, void *arg) {
    int64_t C = *(const int64_t *)arg;
    kt_node *a = P(g, "a", 4, 5, C), *b = P(g, "b", 4, 5, C), *gamma = P(g, "gamma", C), *bias = P(g, "bias", C);
    kt_node *h = kt_add(g, a, kt_add(g, a, b));                 /* a twice: gradients accumulate */
    h = kt_mul(g, kt_mul(g, h, b), gamma);                      /* same-shape and broadcast products */
    return kt_scale(g, kt_bias(g, h, bias), -1.7f);
}

KT_TEST(test_cuda_add_mul_scale_bias) {
    kt_twin_backend();
    int64_t vec = 24, scalar = 23;
    twin(build_arith, &vec, "add, mul, mul broadcast, bias, scale; width 24", TOL_RED, 1);
    twin(build_arith, &scalar, "add, mul, mul broadcast, bias, scale; width 23", TOL_RED, 1);
}

static kt_node *build_dropout(kt_graph *g, void *arg) {
    int path = *(const int *)arg;
    kt_node *x = P(g, "x", 8, 5, 3, 7);
    return path ? kt_drop_path(g, x, 0.4f) : kt_dropout(g, x, 0.3f);
}

KT_TEST(test_cuda_dropout_masks_match_cpu) {
    kt_twin_backend();
    int dropout = 0, path = 1;
    /* the same hash on both sides: the masks agree exactly, so the elementwise bound holds */
    twin(build_dropout, &dropout, "dropout p=0.3 (training)", TOL_ELEM, 1);
    twin(build_dropout, &path, "drop path p=0.4 (training)", TOL_ELEM, 1);
    twin(build_dropout, &dropout, "dropout in eval (identity)", TOL_ELEM, 0);
}

/* ---- pooling ---- */

static kt_node *build_pool(kt_graph *g, void *arg) {
    int kind = *(const int *)arg;
    kt_node *x = P(g, "x", 2, 7, 6, 5);
    if (kind == 0) return kt_avgpool2d(g, x, 3, 2, 1, 0);
    if (kind == 1) return kt_avgpool2d(g, x, 3, 2, 1, 1);
    if (kind == 2) return kt_maxpool2d(g, x, 3, 2, 1);
    if (kind == 3) return kt_maxpool2d(g, x, 2, 2, 0);
    return kt_global_avgpool(g, x);
}

KT_TEST(test_cuda_pooling) {
    kt_twin_backend();
    const char *labels[5] = {"avgpool 3x3 s2 p1 valid-only divisor", "avgpool 3x3 s2 p1 count_include_pad", "maxpool 3x3 s2 p1",
                             "maxpool 2x2 s2", "global average pool"};
    for (int k = 0; k < 5; k++) twin(build_pool, &k, labels[k], TOL_ELEM, 1);
}

/* ---- softmax and losses ---- */

static kt_node *build_softmax(kt_graph *g, void *arg) {
    (void)arg;
    return kt_softmax(g, P(g, "x", 5, 300));
}

static kt_node *build_ce(kt_graph *g, void *arg) {
    int64_t C = *(const int64_t *)arg;
    kt_node *z = P(g, "logits", 9, C);
    kt_node *y = kt_input(g, "labels", KT_I32, 1, (int64_t[]){9});
    if (y) y->ip[0] = (int32_t)C; /* class count for the label filler */
    return kt_softmax_ce(g, z, y, 0.1f);
}

static kt_node *build_bce(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *z = P(g, "logits", 6, 5), *t = IN(g, "targets", 6, 5);
    return kt_bce_logits(g, z, t);
}

static kt_node *build_sum(kt_graph *g, void *arg) {
    (void)arg;
    return kt_sum(g, P(g, "x", 70, 131), 1.0f / (70.0f * 131.0f));
}

KT_TEST(test_cuda_softmax_and_losses) {
    kt_twin_backend();
    twin_range(build_softmax, NULL, "softmax over 300", TOL_RED, -4, 4, 0);
    int64_t few = 4, many = 700;
    twin_range(build_ce, &few, "softmax cross-entropy, smoothing 0.1, 4 classes", TOL_RED, -3, 3, 0);
    twin_range(build_ce, &many, "softmax cross-entropy, smoothing 0.1, 700 classes", TOL_RED, -3, 3, 0);
    twin_range(build_bce, NULL, "binary cross-entropy with logits", TOL_RED, -4, 4, 0);
    twin(build_sum, NULL, "mean of 9170 values", TOL_RED, 1);
}

/* ---- data movement ---- */

static kt_node *build_permute(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *x = P(g, "x", 2, 3, 4, 5);
    kt_node *r = kt_reshape(g, kt_permute(g, x, (int[]){0, 3, 1, 2}), 2, (int64_t[]){10, 12});
    kt_node *w = P(g, "w", 6, 12);
    return kt_permute(g, kt_linear(g, r, w, NULL), (int[]){1, 0});
}

static kt_node *build_concat_slice(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *a = P(g, "a", 2, 3, 2), *b = P(g, "b", 2, 3, 4), *c = P(g, "c", 2, 1, 6);
    kt_node *cat = kt_concat(g, (kt_node *[]){a, b}, 2, 2);  /* last axis */
    kt_node *cat2 = kt_concat(g, (kt_node *[]){cat, c}, 2, 1); /* middle axis */
    return kt_slice(g, cat2, 2, 1, 4);
}

KT_TEST(test_cuda_permute_concat_slice) {
    kt_twin_backend();
    twin(build_permute, NULL, "permute NHWC->NCHW, reshape, linear, transpose", TOL_GEMM, 1);
    twin(build_concat_slice, NULL, "concat on two axes + slice (and slice backward)", TOL_ELEM, 1);
}

/* A convolution cuDNN refuses is refused by the plan with cuDNN's reason, not a bare "no kernel":
 * here a 3x1 convolution over an image 2^31 + 8 rows tall, past cuDNN's int dimensions (the plan
 * refuses before allocating anything). */
KT_TEST(test_cuda_conv_refused_by_cudnn_says_why) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    kt_graph gs, *g = &gs;
    KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
    kt_node *x = IN(g, "x", 1, 2147483656LL, 1, 3);
    kt_node *w = P(g, "w", 4, 3, 3, 1);
    kt_conv2d_ex(g, x, w, NULL, 1, 1, 1, 0, 1);
    kt_status s = kt_graph_plan(g, be, NULL, &err);
    KT_CHECK(s == KT_ERR_UNSUPPORTED && strstr(err.msg, "no kernel for conv2d") && strstr(err.msg, "2147483656") &&
                 strstr(err.msg, "cuDNN's int range"),
             "status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    kt_graph_free(g);
    /* a 3x3 convolution (not a patch one, so no fallback) over a 2^31-element input: cuDNN's
     * tensor limit (H200 run 6), named with what shrinks it, still before any allocation */
    KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
    x = IN(g, "x", 2, 32768, 16384, 2);
    w = P(g, "w", 2, 2, 3, 3);
    kt_conv2d_ex(g, x, w, NULL, 1, 1, 1, 1, 1);
    s = kt_graph_plan(g, be, NULL, &err);
    KT_CHECK(s == KT_ERR_UNSUPPORTED && strstr(err.msg, "the convolution's input (2, 32768, 16384, 2) has 2147483648 elements, more than cuDNN takes") &&
                 strstr(err.msg, "smaller batch or image size"),
             "2^31 elements: status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    kt_graph_free(g);
}

/* When cuDNN offers no algorithm we may take (the H200's cuDNN left none deterministic under our
 * workspace cap for a giant stem's weight gradient, run 8), the refusal lists what cudnnFind and
 * the heuristics offered, so a card's run shows why. Only the host emulator can make cuDNN's
 * offers too big (KT_EMU_CUDNN_WS_MIB); on a card this skips. */
KT_TEST(test_cuda_conv_no_usable_cudnn_algorithm_lists_the_offers) {
    kt_backend *be = kt_twin_backend();
#ifdef KT_HAVE_CUDA
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    if (strcmp(ci.name, "host emulator")) kt_test_skip("needs cuDNN offers over the workspace cap, which only the host emulator fakes");
    kt_err err;
    kt_graph gs, *g = &gs;
    KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
    kt_node *x = IN(g, "x", 2, 9, 9, 3);
    kt_node *w = P(g, "w", 5, 3, 3, 3);
    kt_conv2d_ex(g, x, w, NULL, 1, 1, 1, 1, 1);
    KT_REQUIRE(setenv("KT_EMU_CUDNN_WS_MIB", "300", 1) == 0, "setenv");
    kt_status s = kt_graph_plan(g, be, NULL, &err);
    unsetenv("KT_EMU_CUDNN_WS_MIB");
    KT_CHECK(s == KT_ERR_UNSUPPORTED && strstr(err.msg, "no deterministic forward algorithm (FP32 FMA only) with under 256 MiB") &&
                 strstr(err.msg, "cudnnFind: #1 NOT_SUPPORTED") && strstr(err.msg, "#2 nondet 0 MiB fma, #3 NOT_SUPPORTED") &&
                 strstr(err.msg, "#4 det 300 MiB fma; heuristics: #1 NOT_SUPPORTED") && strstr(err.msg, "TF32 math (--precision bf16 or tf32)"),
             "status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    kt_graph_free(g);
    /* asked again (the knob gone), the refusal is remembered rather than searched for again */
    char first[KT_ERR_MSG_MAX];
    snprintf(first, sizeof first, "%s", err.msg);
    KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
    x = IN(g, "x", 2, 9, 9, 3);
    w = P(g, "w", 5, 3, 3, 3);
    kt_conv2d_ex(g, x, w, NULL, 1, 1, 1, 1, 1);
    s = kt_graph_plan(g, be, NULL, &err);
    KT_CHECK(s == KT_ERR_UNSUPPORTED && !strcmp(err.msg, first), "asked again: %d %s", (int)s, err.msg);
    kt_graph_free(g);
    /* another geometry plans once cuDNN's offers fit */
    KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
    x = IN(g, "x", 2, 9, 9, 3);
    w = P(g, "w", 6, 3, 3, 3);
    kt_conv2d_ex(g, x, w, NULL, 1, 1, 1, 1, 1);
    KT_CHECK(kt_graph_plan(g, be, NULL, &err) == KT_OK, "without the knob: %s", err.msg);
    kt_graph_free(g);
#else
    (void)be;
#endif
}

/* A patch convolution (kernel == stride, no padding: the stem, the downsampling layers) that cuDNN
 * refuses runs as our f32 patch GEMM instead of failing the plan (the H200 refused giant ones,
 * runs 7 and 8): forward, data and weight gradients against the CPU at the fp32 bound. Only the
 * host emulator can make cuDNN refuse them (KT_EMU_CUDNN_WS_MIB); on a card this skips (there the
 * same GEMMs run in test_cuda_patch_conv_matches_cpu_on_rounded_inputs). */
KT_TEST(test_cuda_patch_conv_cudnn_refused_runs_as_gemm) {
    kt_twin_backend();
#ifdef KT_HAVE_CUDA
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    if (strcmp(ci.name, "host emulator")) kt_test_skip("needs cuDNN refusing a convolution, which only the host emulator fakes");
    KT_REQUIRE(setenv("KT_EMU_CUDNN_WS_MIB", "300", 1) == 0, "setenv");
    conv_case stem = {2, 12, 8, 3, 10, 4, 4, 4, 4, 0, 0, 1, 1};
    twin(build_conv, &stem, "conv 4x4 stride 4 refused by cuDNN: our f32 patch GEMM", TOL_GEMM, 1);
    conv_case down = {2, 6, 8, 12, 20, 2, 2, 2, 2, 0, 0, 1, 0};
    twin(build_conv, &down, "conv 2x2 stride 2 refused by cuDNN: our f32 patch GEMM", TOL_GEMM, 1);
    unsetenv("KT_EMU_CUDNN_WS_MIB");
#endif
}
