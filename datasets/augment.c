/* Training augmentation and the evaluation transform. Geometry works on uint8 pixels (crop+resize
 * through the PIL-exact resizer, flips, rotation); colour jitter is one affine map per image fused
 * with the normalisation into float, so an image costs one pass over its output pixels. */
#include "datasets/augment.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

/* Counter slots of the per-image hash draws (fixed, so adding an op never shifts another's). */
enum {
    C_RRC = 0,
    C_RRC_TRY = 1,  /* 2 draws per attempt, 10 attempts: 1..20 */
    C_RRC_POS = 21, /* 21, 22 */
    C_HFLIP = 30,
    C_VFLIP,
    C_ROT,
    C_ROT_ANGLE,
    C_BC,
    C_BRIGHT,
    C_CONTRAST,
    C_HS,
    C_HUE,
    C_SAT
};

static void defaults_common(kt_aug_config *c, int size) {
    memset(c, 0, sizeof *c);
    c->out_w = c->out_h = size;
    memcpy(c->mean, kt_imagenet_mean, sizeof c->mean);
    memcpy(c->std, kt_imagenet_std, sizeof c->std);
    c->crop_pct = 1.0f;
    c->rrc_scale[0] = 0.25f;
    c->rrc_scale[1] = 1.0f;
    c->rrc_ratio[0] = 3.0f / 4.0f;
    c->rrc_ratio[1] = 4.0f / 3.0f;
}

void kt_aug_default_train(kt_aug_config *c, int size) {
    defaults_common(c, size);
    c->train = 1;
    c->rrc_p = 1.0f;
    c->hflip_p = 0.5f;
    c->rotate_p = 0.3f;
    c->rotate_deg = 15.0f;
    c->bc_p = 0.5f;
    c->brightness = 0.2f;
    c->contrast = 0.2f;
    c->hs_p = 0.3f;
    c->hue = 0.03f;
    c->saturation = 0.2f;
    c->fast_decode = 1;
}

void kt_aug_default_eval(kt_aug_config *c, int size) {
    defaults_common(c, size);
    c->train = 0;
}

#define IN(x, lo, hi) ((x) >= (lo) && (x) <= (hi)) /* false for NaN */

kt_status kt_aug_validate(const kt_aug_config *c, kt_err *err) {
    if (!IN(c->out_w, 8, 4096) || !IN(c->out_h, 8, 4096))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: output size %dx%d must be 8..4096 pixels a side", c->out_w,
                          c->out_h);
    for (int i = 0; i < 3; i++) {
        if (!IN(c->std[i], 1e-6f, 1e6f))
            return kt_err_set(err, KT_ERR_ARG, "augmentation: std[%d] = %g must be positive", i, c->std[i]);
        if (!IN(c->mean[i], -1e6f, 1e6f))
            return kt_err_set(err, KT_ERR_ARG, "augmentation: mean[%d] = %g is not a finite number", i, c->mean[i]);
    }
    if (c->max_pixels < 0)
        return kt_err_set(err, KT_ERR_ARG, "augmentation: max_pixels = %lld must be >= 0", (long long)c->max_pixels);
    if (!(c->crop_pct > 0 && c->crop_pct <= 1))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: crop_pct = %g must be in (0, 1]", c->crop_pct);
    struct {
        const char *name;
        float v;
    } probs[] = {{"rrc_p", c->rrc_p},       {"hflip_p", c->hflip_p}, {"vflip_p", c->vflip_p},
                 {"rotate_p", c->rotate_p}, {"bc_p", c->bc_p},       {"hs_p", c->hs_p}};
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++)
        if (!IN(probs[i].v, 0.0f, 1.0f))
            return kt_err_set(err, KT_ERR_ARG, "augmentation: %s = %g is not a probability in [0, 1]", probs[i].name,
                              probs[i].v);
    if (!(c->rrc_scale[0] > 0 && c->rrc_scale[0] <= c->rrc_scale[1] && c->rrc_scale[1] <= 1))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: rrc_scale = (%g, %g) needs 0 < lo <= hi <= 1",
                          c->rrc_scale[0], c->rrc_scale[1]);
    if (!(c->rrc_ratio[0] > 0 && c->rrc_ratio[0] <= c->rrc_ratio[1] && c->rrc_ratio[1] <= 100))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: rrc_ratio = (%g, %g) needs 0 < lo <= hi <= 100",
                          c->rrc_ratio[0], c->rrc_ratio[1]);
    if (!IN(c->rotate_deg, 0.0f, 180.0f))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: rotate_deg = %g must be in [0, 180]", c->rotate_deg);
    if (!IN(c->brightness, 0.0f, 1.0f))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: brightness = %g must be in [0, 1]", c->brightness);
    if (!IN(c->contrast, 0.0f, 1.0f))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: contrast = %g must be in [0, 1]", c->contrast);
    if (!IN(c->saturation, 0.0f, 1.0f))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: saturation = %g must be in [0, 1]", c->saturation);
    if (!IN(c->hue, 0.0f, 0.5f))
        return kt_err_set(err, KT_ERR_ARG, "augmentation: hue = %g must be in [0, 0.5] turns", c->hue);
    return KT_OK;
}

uint64_t kt_aug_key(uint64_t seed, int64_t epoch, int64_t item) {
    return kt_hash_u64(kt_hash_u64(seed ^ 0x6175676d656e74ull /* "augment" */, (uint64_t)epoch), (uint64_t)item);
}

static inline float draw(uint64_t key, int slot) { return kt_hash_uniform(key, (uint64_t)slot); }
static inline float draw_range(uint64_t key, int slot, float lo, float hi) { return lo + (hi - lo) * draw(key, slot); }

void kt_aug_sample(const kt_aug_config *c, uint64_t key, int src_w, int src_h, kt_aug_params *p) {
    memset(p, 0, sizeof *p);
    p->box[2] = (float)src_w;
    p->box[3] = (float)src_h;
    p->brightness = p->contrast = p->saturation = 1.0f;
    if (!c->train) return;
    if (c->rrc_p > 0 && draw(key, C_RRC) < c->rrc_p) {
        /* torchvision RandomResizedCrop.get_params: 10 tries, then a centre crop at the ratio limit. */
        double area = (double)src_w * src_h;
        double lr0 = log(c->rrc_ratio[0]), lr1 = log(c->rrc_ratio[1]);
        int w = 0, h = 0, found = 0;
        for (int t = 0; t < 10 && !found; t++) {
            double target = area * draw_range(key, C_RRC_TRY + 2 * t, c->rrc_scale[0], c->rrc_scale[1]);
            double ar = exp(lr0 + (lr1 - lr0) * draw(key, C_RRC_TRY + 2 * t + 1));
            w = (int)nearbyint(sqrt(target * ar));
            h = (int)nearbyint(sqrt(target / ar));
            found = w > 0 && w <= src_w && h > 0 && h <= src_h;
        }
        int x0, y0;
        if (found) {
            y0 = (int)(draw(key, C_RRC_POS) * (float)(src_h - h + 1));
            x0 = (int)(draw(key, C_RRC_POS + 1) * (float)(src_w - w + 1));
            if (y0 > src_h - h) y0 = src_h - h;
            if (x0 > src_w - w) x0 = src_w - w;
        } else {
            double in_ratio = (double)src_w / src_h;
            if (in_ratio < c->rrc_ratio[0]) {
                w = src_w;
                h = (int)nearbyint(w / c->rrc_ratio[0]);
            } else if (in_ratio > c->rrc_ratio[1]) {
                h = src_h;
                w = (int)nearbyint(h * c->rrc_ratio[1]);
            } else {
                w = src_w;
                h = src_h;
            }
            if (w < 1) w = 1;
            if (h < 1) h = 1;
            y0 = (src_h - h) / 2;
            x0 = (src_w - w) / 2;
        }
        p->box[0] = (float)x0;
        p->box[1] = (float)y0;
        p->box[2] = (float)(x0 + w);
        p->box[3] = (float)(y0 + h);
    }
    p->hflip = c->hflip_p > 0 && draw(key, C_HFLIP) < c->hflip_p;
    p->vflip = c->vflip_p > 0 && draw(key, C_VFLIP) < c->vflip_p;
    if (c->rotate_p > 0 && c->rotate_deg > 0 && draw(key, C_ROT) < c->rotate_p)
        p->angle_deg = draw_range(key, C_ROT_ANGLE, -c->rotate_deg, c->rotate_deg);
    if (c->bc_p > 0 && draw(key, C_BC) < c->bc_p) {
        p->brightness = draw_range(key, C_BRIGHT, 1 - c->brightness, 1 + c->brightness);
        p->contrast = draw_range(key, C_CONTRAST, 1 - c->contrast, 1 + c->contrast);
    }
    if (c->hs_p > 0 && draw(key, C_HS) < c->hs_p) {
        p->hue = draw_range(key, C_HUE, -c->hue, c->hue);
        p->saturation = draw_range(key, C_SAT, 1 - c->saturation, 1 + c->saturation);
    }
}

/* ---- context --------------------------------------------------------------------------------- */

kt_status kt_aug_ctx_init(kt_aug_ctx *x, kt_err *err) {
    memset(x, 0, sizeof *x);
    kt_image_init(&x->img);
    kt_resizer_init(&x->rz);
    return kt_decoder_init(&x->dec, err);
}

void kt_aug_ctx_free(kt_aug_ctx *x) {
    kt_decoder_free(&x->dec);
    kt_image_free(&x->img);
    kt_resizer_free(&x->rz);
    free(x->a);
    free(x->b);
    memset(x, 0, sizeof *x);
}

static int grow(uint8_t **p, size_t *cap, size_t n) {
    if (*cap >= n) return 1;
    uint8_t *q = realloc(*p, n);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

/* ---- geometry -------------------------------------------------------------------------------- */

static void flip_h(uint8_t *px, int w, int h) {
    for (int y = 0; y < h; y++) {
        uint8_t *r = px + (size_t)y * w * 3;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = r[a * 3 + c];
                r[a * 3 + c] = r[b * 3 + c];
                r[b * 3 + c] = t;
            }
    }
}

static void flip_v(uint8_t *px, int w, int h) {
    size_t row = (size_t)w * 3;
    for (int a = 0, b = h - 1; a < b; a++, b--) {
        uint8_t *ra = px + a * row, *rb = px + b * row;
        for (size_t i = 0; i < row; i++) {
            uint8_t t = ra[i];
            ra[i] = rb[i];
            rb[i] = t;
        }
    }
}

/* dst = src rotated by deg counter-clockwise about the image centre (PIL's convention), bilinear,
 * taps outside the image count as black. */
static void rotate(const uint8_t *src, uint8_t *dst, int w, int h, float deg) {
    double th = deg * (M_PI / 180.0), cs = cos(th), sn = sin(th);
    double cx = w * 0.5, cy = h * 0.5;
    for (int y = 0; y < h; y++) {
        /* Output pixel centre, rotated back into the source (counter-clockwise on screen, where
         * y grows downwards, is a clockwise turn of the sampling grid); stepping x adds (cs, sn). */
        double dy = y + 0.5 - cy, dx0 = 0.5 - cx;
        double sx = cs * dx0 - sn * dy + cx - 0.5, sy = sn * dx0 + cs * dy + cy - 0.5;
        for (int x = 0; x < w; x++, sx += cs, sy += sn) {
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            float fx = (float)(sx - x0), fy = (float)(sy - y0);
            float acc[3] = {0, 0, 0};
            for (int t = 0; t < 4; t++) {
                int xi = x0 + (t & 1), yi = y0 + (t >> 1);
                if (xi < 0 || yi < 0 || xi >= w || yi >= h) continue;
                float wt = ((t & 1) ? fx : 1 - fx) * ((t >> 1) ? fy : 1 - fy);
                const uint8_t *s = src + ((size_t)yi * w + xi) * 3;
                acc[0] += wt * s[0];
                acc[1] += wt * s[1];
                acc[2] += wt * s[2];
            }
            uint8_t *d = dst + ((size_t)y * w + x) * 3;
            for (int c = 0; c < 3; c++) {
                float v = acc[c] + 0.5f;
                d[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}

/* Pillow's resize makes its horizontal pass first, into (source rows x output width) pixels, and
 * the eval transform resizes to (rw x rh) before its crop: a 10 KB PNG of 1 x 5,000,000 pixels
 * passes the decode guard, then would take 3 GB and half a minute here (1 x 100M: 67 GB). Every
 * intermediate is held to the limit the decoded image is (max_pixels), which only refuses
 * absurd aspect ratios (over ~450:1 for a 224-pixel output). */
static kt_status check_resize(const kt_aug_config *c, const kt_image *src, int64_t dw, int64_t dh, kt_err *err) {
    int64_t lim = c->max_pixels > 0 ? c->max_pixels : KT_IMAGE_MAX_PIXELS_DEFAULT;
    int64_t need = (int64_t)src->h * dw > dw * dh ? (int64_t)src->h * dw : dw * dh;
    if (need <= lim && dw <= INT_MAX && dh <= INT_MAX) return KT_OK;
    double ar = src->w > src->h ? (double)src->w / src->h : (double)src->h / src->w;
    return kt_err_set(err, KT_ERR_FORMAT,
                      "a %dx%d image (aspect ratio %.0f:1) resized to %lldx%lld needs %.1f Mpx of intermediate "
                      "pixels, over the limit of %.1f Mpx: crop it to a sensible shape first",
                      src->w, src->h, ar, (long long)dw, (long long)dh, (double)need / 1e6, (double)lim / 1e6);
}

kt_status kt_aug_apply_u8(kt_aug_ctx *x, const kt_aug_config *c, const kt_aug_params *p, const kt_image *src,
                          uint8_t *dst, kt_err *err) {
    const int W = c->out_w, H = c->out_h;
    const size_t out_bytes = (size_t)W * H * 3;
    kt_status st;
    if (!c->train) {
        if (!c->center_crop) {
            if ((st = check_resize(c, src, W, H, err)) != KT_OK) return st;
            return kt_resize_rgb8(&x->rz, src->px, src->w, src->h, NULL, dst, W, H, err);
        }
        /* timm eval: Resize(floor(size / crop_pct)) then CenterCrop(size). A square size resizes the
         * shorter side (aspect kept, torchvision's int arithmetic); a non-square one resizes to the
         * scaled tuple exactly, as torchvision does for a (h, w) size. */
        int64_t rw, rh;
        if (W == H) {
            int64_t s = (int64_t)floorf((float)W / c->crop_pct);
            if (src->w <= src->h) rw = s, rh = s * src->h / src->w;
            else rh = s, rw = s * src->w / src->h;
        } else {
            rw = (int64_t)floorf((float)W / c->crop_pct);
            rh = (int64_t)floorf((float)H / c->crop_pct);
        }
        if (rw < W) rw = W;
        if (rh < H) rh = H;
        if ((st = check_resize(c, src, rw, rh, err)) != KT_OK) return st; /* also keeps rw, rh in int range */
        if (!grow(&x->a, &x->a_cap, (size_t)rw * rh * 3))
            return kt_err_set(err, KT_ERR_NOMEM, "no memory for a %lldx%lld eval resize", (long long)rw, (long long)rh);
        if ((st = kt_resize_rgb8(&x->rz, src->px, src->w, src->h, NULL, x->a, (int)rw, (int)rh, err)) != KT_OK) return st;
        int top = (int)nearbyint((rh - H) / 2.0), left = (int)nearbyint((rw - W) / 2.0);
        for (int y = 0; y < H; y++)
            memcpy(dst + (size_t)y * W * 3, x->a + ((size_t)(y + top) * rw + left) * 3, (size_t)W * 3);
        return KT_OK;
    }
    int rot = p->angle_deg != 0.0f;
    uint8_t *target = dst;
    if (rot) {
        if (!grow(&x->a, &x->a_cap, out_bytes)) return kt_err_set(err, KT_ERR_NOMEM, "no memory for augmentation");
        target = x->a;
    }
    float box[4];
    memcpy(box, p->box, sizeof box);
    if (box[2] > (float)src->w) box[2] = (float)src->w;
    if (box[3] > (float)src->h) box[3] = (float)src->h;
    if ((st = check_resize(c, src, W, H, err)) != KT_OK) return st;
    if ((st = kt_resize_rgb8(&x->rz, src->px, src->w, src->h, box, target, W, H, err)) != KT_OK) return st;
    if (p->hflip) flip_h(target, W, H);
    if (p->vflip) flip_v(target, W, H);
    if (rot) rotate(x->a, dst, W, H, p->angle_deg);
    return KT_OK;
}

/* ---- colour + normalisation ------------------------------------------------------------------ */

static void mat3_mul(const double a[3][3], const double b[3][3], double out[3][3]) {
    double r[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
    memcpy(out, r, sizeof r);
}

static void mat3_inv(const double m[3][3], double inv[3][3]) {
    double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                 m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
            inv[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
        }
}

void kt_aug_color_normalize(const kt_aug_config *c, const kt_aug_params *p, const uint8_t *src, int64_t n_px,
                            float *dst) {
    int colour = c->train && (p->brightness != 1.0f || p->contrast != 1.0f || p->saturation != 1.0f || p->hue != 0.0f);
    if (!colour) {
        kt_image_normalize(src, n_px, c->mean, c->std, dst);
        return;
    }
    static const double luma[3] = {0.299, 0.587, 0.114};
    double b = p->brightness, k = p->contrast, s = p->saturation;
    /* Contrast blends towards the mean grey of the (brightened) image, as torchvision does. */
    double m0 = 0;
    if (k != 1.0) {
        double sum = 0;
        for (int64_t i = 0; i < n_px; i++)
            sum += luma[0] * src[i * 3] + luma[1] * src[i * 3 + 1] + luma[2] * src[i * 3 + 2];
        m0 = sum / (double)(n_px > 0 ? n_px : 1);
    }
    double S[3][3], A[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) S[i][j] = (i == j ? s : 0.0) + (1 - s) * luma[j];
    /* Hue: a rotation of the chroma plane of YIQ. */
    static const double yiq[3][3] = {{0.299, 0.587, 0.114}, {0.596, -0.274, -0.322}, {0.211, -0.523, 0.312}};
    double th = p->hue * 2 * M_PI, R[3][3] = {{1, 0, 0}, {0, cos(th), -sin(th)}, {0, sin(th), cos(th)}}, Hm[3][3],
           yinv[3][3];
    mat3_inv(yiq, yinv);
    mat3_mul(R, yiq, Hm);
    mat3_mul(yinv, Hm, Hm);
    mat3_mul(Hm, S, A);
    float M[3][3], t[3], scale[3], bias[3];
    for (int i = 0; i < 3; i++) {
        double rowsum = 0;
        for (int j = 0; j < 3; j++) {
            M[i][j] = (float)(A[i][j] * k * b);
            rowsum += A[i][j];
        }
        t[i] = (float)(rowsum * (1 - k) * b * m0);
        scale[i] = 1.0f / (255.0f * c->std[i]);
        bias[i] = -c->mean[i] / c->std[i];
    }
    for (int64_t i = 0; i < n_px; i++) {
        float r = src[i * 3], g = src[i * 3 + 1], bl = src[i * 3 + 2];
        for (int ch = 0; ch < 3; ch++) {
            float v = M[ch][0] * r + M[ch][1] * g + M[ch][2] * bl + t[ch];
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            dst[i * 3 + ch] = v * scale[ch] + bias[ch];
        }
    }
}

/* ---- whole pipeline -------------------------------------------------------------------------- */

/* The context keeps its buffers for the next image, but not one outsized image's: a server or
 * loader thread that met one 100 Mpx upload would otherwise hold ~1 GB for the rest of its life. */
#define KEEP_BYTES ((size_t)64 << 20)
static void trim(void **p, size_t *cap) { /* cap in bytes */
    if (*cap <= KEEP_BYTES) return;
    free(*p);
    *p = NULL;
    *cap = 0;
}

static void trim_ctx(kt_aug_ctx *x) {
    if (x->img.cap > KEEP_BYTES) kt_image_free(&x->img);
    trim((void **)&x->rz.tmp, &x->rz.tmp_cap);
    trim((void **)&x->dec.tmp, &x->dec.tmp_cap);
    trim((void **)&x->a, &x->a_cap);
}

static kt_status aug_run(kt_aug_ctx *x, const kt_aug_config *c, uint64_t key, const uint8_t *data, size_t len,
                         float *dst, kt_err *err);

void kt_aug_ctx_trim(kt_aug_ctx *x) {
    trim_ctx(x);
    trim((void **)&x->dec.file, &x->dec.file_cap);
}

kt_status kt_aug_run(kt_aug_ctx *x, const kt_aug_config *c, uint64_t key, const uint8_t *data, size_t len,
                     float *dst, kt_err *err) {
    kt_status st = aug_run(x, c, key, data, len, dst, err);
    trim_ctx(x);
    return st;
}

static kt_status aug_run(kt_aug_ctx *x, const kt_aug_config *c, uint64_t key, const uint8_t *data, size_t len,
                         float *dst, kt_err *err) {
    kt_decode_opts dopt = {.max_pixels = c->max_pixels};
    kt_aug_params p;
    kt_status st;
    if (c->fast_decode && kt_image_sniff(data, len) == KT_IMG_JPEG) {
        /* Draw the crop on the full-size geometry, then let TurboJPEG shrink by 1/2..1/8 only as
         * far as the crop still covers at least the output size (no upsampling introduced). The
         * evaluation's crop is the whole image (or its centre), so a phone photo decodes at 1/8. */
        kt_image_header hdr;
        if ((st = kt_image_probe(&x->dec, data, len, &dopt, &hdr, err)) != KT_OK) return st;
        kt_aug_sample(c, key, hdr.w, hdr.h, &p);
        double bw = p.box[2] - p.box[0], bh = p.box[3] - p.box[1];
        dopt.min_w = (int)ceil(c->out_w * (double)hdr.w / bw);
        dopt.min_h = (int)ceil(c->out_h * (double)hdr.h / bh);
        if ((st = kt_image_decode(&x->dec, data, len, &dopt, &x->img, err)) != KT_OK) return st;
        if (x->img.w != hdr.w || x->img.h != hdr.h) {
            float sx = (float)x->img.w / hdr.w, sy = (float)x->img.h / hdr.h;
            p.box[0] *= sx, p.box[2] *= sx, p.box[1] *= sy, p.box[3] *= sy;
        }
    } else {
        if ((st = kt_image_decode(&x->dec, data, len, &dopt, &x->img, err)) != KT_OK) return st;
        kt_aug_sample(c, key, x->img.w, x->img.h, &p);
    }
    if (!grow(&x->b, &x->b_cap, (size_t)c->out_w * c->out_h * 3))
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for a %dx%d image", c->out_w, c->out_h);
    if ((st = kt_aug_apply_u8(x, c, &p, &x->img, x->b, err)) != KT_OK) return st;
    kt_aug_color_normalize(c, &p, x->b, (int64_t)c->out_w * c->out_h, dst);
    return KT_OK;
}

kt_status kt_aug_run_file(kt_aug_ctx *x, const kt_aug_config *c, uint64_t key, const char *path, float *dst,
                          kt_err *err) {
    const uint8_t *data;
    size_t len;
    kt_status st = kt_decoder_read_file(&x->dec, path, &data, &len, err);
    if (st != KT_OK) return st;
    st = kt_aug_run(x, c, key, data, len, dst, err);
    trim((void **)&x->dec.file, &x->dec.file_cap);
    if (st != KT_OK) kt_err_prefix(err, "%s: ", path);
    return st;
}
