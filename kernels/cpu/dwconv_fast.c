/* Stride-1 depthwise convolution (the ConvNeXt 7x7 case), channel-blocked.
 *
 * In NHWC neighbouring pixels lie C floats apart. A kernel that walks pixels in NHWC touches lines
 * 1-4 KiB apart at C = 256..1024, all in one L1 set, so its tap loads went to L2: 3-13 GFLOP/s at
 * 14x14 and 7x7, where ConvNeXt spends most of its blocks. Here each task takes one image, one band
 * of output rows and VW channels, copies that slab zero-padded into a dense (rows, Wp, VW) tile
 * that stays in L1/L2, and runs passes of T output pixels of two rows over it. Tasks
 * are images x bands x channel blocks, so a 7x7 image still gives both cores work. The data
 * gradient is the same forward with rotated taps over dy. Bands and blocks depend on the shape
 * only, and every output sums its taps in one fixed order, so a thread count gives the same bits. */
#include "kernels/cpu/dwconv_fast.h"

#include <omp.h>
#include <string.h>

#if defined(__AVX512F__)
#define VW 16
#else
#define VW 8
#endif
#define T 4 /* output pixels per pass */
#define TILE_BYTES 65536 /* a tile's target size: an L2 share with room for dy and the partials */
#define MAX_TILES 256 /* tiles the scratch holds: threads beyond this wait (none on real machines) */

typedef float vf __attribute__((vector_size(VW * 4)));

static inline vf ld(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void st(float *p, vf v) { memcpy(p, &v, sizeof v); }

int kt_dw_fast_ok(const kt_conv_shape *s) {
    return s->sh == 1 && s->sw == 1 && s->Ci % VW == 0 && s->kw <= 7 && s->kh <= 7 && s->ph < s->kh && s->pw < s->kw;
}

/* One forward-shaped pass: source (N, Hs, Ws, C) padded by (pt, pl) into output (N, Ho, Wo, C). */
typedef struct {
    int64_t N, Hs, Ws, C, pt, pl, Ho, Wo;
    int kh, kw;
    int64_t Wp, band, nbands, CB, tasks, tile; /* tile: floats per tile */
} dw_plan;

static dw_plan make_plan(int64_t N, int64_t Hs, int64_t Ws, int64_t C, int64_t pt, int64_t pl, int64_t Ho, int64_t Wo, int kh,
                         int kw) {
    dw_plan p = {N, Hs, Ws, C, pt, pl, Ho, Wo, kh, kw, 0, 0, 0, 0, 0, 0};
    p.Wp = Wo + kw - 1;
    int64_t row_bytes = p.Wp * VW * (int64_t)sizeof(float);
    p.band = TILE_BYTES / row_bytes - (kh - 1); /* output rows whose input rows fill one tile */
    if (p.band < 4) p.band = 4;
    if (p.band > Ho) p.band = Ho;
    if (p.band < 1) p.band = 1;
    p.nbands = Ho > 0 ? (Ho + p.band - 1) / p.band : 1; /* an empty output still gets a well-formed plan */
    p.band = (Ho + p.nbands - 1) / p.nbands; /* even bands */
    p.CB = C / VW;
    p.tasks = N * p.nbands * p.CB;
    p.tile = (p.band + kh - 1) * p.Wp * VW;
    return p;
}

static int64_t plan_tiles(const dw_plan *p) { return p->tasks < MAX_TILES ? p->tasks : MAX_TILES; }

/* threads of a pass: no more than it has tiles (a tile per thread) */
static int tile_threads(const dw_plan *p) {
    int64_t t = plan_tiles(p), m = omp_get_max_threads();
    return (int)(m < t ? m : (t > 1 ? t : 1));
}

static dw_plan fwd_plan(const kt_conv_shape *s) {
    return make_plan(s->N, s->H, s->W, s->Ci, s->ph, s->pw, s->Ho, s->Wo, (int)s->kh, (int)s->kw);
}

/* the data gradient: dy (N, Ho, Wo) padded by k-1-p gives dx (N, H, W) */
static dw_plan data_plan(const kt_conv_shape *s) {
    return make_plan(s->N, s->Ho, s->Wo, s->Ci, s->kh - 1 - s->ph, s->kw - 1 - s->pw, s->H, s->W, (int)s->kh, (int)s->kw);
}

size_t kt_dw_fast_scratch(const kt_conv_shape *s, int weight_grad) {
    int64_t khw = s->kh * s->kw;
    dw_plan f = fwd_plan(s), d = data_plan(s);
    int64_t tiles = plan_tiles(&f) * f.tile, td = plan_tiles(&d) * d.tile;
    if (td > tiles) tiles = td;
    /* taps, tiles, and for the weight gradient one partial (kh, kw, VW) per task */
    return (size_t)(khw * s->Ci + tiles + (weight_grad ? f.tasks * khw * VW : 0)) * sizeof(float);
}

/* task -> image, band, channel block; band rows [*oy0, *oy1) */
static void task_of(const dw_plan *p, int64_t i, int64_t *n, int64_t *cb, int64_t *oy0, int64_t *oy1) {
    *cb = i % p->CB;
    int64_t nb = i / p->CB, b = nb % p->nbands;
    *n = nb / p->nbands;
    *oy0 = b * p->band;
    *oy1 = *oy0 + p->band < p->Ho ? *oy0 + p->band : p->Ho;
}

/* tile (oy1 - oy0 + kh - 1, Wp, VW) = channels cb*VW.. of source rows oy0 - pt.., zero outside */
static void fill_tile(const dw_plan *p, const float *src, float *t, int64_t n, int64_t cb, int64_t oy0, int64_t oy1) {
    for (int64_t py = 0; py < oy1 - oy0 + p->kh - 1; py++) {
        int64_t sy = oy0 + py - p->pt;
        float *tr = t + py * p->Wp * VW;
        if (sy < 0 || sy >= p->Hs) {
            memset(tr, 0, (size_t)(p->Wp * VW) * sizeof(float));
            continue;
        }
        const float *sr = src + ((n * p->Hs + sy) * p->Ws) * p->C + cb * VW;
        for (int64_t px = 0; px < p->Wp; px++) {
            int64_t sx = px - p->pl;
            st(tr + px * VW, sx >= 0 && sx < p->Ws ? ld(sr + sx * p->C) : (vf){0});
        }
    }
}

/* tq output pixels of one row (pixel stride C) from a tile (pixel stride VW): bias, then every tap
 * in (ky, kx) order */
static inline __attribute__((always_inline)) void fwd_pass(const float *row0, const float *w, vf bias, float *y, int64_t Wp,
                                                           int64_t C, const int kh, const int kw, const int tq) {
    vf acc[T];
    for (int q = 0; q < tq; q++) acc[q] = bias;
    for (int ky = 0; ky < kh; ky++) {
        const float *row = row0 + ky * Wp * VW;
        vf xv[T + 6] = {0};
#pragma GCC unroll 10
        for (int j = 0; j < tq + kw - 1; j++) xv[j] = ld(row + j * VW);
#pragma GCC unroll 7
        for (int kx = 0; kx < kw; kx++) {
            vf wv = ld(w + (ky * kw + kx) * VW);
#pragma GCC unroll 4
            for (int q = 0; q < tq; q++) acc[q] += xv[q + kx] * wv;
        }
    }
    for (int q = 0; q < tq; q++) st(y + q * C, acc[q]);
}

/* The same for two neighbouring output rows (row stride ys) at once: input row j is tap row j of
 * the first and j - 1 of the second, so each load feeds two sums and the 2 x tq sums are
 * independent (with tq alone each add waited on the one before it). Same taps, same order. */
static inline __attribute__((always_inline)) void fwd_pass2(const float *row0, const float *w, vf bias, float *y, int64_t ys,
                                                            int64_t Wp, int64_t C, const int kh, const int kw, const int tq) {
    vf a0[T], a1[T];
    for (int q = 0; q < tq; q++) a0[q] = a1[q] = bias;
    for (int kx = 0; kx < kw; kx++) {
        vf w0 = ld(w + kx * VW);
#pragma GCC unroll 4
        for (int q = 0; q < tq; q++) a0[q] += ld(row0 + (q + kx) * VW) * w0;
    }
    for (int j = 1; j < kh; j++) {
        const float *row = row0 + j * Wp * VW;
        for (int kx = 0; kx < kw; kx++) {
            vf w0 = ld(w + (j * kw + kx) * VW), w1 = ld(w + ((j - 1) * kw + kx) * VW);
#pragma GCC unroll 4
            for (int q = 0; q < tq; q++) {
                vf xq = ld(row + (q + kx) * VW);
                a0[q] += xq * w0;
                a1[q] += xq * w1;
            }
        }
    }
    const float *last = row0 + kh * Wp * VW;
    for (int kx = 0; kx < kw; kx++) {
        vf w1 = ld(w + ((kh - 1) * kw + kx) * VW);
#pragma GCC unroll 4
        for (int q = 0; q < tq; q++) a1[q] += ld(last + (q + kx) * VW) * w1;
    }
    for (int q = 0; q < tq; q++) st(y + q * C, a0[q]), st(y + ys + q * C, a1[q]);
}

/* one row (nr = 1) or two (nr = 2): 4-pixel passes, then one pass for the last 1-3 pixels */
#define KT_DW_ROW_PASS(tq)                                                                                              \
    (nr == 2 ? fwd_pass2(rows + ox * VW, w, bias, yr + ox * C, Wo * C, Wp, C, kh, kw, tq)                               \
             : fwd_pass(rows + ox * VW, w, bias, yr + ox * C, Wp, C, kh, kw, tq))
static inline __attribute__((always_inline)) void fwd_rows(const float *rows, const float *w, vf bias, float *yr, int64_t Wo,
                                                           int64_t Wp, int64_t C, const int kh, const int kw, const int nr) {
    int64_t ox = 0;
    for (; ox + T <= Wo; ox += T) KT_DW_ROW_PASS(T);
    switch (Wo - ox) { /* one accumulator chain per pixel alone is latency-bound */
    case 3: KT_DW_ROW_PASS(3); break;
    case 2: KT_DW_ROW_PASS(2); break;
    case 1: KT_DW_ROW_PASS(1); break;
    default: break;
    }
}
#undef KT_DW_ROW_PASS

/* wt: taps per channel block (CB, kh, kw, VW) */
static inline __attribute__((always_inline)) void fwd_core(const dw_plan *p, const float *src, const float *wt, const float *b,
                                                           float *y, float *tiles, const int kh, const int kw) {
    int nt = tile_threads(p);
    /* a tile per thread, reused task after task, so it stays in cache (a tile per task would
     * stream a padded copy of the whole input through memory) */
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < p->tasks; i++) {
        int64_t n, cb, oy0, oy1;
        task_of(p, i, &n, &cb, &oy0, &oy1);
        float *t = tiles + (int64_t)omp_get_thread_num() * p->tile;
        fill_tile(p, src, t, n, cb, oy0, oy1);
        const float *w = wt + cb * kh * kw * VW;
        vf bias = b ? ld(b + cb * VW) : (vf){0};
        int64_t Wo = p->Wo, Wp = p->Wp, C = p->C, oy = oy0;
        for (; oy + 1 < oy1; oy += 2)
            fwd_rows(t + (oy - oy0) * Wp * VW, w, bias, y + ((n * p->Ho + oy) * Wo) * C + cb * VW, Wo, Wp, C, kh, kw, 2);
        if (oy < oy1) fwd_rows(t + (oy - oy0) * Wp * VW, w, bias, y + ((n * p->Ho + oy) * Wo) * C + cb * VW, Wo, Wp, C, kh, kw, 1);
    }
}

/* compile-time kernel sizes for ConvNeXt's 7x7 and the common 3x3/5x5, so the tap loops unroll */
static void fwd_dispatch(const dw_plan *p, const float *src, const float *wt, const float *b, float *y, float *tiles) {
    if (p->kh == 7 && p->kw == 7) fwd_core(p, src, wt, b, y, tiles, 7, 7);
    else if (p->kh == 5 && p->kw == 5) fwd_core(p, src, wt, b, y, tiles, 5, 5);
    else if (p->kh == 3 && p->kw == 3) fwd_core(p, src, wt, b, y, tiles, 3, 3);
    else fwd_core(p, src, wt, b, y, tiles, p->kh, p->kw);
}

/* w (C, 1, kh, kw) -> (C/VW, kh, kw, VW); rotated by 180 degrees for the data gradient */
static void block_taps(const kt_conv_shape *s, const float *w, float *wt, int rotate) {
    int64_t kh = s->kh, kw = s->kw, khw = kh * kw;
    for (int64_t c = 0; c < s->Ci; c++) {
        float *dst = wt + (c / VW) * khw * VW + c % VW;
        for (int64_t k = 0; k < khw; k++) dst[k * VW] = w[c * khw + (rotate ? khw - 1 - k : k)];
    }
}

void kt_dw_fast_fwd(const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *scratch) {
    dw_plan p = fwd_plan(s);
    float *wt = scratch, *tiles = wt + s->kh * s->kw * s->Ci;
    block_taps(s, w, wt, 0);
    fwd_dispatch(&p, x, wt, b, y, tiles);
}

void kt_dw_fast_bwd_data(const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch) {
    dw_plan p = data_plan(s);
    float *wt = scratch, *tiles = wt + s->kh * s->kw * s->Ci;
    block_taps(s, w, wt, 1);
    fwd_dispatch(&p, dy, wt, NULL, dx, tiles);
}

/* Each task sums dy x x over its band into its own (kh, kw, VW) partial; dw is then the sum of the
 * partials over images and bands in order (double), per channel block. */
static inline __attribute__((always_inline)) void wgrad_core(const dw_plan *p, const float *x, const float *dy, float *tiles,
                                                             float *part, float *dw, const int kh, const int kw) {
    int nt = tile_threads(p);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < p->tasks; i++) {
        int64_t n, cb, oy0, oy1;
        task_of(p, i, &n, &cb, &oy0, &oy1);
        float *t = tiles + (int64_t)omp_get_thread_num() * p->tile, *pp = part + i * kh * kw * VW;
        fill_tile(p, x, t, n, cb, oy0, oy1);
        for (int k = 0; k < kh * kw; k++) st(pp + k * VW, (vf){0});
        int64_t Wo = p->Wo, Wp = p->Wp, C = p->C;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            const float *dr = dy + ((n * p->Ho + oy) * Wo) * C + cb * VW;
            for (int ky = 0; ky < kh; ky++) {
                const float *row = t + ((oy - oy0 + ky) * Wp) * VW;
                vf acc[7] = {0};
#pragma GCC unroll 2
                for (int64_t ox = 0; ox < Wo; ox++) {
                    vf d = ld(dr + ox * C);
#pragma GCC unroll 7
                    for (int kx = 0; kx < kw; kx++) acc[kx] += d * ld(row + (ox + kx) * VW);
                }
                for (int kx = 0; kx < kw; kx++) st(pp + (ky * kw + kx) * VW, ld(pp + (ky * kw + kx) * VW) + acc[kx]);
            }
        }
    }
    int64_t CB = p->CB, khw = kh * kw, parts = p->N * p->nbands;
#pragma omp parallel for schedule(static) if (parts * CB * khw * VW > 65536)
    for (int64_t cb = 0; cb < CB; cb++)
        for (int v = 0; v < VW; v++)
            for (int64_t k = 0; k < khw; k++) {
                double acc = 0;
                for (int64_t j = 0; j < parts; j++) acc += part[((j * CB + cb) * khw + k) * VW + v];
                dw[(cb * VW + v) * khw + k] = (float)acc;
            }
}

void kt_dw_fast_bwd_weight(const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *scratch) {
    dw_plan p = fwd_plan(s), d = data_plan(s);
    int64_t khw = s->kh * s->kw, tiles = plan_tiles(&p) * p.tile, td = plan_tiles(&d) * d.tile;
    float *t = (float *)scratch + khw * s->Ci, *part = t + (tiles > td ? tiles : td);
    if (p.kh == 7 && p.kw == 7) wgrad_core(&p, x, dy, t, part, dw, 7, 7);
    else if (p.kh == 3 && p.kw == 3) wgrad_core(&p, x, dy, t, part, dw, 3, 3);
    else wgrad_core(&p, x, dy, t, part, dw, p.kh, p.kw);
}
