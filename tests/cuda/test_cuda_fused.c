/* The CUDA backend's fused kernels (planner fusions, kt_backend::fusions) and 16-bit storage of the
 * tensors kept for backward: linear + GELU (bias and GELU in one pass after the GEMM, the
 * pre-activation and GELU's output in f32 or 16 bits), the activation gradient with its bias
 * gradient summed in the same pass, fc2 and depthwise outputs stored in 16 bits. Graph level against
 * the CPU backend (cuda_twin: NaN-poisoned buffers, bitwise rerun) with the fusions and storage
 * required in the GPU plan; kernel level against the CPU's formulas and the f32 / unfused GPU
 * kernels. Bounds: fp32 graphs 2e-5 of scale (test_cuda_ops.c's GEMM bound), bf16 2e-2, fp16 5e-3;
 * pre-activations and 16-bit stores bit for bit as the CPU rounds; GELU's output within one ulp of
 * its type (+1e-6 of scale); fused and 16-bit-input variants the f32 / unfused kernels' bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "engine/dtype.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/norm.h"
#include "kt_test.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"
#endif

#define TOL_GEMM 2e-5

#define P(g, name, ...) kt_param(g, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}, 0)

/* ConvNeXt's MLP: fc1 (bias or not) -> GELU -> fc2, so GELU's output is read by GEMMs only */
typedef struct mlp_case {
    int64_t hidden;
    int bias;
} mlp_case;

static kt_node *build_mlp(kt_graph *g, void *arg) {
    const mlp_case *m = arg;
    kt_node *x = P(g, "x", 3, 5, 24), *w1 = P(g, "fc1.w", m->hidden, 24), *b1 = m->bias ? P(g, "fc1.b", m->hidden) : NULL;
    kt_node *w2 = P(g, "fc2.w", 16, m->hidden), *b2 = P(g, "fc2.b", 16);
    return kt_linear(g, kt_gelu(g, kt_linear(g, x, w1, b1)), w2, b2);
}

KT_TEST(test_cuda_linear_gelu_fused_matches_cpu) {
    kt_twin_backend();
    /* 64 wide: the 4-wide kernels; 38: the scalar ones. Fused: GELU into fc1, and with a bias the
     * fc1 bias gradient into GELU's backward. */
    const mlp_case cases[] = {{64, 1}, {38, 1}, {64, 0}};
    const char *labels[] = {"fc1 64 wide + bias -> GELU -> fc2", "fc1 38 wide + bias -> GELU -> fc2", "fc1 64 wide, no bias -> GELU -> fc2"};
    for (int i = 0; i < 3; i++) {
        kt_twin_opts o = {.label = labels[i], .tol = TOL_GEMM, .training = 1, .lo = -2.0f, .hi = 2.0f, .seed = 77u,
                          .gpu_fused = cases[i].bias ? 2 : 1};
        KT_CHECK(kt_twin_check(build_mlp, (void *)&cases[i], &o) == 0, "%s: GPU differs from CPU (details above)", labels[i]);
    }
}

/* ... then layer scale, as a ConvNeXt block: out = fc2(...) * gamma */
static kt_node *build_mlp_ls(kt_graph *g, void *arg) {
    kt_node *y = build_mlp(g, arg);
    return kt_mul(g, y, P(g, "gamma", 16));
}

/* A whole ConvNeXt block body: depthwise 7x7 -> LayerNorm -> MLP -> layer scale (no residual) */
static kt_node *build_block(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *x = P(g, "x", 2, 6, 5, 24), *dw = P(g, "dw.w", 24, 1, 7, 7), *dwb = P(g, "dw.b", 24);
    kt_node *h = kt_conv2d_ex(g, x, dw, dwb, 1, 1, 3, 3, 24);
    h = kt_layernorm(g, h, P(g, "norm.w", 24), P(g, "norm.b", 24), 1e-6f);
    kt_node *w1 = P(g, "fc1.w", 64, 24), *b1 = P(g, "fc1.b", 64), *w2 = P(g, "fc2.w", 24, 64), *b2 = P(g, "fc2.b", 24);
    h = kt_linear(g, kt_gelu(g, kt_linear(g, h, w1, b1)), w2, b2);
    return kt_mul(g, h, P(g, "gamma", 24));
}

/* Under autocast the block stores nine tensors in 16 bits: the depthwise output (LayerNorm's input),
 * the LayerNorm output, fc1's pre-activation, GELU's output, fc2's output and, in backward, GELU's
 * gradient and layer scale's data gradient (fc1's and fc2's data and weight gradients read them;
 * the bias gradients are fused in) and the incoming gradients of GELU and LayerNorm (fc2's and fc1's
 * data gradients, written in 16 bits by their GEMMs for the fused backward kernels). Fused: GELU
 * into fc1, fc1's bias gradient into GELU's backward, gamma's and fc2's bias gradients into layer
 * scale's backward, LayerNorm's weight/bias gradients and the depthwise bias gradient into
 * LayerNorm's data gradient. */

/* build in bf16 and in fp16 against the CPU's fp32 (bounds 2e-2, 5e-3 of scale), with exactly fused
 * nodes computed inside others and stored f32 nodes stored in 16 bits (0: not checked) */
static void check_16bit(kt_twin_build_fn build, const char *what, unsigned seed, int fused, int stored) {
    const char *precisions[] = {"bf16", "fp16"};
    const double tols[] = {2e-2, 5e-3};
    for (int p = 0; p < 2; p++) {
        char label[128];
        snprintf(label, sizeof label, "%s: %s", precisions[p], what);
        kt_twin_opts o = {.label = label, .tol = tols[p], .training = 1, .lo = -1.0f, .hi = 1.0f, .seed = seed, .gpu_fused = fused,
                          .precision = precisions[p], .gpu_stored16 = stored};
        KT_CHECK(kt_twin_check(build, NULL, &o) == 0, "%s: GPU differs from CPU (details above)", label);
    }
}

KT_TEST(test_cuda_block_activations_stored_16bit) {
    kt_twin_backend();
    check_16bit(build_block, "depthwise 7x7 -> LayerNorm -> MLP -> layer scale", 79u, 6, 9);
}

/* Parameters named prefix.name */
static kt_node *PP(kt_graph *g, const char *pre, const char *name, int nd, const int64_t *shape) {
    char full[64];
    snprintf(full, sizeof full, "%s.%s", pre, name);
    return kt_param(g, full, nd, shape, 0);
}

/* a ConvNeXt block with its residual: x + gamma * fc2(GELU(fc1(LayerNorm(depthwise 7x7 (x))))) */
static kt_node *residual_block(kt_graph *g, kt_node *x, const char *pre) {
    int64_t C = 24;
    kt_node *h = kt_conv2d_ex(g, x, PP(g, pre, "dw.w", 4, (int64_t[]){C, 1, 7, 7}), PP(g, pre, "dw.b", 1, &C), 1, 1, 3, 3, (int)C);
    h = kt_layernorm(g, h, PP(g, pre, "norm.w", 1, &C), PP(g, pre, "norm.b", 1, &C), 1e-6f);
    int64_t H = 64; /* parameters first: the planner fuses GELU into fc1 only when it comes right after it */
    kt_node *w1 = PP(g, pre, "fc1.w", 2, (int64_t[]){H, C}), *b1 = PP(g, pre, "fc1.b", 1, &H);
    kt_node *w2 = PP(g, pre, "fc2.w", 2, (int64_t[]){C, H}), *b2 = PP(g, pre, "fc2.b", 1, &C), *gamma = PP(g, pre, "gamma", 1, &C);
    h = kt_linear(g, kt_gelu(g, kt_linear(g, h, w1, b1)), w2, b2);
    return kt_add(g, x, kt_mul(g, h, gamma));
}

/* Two blocks on a computed input (x0 * s, so the first block's input lives in the arena as a stem
 * output does): the second block's input is the first's output, the residual stream. */
static kt_node *build_two_blocks(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *x = kt_mul(g, P(g, "x0", 2, 6, 5, 24), P(g, "s", 24));
    return residual_block(g, residual_block(g, x, "b0"), "b1");
}

/* A depthwise 3x3 without padding (its kernel cannot write the copy), on a computed input */
static kt_node *build_valid_dw(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *x = kt_mul(g, P(g, "x0", 2, 6, 5, 24), P(g, "s", 24));
    kt_node *h = kt_conv2d_ex(g, x, P(g, "dw.w", 24, 1, 3, 3), P(g, "dw.b", 24), 1, 1, 0, 0, 24);
    h = kt_layernorm(g, h, P(g, "norm.w", 24), P(g, "norm.b", 24), 1e-6f);
    return kt_linear(g, h, P(g, "fc.w", 16, 24), P(g, "fc.b", 16));
}

/* Under autocast each depthwise conv's weight gradient reads its input from a 16-bit copy (as
 * autocast saves one), so the f32 residual stream dies in forward: with 'same' padding the conv's
 * kernel writes the copy while it reads x (a fused node), else a separate rounding pass does. Per
 * block 10 tensors in 16 bits (the block body's 9 and the copy) and 9 fused nodes (the block body's 6,
 * the copy, the residual add into layer scale, the gradient add into the depthwise data gradient),
 * and x0 * s's backward fuses s's gradient; the rest against the CPU's fp32 within the 16-bit bounds
 * above. */
KT_TEST(test_cuda_saved_depthwise_input_16bit) {
    kt_twin_backend();
    check_16bit(build_two_blocks, "two ConvNeXt blocks with residuals", 83u, 19, 20);
    /* stored: the copy (its own pass), the depthwise output, the LayerNorm output and its incoming
     * gradient (the linear's data gradient) */
    check_16bit(build_valid_dw, "depthwise 3x3 unpadded -> LayerNorm -> linear", 84u, 0, 4);
    /* in fp32 the saved input stays a view of x: nothing stored in 16 bits, the copy not fused */
    kt_twin_opts f = {.label = "fp32: two ConvNeXt blocks with residuals", .tol = TOL_GEMM, .training = 1, .lo = -1.0f, .hi = 1.0f,
                      .seed = 85u, .gpu_fused = 17};
    KT_CHECK(kt_twin_check(build_two_blocks, NULL, &f) == 0, "fp32 two blocks: GPU differs from CPU (details above)");
}

/* Under bf16/fp16 autocast fc1's pre-activation is stored in 16 bits beside GELU's output (only
 * GELU's backward reads it; its GEMM result lives in fc1's scratch), and with layer scale after it
 * fc2's output too (only the scale and gamma's gradient read it): against the CPU's fp32 within the
 * 16-bit GEMM error (bf16 2e-2, f16 5e-3 of scale; measured on the CPU ~4x below). */
KT_TEST(test_cuda_mlp_pre_activation_stored_16bit) {
    kt_twin_backend();
    const mlp_case cases[] = {{64, 1}, {38, 1}, {64, 0}};
    const char *precisions[] = {"bf16", "fp16"};
    const double tols[] = {2e-2, 5e-3};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 3; i++)
            for (int ls = 0; ls < 2; ls++) {
                char label[96];
                snprintf(label, sizeof label, "%s: fc1 %lld wide%s -> GELU -> fc2%s", precisions[p], (long long)cases[i].hidden,
                         cases[i].bias ? " + bias" : "", ls ? " -> layer scale" : "");
                /* with layer scale, gamma's and fc2's bias gradients fused into its backward, whose data
                 * gradient is then stored in 16 bits too; GELU's gradient and its incoming gradient
                 * (fc2's data gradient) when fc1's bias gradient is fused into GELU's backward */
                kt_twin_opts o = {.label = label, .tol = tols[p], .training = 1, .lo = -2.0f, .hi = 2.0f, .seed = 78u,
                                  .gpu_fused = (cases[i].bias ? 2 : 1) + (ls ? 2 : 0), .precision = precisions[p],
                                  .gpu_stored16 = (ls ? 4 : 2) + 2 * cases[i].bias};
                KT_CHECK(kt_twin_check(ls ? build_mlp_ls : build_mlp, (void *)&cases[i], &o) == 0, "%s: GPU differs from CPU (details above)",
                         label);
#ifdef KT_HAVE_CUDA
                if (i || !cases[i].bias) continue;
                /* the same without cuBLASLt's bias epilogue: cuBLAS into f32, then the bias pass */
                int lt = kt_cuda_ctx_gemm_lt(kt_twin_backend()->ctx); /* as KT_CUDA_NO_LT left it */
                kt_cuda_ctx_set_gemm_lt(kt_twin_backend()->ctx, 0);
                snprintf(label + strlen(label), sizeof label - strlen(label), " (no cuBLASLt)");
                KT_CHECK(kt_twin_check(ls ? build_mlp_ls : build_mlp, (void *)&cases[i], &o) == 0, "%s: GPU differs from CPU (details above)",
                         label);
                kt_cuda_ctx_set_gemm_lt(kt_twin_backend()->ctx, lt);
#endif
            }
}

#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"

static const char *tname[] = {"f32", "bf16", "f16"};

/* src (n) rounded to t (bf16/f16) into h and widened back into wide, both uploaded (d16, dwide; either
 * may be NULL); 0, or 1 after a reported failure */
static int put_rounded(const float *src, kt_cuda_dtype t, int64_t n, uint16_t *h, float *wide, void *d16, float *dwide) {
    char msg[256];
    for (int64_t i = 0; i < n; i++) {
        h[i] = t == KT_CUDA_BF16 ? kt_f32_to_bf16(src[i]) : kt_f32_to_f16(src[i]);
        wide[i] = t == KT_CUDA_BF16 ? kt_bf16_to_f32(h[i]) : kt_f16_to_f32(h[i]);
    }
    if ((d16 && kt_cuda_memcpy_h2d(d16, h, (size_t)n * 2, msg, sizeof msg)) || (dwide && kt_cuda_memcpy_h2d(dwide, wide, (size_t)n * 4, msg, sizeof msg))) {
        kt_test_fail(__FILE__, __LINE__, "upload: %s", msg);
        return 1;
    }
    return 0;
}

static float to_f32(const void *y, kt_cuda_dtype t, int64_t i) {
    if (t == KT_CUDA_BF16) return kt_bf16_to_f32(((const uint16_t *)y)[i]);
    if (t == KT_CUDA_F16) return kt_f16_to_f32(((const uint16_t *)y)[i]);
    return ((const float *)y)[i];
}

static size_t tsize(kt_cuda_dtype t) { return t == KT_CUDA_F32 ? 4 : 2; }

/* bias + GELU layouts: the pre-activation written over the GEMM result z (f32) or to its own 16-bit
 * buffer, or everything in place */
enum { PRE_OVER_Z, PRE_APART, ALL_IN_PLACE };

/* One bias + GELU case: the pre-activation must come back as the CPU's z + b (rounded to its type)
 * bit for bit, and each output within one unit in the last place of its type of the CPU's GELU of
 * the f32 value, plus 1e-6 of the largest (the CPU's vectorised erf and CUDA's erff differ by ~1e-7
 * absolute, which may also tip a 16-bit rounding the other way). */
static void check_bias_gelu(kt_cuda_ctx *c, int64_t rows, int64_t C, int with_bias, kt_cuda_dtype pre_t, kt_cuda_dtype y_t, int layout) {
    int64_t n = rows * C;
    float *z = malloc((size_t)n * 4), *b = malloc((size_t)C * 4), *zref = malloc((size_t)n * 4), *yref = malloc((size_t)n * 4);
    void *pgot = malloc((size_t)n * 4), *ygot = malloc((size_t)n * 4);
    KT_REQUIRE(z && b && zref && yref && pgot && ygot, "memory");
    unsigned seed = 5u + (unsigned)C;
    kt_twin_fill(z, n, -4.0f, 4.0f, 0.0f, &seed);
    kt_twin_fill(b, C, -1.0f, 1.0f, 0.0f, &seed);
    memcpy(zref, z, (size_t)n * 4);
    kt_cpu_bias_gelu(zref, yref, with_bias ? b : NULL, rows, C);
    float *dz = kt_twin_put(z, (size_t)n * 4), *db = kt_twin_put(b, (size_t)C * 4);
    void *dpre = layout == PRE_APART ? kt_twin_put(NULL, (size_t)n * tsize(pre_t)) : (void *)dz;
    void *dy = layout == ALL_IN_PLACE ? (void *)dz : kt_twin_put(NULL, (size_t)n * tsize(y_t));
    KT_REQUIRE(dz && db && dpre && dy, "device buffers");
    KT_CHECK(kt_cuda_bias_gelu(c, dz, with_bias ? db : NULL, dpre, pre_t, dy, y_t, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_twin_get(ygot, dy, (size_t)n * tsize(y_t)), "read back");
    double ulp = y_t == KT_CUDA_F32 ? 0 : y_t == KT_CUDA_BF16 ? 1.0 / 128 : 1.0 / 1024, scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(yref[i]));
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double got = to_f32(ygot, y_t, i), want = yref[i];
        if (!(fabs(got - want) <= ulp * fabs(want) + 1e-6 * scale) && bad++ < 5)
            kt_test_fail(__FILE__, __LINE__, "%s out, %lldx%lld layout %d: element %lld is %.9g, CPU %.9g", tname[y_t], (long long)rows,
                         (long long)C, layout, (long long)i, got, want);
    }
    KT_CHECK(bad == 0, "%s output of bias + GELU %lldx%lld: %d elements off or unwritten", tname[y_t], (long long)rows, (long long)C, bad);
    if (layout != ALL_IN_PLACE) {
        KT_REQUIRE(!kt_twin_get(pgot, dpre, (size_t)n * tsize(pre_t)), "read back");
        int64_t off = 0;
        for (int64_t i = 0; i < n; i++) {
            uint32_t want = pre_t == KT_CUDA_BF16 ? kt_f32_to_bf16(zref[i]) : pre_t == KT_CUDA_F16 ? kt_f32_to_f16(zref[i]) : 0;
            if (pre_t == KT_CUDA_F32) off += memcmp((float *)pgot + i, zref + i, 4) != 0;
            else off += ((uint16_t *)pgot)[i] != want;
        }
        KT_CHECK(off == 0, "%s pre-activation %lldx%lld: %lld elements not z + b rounded as the CPU rounds", tname[pre_t], (long long)rows,
                 (long long)C, (long long)off);
    }
    if (dpre != (void *)dz) kt_cuda_free(dpre);
    if (dy != (void *)dz) kt_cuda_free(dy);
    kt_cuda_free(dz), kt_cuda_free(db);
    free(z), free(b), free(zref), free(yref), free(pgot), free(ygot);
}

KT_TEST(test_cuda_bias_gelu_kernel_outputs) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_cuda_dtype types[] = {KT_CUDA_F32, KT_CUDA_BF16, KT_CUDA_F16};
    for (int k = 0; k < 3; k++) { /* f32 pre-activation over z, GELU out in each type */
        check_bias_gelu(c, 37, 64, 1, KT_CUDA_F32, types[k], PRE_OVER_Z); /* 4-wide */
        check_bias_gelu(c, 37, 30, 1, KT_CUDA_F32, types[k], PRE_OVER_Z); /* scalar (C % 4 != 0) */
        check_bias_gelu(c, 37, 64, 0, KT_CUDA_F32, types[k], PRE_OVER_Z); /* no bias: z left as it was */
    }
    for (int k = 1; k < 3; k++) { /* the pre-activation stored in 16 bits, GELU out in the same type or f32 */
        check_bias_gelu(c, 37, 64, 1, types[k], types[k], PRE_APART);
        check_bias_gelu(c, 37, 30, 1, types[k], types[k], PRE_APART);
        check_bias_gelu(c, 37, 64, 0, types[k], types[k], PRE_APART);
        check_bias_gelu(c, 37, 64, 1, types[k], KT_CUDA_F32, PRE_APART);
        check_bias_gelu(c, 37, 30, 1, types[k], KT_CUDA_F32, PRE_APART);
    }
    check_bias_gelu(c, 19, 96, 1, KT_CUDA_F32, KT_CUDA_F32, ALL_IN_PLACE); /* planner in-place */
    check_bias_gelu(c, 19, 42, 1, KT_CUDA_F32, KT_CUDA_F32, ALL_IN_PLACE);
    /* bf16 beside f16 is not a layout the planner makes (one 16-bit type per plan): refused */
    KT_CHECK(kt_cuda_bias_gelu(c, NULL, NULL, NULL, KT_CUDA_BF16, NULL, KT_CUDA_F16, 4, 4) != 0 &&
                 strstr(kt_cuda_ctx_error(c), "same type"),
             "bf16 pre-activation with an f16 GELU output refused: %s", kt_cuda_ctx_error(c));
}

/* act_bwd_colsum = act_bwd (or, for a 16-bit input, gelu_bwd_v16) then reduce_rows, bit for bit,
 * every dx element written; gelu_bwd_v16 against the CPU's GELU backward on the widened input; with
 * dy in 16 bits too (as fc2's data-gradient GEMM writes it under autocast), the bits of the f32 path
 * on the widened dy */
KT_TEST(test_cuda_act_bwd_colsum_same_bits_as_unfused) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_act acts[] = {KT_ACT_GELU, KT_ACT_RELU, KT_ACT_SILU, KT_ACT_SIGMOID, KT_ACT_GELU, KT_ACT_GELU};
    const kt_cuda_dtype vts[] = {KT_CUDA_F32, KT_CUDA_F32, KT_CUDA_F32, KT_CUDA_F32, KT_CUDA_BF16, KT_CUDA_F16};
    /* 4-wide with whole and partial 128-column tiles, several row blocks; scalar (7 wide) */
    const int64_t widths[] = {128, 36, 516, 7};
    const int64_t heights[] = {300, 301, 70, 1000};
    for (int w = 0; w < 4; w++) {
        int64_t rows = heights[w], C = widths[w], n = rows * C;
        float *dy = malloc((size_t)n * 4), *v = malloc((size_t)n * 4), *dx1 = malloc((size_t)n * 4), *dx2 = malloc((size_t)n * 4);
        float *vw = malloc((size_t)n * 4), *ref = malloc((size_t)n * 4), *s1 = malloc((size_t)C * 4), *s2 = malloc((size_t)C * 4);
        uint16_t *v16 = malloc((size_t)n * 2), *dy16 = malloc((size_t)n * 2);
        float *dyw = malloc((size_t)n * 4);
        KT_REQUIRE(dy && v && dx1 && dx2 && vw && ref && s1 && s2 && v16 && dy16 && dyw, "memory");
        unsigned seed = 11u + (unsigned)w;
        kt_twin_fill(dy, n, -1.0f, 1.0f, 0.0f, &seed);
        kt_twin_fill(v, n, -3.0f, 3.0f, 0.05f, &seed);
        size_t scr = kt_cuda_reduce_rows_scratch(rows, C);
        float *ddy = kt_twin_put(dy, (size_t)n * 4), *dv = kt_twin_put(v, (size_t)n * 4), *ddx = kt_twin_put(NULL, (size_t)n * 4);
        float *ds = kt_twin_put(NULL, (size_t)C * 4);
        void *dscr = kt_twin_put(NULL, scr), *dv16 = kt_twin_put(NULL, (size_t)n * 2), *ddy16 = kt_twin_put(NULL, (size_t)n * 2);
        float *ddyw = kt_twin_put(NULL, (size_t)n * 4);
        KT_REQUIRE(ddy && dv && ddx && ds && dscr && dv16 && ddy16 && ddyw, "device buffers");
        for (int a = 0; a < 6; a++) {
            kt_cuda_dtype vt = vts[a];
            const void *vin = dv;
            char msg[256];
            if (vt != KT_CUDA_F32) { /* the input on the 16-bit grid, and its widened values for the CPU */
                if (put_rounded(v, vt, n, v16, vw, dv16, NULL)) return;
                vin = dv16;
                KT_CHECK(kt_cuda_gelu_bwd_v16(c, ddx, ddy, dv16, vt, n) == 0, "%s", kt_cuda_ctx_error(c));
            } else KT_CHECK(kt_cuda_act_bwd(c, acts[a], ddx, ddy, dv, n) == 0, "%s", kt_cuda_ctx_error(c));
            KT_CHECK(kt_cuda_reduce_rows(c, ds, ddx, rows, C, dscr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(dx1, ddx, (size_t)n * 4) && !kt_twin_get(s1, ds, (size_t)C * 4), "read back");
            if (vt != KT_CUDA_F32) {
                kt_cpu_act_bwd(KT_ACT_GELU, ref, dy, vw, n);
                double r = kt_twin_rel_err(dx1, ref, n);
                KT_CHECK(r <= 1e-6, "GELU backward from a %s input, %lldx%lld: %.3g of scale from the CPU's", tname[vt], (long long)rows,
                         (long long)C, r);
            }
            KT_REQUIRE(!kt_cuda_memset(ddx, 0xff, (size_t)n * 4, msg, sizeof msg) && !kt_cuda_memset(ds, 0xff, (size_t)C * 4, msg, sizeof msg),
                       "poison: %s", msg);
            KT_CHECK(kt_cuda_act_bwd_colsum(c, acts[a], ddx, KT_CUDA_F32, ddy, KT_CUDA_F32, vin, vt, rows, C, ds, dscr) == 0, "%s",
                     kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(dx2, ddx, (size_t)n * 4) && !kt_twin_get(s2, ds, (size_t)C * 4), "read back");
            KT_CHECK(memcmp(dx1, dx2, (size_t)n * 4) == 0,
                     "act %d (%s input), %lldx%lld: fused activation gradient differs from (or misses) the unfused one", (int)acts[a],
                     tname[vt], (long long)rows, (long long)C);
            KT_CHECK(memcmp(s1, s2, (size_t)C * 4) == 0, "act %d (%s input), %lldx%lld: fused bias gradient differs from the unfused column sum",
                     (int)acts[a], tname[vt], (long long)rows, (long long)C);
            if (acts[a] != KT_ACT_GELU) continue;
            /* GELU's gradient written in 16 bits (only autocast GEMMs read it): the f32 result rounded
             * as the CPU rounds, every element written, the bias gradient still the f32 column sum */
            for (int o = 0; o < 2; o++) {
                kt_cuda_dtype ot = o ? KT_CUDA_F16 : KT_CUDA_BF16;
                KT_REQUIRE(!kt_cuda_memset(ddx, 0xff, (size_t)n * 2, msg, sizeof msg) && !kt_cuda_memset(ds, 0xff, (size_t)C * 4, msg, sizeof msg),
                           "poison: %s", msg);
                KT_CHECK(kt_cuda_act_bwd_colsum(c, KT_ACT_GELU, ddx, ot, ddy, KT_CUDA_F32, vin, vt, rows, C, ds, dscr) == 0, "%s",
                         kt_cuda_ctx_error(c));
                uint16_t *o16 = (uint16_t *)dx2;
                KT_REQUIRE(!kt_twin_get(o16, ddx, (size_t)n * 2) && !kt_twin_get(s2, ds, (size_t)C * 4), "read back");
                int64_t off = 0;
                for (int64_t i = 0; i < n; i++) off += o16[i] != (ot == KT_CUDA_BF16 ? kt_f32_to_bf16(dx1[i]) : kt_f32_to_f16(dx1[i]));
                KT_CHECK(off == 0, "GELU gradient (%s input) written in %s, %lldx%lld: %lld elements not the f32 result rounded", tname[vt],
                         tname[ot], (long long)rows, (long long)C, (long long)off);
                KT_CHECK(memcmp(s1, s2, (size_t)C * 4) == 0, "GELU gradient written in %s: the bias gradient changed", tname[ot]);
            }
            if (vt == KT_CUDA_F32) continue;
            /* dy in v's 16-bit type: the f32-dy kernel's bits on the widened dy, f32 and 16-bit outputs */
            if (put_rounded(dy, vt, n, dy16, dyw, ddy16, ddyw)) return;
            for (int o = 0; o < 3; o++) {
                kt_cuda_dtype ot = o == 0 ? KT_CUDA_F32 : o == 1 ? KT_CUDA_BF16 : KT_CUDA_F16;
                size_t ob = ot == KT_CUDA_F32 ? 4 : 2;
                KT_CHECK(kt_cuda_act_bwd_colsum(c, KT_ACT_GELU, ddx, ot, ddyw, KT_CUDA_F32, vin, vt, rows, C, ds, dscr) == 0, "%s",
                         kt_cuda_ctx_error(c));
                KT_REQUIRE(!kt_twin_get(dx1, ddx, (size_t)n * ob) && !kt_twin_get(s1, ds, (size_t)C * 4), "read back");
                KT_REQUIRE(!kt_cuda_memset(ddx, 0xff, (size_t)n * 4, msg, sizeof msg) && !kt_cuda_memset(ds, 0xff, (size_t)C * 4, msg, sizeof msg),
                           "poison: %s", msg);
                KT_CHECK(kt_cuda_act_bwd_colsum(c, KT_ACT_GELU, ddx, ot, ddy16, vt, vin, vt, rows, C, ds, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!kt_twin_get(dx2, ddx, (size_t)n * ob) && !kt_twin_get(s2, ds, (size_t)C * 4), "read back");
                KT_CHECK(memcmp(dx1, dx2, (size_t)n * ob) == 0 && memcmp(s1, s2, (size_t)C * 4) == 0,
                         "GELU gradient from a %s dy and input, %s out, %lldx%lld: not the f32-dy kernel's bits on the widened dy", tname[vt],
                         tname[ot], (long long)rows, (long long)C);
            }
            KT_CHECK(kt_cuda_act_bwd_colsum(c, KT_ACT_GELU, ddx, KT_CUDA_F32, ddy16, vt, dv, KT_CUDA_F32, rows, C, ds, dscr) != 0 &&
                         strstr(kt_cuda_ctx_error(c), "same type"),
                     "a 16-bit dy with an f32 input refused: %s", kt_cuda_ctx_error(c));
            KT_CHECK(kt_cuda_act_bwd_colsum(c, KT_ACT_GELU, ddx, KT_CUDA_F32, ddy16, vt == KT_CUDA_BF16 ? KT_CUDA_F16 : KT_CUDA_BF16, vin, vt, rows,
                                            C, ds, dscr) != 0 &&
                         strstr(kt_cuda_ctx_error(c), "same type"),
                     "a dy of the other 16-bit type refused: %s", kt_cuda_ctx_error(c));
        }
        KT_CHECK(kt_cuda_act_bwd_colsum(c, KT_ACT_RELU, ddx, KT_CUDA_BF16, ddy, KT_CUDA_F32, dv, KT_CUDA_F32, rows, C, ds, dscr) != 0 &&
                     strstr(kt_cuda_ctx_error(c), "GELU only"),
                 "16-bit output refused for ReLU: %s", kt_cuda_ctx_error(c));
        KT_CHECK(kt_cuda_act_bwd_colsum(c, KT_ACT_RELU, ddx, KT_CUDA_F32, ddy, KT_CUDA_F32, dv16, KT_CUDA_BF16, rows, C, ds, dscr) != 0 &&
                     strstr(kt_cuda_ctx_error(c), "GELU only"),
                 "16-bit input refused for ReLU: %s", kt_cuda_ctx_error(c));
        kt_cuda_free(ddy), kt_cuda_free(dv), kt_cuda_free(ddx), kt_cuda_free(ds), kt_cuda_free(dscr), kt_cuda_free(dv16), kt_cuda_free(ddy16);
        kt_cuda_free(ddyw);
        free(dy), free(v), free(dx1), free(dx2), free(vw), free(ref), free(s1), free(s2), free(v16), free(dy16), free(dyw);
    }
}

/* A linear output stored in 16 bits and read by layer scale: bias + rounding bit for bit as the CPU
 * rounds; the scale and gamma's gradient from the 16-bit values give the bits of the f32 kernels on
 * the widened values. */
KT_TEST(test_cuda_linear_out_16bit_kernels) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_cuda_dtype types[] = {KT_CUDA_BF16, KT_CUDA_F16};
    const int64_t widths[] = {64, 30};
    for (int k = 0; k < 2; k++)
        for (int w = 0; w < 2; w++) {
            kt_cuda_dtype t = types[k];
            int64_t rows = 75, C = widths[w], n = rows * C;
            float *z = malloc((size_t)n * 4), *b = malloc((size_t)C * 4), *wide = malloc((size_t)n * 4), *dy = malloc((size_t)n * 4);
            float *y1 = malloc((size_t)n * 4), *y2 = malloc((size_t)n * 4), *g1 = malloc((size_t)C * 4), *g2 = malloc((size_t)C * 4);
            uint16_t *h = malloc((size_t)n * 2);
            KT_REQUIRE(z && b && wide && dy && y1 && y2 && g1 && g2 && h, "memory");
            unsigned seed = 31u + (unsigned)(k * 2 + w);
            kt_twin_fill(z, n, -3.0f, 3.0f, 0.0f, &seed);
            kt_twin_fill(b, C, -1.0f, 1.0f, 0.0f, &seed);
            kt_twin_fill(dy, n, -1.0f, 1.0f, 0.0f, &seed);
            float *dz = kt_twin_put(z, (size_t)n * 4), *db = kt_twin_put(b, (size_t)C * 4), *ddy = kt_twin_put(dy, (size_t)n * 4);
            float *dwide = kt_twin_put(NULL, (size_t)n * 4), *dout = kt_twin_put(NULL, (size_t)n * 4), *dg = kt_twin_put(NULL, (size_t)C * 4);
            void *dh = kt_twin_put(NULL, (size_t)n * 2), *scr = kt_twin_put(NULL, kt_cuda_reduce_rows_scratch(rows, C));
            KT_REQUIRE(dz && db && ddy && dwide && dout && dg && dh && scr, "device buffers");
            KT_CHECK(kt_cuda_bias_store(c, dz, db, dh, t, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(h, dh, (size_t)n * 2), "read back");
            int64_t off = 0;
            for (int64_t i = 0; i < n; i++) {
                float v = z[i] + b[i % C];
                off += h[i] != (t == KT_CUDA_BF16 ? kt_f32_to_bf16(v) : kt_f32_to_f16(v));
                wide[i] = t == KT_CUDA_BF16 ? kt_bf16_to_f32(h[i]) : kt_f16_to_f32(h[i]);
            }
            KT_CHECK(off == 0, "%s bias store %lldx%lld: %lld elements not z + b rounded as the CPU rounds", tname[t], (long long)rows,
                     (long long)C, (long long)off);
            char msg[256];
            KT_REQUIRE(!kt_cuda_memcpy_h2d(dwide, wide, (size_t)n * 4, msg, sizeof msg), "upload: %s", msg);
            /* layer scale: 16-bit a against f32 a holding the same values (b as gamma) */
            KT_CHECK(kt_cuda_mul_bcast(c, dout, dwide, db, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(y1, dout, (size_t)n * 4), "read back");
            KT_REQUIRE(!kt_cuda_memset(dout, 0xff, (size_t)n * 4, msg, sizeof msg), "poison: %s", msg);
            KT_CHECK(kt_cuda_mul_bcast_a16(c, dout, dh, t, db, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(y2, dout, (size_t)n * 4), "read back");
            KT_CHECK(memcmp(y1, y2, (size_t)n * 4) == 0, "%s layer scale %lldx%lld: not the f32 kernel's bits (or not all written)", tname[t],
                     (long long)rows, (long long)C);
            KT_CHECK(kt_cuda_mul_bcast_bwd(c, dg, ddy, dwide, rows, C, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(g1, dg, (size_t)C * 4), "read back");
            KT_CHECK(kt_cuda_mul_bcast_bwd_a16(c, dg, ddy, dh, t, rows, C, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(g2, dg, (size_t)C * 4), "read back");
            KT_CHECK(memcmp(g1, g2, (size_t)C * 4) == 0, "%s gamma gradient %lldx%lld: not the f32 kernel's bits", tname[t], (long long)rows,
                     (long long)C);
            kt_cuda_free(dz), kt_cuda_free(db), kt_cuda_free(ddy), kt_cuda_free(dwide), kt_cuda_free(dout), kt_cuda_free(dg);
            kt_cuda_free(dh), kt_cuda_free(scr);
            free(z), free(b), free(wide), free(dy), free(y1), free(y2), free(g1), free(g2), free(h);
        }
    KT_CHECK(kt_cuda_bias_store(c, NULL, NULL, NULL, KT_CUDA_F32, 4, 4) != 0 && strstr(kt_cuda_ctx_error(c), "bf16 or f16"),
             "an f32 bias store refused: %s", kt_cuda_ctx_error(c));
}

/* Layer scale's backward in one pass (kt_cuda_layer_scale_bwd): the data gradient dy gamma, the
 * bias gradient summed from it and gamma's gradient, against the three separate kernels bit for bit,
 * with the scaled input a in f32 or 16 bits, the data gradient written in f32 or rounded to 16 bits
 * (as the CPU rounds), every element written, either sum left out. 4-wide (64, 516) and scalar (30). */
KT_TEST(test_cuda_layer_scale_bwd_same_bits_as_unfused) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_cuda_dtype types[] = {KT_CUDA_F32, KT_CUDA_BF16, KT_CUDA_F16};
    const int64_t widths[] = {64, 30, 516}, heights[] = {150, 77, 40};
    char msg[256];
    for (int w = 0; w < 3; w++) {
        int64_t rows = heights[w], C = widths[w], n = rows * C;
        float *dy = malloc((size_t)n * 4), *a = malloc((size_t)n * 4), *g = malloc((size_t)C * 4), *wide = malloc((size_t)n * 4);
        float *y1 = malloc((size_t)n * 4), *y2 = malloc((size_t)n * 4), *sb1 = malloc((size_t)C * 4), *sb2 = malloc((size_t)C * 4);
        float *sg1 = malloc((size_t)C * 4), *sg2 = malloc((size_t)C * 4);
        uint16_t *a16 = malloc((size_t)n * 2), *h = malloc((size_t)n * 2);
        KT_REQUIRE(dy && a && g && wide && y1 && y2 && sb1 && sb2 && sg1 && sg2 && a16 && h, "memory");
        unsigned seed = 51u + (unsigned)w;
        kt_twin_fill(dy, n, -1.0f, 1.0f, 0.0f, &seed);
        kt_twin_fill(a, n, -2.0f, 2.0f, 0.0f, &seed);
        kt_twin_fill(g, C, -0.5f, 0.5f, 0.0f, &seed);
        size_t scr = kt_cuda_layer_scale_bwd_scratch(rows, C);
        float *ddy = kt_twin_put(dy, (size_t)n * 4), *da = kt_twin_put(a, (size_t)n * 4), *dg = kt_twin_put(g, (size_t)C * 4);
        float *dwide = kt_twin_put(NULL, (size_t)n * 4), *dout = kt_twin_put(NULL, (size_t)n * 4), *dsb = kt_twin_put(NULL, (size_t)C * 4);
        float *dsg = kt_twin_put(NULL, (size_t)C * 4);
        void *da16 = kt_twin_put(NULL, (size_t)n * 2), *dscr = kt_twin_put(NULL, scr);
        KT_REQUIRE(ddy && da && dg && dwide && dout && dsb && dsg && da16 && dscr && scr >= kt_cuda_reduce_rows_scratch(rows, C), "device buffers");
        for (int at = 0; at < 3; at++) { /* the scaled input's type */
            kt_cuda_dtype t = types[at];
            const void *ain = da;
            const float *aref = da;
            if (t != KT_CUDA_F32) {
                if (put_rounded(a, t, n, a16, wide, da16, dwide)) return;
                ain = da16;
                aref = dwide;
            }
            /* the separate kernels */
            KT_CHECK(kt_cuda_mul_bcast(c, dout, ddy, dg, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
            KT_CHECK(kt_cuda_reduce_rows(c, dsb, dout, rows, C, dscr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_CHECK(kt_cuda_mul_bcast_bwd(c, dsg, ddy, aref, rows, C, dscr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(y1, dout, (size_t)n * 4) && !kt_twin_get(sb1, dsb, (size_t)C * 4) && !kt_twin_get(sg1, dsg, (size_t)C * 4),
                       "read back");
            for (int ot = 0; ot < 3; ot++) { /* the data gradient's type */
                kt_cuda_dtype o = types[ot];
                KT_REQUIRE(!kt_cuda_memset(dout, 0xff, (size_t)n * 4, msg, sizeof msg) && !kt_cuda_memset(dsb, 0xff, (size_t)C * 4, msg, sizeof msg) &&
                               !kt_cuda_memset(dsg, 0xff, (size_t)C * 4, msg, sizeof msg),
                           "poison: %s", msg);
                KT_CHECK(kt_cuda_layer_scale_bwd(c, dout, o, ddy, dg, ain, t, rows, C, dsb, dsg, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!kt_twin_get(sb2, dsb, (size_t)C * 4) && !kt_twin_get(sg2, dsg, (size_t)C * 4), "read back");
                int64_t off = 0;
                if (o == KT_CUDA_F32) {
                    KT_REQUIRE(!kt_twin_get(y2, dout, (size_t)n * 4), "read back");
                    off = memcmp(y1, y2, (size_t)n * 4) != 0;
                } else {
                    KT_REQUIRE(!kt_twin_get(h, dout, (size_t)n * 2), "read back");
                    for (int64_t i = 0; i < n; i++) off += h[i] != (o == KT_CUDA_BF16 ? kt_f32_to_bf16(y1[i]) : kt_f32_to_f16(y1[i]));
                }
                KT_CHECK(off == 0, "%lldx%lld, %s input, %s data gradient: not the separate kernel's values (rounded)", (long long)rows,
                         (long long)C, tname[t], tname[o]);
                KT_CHECK(memcmp(sb1, sb2, (size_t)C * 4) == 0, "%lldx%lld, %s input, %s data gradient: bias gradient not the column sum's bits",
                         (long long)rows, (long long)C, tname[t], tname[o]);
                KT_CHECK(memcmp(sg1, sg2, (size_t)C * 4) == 0, "%lldx%lld, %s input, %s data gradient: gamma gradient not the separate kernel's bits",
                         (long long)rows, (long long)C, tname[t], tname[o]);
            }
            /* either sum left out: the other unchanged, the buffer of the missing one untouched */
            KT_REQUIRE(!kt_cuda_memset(dsb, 0xff, (size_t)C * 4, msg, sizeof msg) && !kt_cuda_memset(dsg, 0xff, (size_t)C * 4, msg, sizeof msg),
                       "poison: %s", msg);
            KT_CHECK(kt_cuda_layer_scale_bwd(c, dout, KT_CUDA_F32, ddy, dg, NULL, KT_CUDA_F32, rows, C, dsb, NULL, dscr) == 0, "%s",
                     kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(sb2, dsb, (size_t)C * 4) && !kt_twin_get(sg2, dsg, (size_t)C * 4), "read back");
            uint32_t bits;
            memcpy(&bits, sg2, 4);
            KT_CHECK(memcmp(sb1, sb2, (size_t)C * 4) == 0 && bits == 0xffffffffu, "bias gradient only: %s", "wrong sums or buffers");
            KT_CHECK(kt_cuda_layer_scale_bwd(c, dout, KT_CUDA_F32, ddy, dg, ain, t, rows, C, NULL, dsg, dscr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(sg2, dsg, (size_t)C * 4), "read back");
            KT_CHECK(memcmp(sg1, sg2, (size_t)C * 4) == 0, "gamma gradient only, %s input: not the separate kernel's bits", tname[t]);
        }
        KT_CHECK(kt_cuda_layer_scale_bwd(c, dout, KT_CUDA_F32, ddy, dg, NULL, KT_CUDA_F32, rows, C, NULL, dsg, dscr) != 0 &&
                     strstr(kt_cuda_ctx_error(c), "needs the scaled input"),
                 "a gamma gradient without the scaled input refused: %s", kt_cuda_ctx_error(c));
        kt_cuda_free(ddy), kt_cuda_free(da), kt_cuda_free(dg), kt_cuda_free(dwide), kt_cuda_free(dout), kt_cuda_free(dsb), kt_cuda_free(dsg);
        kt_cuda_free(da16), kt_cuda_free(dscr);
        free(dy), free(a), free(g), free(wide), free(y1), free(y2), free(sb1), free(sb2), free(sg1), free(sg2), free(a16), free(h);
    }
}

/* LayerNorm's backward in two passes (kt_cuda_layernorm_bwd_fused): dx, the weight/bias gradients and
 * the column sum of dx (the depthwise conv's bias gradient in ConvNeXt) against the separate kernels
 * bit for bit, with x in f32 or 16 bits, with and without a weight, every element written, either
 * sum left out; and against the CPU's formulas (2e-5 of scale). With dy in x's 16-bit type too (as
 * fc1's data-gradient GEMM writes it under autocast): the f32-dy bits on the widened dy; refused
 * with an f32 x. 4-wide (64, 516) and scalar (30). */
/* The fused LayerNorm backward's three outputs: dx (n), dw|db (2C), the column sum of dx (C). */
static int ln_poison(float *ddx, float *dwb, float *dsb, int64_t n, int64_t C, char *msg, size_t cap) {
    return kt_cuda_memset(ddx, 0xff, (size_t)n * 4, msg, cap) || kt_cuda_memset(dwb, 0xff, (size_t)C * 8, msg, cap) ||
           kt_cuda_memset(dsb, 0xff, (size_t)C * 4, msg, cap);
}

static int ln_get(float *dx, float *wb, float *sb, const float *ddx, const float *dwb, const float *dsb, int64_t n, int64_t C) {
    return kt_twin_get(dx, ddx, (size_t)n * 4) || kt_twin_get(wb, dwb, (size_t)C * 8) || kt_twin_get(sb, dsb, (size_t)C * 4);
}

KT_TEST(test_cuda_layernorm_bwd_fused_same_bits_as_unfused) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_cuda_dtype types[] = {KT_CUDA_F32, KT_CUDA_BF16, KT_CUDA_F16};
    const int64_t widths[] = {64, 30, 516}, heights[] = {150, 77, 41};
    const float eps = 1e-6f;
    char msg[256];
    for (int wi = 0; wi < 3; wi++) {
        int64_t rows = heights[wi], C = widths[wi], n = rows * C;
        float *x = malloc((size_t)n * 4), *dy = malloc((size_t)n * 4), *lw = malloc((size_t)C * 4), *wide = malloc((size_t)n * 4);
        float *dx1 = malloc((size_t)n * 4), *dx2 = malloc((size_t)n * 4), *wb1 = malloc((size_t)C * 8), *wb2 = malloc((size_t)C * 8);
        float *sb1 = malloc((size_t)C * 4), *sb2 = malloc((size_t)C * 4), *cdx = malloc((size_t)n * 4), *cwb = malloc((size_t)C * 8);
        uint16_t *x16 = malloc((size_t)n * 2), *dy16 = malloc((size_t)n * 2);
        float *dyw = malloc((size_t)n * 4);
        void *cscr = malloc(kt_cpu_layernorm_bwd_wb_scratch(rows, C));
        KT_REQUIRE(x && dy && lw && wide && dx1 && dx2 && wb1 && wb2 && sb1 && sb2 && cdx && cwb && x16 && dy16 && dyw && cscr, "memory");
        unsigned seed = 71u + (unsigned)wi;
        kt_twin_fill(x, n, -2.0f, 2.0f, 0.0f, &seed);
        kt_twin_fill(dy, n, -1.0f, 1.0f, 0.0f, &seed);
        kt_twin_fill(lw, C, 0.5f, 1.5f, 0.0f, &seed);
        size_t scr = kt_cuda_layernorm_bwd_fused_scratch(rows, C), s2 = kt_cuda_layernorm_bwd_wb_scratch(rows, C);
        if (s2 > scr) scr = s2;
        if (kt_cuda_reduce_rows_scratch(rows, C) > scr) scr = kt_cuda_reduce_rows_scratch(rows, C);
        float *ddy = kt_twin_put(dy, (size_t)n * 4), *dlw = kt_twin_put(lw, (size_t)C * 4), *dwide = kt_twin_put(NULL, (size_t)n * 4);
        float *ddx = kt_twin_put(NULL, (size_t)n * 4), *dwb = kt_twin_put(NULL, (size_t)C * 8), *dsb = kt_twin_put(NULL, (size_t)C * 4);
        void *dx16 = kt_twin_put(NULL, (size_t)n * 2), *dscr = kt_twin_put(NULL, scr), *ddy16 = kt_twin_put(NULL, (size_t)n * 2);
        float *ddyw = kt_twin_put(NULL, (size_t)n * 4);
        KT_REQUIRE(ddy && dlw && dwide && ddx && dwb && dsb && dx16 && dscr && ddy16 && ddyw, "device buffers");
        for (int xt = 0; xt < 3; xt++) {
            kt_cuda_dtype t = types[xt];
            for (int64_t i = 0; i < n; i++) {
                x16[i] = t == KT_CUDA_F16 ? kt_f32_to_f16(x[i]) : kt_f32_to_bf16(x[i]);
                wide[i] = t == KT_CUDA_F32 ? x[i] : t == KT_CUDA_BF16 ? kt_bf16_to_f32(x16[i]) : kt_f16_to_f32(x16[i]);
            }
            KT_REQUIRE(!kt_cuda_memcpy_h2d(dwide, wide, (size_t)n * 4, msg, sizeof msg) && !kt_cuda_memcpy_h2d(dx16, x16, (size_t)n * 2, msg, sizeof msg),
                       "upload: %s", msg);
            const void *xin = t == KT_CUDA_F32 ? (const void *)dwide : dx16;
            for (int withw = 0; withw < 2; withw++) {
                const float *w = withw ? dlw : NULL;
                /* the separate kernels */
                if (t == KT_CUDA_F32) {
                    KT_CHECK(kt_cuda_layernorm_bwd_x(c, ddx, ddy, dwide, w, rows, C, eps) == 0, "%s", kt_cuda_ctx_error(c));
                    KT_CHECK(kt_cuda_layernorm_bwd_wb(c, dwb, ddy, dwide, rows, C, eps, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                } else {
                    KT_CHECK(kt_cuda_layernorm_bwd_x_x16(c, ddx, ddy, dx16, t, w, rows, C, eps) == 0, "%s", kt_cuda_ctx_error(c));
                    KT_CHECK(kt_cuda_layernorm_bwd_wb_x16(c, dwb, ddy, dx16, t, rows, C, eps, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                }
                KT_CHECK(kt_cuda_reduce_rows(c, dsb, ddx, rows, C, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!ln_get(dx1, wb1, sb1, ddx, dwb, dsb, n, C), "read back");
                /* the CPU's formulas on the same (widened) x */
                kt_cpu_layernorm_bwd_x(cdx, dy, wide, withw ? lw : NULL, rows, C, eps);
                kt_cpu_layernorm_bwd_wb(cwb, dy, wide, rows, C, eps, cscr);
                double edx = kt_twin_rel_err(dx1, cdx, n), ewb = kt_twin_rel_err(wb1, cwb, 2 * C);
                KT_CHECK(edx <= 2e-5 && ewb <= 2e-5, "%lldx%lld %s x, weight %d: separate kernels %.2e / %.2e of the CPU's dx / dwb", (long long)rows,
                         (long long)C, tname[t], withw, edx, ewb);
                /* fused: everything poisoned first */
                KT_REQUIRE(!ln_poison(ddx, dwb, dsb, n, C, msg, sizeof msg), "poison: %s", msg);
                KT_CHECK(kt_cuda_layernorm_bwd_fused(c, ddx, ddy, KT_CUDA_F32, xin, t, w, rows, C, eps, dwb, dsb, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!ln_get(dx2, wb2, sb2, ddx, dwb, dsb, n, C), "read back");
                KT_CHECK(memcmp(dx1, dx2, (size_t)n * 4) == 0, "%lldx%lld %s x, weight %d: dx not the separate kernel's bits", (long long)rows,
                         (long long)C, tname[t], withw);
                KT_CHECK(memcmp(wb1, wb2, (size_t)C * 8) == 0, "%lldx%lld %s x, weight %d: weight/bias gradients not the separate kernel's bits",
                         (long long)rows, (long long)C, tname[t], withw);
                KT_CHECK(memcmp(sb1, sb2, (size_t)C * 4) == 0, "%lldx%lld %s x, weight %d: column sum of dx not reduce_rows' bits",
                         (long long)rows, (long long)C, tname[t], withw);
                /* either sum left out: the other the same bits, the missing one's buffer untouched */
                KT_REQUIRE(!kt_cuda_memset(dwb, 0xff, (size_t)C * 8, msg, sizeof msg) && !kt_cuda_memset(dsb, 0xff, (size_t)C * 4, msg, sizeof msg),
                           "poison: %s", msg);
                KT_CHECK(kt_cuda_layernorm_bwd_fused(c, ddx, ddy, KT_CUDA_F32, xin, t, w, rows, C, eps, NULL, dsb, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!kt_twin_get(wb2, dwb, (size_t)C * 8) && !kt_twin_get(sb2, dsb, (size_t)C * 4), "read back");
                uint32_t bits;
                memcpy(&bits, &wb2[C], 4);
                KT_CHECK(memcmp(sb1, sb2, (size_t)C * 4) == 0 && bits == 0xffffffffu, "column sum only, %s x: %s", tname[t], "wrong sums or buffers");
                KT_REQUIRE(!kt_cuda_memset(dsb, 0xff, (size_t)C * 4, msg, sizeof msg), "poison: %s", msg);
                KT_CHECK(kt_cuda_layernorm_bwd_fused(c, ddx, ddy, KT_CUDA_F32, xin, t, w, rows, C, eps, dwb, NULL, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!ln_get(dx2, wb2, sb2, ddx, dwb, dsb, n, C), "read back");
                memcpy(&bits, sb2, 4);
                KT_CHECK(memcmp(wb1, wb2, (size_t)C * 8) == 0 && bits == 0xffffffffu && memcmp(dx1, dx2, (size_t)n * 4) == 0,
                         "weight/bias gradients only, %s x: %s", tname[t], "wrong sums or buffers");
                if (t == KT_CUDA_F32) {
                    KT_CHECK(kt_cuda_layernorm_bwd_fused(c, ddx, ddy16, KT_CUDA_BF16, xin, t, w, rows, C, eps, dwb, dsb, dscr) != 0 &&
                                 strstr(kt_cuda_ctx_error(c), "same type"),
                             "a 16-bit dy with an f32 x refused: %s", kt_cuda_ctx_error(c));
                    continue;
                }
                /* dy in x's 16-bit type: the f32-dy path's bits on the widened dy */
                if (put_rounded(dy, t, n, dy16, dyw, ddy16, ddyw)) return;
                KT_CHECK(kt_cuda_layernorm_bwd_fused(c, ddx, ddyw, KT_CUDA_F32, xin, t, w, rows, C, eps, dwb, dsb, dscr) == 0, "%s",
                         kt_cuda_ctx_error(c));
                KT_REQUIRE(!ln_get(dx1, wb1, sb1, ddx, dwb, dsb, n, C), "read back");
                KT_REQUIRE(!ln_poison(ddx, dwb, dsb, n, C, msg, sizeof msg), "poison: %s", msg);
                KT_CHECK(kt_cuda_layernorm_bwd_fused(c, ddx, ddy16, t, xin, t, w, rows, C, eps, dwb, dsb, dscr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!ln_get(dx2, wb2, sb2, ddx, dwb, dsb, n, C), "read back");
                KT_CHECK(memcmp(dx1, dx2, (size_t)n * 4) == 0 && memcmp(wb1, wb2, (size_t)C * 8) == 0 && memcmp(sb1, sb2, (size_t)C * 4) == 0,
                         "%lldx%lld %s x and dy, weight %d: not the f32-dy bits on the widened dy", (long long)rows, (long long)C, tname[t], withw);
            }
        }
        KT_CHECK(kt_cuda_layernorm_bwd_fused(c, ddx, ddy, KT_CUDA_F32, dwide, (kt_cuda_dtype)99, dlw, rows, C, eps, dwb, dsb, dscr) != 0 &&
                     strstr(kt_cuda_ctx_error(c), "f32, bf16 or f16"),
                 "an unknown x type refused: %s", kt_cuda_ctx_error(c));
        kt_cuda_free(ddy), kt_cuda_free(dlw), kt_cuda_free(dwide), kt_cuda_free(ddx), kt_cuda_free(dwb), kt_cuda_free(dsb), kt_cuda_free(dx16);
        kt_cuda_free(dscr), kt_cuda_free(ddy16), kt_cuda_free(ddyw);
        free(x), free(dy), free(lw), free(wide), free(dx1), free(dx2), free(wb1), free(wb2), free(sb1), free(sb2), free(cdx), free(cwb), free(x16);
        free(cscr), free(dy16), free(dyw);
    }
}

/* The bias-epilogue GEMM (cuBLASLt): D = A W^T + bias in bf16/f16, against the product of the same
 * 16-bit operands in double plus the bias, rounded once (within one unit in the last place: cuBLASLt
 * accumulates in f32), every element written; with an f32 output and f32 bias from 16-bit and from
 * f32 operands (TF32 off) within 1e-5 of scale; declined (-1, nothing written) for an unaligned
 * output and when switched off, refused for a 16-bit output of another type. Then GELU from a 16-bit
 * pre-activation against the CPU's GELU of the widened values (16-bit outputs within one ulp, f32
 * within 1e-6 of scale). On a GPU the 16-bit case must not be declined (the path ConvNeXt's MLP
 * takes); an f32-output case cuBLASLt declines says so and is not compared. */
static float widen16(uint16_t h, kt_cuda_dtype t) { return t == KT_CUDA_BF16 ? kt_bf16_to_f32(h) : kt_f16_to_f32(h); }
/* the spacing of t's values just above |v|'s 16-bit value: one unit in the last place */
static float ulp16(float v, kt_cuda_dtype t) {
    uint16_t h = t == KT_CUDA_BF16 ? kt_f32_to_bf16(v) : kt_f32_to_f16(v);
    uint16_t m = (uint16_t)(h & 0x7fff);
    return fabsf(widen16((uint16_t)(m + 1), t) - widen16(m, t));
}

KT_TEST(test_cuda_gemm_bias_and_gelu_x16) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_cuda_dtype types[] = {KT_CUDA_BF16, KT_CUDA_F16};
    const int64_t Ms[] = {64, 37}, Ns[] = {384, 96}, Ks[] = {96, 48}; /* fc1-like, and rows that are no multiple of 8 */
    char msg[256];
    for (int sh = 0; sh < 2; sh++)
        for (int ti = 0; ti < 2; ti++) {
            kt_cuda_dtype t = types[ti];
            int64_t M = Ms[sh], N = Ns[sh], K = Ks[sh];
            float *a = malloc((size_t)(M * K) * 4), *w = malloc((size_t)(N * K) * 4), *b = malloc((size_t)N * 4);
            float *wide = malloc((size_t)(M * N) * 4), *ref = malloc((size_t)(M * N) * 4), *got = malloc((size_t)(M * N) * 4);
            uint16_t *a16 = malloc((size_t)(M * K) * 2), *w16 = malloc((size_t)(N * K) * 2), *b16 = malloc((size_t)N * 2);
            uint16_t *d16 = malloc((size_t)(M * N) * 2), *g16 = malloc((size_t)(M * N) * 2);
            KT_REQUIRE(a && w && b && wide && ref && got && a16 && w16 && b16 && d16 && g16, "memory");
            unsigned seed = 91u + (unsigned)(2 * sh + ti);
            kt_twin_fill(a, M * K, -1.0f, 1.0f, 0.0f, &seed);
            kt_twin_fill(w, N * K, -0.3f, 0.3f, 0.0f, &seed);
            kt_twin_fill(b, N, -1.0f, 1.0f, 0.0f, &seed);
#define R16(v) (t == KT_CUDA_BF16 ? kt_f32_to_bf16(v) : kt_f32_to_f16(v))
#define W16(h) widen16(h, t)
            for (int64_t i = 0; i < M * K; i++) a16[i] = R16(a[i]);
            for (int64_t i = 0; i < N * K; i++) w16[i] = R16(w[i]);
            for (int64_t i = 0; i < N; i++) b16[i] = R16(b[i]);
            void *da = kt_twin_put(a16, (size_t)(M * K) * 2), *dw = kt_twin_put(w16, (size_t)(N * K) * 2), *db = kt_twin_put(b16, (size_t)N * 2);
            void *dd = kt_twin_put(NULL, (size_t)(M * N) * 2 + 16), *dg = kt_twin_put(NULL, (size_t)(M * N) * 4);
            KT_REQUIRE(da && dw && db && dd && dg, "device buffers");
            int r = kt_cuda_gemm_bias(c, M, N, K, da, dw, db, dd, t, t);
            KT_CHECK(r == 0, "%s %lldx%lldx%lld: the bias GEMM %s: %s", tname[t], (long long)M, (long long)N, (long long)K,
                     r < 0 ? "was declined (no cuBLASLt algorithm?)" : "failed", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(d16, dd, (size_t)(M * N) * 2), "read back");
            int64_t off = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double acc = 0;
                    for (int64_t k = 0; k < K; k++) acc += (double)W16(a16[i * K + k]) * W16(w16[j * K + k]);
                    float want = W16(R16((float)(acc + W16(b16[j])))), have = W16(d16[i * N + j]);
                    off += !(fabsf(have - want) <= ulp16(want, t));
                }
            KT_CHECK(off == 0, "%s %lldx%lldx%lld: %lld outputs more than one ulp from the rounded product + bias (or unwritten)", tname[t],
                     (long long)M, (long long)N, (long long)K, (long long)off);
            /* declined: an output 2 bytes off alignment, and the path switched off; nothing written */
            KT_REQUIRE(!kt_cuda_memset(dd, 0xff, (size_t)(M * N) * 2 + 16, msg, sizeof msg), "poison: %s", msg);
            KT_CHECK(kt_cuda_gemm_bias(c, M, N, K, da, dw, db, (char *)dd + 2, t, t) == -1, "an unaligned output declined");
            int lt = kt_cuda_ctx_gemm_lt(c);
            kt_cuda_ctx_set_gemm_lt(c, 0);
            KT_CHECK(kt_cuda_gemm_bias(c, M, N, K, da, dw, db, dd, t, t) == -1, "switched off: declined");
            kt_cuda_ctx_set_gemm_lt(c, lt);
            KT_REQUIRE(!kt_twin_get(d16, dd, (size_t)(M * N) * 2), "read back");
            int64_t touched = 0;
            for (int64_t i = 0; i < M * N; i++) touched += d16[i] != 0xffff;
            KT_CHECK(touched == 0, "declined calls wrote %lld elements", (long long)touched);
            KT_CHECK(kt_cuda_gemm_bias(c, M, N, K, da, dw, db, dd, t, t == KT_CUDA_BF16 ? KT_CUDA_F16 : KT_CUDA_BF16) > 0 &&
                         strstr(kt_cuda_ctx_error(c), "operands' type or be f32"),
                     "a 16-bit output of the other type refused: %s", kt_cuda_ctx_error(c));
            /* f32 output and bias: from the 16-bit operands, and (once per shape) from f32 ones */
            for (int f = 0; f < (ti == 0 ? 2 : 1); f++) {
                kt_cuda_dtype ab = f ? KT_CUDA_F32 : t;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double acc = b[j];
                        for (int64_t k = 0; k < K; k++)
                            acc += f ? (double)a[i * K + k] * w[j * K + k] : (double)W16(a16[i * K + k]) * W16(w16[j * K + k]);
                        ref[i * N + j] = (float)acc;
                    }
                void *fa = f ? kt_twin_put(a, (size_t)(M * K) * 4) : da, *fw = f ? kt_twin_put(w, (size_t)(N * K) * 4) : dw;
                float *fb = kt_twin_put(b, (size_t)N * 4);
                KT_REQUIRE(fa && fw && fb, "device buffers");
                r = kt_cuda_gemm_bias(c, M, N, K, fa, fw, fb, dg, ab, KT_CUDA_F32);
                if (r < 0) printf("%s operands, f32 output, %lldx%lldx%lld: declined by cuBLASLt (the cuBLAS path is taken)\n", tname[ab],
                                  (long long)M, (long long)N, (long long)K);
                else KT_CHECK(r == 0, "%s operands, f32 output: %s", tname[ab], kt_cuda_ctx_error(c));
                if (r == 0) {
                    KT_REQUIRE(!kt_twin_get(got, dg, (size_t)(M * N) * 4), "read back");
                    double e = kt_twin_rel_err(got, ref, M * N);
                    KT_CHECK(e <= 1e-5, "%s operands, f32 output, %lldx%lldx%lld: %.3g of scale from the double product + bias", tname[ab],
                             (long long)M, (long long)N, (long long)K, e);
                }
                if (f) kt_cuda_free(fa), kt_cuda_free(fw);
                kt_cuda_free(fb);
            }
            /* GELU from the 16-bit values a16 (M x K), 16-bit and f32 out */
            int64_t n = M * K;
            for (int64_t i = 0; i < n; i++) wide[i] = W16(a16[i]);
            kt_cpu_act_fwd(KT_ACT_GELU, ref, wide, n);
            KT_REQUIRE(!kt_cuda_memset(dg, 0xff, (size_t)n * 4, msg, sizeof msg), "poison: %s", msg);
            KT_CHECK(kt_cuda_gelu_fwd_x16(c, dg, t, da, t, n) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(g16, dg, (size_t)n * 2), "read back");
            off = 0;
            for (int64_t i = 0; i < n; i++) {
                float want = W16(R16(ref[i])), have = W16(g16[i]);
                off += !(fabsf(have - want) <= ulp16(want, t));
            }
            KT_CHECK(off == 0, "%s GELU of a 16-bit input, %s out: %lld elements beyond one ulp of the CPU's (or unwritten)", tname[t], tname[t],
                     (long long)off);
            KT_REQUIRE(!kt_cuda_memset(dg, 0xff, (size_t)n * 4, msg, sizeof msg), "poison: %s", msg);
            KT_CHECK(kt_cuda_gelu_fwd_x16(c, dg, KT_CUDA_F32, da, t, n) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(got, dg, (size_t)n * 4), "read back");
            double e = kt_twin_rel_err(got, ref, n);
            KT_CHECK(e <= 1e-6, "%s GELU of a 16-bit input, f32 out: %.3g of scale from the CPU's", tname[t], e);
            KT_CHECK(kt_cuda_gelu_fwd_x16(c, dg, t == KT_CUDA_BF16 ? KT_CUDA_F16 : KT_CUDA_BF16, da, t, n) != 0 &&
                         strstr(kt_cuda_ctx_error(c), "own type or f32"),
                     "GELU into the other 16-bit type refused: %s", kt_cuda_ctx_error(c));
#undef R16
#undef W16
            kt_cuda_free(da), kt_cuda_free(dw), kt_cuda_free(db), kt_cuda_free(dd), kt_cuda_free(dg);
            free(a), free(w), free(b), free(wide), free(ref), free(got), free(a16), free(w16), free(b16), free(d16), free(g16);
        }
}

/* The pairs whose first output is never written: layer scale + the residual add (the scaled input in
 * f32 or 16 bits) and the depthwise data gradient summed into another gradient (4-channel, scalar
 * register-tiled and plain geometries; also in place, the sum written over the addend) give the
 * bits of the two kernels apart, every element written. */
KT_TEST(test_cuda_scale_add_and_dwconv_bwd_add_same_bits) {
    kt_cuda_ctx *c = kt_twin_ctx();
    char msg[256];
    const kt_cuda_dtype types[] = {KT_CUDA_F32, KT_CUDA_BF16, KT_CUDA_F16};
    const int64_t widths[] = {64, 30};
    for (int w = 0; w < 2; w++) {
        int64_t rows = 91, C = widths[w], n = rows * C;
        float *a = malloc((size_t)n * 4), *g = malloc((size_t)C * 4), *x = malloc((size_t)n * 4), *wide = malloc((size_t)n * 4);
        float *y1 = malloc((size_t)n * 4), *y2 = malloc((size_t)n * 4);
        uint16_t *a16 = malloc((size_t)n * 2);
        KT_REQUIRE(a && g && x && wide && y1 && y2 && a16, "memory");
        unsigned seed = 61u + (unsigned)w;
        kt_twin_fill(a, n, -2.0f, 2.0f, 0.0f, &seed);
        kt_twin_fill(g, C, -0.5f, 0.5f, 0.0f, &seed);
        kt_twin_fill(x, n, -1.0f, 1.0f, 0.0f, &seed);
        float *da = kt_twin_put(a, (size_t)n * 4), *dg = kt_twin_put(g, (size_t)C * 4), *dx = kt_twin_put(x, (size_t)n * 4);
        float *dw = kt_twin_put(NULL, (size_t)n * 4), *dt = kt_twin_put(NULL, (size_t)n * 4), *dy = kt_twin_put(NULL, (size_t)n * 4);
        void *da16 = kt_twin_put(NULL, (size_t)n * 2);
        KT_REQUIRE(da && dg && dx && dw && dt && dy && da16, "device buffers");
        for (int k = 0; k < 3; k++) {
            kt_cuda_dtype t = types[k];
            const void *ain = da;
            if (t != KT_CUDA_F32) {
                for (int64_t i = 0; i < n; i++) {
                    a16[i] = t == KT_CUDA_BF16 ? kt_f32_to_bf16(a[i]) : kt_f32_to_f16(a[i]);
                    wide[i] = t == KT_CUDA_BF16 ? kt_bf16_to_f32(a16[i]) : kt_f16_to_f32(a16[i]);
                }
                KT_REQUIRE(!kt_cuda_memcpy_h2d(da16, a16, (size_t)n * 2, msg, sizeof msg) && !kt_cuda_memcpy_h2d(dw, wide, (size_t)n * 4, msg, sizeof msg),
                           "upload: %s", msg);
                ain = da16;
                KT_CHECK(kt_cuda_mul_bcast_a16(c, dt, da16, t, dg, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
            } else KT_CHECK(kt_cuda_mul_bcast(c, dt, da, dg, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
            KT_CHECK(kt_cuda_add(c, dy, dt, dx, n) == 0, "%s", kt_cuda_ctx_error(c)); /* the graph's order: add(a * g, x) */
            KT_REQUIRE(!kt_twin_get(y1, dy, (size_t)n * 4), "read back");
            KT_REQUIRE(!kt_cuda_memset(dy, 0xff, (size_t)n * 4, msg, sizeof msg), "poison: %s", msg);
            KT_CHECK(kt_cuda_scale_add(c, dy, ain, t, dg, dx, rows, C) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(y2, dy, (size_t)n * 4), "read back");
            KT_CHECK(memcmp(y1, y2, (size_t)n * 4) == 0, "layer scale + add, %lldx%lld, %s input: not the bits of the two kernels", (long long)rows,
                     (long long)C, tname[t]);
        }
        kt_cuda_free(da), kt_cuda_free(dg), kt_cuda_free(dx), kt_cuda_free(dw), kt_cuda_free(dt), kt_cuda_free(dy), kt_cuda_free(da16);
        free(a), free(g), free(x), free(wide), free(y1), free(y2), free(a16);
    }
    /* depthwise data gradient + add */
    const kt_conv_shape shapes[] = {
        {.N = 2, .H = 9, .W = 11, .Ci = 40, .Co = 40, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 40, .Ho = 9, .Wo = 11},
        {.N = 2, .H = 9, .W = 11, .Ci = 38, .Co = 38, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 38, .Ho = 9, .Wo = 11},
        {.N = 2, .H = 9, .W = 7, .Ci = 6, .Co = 6, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .groups = 6, .Ho = 5, .Wo = 4}};
    const char *names[] = {"7x7, 40 channels (4 per thread)", "7x7, 38 channels (scalar tiled)", "3x3 stride 2 (plain)"};
    for (int k = 0; k < 3; k++) {
        const kt_conv_shape *cs = &shapes[k];
        int64_t nin = cs->N * cs->H * cs->W * cs->Ci, nout = cs->N * cs->Ho * cs->Wo * cs->Ci, nw = cs->Ci * cs->kh * cs->kw;
        float *dyv = malloc((size_t)nout * 4), *wv = malloc((size_t)nw * 4), *addv = malloc((size_t)nin * 4);
        float *r1 = malloc((size_t)nin * 4), *r2 = malloc((size_t)nin * 4);
        KT_REQUIRE(dyv && wv && addv && r1 && r2, "memory");
        unsigned seed = 71u + (unsigned)k;
        kt_twin_fill(dyv, nout, -1.0f, 1.0f, 0.0f, &seed);
        kt_twin_fill(wv, nw, -0.3f, 0.3f, 0.0f, &seed);
        kt_twin_fill(addv, nin, -1.0f, 1.0f, 0.0f, &seed);
        float *ddy = kt_twin_put(dyv, (size_t)nout * 4), *dwt = kt_twin_put(wv, (size_t)nw * 4), *dadd = kt_twin_put(addv, (size_t)nin * 4);
        float *dd = kt_twin_put(NULL, (size_t)nin * 4), *dsum = kt_twin_put(NULL, (size_t)nin * 4);
        void *scr = kt_twin_put(NULL, kt_cuda_dwconv_scratch(cs));
        KT_REQUIRE(ddy && dwt && dadd && dd && dsum && scr, "device buffers");
        KT_CHECK(kt_cuda_dwconv_bwd_data(c, cs, ddy, dwt, dd, scr) == 0, "%s", kt_cuda_ctx_error(c));
        KT_CHECK(kt_cuda_add(c, dsum, dadd, dd, nin) == 0, "%s", kt_cuda_ctx_error(c)); /* the graph's order: add(other, dx) */
        KT_REQUIRE(!kt_twin_get(r1, dsum, (size_t)nin * 4), "read back");
        KT_REQUIRE(!kt_cuda_memset(dsum, 0xff, (size_t)nin * 4, msg, sizeof msg), "poison: %s", msg);
        KT_CHECK(kt_cuda_dwconv_bwd_data_add(c, cs, ddy, dwt, dadd, dsum, scr) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(r2, dsum, (size_t)nin * 4), "read back");
        KT_CHECK(memcmp(r1, r2, (size_t)nin * 4) == 0, "depthwise data gradient + add, %s: not the bits of the two kernels", names[k]);
        /* in place: the sum written over the addend */
        KT_CHECK(kt_cuda_dwconv_bwd_data_add(c, cs, ddy, dwt, dadd, dadd, scr) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(r2, dadd, (size_t)nin * 4), "read back");
        KT_CHECK(memcmp(r1, r2, (size_t)nin * 4) == 0, "depthwise data gradient + add in place, %s: not the bits of the two kernels", names[k]);
        kt_cuda_free(ddy), kt_cuda_free(dwt), kt_cuda_free(dadd), kt_cuda_free(dd), kt_cuda_free(dsum), kt_cuda_free(scr);
        free(dyv), free(wv), free(addv), free(r1), free(r2);
    }
}

/* Depthwise output stored in 16 bits and LayerNorm over it: the rounded convolution and the LayerNorm
 * forward / backward parts give the f32 kernels' bits (rounded once) on the widened values. */
KT_TEST(test_cuda_dwconv_layernorm_16bit_kernels) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_cuda_dtype types[] = {KT_CUDA_BF16, KT_CUDA_F16};
    kt_conv_shape cs = {.N = 2, .H = 9, .W = 11, .Ci = 40, .Co = 40, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 40,
                        .Ho = 9, .Wo = 11};
    int64_t rows = cs.N * cs.Ho * cs.Wo, C = cs.Ci, n = rows * C, nw = C * 49;
    float *x = malloc((size_t)n * 4), *w = malloc((size_t)nw * 4), *b = malloc((size_t)C * 4), *y32 = malloc((size_t)n * 4);
    float *wide = malloc((size_t)n * 4), *dy = malloc((size_t)n * 4), *r1 = malloc((size_t)n * 4), *r2 = malloc((size_t)n * 4);
    float *lw = malloc((size_t)C * 4), *lb = malloc((size_t)C * 4), *wb1 = malloc((size_t)C * 8), *wb2 = malloc((size_t)C * 8);
    uint16_t *h = malloc((size_t)n * 2), *h2 = malloc((size_t)n * 2);
    KT_REQUIRE(x && w && b && y32 && wide && dy && r1 && r2 && lw && lb && wb1 && wb2 && h && h2, "memory");
    unsigned seed = 41u;
    kt_twin_fill(x, n, -1.0f, 1.0f, 0.0f, &seed);
    kt_twin_fill(w, nw, -0.3f, 0.3f, 0.0f, &seed);
    kt_twin_fill(b, C, -0.5f, 0.5f, 0.0f, &seed);
    kt_twin_fill(dy, n, -1.0f, 1.0f, 0.0f, &seed);
    kt_twin_fill(lw, C, 0.5f, 1.5f, 0.0f, &seed);
    kt_twin_fill(lb, C, -0.5f, 0.5f, 0.0f, &seed);
    size_t wbs = kt_cuda_layernorm_bwd_wb_scratch(rows, C), dws = kt_cuda_dwconv_scratch(&cs);
    float *dx = kt_twin_put(x, (size_t)n * 4), *dw = kt_twin_put(w, (size_t)nw * 4), *db = kt_twin_put(b, (size_t)C * 4);
    float *dy32 = kt_twin_put(NULL, (size_t)n * 4), *ddy = kt_twin_put(dy, (size_t)n * 4), *dwide = kt_twin_put(NULL, (size_t)n * 4);
    float *dlw = kt_twin_put(lw, (size_t)C * 4), *dlb = kt_twin_put(lb, (size_t)C * 4), *dout = kt_twin_put(NULL, (size_t)n * 4);
    float *dwb = kt_twin_put(NULL, (size_t)C * 8);
    void *dh = kt_twin_put(NULL, (size_t)n * 2), *dh2 = kt_twin_put(NULL, (size_t)n * 2), *scr = kt_twin_put(NULL, wbs > dws ? wbs : dws);
    KT_REQUIRE(dx && dw && db && dy32 && ddy && dwide && dlw && dlb && dout && dwb && dh && dh2 && scr, "device buffers");
    KT_CHECK(kt_cuda_dwconv_fwd(c, &cs, dx, dw, db, dy32, scr) == 0, "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_twin_get(y32, dy32, (size_t)n * 4), "read back");
    char msg[256];
    for (int k = 0; k < 2; k++) {
        kt_cuda_dtype t = types[k];
        KT_CHECK(kt_cuda_dwconv_fwd_ex(c, &cs, dx, dw, db, dh, t, NULL, KT_CUDA_F32, scr) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(h, dh, (size_t)n * 2), "read back");
        int64_t off = 0;
        for (int64_t i = 0; i < n; i++) {
            off += h[i] != (t == KT_CUDA_BF16 ? kt_f32_to_bf16(y32[i]) : kt_f32_to_f16(y32[i]));
            wide[i] = t == KT_CUDA_BF16 ? kt_bf16_to_f32(h[i]) : kt_f16_to_f32(h[i]);
        }
        KT_CHECK(off == 0, "%s depthwise output: %lld elements not the f32 result rounded as the CPU rounds", tname[t], (long long)off);
        KT_REQUIRE(!kt_cuda_memcpy_h2d(dwide, wide, (size_t)n * 4, msg, sizeof msg), "upload: %s", msg);
        /* forward, f32 out and 16-bit out */
        KT_CHECK(kt_cuda_layernorm_fwd(c, dout, dwide, dlw, dlb, rows, C, 1e-6f) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(r1, dout, (size_t)n * 4), "read back");
        KT_CHECK(kt_cuda_layernorm_fwd_x16(c, dout, KT_CUDA_F32, dh, t, dlw, dlb, rows, C, 1e-6f) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(r2, dout, (size_t)n * 4), "read back");
        KT_CHECK(memcmp(r1, r2, (size_t)n * 4) == 0, "%s LayerNorm forward (f32 out): not the f32 kernel's bits", tname[t]);
        KT_CHECK(kt_cuda_layernorm_fwd_x16(c, dh2, t, dh, t, dlw, dlb, rows, C, 1e-6f) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(h2, dh2, (size_t)n * 2), "read back");
        off = 0;
        for (int64_t i = 0; i < n; i++) off += h2[i] != (t == KT_CUDA_BF16 ? kt_f32_to_bf16(r1[i]) : kt_f32_to_f16(r1[i]));
        KT_CHECK(off == 0, "%s LayerNorm forward (16-bit out): %lld elements not the f32 result rounded", tname[t], (long long)off);
        /* backward: data gradient and weight/bias gradients */
        KT_CHECK(kt_cuda_layernorm_bwd_x(c, dout, ddy, dwide, dlw, rows, C, 1e-6f) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(r1, dout, (size_t)n * 4), "read back");
        KT_REQUIRE(!kt_cuda_memset(dout, 0xff, (size_t)n * 4, msg, sizeof msg), "poison: %s", msg);
        KT_CHECK(kt_cuda_layernorm_bwd_x_x16(c, dout, ddy, dh, t, dlw, rows, C, 1e-6f) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(r2, dout, (size_t)n * 4), "read back");
        KT_CHECK(memcmp(r1, r2, (size_t)n * 4) == 0, "%s LayerNorm data gradient: not the f32 kernel's bits", tname[t]);
        KT_CHECK(kt_cuda_layernorm_bwd_wb(c, dwb, ddy, dwide, rows, C, 1e-6f, scr) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(wb1, dwb, (size_t)C * 8), "read back");
        KT_CHECK(kt_cuda_layernorm_bwd_wb_x16(c, dwb, ddy, dh, t, rows, C, 1e-6f, scr) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(wb2, dwb, (size_t)C * 8), "read back");
        KT_CHECK(memcmp(wb1, wb2, (size_t)C * 8) == 0, "%s LayerNorm weight/bias gradients: not the f32 kernel's bits", tname[t]);
    }
    kt_cuda_free(dx), kt_cuda_free(dw), kt_cuda_free(db), kt_cuda_free(dy32), kt_cuda_free(ddy), kt_cuda_free(dwide), kt_cuda_free(dlw);
    kt_cuda_free(dlb), kt_cuda_free(dout), kt_cuda_free(dwb), kt_cuda_free(dh), kt_cuda_free(dh2), kt_cuda_free(scr);
    free(x), free(w), free(b), free(y32), free(wide), free(dy), free(r1), free(r2), free(lw), free(lb), free(wb1), free(wb2), free(h);
    free(h2);
}

/* The depthwise forward writing its input's 16-bit copy: the output the same bits as without it (f32
 * and 16-bit outputs), every copied element the CPU's rounding of x (the buffer poisoned first); the
 * weight gradient from the copy the f32 kernel's bits on the widened values; geometries whose kernel
 * cannot copy (not 'same' stride 1) say so. */
KT_TEST(test_cuda_dwconv_saved_input_kernels) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_cuda_dtype types[] = {KT_CUDA_BF16, KT_CUDA_F16};
    const int ks[] = {7, 3, 7}, chans[] = {40, 40, 38}; /* 38: the scalar kernels, else 4 channels per thread */
    char msg[256];
    for (int ki = 0; ki < 3; ki++) {
        int K = ks[ki], C0 = chans[ki];
        kt_conv_shape cs = {.N = 2, .H = 9, .W = 11, .Ci = C0, .Co = C0, .kh = K, .kw = K, .sh = 1, .sw = 1, .ph = (K - 1) / 2,
                            .pw = (K - 1) / 2, .groups = C0, .Ho = 9, .Wo = 11};
        KT_CHECK(kt_cuda_dwconv_can_copy_input(&cs), "%dx%d 'same' stride 1 can copy its input", K, K);
        int64_t n = cs.N * cs.H * cs.W * cs.Ci, C = cs.Ci, nw = C * K * K;
        float *x = malloc((size_t)n * 4), *w = malloc((size_t)nw * 4), *b = malloc((size_t)C * 4), *y1 = malloc((size_t)n * 4);
        float *y2 = malloc((size_t)n * 4), *wide = malloc((size_t)n * 4), *dy = malloc((size_t)n * 4), *g1 = malloc((size_t)nw * 4);
        float *g2 = malloc((size_t)nw * 4);
        uint16_t *h = malloc((size_t)n * 2), *h1 = malloc((size_t)n * 2), *h2 = malloc((size_t)n * 2);
        KT_REQUIRE(x && w && b && y1 && y2 && wide && dy && g1 && g2 && h && h1 && h2, "memory");
        unsigned seed = 43u + (unsigned)K;
        kt_twin_fill(x, n, -1.0f, 1.0f, 0.0f, &seed);
        kt_twin_fill(w, nw, -0.3f, 0.3f, 0.0f, &seed);
        kt_twin_fill(b, C, -0.5f, 0.5f, 0.0f, &seed);
        kt_twin_fill(dy, n, -1.0f, 1.0f, 0.0f, &seed);
        size_t fs = kt_cuda_dwconv_scratch(&cs), ws = kt_cuda_dwconv_bwd_weight_scratch(c, &cs);
        float *dx = kt_twin_put(x, (size_t)n * 4), *dw = kt_twin_put(w, (size_t)nw * 4), *db = kt_twin_put(b, (size_t)C * 4);
        float *dy32 = kt_twin_put(NULL, (size_t)n * 4), *ddy = kt_twin_put(dy, (size_t)n * 4), *dwide = kt_twin_put(NULL, (size_t)n * 4);
        float *dg = kt_twin_put(NULL, (size_t)nw * 4);
        void *dh = kt_twin_put(NULL, (size_t)n * 2), *dxs = kt_twin_put(NULL, (size_t)n * 2), *scr = kt_twin_put(NULL, fs > ws ? fs : ws);
        KT_REQUIRE(dx && dw && db && dy32 && ddy && dwide && dg && dh && dxs && scr, "device buffers");
        for (int k = 0; k < 2; k++) {
            kt_cuda_dtype t = types[k];
            /* f32 output: same bits with and without the copy */
            KT_CHECK(kt_cuda_dwconv_fwd(c, &cs, dx, dw, db, dy32, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(y1, dy32, (size_t)n * 4), "read back");
            KT_REQUIRE(!kt_cuda_memset(dxs, 0xff, (size_t)n * 2, msg, sizeof msg), "poison: %s", msg);
            KT_CHECK(kt_cuda_dwconv_fwd_ex(c, &cs, dx, dw, db, dy32, KT_CUDA_F32, dxs, t, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(y2, dy32, (size_t)n * 4), "read back");
            KT_CHECK(memcmp(y1, y2, (size_t)n * 4) == 0, "%dx%d C=%d %s copy: the f32 output changed", K, K, C0, tname[t]);
            KT_REQUIRE(!kt_twin_get(h, dxs, (size_t)n * 2), "read back");
            int64_t off = 0;
            for (int64_t i = 0; i < n; i++) {
                off += h[i] != (t == KT_CUDA_BF16 ? kt_f32_to_bf16(x[i]) : kt_f32_to_f16(x[i]));
                wide[i] = t == KT_CUDA_BF16 ? kt_bf16_to_f32(h[i]) : kt_f16_to_f32(h[i]);
            }
            KT_CHECK(off == 0, "%dx%d C=%d %s copy: %lld of %lld elements not x rounded as the CPU rounds (or not written)", K, K, C0, tname[t],
                     (long long)off, (long long)n);
            /* 16-bit output: same bits with and without the copy */
            KT_CHECK(kt_cuda_dwconv_fwd_ex(c, &cs, dx, dw, db, dh, t, NULL, KT_CUDA_F32, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(h1, dh, (size_t)n * 2), "read back");
            KT_CHECK(kt_cuda_dwconv_fwd_ex(c, &cs, dx, dw, db, dh, t, dxs, t, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(h2, dh, (size_t)n * 2), "read back");
            KT_CHECK(memcmp(h1, h2, (size_t)n * 2) == 0, "%dx%d C=%d %s copy: the 16-bit output changed", K, K, C0, tname[t]);
            /* weight gradient from the copy = the f32 kernel on the widened values */
            KT_REQUIRE(!kt_cuda_memcpy_h2d(dwide, wide, (size_t)n * 4, msg, sizeof msg), "upload: %s", msg);
            KT_CHECK(kt_cuda_dwconv_bwd_weight(c, &cs, ddy, dwide, dg, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(g1, dg, (size_t)nw * 4), "read back");
            KT_REQUIRE(!kt_cuda_memset(dg, 0xff, (size_t)nw * 4, msg, sizeof msg), "poison: %s", msg);
            KT_CHECK(kt_cuda_dwconv_bwd_weight_x16(c, &cs, ddy, dxs, t, dg, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(g2, dg, (size_t)nw * 4), "read back");
            KT_CHECK(memcmp(g1, g2, (size_t)nw * 4) == 0, "%dx%d C=%d %s weight gradient from the copy: not the f32 kernel's bits", K, K, C0,
                     tname[t]);
        }
        kt_cuda_free(dx), kt_cuda_free(dw), kt_cuda_free(db), kt_cuda_free(dy32), kt_cuda_free(ddy), kt_cuda_free(dwide);
        kt_cuda_free(dg), kt_cuda_free(dh), kt_cuda_free(dxs), kt_cuda_free(scr);
        free(x), free(w), free(b), free(y1), free(y2), free(wide), free(dy), free(g1), free(g2), free(h), free(h1), free(h2);
    }
    /* geometries whose kernel does not read every input once in its centre row */
    kt_conv_shape strided = {.N = 1, .H = 8, .W = 8, .Ci = 8, .Co = 8, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .groups = 8,
                             .Ho = 4, .Wo = 4};
    kt_conv_shape valid = {.N = 1, .H = 8, .W = 8, .Ci = 8, .Co = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 0, .pw = 0, .groups = 8,
                           .Ho = 6, .Wo = 6};
    KT_CHECK(!kt_cuda_dwconv_can_copy_input(&strided) && !kt_cuda_dwconv_can_copy_input(&valid), "strided / unpadded: no copy");
    uint16_t one = 0;
    KT_CHECK(kt_cuda_dwconv_fwd_ex(c, &valid, NULL, NULL, NULL, NULL, KT_CUDA_F32, &one, KT_CUDA_BF16, NULL) != 0 &&
                 strstr(kt_cuda_ctx_error(c), "cannot copy its input"),
             "an unpadded conv asked to copy its input refused: %s", kt_cuda_ctx_error(c));
}

#else /* no CUDA in this build: the tests exist and say so */

#define NO_CUDA(name) \
    KT_TEST(name) { kt_test_skip("no CUDA device: this build has no CUDA backend"); }
NO_CUDA(test_cuda_bias_gelu_kernel_outputs)
NO_CUDA(test_cuda_act_bwd_colsum_same_bits_as_unfused)
NO_CUDA(test_cuda_linear_out_16bit_kernels)
NO_CUDA(test_cuda_dwconv_layernorm_16bit_kernels)
NO_CUDA(test_cuda_dwconv_saved_input_kernels)
NO_CUDA(test_cuda_layer_scale_bwd_same_bits_as_unfused)
NO_CUDA(test_cuda_layernorm_bwd_fused_same_bits_as_unfused)
NO_CUDA(test_cuda_gemm_bias_and_gelu_x16)
NO_CUDA(test_cuda_scale_add_and_dwconv_bwd_add_same_bits)

#endif
