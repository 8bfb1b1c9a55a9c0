/* Grad-CAM overlay drawn with cairo on the decoded photo. */
#include "serve/gradcam.h"

#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "datasets/image.h"
#include "datasets/resize.h"

static void jet(float t, float *r, float *g, float *b) {
    t = t < 0 ? 0 : (t > 1 ? 1 : t);
    *r = t < 0.35f ? 0 : (t < 0.66f ? (t - 0.35f) / 0.31f : (t < 0.89f ? 1 : 1 - (t - 0.89f) / 0.11f * 0.5f));
    *g = t < 0.125f ? 0 : (t < 0.375f ? (t - 0.125f) / 0.25f : (t < 0.64f ? 1 : (t < 0.91f ? 1 - (t - 0.64f) / 0.27f : 0)));
    *b = t < 0.11f ? 0.5f + t / 0.11f * 0.5f : (t < 0.34f ? 1 : (t < 0.65f ? 1 - (t - 0.34f) / 0.31f : 0));
}

/* bilinear sample of cam (h, w) at continuous cell coordinates (align_corners=False) */
static float sample(const float *cam, int h, int w, float y, float x) {
    y -= 0.5f;
    x -= 0.5f;
    y = y < 0 ? 0 : (y > h - 1 ? (float)(h - 1) : y);
    x = x < 0 ? 0 : (x > w - 1 ? (float)(w - 1) : x);
    int y0 = (int)y, x0 = (int)x, y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
    float fy = y - y0, fx = x - x0;
    return (1 - fy) * ((1 - fx) * cam[y0 * w + x0] + fx * cam[y0 * w + x1]) + fy * ((1 - fx) * cam[y1 * w + x0] + fx * cam[y1 * w + x1]);
}

static cairo_status_t write_fp(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, (FILE *)closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

kt_status kt_gradcam_write_png(const char *image_path, const float *cam, int h, int w, const char *label,
                               const char *out_png, kt_err *err) {
    kt_decoder dec;
    kt_image im;
    kt_resizer rz;
    kt_image_init(&im);
    kt_resizer_init(&rz);
    kt_status s = kt_decoder_init(&dec, err);
    if (s) return s;
    s = kt_image_load(&dec, image_path, NULL, &im, err);
    int W = 0, H = 0;
    uint8_t *rgb = NULL;
    if (!s) {
        float sc = 448.0f / (float)(im.w > im.h ? im.w : im.h);
        W = (int)(im.w * sc + 0.5f);
        H = (int)(im.h * sc + 0.5f);
        W = W < 1 ? 1 : W;
        H = H < 1 ? 1 : H;
        rgb = malloc((size_t)W * (size_t)H * 3);
        s = rgb ? kt_resize_rgb8(&rz, im.px, im.w, im.h, NULL, rgb, W, H, err) : kt_err_set(err, KT_ERR_NOMEM, "no memory");
    }
    float mx = 0;
    for (int i = 0; i < h * w; i++) mx = cam[i] > mx ? cam[i] : mx;
    int caption = 28;
    cairo_surface_t *sf = NULL;
    if (!s) {
        sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H + caption);
        if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) s = kt_err_set(err, KT_ERR_NOMEM, "cannot create a %dx%d picture", W, H);
    }
    if (!s) {
        cairo_surface_flush(sf);
        unsigned char *px = cairo_image_surface_get_data(sf);
        int stride = cairo_image_surface_get_stride(sf);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float t = mx > 0 ? sample(cam, h, w, (y + 0.5f) * h / H, (x + 0.5f) * w / W) / mx : 0;
                float r, g, b, a = 0.45f;
                jet(t, &r, &g, &b);
                const uint8_t *src = rgb + ((size_t)y * W + x) * 3;
                uint32_t R = (uint32_t)((1 - a) * src[0] + a * 255 * r), G = (uint32_t)((1 - a) * src[1] + a * 255 * g),
                         B = (uint32_t)((1 - a) * src[2] + a * 255 * b);
                *(uint32_t *)(px + (size_t)y * stride + (size_t)x * 4) = (R << 16) | (G << 8) | B;
            }
        cairo_surface_mark_dirty(sf);
        cairo_t *cr = cairo_create(sf);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_rectangle(cr, 0, H, W, caption);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
        cairo_set_font_size(cr, 15);
        char text[256];
        snprintf(text, sizeof text, "Grad-CAM: %s", label);
        cairo_move_to(cr, 8, H + 19);
        cairo_show_text(cr, text);
        cairo_destroy(cr);
        kt_atomic_file af;
        s = kt_atomic_open(&af, out_png, err);
        if (!s) {
            if (cairo_surface_write_to_png_stream(sf, write_fp, af.fp) != CAIRO_STATUS_SUCCESS) {
                kt_atomic_abort(&af);
                s = kt_err_set(err, KT_ERR_IO, "cannot write %s", out_png);
            } else {
                s = kt_atomic_commit(&af, err);
            }
        }
    }
    if (sf) cairo_surface_destroy(sf);
    free(rgb);
    kt_image_free(&im);
    kt_resizer_free(&rz);
    kt_decoder_free(&dec);
    return s;
}
