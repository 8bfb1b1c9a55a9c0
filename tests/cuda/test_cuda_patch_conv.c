/* Patch convolutions (kernel == stride, no padding) as 16-bit GEMMs under autocast
 * (kernels/cuda/patch.cu): on inputs already rounded to the 16-bit type (or in f32, with f32
 * operands) they are the f32 CPU convolution up to the order of the f32 sums, every output element written (the input pixels no
 * patch covers get exactly 0); a planned bf16 graph runs them there and stores the LayerNorm output
 * they read in bf16, and KT_CUDA_NO_PATCH_GEMM's switch sends them back to cuDNN. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "engine/dtype.h"
#include "kt_test.h"
#ifdef KT_HAVE_CUDA
#include "engine/backend_cuda.h"
#include "engine/graph.h"
#include "kernels/cpu/conv.h"
#include "kernels/cuda/kt_cuda.h"

/* v rounded to t and back (the value a 16-bit operand holds; f32: v) */
static float rounded(float v, kt_cuda_dtype t) {
    return t == KT_CUDA_F32 ? v : t == KT_CUDA_F16 ? kt_f16_to_f32(kt_f32_to_f16(v)) : kt_bf16_to_f32(kt_f32_to_bf16(v));
}
static uint16_t bits16(float v, kt_cuda_dtype t) { return t == KT_CUDA_F16 ? kt_f32_to_f16(v) : kt_f32_to_bf16(v); }

#define PC_OUTS 5
KT_TEST(test_cuda_patch_conv_matches_cpu_on_rounded_inputs) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_conv_shape shapes[] = {
        /* the stem's 4x4/4 on 3 channels, with 2 rows and 1 column past the last whole patch */
        {.N = 2, .H = 18, .W = 17, .Ci = 3, .Co = 8, .kh = 4, .kw = 4, .sh = 4, .sw = 4, .groups = 1},
        /* a downsampling 2x2/2 */
        {.N = 2, .H = 8, .W = 6, .Ci = 40, .Co = 24, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .groups = 1},
        /* a non-square 2x3/(2,3) with odd sizes, and a 1x1 (pointwise) */
        {.N = 1, .H = 7, .W = 10, .Ci = 5, .Co = 6, .kh = 2, .kw = 3, .sh = 2, .sw = 3, .groups = 1},
        {.N = 1, .H = 5, .W = 7, .Ci = 33, .Co = 12, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .groups = 1}};
    const char *what[PC_OUTS] = {"forward", "forward from 16-bit x", "forward, bias not in the epilogue", "data gradient", "weight gradient"};
    /* bf16 and f16 (autocast), and f32 operands (FP32 GEMM: the kernel benchmark's TF32 stem rows) */
    const kt_cuda_dtype types[3] = {KT_CUDA_BF16, KT_CUDA_F16, KT_CUDA_F32};
    for (int k = 0; k < 4; k++)
        for (int ti = 0; ti < 3; ti++) {
            kt_cuda_dtype t = types[ti];
            const char *tname = t == KT_CUDA_F16 ? "f16" : t == KT_CUDA_BF16 ? "bf16" : "f32";
            kt_conv_shape cs = shapes[k];
            kt_conv_shape_finish(&cs);
            KT_REQUIRE(kt_cuda_conv_is_patch(&cs), "shape %d is a patch convolution", k);
            int64_t nin = cs.N * cs.H * cs.W * cs.Ci, nout = cs.N * cs.Ho * cs.Wo * cs.Co, nw = cs.Co * cs.Ci * cs.kh * cs.kw;
            float *x = malloc((size_t)nin * 4), *w = malloc((size_t)nw * 4), *b = malloc((size_t)cs.Co * 4), *dy = malloc((size_t)nout * 4);
            float *xr = malloc((size_t)nin * 4), *wr = malloc((size_t)nw * 4), *dyr = malloc((size_t)nout * 4);
            float *ref[PC_OUTS], *got = malloc((size_t)(nin > nout ? (nin > nw ? nin : nw) : (nout > nw ? nout : nw)) * 4);
            uint16_t *x16 = malloc((size_t)nin * 2);
            const int64_t len[PC_OUTS] = {nout, nout, nout, nin, nw};
            int ok = x && w && b && dy && xr && wr && dyr && got && x16;
            for (int o = 0; o < PC_OUTS; o++) ok &= (ref[o] = malloc((size_t)len[o] * 4)) != NULL;
            KT_REQUIRE(ok, "memory");
            unsigned seed = 301u + 7u * (unsigned)k + (unsigned)ti;
            kt_twin_fill(x, nin, -1.0f, 1.0f, 0.0f, &seed);
            kt_twin_fill(w, nw, -0.5f, 0.5f, 0.0f, &seed);
            kt_twin_fill(b, cs.Co, -0.5f, 0.5f, 0.0f, &seed);
            kt_twin_fill(dy, nout, -1.0f, 1.0f, 0.0f, &seed);
            for (int64_t i = 0; i < nin; i++) xr[i] = rounded(x[i], t), x16[i] = bits16(x[i], t);
            for (int64_t i = 0; i < nw; i++) wr[i] = rounded(w[i], t);
            for (int64_t i = 0; i < nout; i++) dyr[i] = rounded(dy[i], t);
            /* the CPU reference on the rounded operands */
            void *cscr = malloc(kt_cpu_conv2d_scratch(&cs) + 16);
            KT_REQUIRE(cscr, "memory");
            kt_cpu_conv2d_fwd(&cs, xr, wr, b, ref[0], cscr);
            memcpy(ref[1], ref[0], (size_t)nout * 4);
            memcpy(ref[2], ref[0], (size_t)nout * 4);
            kt_cpu_conv2d_bwd_data(&cs, dyr, wr, ref[3], cscr);
            kt_cpu_conv2d_bwd_weight(&cs, dyr, xr, ref[4], cscr);
            free(cscr);

            size_t sb = 0;
            for (int kind = 0; kind < 3; kind++) {
                size_t z = kt_cuda_patch_conv_scratch(&cs, kind, t);
                if (z > sb) sb = z;
            }
            float *dx = kt_twin_put(x, (size_t)nin * 4), *dw = kt_twin_put(w, (size_t)nw * 4), *db = kt_twin_put(b, (size_t)cs.Co * 4);
            float *ddy = kt_twin_put(dy, (size_t)nout * 4), *dout = kt_twin_put(NULL, (size_t)nout * 4), *din = kt_twin_put(NULL, (size_t)nin * 4);
            float *dg = kt_twin_put(NULL, (size_t)nw * 4);
            void *dx16 = kt_twin_put(x16, (size_t)nin * 2), *scr = kt_twin_put(NULL, sb);
            KT_REQUIRE(dx && dw && db && ddy && dout && din && dg && dx16 && scr, "device buffers");
            const void *xin = t == KT_CUDA_F32 ? (const void *)dx : dx16; /* x as stored in t */
            char label[96];
            for (int o = 0; o < PC_OUTS; o++) {
                float *dst = o < 3 ? dout : o == 3 ? din : dg;
                char msg[256];
                KT_REQUIRE(!kt_cuda_memset(dst, 0xff, (size_t)len[o] * 4, msg, sizeof msg), "poison: %s", msg); /* NaN */
                int e;
                if (o == 0) e = kt_cuda_patch_conv_fwd(c, &cs, dx, KT_CUDA_F32, dw, db, dout, t, scr);
                else if (o == 1) e = kt_cuda_patch_conv_fwd(c, &cs, xin, t, dw, db, dout, t, scr);
                else if (o == 2) {
                    int lt = kt_cuda_ctx_gemm_lt(c);
                    kt_cuda_ctx_set_gemm_lt(c, 0); /* the bias as a row fill the GEMM adds to */
                    e = kt_cuda_patch_conv_fwd(c, &cs, dx, KT_CUDA_F32, dw, db, dout, t, scr);
                    kt_cuda_ctx_set_gemm_lt(c, lt);
                } else if (o == 3) e = kt_cuda_patch_conv_bwd_data(c, &cs, ddy, dw, din, t, scr);
                else e = kt_cuda_patch_conv_bwd_weight(c, &cs, ddy, ti == 1 ? xin : (const void *)dx, ti == 1 ? t : KT_CUDA_F32, dg, t, scr);
                snprintf(label, sizeof label, "%s %lldx%lld/%lld on %lldx%lldx%lld in %s", what[o], (long long)cs.kh, (long long)cs.kw,
                         (long long)cs.sh, (long long)cs.H, (long long)cs.W, (long long)cs.Ci, tname);
                KT_CHECK(e == 0, "%s: %s", label, kt_cuda_ctx_error(c));
                KT_REQUIRE(!kt_twin_get(got, dst, (size_t)len[o] * 4), "read back");
                double rel = kt_twin_rel_err(got, ref[o], len[o]);
                /* only the order of the f32 sums differs (K = kh*kw*Ci terms, or M for the weight gradient) */
                KT_CHECK(rel <= 1e-5, "%s: %.3g of scale from the CPU convolution of the rounded operands", label, rel);
                if (o == 3) { /* pixels past the last whole patch: exactly 0 */
                    int64_t bad = 0;
                    for (int64_t i = 0; i < nin; i++) {
                        int64_t ix = (i / cs.Ci) % cs.W, iy = (i / (cs.Ci * cs.W)) % cs.H;
                        if ((iy >= cs.Ho * cs.sh || ix >= cs.Wo * cs.sw) && got[i] != 0.0f) bad++;
                    }
                    KT_CHECK(bad == 0, "%s: %lld uncovered input values not 0", label, (long long)bad);
                }
            }
            /* the forward from the f32 input and from its 16-bit copy: the same bits (the gather rounds) */
            float *a = malloc((size_t)nout * 4);
            KT_REQUIRE(a, "memory");
            KT_CHECK(kt_cuda_patch_conv_fwd(c, &cs, dx, KT_CUDA_F32, dw, db, dout, t, scr) == 0 && !kt_twin_get(a, dout, (size_t)nout * 4) &&
                         kt_cuda_patch_conv_fwd(c, &cs, xin, t, dw, db, dout, t, scr) == 0 && !kt_twin_get(got, dout, (size_t)nout * 4) &&
                         memcmp(a, got, (size_t)nout * 4) == 0,
                     "shape %d: the forward from 16-bit x is not the forward from f32 x bit for bit", k);
            free(a);
            for (void **p = (void *[]){dx, dw, db, ddy, dout, din, dg, dx16, scr, NULL}; *p; p++) kt_cuda_free(*p);
            for (int o = 0; o < PC_OUTS; o++) free(ref[o]);
            free(x), free(w), free(b), free(dy), free(xr), free(wr), free(dyr), free(got), free(x16);
        }
    /* not a patch convolution: an error naming the geometry, nothing run */
    kt_conv_shape bad = {.N = 1, .H = 8, .W = 8, .Ci = 4, .Co = 4, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .groups = 1};
    kt_conv_shape_finish(&bad);
    KT_CHECK(!kt_cuda_conv_is_patch(&bad), "3x3/2 padded taken for a patch convolution");
    KT_CHECK(kt_cuda_patch_conv_bwd_data(c, &bad, NULL, NULL, NULL, KT_CUDA_BF16, NULL) != 0 && strstr(kt_cuda_ctx_error(c), "3x3, stride 2x2"),
             "a 3x3/2 data gradient: %s", kt_cuda_ctx_error(c));
}

/* ConvNeXt's downsampling: LayerNorm, then a 2x2/2 convolution with a bias, trained */
static kt_node *build_down(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *x = kt_param(g, "x", 4, (int64_t[]){2, 6, 8, 16}, 0);
    kt_node *lw = kt_param(g, "ln.weight", 1, (int64_t[]){16}, 0), *lb = kt_param(g, "ln.bias", 1, (int64_t[]){16}, 0);
    kt_node *w = kt_param(g, "conv.weight", 4, (int64_t[]){24, 16, 2, 2}, 0), *b = kt_param(g, "conv.bias", 1, (int64_t[]){24}, 0);
    return kt_conv2d(g, kt_layernorm(g, x, lw, lb, 1e-6f), w, b, 2, 0, 1);
}

/* ConvNeXt's stem: a 4x4/4 convolution reading the graph's input (the raw image) */
static kt_node *build_stem(kt_graph *g, void *arg) {
    (void)arg;
    kt_node *x = kt_input(g, "image", KT_F32, 4, (int64_t[]){2, 16, 12, 3});
    kt_node *w = kt_param(g, "stem.weight", 4, (int64_t[]){8, 3, 4, 4}, 0), *b = kt_param(g, "stem.bias", 1, (int64_t[]){8}, 0);
    return kt_conv2d(g, x, w, b, 4, 0, 1);
}

/* The planned graph: under bf16 the convolution and both its backward parts run as patch GEMMs
 * (bf16's bound against the CPU; the LayerNorm output, which only they read, stored in bf16); with
 * the patch GEMMs switched off they take cuDNN in TF32 again and nothing is stored in 16 bits. A
 * stem reading the graph's input stays in cuDNN either way (the rounding of raw pixels to bf16 is
 * what the LayerNorm after it amplifies). */
KT_TEST(test_cuda_patch_conv_planned_under_autocast) {
    kt_backend *be = kt_twin_backend();
    kt_cuda_ctx *c = be->ctx;
    kt_err err;
    KT_REQUIRE(kt_cuda_ctx_patch_gemm(c), "patch GEMMs off by default");
    kt_twin_opts o = {.label = "LayerNorm + conv 2x2/2 (bf16 patch GEMMs)", .tol = 2e-2, .training = 1, .lo = -1.0f, .hi = 1.0f,
                      .seed = 4242u, .precision = "bf16", .gpu_stored16 = 1};
    KT_CHECK(kt_twin_check(build_down, NULL, &o) == 0, "%s: GPU differs from CPU (details above)", o.label);
    /* which nodes the plan sends where */
    for (int on = 1; on >= 0; on--) {
        kt_cuda_ctx_set_patch_gemm(c, on);
        KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, "bf16", &err), &err);
        kt_graph gs, *g = &gs;
        KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
        g->training = 1;
        kt_node *loss = kt_sum(g, build_down(g, NULL), 1.0f);
        KT_REQUIRE_OK(kt_graph_backward(g, loss, &err), &err);
        KT_REQUIRE_OK(kt_graph_plan(g, be, NULL, &err), &err);
        int convs = 0, patch = 0, stored = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            const kt_node *n = g->nodes[i];
            if (n->op == KT_OP_CONV2D || n->op == KT_OP_CONV2D_BWD_DATA || n->op == KT_OP_CONV2D_BWD_WEIGHT)
                convs++, patch += (n->flags & KT_NODE_AUTOCAST) != 0;
            stored += (n->flags & KT_NODE_STORED_BF16) != 0;
        }
        KT_CHECK(convs == 3 && patch == (on ? 3 : 0), "patch GEMMs %s: %d of %d convolution nodes planned as patch GEMMs", on ? "on" : "off",
                 patch, convs);
        KT_CHECK(stored == (on ? 1 : 0), "patch GEMMs %s: %d nodes stored in 16 bits", on ? "on" : "off", stored);
        kt_graph_free(g);
    }
    kt_cuda_ctx_set_patch_gemm(c, 1);
    KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, "bf16", &err), &err);
    kt_graph gs, *g = &gs;
    KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
    g->training = 1;
    KT_REQUIRE_OK(kt_graph_backward(g, kt_sum(g, build_stem(g, NULL), 1.0f), &err), &err);
    KT_REQUIRE_OK(kt_graph_plan(g, be, NULL, &err), &err);
    int convs = 0, patch = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const kt_node *n = g->nodes[i];
        if (n->op == KT_OP_CONV2D || n->op == KT_OP_CONV2D_BWD_WEIGHT) convs++, patch += (n->flags & KT_NODE_AUTOCAST) != 0;
    }
    KT_CHECK(convs == 2 && patch == 0, "the stem on the graph input: %d of %d convolution nodes planned as patch GEMMs", patch, convs);
    kt_graph_free(g);
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
}

/* KT_CUDA_PATCH_F32's switch (bench/gpu times the base step with it against cuDNN's stem): the
 * stem on the graph input, which cuDNN runs otherwise, planned as our patch GEMM on f32 operands
 * (KT_NODE_PATCH_F32, not autocast's 16 bits) in bf16 and in fp32, and in strict fp32 the CPU's
 * convolution up to the order of the sums; off, the stem is cuDNN's again. */
KT_TEST(test_cuda_patch_f32_switch_runs_the_stem_as_gemm) {
    kt_backend *be = kt_twin_backend();
    kt_cuda_ctx *c = be->ctx;
    kt_err err;
    KT_REQUIRE(!kt_cuda_ctx_patch_f32(c), "the switch is off by default");
    kt_cuda_ctx_set_patch_f32(c, 1);
    kt_twin_opts o = {.label = "stem 4x4/4 on the input, our f32 patch GEMM", .tol = 2e-5, .training = 1, .lo = -1.0f, .hi = 1.0f,
                      .seed = 777u};
    KT_CHECK(kt_twin_check(build_stem, NULL, &o) == 0, "%s: GPU differs from CPU (details above)", o.label);
    static const char *const precisions[2] = {"bf16", "fp32"};
    for (int on = 1; on >= 0; on--)
        for (int p = 0; p < 2; p++) {
            kt_cuda_ctx_set_patch_f32(c, on);
            KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, precisions[p], &err), &err);
            kt_graph gs, *g = &gs;
            KT_REQUIRE_OK(kt_graph_init(g, &err), &err);
            g->training = 1;
            KT_REQUIRE_OK(kt_graph_backward(g, kt_sum(g, build_stem(g, NULL), 1.0f), &err), &err);
            KT_REQUIRE_OK(kt_graph_plan(g, be, NULL, &err), &err);
            int convs = 0, f32 = 0, half = 0;
            for (int i = 0; i < g->n_nodes; i++) {
                const kt_node *n = g->nodes[i];
                if (n->op == KT_OP_CONV2D || n->op == KT_OP_CONV2D_BWD_WEIGHT)
                    convs++, f32 += (n->flags & KT_NODE_PATCH_F32) != 0, half += (n->flags & KT_NODE_AUTOCAST) != 0;
            }
            KT_CHECK(convs == 2 && f32 == (on ? 2 : 0) && half == 0, "switch %s, %s: %d of %d stem nodes as f32 patch GEMMs, %d in 16 bits",
                     on ? "on" : "off", precisions[p], f32, convs, half);
            kt_graph_free(g);
        }
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
}

#else /* no CUDA in this build: the tests exist and say so */

#define NO_CUDA(name) \
    KT_TEST(name) { kt_test_skip("no CUDA device: this build has no CUDA backend"); }
NO_CUDA(test_cuda_patch_conv_matches_cpu_on_rounded_inputs)
NO_CUDA(test_cuda_patch_conv_planned_under_autocast)
NO_CUDA(test_cuda_patch_f32_switch_runs_the_stem_as_gemm)

#endif
