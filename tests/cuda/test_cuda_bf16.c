/* 16-bit building blocks of mixed precision, kernel by kernel (the model-level bf16/fp16 steps are in
 * test_cuda_model.c), against CPU computations on the same 16-bit values (engine/dtype.h
 * conversions). Bounds, relative to scale:
 * conversions bit-exact; GEMM with f32 output 1e-5 (bf16 inputs are exact, fp32 accumulation); results
 * stored as bf16 1e-2 (one bf16 rounding is 2^-8 = 3.9e-3 relative). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "engine/dtype.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/norm.h"
#include "kt_test.h"

#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"

#define TOL_BF16 1e-2
#define TOL_F32_OUT 1e-5

static int upload(void *d, const void *h, size_t bytes) {
    char msg[256];
    return kt_cuda_memcpy_h2d(d, h, bytes, msg, sizeof msg);
}

/* random f32 values already on the bf16 grid: bf16 bits in b, their f32 values in f */
static void bf16_values(uint16_t *b, float *f, int64_t n, float lo, float hi, unsigned seed) {
    kt_twin_fill(f, n, lo, hi, 0.0f, &seed);
    for (int64_t i = 0; i < n; i++) {
        b[i] = kt_f32_to_bf16(f[i]);
        f[i] = kt_bf16_to_f32(b[i]);
    }
}

static double bf16_rel_err(const uint16_t *got, const float *ref, int64_t n) {
    float *g = malloc((size_t)n * sizeof(float));
    if (!g) return INFINITY;
    for (int64_t i = 0; i < n; i++) g[i] = kt_bf16_to_f32(got[i]);
    double r = kt_twin_rel_err(g, ref, n);
    free(g);
    return r;
}

/* GPU rounding f32 -> 16 bits against the CPU's (engine/dtype.h), bit for bit, on an output poisoned
 * with a NaN pattern no input rounds to: n = N takes the 4-wide kernel, N - 1 the scalar one. */
static void check_rounding(kt_cuda_ctx *c, const char *name, int (*gpu)(kt_cuda_ctx *, uint16_t *, const float *, int64_t),
                           const float *f, const uint16_t *want, float *df, uint16_t *db, int N) {
    uint16_t *poison = malloc((size_t)N * sizeof(uint16_t)), *got = malloc((size_t)N * sizeof(uint16_t));
    KT_REQUIRE(poison && got, "memory");
    for (int i = 0; i < N; i++) poison[i] = 0x7fc1;
    KT_REQUIRE(!upload(df, f, (size_t)N * sizeof(float)), "upload");
    for (int n = N; n >= N - 1; n--) {
        KT_REQUIRE(!upload(db, poison, (size_t)N * sizeof(uint16_t)), "poison");
        KT_CHECK(gpu(c, db, df, n) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(got, db, (size_t)N * sizeof(uint16_t)), "read back");
        int bad = 0;
        for (int i = 0; i < n; i++)
            if (got[i] != want[i] && bad++ < 5)
                kt_test_fail(__FILE__, __LINE__, "n=%d: f32 %.9g -> %s 0x%04x on the GPU, 0x%04x on the CPU", n, f[i], name, got[i],
                             want[i]);
        KT_CHECK(bad == 0, "n=%d: %d %s conversions differ or were not written", n, bad, name);
        for (int i = n; i < N; i++) KT_CHECK(got[i] == 0x7fc1, "n=%d: %s element %d past the end was written", n, name, i);
    }
    free(poison);
    free(got);
}

/* inputs: wide exponents (denormals included) and the special cases of both 16-bit types */
static float *rounding_inputs(int N) {
    float *f = malloc((size_t)N * sizeof(float));
    if (!f) return NULL;
    unsigned seed = 3;
    kt_twin_fill(f, N, -3.0f, 3.0f, 0.0f, &seed);
    for (int i = 0; i < 1024; i++) f[i] *= powf(2.0f, (float)(i % 80) - 40.0f);
    const float special[] = {0.0f, -0.0f, 1.0f, 1.00390625f /* bf16 tie: 1 + 2^-8 */, 1.01171875f /* bf16 tie, odd below */,
                             INFINITY, -INFINITY, 3.4028235e38f, 1e-40f, -1e-45f, 65504.0f /* f16 max */, 0.1f,
                             65520.0f /* f16: rounds to inf */, 1.00048828125f /* f16 tie: 1 + 2^-11 */, 5.96e-8f /* f16 subnormal */,
                             -2049.0f /* f16 tie, even below */};
    memcpy(f + N - 16, special, sizeof special);
    return f;
}

KT_TEST(test_cuda_bf16_conversions_match_cpu) {
    kt_cuda_ctx *c = kt_twin_ctx();
    enum { N = 4096 };
    float *f = rounding_inputs(N), *back = malloc(N * sizeof(float));
    uint16_t *want = malloc(N * sizeof(uint16_t));
    KT_REQUIRE(f && back && want, "memory");
    for (int i = 0; i < N; i++) want[i] = kt_f32_to_bf16(f[i]);
    float *df = kt_twin_put(f, N * sizeof(float));
    uint16_t *db = kt_twin_put(want, N * sizeof(uint16_t));
    KT_REQUIRE(df && db, "device buffers");
    check_rounding(c, "bf16", kt_cuda_f32_to_bf16, f, want, df, db, N);
    KT_REQUIRE(!upload(db, want, N * sizeof(uint16_t)), "upload");
    KT_CHECK(kt_cuda_bf16_to_f32(c, df, db, N) == 0, "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_twin_get(back, df, N * sizeof(float)), "read back");
    for (int i = 0; i < N; i++) KT_CHECK(memcmp(&back[i], &(float){kt_bf16_to_f32(want[i])}, 4) == 0, "bf16 -> f32 of 0x%04x", want[i]);
    kt_cuda_free(df);
    kt_cuda_free(db);
    free(f);
    free(back);
    free(want);
}

/* IEEE half rounding for the fp16 precision (round to nearest even, overflow to inf, subnormals). */
KT_TEST(test_cuda_f16_conversions_match_cpu) {
    kt_cuda_ctx *c = kt_twin_ctx();
    enum { N = 4096 };
    float *f = rounding_inputs(N);
    uint16_t *want = malloc(N * sizeof(uint16_t));
    KT_REQUIRE(f && want, "memory");
    for (int i = 0; i < N; i++) want[i] = kt_f32_to_f16(f[i]);
    float *df = kt_twin_put(f, N * sizeof(float));
    uint16_t *db = kt_twin_put(want, N * sizeof(uint16_t));
    KT_REQUIRE(df && db, "device buffers");
    check_rounding(c, "f16", kt_cuda_f32_to_f16, f, want, df, db, N);
    kt_cuda_free(df);
    kt_cuda_free(db);
    free(f);
    free(want);
}

/* C (M, N) = op(A) op(B) in double from the bf16 values */
static void ref_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            C[i * N + j] = (float)s;
        }
}

KT_TEST(test_cuda_bf16_gemm_fp32_accumulation) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const int64_t M = 37, N = 29, K = 200, batch = 3;
    int64_t na = batch * M * K, nb = batch * K * N, nc = batch * M * N;
    uint16_t *a = malloc((size_t)na * 2), *b = malloc((size_t)nb * 2), *cb = malloc((size_t)nc * 2);
    float *af = malloc((size_t)na * 4), *bf = malloc((size_t)nb * 4), *ref = malloc((size_t)nc * 4), *cf = malloc((size_t)nc * 4);
    KT_REQUIRE(a && b && cb && af && bf && ref && cf, "memory");
    bf16_values(a, af, na, -1, 1, 11);
    bf16_values(b, bf, nb, -1, 1, 12);
    void *da = kt_twin_put(a, (size_t)na * 2), *db = kt_twin_put(b, (size_t)nb * 2), *dc = kt_twin_put(cf, (size_t)nc * 4);
    KT_REQUIRE(da && db && dc, "device buffers");
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int64_t i = 0; i < batch; i++) ref_gemm(ta, tb, M, N, K, af + i * M * K, bf + i * K * N, ref + i * M * N);
            /* one product through kt_cuda_gemm, f32 out */
            KT_CHECK(kt_cuda_gemm(c, ta, tb, M, N, K, 1.0f, da, ta ? M : K, db, tb ? K : N, 0.0f, dc, N, KT_CUDA_BF16, KT_CUDA_F32) == 0,
                     "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(cf, dc, (size_t)(M * N) * 4), "read back");
            double r1 = kt_twin_rel_err(cf, ref, M * N);
            KT_CHECK(r1 <= TOL_F32_OUT, "bf16 GEMM ta=%d tb=%d, f32 out: %.3g of scale", ta, tb, r1);
            /* batched, bf16 out */
            KT_CHECK(kt_cuda_gemm_batched(c, ta, tb, batch, M, N, K, da, db, dc, KT_CUDA_BF16, KT_CUDA_BF16) == 0, "%s",
                     kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(cb, dc, (size_t)nc * 2), "read back");
            double r2 = bf16_rel_err(cb, ref, nc);
            KT_CHECK(r2 <= TOL_BF16, "batched bf16 GEMM ta=%d tb=%d, bf16 out: %.3g of scale", ta, tb, r2);
        }
    /* a leading dimension shorter than A's rows: cuBLAS refuses it (documented: INVALID_VALUE), the
     * error names the call and the shape, and the context goes on working */
    KT_CHECK(kt_cuda_gemm(c, 0, 0, M, N, K, 1.0f, da, K - 1, db, N, 0.0f, dc, N, KT_CUDA_BF16, KT_CUDA_F32) != 0 &&
                 strstr(kt_cuda_ctx_error(c), "cublasGemmEx (37 x 29 x 200)"),
             "lda %lld < K %lld accepted or unnamed: %s", (long long)(K - 1), (long long)K, kt_cuda_ctx_error(c));
    KT_CHECK(kt_cuda_gemm(c, 0, 0, M, N, K, 1.0f, da, K, db, N, 0.0f, dc, N, KT_CUDA_BF16, KT_CUDA_F32) == 0, "after a refused call: %s",
             kt_cuda_ctx_error(c));
    kt_cuda_free(da);
    kt_cuda_free(db);
    kt_cuda_free(dc);
    free(a), free(b), free(cb), free(af), free(bf), free(ref), free(cf);
}

KT_TEST(test_cuda_bf16_elementwise) {
    kt_cuda_ctx *c = kt_twin_ctx();
    enum { N = 10007 };
    uint16_t *x = malloc(N * 2), *y = malloc(N * 2), *out = malloc(N * 2);
    float *xf = malloc(N * 4), *yf = malloc(N * 4), *ref = malloc(N * 4);
    KT_REQUIRE(x && y && out && xf && yf && ref, "memory");
    bf16_values(x, xf, N, -4, 4, 21);
    bf16_values(y, yf, N, -2, 2, 22);
    uint16_t *dx = kt_twin_put(x, N * 2), *dy = kt_twin_put(y, N * 2), *dout = kt_twin_put(out, N * 2);
    KT_REQUIRE(dx && dy && dout, "device buffers");
    kt_act acts[4] = {KT_ACT_GELU, KT_ACT_RELU, KT_ACT_SILU, KT_ACT_SIGMOID};
    const char *names[4] = {"gelu", "relu", "silu", "sigmoid"};
    for (int a = 0; a < 4; a++) {
        kt_cpu_act_fwd(acts[a], ref, xf, N);
        KT_CHECK(kt_cuda_act_fwd_bf16(c, acts[a], dout, dx, N) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(out, dout, N * 2), "read back");
        double r = bf16_rel_err(out, ref, N);
        KT_CHECK(r <= TOL_BF16, "bf16 %s forward: %.3g of scale", names[a], r);
        kt_cpu_act_bwd(acts[a], ref, yf, xf, N); /* dy = y, v = x */
        KT_CHECK(kt_cuda_act_bwd_bf16(c, acts[a], dout, dy, dx, N) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(out, dout, N * 2), "read back");
        r = bf16_rel_err(out, ref, N);
        KT_CHECK(r <= TOL_BF16, "bf16 %s backward: %.3g of scale", names[a], r);
    }
    for (int i = 0; i < N; i++) ref[i] = xf[i] + yf[i];
    KT_CHECK(kt_cuda_add_bf16(c, dout, dx, dy, N) == 0, "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_twin_get(out, dout, N * 2), "read back");
    int exact = 1;
    for (int i = 0; i < N; i++) exact &= out[i] == kt_f32_to_bf16(ref[i]);
    KT_CHECK(exact, "bf16 add = one rounding of the f32 sum");
    kt_cuda_free(dx), kt_cuda_free(dy), kt_cuda_free(dout);
    free(x), free(y), free(out), free(xf), free(yf), free(ref);
}

KT_TEST(test_cuda_bf16_layernorm) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const int64_t rows = 300, C = 96;
    int64_t n = rows * C;
    uint16_t *x = malloc((size_t)n * 2), *dy = malloc((size_t)n * 2), *out = malloc((size_t)n * 2);
    float *xf = malloc((size_t)n * 4), *dyf = malloc((size_t)n * 4), *ref = malloc((size_t)n * 4), w[96], b[96];
    KT_REQUIRE(x && dy && out && xf && dyf && ref, "memory");
    bf16_values(x, xf, n, -2, 3, 31);
    bf16_values(dy, dyf, n, -1, 1, 32);
    unsigned seed = 33;
    kt_twin_fill(w, C, 0.5f, 1.5f, 0, &seed);
    kt_twin_fill(b, C, -0.5f, 0.5f, 0, &seed);
    uint16_t *dx_ = kt_twin_put(x, (size_t)n * 2), *ddy = kt_twin_put(dy, (size_t)n * 2), *dout = kt_twin_put(out, (size_t)n * 2);
    float *dw = kt_twin_put(w, sizeof w), *db = kt_twin_put(b, sizeof b);
    KT_REQUIRE(dx_ && ddy && dout && dw && db, "device buffers");
    kt_cpu_layernorm_fwd(ref, xf, w, b, rows, C, 1e-6f);
    KT_CHECK(kt_cuda_layernorm_fwd_bf16(c, dout, dx_, dw, db, rows, C, 1e-6f) == 0, "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_twin_get(out, dout, (size_t)n * 2), "read back");
    double r = bf16_rel_err(out, ref, n);
    KT_CHECK(r <= TOL_BF16, "bf16 layernorm forward: %.3g of scale", r);
    kt_cpu_layernorm_bwd_x(ref, dyf, xf, w, rows, C, 1e-6f);
    KT_CHECK(kt_cuda_layernorm_bwd_x_bf16(c, dout, ddy, dx_, dw, rows, C, 1e-6f) == 0, "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_twin_get(out, dout, (size_t)n * 2), "read back");
    r = bf16_rel_err(out, ref, n);
    KT_CHECK(r <= TOL_BF16, "bf16 layernorm backward (x): %.3g of scale", r);
    kt_cuda_free(dx_), kt_cuda_free(ddy), kt_cuda_free(dout), kt_cuda_free(dw), kt_cuda_free(db);
    free(x), free(dy), free(out), free(xf), free(dyf), free(ref);
}

/* The backend picks the bf16 GEMM by the nodes' dtypes: bf16 inputs, f32 output. */
KT_TEST(test_cuda_bf16_linear_node_dispatch) {
    kt_backend *be = kt_twin_backend();
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    const int64_t M = 21, K = 64, O = 17;
    kt_node *x = kt_input(&g, "x", KT_BF16, 2, (int64_t[]){M, K}), *w = kt_input(&g, "w", KT_BF16, 2, (int64_t[]){O, K});
    kt_node *y = kt_linear(&g, x, w, NULL);
    kt_keep(y);
    KT_REQUIRE_OK(kt_graph_plan(&g, be, NULL, &err), &err);
    uint16_t xb[21 * 64], wb[17 * 64];
    float xf[21 * 64], wf[17 * 64], ref[21 * 17], got[21 * 17];
    bf16_values(xb, xf, M * K, -1, 1, 41);
    bf16_values(wb, wf, O * K, -1, 1, 42);
    KT_REQUIRE_OK(be->upload(be, x->data, xb, sizeof xb, &err), &err);
    KT_REQUIRE_OK(be->upload(be, w->data, wb, sizeof wb, &err), &err);
    KT_REQUIRE_OK(kt_graph_forward(&g, &err), &err);
    KT_REQUIRE_OK(be->download(be, got, y->data, sizeof got, &err), &err);
    ref_gemm(0, 1, M, O, K, xf, wf, ref);
    double r = kt_twin_rel_err(got, ref, M * O);
    KT_CHECK(r <= TOL_F32_OUT, "bf16 linear node: %.3g of scale", r);
    kt_graph_free(&g);
}

#else /* no CUDA in this build: the tests exist and say so */

#define NO_CUDA(name) \
    KT_TEST(name) { kt_test_skip("no CUDA device: this build has no CUDA backend"); }
NO_CUDA(test_cuda_bf16_conversions_match_cpu)
NO_CUDA(test_cuda_f16_conversions_match_cpu)
NO_CUDA(test_cuda_bf16_gemm_fp32_accumulation)
NO_CUDA(test_cuda_bf16_elementwise)
NO_CUDA(test_cuda_bf16_layernorm)
NO_CUDA(test_cuda_bf16_linear_node_dispatch)

#endif
