/* Pillow's BILINEAR resampling (libImaging/Resample.c) re-derived: the same coefficient
 * arithmetic in double, the same 22-bit fixed-point rounding, the same pass order, so the
 * uint8 result is bit-exact; then a torchvision-exact normalisation through a lookup table. */
#include "datasets/resize.h"

/* Bit-exactness needs Pillow's double rounding: no fused multiply-adds in the coefficients, even
 * if someone builds with -ffp-contract=fast (GCC's default outside strict ISO mode). */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define PRECISION_BITS (32 - 8 - 2)

const float kt_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float kt_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void kt_resizer_init(kt_resizer *rz) { memset(rz, 0, sizeof *rz); }

void kt_resizer_free(kt_resizer *rz) {
    free(rz->kx);
    free(rz->ky);
    free(rz->bx);
    free(rz->by);
    free(rz->tmp);
    free(rz->k8);
    free(rz->sx);
    memset(rz, 0, sizeof *rz);
}

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
    if (*cap >= n) return 1;
    void *q = realloc(*p, n * elem);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

static inline double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

static inline uint8_t clip8(int32_t in) {
    if (in >= (1 << PRECISION_BITS << 8)) return 255;
    if (in <= 0) return 0;
    return (uint8_t)(in >> PRECISION_BITS);
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. The double weights of one
 * output pixel are computed in a small stack row, then rounded to fixed point in place. */
static kt_status precompute(int in_size, float in0, float in1, int out_size, int32_t **kk, size_t *kcap,
                            int32_t **bounds, size_t *bcap, int *ksize_out, kt_err *err) {
    double scale, filterscale, support;
    filterscale = scale = (double)(in1 - in0) / out_size;
    if (filterscale < 1.0) filterscale = 1.0;
    support = 1.0 * filterscale;
    double ks = ceil(support) * 2 + 1;
    if (ks > (double)(1 << 20) || (double)out_size * ks > 1e9)
        return kt_err_set(err, KT_ERR_ARG, "resize from %d to %d pixels needs a filter of %.0f taps: too large",
                          in_size, out_size, ks);
    int ksize = (int)ks;
    if (!grow((void **)kk, kcap, (size_t)out_size * (size_t)ksize, sizeof(int32_t)) ||
        !grow((void **)bounds, bcap, (size_t)out_size * 2, sizeof(int32_t)))
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for resize coefficients (%d x %d)", out_size, ksize);
    double row_stack[512];
    double *row = ksize <= 512 ? row_stack : malloc((size_t)ksize * sizeof(double));
    if (!row) return kt_err_set(err, KT_ERR_NOMEM, "no memory for resize coefficients (%d taps)", ksize);
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax < 0) xmax = 0;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = bilinear_filter((x + xmin - center + 0.5) * ss);
            row[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) row[x] /= ww;
        int32_t *k = *kk + (size_t)xx * ksize;
        for (x = 0; x < ksize; x++) {
            double v = x < xmax ? row[x] : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        (*bounds)[xx * 2 + 0] = xmin;
        (*bounds)[xx * 2 + 1] = xmax;
    }
    if (row != row_stack) free(row);
    *ksize_out = ksize;
    return KT_OK;
}

/* The horizontal weights laid out for the SIMD pass: every output pixel reads a window of kw
 * (even) source pixels starting at sx[xx] (moved left near the right edge so the window stays in
 * the row), taps in pairs, each pair as 8 int32 (k0 k0 k0 0 k1 k1 k1 0) to multiply two RGB
 * pixels widened to (R G B 0) lanes. Zero weights pad the window. kw = 0: use the scalar pass. */
static kt_status expand_x(kt_resizer *rz, int in_size, int out_size, kt_err *err) {
    int kw = (rz->ksx + 1) & ~1;
    rz->kw = 0;
#if defined(__AVX2__)
    if (in_size < kw) return KT_OK;
    if (!grow((void **)&rz->k8, &rz->k8_cap, (size_t)out_size * kw * 4, sizeof(int32_t)) ||
        !grow((void **)&rz->sx, &rz->sx_cap, (size_t)out_size, sizeof(int32_t)))
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for resize coefficients (%d x %d)", out_size, kw);
    for (int xx = 0; xx < out_size; xx++) {
        int xmin = rz->bx[xx * 2], n = rz->bx[xx * 2 + 1];
        int start = xmin + kw > in_size ? in_size - kw : xmin, off = xmin - start;
        rz->sx[xx] = start;
        int32_t *k8 = rz->k8 + (size_t)xx * kw * 4;
        for (int j = 0; j < kw; j++) {
            int32_t w = j >= off && j - off < n ? rz->kx[(size_t)xx * rz->ksx + j - off] : 0;
            for (int c = 0; c < 4; c++) k8[j * 4 + c] = c < 3 ? w : 0;
        }
    }
    rz->kw = kw;
#else
    (void)in_size, (void)out_size, (void)err, (void)kw;
#endif
    return KT_OK;
}

static kt_status tables(kt_resizer *rz, int axis, int in_size, float lo, float hi, int out_size, kt_err *err) {
    float *key = axis ? rz->keyy : rz->keyx;
    if (key[0] == (float)in_size && key[1] == lo && key[2] == hi && key[3] == (float)out_size) return KT_OK;
    key[3] = 0; /* invalid until rebuilt */
    kt_status st = axis ? precompute(in_size, lo, hi, out_size, &rz->ky, &rz->ky_cap, &rz->by, &rz->by_cap, &rz->ksy, err)
                        : precompute(in_size, lo, hi, out_size, &rz->kx, &rz->kx_cap, &rz->bx, &rz->bx_cap, &rz->ksx, err);
    if (st != KT_OK) return st;
    if (axis == 0 && (st = expand_x(rz, in_size, out_size, err)) != KT_OK) return st;
    key[0] = (float)in_size;
    key[1] = lo;
    key[2] = hi;
    key[3] = (float)out_size;
    return KT_OK;
}

/* Rows [y0, y0 + rows) of src (stride sw*3) -> dst (rows, dw, 3). */
static void horizontal(const uint8_t *src, int sw, int y0, int rows, uint8_t *dst, int dw, const int32_t *kk,
                       const int32_t *bounds, int ksize) {
    for (int yy = 0; yy < rows; yy++) {
        const uint8_t *in = src + (size_t)(yy + y0) * sw * 3;
        uint8_t *out = dst + (size_t)yy * dw * 3;
        for (int xx = 0; xx < dw; xx++) {
            int xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
            const int32_t *k = kk + (size_t)xx * ksize;
            const uint8_t *p = in + (size_t)xmin * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < xmax; x++) {
                s0 += p[x * 3 + 0] * k[x];
                s1 += p[x * 3 + 1] * k[x];
                s2 += p[x * 3 + 2] * k[x];
            }
            out[xx * 3 + 0] = clip8(s0);
            out[xx * 3 + 1] = clip8(s1);
            out[xx * 3 + 2] = clip8(s2);
        }
    }
}

#if defined(__AVX2__)
/* The same sums as horizontal(), two source pixels per step in 8 int32 lanes (exact: integer
 * additions in any order give the same total). */
static void horizontal_avx2(const uint8_t *src, int sw, int sh, int y0, int rows, uint8_t *dst, int dw,
                            const int32_t *k8, const int32_t *sx, int kw) {
    const uint8_t *end = src + (size_t)sw * sh * 3;
    const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i pair01 = _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, -1, -1, -1, -1, /* pixel 0 */
                                            3, -1, -1, -1, 4, -1, -1, -1, 5, -1, -1, -1, -1, -1, -1, -1); /* pixel 1 */
    const __m256i pair23 = _mm256_setr_epi8(6, -1, -1, -1, 7, -1, -1, -1, 8, -1, -1, -1, -1, -1, -1, -1,
                                            9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1, -1, -1, -1, -1);
    const __m128i half = _mm_set1_epi32(1 << (PRECISION_BITS - 1));
    const __m128i zero = _mm_setzero_si128(), top = _mm_set1_epi32(255);
    for (int yy = 0; yy < rows; yy++) {
        const uint8_t *in = src + (size_t)(yy + y0) * sw * 3;
        uint8_t *out = dst + (size_t)yy * dw * 3;
        for (int xx = 0; xx < dw; xx++) {
            const uint8_t *p = in + (size_t)sx[xx] * 3;
            const int32_t *k = k8 + (size_t)xx * kw * 4;
            __m256i acc = _mm256_setzero_si256();
            __m256i acc2 = _mm256_setzero_si256();
            int j = 0;
            /* Four taps per step: one 16-byte load (12 bytes used) copied to both 128-bit lanes,
             * then one in-lane byte shuffle per pixel pair lands each channel zero-extended in
             * its own int32 lane. The 4 spare bytes must lie inside the image buffer. */
            for (; j + 4 <= kw && p + 16 <= end; j += 4, p += 12, k += 16) {
                __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
                __m256i a = _mm256_shuffle_epi8(raw, pair01);
                __m256i b = _mm256_shuffle_epi8(raw, pair23);
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(a, _mm256_loadu_si256((const __m256i *)k)));
                acc2 = _mm256_add_epi32(acc2, _mm256_mullo_epi32(b, _mm256_loadu_si256((const __m256i *)(k + 8))));
            }
            for (; j < kw; j += 2, p += 6, k += 8) {
                __m128i raw;
                if (p + 8 <= end) raw = _mm_loadl_epi64((const __m128i *)p);
                else raw = _mm_setr_epi8((char)p[0], (char)p[1], (char)p[2], (char)p[3], (char)p[4], (char)p[5], 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 0);
                __m256i a = _mm256_cvtepu8_epi32(_mm_shuffle_epi8(raw, spread));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(a, _mm256_loadu_si256((const __m256i *)k)));
            }
            acc = _mm256_add_epi32(acc, acc2);
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
            /* clip8: (s + half) >> 22 clamped to 0..255 is Pillow's clip8 of the rounded sum. */
            s = _mm_min_epi32(_mm_max_epi32(_mm_srai_epi32(_mm_add_epi32(s, half), PRECISION_BITS), zero), top);
            s = _mm_packus_epi16(_mm_packus_epi32(s, s), s);
            uint32_t rgb = (uint32_t)_mm_cvtsi128_si32(s);
            memcpy(out + xx * 3, &rgb, 3);
        }
    }
}
#endif

static void horizontal_any(const kt_resizer *rz, const uint8_t *src, int sw, int sh, int y0, int rows, uint8_t *dst,
                           int dw) {
#if defined(__AVX2__)
    if (rz->kw) {
        horizontal_avx2(src, sw, sh, y0, rows, dst, dw, rz->k8, rz->sx, rz->kw);
        return;
    }
#else
    (void)sh;
#endif
    horizontal(src, sw, y0, rows, dst, dw, rz->kx, rz->bx, rz->ksx);
}

/* src (.., w, 3) -> dst (dh, w, 3); bounds are relative to src's first row. Each output row
 * accumulates whole source rows so the inner loop runs over contiguous bytes. */
static void vertical(const uint8_t *src, int w, uint8_t *dst, int dh, const int32_t *kk, const int32_t *bounds,
                     int ksize) {
    const size_t stride = (size_t)w * 3;
    for (int yy = 0; yy < dh; yy++) {
        int ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
        const int32_t *k = kk + (size_t)yy * ksize;
        uint8_t *out = dst + (size_t)yy * stride;
        /* Blocks of 256 bytes keep the accumulator in registers / L1. */
        for (size_t x0 = 0; x0 < stride; x0 += 256) {
            int32_t acc[256];
            size_t n = stride - x0 < 256 ? stride - x0 : 256;
            for (size_t i = 0; i < n; i++) acc[i] = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) {
                const uint8_t *in = src + (size_t)(ymin + y) * stride + x0;
                int32_t ky = k[y];
                for (size_t i = 0; i < n; i++) acc[i] += in[i] * ky;
            }
            for (size_t i = 0; i < n; i++) out[x0 + i] = clip8(acc[i]);
        }
    }
}

kt_status kt_resize_rgb8(kt_resizer *rz, const uint8_t *src, int sw, int sh, const float *box, uint8_t *dst,
                         int dw, int dh, kt_err *err) {
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
        return kt_err_set(err, KT_ERR_ARG, "resize %dx%d -> %dx%d: sizes must be positive", sw, sh, dw, dh);
    float b[4] = {0, 0, (float)sw, (float)sh};
    if (box) memcpy(b, box, sizeof b);
    if (!(b[0] >= 0 && b[1] >= 0 && b[2] <= (float)sw && b[3] <= (float)sh && b[2] > b[0] && b[3] > b[1]))
        return kt_err_set(err, KT_ERR_ARG, "resize box (%g, %g, %g, %g) is not inside the %dx%d image", b[0], b[1],
                          b[2], b[3], sw, sh);
    int need_h = dw != sw || b[0] != 0 || b[2] != (float)dw;
    int need_v = dh != sh || b[1] != 0 || b[3] != (float)dh;
    kt_status st;
    if ((st = tables(rz, 0, sw, b[0], b[2], dw, err)) != KT_OK) return st;
    if ((st = tables(rz, 1, sh, b[1], b[3], dh, err)) != KT_OK) return st;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)sw * sh * 3);
        return KT_OK;
    }
    if (!need_h) {
        vertical(src, sw, dst, dh, rz->ky, rz->by, rz->ksy);
        return KT_OK;
    }
    int yfirst = rz->by[0];
    int ylast = rz->by[dh * 2 - 2] + rz->by[dh * 2 - 1];
    if (!need_v) {
        /* Pillow resamples only the rows it needs; with no vertical pass that is all of them. */
        horizontal_any(rz, src, sw, sh, 0, sh, dst, dw);
        return KT_OK;
    }
    int rows = ylast - yfirst;
    if (!grow((void **)&rz->tmp, &rz->tmp_cap, (size_t)rows * dw * 3, 1))
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for a %dx%d resize buffer", dw, rows);
    horizontal_any(rz, src, sw, sh, yfirst, rows, rz->tmp, dw);
    /* The vertical bounds are relative to the first row the horizontal pass produced. */
    for (int i = 0; i < dh; i++) rz->by[i * 2] -= yfirst;
    vertical(rz->tmp, dw, dst, dh, rz->ky, rz->by, rz->ksy);
    for (int i = 0; i < dh; i++) rz->by[i * 2] += yfirst;
    return KT_OK;
}

void kt_image_normalize(const uint8_t *src, int64_t n_px, const float mean[3], const float std[3], float *dst) {
    /* torchvision: ToTensor divides by 255 in float32, Normalize subtracts and divides in float32;
     * a table per channel gives those exact values at the cost of one load per byte. */
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
    for (int64_t i = 0; i < n_px; i++) {
        dst[i * 3 + 0] = lut[0][src[i * 3 + 0]];
        dst[i * 3 + 1] = lut[1][src[i * 3 + 1]];
        dst[i * 3 + 2] = lut[2][src[i * 3 + 2]];
    }
}
