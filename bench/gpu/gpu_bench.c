/* kt_gpu_bench: the CUDA backend's benchmarks, for bench/gpu/run_gpu_checks.sh.
 *   kt_gpu_bench kernels [--quick]       per-kernel time, GB/s and TFLOP/s beside the device's measured
 *                                        ceilings (device-to-device copy, cuBLAS GEMM peak)
 *   kt_gpu_bench model [--tf32 | --bf16] [--warmup N] [--iters N] CASE...
 *                                        model cases of bench/model_bench.h on the CUDA backend
 * Prints markdown tables. Built only with CUDA (CMakeLists.txt, kt_gpu_bench target). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timer.h"
#include "bench/model_bench.h"
#include "engine/backend.h"
#include "engine/dtype.h"
#include "kernels/cuda/kt_cuda.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: kt_gpu_bench kernels [--quick | --smoke]\n"
            "       kt_gpu_bench model [--tf32 | --bf16 | --fp16] [--recompute] [--warmup N] [--iters N] [--profile | --plan-only]\n"
            "                          [--without FUSION[,FUSION...]] CASE...\n"
            "  kernels   dwconv 7x7 (each kind of ours, the one auto chose, and cuDNN), the stem and downsampling\n"
            "            patch convolutions (our bf16 GEMMs and cuDNN's TF32), LayerNorm (and its fused\n"
            "            backward), GELU (alone and fused with the bias / bias gradient), layer scale's fused passes,\n"
            "            MLP GEMMs, AdamW, column sums at ConvNeXt-tiny batch-64 shapes, with the device's copy\n"
            "            bandwidth and cuBLAS GEMM peak as ceilings;\n"
            "            --quick: fewer repetitions; --smoke: batch 1 and tiny ceilings (checks the program only)\n"
            "  model     CASE = train|infer:ARCH:BATCH:SIZE (e.g. train:convnext_tiny:64:224), each in its own\n"
            "            process; --tf32 lets f32 GEMMs and cuDNN convolutions use TF32 tensor cores;\n"
            "            --bf16 rounds linear/matmul operands to bf16 (keratrack train --precision bf16), --fp16 to\n"
            "            IEEE half (the step's cost; loss scaling adds one sum of squares and one scaling);\n"
            "            --recompute: redo GELU, LayerNorm and depthwise outputs in backward instead of storing them;\n"
            "            --profile: after each case, the time per op type over the timed steps (the device is\n"
            "            synchronised after every node, so the total exceeds the step time by the launch gaps);\n"
            "            --plan-only: plan each case and print the device memory it takes and the activations alive\n"
            "            at its peak by op, without running a step;\n"
            "            --without: plan without the named fusions of the CUDA backend, to measure what each saves:\n"
            "            linear_gelu, layernorm_bwd, layerscale_bwd, act_bwd_colsum, layernorm_colsum, scale_colsum,\n"
            "            scale_add, dwconv_bwd_add\n"
            "            (also under the host emulator: tests/cuda/emu/run_emulated.sh builds kt_gpu_bench_emu)\n"
            "environment: KT_CUDA_DWCONV=scalar|vec4|tile4x4|tile4x8|taps|rot4|rot1 runs every depthwise convolution with that kind\n"
            "of kernel (the same bits) instead of the fastest one timed per geometry (auto; KT_CUDA_DWCONV_LOG=1 prints\n"
            "each timing); KT_CUDA_NO_LT=1 runs linears with a bias and a 16-bit output through cuBLAS and a bias\n"
            "pass instead of cuBLASLt's bias epilogue; KT_CUDA_NO_PATCH_GEMM=1 runs the downsampling convolutions of\n"
            "--bf16/--fp16 cases through cuDNN in TF32 instead of as 16-bit GEMMs; KT_CUDA_WITHOUT=FUSION,... plans\n"
            "every case without those fusions (as --without)\n");
}

/* ---- kernels ---- */

static kt_cuda_ctx *C;
static int quick;          /* --quick: a quarter of the repetitions */
static int64_t NB = 64;    /* batch of the ConvNeXt-tiny shapes; --smoke: 1 (checks the program, e.g. under emulation) */
static int64_t PEAK = 8192; /* GEMM ceiling size; --smoke: 128 */
static size_t COPY = (size_t)1 << 30;

static void die(const char *what) {
    fprintf(stderr, "kt_gpu_bench: %s: %s\n", what, kt_cuda_ctx_error(C));
    exit(1);
}

static void *dev(size_t bytes) {
    void *p;
    if (kt_cuda_ctx_alloc(C, &p, bytes)) die("allocating");
    return p;
}

/* a device buffer of n floats holding a repeated random row (values in [-1, 1)) */
static float *dev_random(int64_t n) {
    float *d = dev((size_t)n * sizeof(float)), row[1021];
    unsigned s = 12345u;
    for (int i = 0; i < 1021; i++) {
        s = s * 1664525u + 1013904223u;
        row[i] = (float)((s >> 8) & 0xffffff) / 8388608.0f - 1.0f;
    }
    float *drow = dev(sizeof row);
    if (kt_cuda_ctx_copy(C, drow, row, sizeof row)) die("upload");
    int64_t rows = n / 1021, rest = n % 1021;
    if (rows && kt_cuda_fill_rows(C, d, drow, rows, 1021)) die("fill");
    if (rest && kt_cuda_fill_rows(C, d + rows * 1021, drow, 1, rest)) die("fill");
    kt_cuda_ctx_free(C, drow);
    return d;
}

typedef int (*bench_fn)(void *arg);

/* seconds per call: 2 warm-up calls, then reps timed calls between two syncs */
static double timed(bench_fn fn, void *arg, int reps) {
    if (quick) reps = reps / 4 > 0 ? reps / 4 : 1;
    for (int i = 0; i < 2; i++)
        if (fn(arg)) die("kernel");
    if (kt_cuda_ctx_sync(C)) die("sync");
    double t0 = kt_now();
    for (int i = 0; i < reps; i++)
        if (fn(arg)) die("kernel");
    if (kt_cuda_ctx_sync(C)) die("sync");
    return (kt_now() - t0) / reps;
}

typedef struct bargs {
    void *a, *b, *c, *d, *e;
    int64_t n, rows, cols, k;
    kt_conv_shape s;
    size_t bytes;
    int ta, tb;
    kt_cuda_dtype ab, cty;
} bargs;

/* frees the device buffers a..e (those set) */
static void free_args(bargs *a) {
    void *bufs[5] = {a->a, a->b, a->c, a->d, a->e};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) kt_cuda_ctx_free(C, bufs[i]);
}

static int b_copy(void *p) { bargs *a = p; return kt_cuda_copy(C, a->b, a->a, a->bytes); }
static int b_gemm(void *p) {
    bargs *a = p;
    return kt_cuda_gemm(C, a->ta, a->tb, a->rows, a->cols, a->k, 1.0f, a->a, a->ta ? a->rows : a->k, a->b, a->tb ? a->k : a->cols, 0.0f,
                        a->c, a->cols, a->ab, a->cty);
}
/* fc1 forward as a bf16 training step runs it (c: f32 z; d: f32 bias, then its bf16 copy at +4 KiB;
 * e: the bf16 pre-activation, then GELU's bf16 output): cuBLAS into f32 z and the bias + GELU pass,
 * or cuBLASLt's bias epilogue writing the bf16 pre-activation and GELU from it */
static int b_fc1_cublas(void *p) {
    bargs *a = p;
    int64_t n = a->rows * a->cols;
    if (kt_cuda_gemm(C, 0, 1, a->rows, a->cols, a->k, 1.0f, a->a, a->k, a->b, a->k, 0.0f, a->c, a->cols, KT_CUDA_BF16, KT_CUDA_F32)) return 1;
    return kt_cuda_bias_gelu(C, a->c, a->d, a->e, KT_CUDA_BF16, (uint16_t *)a->e + n, KT_CUDA_BF16, a->rows, a->cols);
}
static int b_fc1_lt(void *p) {
    bargs *a = p;
    int64_t n = a->rows * a->cols;
    int r = kt_cuda_gemm_bias(C, a->rows, a->cols, a->k, a->a, a->b, (char *)a->d + 4096, a->e, KT_CUDA_BF16, KT_CUDA_BF16);
    if (r) return r < 0 ? 2 : 1; /* 2: declined (no cuBLASLt algorithm) */
    return kt_cuda_gelu_fwd_x16(C, (uint16_t *)a->e + n, KT_CUDA_BF16, a->e, KT_CUDA_BF16, n);
}
static int b_dw_fwd(void *p) { bargs *a = p; return kt_cuda_dwconv_fwd(C, &a->s, a->a, a->b, NULL, a->c, a->d); }
static int b_dw_bwd_data(void *p) { bargs *a = p; return kt_cuda_dwconv_bwd_data(C, &a->s, a->c, a->b, a->a, a->d); }
static int b_dw_bwd_w(void *p) { bargs *a = p; return kt_cuda_dwconv_bwd_weight(C, &a->s, a->c, a->a, a->b, a->d); }
/* its second stage alone: the fixed-order sum of the row blocks' partials (in a->d) */
static int b_dw_bwd_w_sum(void *p) { bargs *a = p; return kt_cuda_dwconv_bwd_weight_sum(C, &a->s, a->d, a->b); }
/* as a bf16 step runs them: the forward also writing its input's bf16 copy (the weight gradient's
 * saved input) and its output in bf16; the weight gradient reading that copy */
static int b_dw_fwd_copy(void *p) {
    bargs *a = p;
    return kt_cuda_dwconv_fwd_ex(C, &a->s, a->a, a->b, NULL, a->c, KT_CUDA_BF16, a->e, KT_CUDA_BF16, a->d);
}
static int b_dw_bwd_w16(void *p) { bargs *a = p; return kt_cuda_dwconv_bwd_weight_x16(C, &a->s, a->c, a->e, KT_CUDA_BF16, a->b, a->d); }
/* the data gradient summed in place into the residual gradient (x's buffer stands for it) */
static int b_dw_bwd_data_add(void *p) { bargs *a = p; return kt_cuda_dwconv_bwd_data_add(C, &a->s, a->c, a->b, a->a, a->a, a->d); }
/* layer scale and the residual add in one pass, the scaled input in bf16 */
static int b_scale_add(void *p) { bargs *a = p; return kt_cuda_scale_add(C, a->c, a->b, KT_CUDA_BF16, a->e, a->a, a->rows, a->cols); }
static int b_dnn_fwd(void *p) { bargs *a = p; return kt_cuda_conv_fwd(C, &a->s, a->a, a->b, NULL, a->c, a->d, a->bytes); }
static int b_dnn_bwd_data(void *p) { bargs *a = p; return kt_cuda_conv_bwd_data(C, &a->s, a->c, a->b, a->a, a->d, a->bytes); }
static int b_dnn_bwd_w(void *p) { bargs *a = p; return kt_cuda_conv_bwd_weight(C, &a->s, a->c, a->a, a->b, a->d, a->bytes); }
/* a->ab: the GEMM operands' type (bf16; f32 with TF32 on: the stem's accuracy class) */
static int b_patch_fwd(void *p) { bargs *a = p; return kt_cuda_patch_conv_fwd(C, &a->s, a->a, KT_CUDA_F32, a->b, a->e, a->c, a->ab, a->d); }
static int b_patch_bwd_data(void *p) { bargs *a = p; return kt_cuda_patch_conv_bwd_data(C, &a->s, a->c, a->b, a->a, a->ab, a->d); }
static int b_patch_bwd_w(void *p) { bargs *a = p; return kt_cuda_patch_conv_bwd_weight(C, &a->s, a->c, a->a, KT_CUDA_F32, a->b, a->ab, a->d); }
static int b_dnn_fwd_bias(void *p) { bargs *a = p; return kt_cuda_conv_fwd(C, &a->s, a->a, a->b, a->e, a->c, a->d, a->bytes); }
static int b_ln_fwd(void *p) { bargs *a = p; return kt_cuda_layernorm_fwd(C, a->c, a->a, a->b, a->e, a->rows, a->cols, 1e-6f); }
static int b_ln_bwd_x(void *p) { bargs *a = p; return kt_cuda_layernorm_bwd_x(C, a->c, a->d, a->a, a->b, a->rows, a->cols, 1e-6f); }
static int b_ln_bwd_wb(void *p) { bargs *a = p; return kt_cuda_layernorm_bwd_wb(C, a->b, a->d, a->a, a->rows, a->cols, 1e-6f, a->e); }
/* LayerNorm's whole backward as a training step runs it: x (a) in ab (f32, or bf16 as the depthwise
 * output under autocast), w (b), dx (c), dy (d); e: dw, db and the conv's bias gradient (3 C floats),
 * then the scratch at e + bytes */
static int b_ln_bwd_fused(void *p) {
    bargs *a = p;
    float *out = a->e;
    return kt_cuda_layernorm_bwd_fused(C, a->c, a->d, a->cty, a->a, a->ab, a->b, a->rows, a->cols, 1e-6f, out, out + 2 * a->cols,
                                       (char *)a->e + a->bytes);
}
static int b_gelu(void *p) { bargs *a = p; return kt_cuda_act_fwd(C, KT_ACT_GELU, a->b, a->a, a->n); }
static int b_gelu_bwd(void *p) { bargs *a = p; return kt_cuda_act_bwd(C, KT_ACT_GELU, a->c, a->b, a->a, a->n); }
/* the fused MLP kernels as a bf16 step runs them: the GEMM's f32 z in, bf16 pre-activation and
 * GELU output out; GELU's gradient from the bf16 pre-activation with fc1's bias gradient summed, its
 * incoming gradient dy in ab (f32, or bf16 as fc2's data-gradient GEMM writes it) */
static int b_bias_gelu(void *p) {
    bargs *a = p;
    return kt_cuda_bias_gelu(C, a->a, a->e, a->b, KT_CUDA_BF16, a->c, KT_CUDA_BF16, a->rows, a->cols);
}
static int b_gelu_bwd_bias(void *p) {
    bargs *a = p;
    return kt_cuda_act_bwd_colsum(C, KT_ACT_GELU, a->c, KT_CUDA_BF16, a->a, a->ab, a->b, KT_CUDA_BF16, a->rows, a->cols, a->e, a->d);
}
/* layer scale's backward as a bf16 step runs it: dy f32 and the bf16 scaled input read, the data
 * gradient written in bf16, the bias and gamma gradients summed */
static int b_layer_scale_bwd(void *p) {
    bargs *a = p;
    return kt_cuda_layer_scale_bwd(C, a->c, KT_CUDA_BF16, a->a, a->e, a->b, KT_CUDA_BF16, a->rows, a->cols, (float *)a->e + a->cols,
                                   (float *)a->e + 2 * a->cols, a->d);
}
static int b_adamw(void *p) {
    bargs *a = p;
    kt_adamw_hp hp = {.lr = 3e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .step = 10};
    return kt_cuda_adamw(C, a->a, a->b, a->c, a->d, a->n, &hp);
}
static int b_reduce_rows(void *p) { bargs *a = p; return kt_cuda_reduce_rows(C, a->b, a->a, a->rows, a->cols, a->e); }

static double copy_gbs, peak_f32, peak_tf32, peak_bf16;

static void row(const char *kernel, const char *shape, double t, double bytes, double flops, double peak) {
    printf("| %s | %s | %.3f | %.0f | %.0f%% |", kernel, shape, t * 1e3, bytes / t / 1e9, 100 * bytes / t / 1e9 / copy_gbs);
    if (flops > 0) printf(" %.2f | %.0f%% |\n", flops / t / 1e12, peak > 0 ? 100 * flops / t / 1e12 / peak : 0);
    else printf(" - | - |\n");
    fflush(stdout);
}

static double gemm_tflops(int64_t M, int64_t N, int64_t K, kt_cuda_dtype ab, kt_cuda_dtype cty, int tf32, int reps) {
    size_t e = ab == KT_CUDA_BF16 ? 2 : 4;
    bargs a = {.a = dev((size_t)(M * K) * e), .b = dev((size_t)(K * N) * e), .c = dev((size_t)(M * N) * 4), .rows = M, .cols = N,
               .k = K, .ta = 0, .tb = 1, .ab = ab, .cty = cty};
    if (kt_cuda_ctx_memset(C, a.a, 0x3c, (size_t)(M * K) * e) || kt_cuda_ctx_memset(C, a.b, 0x3c, (size_t)(K * N) * e)) die("memset");
    kt_cuda_ctx_set_tf32(C, tf32);
    double t = timed(b_gemm, &a, reps);
    kt_cuda_ctx_set_tf32(C, 0);
    free_args(&a);
    return 2.0 * M * N * K / t / 1e12;
}

static void dwconv_rows(int64_t N, int64_t H, int64_t Cc) {
    kt_conv_shape s = {.N = N, .H = H, .W = H, .Ci = Cc, .Co = Cc, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = Cc};
    kt_conv_shape_finish(&s);
    int64_t n = N * H * H * Cc;
    char shape[96];
    snprintf(shape, sizeof shape, "(%lld, %lld, %lld, %lld) 7x7", (long long)N, (long long)H, (long long)H, (long long)Cc);
    size_t sc = kt_cuda_dwconv_bwd_weight_scratch(C, &s), s2 = kt_cuda_dwconv_scratch(&s);
    bargs a = {.a = dev_random(n), .b = dev_random(Cc * 49), .c = dev_random(n), .s = s};
    a.d = dev(sc > s2 ? sc : s2);
    double fl = 2.0 * 49 * n, by = 2.0 * n * 4;
    /* each kind of ours (the same bits), then what AUTO chose for this geometry */
    for (int k = KT_CUDA_DW_SCALAR; k < KT_CUDA_DW_KINDS; k++) {
        char name[96];
        kt_cuda_ctx_set_dwconv_kernels(C, (kt_cuda_dwkind)k);
        if (k != KT_CUDA_DW_TAPS && k != KT_CUDA_DW_ROT4 && k != KT_CUDA_DW_ROT1) { /* the weight gradient's only */
            snprintf(name, sizeof name, "dwconv fwd (ours, %s)", kt_cuda_dwkind_name((kt_cuda_dwkind)k));
            row(name, shape, timed(b_dw_fwd, &a, 20), by, fl, peak_f32);
            snprintf(name, sizeof name, "dwconv data grad (ours, %s)", kt_cuda_dwkind_name((kt_cuda_dwkind)k));
            row(name, shape, timed(b_dw_bwd_data, &a, 20), by, fl, peak_f32);
        }
        if (k == KT_CUDA_DW_TILE4X4 || k == KT_CUDA_DW_TILE4X8) continue; /* forward and data gradient only */
        snprintf(name, sizeof name, "dwconv weight grad (ours, %s)", kt_cuda_dwkind_name((kt_cuda_dwkind)k));
        row(name, shape, timed(b_dw_bwd_w, &a, 20), by, fl, peak_f32);
    }
    kt_cuda_ctx_set_dwconv_kernels(C, KT_CUDA_DW_AUTO);
    row("dwconv fwd (ours, auto)", shape, timed(b_dw_fwd, &a, 20), by, fl, peak_f32);
    row("dwconv data grad (ours, auto)", shape, timed(b_dw_bwd_data, &a, 20), by, fl, peak_f32);
    row("dwconv weight grad (ours, auto)", shape, timed(b_dw_bwd_w, &a, 20), by, fl, peak_f32);
    /* of which the sum over the row blocks' partials (bytes: the partials read, dw written) */
    row("dwconv weight grad: partials' sum alone", shape, timed(b_dw_bwd_w_sum, &a, 20), (double)sc + 4.0 * Cc * 49, 0, 0);
    printf("| auto chose | %s | forward %s, data gradient %s, weight gradient %s | | | | |\n", shape,
           kt_cuda_dwkind_name(kt_cuda_dwconv_chosen(C, 0, &s)), kt_cuda_dwkind_name(kt_cuda_dwconv_chosen(C, 1, &s)),
           kt_cuda_dwkind_name(kt_cuda_dwconv_chosen(C, 2, &s)));
    a.e = dev((size_t)n * 2);
    row("dwconv fwd, bf16 out + bf16 input copy (ours)", shape, timed(b_dw_fwd_copy, &a, 20), n * (4.0 + 2 + 2), fl, peak_f32);
    row("dwconv weight grad, bf16 input (ours)", shape, timed(b_dw_bwd_w16, &a, 20), n * (4.0 + 2), fl, peak_f32);
    row("dwconv data grad + residual grad add (ours)", shape, timed(b_dw_bwd_data_add, &a, 20), n * (4.0 + 4 + 4), fl, peak_f32);
    kt_cuda_ctx_free(C, a.e); /* x, w and dy stay for cuDNN */
    kt_cuda_ctx_free(C, a.d);
    a.d = a.e = NULL;
    /* the same convolutions through cuDNN (groups = channels), to show why ours is used */
    size_t need[3] = {0, 0, 0}, most = 0;
    int ok = 1;
    for (int k = 0; k < 3; k++) {
        ok &= kt_cuda_conv_plan(C, k, &s, &need[k]) == 0;
        most = need[k] > most ? need[k] : most;
    }
    if (ok) {
        a.d = dev(most);
        a.bytes = most;
        row("dwconv fwd (cuDNN)", shape, timed(b_dnn_fwd, &a, 20), by, fl, peak_f32);
        row("dwconv data grad (cuDNN)", shape, timed(b_dnn_bwd_data, &a, 20), by, fl, peak_f32);
        row("dwconv weight grad (cuDNN)", shape, timed(b_dnn_bwd_w, &a, 20), by, fl, peak_f32);
    } else {
        printf("| dwconv (cuDNN) | %s | cuDNN refused: %s | | | | |\n", shape, kt_cuda_ctx_error(C));
    }
    free_args(&a);
}

/* A patch convolution (ConvNeXt's downsampling, kernel == stride) as a bf16 step runs it: our 16-bit
 * gather + cuBLAS bf16 GEMM (kernels/cuda/patch.cu), and cuDNN in TF32 (what it was before, and what
 * KT_CUDA_NO_PATCH_GEMM=1 runs). The stem, which the step leaves to cuDNN, both ways too: what
 * keeping it there costs. Bytes: x and y (or their gradients) in f32, read or
 * written once. */
static void patch_rows(int64_t N, int64_t H, int64_t Ci, int64_t Co, int64_t k) {
    kt_conv_shape s = {.N = N, .H = H, .W = H, .Ci = Ci, .Co = Co, .kh = k, .kw = k, .sh = k, .sw = k, .groups = 1};
    kt_conv_shape_finish(&s);
    int64_t nin = N * H * H * Ci, nout = N * s.Ho * s.Wo * Co;
    char shape[96];
    snprintf(shape, sizeof shape, "(%lld, %lld, %lld, %lld) %lldx%lld/%lld to %lld", (long long)N, (long long)H, (long long)H, (long long)Ci,
             (long long)k, (long long)k, (long long)k, (long long)Co);
    size_t most = 0;
    for (int kind = 0; kind < 6; kind++) { /* each pass in bf16 and in f32 */
        size_t z = kt_cuda_patch_conv_scratch(&s, kind % 3, kind < 3 ? KT_CUDA_BF16 : KT_CUDA_F32);
        most = z > most ? z : most;
    }
    bargs a = {.a = dev_random(nin), .b = dev_random(Co * Ci * k * k), .c = dev_random(nout), .d = dev(most), .e = dev_random(Co), .s = s,
               .ab = KT_CUDA_BF16};
    double fl = 2.0 * nout * Ci * k * k, by = (double)(nin + nout) * 4;
    row("patch conv fwd (ours: bf16 gather + GEMM)", shape, timed(b_patch_fwd, &a, 20), by, fl, peak_bf16);
    row("patch conv data grad (ours)", shape, timed(b_patch_bwd_data, &a, 20), by, fl, peak_bf16);
    row("patch conv weight grad (ours)", shape, timed(b_patch_bwd_w, &a, 20), by, fl, peak_bf16);
    if (Ci < 8) { /* the stem: the same GEMMs on f32 operands in TF32, cuDNN's accuracy class */
        kt_cuda_ctx_set_tf32(C, 1);
        a.ab = KT_CUDA_F32;
        row("patch conv fwd (ours: f32 gather + TF32 GEMM)", shape, timed(b_patch_fwd, &a, 20), by, fl, peak_tf32);
        row("patch conv data grad (ours, TF32)", shape, timed(b_patch_bwd_data, &a, 20), by, fl, peak_tf32);
        row("patch conv weight grad (ours, TF32)", shape, timed(b_patch_bwd_w, &a, 20), by, fl, peak_tf32);
        kt_cuda_ctx_set_tf32(C, 0);
    }
    kt_cuda_ctx_free(C, a.d);
    kt_cuda_ctx_set_tf32(C, 1);
    size_t need[3] = {0, 0, 0};
    most = 0;
    int ok = 1;
    for (int kind = 0; kind < 3; kind++) {
        ok &= kt_cuda_conv_plan(C, kind, &s, &need[kind]) == 0;
        most = need[kind] > most ? need[kind] : most;
    }
    a.d = dev(most ? most : 256);
    a.bytes = most;
    if (ok) {
        row("patch conv fwd (cuDNN, TF32)", shape, timed(b_dnn_fwd_bias, &a, 20), by, fl, peak_tf32);
        row("patch conv data grad (cuDNN, TF32)", shape, timed(b_dnn_bwd_data, &a, 20), by, fl, peak_tf32);
        row("patch conv weight grad (cuDNN, TF32)", shape, timed(b_dnn_bwd_w, &a, 20), by, fl, peak_tf32);
    } else {
        printf("| patch conv (cuDNN) | %s | cuDNN refused: %s | | | | |\n", shape, kt_cuda_ctx_error(C));
    }
    kt_cuda_ctx_set_tf32(C, 0);
    free_args(&a);
}

static void layernorm_rows(int64_t rows, int64_t Cc) {
    int64_t n = rows * Cc;
    char shape[64];
    snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)rows, (long long)Cc);
    float *x = dev_random(n), *y = dev_random(n), *dy = dev_random(n), *wb = dev_random(2 * Cc), *bias = dev_random(Cc);
    void *scratch = dev(kt_cuda_layernorm_bwd_wb_scratch(rows, Cc)); /* also covers the column sum's partials */
    bargs fwd = {.a = x, .b = wb, .e = bias, .c = y, .rows = rows, .cols = Cc};
    bargs bwd = {.a = x, .b = wb, .c = y, .d = dy, .e = scratch, .rows = rows, .cols = Cc};
    row("layernorm fwd", shape, timed(b_ln_fwd, &fwd, 20), 2.0 * n * 4, 0, 0);
    row("layernorm bwd x", shape, timed(b_ln_bwd_x, &bwd, 20), 3.0 * n * 4, 0, 0);
    row("layernorm bwd w,b", shape, timed(b_ln_bwd_wb, &bwd, 20), 2.0 * n * 4, 0, 0);
    row("column sum (bias grad)", shape, timed(b_reduce_rows, &bwd, 20), 1.0 * n * 4, 0, 0);
    /* the three above in one (x read twice: a row pass, then the column pass writing dx); bytes as
     * the least the whole backward moves: x and dy read once, dx written once */
    size_t at = ((size_t)(3 * Cc) * 4 + 255) & ~(size_t)255;
    void *outs = dev(at + kt_cuda_layernorm_bwd_fused_scratch(rows, Cc)), *x16 = dev((size_t)n * 2);
    if (kt_cuda_ctx_memset(C, x16, 0x3c, (size_t)n * 2)) die("memset");
    bargs fu = {.a = x, .b = wb, .c = y, .d = dy, .e = outs, .bytes = at, .rows = rows, .cols = Cc, .ab = KT_CUDA_F32};
    row("layernorm bwd fused: x, w,b, conv bias grad", shape, timed(b_ln_bwd_fused, &fu, 20), 3.0 * n * 4, 0, 0);
    fu.a = x16, fu.ab = KT_CUDA_BF16;
    row("layernorm bwd fused, bf16 x", shape, timed(b_ln_bwd_fused, &fu, 20), n * (2.0 + 4 + 4), 0, 0);
    fu.cty = KT_CUDA_BF16; /* dy as fc1's data-gradient GEMM writes it in a bf16 step (the f32 buffer read as bf16: timing only) */
    row("layernorm bwd fused, bf16 x and dy", shape, timed(b_ln_bwd_fused, &fu, 20), n * (2.0 + 2 + 4), 0, 0);
    void *all[8] = {x, y, dy, wb, bias, scratch, outs, x16};
    for (int i = 0; i < 8; i++) kt_cuda_ctx_free(C, all[i]);
}

static int cmd_kernels(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--smoke")) {
            quick = 1;
            NB = 1;
            PEAK = 128;
            COPY = (size_t)1 << 20;
        } else {
            usage(stderr);
            return 2;
        }
    }
    char msg[512];
    if (kt_cuda_ctx_create(&C, 0, msg, sizeof msg)) {
        fprintf(stderr, "kt_gpu_bench: %s\n", msg);
        return 1;
    }
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    printf("GPU %s (sm_%d%d, %d SMs, %.1f GiB), CUDA runtime %d, cuDNN %d, cuBLAS %d\n\n", ci.name, ci.cc_major, ci.cc_minor,
           ci.sm_count, (double)ci.total_mem / 1073741824.0, ci.runtime_version, ci.cudnn_version, ci.cublas_version);
    /* ceilings */
    size_t big = COPY;
    bargs cp = {.a = dev(big), .b = dev(big), .bytes = big};
    if (kt_cuda_ctx_memset(C, cp.a, 0, big)) die("memset");
    copy_gbs = 2.0 * big / timed(b_copy, &cp, 20) / 1e9;
    kt_cuda_ctx_free(C, cp.a);
    kt_cuda_ctx_free(C, cp.b);
    peak_f32 = gemm_tflops(PEAK, PEAK, PEAK, KT_CUDA_F32, KT_CUDA_F32, 0, 8);
    peak_tf32 = gemm_tflops(PEAK, PEAK, PEAK, KT_CUDA_F32, KT_CUDA_F32, 1, 8);
    peak_bf16 = gemm_tflops(PEAK, PEAK, PEAK, KT_CUDA_BF16, KT_CUDA_BF16, 0, 8);
    int p = (int)PEAK;
    printf("| ceiling | measured |\n|---|---|\n| device copy (read + write) | %.0f GB/s |\n| cuBLAS SGEMM %d^3 | %.1f TFLOP/s |\n"
           "| cuBLAS TF32 GEMM %d^3 | %.1f TFLOP/s |\n| cuBLAS bf16 GEMM %d^3 (fp32 accumulation) | %.1f TFLOP/s |\n\n",
           copy_gbs, p, peak_f32, p, peak_tf32, p, peak_bf16);
    printf("| kernel | shape | ms | GB/s | of copy | TFLOP/s | of GEMM peak (same precision) |\n|---|---|---|---|---|---|---|\n");
    /* ConvNeXt-tiny, batch 64 at 224: stage 1 (56x56x96) and stage 3 (14x14x384) */
    dwconv_rows(NB, 56, 96);
    dwconv_rows(NB, 14, 384);
    patch_rows(NB, 224, 3, 96, 4);
    patch_rows(NB, 56, 96, 192, 2);
    layernorm_rows(NB * 56 * 56, 96);
    layernorm_rows(NB * 14 * 14, 384);
    {
        /* layer scale's backward at stage 1 (fc2's output, 96 wide; c holds the bf16 data gradient,
         * then the f32 output of layer scale + residual add) */
        int64_t rows = NB * 56 * 56, n = rows * 96;
        char shape[64];
        snprintf(shape, sizeof shape, "(%lld, 96)", (long long)rows);
        bargs a = {.a = dev_random(n), .b = dev(n * 2), .c = dev(n * 4), .d = dev(kt_cuda_layer_scale_bwd_scratch(rows, 96)),
                   .e = dev_random(3 * 96), .rows = rows, .cols = 96};
        if (kt_cuda_ctx_memset(C, a.b, 0x3c, (size_t)n * 2)) die("memset");
        row("layer scale bwd fused (data grad bf16, bias + gamma grads)", shape, timed(b_layer_scale_bwd, &a, 20), n * (4.0 + 2 + 2), 0, 0);
        row("layer scale + residual add fused, bf16 in", shape, timed(b_scale_add, &a, 20), n * (2.0 + 4 + 4), 0, 0);
        free_args(&a);
    }
    {
        int64_t n = NB * 56 * 56 * 384;
        char shape[64];
        snprintf(shape, sizeof shape, "(%lld, 56, 56, 384)", (long long)NB);
        bargs a = {.a = dev_random(n), .b = dev_random(n), .c = dev_random(n), .n = n};
        row("gelu fwd", shape, timed(b_gelu, &a, 20), 2.0 * n * 4, 0, 0);
        row("gelu bwd", shape, timed(b_gelu_bwd, &a, 20), 3.0 * n * 4, 0, 0);
        /* fused (bf16 step): z f32 read, pre-activation and GELU bf16 written; dy f32 and the bf16
         * pre-activation read, dx bf16 written (plus the bias partials) */
        a.rows = n / 384, a.cols = 384;
        a.e = dev_random(384);
        a.d = dev(kt_cuda_reduce_rows_scratch(a.rows, a.cols));
        row("bias + gelu fused, bf16 out", shape, timed(b_bias_gelu, &a, 20), n * (4.0 + 2 + 2), 0, 0);
        a.ab = KT_CUDA_F32;
        row("gelu bwd + bias grad fused, bf16 in and out", shape, timed(b_gelu_bwd_bias, &a, 20), n * (4.0 + 2 + 2), 0, 0);
        a.ab = KT_CUDA_BF16;
        row("gelu bwd + bias grad fused, bf16 dy, in and out", shape, timed(b_gelu_bwd_bias, &a, 20), n * (2.0 + 2 + 2), 0, 0);
        free_args(&a);
    }
    {
        /* MLP fc1 of stage 1: (N*56*56, 96) x (384, 96)^T */
        int64_t M = NB * 56 * 56, K = 96, N = 384;
        char shape[64];
        snprintf(shape, sizeof shape, "(%lld, 96) x (96, 384)", (long long)M);
        double fl = 2.0 * M * N * K, by = 4.0 * (M * K + M * N);
        bargs a = {.a = dev_random(M * K), .b = dev_random(N * K), .c = dev((size_t)(M * N) * 4), .rows = M, .cols = N, .k = K, .tb = 1,
                   .ab = KT_CUDA_F32, .cty = KT_CUDA_F32};
        row("GEMM mlp.fc1 fp32", shape, timed(b_gemm, &a, 10), by, fl, peak_f32);
        kt_cuda_ctx_set_tf32(C, 1);
        row("GEMM mlp.fc1 tf32", shape, timed(b_gemm, &a, 10), by, fl, peak_tf32);
        kt_cuda_ctx_set_tf32(C, 0);
        a.ab = a.cty = KT_CUDA_BF16; /* the same buffers read as bf16: twice as many elements fit, timing only */
        row("GEMM mlp.fc1 bf16", shape, timed(b_gemm, &a, 10), by / 2, fl, peak_bf16);
        /* fc1 + bias + GELU in a bf16 step: bytes as the least it moves (x, bf16 pre-activation and
         * GELU output), so the two rows compare directly */
        a.d = dev(4096 + (size_t)N * 2);
        a.e = dev((size_t)(M * N) * 4);
        if (kt_cuda_ctx_memset(C, a.d, 0, 4096 + (size_t)N * 2)) die("memset");
        double by16 = 2.0 * (M * K + 2 * M * N);
        row("fc1 + bias + GELU, bf16: cuBLAS f32 out, then bias + GELU pass", shape, timed(b_fc1_cublas, &a, 10), by16, fl, peak_bf16);
        if (b_fc1_lt(&a) == 2) printf("| fc1 + bias + GELU, bf16: cuBLASLt bias epilogue, then GELU | %s | declined by cuBLASLt | | | | |\n", shape);
        else row("fc1 + bias + GELU, bf16: cuBLASLt bias epilogue, then GELU", shape, timed(b_fc1_lt, &a, 10), by16, fl, peak_bf16);
        free_args(&a);
    }
    {
        int64_t n = NB == 64 ? 28589128 : 100000; /* convnext_tiny parameters */
        bargs a = {.a = dev_random(n), .b = dev_random(n), .c = dev_random(n), .d = dev((size_t)n * 4), .n = n};
        if (kt_cuda_ctx_memset(C, a.d, 0, (size_t)n * 4)) die("memset");
        char shape[64];
        snprintf(shape, sizeof shape, "%.1fM parameters", (double)n / 1e6);
        row("AdamW (one launch)", shape, timed(b_adamw, &a, 20), 7.0 * n * 4, 0, 0);
        free_args(&a);
    }
    printf("\nGB/s counts the bytes each kernel must move at least (inputs read once, outputs written once);\n"
           "TFLOP/s counts 2 per multiply-add. Command: kt_gpu_bench kernels%s\n", NB != 64 ? " --smoke" : quick ? " --quick" : "");
    kt_cuda_ctx_destroy(C);
    return 0;
}

/* ---- model cases ---- */

static int cmd_model(int argc, char **argv) {
    int tf32 = 0, bf16 = 0, fp16 = 0, recompute = 0, profile = 0, plan_only = 0, warmup = 2, iters = 5, n_cases = 0, rc = 0;
    unsigned without = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tf32")) tf32 = 1;
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else if (!strcmp(argv[i], "--fp16")) fp16 = 1;
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (!strcmp(argv[i], "--recompute")) recompute = 1;
        else if (!strcmp(argv[i], "--plan-only")) plan_only = 1;
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--without") && i + 1 < argc) {
            kt_err ferr;
            if (kt_fusions_parse(argv[++i], &without, &ferr)) {
                fprintf(stderr, "kt_gpu_bench model: --without: %s\n", ferr.msg);
                return 2;
            }
        } else if (argv[i][0] == '-') {
            usage(stderr);
            return 2;
        }
    }
    if (iters < 1 || warmup < 0) {
        usage(stderr);
        return 2;
    }
    printf("| case | precision | median | images/s | TFLOP/s | device MiB | arena MiB |\n|---|---|---|---|---|---|---|\n");
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (strcmp(argv[i], "--tf32") && strcmp(argv[i], "--bf16") && strcmp(argv[i], "--fp16") && strcmp(argv[i], "--profile") &&
                strcmp(argv[i], "--recompute") && strcmp(argv[i], "--plan-only"))
                i++;
            continue;
        }
        kt_bench_case c;
        kt_bench_result r;
        kt_err err;
        n_cases++;
        if (kt_bench_case_parse(argv[i], &c, &err)) {
            fprintf(stderr, "kt_gpu_bench model: %s\n", err.msg);
            return 2;
        }
        c.device = KT_CUDA;
        c.tf32 = tf32;
        c.bf16 = bf16;
        c.fp16 = fp16;
        c.recompute = recompute;
        c.plan_only = plan_only;
        c.without_fusions = without;
        char prec[256], wo[160];
        kt_fusions_label(without, wo, sizeof wo);
        snprintf(prec, sizeof prec, "%s%s%s%s", bf16 ? "bf16 GEMMs" : fp16 ? "fp16 GEMMs" : tf32 ? "fp32 (TF32)" : "fp32",
                 recompute ? ", recompute" : "", without ? ", without " : "", wo);
        if (kt_bench_model_run_isolated(&c, warmup, iters, profile, &r, &err)) {
            printf("| %s | %s | failed: %s | | | | |\n", argv[i], prec, err.msg);
            rc = 1;
        } else if (plan_only) {
            printf("| %s | %s | (planned only) | | | %.0f | %.0f |\n\n```\n%s```\n\n", argv[i], prec, r.device_mb, r.arena_mb, r.profile);
        } else {
            printf("| %s | %s | %.2f ms | %.1f | %.2f | %.0f | %.0f |\n", argv[i], prec, r.median_s * 1e3,
                   r.imgs_per_s, r.gflops / 1e3, r.device_mb, r.arena_mb);
            if (profile) printf("\n```\n%s: time per op type, summed over %d steps\n%s```\n\n", argv[i], iters, r.profile);
        }
        fflush(stdout);
    }
    if (!n_cases) {
        usage(stderr);
        return 2;
    }
    if (plan_only) printf("\nplanned only: device MiB is what the plan allocates (parameters, gradients, AdamW moments, activations, inputs).\n");
    else printf("\nmedian of %d timed steps after %d warm-up; a training step is forward, loss, backward and AdamW.\n", iters, warmup);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "kernels")) return cmd_kernels(argc - 1, argv + 1);
    if (!strcmp(argv[1], "model")) return cmd_model(argc - 1, argv + 1);
    fprintf(stderr, "kt_gpu_bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
