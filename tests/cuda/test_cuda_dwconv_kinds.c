/* Our depthwise kernel kinds (kt_cuda_dwkind) and the choice among them: every kind gives the
 * scalar kernels' bits, so AUTO, which times them per geometry, changes the speed only; a data
 * gradient summed in place is never timed (a second run would add it twice). */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_twin.h"
#include "engine/dtype.h"
#include "kt_test.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"

/* Every kind of depthwise kernel gives the scalar kernels' bits (each output's sums in one order):
 * forward (f32 out; bf16 out with the bf16 input copy), data gradient (with and without the gradient
 * add), weight gradient (f32 and bf16 input), on 7x7 shapes whose height and width leave partial
 * tiles, an unpadded 7x7 one (rows and columns of the window outside the image), 3x3 and 5x5 ones
 * (which the TILE and TAPS kinds do not take) and a channel count that is not a multiple of 4 (which
 * VEC4 and ROT4 do not take); output widths that leave ROT4's last group of K columns partial (13
 * and 5 for 7x7) and ones that fill it (9 for 3x3, 5 for 5x5). A kind a pass cannot take runs the
 * default there, also compared. */
#define DW_OUTS 7
KT_TEST(test_cuda_dwconv_kinds_same_bits) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_conv_shape shapes[] = {
        {.N = 2, .H = 10, .W = 13, .Ci = 40, .Co = 40, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 40, .Ho = 10, .Wo = 13},
        {.N = 1, .H = 11, .W = 9, .Ci = 8, .Co = 8, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 2, .pw = 1, .groups = 8, .Ho = 9, .Wo = 5},
        {.N = 1, .H = 6, .W = 17, .Ci = 37, .Co = 37, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 37, .Ho = 6, .Wo = 17},
        {.N = 1, .H = 7, .W = 9, .Ci = 136, .Co = 136, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 136, .Ho = 7, .Wo = 9},
        {.N = 2, .H = 8, .W = 7, .Ci = 12, .Co = 12, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 12, .Ho = 6, .Wo = 5}};
    const char *what[DW_OUTS] = {"forward",         "forward to bf16",      "its bf16 input copy",      "data gradient",
                                 "data gradient + add", "weight gradient", "weight gradient from bf16"};
    for (int k = 0; k < 5; k++) {
        const kt_conv_shape *cs = &shapes[k];
        int copy = kt_cuda_dwconv_can_copy_input(cs);
        int64_t nin = cs->N * cs->H * cs->W * cs->Ci, nout = cs->N * cs->Ho * cs->Wo * cs->Ci, nw = cs->Ci * cs->kh * cs->kw;
        const int64_t len[DW_OUTS] = {nout * 4, nout * 2, copy ? nin * 2 : 0, nin * 4, nin * 4, nw * 4, nw * 4};
        float *x = malloc((size_t)nin * 4), *w = malloc((size_t)nw * 4), *b = malloc((size_t)cs->Ci * 4), *dy = malloc((size_t)nout * 4);
        void *r[KT_CUDA_DW_KINDS][DW_OUTS];
        int ok = 1;
        for (int v = 0; v < KT_CUDA_DW_KINDS; v++)
            for (int o = 0; o < DW_OUTS; o++) ok &= (r[v][o] = malloc((size_t)len[o] + 1)) != NULL;
        uint16_t *x16 = malloc((size_t)nin * 2);
        KT_REQUIRE(x && w && b && dy && x16 && ok, "memory");
        unsigned seed = 81u + (unsigned)k;
        kt_twin_fill(x, nin, -1.0f, 1.0f, 0.0f, &seed);
        kt_twin_fill(w, nw, -0.3f, 0.3f, 0.0f, &seed);
        kt_twin_fill(b, cs->Ci, -0.5f, 0.5f, 0.0f, &seed);
        kt_twin_fill(dy, nout, -1.0f, 1.0f, 0.0f, &seed);
        for (int64_t i = 0; i < nin; i++) x16[i] = kt_f32_to_bf16(x[i]);
        size_t fs = kt_cuda_dwconv_scratch(cs), ws = kt_cuda_dwconv_bwd_weight_scratch(c, cs);
        float *dx = kt_twin_put(x, (size_t)nin * 4), *dw = kt_twin_put(w, (size_t)nw * 4), *db = kt_twin_put(b, (size_t)cs->Ci * 4);
        float *ddy = kt_twin_put(dy, (size_t)nout * 4), *dout = kt_twin_put(NULL, (size_t)nout * 4), *din = kt_twin_put(NULL, (size_t)nin * 4);
        float *dg = kt_twin_put(NULL, (size_t)nw * 4);
        void *dx16 = kt_twin_put(x16, (size_t)nin * 2), *dcopy = kt_twin_put(NULL, (size_t)nin * 2), *scr = kt_twin_put(NULL, fs > ws ? fs : ws);
        KT_REQUIRE(dx && dw && db && ddy && dout && din && dg && dx16 && dcopy && scr, "device buffers");
        /* 16-byte aligned buffers: VEC4 runs wherever C is a multiple of 4 */
        KT_REQUIRE((((uintptr_t)dx | (uintptr_t)db | (uintptr_t)ddy | (uintptr_t)dout | (uintptr_t)din | (uintptr_t)dx16 | (uintptr_t)dcopy |
                     (uintptr_t)scr) & 15) == 0,
                   "buffers not aligned for the 4-channel kernels");
        for (int v = KT_CUDA_DW_SCALAR; v < KT_CUDA_DW_KINDS; v++) {
            kt_cuda_ctx_set_dwconv_kernels(c, (kt_cuda_dwkind)v);
            char msg[256];
            KT_REQUIRE(!kt_cuda_memset(dout, 0xff, (size_t)nout * 4, msg, sizeof msg) && !kt_cuda_memset(din, 0xff, (size_t)nin * 4, msg, sizeof msg) &&
                           !kt_cuda_memset(dg, 0xff, (size_t)nw * 4, msg, sizeof msg) && !kt_cuda_memset(dcopy, 0xff, (size_t)nin * 2, msg, sizeof msg),
                       "poison: %s", msg);
            KT_CHECK(kt_cuda_dwconv_fwd(c, cs, dx, dw, db, dout, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(r[v][0], dout, (size_t)len[0]), "read back");
            KT_CHECK(kt_cuda_dwconv_fwd_ex(c, cs, dx, dw, db, dout, KT_CUDA_BF16, copy ? dcopy : NULL, KT_CUDA_BF16, scr) == 0, "%s",
                     kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(r[v][1], dout, (size_t)len[1]) && !kt_twin_get(r[v][2], dcopy, (size_t)len[2]), "read back");
            KT_CHECK(kt_cuda_dwconv_bwd_data(c, cs, ddy, dw, din, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(r[v][3], din, (size_t)len[3]), "read back");
            KT_CHECK(kt_cuda_dwconv_bwd_data_add(c, cs, ddy, dw, dx, din, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(r[v][4], din, (size_t)len[4]), "read back");
            KT_CHECK(kt_cuda_dwconv_bwd_weight(c, cs, ddy, dx, dg, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(r[v][5], dg, (size_t)len[5]), "read back");
            KT_CHECK(kt_cuda_dwconv_bwd_weight_x16(c, cs, ddy, dx16, KT_CUDA_BF16, dg, scr) == 0, "%s", kt_cuda_ctx_error(c));
            KT_REQUIRE(!kt_twin_get(r[v][6], dg, (size_t)len[6]), "read back");
        }
        kt_cuda_ctx_set_dwconv_kernels(c, KT_CUDA_DW_AUTO);
        /* every output written (the values are bounded against the CPU by the scalar kernels' own tests) */
        for (int o = 0; o < DW_OUTS; o++) {
            const unsigned char *p = r[KT_CUDA_DW_SCALAR][o];
            int64_t unwritten = 0, esz = o == 1 || o == 2 ? 2 : 4;
            for (int64_t i = 0; i + esz <= len[o]; i += esz) unwritten += p[i] == 0xff && p[i + 1] == 0xff && (esz == 2 || (p[i + 2] == 0xff && p[i + 3] == 0xff));
            KT_CHECK(unwritten == 0, "%lldx%lld, %s: %lld values left unwritten", (long long)cs->kh, (long long)cs->kw, what[o], (long long)unwritten);
        }
        for (int v = KT_CUDA_DW_VEC4; v < KT_CUDA_DW_KINDS; v++)
            for (int o = 0; o < DW_OUTS; o++)
                KT_CHECK(memcmp(r[v][o], r[KT_CUDA_DW_SCALAR][o], (size_t)len[o]) == 0, "%lldx%lld, %lld channels, %s: %s and scalar kernels differ",
                         (long long)cs->kh, (long long)cs->kw, (long long)cs->Ci, what[o], kt_cuda_dwkind_name((kt_cuda_dwkind)v));
        kt_cuda_free(dx), kt_cuda_free(dw), kt_cuda_free(db), kt_cuda_free(ddy), kt_cuda_free(dout), kt_cuda_free(din), kt_cuda_free(dg);
        kt_cuda_free(dx16), kt_cuda_free(dcopy), kt_cuda_free(scr);
        free(x), free(w), free(b), free(dy), free(x16);
        for (int v = 0; v < KT_CUDA_DW_KINDS; v++)
            for (int o = 0; o < DW_OUTS; o++) free(r[v][o]);
    }
}

/* dx = add + data gradient, summed in place (add == dx), with the context's current choice */
static int bwd_add_in_place(kt_cuda_ctx *c, const kt_conv_shape *s, const float *ddy, const float *dw, float *dsum, const float *add, float *out,
                            void *scr) {
    int64_t nin = s->N * s->H * s->W * s->Ci;
    char msg[256];
    if (kt_cuda_memcpy_h2d(dsum, add, (size_t)nin * 4, msg, sizeof msg)) return 1;
    if (kt_cuda_dwconv_bwd_data_add(c, s, ddy, dw, dsum, dsum, scr)) return 1;
    return kt_twin_get(out, dsum, (size_t)nin * 4);
}

/* AUTO times the kinds a call can take the first time it meets a geometry and pass, records the
 * fastest and keeps it; its outputs are the scalar kernels' bits. A data gradient summed in place
 * is never timed (its gradient is added exactly once) and takes the forward's choice, or the
 * default before one. A forced kind a call cannot take falls back. KT_CUDA_DWCONV names a kind
 * (a wrong name fails the context with the variable named); KT_CUDA_DWCONV_LOG=1 prints each timing. */
KT_TEST(test_cuda_dwconv_auto_chooses_once_per_geometry) {
    kt_cuda_ctx *c = kt_twin_ctx();
    /* a geometry no other test uses, so that no choice exists before (the suite may run in one process) */
    kt_conv_shape s = {.N = 2, .H = 9, .W = 13, .Ci = 44, .Co = 44, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 44, .Ho = 9, .Wo = 13};
    kt_conv_shape u = s; /* a second geometry, met first by an in-place data gradient */
    u.N = 1, u.H = u.Ho = 8, u.W = u.Wo = 6;
    int64_t n = s.N * s.H * s.W * s.Ci, nw = s.Ci * 49, nu = u.N * u.H * u.W * u.Ci;
    float *x = malloc((size_t)n * 4), *w = malloc((size_t)nw * 4), *dy = malloc((size_t)n * 4), *add = malloc((size_t)n * 4);
    float *ref[5], *got = malloc((size_t)n * 4);
    for (int i = 0; i < 5; i++) ref[i] = malloc((size_t)n * 4);
    KT_REQUIRE(x && w && dy && add && got && ref[4], "memory");
    unsigned seed = 7;
    kt_twin_fill(x, n, -1.0f, 1.0f, 0.0f, &seed);
    kt_twin_fill(w, nw, -0.3f, 0.3f, 0.0f, &seed);
    kt_twin_fill(dy, n, -1.0f, 1.0f, 0.0f, &seed);
    kt_twin_fill(add, n, -1.0f, 1.0f, 0.0f, &seed);
    size_t fs = kt_cuda_dwconv_scratch(&s), ws = kt_cuda_dwconv_bwd_weight_scratch(c, &s);
    float *dx = kt_twin_put(x, (size_t)n * 4), *dw = kt_twin_put(w, (size_t)nw * 4), *ddy = kt_twin_put(dy, (size_t)n * 4);
    float *dout = kt_twin_put(NULL, (size_t)(n + 4) * 4), *dsum = kt_twin_put(NULL, (size_t)n * 4); /* dout + 1: not 16-byte aligned */
    void *scr = kt_twin_put(NULL, fs > ws ? fs : ws);
    KT_REQUIRE(dx && dw && ddy && dout && dsum && scr, "device buffers");

    /* references: the scalar kernels */
    kt_cuda_ctx_set_dwconv_kernels(c, KT_CUDA_DW_SCALAR);
    KT_REQUIRE(!kt_cuda_dwconv_fwd(c, &s, dx, dw, NULL, dout, scr) && !kt_twin_get(ref[0], dout, (size_t)n * 4), "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_cuda_dwconv_bwd_data(c, &s, ddy, dw, dout, scr) && !kt_twin_get(ref[1], dout, (size_t)n * 4), "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!kt_cuda_dwconv_bwd_weight(c, &s, ddy, dx, dout, scr) && !kt_twin_get(ref[2], dout, (size_t)nw * 4), "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!bwd_add_in_place(c, &s, ddy, dw, dsum, add, ref[3], scr), "%s", kt_cuda_ctx_error(c));
    KT_REQUIRE(!bwd_add_in_place(c, &u, ddy, dw, dsum, add, ref[4], scr), "%s", kt_cuda_ctx_error(c));

    kt_cuda_ctx_set_dwconv_kernels(c, KT_CUDA_DW_AUTO);
    for (int p = 0; p < 3; p++) KT_CHECK(kt_cuda_dwconv_chosen(c, p, &s) == KT_CUDA_DW_AUTO, "pass %d chosen before any call", p);
    /* in place, before any forward of u: the default, nothing timed or recorded, added once */
    KT_REQUIRE(!bwd_add_in_place(c, &u, ddy, dw, dsum, add, got, scr), "%s", kt_cuda_ctx_error(c));
    KT_CHECK(memcmp(got, ref[4], (size_t)nu * 4) == 0, "in-place data gradient (no choice yet) differs from the scalar kernels'");
    KT_CHECK(kt_cuda_dwconv_chosen(c, 1, &u) == KT_CUDA_DW_AUTO, "an in-place data gradient was timed");

    for (int rep = 0; rep < 2; rep++) { /* the second round reuses the choices */
        KT_REQUIRE(!kt_cuda_dwconv_fwd(c, &s, dx, dw, NULL, dout, scr) && !kt_twin_get(got, dout, (size_t)n * 4), "%s", kt_cuda_ctx_error(c));
        KT_CHECK(memcmp(got, ref[0], (size_t)n * 4) == 0, "auto forward differs from the scalar kernels'");
        kt_cuda_dwkind f = kt_cuda_dwconv_chosen(c, 0, &s);
        KT_CHECK(f >= KT_CUDA_DW_SCALAR && f <= KT_CUDA_DW_TILE4X8, "forward: no kind recorded (%d)", (int)f);
        /* in place after the forward: the forward's choice, still not timed, added once */
        KT_REQUIRE(!bwd_add_in_place(c, &s, ddy, dw, dsum, add, got, scr), "%s", kt_cuda_ctx_error(c));
        KT_CHECK(memcmp(got, ref[3], (size_t)n * 4) == 0, "in-place data gradient (forward's choice) differs from the scalar kernels'");
        if (rep == 0) KT_CHECK(kt_cuda_dwconv_chosen(c, 1, &s) == KT_CUDA_DW_AUTO, "an in-place data gradient was timed");
        KT_REQUIRE(!kt_cuda_dwconv_bwd_data(c, &s, ddy, dw, dout, scr) && !kt_twin_get(got, dout, (size_t)n * 4), "%s", kt_cuda_ctx_error(c));
        KT_CHECK(memcmp(got, ref[1], (size_t)n * 4) == 0, "auto data gradient differs from the scalar kernels'");
        KT_CHECK(kt_cuda_dwconv_chosen(c, 1, &s) != KT_CUDA_DW_AUTO, "the data gradient was not timed");
        KT_REQUIRE(!kt_cuda_dwconv_bwd_weight(c, &s, ddy, dx, dout, scr) && !kt_twin_get(got, dout, (size_t)nw * 4), "%s", kt_cuda_ctx_error(c));
        KT_CHECK(memcmp(got, ref[2], (size_t)nw * 4) == 0, "auto weight gradient differs from the scalar kernels'");
        kt_cuda_dwkind g = kt_cuda_dwconv_chosen(c, 2, &s);
        KT_CHECK(g == KT_CUDA_DW_SCALAR || g == KT_CUDA_DW_VEC4 || g == KT_CUDA_DW_TAPS || g == KT_CUDA_DW_ROT4 || g == KT_CUDA_DW_ROT1,
                 "weight gradient: %s recorded",
                 kt_cuda_dwkind_name(g));
    }
    /* forced kinds a pass cannot take: the default instead */
    kt_cuda_ctx_set_dwconv_kernels(c, KT_CUDA_DW_TILE4X4);
    KT_REQUIRE(!kt_cuda_dwconv_bwd_weight(c, &s, ddy, dx, dout, scr) && !kt_twin_get(got, dout, (size_t)nw * 4), "%s", kt_cuda_ctx_error(c));
    KT_CHECK(memcmp(got, ref[2], (size_t)nw * 4) == 0, "forced tile4x4 weight gradient differs from the scalar kernels'");
    kt_cuda_ctx_set_dwconv_kernels(c, KT_CUDA_DW_TAPS);
    KT_REQUIRE(!kt_cuda_dwconv_fwd(c, &s, dx, dw, NULL, dout, scr) && !kt_twin_get(got, dout, (size_t)n * 4), "%s", kt_cuda_ctx_error(c));
    KT_CHECK(memcmp(got, ref[0], (size_t)n * 4) == 0, "forced taps forward differs from the scalar kernels'");
    kt_cuda_ctx_set_dwconv_kernels(c, KT_CUDA_DW_AUTO);

    /* names, and the environment */
    for (int k = 0; k < KT_CUDA_DW_KINDS; k++) {
        kt_cuda_dwkind back = KT_CUDA_DW_KINDS;
        KT_CHECK(!kt_cuda_dwkind_parse(kt_cuda_dwkind_name((kt_cuda_dwkind)k), &back) && back == (kt_cuda_dwkind)k, "kind %d: name round trip", k);
    }
    kt_cuda_dwkind none;
    KT_CHECK(kt_cuda_dwkind_parse("tile", &none) && kt_cuda_dwkind_parse("", &none), "unknown names accepted");
    kt_cuda_ctx *c2 = NULL;
    char msg[256] = "";
    setenv("KT_CUDA_DWCONV", "tile4x5", 1);
    KT_CHECK(kt_cuda_ctx_create(&c2, 0, msg, sizeof msg) != 0 && c2 == NULL && strstr(msg, "KT_CUDA_DWCONV=tile4x5") && strstr(msg, "taps"),
             "a wrong KT_CUDA_DWCONV: %s", msg);
    /* the log: one line per timing, naming every kind the forward can take */
    setenv("KT_CUDA_DWCONV", "auto", 1);
    setenv("KT_CUDA_DWCONV_LOG", "1", 1);
    char logp[4200];
    snprintf(logp, sizeof logp, "%s/dwconv.log", kt_test_tmpdir());
    int fd = open(logp, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(2);
    KT_REQUIRE(fd >= 0 && saved >= 0, "temporary log");
    fflush(stderr);
    dup2(fd, 2);
    int made = kt_cuda_ctx_create(&c2, 0, msg, sizeof msg) == 0;
    int again = 1;
    if (made) {
        kt_cuda_dwconv_fwd(c2, &s, dx, dw, NULL, dout, scr);
        bwd_add_in_place(c2, &u, ddy, dw, dsum, add, got, scr);
        kt_cuda_dwconv_fwd(c2, &s, dx, dw, NULL, dout, scr);
        /* an output VEC4 cannot take: the choice if it can, else the default; not timed again */
        again = kt_cuda_dwconv_fwd(c2, &s, dx, dw, NULL, dout + 1, scr) || kt_twin_get(got, dout + 1, (size_t)n * 4);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    unsetenv("KT_CUDA_DWCONV");
    unsetenv("KT_CUDA_DWCONV_LOG");
    KT_REQUIRE(made, "context with KT_CUDA_DWCONV=auto: %s", msg);
    KT_CHECK(!again && memcmp(got, ref[0], (size_t)n * 4) == 0, "forward into an unaligned output differs from the scalar kernels'");
    char log[2048] = "";
    ssize_t got_n = pread(fd, log, sizeof log - 1, 0);
    close(fd);
    log[got_n > 0 ? got_n : 0] = 0;
    int lines = 0;
    for (const char *p = log; (p = strchr(p, '\n')); p++) lines++;
    KT_CHECK(lines == 1 && strstr(log, "dwconv forward (2, 9, 13, 44) 7x7:") && strstr(log, "scalar") && strstr(log, "vec4") &&
                 strstr(log, "tile4x4") && strstr(log, "tile4x8") && !strstr(log, "taps") && !strstr(log, "rot") && strstr(log, " -> "),
             "expected one timing line naming the forward's four kinds (none for the in-place add or the unaligned call), got: %s", log);
    kt_cuda_ctx_destroy(c2);
    kt_cuda_free(dx), kt_cuda_free(dw), kt_cuda_free(ddy), kt_cuda_free(dout), kt_cuda_free(dsum), kt_cuda_free(scr);
    free(x), free(w), free(dy), free(add), free(got);
    for (int i = 0; i < 5; i++) free(ref[i]);
}

/* dw (C, 7, 7) in double on the host: the sum over every output position */
static void dw_wgrad_ref(const kt_conv_shape *s, const float *x, const float *dy, double *dw) {
    int64_t C = s->Ci;
    memset(dw, 0, sizeof(double) * (size_t)(C * 49));
    for (int64_t n = 0; n < s->N; n++)
        for (int64_t oy = 0; oy < s->Ho; oy++)
            for (int64_t ox = 0; ox < s->Wo; ox++)
                for (int64_t k = 0; k < 49; k++) {
                    int64_t iy = oy - s->ph + k / 7, ix = ox - s->pw + k % 7;
                    if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                    for (int64_t c = 0; c < C; c++)
                        dw[c * 49 + k] += (double)dy[((n * s->Ho + oy) * s->Wo + ox) * C + c] * x[((n * s->H + iy) * s->W + ix) * C + c];
                }
}

/* The weight gradient's first-stage thread target (KT_CUDA_DW_WGRAD_THREADS, a bench/gpu knob):
 * a small one gives row blocks of several rows (the default gives the small shapes of the other
 * tests one row a block), so here every kind sums multi-row blocks, in both layouts of channels;
 * each kind gives the scalar kernels' bits, and both targets the host's double sums within float
 * rounding. The scratch follows the target; bad values are refused naming the variable. */
KT_TEST(test_cuda_dwconv_wgrad_row_blocks_setting) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_conv_shape shapes[] = {
        {.N = 3, .H = 10, .W = 10, .Ci = 64, .Co = 64, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 64, .Ho = 10, .Wo = 10},
        {.N = 3, .H = 10, .W = 9, .Ci = 36, .Co = 36, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 36, .Ho = 10, .Wo = 9},
        {.N = 2, .H = 9, .W = 11, .Ci = 30, .Co = 30, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 30, .Ho = 9, .Wo = 11}};
    for (int k = 0; k < 3; k++) {
        const kt_conv_shape *cs = &shapes[k];
        int64_t nin = cs->N * cs->H * cs->W * cs->Ci, nw = cs->Ci * 49;
        float *x = malloc((size_t)nin * 4), *dy = malloc((size_t)nin * 4), *got = malloc((size_t)nw * 4), *first = malloc((size_t)nw * 4);
        double *ref = malloc(sizeof(double) * (size_t)nw);
        KT_REQUIRE(x && dy && got && first && ref, "memory");
        unsigned seed = 501u + (unsigned)k;
        kt_twin_fill(x, nin, -1.0f, 1.0f, 0.0f, &seed);
        kt_twin_fill(dy, nin, -1.0f, 1.0f, 0.0f, &seed);
        dw_wgrad_ref(cs, x, dy, ref);
        double scale = 0;
        for (int64_t i = 0; i < nw; i++) scale = fmax(scale, fabs(ref[i]));
        kt_cuda_ctx_set_dw_wgrad_threads(c, 0); /* the default */
        size_t big = kt_cuda_dwconv_bwd_weight_scratch(c, cs);
        kt_cuda_ctx_set_dw_wgrad_threads(c, 1024);
        size_t small = kt_cuda_dwconv_bwd_weight_scratch(c, cs);
        KT_CHECK(small < big, "shape %d: scratch %zu bytes at 1024 threads, %zu at the default", k, small, big);
        float *dx = kt_twin_put(x, (size_t)nin * 4), *ddy = kt_twin_put(dy, (size_t)nin * 4), *dg = kt_twin_put(NULL, (size_t)nw * 4);
        void *scr = kt_twin_put(NULL, big);
        KT_REQUIRE(dx && ddy && dg && scr, "device buffers");
        for (int target = 0; target < 2; target++) {
            kt_cuda_ctx_set_dw_wgrad_threads(c, target ? 1024 : 0);
            for (int v = KT_CUDA_DW_SCALAR; v < KT_CUDA_DW_KINDS; v++) {
                kt_cuda_ctx_set_dwconv_kernels(c, (kt_cuda_dwkind)v);
                KT_CHECK(kt_cuda_dwconv_bwd_weight(c, cs, ddy, dx, dg, scr) == 0, "%s", kt_cuda_ctx_error(c));
                KT_REQUIRE(!kt_twin_get(got, dg, (size_t)nw * 4), "read back");
                if (v == KT_CUDA_DW_SCALAR) {
                    memcpy(first, got, (size_t)nw * 4);
                    double worst = 0;
                    for (int64_t i = 0; i < nw; i++) worst = fmax(worst, fabs(got[i] - ref[i]));
                    KT_CHECK(worst <= 1e-5 * scale, "shape %d, %s target: %.3g off the host's sums (scale %.3g)", k, target ? "1024" : "default",
                             worst, scale);
                } else {
                    KT_CHECK(memcmp(got, first, (size_t)nw * 4) == 0, "shape %d, %s target: %s and scalar kernels differ", k,
                             target ? "1024" : "default", kt_cuda_dwkind_name((kt_cuda_dwkind)v));
                }
            }
        }
        kt_cuda_ctx_set_dwconv_kernels(c, KT_CUDA_DW_AUTO);
        kt_cuda_ctx_set_dw_wgrad_threads(c, 0);
        kt_cuda_free(dx), kt_cuda_free(ddy), kt_cuda_free(dg), kt_cuda_free(scr);
        free(x), free(dy), free(got), free(first), free(ref);
    }
    /* the environment, read when a context is made */
    static const char *const bad[] = {"abc", "0", "1023", "16777217", "4096x", "-4096"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kt_cuda_ctx *c2 = NULL;
        char msg[256] = "", want[64];
        setenv("KT_CUDA_DW_WGRAD_THREADS", bad[i], 1);
        snprintf(want, sizeof want, "KT_CUDA_DW_WGRAD_THREADS=%s", bad[i]);
        KT_CHECK(kt_cuda_ctx_create(&c2, 0, msg, sizeof msg) != 0 && c2 == NULL && strstr(msg, want) && strstr(msg, "1024 to 16777216"),
                 "'%s' accepted or unclear: %s", bad[i], msg);
        kt_cuda_ctx_destroy(c2);
    }
    setenv("KT_CUDA_DW_WGRAD_THREADS", "1024", 1);
    kt_cuda_ctx *c2 = NULL;
    char msg[256] = "";
    int made = kt_cuda_ctx_create(&c2, 0, msg, sizeof msg) == 0;
    unsetenv("KT_CUDA_DW_WGRAD_THREADS");
    KT_REQUIRE(made, "KT_CUDA_DW_WGRAD_THREADS=1024: %s", msg);
    kt_cuda_ctx_set_dw_wgrad_threads(c, 1024);
    KT_CHECK(kt_cuda_dwconv_bwd_weight_scratch(c2, &shapes[0]) == kt_cuda_dwconv_bwd_weight_scratch(c, &shapes[0]), "the variable sets the target");
    kt_cuda_ctx_set_dw_wgrad_threads(c, 0);
    kt_cuda_ctx_destroy(c2);
}

/* The weight gradient's second stage sums the row blocks' partials in one fixed order
 * (kt_cuda_dwconv_bwd_weight_sum), whatever kernel runs it. Partials of +-2^60 among small values
 * make that order visible in the float result (2^60 + 1 - 2^60 is 0 in double, 1 the other way
 * round), so the kernel must give the bits of the same order replayed on the host. */
KT_TEST(test_cuda_dwconv_wgrad_sum_order) {
    kt_cuda_ctx *c = kt_twin_ctx();
    const kt_conv_shape shapes[] = {
        {.N = 4, .H = 30, .W = 5, .Ci = 40, .Co = 40, .kh = 7, .kw = 7, .sh = 1, .sw = 1, .ph = 3, .pw = 3, .groups = 40, .Ho = 30, .Wo = 5},
        {.N = 1, .H = 9, .W = 6, .Ci = 70, .Co = 70, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 70, .Ho = 9, .Wo = 6}};
    for (int t = 0; t < 2; t++) {
        const kt_conv_shape *cs = &shapes[t];
        int64_t nb = kt_cuda_dwconv_bwd_weight_blocks(c, cs), khw = cs->kh * cs->kw, C = cs->Ci, np = nb * khw * C;
        KT_CHECK(nb > 32 || t == 1, "shape %d: %lld blocks, fewer than a warp's lanes (the test wants more)", t, (long long)nb);
        KT_REQUIRE((size_t)np * 4 <= kt_cuda_dwconv_bwd_weight_scratch(c, cs), "the partials fit the scratch");
        float *part = malloc((size_t)np * 4), *got = malloc((size_t)(khw * C) * 4);
        KT_REQUIRE(part && got, "memory");
        unsigned seed = 911u + (unsigned)t;
        kt_twin_fill(part, np, -1.0f, 1.0f, 0.0f, &seed);
        for (int64_t i = 0; i < np; i++) { /* about a third huge, of either sign */
            seed = seed * 1664525u + 1013904223u;
            if ((seed >> 16) % 3 == 0) part[i] = (seed >> 8 & 1) ? 0x1p60f : -0x1p60f;
        }
        void *dp = kt_twin_put(part, (size_t)np * 4);
        float *dg = kt_twin_put(NULL, (size_t)(khw * C) * 4);
        KT_REQUIRE(dp && dg, "device buffers");
        KT_CHECK(kt_cuda_dwconv_bwd_weight_sum(c, cs, dp, dg) == 0, "%s", kt_cuda_ctx_error(c));
        KT_REQUIRE(!kt_twin_get(got, dg, (size_t)(khw * C) * 4), "read back");
        int64_t bad = 0, nonzero = 0;
        for (int64_t k = 0; k < khw; k++)
            for (int64_t ch = 0; ch < C; ch++) {
                double lane[32];
                for (int l = 0; l < 32; l++) {
                    lane[l] = 0;
                    for (int64_t b = l; b < nb; b += 32) lane[l] += part[(b * khw + k) * C + ch];
                }
                for (int o = 16; o > 0; o >>= 1)
                    for (int l = 0; l < o; l++) lane[l] += lane[l + o];
                float want = (float)lane[0], have = got[ch * khw + k];
                nonzero += want != 0;
                if (memcmp(&want, &have, 4)) {
                    if (bad < 4) kt_test_fail(__FILE__, __LINE__, "shape %d, tap %lld, channel %lld: %.9g, the order's sum is %.9g", t, (long long)k, (long long)ch, have, want);
                    bad++;
                }
            }
        KT_CHECK(bad == 0, "shape %d: %lld of %lld weights not the fixed order's bits", t, (long long)bad, (long long)(khw * C));
        KT_CHECK(nonzero > khw * C / 2, "shape %d: only %lld nonzero sums (the fixture says little)", t, (long long)nonzero);
        kt_cuda_free(dp), kt_cuda_free(dg);
        free(part), free(got);
    }
}

#else /* no CUDA in this build: the tests exist and say so */

#define NO_CUDA(name) \
    KT_TEST(name) { kt_test_skip("no CUDA device: this build has no CUDA backend"); }
NO_CUDA(test_cuda_dwconv_kinds_same_bits)
NO_CUDA(test_cuda_dwconv_auto_chooses_once_per_geometry)
NO_CUDA(test_cuda_dwconv_wgrad_row_blocks_setting)
NO_CUDA(test_cuda_dwconv_wgrad_sum_order)

#endif
