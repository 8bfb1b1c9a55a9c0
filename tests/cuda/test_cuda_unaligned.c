/* Kernels with 16-byte (float4) or 8-byte (4 x 16-bit) vector paths take them only when every pointer
 * they would read or write that way is aligned for it. Arena tensors always are; a parameter or its
 * gradient after the 6-class head bias (24 bytes) is not. On the GPU a vector access through a
 * pointer the dispatch wrongly took as aligned stops the kernel ("misaligned address"); under the
 * emulator, UBSan's alignment check (run_emulated.sh) stops it the same way. This test runs each such
 * kernel with every buffer aligned, then with one buffer at a time (and all at once) moved off
 * alignment, and requires the same bits and every output element written (NaN poison). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "engine/dtype.h"
#include "kt_test.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"

enum { UA_IN, UA_OUT, UA_SCRATCH };
typedef struct ua_buf {
    int kind;  /* UA_IN (random values), UA_OUT (poisoned, compared), UA_SCRATCH (poisoned, aligned) */
    int esz;   /* 4: f32, 2: bf16 */
    int64_t n; /* elements, or bytes for scratch */
} ua_buf;
#define UA_MAX 8
typedef int (*ua_fn)(kt_cuda_ctx *c, void *const *p);
typedef struct ua_case {
    const char *name;
    ua_fn fn;
    int nb;
    ua_buf b[UA_MAX];
} ua_case;

/* (ROWS, C) with C a multiple of 4 (the vector paths' own condition), so alignment alone decides */
enum { ROWS = 6, C = 12, N = ROWS * C };
#define F(p) ((float *)(p))
#define H(p) ((uint16_t *)(p))
static const kt_conv_shape DW = {.N = 1, .H = 5, .W = 6, .Ci = 8, .Co = 8, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3,
                                 .groups = 8, .Ho = 5, .Wo = 6};

static int f_add(kt_cuda_ctx *c, void *const *p) { return kt_cuda_add(c, F(p[0]), F(p[1]), F(p[2]), N); }
static int f_mul(kt_cuda_ctx *c, void *const *p) { return kt_cuda_mul(c, F(p[0]), F(p[1]), F(p[2]), N); }
static int f_mul_bcast(kt_cuda_ctx *c, void *const *p) { return kt_cuda_mul_bcast(c, F(p[0]), F(p[1]), F(p[2]), ROWS, C); }
static int f_bias(kt_cuda_ctx *c, void *const *p) { return kt_cuda_bias(c, F(p[0]), F(p[1]), F(p[2]), ROWS, C); }
static int f_fill_rows(kt_cuda_ctx *c, void *const *p) { return kt_cuda_fill_rows(c, F(p[0]), F(p[1]), ROWS, C); }
static int f_gelu(kt_cuda_ctx *c, void *const *p) { return kt_cuda_act_fwd(c, KT_ACT_GELU, F(p[0]), F(p[1]), N); }
static int f_gelu_bwd(kt_cuda_ctx *c, void *const *p) { return kt_cuda_act_bwd(c, KT_ACT_GELU, F(p[0]), F(p[1]), F(p[2]), N); }
static int f_gelu_to_bf16(kt_cuda_ctx *c, void *const *p) { return kt_cuda_act_fwd_f32_to_bf16(c, KT_ACT_GELU, H(p[0]), F(p[1]), N); }
static int f_bias_gelu16(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_bias_gelu(c, F(p[0]), F(p[1]), p[2], KT_CUDA_BF16, p[3], KT_CUDA_BF16, ROWS, C);
}
static int f_bias_gelu32(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_bias_gelu(c, F(p[0]), F(p[1]), p[2], KT_CUDA_F32, p[3], KT_CUDA_F32, ROWS, C);
}
static int f_bias_store(kt_cuda_ctx *c, void *const *p) { return kt_cuda_bias_store(c, F(p[0]), F(p[1]), p[2], KT_CUDA_BF16, ROWS, C); }
static int f_gelu_x16(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_gelu_fwd_x16(c, p[0], KT_CUDA_BF16, p[1], KT_CUDA_BF16, N) || kt_cuda_gelu_fwd_x16(c, p[2], KT_CUDA_F32, p[1], KT_CUDA_BF16, N);
}
static int f_mul_bcast_a16(kt_cuda_ctx *c, void *const *p) { return kt_cuda_mul_bcast_a16(c, F(p[0]), H(p[1]), KT_CUDA_BF16, F(p[2]), ROWS, C); }
static int f_scale_add(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_scale_add(c, F(p[0]), p[1], KT_CUDA_F32, F(p[2]), F(p[3]), ROWS, C) ||
           kt_cuda_scale_add(c, F(p[4]), p[5], KT_CUDA_BF16, F(p[2]), F(p[3]), ROWS, C);
}
static int f_gelu_bwd_v16(kt_cuda_ctx *c, void *const *p) { return kt_cuda_gelu_bwd_v16(c, F(p[0]), F(p[1]), H(p[2]), KT_CUDA_BF16, N); }
static int f_act_bwd_colsum(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_act_bwd_colsum(c, KT_ACT_GELU, p[0], KT_CUDA_F32, p[1], KT_CUDA_F32, p[2], KT_CUDA_F32, ROWS, C, F(p[3]), p[7]) ||
           kt_cuda_act_bwd_colsum(c, KT_ACT_GELU, p[4], KT_CUDA_BF16, p[1], KT_CUDA_F32, p[5], KT_CUDA_BF16, ROWS, C, F(p[6]), p[7]);
}
static int f_reduce_rows(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_reduce_rows(c, F(p[0]), F(p[1]), ROWS, C, p[4]) || kt_cuda_mul_bcast_bwd(c, F(p[2]), F(p[1]), F(p[3]), ROWS, C, p[4]);
}
static int f_mul_bcast_bwd_a16(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_mul_bcast_bwd_a16(c, F(p[0]), F(p[1]), H(p[2]), KT_CUDA_BF16, ROWS, C, p[3]);
}
static int f_layer_scale_bwd(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_layer_scale_bwd(c, p[0], KT_CUDA_F32, F(p[1]), F(p[2]), p[3], KT_CUDA_F32, ROWS, C, F(p[4]), F(p[5]), p[7]) ||
           kt_cuda_layer_scale_bwd(c, p[6], KT_CUDA_BF16, F(p[1]), F(p[2]), p[3], KT_CUDA_F32, ROWS, C, NULL, NULL, p[7]);
}
static int f_layernorm_bwd(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_layernorm_bwd_fused(c, F(p[0]), p[1], KT_CUDA_F32, p[2], KT_CUDA_F32, F(p[3]), ROWS, C, 1e-6f, F(p[4]), F(p[5]), p[6]) ||
           kt_cuda_layernorm_bwd_wb(c, F(p[7]), F(p[1]), F(p[2]), ROWS, C, 1e-6f, p[6]);
}
static int f_dwconv(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_dwconv_fwd_ex(c, &DW, F(p[0]), F(p[1]), F(p[2]), p[3], KT_CUDA_BF16, p[4], KT_CUDA_BF16, p[7]) ||
           kt_cuda_dwconv_bwd_data_add(c, &DW, F(p[5]), F(p[1]), F(p[0]), F(p[6]), p[7]);
}
static int f_dwconv_w(kt_cuda_ctx *c, void *const *p) {
    return kt_cuda_dwconv_bwd_weight(c, &DW, F(p[0]), F(p[1]), F(p[2]), p[5]) ||
           kt_cuda_dwconv_bwd_weight_x16(c, &DW, F(p[0]), p[3], KT_CUDA_BF16, F(p[4]), p[5]);
}

/* One run: every buffer placed shift[i] bytes into an allocation of its size + shift[i] (so that it
 * ends where the allocation does: under the emulator with ASan a read past it is reported), inputs
 * copied in, the rest NaN bytes; the outputs read back into out[i]. Returns nonzero after a
 * reported failure. */
static int ua_run(kt_cuda_ctx *c, const ua_case *k, const void *const *host, const int *shift, void **out) {
    void *base[UA_MAX] = {0}, *p[UA_MAX];
    char msg[256];
    int bad = 0;
    for (int i = 0; i < k->nb && !bad; i++) {
        size_t bytes = (size_t)k->b[i].n * (k->b[i].kind == UA_SCRATCH ? 1 : (size_t)k->b[i].esz);
        size_t all = bytes + (size_t)shift[i];
        bad = kt_cuda_malloc(&base[i], all, msg, sizeof msg) || kt_cuda_memset(base[i], 0xff, all, msg, sizeof msg);
        p[i] = (char *)base[i] + shift[i];
        if (!bad && k->b[i].kind == UA_IN) bad = kt_cuda_memcpy_h2d(p[i], host[i], bytes, msg, sizeof msg);
    }
    if (bad) kt_test_fail(__FILE__, __LINE__, "%s: device buffers: %s", k->name, msg);
    if (!bad && k->fn(c, p)) {
        kt_test_fail(__FILE__, __LINE__, "%s: %s", k->name, kt_cuda_ctx_error(c));
        bad = 1;
    }
    for (int i = 0; i < k->nb && !bad; i++)
        if (k->b[i].kind == UA_OUT) bad = kt_twin_get(out[i], p[i], (size_t)k->b[i].n * (size_t)k->b[i].esz);
    for (int i = 0; i < k->nb; i++) kt_cuda_free(base[i]);
    return bad;
}

/* how many elements of an output are still the poison (or otherwise NaN) */
static int64_t ua_nans(const void *v, int esz, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (esz == 4) {
            float f;
            memcpy(&f, (const char *)v + 4 * i, 4);
            bad += isnan(f) != 0;
        } else {
            uint16_t h;
            memcpy(&h, (const char *)v + 2 * i, 2);
            bad += (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;
        }
    }
    return bad;
}

static void ua_check(kt_cuda_ctx *c, const ua_case *k, unsigned seed) {
    void *host[UA_MAX] = {0}, *ref[UA_MAX] = {0}, *got[UA_MAX] = {0};
    int ok = 1;
    for (int i = 0; i < k->nb; i++) {
        size_t bytes = (size_t)k->b[i].n * (k->b[i].kind == UA_SCRATCH ? 1 : (size_t)k->b[i].esz);
        if (k->b[i].kind == UA_IN) {
            float *f = malloc((size_t)k->b[i].n * 4);
            ok &= (host[i] = malloc(bytes)) != NULL && f != NULL;
            if (ok) {
                kt_twin_fill(f, k->b[i].n, -1.0f, 1.0f, 0.0f, &seed);
                if (k->b[i].esz == 4) memcpy(host[i], f, bytes);
                else
                    for (int64_t j = 0; j < k->b[i].n; j++) ((uint16_t *)host[i])[j] = kt_f32_to_bf16(f[j]);
            }
            free(f);
        }
        if (k->b[i].kind == UA_OUT) ok &= (ref[i] = malloc(bytes)) != NULL && (got[i] = malloc(bytes)) != NULL;
    }
    if (!ok) {
        kt_test_fail(__FILE__, __LINE__, "%s: host memory", k->name);
        goto done;
    }
    int shift[UA_MAX] = {0};
    if (ua_run(c, k, (const void *const *)host, shift, ref)) goto done;
    for (int i = 0; i < k->nb; i++)
        if (k->b[i].kind == UA_OUT) KT_CHECK(ua_nans(ref[i], k->b[i].esz, k->b[i].n) == 0, "%s: output %d not all written (aligned)", k->name, i);
    /* variants: buffer i alone one element off (4 or 2 bytes), then aligned to 8 but not 16 (f32) or
     * to 4 but not 8 (16-bit), then every non-scratch buffer one element off */
    for (int v = 0; v <= 2 * k->nb; v++) {
        int i = v / 2;
        if (v < 2 * k->nb && k->b[i].kind == UA_SCRATCH) continue;
        char what[64];
        for (int j = 0; j < k->nb; j++) shift[j] = 0;
        if (v == 2 * k->nb) {
            for (int j = 0; j < k->nb; j++) shift[j] = k->b[j].kind == UA_SCRATCH ? 0 : k->b[j].esz;
            snprintf(what, sizeof what, "every buffer one element off");
        } else {
            shift[i] = v % 2 == 0 ? k->b[i].esz : 2 * k->b[i].esz;
            snprintf(what, sizeof what, "buffer %d %d bytes off", i, shift[i]);
        }
        if (ua_run(c, k, (const void *const *)host, shift, got)) goto done;
        for (int j = 0; j < k->nb; j++)
            if (k->b[j].kind == UA_OUT)
                KT_CHECK(memcmp(got[j], ref[j], (size_t)k->b[j].n * (size_t)k->b[j].esz) == 0, "%s, %s: output %d differs from the aligned run",
                         k->name, what, j);
    }
done:
    for (int i = 0; i < k->nb; i++) free(host[i]), free(ref[i]), free(got[i]);
}

KT_TEST(test_cuda_vector_paths_unaligned_same_bits) {
    kt_cuda_ctx *c = kt_twin_ctx();
    size_t red = kt_cuda_reduce_rows_scratch(ROWS, C), ls = kt_cuda_layer_scale_bwd_scratch(ROWS, C),
           ln = kt_cuda_layernorm_bwd_fused_scratch(ROWS, C), lnwb = kt_cuda_layernorm_bwd_wb_scratch(ROWS, C);
    size_t dws = kt_cuda_dwconv_scratch(&DW), dww = kt_cuda_dwconv_bwd_weight_scratch(c, &DW);
    int64_t dn = DW.N * DW.H * DW.W * DW.Ci, dwn = DW.Ci * DW.kh * DW.kw;
    KT_REQUIRE(kt_cuda_dwconv_can_copy_input(&DW), "the depthwise shape must take the bf16 input copy");
#define O4(n) {UA_OUT, 4, n}
#define I4(n) {UA_IN, 4, n}
#define O2(n) {UA_OUT, 2, n}
#define I2(n) {UA_IN, 2, n}
#define S(n) {UA_SCRATCH, 1, (int64_t)(n)}
    const ua_case cases[] = {
        {"add", f_add, 3, {O4(N), I4(N), I4(N)}},
        {"mul", f_mul, 3, {O4(N), I4(N), I4(N)}},
        {"mul_bcast", f_mul_bcast, 3, {O4(N), I4(N), I4(C)}},
        {"bias", f_bias, 3, {O4(N), I4(N), I4(C)}},
        {"fill_rows", f_fill_rows, 2, {O4(N), I4(C)}},
        {"GELU", f_gelu, 2, {O4(N), I4(N)}},
        {"GELU backward", f_gelu_bwd, 3, {O4(N), I4(N), I4(N)}},
        {"GELU to bf16", f_gelu_to_bf16, 2, {O2(N), I4(N)}},
        {"bias+GELU to bf16", f_bias_gelu16, 4, {I4(N), I4(C), O2(N), O2(N)}},
        {"bias+GELU f32", f_bias_gelu32, 4, {I4(N), I4(C), O4(N), O4(N)}},
        {"bias store bf16", f_bias_store, 3, {I4(N), I4(C), O2(N)}},
        {"GELU of bf16", f_gelu_x16, 3, {O2(N), I2(N), O4(N)}},
        {"mul_bcast bf16 a", f_mul_bcast_a16, 3, {O4(N), I2(N), I4(C)}},
        {"scale+add", f_scale_add, 6, {O4(N), I4(N), I4(C), I4(N), O4(N), I2(N)}},
        {"GELU backward bf16 v", f_gelu_bwd_v16, 3, {O4(N), I4(N), I2(N)}},
        {"act backward + column sums", f_act_bwd_colsum, 8, {O4(N), I4(N), I4(N), O4(C), O2(N), I2(N), O4(C), S(red)}},
        {"column sums", f_reduce_rows, 5, {O4(C), I4(N), O4(C), I4(N), S(red)}},
        {"mul_bcast backward bf16 a", f_mul_bcast_bwd_a16, 4, {O4(C), I4(N), I2(N), S(red)}},
        {"layer scale backward", f_layer_scale_bwd, 8, {O4(N), I4(N), I4(C), I4(N), O4(C), O4(C), O2(N), S(ls)}},
        {"LayerNorm backward", f_layernorm_bwd, 8, {O4(N), I4(N), I4(N), I4(C), O4(2 * C), O4(C), S(ln > lnwb ? ln : lnwb), O4(2 * C)}},
        {"depthwise forward, data gradient + add", f_dwconv, 8, {I4(dn), I4(dwn), I4(DW.Ci), O2(dn), O2(dn), I4(dn), O4(dn), S(dws > dww ? dws : dww)}},
        {"depthwise weight gradient", f_dwconv_w, 6, {I4(dn), I4(dn), O4(dwn), I2(dn), O4(dwn), S(dws > dww ? dws : dww)}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) ua_check(c, &cases[k], 7u + (unsigned)k);
}

#else /* no CUDA in this build: the test exists and says so */
#define NO_CUDA(name) \
    KT_TEST(name) { kt_test_skip("no CUDA device: this build has no CUDA backend"); }
NO_CUDA(test_cuda_vector_paths_unaligned_same_bits)
#endif
