/* Whole models and the optimizer sweeps on the GPU against the CPU backend: a ConvNeXt-atto and a
 * small-CNN training step (loss, logits and every parameter gradient within 1e-4 of each tensor's
 * scale plus 1e-6, GPU buffers NaN-poisoned first), inference, recomputation, determinism, AdamW / sum of
 * squares / scale over parameter-sized buffers, and the errors a user can meet. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "engine/backend_cuda.h"
#include "engine/cuda_arch.h"
#include "engine/graph_internal.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/elementwise.h"
#include "kt_test.h"
#include "nets/model.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"
#define SET_LT(be, on) kt_cuda_ctx_set_gemm_lt((be)->ctx, on)
#else
#define SET_LT(be, on) ((void)(be), (void)(on))
#endif
#include "train/loss_scale.h"
#include "train/optim.h"

#define MODEL_TOL 1e-4 /* per tensor, relative to its largest value */

/* Runs on every machine: without a GPU the backend refuses with a message that says why. */
KT_TEST(test_cuda_backend_create_says_why) {
    kt_backend *be = NULL;
    kt_err err;
    kt_status s = kt_backend_cuda_create(&be, 0, &err);
    if (kt_backend_cuda_available()) {
        KT_REQUIRE_OK(s, &err);
        KT_CHECK(kt_backend_is_cuda(be) && be->device == KT_CUDA, "a cuda backend");
        KT_CHECK(!kt_backend_is_cuda(kt_backend_cpu()), "the CPU backend is not cuda");
        be->destroy(be);
        kt_backend *none = NULL;
        KT_CHECK(kt_backend_cuda_create(&none, 999, &err) == KT_ERR_CUDA && !none && strstr(err.msg, "999"),
                 "device 999 refused by number: %s", err.msg);
    } else {
        KT_CHECK(s == KT_ERR_CUDA || s == KT_ERR_UNSUPPORTED, "status %s", kt_status_name(s));
        KT_CHECK(be == NULL, "no backend handed out");
        KT_CHECK(strstr(err.msg, "no CUDA device") || strstr(err.msg, "no CUDA backend"), "message says why: %s", err.msg);
        KT_CHECK(kt_backend_cuda_set_tf32(kt_backend_cpu(), 1, &err) != KT_OK, "TF32 is no CPU setting");
    }
    KT_CHECK(kt_backend_cuda_set_precision(kt_backend_cpu(), "bf16", &err) != KT_OK, "bf16 is no CPU setting");
}

/* GPUs the backend cannot use are refused at creation with what to do, instead of "no kernel image"
 * at the first launch: one below compute 8.0 (a T4) by what it is, whatever the build; one the
 * build has no code for (an RTX 30xx under -DKT_CUDA_ARCHS=90-real) naming the architectures and
 * the value to rebuild with; one whose driver cannot compile the build's PTX naming both fixes.
 * "auto" passes over the first kind. Only the host emulator can fake such GPUs (KT_EMU_CC,
 * KT_EMU_NO_KERNEL_IMAGE); on a real card it skips (every other cuda test shows the build runs there). */
#ifdef KT_HAVE_CUDA
static kt_status create_as(const char *cc, const char *no_image, kt_err *err) {
    KT_CHECK(setenv("KT_EMU_CC", cc, 1) == 0, "setenv");
    if (no_image) KT_CHECK(setenv("KT_EMU_NO_KERNEL_IMAGE", no_image, 1) == 0, "setenv");
    kt_backend *be = NULL;
    kt_status s = kt_backend_cuda_create(&be, 0, err);
    unsetenv("KT_EMU_NO_KERNEL_IMAGE");
    unsetenv("KT_EMU_CC");
    KT_CHECK((s == KT_OK) == (be != NULL), "a backend exactly when created (status %d)", (int)s);
    if (be) be->destroy(be);
    return s;
}
#endif

KT_TEST(test_cuda_backend_refuses_a_gpu_the_build_cannot_run) {
    kt_twin_backend(); /* skips without a GPU */
#ifdef KT_HAVE_CUDA
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    if (strcmp(ci.name, "host emulator")) kt_test_skip("needs a GPU this build cannot run, which only the host emulator fakes");
    kt_err err;
    kt_status s = create_as("7.5", NULL, &err);
    KT_CHECK(s == KT_ERR_CUDA && strstr(err.msg, "compute 7.5") && strstr(err.msg, "8.0 or newer") && strstr(err.msg, "--device cpu"),
             "compute 7.5: status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    KT_REQUIRE(setenv("KT_EMU_CC", "7.5", 1) == 0, "setenv");
    int avail = kt_backend_cuda_available();
    unsetenv("KT_EMU_CC");
    KT_CHECK(!avail && kt_backend_cuda_available(), "auto passes over a compute 7.5 GPU only");
    s = create_as("8.6", "1", &err);
    KT_CHECK(s == KT_ERR_CUDA && strstr(err.msg, "compute 8.6") && strstr(err.msg, "-DKT_CUDA_ARCHS=\"86-real;86-virtual\"") &&
                 strstr(err.msg, kt_cuda_build_archs()) && strstr(err.msg, "no kernel image"),
             "no code for compute 8.6: status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    s = create_as("8.6", "ptx", &err);
    KT_CHECK(s == KT_ERR_CUDA && strstr(err.msg, "cannot compile this build's PTX") && strstr(err.msg, "update the NVIDIA driver") &&
                 strstr(err.msg, "-DKT_CUDA_ARCHS=\"86-real\"") && strstr(err.msg, "CUDA 12.8") && strstr(err.msg, "compute 8.6"),
             "a driver older than the PTX: status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    /* the default build (90-real;80-virtual) runs an RTX 30xx through its PTX */
    if (kt_cuda_arch_fit(kt_cuda_build_archs(), 8, 6, NULL) != KT_CUDA_FIT_NONE) {
        s = create_as("8.6", NULL, &err);
        KT_CHECK(s == KT_OK, "compute 8.6 under %s: %s", kt_cuda_build_archs(), err.msg);
    }
#endif
}

/* KT_CUDA_WITHOUT=a,b at creation: a backend planning without those fusions (the device script's
 * switch to isolate a fused kernel that fails on a card); a wrong name refuses the backend, naming
 * the variable. */
KT_TEST(test_cuda_backend_without_fusions_from_env) {
    kt_twin_backend(); /* skips without a GPU */
    kt_backend *be = NULL;
    kt_err err;
    KT_REQUIRE(setenv("KT_CUDA_WITHOUT", "scale_add,dwconv_bwd_add", 1) == 0, "setenv");
    kt_status s = kt_backend_cuda_create(&be, 0, &err);
    if (s == KT_OK) {
        KT_CHECK(!(be->fusions & (KT_FUSE_SCALE_ADD | KT_FUSE_DWCONV_BWD_ADD)) && (be->fusions & KT_FUSE_LAYERNORM_BWD),
                 "fusions %#x: the two named left out, the others kept", be->fusions);
        be->destroy(be);
    } else {
        KT_CHECK(0, "backend with KT_CUDA_WITHOUT: %s", err.msg);
    }
    be = NULL;
    KT_REQUIRE(setenv("KT_CUDA_WITHOUT", "scale_add,no_such_fusion", 1) == 0, "setenv");
    s = kt_backend_cuda_create(&be, 0, &err);
    KT_CHECK(s == KT_ERR_ARG && !be && strstr(err.msg, "KT_CUDA_WITHOUT") && strstr(err.msg, "'no_such_fusion'"), "a wrong name: %s",
             s ? err.msg : "accepted");
    if (be) be->destroy(be);
    unsetenv("KT_CUDA_WITHOUT");
}

/* Compares every parameter gradient (grad_buf) of a GPU model with the CPU model's: per tensor,
 * max |gpu - cpu| <= tol * max |cpu| + ABS_TOL. The absolute term is for gradients that are zero in
 * exact arithmetic and rounding noise in both (a conv bias right before training-mode BatchNorm). */
#define ABS_TOL 1e-6
static int compare_grads(const kt_model *cpu, const kt_model *gpu, double tol, const char *label) {
    const kt_graph *g = &gpu->g;
    int64_t n = g->n_param_elems;
    float *got = malloc((size_t)n * sizeof(float));
    kt_err err;
    if (!got || g->backend->download(g->backend, got, g->grad_buf, (size_t)n * sizeof(float), &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s: reading gradients back failed", label);
        free(got);
        return 1;
    }
    int bad = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int p = 0; p < cpu->g.n_params; p++) {
        const kt_param_entry *e = &cpu->g.params[p];
        if (e->node->flags & KT_NODE_BUFFER) continue;
        const float *a = got + e->offset, *b = cpu->g.grad_buf + e->offset;
        double diff = 0, scale = 0;
        for (int64_t i = 0; i < e->numel; i++) {
            double d = fabs((double)a[i] - b[i]);
            diff = isnan(d) ? INFINITY : fmax(diff, d);
            scale = fmax(scale, fabs((double)b[i]));
        }
        double rel = diff / (scale > 0 ? scale : 1e-30);
        if (scale > ABS_TOL && (rel > worst || isinf(rel))) {
            worst = rel;
            worst_name = e->node->name;
        }
        if (!(diff <= tol * scale + ABS_TOL)) {
            if (bad < 8)
                kt_test_fail(__FILE__, __LINE__, "%s: gradient of %s differs by %.3g (%.3g of its scale %.3g; bound %.0e x scale + %.0e)",
                             label, e->node->name, diff, rel, scale, tol, ABS_TOL);
            bad++;
        }
    }
    printf("%s: worst gradient (of those above %.0e) %s at %.2g of its scale\n", label, ABS_TOL, worst_name, worst);
    free(got);
    return bad;
}

typedef struct step_case {
    const char *arch;
    int classes, batch, size;
    float drop_path, head_drop;
    int recompute;
} step_case;

static void make_batch(const step_case *sc, float *x, int32_t *y, int64_t nx) {
    for (int64_t i = 0; i < nx; i++) x[i] = sinf((float)i * 0.37f) + 0.3f * cosf((float)i * 0.011f);
    for (int i = 0; i < sc->batch; i++) y[i] = (i * 3 + 1) % sc->classes;
}

/* Builds the model on a backend, initialises (seed 7), feeds the batch (after poisoning on the GPU)
 * and runs one forward + backward. On failure the model is freed and err says why. */
static int run_step(kt_model *m, const step_case *sc, kt_backend *be, int train, kt_err *err) {
    kt_model_opts o = {.arch = sc->arch, .num_classes = sc->classes, .batch = sc->batch, .img_h = sc->size, .img_w = sc->size,
                       .train = train, .label_smoothing = 0.1f, .drop_path_rate = sc->drop_path, .head_drop_rate = sc->head_drop,
                       .recompute = sc->recompute, .backend = be};
    if (kt_model_create(m, &o, NULL, err)) return 1;
    m->g.training = train;
    m->g.step = 3;
    int64_t nx = kt_node_numel(m->input);
    float *x = malloc((size_t)nx * sizeof(float));
    int32_t *y = malloc((size_t)sc->batch * sizeof(int32_t));
    int rc = (!x || !y) && kt_err_set(err, KT_ERR_NOMEM, "no memory for the batch");
    if (!rc) {
        make_batch(sc, x, y, nx);
        rc = kt_model_init_weights(m, 7, err) != KT_OK;
        if (!rc && be) rc = kt_twin_poison(&m->g, err);
        if (!rc) rc = kt_model_set_input(m, x, err) != KT_OK;
        if (!rc && train) rc = kt_model_set_labels(m, y, err) != KT_OK;
        if (!rc) rc = (train ? kt_graph_run(&m->g, err) : kt_graph_forward(&m->g, err)) != KT_OK;
    }
    free(x);
    free(y);
    if (rc) kt_model_free(m); /* callers free only models that ran */
    return rc;
}

static void check_logits_loss(kt_model *cpu, kt_model *gpu, const char *label, int train) {
    kt_err err;
    int64_t n = kt_node_numel(cpu->logits);
    float *got = malloc((size_t)n * sizeof(float));
    KT_REQUIRE(got, "memory");
    KT_CHECK_OK(kt_model_get_logits(gpu, got, &err), &err);
    double rel = kt_twin_rel_err(got, kt_node_f32(cpu->logits), n);
    KT_CHECK(rel <= MODEL_TOL, "%s: logits differ by %.3g of their scale", label, rel);
    if (train) {
        float lg = 0, lc = kt_node_f32(cpu->loss)[0];
        KT_CHECK_OK(kt_model_get_loss(gpu, &lg, &err), &err);
        KT_CHECK(fabs((double)lg - lc) <= MODEL_TOL * fabs((double)lc), "%s: loss %.8g on the GPU, %.8g on the CPU", label, lg, lc);
        printf("%s: loss GPU %.8f CPU %.8f, logits within %.2g of scale\n", label, lg, lc, rel);
    }
    free(got);
}

static void step_twin(const step_case *sc, const char *label) {
    kt_backend *be = kt_twin_backend();
    kt_model cpu, gpu;
    kt_err err;
    KT_REQUIRE_OK(run_step(&cpu, sc, NULL, 1, &err) ? KT_ERR_STATE : KT_OK, &err);
    if (run_step(&gpu, sc, be, 1, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s on the GPU: %s", label, err.msg);
        kt_model_free(&cpu);
        return;
    }
    check_logits_loss(&cpu, &gpu, label, 1);
    KT_CHECK(compare_grads(&cpu, &gpu, MODEL_TOL, label) == 0, "%s: gradients (details above)", label);
    /* BatchNorm running statistics (if any) moved the same way */
    if (cpu.g.n_buffer_elems) {
        float *st = malloc((size_t)cpu.g.n_buffer_elems * sizeof(float));
        KT_CHECK(st && !gpu.g.backend->download(gpu.g.backend, st, gpu.g.state_buf, (size_t)cpu.g.n_buffer_elems * sizeof(float), &err),
                 "state download");
        if (st) {
            double rel = kt_twin_rel_err(st, cpu.g.state_buf, cpu.g.n_buffer_elems);
            KT_CHECK(rel <= MODEL_TOL, "%s: running statistics differ by %.3g", label, rel);
        }
        free(st);
    }
    kt_model_free(&gpu);
    kt_model_free(&cpu);
}

KT_TEST(test_cuda_convnext_atto_train_step_matches_cpu) {
    step_case sc = {"convnext_atto", 5, 2, 64, 0.1f, 0.2f, 0};
    step_twin(&sc, "convnext_atto b2 64x64 train step");
}

KT_TEST(test_cuda_smallcnn_train_step_matches_cpu) {
    step_case sc = {"smallcnn", 4, 4, 32, 0, 0.3f, 0};
    step_twin(&sc, "smallcnn b4 32x32 train step (BatchNorm, max pool)");
}

KT_TEST(test_cuda_convnext_atto_inference_matches_cpu) {
    kt_backend *be = kt_twin_backend();
    step_case sc = {"convnext_atto", 3, 3, 96, 0, 0, 0};
    kt_model cpu, gpu;
    kt_err err;
    KT_REQUIRE_OK(run_step(&cpu, &sc, NULL, 0, &err) ? KT_ERR_STATE : KT_OK, &err);
    if (run_step(&gpu, &sc, be, 0, &err)) kt_test_fail(__FILE__, __LINE__, "GPU inference: %s", err.msg);
    else {
        check_logits_loss(&cpu, &gpu, "convnext_atto b3 96x96 inference", 0);
        kt_model_free(&gpu);
    }
    kt_model_free(&cpu);
}

/* bf16 inference: each block's fc1 writes its pre-activation in bf16 into its own buffer through
 * cuBLASLt's bias epilogue (KT_NODE_OUT_SCRATCH: nothing else reads it) and GELU reads it from there;
 * logits against the CPU's fp32 within the bf16 step bound, with and without cuBLASLt. */
KT_TEST(test_cuda_bf16_inference_close_to_cpu) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    step_case sc = {"convnext_atto", 3, 3, 96, 0, 0, 0};
    kt_model cpu;
    KT_REQUIRE_OK(run_step(&cpu, &sc, NULL, 0, &err) ? KT_ERR_STATE : KT_OK, &err);
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "bf16", &err), &err);
    int64_t n = kt_node_numel(cpu.logits);
    float *got = malloc((size_t)n * sizeof(float));
    KT_REQUIRE(got, "memory");
    for (int lt = 1; lt >= 0; lt--) {
        SET_LT(be, lt);
        kt_model gpu;
        if (run_step(&gpu, &sc, be, 0, &err)) {
            kt_test_fail(__FILE__, __LINE__, "bf16 inference on the GPU: %s", err.msg);
            continue;
        }
        int scratch = 0;
        for (int i = 0; i < gpu.g.n_nodes; i++) scratch += (gpu.g.nodes[i]->flags & KT_NODE_OUT_SCRATCH) != 0;
        KT_CHECK(scratch == 12, "%d of atto's 12 fc1 pre-activations planned as their GELU's bf16 scratch", scratch);
        KT_CHECK_OK(kt_model_get_logits(&gpu, got, &err), &err);
        double rel = kt_twin_rel_err(got, kt_node_f32(cpu.logits), n);
        KT_CHECK(rel <= 2e-2, "bf16 inference%s: logits %.3g of their scale from the CPU's fp32", lt ? "" : " without cuBLASLt", rel);
        printf("bf16 atto inference%s: logits within %.2g of the CPU's fp32\n", lt ? "" : " without cuBLASLt", rel);
        kt_model_free(&gpu);
    }
    SET_LT(be, 1);
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
    free(got);
    kt_model_free(&cpu);
}

/* Recomputing GELU/LayerNorm/depthwise outputs in backward gives the same gradient bits on the GPU
 * (deterministic kernels), twice in a row too. */
KT_TEST(test_cuda_convnext_recompute_and_rerun_same_bits) {
    kt_backend *be = kt_twin_backend();
    step_case sc = {"convnext_atto", 4, 2, 64, 0.1f, 0, 0};
    kt_model a, b;
    kt_err err;
    KT_REQUIRE_OK(run_step(&a, &sc, be, 1, &err) ? KT_ERR_STATE : KT_OK, &err);
    sc.recompute = 1;
    if (run_step(&b, &sc, be, 1, &err)) {
        kt_test_fail(__FILE__, __LINE__, "recompute model: %s", err.msg);
        kt_model_free(&a);
        return;
    }
    int64_t n = a.g.n_param_elems;
    float *ga = malloc((size_t)n * sizeof(float)), *gb = malloc((size_t)n * sizeof(float)), *gc = malloc((size_t)n * sizeof(float));
    KT_REQUIRE(ga && gb && gc, "memory");
    KT_CHECK_OK(be->download(be, ga, a.g.grad_buf, (size_t)n * sizeof(float), &err), &err);
    KT_CHECK_OK(be->download(be, gb, b.g.grad_buf, (size_t)n * sizeof(float), &err), &err);
    KT_CHECK(memcmp(ga, gb, (size_t)n * sizeof(float)) == 0, "recomputed backward gives other gradient bits");
    KT_CHECK_OK(kt_graph_run(&a.g, &err), &err);
    KT_CHECK_OK(be->download(be, gc, a.g.grad_buf, (size_t)n * sizeof(float), &err), &err);
    KT_CHECK(memcmp(ga, gc, (size_t)n * sizeof(float)) == 0, "a second identical step gives other gradient bits");
    kt_plan_stats sa, sb;
    kt_graph_plan_stats(&a.g, &sa);
    kt_graph_plan_stats(&b.g, &sb);
    KT_CHECK(sb.arena_bytes < sa.arena_bytes, "recompute arena %zu not below %zu", sb.arena_bytes, sa.arena_bytes);
    free(ga);
    free(gb);
    free(gc);
    kt_model_free(&a);
    kt_model_free(&b);
}

/* One step of sc on the CPU and on the GPU (as the backend is set now); 1 when both ran, else the
 * failure is recorded (label) and nothing is left to free. *lg / *lc: the GPU / CPU loss. */
static int reduced_precision_step(const step_case *sc, kt_model *cpu, kt_model *gpu, float *lg, double *lc, const char *label) {
    kt_err err;
    if (run_step(cpu, sc, NULL, 1, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s on the CPU: %s", label, err.msg);
        return 0;
    }
    if (run_step(gpu, sc, kt_twin_backend(), 1, &err) || kt_model_get_loss(gpu, lg, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s on the GPU: %s", label, err.msg);
        kt_model_free(cpu);
        return 0;
    }
    *lc = kt_node_f32(cpu->loss)[0];
    return 1;
}

/* TF32 tensor cores: the same model step within a looser bound (10-bit mantissa products). */
KT_TEST(test_cuda_tf32_train_step_close_to_cpu) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    KT_REQUIRE_OK(kt_backend_cuda_set_tf32(be, 1, &err), &err);
    step_case sc = {"convnext_atto", 5, 2, 64, 0, 0, 0};
    kt_model cpu, gpu;
    float lg;
    double lc;
    if (reduced_precision_step(&sc, &cpu, &gpu, &lg, &lc, "tf32 atto step")) {
        KT_CHECK(fabs(lg - lc) <= 1e-2 * fabs(lc), "TF32 loss %.6g vs %.6g", lg, lc);
        KT_CHECK(compare_grads(&cpu, &gpu, 2e-2, "tf32 atto step") == 0, "TF32 gradients within 2e-2 of scale");
        kt_model_free(&gpu);
        kt_model_free(&cpu);
    }
    KT_CHECK_OK(kt_backend_cuda_set_tf32(be, 0, &err), &err);
}

/* A 16-bit-GEMM step against the fp32 CPU step: logits rounded (not equal) and within 2e-2 of their
 * scale, loss within 1%, every gradient within 5e-2 of its scale; frees both models. */
static void check_half_step(kt_model *cpu, kt_model *gpu, float lg, double lc, const char *name) {
    kt_err err;
    char label[64];
    snprintf(label, sizeof label, "%s atto step", name);
    int64_t n = kt_node_numel(cpu->logits);
    float *got = malloc((size_t)n * sizeof(float));
    KT_REQUIRE(got, "memory");
    KT_CHECK_OK(kt_model_get_logits(gpu, got, &err), &err);
    double rel = kt_twin_rel_err(got, kt_node_f32(cpu->logits), n);
    printf("%s GEMMs: loss %.6f vs fp32 CPU %.6f, logits within %.2g of scale\n", name, lg, lc, rel);
    KT_CHECK(rel > 0, "%s logits equal to f32 bit for bit: the GEMMs did not round their operands", name);
    KT_CHECK(rel <= 2e-2, "%s logits differ by %.3g of their scale", name, rel);
    KT_CHECK(fabs(lg - lc) <= 1e-2 * fabs(lc), "%s loss %.6g vs %.6g", name, lg, lc);
    KT_CHECK(compare_grads(cpu, gpu, 5e-2, label) == 0, "%s gradients within 5e-2 of scale", name);
    free(got);
    kt_model_free(gpu);
    kt_model_free(cpu);
}

/* bf16 autocast of the GEMMs: the same model step within bf16's bound (8-bit mantissa operands,
 * f32 accumulation), and the precision names a user can give. */
KT_TEST(test_cuda_bf16_gemm_train_step_close_to_cpu) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    KT_CHECK(kt_backend_cuda_set_precision(be, "fp8", &err) == KT_ERR_ARG && strstr(err.msg, "'fp8'"), "unknown name: %s", err.msg);
    KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, "bf16", &err), &err);
    step_case sc = {"convnext_atto", 5, 2, 64, 0.1f, 0, 0};
    kt_model cpu, gpu;
    float lg;
    double lc;
    /* measured on the H200 with the downsampling convolutions in TF32: logits within 3.2e-3 of their
     * scale, worst gradient 5.7e-3; under emulation with them as bf16 patch GEMMs (as autocast's;
     * three more bf16 roundings on the path to the logits): 7.3e-3 and 1.0e-2 */
    if (reduced_precision_step(&sc, &cpu, &gpu, &lg, &lc, "bf16 atto step")) check_half_step(&cpu, &gpu, lg, lc, "bf16");
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
}

/* Under bf16 autocast, GELU and LayerNorm outputs that only GEMMs read, and GELU's and layer scale's
 * data gradients (read by fc1's / fc2's data and weight gradients, the bias gradients fused in), are
 * stored in bf16 by the op itself
 * (cuda_prepare): the GEMMs rounded them to bf16 anyway, so a training step must give the same bits
 * as the same graph with those tensors kept in f32 (KT_NODE_KEEP rules the storage out).
 * Re-planning must undo the choice. fc1's pre-activation, which only GELU's backward reads, fc2's
 * output, which only layer scale reads, the depthwise output, which only LayerNorm reads, and each
 * block's input saved for the depthwise weight gradient are stored in bf16 too (numerical choices,
 * as autocast's: bounded by the bf16 step test), in both plans, and so are GELU's and LayerNorm's
 * incoming gradients (fc2's and fc1's data gradients, written by their GEMMs for the fused backward
 * kernels, which read fc1's stored pre-activation / the stored depthwise output); fc1's not with
 * recomputation (the recomputed GELU reads it), nor then GELU's incoming gradient, nor the saved
 * inputs (the recomputed depthwise conv reads the input).
 * (Kept outputs are never reused, so the memory printed is not a like-for-like saving:
 * kt_gpu_bench's device MiB is.) */
static void stored_bf16_case(kt_backend *be, int recompute) {
    kt_err err;
    step_case sc = {"convnext_atto", 5, 2, 64, 0, 0, recompute};
    kt_model m;
    KT_REQUIRE(run_step(&m, &sc, be, 1, &err) == 0, "bf16 step: %s", err.msg);
    int gelus = 0, stored = 0, lns = 0, pre = 0, dws = 0, saved = 0, grads = 0, dgelu = 0, dln = 0;
    for (int i = 0; i < m.g.n_nodes; i++) {
        kt_node *n = m.g.nodes[i];
        int s = n->dtype == KT_BF16 && (n->flags & KT_NODE_STORED_BF16);
        if (n->op == KT_OP_GELU) gelus++, stored += s;
        else if (n->op == KT_OP_LAYERNORM) lns += s;
        else if (n->op == KT_OP_LINEAR) pre += s;
        else if (n->op == KT_OP_CONV2D) dws += s;
        else if (n->flags & KT_NODE_SAVED_INPUT) saved += s;
        else if (n->op == KT_OP_ACT_BWD || (n->op == KT_OP_MUL && (n->flags & KT_NODE_BACKWARD))) grads += s;
        else if (n->op == KT_OP_MATMUL && (n->flags & KT_NODE_BACKWARD)) {
            /* a data gradient for GELU's or LayerNorm's fused backward (its reader, maybe through a reshape) */
            const kt_node *r = NULL;
            for (int j = i + 1; j < m.g.n_nodes && !r; j++) {
                const kt_node *q = m.g.nodes[j];
                if (q->op != KT_OP_RESHAPE && (q->src[0] == n || q->src[0]->view_of == n)) r = q;
            }
            if (r && r->op == KT_OP_LAYERNORM_BWD_X) dln += s;
            else dgelu += s;
        }
        else if (n->op == KT_OP_RESHAPE && n->view_of) /* a linear's 2-D view shares its base's storage */
            KT_CHECK(s == ((n->view_of->flags & KT_NODE_STORED_BF16) != 0), "view %s of %s: dtype not its base's", n->name,
                     n->view_of->name);
        else KT_CHECK(!s, "%s (%s) stored in bf16", n->name, kt_op_name(n->op));
    }
    /* with recomputation, backward redoes each GELU and LayerNorm: a second copy of each */
    int copies = recompute ? 2 : 1;
    KT_CHECK(gelus == 12 * copies && stored == gelus, "recompute %d: %d of atto's %d GELU outputs stored in bf16 (want all)",
             recompute, stored, gelus);
    /* the 12 block norms and the head norm feed linears, the 3 downsampling norms the patch GEMMs of
     * the convolutions after them (forward and weight gradient); the stem's norm feeds the first
     * block (its depthwise conv and the residual). With recomputation each has its copy too. */
    KT_CHECK(lns == 16 * copies, "recompute %d: %d LayerNorm outputs stored in bf16 (want %d)", recompute, lns, 16 * copies);
    /* fc2 outputs (read by layer scale only) always; fc1 pre-activations when GELU is not recomputed */
    KT_CHECK(pre == (recompute ? 12 : 24), "recompute %d: %d fc1/fc2 outputs stored in bf16 (want %d)", recompute, pre, recompute ? 12 : 24);
    /* the depthwise outputs LayerNorm reads (with recomputation: the copies backward makes) */
    KT_CHECK(dws == 12, "recompute %d: %d depthwise outputs stored in bf16 (want 12)", recompute, dws);
    /* each block's input saved in bf16 for its depthwise weight gradient; with recomputation the
     * recomputed depthwise conv reads the f32 input in backward anyway, so none */
    /* GELU's and layer scale's data gradients, which only fc1's / fc2's data and weight gradients read
     * (the bias gradients fused in): two per block */
    KT_CHECK(grads == 24, "recompute %d: %d GELU / layer-scale gradients stored in bf16 (want 24)", recompute, grads);
    /* the gradient entering each GELU's backward, written in bf16 by fc2's data-gradient GEMM when
     * that backward reads fc1's pre-activation in bf16 (not with recomputation), and each block
     * LayerNorm's, written by fc1's when its fused backward reads the depthwise output in bf16 (with
     * recomputation too: the recomputed copy is bf16) */
    KT_CHECK(dgelu == (recompute ? 0 : 12), "recompute %d: %d GELU incoming gradients stored in bf16 (want %d)", recompute, dgelu,
             recompute ? 0 : 12);
    KT_CHECK(dln == 12, "recompute %d: %d LayerNorm incoming gradients stored in bf16 (want 12)", recompute, dln);
    /* each block's layer scale computes its residual add, each depthwise data gradient its gradient add */
    int scale_adds = 0, grad_adds = 0;
    for (int i = 0; i < m.g.n_nodes; i++) {
        const kt_node *n = m.g.nodes[i];
        if (n->fuse_next && n->fuse_next->op == KT_OP_ADD) scale_adds += n->op == KT_OP_MUL, grad_adds += n->op == KT_OP_CONV2D_BWD_DATA;
    }
    KT_CHECK(scale_adds == 12 && grad_adds == 12, "recompute %d: %d residual adds fused into layer scale, %d gradient adds into the "
             "depthwise data gradient (want 12 each)", recompute, scale_adds, grad_adds);
    /* every LayerNorm's backward one fused kernel with its weight/bias gradients (12 blocks, the stem,
     * 3 downsamples, the head: 17), and with the bias gradient of the conv before it where a conv with
     * a bias feeds it (12 depthwise convs, the stem) */
    int ln_wb = 0, ln_colsum = 0;
    for (int i = 0; i < m.g.n_nodes; i++) {
        const kt_node *n = m.g.nodes[i];
        if (n->op != KT_OP_LAYERNORM_BWD_X) continue;
        ln_wb += n->fuse_next && n->fuse_next->op == KT_OP_LAYERNORM_BWD_WB;
        ln_colsum += n->fuse_colsum != NULL;
    }
    KT_CHECK(ln_wb == 17 && ln_colsum == 13, "recompute %d: %d LayerNorm backwards with their weight gradients (want 17), %d with the conv's "
             "bias gradient (want 13)", recompute, ln_wb, ln_colsum);
    KT_CHECK(saved == (recompute ? 0 : 12), "recompute %d: %d depthwise inputs saved in bf16 (want %d)", recompute, saved,
             recompute ? 0 : 12);
    int64_t np = m.g.n_param_elems;
    float *ga = malloc((size_t)np * sizeof(float)), *gb = malloc((size_t)np * sizeof(float)), la = 0, lb = 0;
    KT_REQUIRE(ga && gb, "memory");
    KT_CHECK_OK(kt_model_get_loss(&m, &la, &err), &err);
    KT_CHECK_OK(be->download(be, ga, m.g.grad_buf, (size_t)np * sizeof(float), &err), &err);
    size_t arena_bf16 = m.g.arena_bytes + m.g.inputs_bytes; /* kept outputs live beside the arena */

    kt_graph_release_memory(&m.g);
    for (int i = 0; i < m.g.n_nodes; i++)
        if (m.g.nodes[i]->op == KT_OP_GELU || m.g.nodes[i]->op == KT_OP_LAYERNORM || m.g.nodes[i]->op == KT_OP_ACT_BWD ||
            (m.g.nodes[i]->op == KT_OP_MUL && (m.g.nodes[i]->flags & KT_NODE_BACKWARD)))
            m.g.nodes[i]->flags |= KT_NODE_KEEP;
    KT_REQUIRE_OK(kt_graph_plan(&m.g, be, NULL, &err), &err);
    int still = 0, pre_again = 0;
    for (int i = 0; i < m.g.n_nodes; i++) {
        const kt_node *n = m.g.nodes[i];
        int s = n->dtype == KT_BF16 || (n->flags & KT_NODE_STORED_BF16);
        const kt_node *b = n->view_of && n->op == KT_OP_RESHAPE ? n->view_of : n; /* a view counts as its base */
        if (b != n && (b->op == KT_OP_MATMUL || b->op == KT_OP_LINEAR)) continue;
        if (n->op == KT_OP_LINEAR || n->op == KT_OP_CONV2D || (n->flags & KT_NODE_SAVED_INPUT) ||
            (n->op == KT_OP_MATMUL && (n->flags & KT_NODE_BACKWARD)))
            pre_again += s;
        else still += s;
    }
    KT_CHECK(still == 0, "re-planned with the GELU / LayerNorm outputs and GELU / layer-scale gradients kept: %d nodes still stored in bf16",
             still);
    KT_CHECK(pre_again == pre + dws + saved + dgelu + dln,
             "re-planned: %d linear/depthwise outputs, saved inputs and GELU/LayerNorm incoming gradients stored in bf16, %d before", pre_again,
             pre + dws + saved + dgelu + dln);
    int64_t nx = kt_node_numel(m.input);
    float *x = malloc((size_t)nx * sizeof(float));
    int32_t y[2];
    KT_REQUIRE(x, "memory");
    make_batch(&sc, x, y, nx);
    KT_CHECK_OK(kt_model_init_weights(&m, 7, &err), &err);
    KT_CHECK(kt_twin_poison(&m.g, &err) == 0, "poison: %s", err.msg);
    KT_CHECK_OK(kt_model_set_input(&m, x, &err), &err);
    KT_CHECK_OK(kt_model_set_labels(&m, y, &err), &err);
    KT_CHECK_OK(kt_graph_run(&m.g, &err), &err);
    KT_CHECK_OK(kt_model_get_loss(&m, &lb, &err), &err);
    KT_CHECK_OK(be->download(be, gb, m.g.grad_buf, (size_t)np * sizeof(float), &err), &err);
    KT_CHECK(memcmp(&la, &lb, sizeof la) == 0, "loss %.9g with bf16-stored GELU outputs, %.9g with f32 ones", la, lb);
    int64_t differ = 0;
    for (int64_t i = 0; i < np; i++) differ += memcmp(&ga[i], &gb[i], sizeof(float)) != 0;
    KT_CHECK(differ == 0, "%lld of %lld gradients differ between bf16 and f32 storage of the GELU outputs", (long long)differ,
             (long long)np);
    printf("bf16 GELU/LayerNorm storage (recompute %d): activations %.2f MiB vs %.2f MiB with f32 storage, same loss and gradients bit "
           "for bit\n",
           recompute, arena_bf16 / 1048576.0, (m.g.arena_bytes + m.g.inputs_bytes) / 1048576.0);
    free(x);
    free(ga);
    free(gb);
    kt_model_free(&m);
}

KT_TEST(test_cuda_bf16_gemm_only_activations_stored_in_bf16) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, "bf16", &err), &err);
    stored_bf16_case(be, 0);
    stored_bf16_case(be, 1);
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
}

/* The losses of `steps` AdamW steps (lr 1e-3) on one fixed batch, the graph planned in `precision`.
 * With a loss scaler, backward is seeded with its scale and a step with inf/NaN gradients is skipped;
 * updates[i] (when given) is the number of optimizer updates made before step i. */
static int train_losses(kt_backend *be, const char *precision, const step_case *sc, float *losses, int steps, kt_loss_scaler *ls,
                        int *updates, kt_err *err) {
    if (kt_backend_cuda_set_precision(be, precision, err)) return 1;
    kt_model m;
    if (run_step(&m, sc, be, 1, err)) return 1;
    kt_adamw o;
    kt_adamw_config c;
    kt_adamw_config_default(&c);
    c.lr = 1e-3f;
    int rc = kt_adamw_init_graph(&o, &m.g, &c, err) != KT_OK;
    for (int i = 0; !rc && i < steps; i++) {
        if (ls) rc = kt_loss_scaler_seed(ls, &m.g, err) != KT_OK; /* step 0 again too: run_step seeded it with 1 */
        if (!rc && (i || ls)) rc = kt_graph_run(&m.g, err) != KT_OK;
        if (!rc) rc = kt_model_get_loss(&m, &losses[i], err) != KT_OK;
        if (updates) updates[i] = (int)o.step;
        int take = 1;
        if (!rc && ls) rc = kt_loss_scaler_unscale(ls, be, m.g.grad_buf, m.g.n_param_elems, &take, err) != KT_OK;
        if (!rc && take) rc = kt_adamw_step(&o, m.g.param_buf, m.g.grad_buf, -1, -1, err) != KT_OK;
    }
    if (!rc) kt_adamw_free(&o);
    kt_model_free(&m);
    return rc;
}

KT_TEST(test_cuda_bf16_training_tracks_fp32) {
    kt_backend *be = kt_twin_backend();
    enum { STEPS = 12 };
    step_case sc = {"convnext_atto", 4, 4, 32, 0, 0, 0};
    float l32[STEPS], l16[STEPS];
    kt_err err;
    KT_REQUIRE_OK(train_losses(be, "fp32", &sc, l32, STEPS, NULL, NULL, &err) ? KT_ERR_STATE : KT_OK, &err);
    KT_REQUIRE_OK(train_losses(be, "bf16", &sc, l16, STEPS, NULL, NULL, &err) ? KT_ERR_STATE : KT_OK, &err);
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
    double worst = 0;
    for (int i = 0; i < STEPS; i++) {
        double rel = fabs((double)l16[i] - l32[i]) / fabs((double)l32[i]);
        worst = fmax(worst, rel);
        KT_CHECK(rel <= 0.05, "step %d: bf16 loss %.5f, fp32 %.5f (%.1f%% apart)", i + 1, l16[i], l32[i], 100 * rel);
    }
    KT_CHECK(l32[STEPS - 1] < 0.7f * l32[0], "fp32 did not fit the batch: loss %.4f -> %.4f", l32[0], l32[STEPS - 1]);
    KT_CHECK(l16[STEPS - 1] < 0.7f * l16[0], "bf16 did not fit the batch: loss %.4f -> %.4f", l16[0], l16[STEPS - 1]);
    printf("fp32 loss %.4f -> %.4f, bf16 %.4f -> %.4f over %d steps; worst step %.2f%% apart\n", l32[0], l32[STEPS - 1], l16[0],
           l16[STEPS - 1], STEPS, 100 * worst);
}

/* fp16 autocast (IEEE half operands: 11-bit significands, range to 65504): one atto step within the
 * same bounds as bf16, with the GEMM-only activations stored in f16. Backward runs loss-scaled, as
 * training does: unscaled, gradients near 1e-6 (a depthwise bias here) underflow half to zero. */
KT_TEST(test_cuda_fp16_gemm_train_step_close_to_cpu) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, "fp16", &err), &err);
    step_case sc = {"convnext_atto", 5, 2, 64, 0.1f, 0, 0};
    kt_model cpu, gpu;
    float lg;
    double lc;
    if (reduced_precision_step(&sc, &cpu, &gpu, &lg, &lc, "fp16 atto step")) {
        kt_loss_scaler ls;
        kt_loss_scaler_init(&ls);
        int take = 0;
        KT_CHECK_OK(kt_loss_scaler_seed(&ls, &gpu.g, &err), &err); /* the same step again, seeded with 2^16 */
        KT_CHECK_OK(kt_graph_run(&gpu.g, &err), &err);
        KT_CHECK_OK(kt_loss_scaler_unscale(&ls, be, gpu.g.grad_buf, gpu.g.n_param_elems, &take, &err), &err);
        KT_CHECK(take, "the step's gradients overflowed at scale 2^16");
        int f16 = 0, gelus = 0;
        for (int i = 0; i < gpu.g.n_nodes; i++)
            if (gpu.g.nodes[i]->op == KT_OP_GELU) gelus++, f16 += gpu.g.nodes[i]->dtype == KT_F16;
        KT_CHECK(gelus > 0 && f16 == gelus, "%d of %d GELU outputs stored in f16", f16, gelus);
        /* measured under emulation: logits within 4.1e-4 of their scale, worst gradient 6.9e-4 */
        check_half_step(&cpu, &gpu, lg, lc, "fp16");
    }
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
}

/* fp16 training with dynamic loss scaling tracks fp32: steps skipped for overflowing gradients lower
 * the scale and make no update, so each fp16 loss is compared with fp32's after as many updates. */
KT_TEST(test_cuda_fp16_loss_scaled_training_tracks_fp32) {
    kt_backend *be = kt_twin_backend();
    enum { STEPS = 12 };
    step_case sc = {"convnext_atto", 4, 4, 32, 0, 0, 0};
    float l32[STEPS], l16[STEPS];
    int upd[STEPS];
    kt_loss_scaler ls;
    kt_loss_scaler_init(&ls);
    kt_err err;
    KT_REQUIRE_OK(train_losses(be, "fp32", &sc, l32, STEPS, NULL, NULL, &err) ? KT_ERR_STATE : KT_OK, &err);
    KT_REQUIRE_OK(train_losses(be, "fp16", &sc, l16, STEPS, &ls, upd, &err) ? KT_ERR_STATE : KT_OK, &err);
    KT_CHECK_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err);
    double worst = 0;
    for (int i = 0; i < STEPS; i++) {
        double rel = fabs((double)l16[i] - l32[upd[i]]) / fabs((double)l32[upd[i]]);
        worst = fmax(worst, rel);
        KT_CHECK(rel <= 0.05, "step %d (%d updates): fp16 loss %.5f, fp32 %.5f (%.1f%% apart)", i + 1, upd[i], l16[i], l32[upd[i]],
                 100 * rel);
    }
    KT_CHECK(ls.skipped <= STEPS / 2, "%lld of %d steps skipped (scale now %g)", (long long)ls.skipped, STEPS, ls.scale);
    KT_CHECK(l16[STEPS - 1] < 0.8f * l16[0], "fp16 did not fit the batch: loss %.4f -> %.4f", l16[0], l16[STEPS - 1]);
    printf("fp16 with loss scaling: loss %.4f -> %.4f (fp32 %.4f -> %.4f), %lld steps skipped, scale %g; worst %.2f%% apart\n",
           l16[0], l16[STEPS - 1], l32[0], l32[STEPS - 1], (long long)ls.skipped, ls.scale, 100 * worst);
}

/* AdamW, sum of squares and scale over parameter-sized device buffers, against the CPU sweeps. */
KT_TEST(test_cuda_optimizer_sweeps_match_cpu) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    const int64_t n = 1000003;
    float *h[4], *d[4] = {0};
    unsigned seed = 5;
    for (int i = 0; i < 4; i++) {
        h[i] = malloc((size_t)n * sizeof(float));
        KT_REQUIRE(h[i], "memory");
        kt_twin_fill(h[i], n, i == 3 ? 0.0f : -1.0f, 1.0f, 0.0f, &seed); /* v >= 0 */
        KT_REQUIRE_OK(be->alloc(be, (size_t)n * sizeof(float), (void **)&d[i], &err), &err);
        KT_REQUIRE_OK(be->upload(be, d[i], h[i], (size_t)n * sizeof(float), &err), &err);
    }
    kt_adamw_hp hp = {.lr = 3e-4f, .beta1 = 0.91f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .step = 7};
    KT_CHECK_OK(be->adamw(be, d[0], d[1], d[2], d[3], n, hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weight_decay, hp.step, &err), &err);
    kt_cpu_adamw(h[0], h[1], h[2], h[3], n, &hp);
    float *back = malloc((size_t)n * sizeof(float));
    KT_REQUIRE(back, "memory");
    const char *names[4] = {"parameters", "gradients", "first moments", "second moments"};
    for (int i = 0; i < 4; i++) {
        KT_CHECK_OK(be->download(be, back, d[i], (size_t)n * sizeof(float), &err), &err);
        double rel = kt_twin_rel_err(back, h[i], n);
        KT_CHECK(rel <= 1e-6, "AdamW %s differ by %.3g of scale", names[i], rel);
    }
    double gs = 0, cs = kt_cpu_sumsq(h[1], n);
    KT_CHECK_OK(be->sumsq(be, d[1], n, &gs, &err), &err);
    KT_CHECK(fabs(gs - cs) <= 1e-12 * cs, "sum of squares %.17g vs %.17g", gs, cs);
    KT_CHECK_OK(be->scale(be, d[1], n, 0.37f, &err), &err);
    kt_cpu_scale(h[1], h[1], 0.37f, n);
    KT_CHECK_OK(be->download(be, back, d[1], (size_t)n * sizeof(float), &err), &err);
    KT_CHECK(memcmp(back, h[1], (size_t)n * sizeof(float)) == 0, "scale is one exact multiply per element");
    for (int i = 0; i < 4; i++) {
        be->release(be, d[i]);
        free(h[i]);
    }
    free(back);
}

/* A label outside the classes is refused as on the CPU: an error naming the label and row. */
KT_TEST(test_cuda_bad_label_is_an_error) {
    kt_backend *be = kt_twin_backend();
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    kt_node *z = kt_param(&g, "logits", 2, (int64_t[]){3, 4}, 0);
    kt_node *y = kt_input(&g, "labels", KT_I32, 1, (int64_t[]){3});
    kt_node *loss = kt_softmax_ce(&g, z, y, 0.0f);
    KT_REQUIRE_OK(kt_graph_backward(&g, loss, &err), &err);
    KT_REQUIRE_OK(kt_graph_plan(&g, be, NULL, &err), &err);
    int32_t labels[3] = {1, 7, 2};
    float logits[12] = {0};
    KT_REQUIRE_OK(be->upload(be, y->data, labels, sizeof labels, &err), &err);
    KT_REQUIRE_OK(be->upload(be, z->data, logits, sizeof logits, &err), &err);
    kt_status s = kt_graph_forward(&g, &err);
    KT_CHECK(s == KT_ERR_ARG && strstr(err.msg, "label 7 of row 1") && strstr(err.msg, "4 classes"), "got %s: %s",
             kt_status_name(s), err.msg);
    labels[1] = 3;
    KT_REQUIRE_OK(be->upload(be, y->data, labels, sizeof labels, &err), &err);
    KT_CHECK_OK(kt_graph_run(&g, &err), &err);
    kt_graph_free(&g);
}

/* --device cuda:N with N past the last GPU: refused at creation, naming the GPUs there are (runs on
 * every card). */
KT_TEST(test_cuda_device_index_past_the_last_gpu_is_refused) {
    kt_twin_backend(); /* skips without a GPU */
#ifdef KT_HAVE_CUDA
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    KT_REQUIRE(ci.device_count >= 1, "a GPU is present: %d", ci.device_count);
    kt_backend *be = NULL;
    kt_err err;
    kt_status s = kt_backend_cuda_create(&be, ci.device_count, &err);
    char want[64];
    snprintf(want, sizeof want, "GPU %d does not exist", ci.device_count);
    KT_CHECK(s == KT_ERR_CUDA && !be && strstr(err.msg, want) && strstr(err.msg, "(cuda:0"), "status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    if (be) be->destroy(be);
    KT_CHECK(kt_backend_cuda_create(&be, -1, &err) == KT_ERR_CUDA && !be, "GPU -1 refused");
#endif
}

#ifdef KT_HAVE_CUDA
typedef struct thread_step {
    kt_model *m;
    kt_err err;
    kt_status st;
} thread_step;

static void *step_on_thread(void *arg) {
    thread_step *t = arg;
    t->st = kt_graph_run(&t->m->g, &t->err);
    return NULL;
}
#endif

/* --device cuda:N: a model on the last GPU, planned and run while this thread's current device is
 * another GPU, then run again from a new thread (whose current device is GPU 0, as serve's request
 * threads), gives the CPU's training step both times. CUDA's current device is per thread, so this
 * needs every backend entry point to bind its GPU (kt_cuda_ctx_bind). The host emulator fakes a
 * second GPU (KT_EMU_DEVICES=2) and stops at any kernel, copy or cuBLAS/cuDNN call that touches one
 * GPU's memory or handle from a thread on the other; on a one-GPU card this skips. */
KT_TEST(test_cuda_second_gpu_step_from_another_thread_matches_cpu) {
    kt_twin_backend(); /* skips without a GPU */
#ifdef KT_HAVE_CUDA
    kt_cuda_info ci;
    int emulated = kt_twin_gpus(&ci);
    if (ci.device_count < 2) kt_test_skip("needs two GPUs; this machine has %d", ci.device_count);
    int last = ci.device_count - 1;
    kt_backend *far = NULL, *near = NULL;
    kt_err err;
    KT_REQUIRE_OK(kt_backend_cuda_create(&far, last, &err), &err);
    /* made second: this thread's current device is GPU 0 from here on */
    if (kt_backend_cuda_create(&near, 0, &err)) {
        far->destroy(far);
        KT_REQUIRE_OK(KT_ERR_CUDA, &err);
    }
    step_case sc = {"convnext_atto", 5, 2, 64, 0, 0, 0};
    kt_model cpu, gpu;
    KT_REQUIRE_OK(run_step(&cpu, &sc, NULL, 1, &err) ? KT_ERR_STATE : KT_OK, &err);
    if (run_step(&gpu, &sc, far, 1, &err)) {
        kt_test_fail(__FILE__, __LINE__, "step on GPU %d from a thread on GPU 0: %s", last, err.msg);
    } else {
        char label[96];
        snprintf(label, sizeof label, "convnext_atto step on GPU %d, this thread on GPU 0", last);
        check_logits_loss(&cpu, &gpu, label, 1);
        KT_CHECK(compare_grads(&cpu, &gpu, MODEL_TOL, label) == 0, "%s: gradients (details above)", label);
        /* again from a new thread: the same inputs, so the same step */
        thread_step t = {.m = &gpu, .st = KT_ERR_STATE};
        pthread_t th;
        KT_REQUIRE(pthread_create(&th, NULL, step_on_thread, &t) == 0, "pthread_create");
        pthread_join(th, NULL);
        KT_CHECK(t.st == KT_OK, "step from a new thread: %s", t.err.msg);
        if (t.st == KT_OK) {
            snprintf(label, sizeof label, "convnext_atto step on GPU %d from a new thread", last);
            check_logits_loss(&cpu, &gpu, label, 1);
            KT_CHECK(compare_grads(&cpu, &gpu, MODEL_TOL, label) == 0, "%s: gradients (details above)", label);
        }
        kt_model_free(&gpu);
    }
    kt_model_free(&cpu);
    near->destroy(near);
    far->destroy(far);
    kt_twin_gpus_done(emulated);
#endif
}
