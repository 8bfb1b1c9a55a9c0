/* The CPU depthwise convolution (forward, data gradient, weight gradient) against a double loop, on
 * shapes that take the channel-blocked tile kernels and on ones that do not: ConvNeXt's 7x7 at the
 * small late-stage sizes, an image tall and wide enough to be cut into several row bands, widths
 * that leave 1-3 pixels after the 4-pixel passes, 3x3/5x5 and an uneven kernel with uneven padding,
 * an image smaller than its kernel, one with no output at all. Outputs and scratch start as NaN, so
 * an element not written or a scratch value read before it is set shows; 1, 2 and 3 threads must
 * give the same bits. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/dwconv.h"
#include "kernels/cpu/dwconv_fast.h"
#include "kt_test.h"

typedef struct {
    int64_t N, H, W, C, kh, kw, ph, pw;
    const char *what;
} dw_case;

static const dw_case CASES[] = {
    {2, 9, 11, 16, 7, 7, 3, 3, "7x7, two images"},
    {3, 7, 7, 64, 7, 7, 3, 3, "7x7 at 7x7 (ConvNeXt's last stage): one 4-pixel pass and 3 left over"},
    {2, 14, 14, 32, 7, 7, 3, 3, "7x7 at 14x14: 2 left over"},
    {1, 70, 61, 16, 7, 7, 3, 3, "a 70x61 image: several row bands"},
    {2, 5, 6, 32, 3, 3, 1, 1, "3x3"},
    {1, 6, 5, 16, 5, 5, 2, 2, "5x5: 1 left over"},
    {2, 8, 9, 16, 4, 6, 1, 2, "4x6 kernel, padding 1 and 2"},
    {1, 3, 2, 32, 7, 7, 3, 3, "a 3x2 image under a 7x7 kernel"},
    {2, 6, 7, 24, 7, 7, 3, 3, "24 channels (not a multiple of 16)"},
    {1, 5, 5, 5, 3, 3, 1, 1, "5 channels (the generic kernel)"},
    {2, 6, 6, 16, 7, 7, 0, 0, "a 6x6 image under an unpadded 7x7 kernel: no output"},
};

static float *nan_buf(size_t n) {
    float *p = malloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n + 16; i++) p[i] = NAN;
    return p;
}

typedef struct {
    float *y, *dx, *dw;
} dw_out;

/* all three passes with `threads` threads; outputs and scratch poisoned first */
static dw_out run(const kt_conv_shape *s, const float *x, const float *w, const float *b, const float *dy, int threads) {
    size_t sz = kt_cpu_dwconv_scratch(s), szw = kt_cpu_dwconv_bwd_weight_scratch(s);
    size_t nin = (size_t)(s->N * s->H * s->W * s->Ci), nout = (size_t)(s->N * s->Ho * s->Wo * s->Ci);
    dw_out o = {nan_buf(nout), nan_buf(nin), nan_buf((size_t)(s->Ci * s->kh * s->kw))};
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    float *scr = nan_buf((sz > szw ? sz : szw) / sizeof(float) + 1);
    kt_cpu_dwconv_fwd(s, x, w, b, o.y, scr);
    free(scr), scr = nan_buf(sz / sizeof(float) + 1);
    kt_cpu_dwconv_bwd_data(s, dy, w, o.dx, scr);
    free(scr), scr = nan_buf(szw / sizeof(float) + 1);
    kt_cpu_dwconv_bwd_weight(s, dy, x, o.dw, scr);
    free(scr);
    omp_set_num_threads(saved);
    return o;
}

static void free_out(dw_out *o) { free(o->y), free(o->dx), free(o->dw); }

static double rel(double got, double ref) { return isnan(got) ? INFINITY : fabs(got - ref) / fmax(1.0, fabs(ref)); }

KT_TEST(test_cpu_dwconv_matches_a_double_loop) {
    int fast = 0;
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const dw_case *k = &CASES[ci];
        kt_conv_shape s = {.N = k->N, .H = k->H, .W = k->W, .Ci = k->C, .Co = k->C, .kh = k->kh, .kw = k->kw, .sh = 1, .sw = 1,
                           .ph = k->ph, .pw = k->pw, .groups = k->C};
        kt_conv_shape_finish(&s);
        fast += kt_dw_fast_ok(&s);
        int64_t C = s.Ci, nin = s.N * s.H * s.W * C, nout = s.N * s.Ho * s.Wo * C, khw = s.kh * s.kw;
        float *x = malloc(sizeof(float) * nin), *dy = malloc(sizeof(float) * nout), *w = malloc(sizeof(float) * C * khw);
        float *b = malloc(sizeof(float) * C);
        unsigned seed = 11 + (unsigned)ci;
        for (int64_t i = 0; i < nin; i++) x[i] = kt_test_frand(&seed);
        for (int64_t i = 0; i < nout; i++) dy[i] = kt_test_frand(&seed);
        for (int64_t i = 0; i < C * khw; i++) w[i] = kt_test_frand(&seed);
        for (int64_t i = 0; i < C; i++) b[i] = kt_test_frand(&seed);
        double *dw_ref = calloc((size_t)(C * khw), sizeof(double));
        dw_out o = run(&s, x, w, b, dy, 2);
        double ey = 0, edx = 0, edw = 0;
        for (int64_t n = 0; n < s.N; n++)
            for (int64_t oy = 0; oy < s.Ho; oy++)
                for (int64_t ox = 0; ox < s.Wo; ox++)
                    for (int64_t c = 0; c < C; c++) {
                        double acc = b[c];
                        for (int64_t ky = 0; ky < s.kh; ky++)
                            for (int64_t kx = 0; kx < s.kw; kx++) {
                                int64_t iy = oy - s.ph + ky, ix = ox - s.pw + kx;
                                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                                double xv = x[((n * s.H + iy) * s.W + ix) * C + c];
                                acc += xv * w[c * khw + ky * s.kw + kx];
                                dw_ref[c * khw + ky * s.kw + kx] += xv * dy[((n * s.Ho + oy) * s.Wo + ox) * C + c];
                            }
                        ey = fmax(ey, rel(o.y[((n * s.Ho + oy) * s.Wo + ox) * C + c], acc));
                    }
        for (int64_t n = 0; n < s.N; n++)
            for (int64_t iy = 0; iy < s.H; iy++)
                for (int64_t ix = 0; ix < s.W; ix++)
                    for (int64_t c = 0; c < C; c++) {
                        double acc = 0;
                        for (int64_t ky = 0; ky < s.kh; ky++)
                            for (int64_t kx = 0; kx < s.kw; kx++) {
                                int64_t oy = iy + s.ph - ky, ox = ix + s.pw - kx;
                                if (oy < 0 || oy >= s.Ho || ox < 0 || ox >= s.Wo) continue;
                                acc += (double)dy[((n * s.Ho + oy) * s.Wo + ox) * C + c] * w[c * khw + ky * s.kw + kx];
                            }
                        edx = fmax(edx, rel(o.dx[((n * s.H + iy) * s.W + ix) * C + c], acc));
                    }
        for (int64_t i = 0; i < C * khw; i++) edw = fmax(edw, rel(o.dw[i], dw_ref[i]));
        KT_CHECK(ey < 1e-5 && edx < 1e-5 && edw < 1e-5, "%s (%s kernel): relative error y %.3g, dx %.3g, dw %.3g", k->what,
                 kt_dw_fast_ok(&s) ? "tile" : "generic", ey, edx, edw);
        /* the same bits with 1 and 3 threads */
        for (int t = 1; t <= 3; t += 2) {
            dw_out q = run(&s, x, w, b, dy, t);
            KT_CHECK(!memcmp(q.y, o.y, sizeof(float) * nout) && !memcmp(q.dx, o.dx, sizeof(float) * nin) &&
                         !memcmp(q.dw, o.dw, sizeof(float) * C * khw),
                     "%s: %d threads give other bits than 2", k->what, t);
            free_out(&q);
        }
        free_out(&o);
        free(x), free(dy), free(w), free(b), free(dw_ref);
    }
    KT_CHECK(fast >= 6, "only %d of the cases took the tile kernels", fast);
}
