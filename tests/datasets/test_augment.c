/* Augmentation: range validation, determinism by key, the eval path, each op's effect. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "datasets/augment.h"
#include "dstest.h"
#include "kt_test.h"

KT_TEST(test_aug_validation_names_field_and_value) {
    kt_aug_config c;
    kt_err err = {0};
    kt_aug_default_train(&c, 224);
    KT_CHECK_OK(kt_aug_validate(&c, &err), &err);
    kt_aug_default_eval(&c, 224);
    KT_CHECK_OK(kt_aug_validate(&c, &err), &err);
    struct {
        const char *field, *value;
        void (*set)(kt_aug_config *);
    } cases[] = {
        {"hflip_p", "1.5", NULL}, {"rrc_scale", "0.9, 0.5", NULL}, {"rrc_ratio", "0, 1", NULL},
        {"rotate_deg", "200", NULL}, {"brightness", "-0.1", NULL}, {"hue", "0.7", NULL},
        {"std[1]", "0", NULL}, {"crop_pct", "1.2", NULL}, {"output size", "4x224", NULL}, {"saturation", "nan", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_aug_default_train(&c, 224);
        switch (i) {
        case 0: c.hflip_p = 1.5f; break;
        case 1: c.rrc_scale[0] = 0.9f, c.rrc_scale[1] = 0.5f; break;
        case 2: c.rrc_ratio[0] = 0.0f; break;
        case 3: c.rotate_deg = 200; break;
        case 4: c.brightness = -0.1f; break;
        case 5: c.hue = 0.7f; break;
        case 6: c.std[1] = 0; break;
        case 7: c.crop_pct = 1.2f; break;
        case 8: c.out_w = 4; break;
        case 9: c.saturation = NAN; break;
        }
        kt_status st = kt_aug_validate(&c, &err);
        KT_CHECK(st == KT_ERR_ARG && strstr(err.msg, cases[i].field) && strstr(err.msg, cases[i].value),
                 "case %zu: want '%s' and '%s' in: %s", i, cases[i].field, cases[i].value, err.msg);
    }
}

/* A 200x150 picture with a diagonal ramp and noise, JPEG-encoded. */
static uint8_t *test_jpeg(size_t *len, uint8_t **rgb_out) {
    const int W = 200, H = 150;
    uint8_t *px = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = px + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(x * 255 / W);
            p[1] = (uint8_t)(y * 255 / H);
            p[2] = (uint8_t)(((x / 10 + y / 10) % 2) * 200 + 20);
        }
    uint8_t *j = dst_jpeg(px, W, H, TJPF_RGB, TJSAMP_444, 95, len);
    if (rgb_out) *rgb_out = px;
    else free(px);
    return j;
}

KT_TEST(test_aug_same_key_same_output_any_context) {
    size_t len;
    uint8_t *jpg = test_jpeg(&len, NULL);
    kt_aug_config c;
    kt_aug_default_train(&c, 64);
    c.rotate_p = c.bc_p = c.hs_p = 1.0f;
    kt_err err = {0};
    kt_aug_ctx a, b;
    KT_REQUIRE_OK(kt_aug_ctx_init(&a, &err), &err);
    KT_REQUIRE_OK(kt_aug_ctx_init(&b, &err), &err);
    size_t n = 64 * 64 * 3;
    float *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float)), *o3 = malloc(n * sizeof(float));
    uint64_t k1 = kt_aug_key(7, 3, 11), k2 = kt_aug_key(7, 4, 11);
    KT_CHECK_OK(kt_aug_run(&a, &c, k1, jpg, len, o1, &err), &err);
    KT_CHECK_OK(kt_aug_run(&a, &c, k2, jpg, len, o3, &err), &err); /* dirty the context in between */
    KT_CHECK_OK(kt_aug_run(&b, &c, k1, jpg, len, o2, &err), &err);
    KT_CHECK(memcmp(o1, o2, n * sizeof(float)) == 0, "same key must give identical output");
    KT_CHECK(memcmp(o1, o3, n * sizeof(float)) != 0, "another epoch must give another augmentation");
    kt_aug_params p1, p2;
    kt_aug_sample(&c, k1, 200, 150, &p1);
    kt_aug_sample(&c, k1, 200, 150, &p2);
    KT_CHECK(memcmp(&p1, &p2, sizeof p1) == 0, "sampling is a pure function of the key");
    free(o1), free(o2), free(o3), free(jpg);
    kt_aug_ctx_free(&a);
    kt_aug_ctx_free(&b);
}

KT_TEST(test_aug_eval_is_resize_then_normalize) {
    size_t len;
    uint8_t *jpg = test_jpeg(&len, NULL);
    kt_err err = {0};
    kt_aug_ctx x;
    KT_REQUIRE_OK(kt_aug_ctx_init(&x, &err), &err);
    kt_aug_config c;
    kt_aug_default_eval(&c, 48);
    float *out = malloc(48 * 48 * 3 * sizeof(float)), *want = malloc(48 * 48 * 3 * sizeof(float));
    KT_CHECK_OK(kt_aug_run(&x, &c, 123, jpg, len, out, &err), &err);
    /* Reference: decode, resize whole image to 48x48, normalise. */
    kt_image im;
    kt_image_init(&im);
    kt_decoder dec;
    kt_resizer rz;
    kt_resizer_init(&rz);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    KT_REQUIRE_OK(kt_image_decode(&dec, jpg, len, NULL, &im, &err), &err);
    uint8_t *u8 = malloc(48 * 48 * 3);
    KT_REQUIRE_OK(kt_resize_rgb8(&rz, im.px, im.w, im.h, NULL, u8, 48, 48, &err), &err);
    kt_image_normalize(u8, 48 * 48, kt_imagenet_mean, kt_imagenet_std, want);
    KT_CHECK(memcmp(out, want, 48 * 48 * 3 * sizeof(float)) == 0, "eval output must equal resize + normalise");
    /* Another key changes nothing in eval. */
    KT_CHECK_OK(kt_aug_run(&x, &c, 999, jpg, len, want, &err), &err);
    KT_CHECK(memcmp(out, want, 48 * 48 * 3 * sizeof(float)) == 0, "eval must not depend on the key");
    /* Centre crop: shorter side 150 -> floor(48 / 0.75) = 64, so 85x64, crop x from round(37/2) = 18. */
    c.center_crop = 1;
    c.crop_pct = 0.75f;
    uint8_t *got = malloc(48 * 48 * 3), *big = malloc(85 * 64 * 3);
    kt_aug_params p;
    kt_aug_sample(&c, 0, im.w, im.h, &p);
    KT_CHECK_OK(kt_aug_apply_u8(&x, &c, &p, &im, got, &err), &err);
    KT_REQUIRE_OK(kt_resize_rgb8(&rz, im.px, im.w, im.h, NULL, big, 85, 64, &err), &err);
    int same = 1;
    for (int y = 0; y < 48 && same; y++) same = !memcmp(got + y * 48 * 3, big + ((y + 8) * 85 + 18) * 3, 48 * 3);
    KT_CHECK(same, "centre crop must be resize(85x64) then the centre 48x48 (top 8, left 18)");
    free(out), free(want), free(u8), free(got), free(big), free(jpg);
    kt_image_free(&im);
    kt_decoder_free(&dec);
    kt_resizer_free(&rz);
    kt_aug_ctx_free(&x);
}

KT_TEST(test_aug_ops_flip_rotate_colour) {
    kt_err err = {0};
    kt_aug_ctx x;
    KT_REQUIRE_OK(kt_aug_ctx_init(&x, &err), &err);
    const int S = 32;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_image_reserve(&im, S, S, &err), &err);
    memset(im.px, 0, (size_t)S * S * 3);
    /* A bright 4x4 block right of centre, at rows 14..17, cols 24..27. */
    for (int y = 14; y < 18; y++)
        for (int xx = 24; xx < 28; xx++) memset(im.px + ((size_t)y * S + xx) * 3, 250, 3);
    kt_aug_config c;
    kt_aug_default_train(&c, S);
    kt_aug_params p = {.box = {0, 0, (float)S, (float)S}, .brightness = 1, .contrast = 1, .saturation = 1};
    uint8_t *out = malloc((size_t)S * S * 3);
    p.hflip = 1;
    KT_CHECK_OK(kt_aug_apply_u8(&x, &c, &p, &im, out, &err), &err);
    KT_CHECK(out[(15 * S + 5) * 3] == 250 && out[(15 * S + 25) * 3] == 0, "hflip moves the block to the left");
    p.hflip = 0;
    p.vflip = 1;
    KT_CHECK_OK(kt_aug_apply_u8(&x, &c, &p, &im, out, &err), &err);
    KT_CHECK(out[(15 * S + 25) * 3] == 250 && out[(16 * S + 25) * 3] == 250, "vflip of rows 14..17 keeps 14..17");
    p.vflip = 0;
    p.angle_deg = 90;
    KT_CHECK_OK(kt_aug_apply_u8(&x, &c, &p, &im, out, &err), &err);
    /* Counter-clockwise by 90: right of centre goes above centre (rows 4..7, cols 14..17). */
    KT_CHECK(out[(5 * S + 15) * 3] > 200 && out[(15 * S + 25) * 3] < 50, "rotation +90 is counter-clockwise: %d %d",
             out[(5 * S + 15) * 3], out[(15 * S + 25) * 3]);
    /* Colour: brightness 1.2 on a grey 100 image gives 120 before normalisation. */
    memset(im.px, 100, (size_t)S * S * 3);
    kt_aug_params q = {.box = {0, 0, (float)S, (float)S}, .brightness = 1.2f, .contrast = 1, .saturation = 1};
    float *f = malloc((size_t)S * S * 3 * sizeof(float));
    kt_aug_color_normalize(&c, &q, im.px, S * S, f);
    for (int ch = 0; ch < 3; ch++)
        KT_CHECK_NEAR(f[ch], (120.0f / 255.0f - c.mean[ch]) / c.std[ch], 1e-4);
    /* Contrast and saturation leave a flat grey image unchanged; hue keeps grey grey. */
    q.brightness = 1, q.contrast = 1.5f, q.saturation = 0.3f, q.hue = 0.2f;
    kt_aug_color_normalize(&c, &q, im.px, S * S, f);
    for (int ch = 0; ch < 3; ch++)
        KT_CHECK_NEAR(f[ch], (100.0f / 255.0f - c.mean[ch]) / c.std[ch], 1e-3);
    /* Saturation 0 turns red into its grey (0.299 * 200 = 59.8). */
    for (int i = 0; i < S * S; i++) im.px[i * 3] = 200, im.px[i * 3 + 1] = 0, im.px[i * 3 + 2] = 0;
    q.contrast = 1, q.saturation = 0, q.hue = 0;
    kt_aug_color_normalize(&c, &q, im.px, S * S, f);
    for (int ch = 0; ch < 3; ch++)
        KT_CHECK_NEAR(f[ch], (59.8f / 255.0f - c.mean[ch]) / c.std[ch], 1e-3);
    free(out), free(f);
    kt_image_free(&im);
    kt_aug_ctx_free(&x);
}

KT_TEST(test_aug_random_resized_crop_within_ranges) {
    kt_aug_config c;
    kt_aug_default_train(&c, 224);
    c.rrc_scale[0] = 0.3f, c.rrc_scale[1] = 0.9f;
    int hflips = 0, rots = 0;
    const int N = 2000, W = 640, H = 480;
    for (int i = 0; i < N; i++) {
        kt_aug_params p;
        kt_aug_sample(&c, kt_aug_key(1, 0, i), W, H, &p);
        float w = p.box[2] - p.box[0], h = p.box[3] - p.box[1];
        KT_CHECK(p.box[0] >= 0 && p.box[1] >= 0 && p.box[2] <= W && p.box[3] <= H && w >= 1 && h >= 1, "box in image");
        double area = (double)w * h / (W * H), ratio = w / h;
        /* Rounding to whole pixels moves area and ratio a little past the drawn range. */
        KT_CHECK(area > 0.3 * 0.99 && area < 0.9 * 1.01, "area %.3f outside scale range", area);
        KT_CHECK(ratio > 0.75 * 0.98 && ratio < 4.0 / 3.0 * 1.02, "ratio %.3f outside range", ratio);
        hflips += p.hflip;
        rots += p.angle_deg != 0;
        KT_CHECK(fabsf(p.angle_deg) <= 15.0f, "angle %g", p.angle_deg);
    }
    KT_CHECK(abs(hflips - N / 2) < N / 10, "hflip p 0.5 gave %d of %d", hflips, N);
    KT_CHECK(abs(rots - (int)(0.3 * N)) < N / 10, "rotation p 0.3 gave %d of %d", rots, N);
}

/* A 640x480 photo-like JPEG (waves and gradients, 4:2:0, quality 90) */
static uint8_t *photo_jpeg(size_t *len) {
    const int W = 640, H = 480;
    uint8_t *px = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = px + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(128 + 100 * sin(x * 0.05) * cos(y * 0.03));
            p[1] = (uint8_t)(x * 255 / W);
            p[2] = (uint8_t)(y * 255 / H);
        }
    uint8_t *jpg = dst_jpeg(px, W, H, TJPF_RGB, TJSAMP_420, 90, len);
    free(px);
    return jpg;
}

KT_TEST(test_aug_fast_decode_close_to_full_decode) {
    /* A 640x480 photo-like JPEG, cropped whole to 64x64: DCT scaling (1/4 here) must stay close to
     * decoding at full size (on by default in training). */
    const int W = 640;
    size_t len;
    uint8_t *jpg = photo_jpeg(&len);
    kt_aug_config c;
    kt_aug_default_train(&c, 64);
    c.rrc_p = c.hflip_p = c.rotate_p = c.bc_p = c.hs_p = 0;
    kt_err err = {0};
    kt_aug_ctx x;
    KT_REQUIRE_OK(kt_aug_ctx_init(&x, &err), &err);
    float *fast = malloc(64 * 64 * 3 * sizeof(float)), *full = malloc(64 * 64 * 3 * sizeof(float));
    KT_CHECK_OK(kt_aug_run(&x, &c, 5, jpg, len, fast, &err), &err);
    KT_CHECK(x.img.w == 160 && x.img.h == 120, "fast decode used %dx%d, want 1/4 = 160x120", x.img.w, x.img.h);
    c.fast_decode = 0;
    KT_CHECK_OK(kt_aug_run(&x, &c, 5, jpg, len, full, &err), &err);
    KT_CHECK(x.img.w == W, "full decode");
    double mad = 0;
    for (int i = 0; i < 64 * 64 * 3; i++) mad += fabs(fast[i] - full[i]) * c.std[i % 3] * 255.0;
    mad /= 64 * 64 * 3;
    KT_CHECK(mad < 2.0, "fast vs full decode: mean |diff| %.3f on 0..255", mad);
    free(fast), free(full), free(jpg);
    kt_aug_ctx_free(&x);
}

/* The evaluation transform decodes at full size by default (PIL's pixels, which the parity tests
 * pin) and at a reduced DCT scale only when asked (predict/serve --fast-decode): then as far as the
 * whole image stays at least the output size, and close to the full decode. */
KT_TEST(test_aug_eval_fast_decode_is_opt_in_and_close) {
    const int W = 640, H = 480;
    size_t len;
    uint8_t *jpg = photo_jpeg(&len);
    kt_aug_config c;
    kt_aug_default_eval(&c, 100);
    kt_err err = {0};
    kt_aug_ctx x;
    KT_REQUIRE_OK(kt_aug_ctx_init(&x, &err), &err);
    float *fast = malloc(100 * 100 * 3 * sizeof(float)), *full = malloc(100 * 100 * 3 * sizeof(float));
    KT_CHECK_OK(kt_aug_run(&x, &c, 0, jpg, len, full, &err), &err);
    KT_CHECK(x.img.w == W && x.img.h == H, "default evaluation decoded %dx%d, not the full %dx%d", x.img.w, x.img.h, W, H);
    c.fast_decode = 1;
    KT_CHECK_OK(kt_aug_run(&x, &c, 0, jpg, len, fast, &err), &err);
    /* 1/4 gives 160x120 >= 100x100; 1/8 (80x60) would be smaller than the output */
    KT_CHECK(x.img.w == 160 && x.img.h == 120, "fast evaluation decode used %dx%d, want 1/4 = 160x120", x.img.w, x.img.h);
    double mad = 0;
    for (int i = 0; i < 100 * 100 * 3; i++) mad += fabs(fast[i] - full[i]) * c.std[i % 3] * 255.0;
    mad /= 100 * 100 * 3;
    KT_CHECK(mad < 2.0 && mad > 0, "fast vs full evaluation decode: mean |diff| %.3f on 0..255", mad);
    free(fast), free(full), free(jpg);
    kt_aug_ctx_free(&x);
}

/* A few KB of narrow, very tall image passes the decode guard (w*h), but Pillow's order of passes
 * makes (source rows x output width) pixels first: 1 x 5,000,000 took 3 GB and 26 s (fuzzing found
 * it through POST /predict). Every transform refuses intermediates over the image limit, naming the
 * shape; ordinary images under the same limit still pass. The limit is lowered here so that a
 * JPEG can show it (65535 rows at most); the default is the same check with 100 Mpx. */
KT_TEST(test_aug_refuses_resizes_past_the_pixel_limit) {
    kt_err err = {0};
    kt_aug_ctx x;
    KT_REQUIRE_OK(kt_aug_ctx_init(&x, &err), &err);
    size_t tall_len, ok_len;
    uint8_t *px = dst_picture(8, 40000);
    uint8_t *tall = dst_jpeg(px, 8, 40000, TJPF_RGB, TJSAMP_444, 90, &tall_len);
    free(px);
    px = dst_picture(300, 200);
    uint8_t *ok = dst_jpeg(px, 300, 200, TJPF_RGB, TJSAMP_444, 90, &ok_len);
    free(px);
    float *out = malloc(224 * 224 * 3 * sizeof(float));
    for (int mode = 0; mode < 3; mode++) { /* eval whole-image resize, eval centre crop, training */
        kt_aug_config c;
        if (mode < 2) kt_aug_default_eval(&c, 224);
        else kt_aug_default_train(&c, 224);
        c.center_crop = mode == 1;
        c.max_pixels = 2000000; /* 8 x 40000 = 0.32 Mpx decodes; 40000 rows x 224 = 9 Mpx does not resize */
        kt_status st = kt_aug_run(&x, &c, 7, tall, tall_len, out, &err);
        KT_CHECK(st == KT_ERR_FORMAT && strstr(err.msg, "8x40000") && strstr(err.msg, "aspect ratio 5000:1") &&
                     strstr(err.msg, "limit of 2.0 Mpx"),
                 "mode %d: status %d: %s", mode, (int)st, err.msg);
        KT_CHECK_OK(kt_aug_run(&x, &c, 7, ok, ok_len, out, &err), &err);
    }
    free(out), free(tall), free(ok);
    kt_aug_ctx_free(&x);
}

/* The per-thread context keeps its buffers between images, but not an outsized image's. */
KT_TEST(test_aug_context_drops_outsized_buffers) {
    kt_err err = {0};
    kt_aug_ctx x;
    KT_REQUIRE_OK(kt_aug_ctx_init(&x, &err), &err);
    kt_aug_config c;
    kt_aug_default_eval(&c, 64);
    size_t big_len, small_len;
    uint8_t *px = dst_picture(6000, 4000); /* 72 MB decoded, over the 64 MiB kept */
    uint8_t *big = dst_jpeg(px, 6000, 4000, TJPF_RGB, TJSAMP_420, 50, &big_len);
    free(px);
    px = dst_picture(120, 80);
    uint8_t *small = dst_jpeg(px, 120, 80, TJPF_RGB, TJSAMP_420, 90, &small_len);
    free(px);
    float *out = malloc(64 * 64 * 3 * sizeof(float)), *want = malloc(64 * 64 * 3 * sizeof(float));
    KT_CHECK_OK(kt_aug_run(&x, &c, 0, small, small_len, want, &err), &err);
    KT_CHECK(x.img.cap > 0, "a small image's buffer is kept for the next one");
    KT_CHECK_OK(kt_aug_run(&x, &c, 0, big, big_len, out, &err), &err);
    KT_CHECK(x.img.cap == 0 && x.img.px == NULL, "the 72 MB decoded image is still held (%zu bytes)", x.img.cap);
    KT_CHECK_OK(kt_aug_run(&x, &c, 0, small, small_len, out, &err), &err);
    KT_CHECK(memcmp(out, want, 64 * 64 * 3 * sizeof(float)) == 0, "the same output after the context was trimmed");
    free(out), free(want), free(big), free(small);
    kt_aug_ctx_free(&x);
}
