/* Decoding and resizing against Pillow's goldens, EXIF orientation, grey/CMYK/alpha, bad bytes. */
#include <libexif/exif-data.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "datasets/image.h"
#include "datasets/resize.h"
#include "dstest.h"
#include "kt_test.h"

/* Mean absolute difference allowed between our uint8 output and Pillow's, per channel value on
 * 0..255. The implementation is meant to be bit-exact (same coefficients, same fixed point, same
 * libjpeg-turbo); the bound leaves room only for a different libjpeg build on another machine. */
#define PIL_MAD_BOUND 0.5

KT_TEST(test_resize_matches_pil_synthetic) {
    size_t len, clen;
    uint8_t *png = dst_golden("resize_src.png", &len);
    char *cases = (char *)dst_golden("resize_cases.txt", &clen);
    KT_REQUIRE(png && cases, "golden files missing: run tests/reference/make_resize_golden.py");
    kt_err err = {0};
    kt_decoder dec;
    kt_image src;
    kt_image_init(&src);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    KT_REQUIRE_OK(kt_image_decode(&dec, png, len, NULL, &src, &err), &err);
    KT_CHECK(src.w == 97 && src.h == 73, "source is %dx%d", src.w, src.h);
    size_t alen;
    uint8_t *all = dst_golden("resize_all.u8", &alen);
    KT_REQUIRE(all, "golden resize_all.u8 missing");
    kt_resizer rz;
    kt_resizer_init(&rz);
    char name[64];
    int w, h, n_cases = 0, off = 0, used;
    long at;
    float box[4];
    while (sscanf(cases + off, "%63s %d %d %f %f %f %f %ld%n", name, &w, &h, &box[0], &box[1], &box[2], &box[3], &at,
                  &used) == 8) {
        off += used;
        size_t n = (size_t)w * h * 3;
        KT_REQUIRE(at >= 0 && (size_t)at + n <= alen, "case %s outside resize_all.u8", name);
        uint8_t *got = malloc(n);
        KT_CHECK_OK(kt_resize_rgb8(&rz, src.px, src.w, src.h, box, got, w, h, &err), &err);
        int maxd;
        double mad = dst_mad(got, all + at, n, &maxd);
        KT_CHECK(mad < PIL_MAD_BOUND && maxd <= 1, "%s: mean |diff| %.4f, max %d vs Pillow", name, mad, maxd);
        free(got);
        n_cases++;
    }
    KT_CHECK(n_cases == 24, "read %d cases", n_cases);
    free(all);
    kt_resizer_free(&rz);
    kt_image_free(&src);
    kt_decoder_free(&dec);
    free(png);
    free(cases);
}

KT_TEST(test_decode_resize_matches_pil_real_images) {
    const char *data = kt_test_datasets();
    if (!data) kt_test_skip("../shared/datasets is absent (real-image goldens need it)");
    size_t clen;
    char *cases = (char *)dst_golden("real_cases.txt", &clen);
    KT_REQUIRE(cases, "golden real_cases.txt missing");
    kt_err err = {0};
    kt_decoder dec;
    kt_image src;
    kt_resizer rz;
    kt_image_init(&src);
    kt_resizer_init(&rz);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    char name[64], rel[1024], path[2048];
    int w, h, off = 0, used, n = 0;
    while (sscanf(cases + off, "%63s %1023s %d %d%n", name, rel, &w, &h, &used) == 4) {
        off += used;
        snprintf(path, sizeof path, "%s/%s", data, rel);
        char file[128];
        snprintf(file, sizeof file, "real_%s.u8", name);
        size_t glen;
        uint8_t *want = dst_golden(file, &glen);
        KT_REQUIRE(want && glen == (size_t)w * h * 3, "golden %s", file);
        KT_CHECK_OK(kt_image_load(&dec, path, NULL, &src, &err), &err);
        uint8_t *got = malloc(glen);
        KT_CHECK_OK(kt_resize_rgb8(&rz, src.px, src.w, src.h, NULL, got, w, h, &err), &err);
        int maxd;
        double mad = dst_mad(got, want, glen, &maxd);
        KT_CHECK(mad < PIL_MAD_BOUND, "%s (%s): mean |diff| %.4f (max %d) vs Pillow", name, rel, mad, maxd);
        free(got);
        free(want);
        n++;
    }
    KT_CHECK(n == 4, "read %d cases", n);
    kt_resizer_free(&rz);
    kt_image_free(&src);
    kt_decoder_free(&dec);
    free(cases);
}

KT_TEST(test_normalize_matches_torchvision) {
    size_t ulen, flen;
    uint8_t *u8 = dst_golden("real_nail64.u8", &ulen);
    float *want = (float *)dst_golden("norm_nail64.f32", &flen);
    KT_REQUIRE(u8 && want && flen == ulen * sizeof(float), "goldens missing");
    float *got = malloc(flen);
    kt_image_normalize(u8, (int64_t)(ulen / 3), kt_imagenet_mean, kt_imagenet_std, got);
    double maxd = 0;
    for (size_t i = 0; i < ulen; i++) maxd = fmax(maxd, fabs((double)got[i] - want[i]));
    KT_CHECK(maxd <= 1e-6, "max |diff| %.3g vs torch ToTensor+Normalize", maxd);
    free(got);
    free(want);
    free(u8);
}

KT_TEST(test_decode_matches_pil_orientation_gray_cmyk_alpha) {
    size_t clen;
    char *cases = (char *)dst_golden("pil_cases.txt", &clen);
    KT_REQUIRE(cases, "golden pil_cases.txt missing: run tests/reference/make_pil_decode_golden.py");
    kt_err err = {0};
    kt_decoder dec;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    char name[64], file[128];
    int w, h, off = 0, used, n = 0;
    while (sscanf(cases + off, "%63s %127s %d %d%n", name, file, &w, &h, &used) == 4) {
        off += used;
        size_t len, glen;
        uint8_t *bytes = dst_golden(file, &len);
        char gname[160];
        snprintf(gname, sizeof gname, "pil_%s.u8", name);
        uint8_t *want = dst_golden(gname, &glen);
        KT_REQUIRE(bytes && want, "golden %s / %s", file, gname);
        KT_CHECK_OK(kt_image_decode(&dec, bytes, len, NULL, &im, &err), &err);
        KT_CHECK(im.w == w && im.h == h, "%s: %dx%d, Pillow %dx%d", name, im.w, im.h, w, h);
        /* the header-only probe gives the displayed size too (png_orient6_late: eXIf after IDAT) */
        kt_image_header hdr;
        KT_CHECK_OK(kt_image_probe(&dec, bytes, len, NULL, &hdr, &err), &err);
        KT_CHECK(hdr.w == w && hdr.h == h && hdr.complete, "%s: probe %dx%d (complete %d), Pillow %dx%d", name, hdr.w,
                 hdr.h, hdr.complete, w, h);
        if (im.w == w && im.h == h) {
            int maxd;
            double mad = dst_mad(im.px, want, glen, &maxd);
            KT_CHECK(mad < PIL_MAD_BOUND && maxd <= 2, "%s: mean |diff| %.4f, max %d vs Pillow", name, mad, maxd);
        }
        free(bytes);
        free(want);
        n++;
    }
    KT_CHECK(n == 15, "read %d cases", n);
    kt_image_free(&im);
    kt_decoder_free(&dec);
    free(cases);
}

/* Inserts an APP1 EXIF block with the given orientation, built by libexif, after the SOI. */
static uint8_t *with_exif_orientation(const uint8_t *jpg, size_t len, int orientation, size_t *out_len) {
    ExifData *ed = exif_data_new();
    exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_MOTOROLA);
    ExifEntry *e = exif_entry_new();
    exif_content_add_entry(ed->ifd[EXIF_IFD_0], e);
    exif_entry_initialize(e, EXIF_TAG_ORIENTATION);
    exif_set_short(e->data, EXIF_BYTE_ORDER_MOTOROLA, (ExifShort)orientation);
    exif_entry_unref(e);
    unsigned char *blk = NULL;
    unsigned int blen = 0;
    exif_data_save_data(ed, &blk, &blen);
    exif_data_unref(ed);
    size_t n = len + 4 + blen;
    uint8_t *out = malloc(n);
    memcpy(out, jpg, 2);
    out[2] = 0xFF, out[3] = 0xE1, out[4] = (uint8_t)((blen + 2) >> 8), out[5] = (uint8_t)((blen + 2) & 0xFF);
    memcpy(out + 6, blk, blen);
    memcpy(out + 6 + blen, jpg + 2, len - 2);
    free(blk);
    *out_len = n;
    return out;
}

KT_TEST(test_exif_orientation_from_libexif_block) {
    const int W = 32, H = 16;
    uint8_t *px = dst_picture(W, H);
    size_t jlen;
    uint8_t *jpg = dst_jpeg(px, W, H, TJPF_RGB, TJSAMP_444, 95, &jlen);
    KT_REQUIRE(jpg, "encode");
    kt_err err = {0};
    kt_decoder dec;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    /* Quadrant colours in stored order: TL red, TR green, BL blue, BR yellow. After orientation 6
     * (rotate 90 clockwise) the top-left shows what was bottom-left (blue), top-right the old
     * top-left (red); after 8 (counter-clockwise) top-left shows the old top-right (green). */
    struct {
        int o, w, h;
        int tl, tr; /* index into the quadrant table: 0 red, 1 green, 2 blue, 3 yellow */
    } cases[] = {{1, W, H, 0, 1}, {3, W, H, 3, 2}, {6, H, W, 2, 0}, {8, H, W, 1, 3}, {2, W, H, 1, 0}};
    static const int ref[4][3] = {{230, 30, 30}, {30, 200, 40}, {40, 40, 220}, {240, 240, 60}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *ex = with_exif_orientation(jpg, jlen, cases[i].o, &n);
        kt_image_header hdr;
        KT_CHECK_OK(kt_image_probe(&dec, ex, n, NULL, &hdr, &err), &err);
        KT_CHECK(hdr.orientation == cases[i].o && hdr.w == cases[i].w && hdr.h == cases[i].h,
                 "probe orientation %d: got %d, %dx%d", cases[i].o, hdr.orientation, hdr.w, hdr.h);
        KT_CHECK_OK(kt_image_decode(&dec, ex, n, NULL, &im, &err), &err);
        KT_CHECK(im.w == cases[i].w && im.h == cases[i].h, "orientation %d: %dx%d", cases[i].o, im.w, im.h);
        const uint8_t *tl = im.px + ((size_t)2 * im.w + 2) * 3, *tr = im.px + ((size_t)2 * im.w + im.w - 3) * 3;
        for (int c = 0; c < 3; c++) {
            KT_CHECK(abs(tl[c] - ref[cases[i].tl][c]) < 12, "orientation %d top-left ch %d = %d", cases[i].o, c, tl[c]);
            KT_CHECK(abs(tr[c] - ref[cases[i].tr][c]) < 12, "orientation %d top-right ch %d = %d", cases[i].o, c, tr[c]);
        }
        /* ignore_exif keeps the stored layout. */
        kt_decode_opts raw = {.ignore_exif = 1};
        KT_CHECK_OK(kt_image_decode(&dec, ex, n, &raw, &im, &err), &err);
        KT_CHECK(im.w == W && im.h == H, "ignore_exif: %dx%d", im.w, im.h);
        free(ex);
    }
    kt_image_free(&im);
    kt_decoder_free(&dec);
    free(jpg);
    free(px);
}

KT_TEST(test_gray_and_cmyk_jpeg_decode_to_rgb) {
    const int W = 24, H = 16;
    uint8_t *rgb = dst_picture(W, H);
    uint8_t *gray = malloc((size_t)W * H), *cmyk = malloc((size_t)W * H * 4);
    for (int i = 0; i < W * H; i++) {
        gray[i] = (uint8_t)((rgb[i * 3] * 299 + rgb[i * 3 + 1] * 587 + rgb[i * 3 + 2] * 114) / 1000);
        /* Adobe CMYK stores inverted inks: with K = 0 the stored bytes are R, G, B, 255. */
        cmyk[i * 4 + 0] = rgb[i * 3 + 0];
        cmyk[i * 4 + 1] = rgb[i * 3 + 1];
        cmyk[i * 4 + 2] = rgb[i * 3 + 2];
        cmyk[i * 4 + 3] = 255;
    }
    size_t glen, clen;
    uint8_t *gj = dst_jpeg(gray, W, H, TJPF_GRAY, TJSAMP_GRAY, 95, &glen);
    uint8_t *cj = dst_jpeg(cmyk, W, H, TJPF_CMYK, TJSAMP_444, 95, &clen);
    KT_REQUIRE(gj && cj, "encode");
    kt_err err = {0};
    kt_decoder dec;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    KT_CHECK_OK(kt_image_decode(&dec, gj, glen, NULL, &im, &err), &err);
    KT_CHECK(im.w == W && im.h == H, "gray %dx%d", im.w, im.h);
    double d = 0;
    for (int i = 0; i < W * H; i++) {
        KT_CHECK(im.px[i * 3] == im.px[i * 3 + 1] && im.px[i * 3] == im.px[i * 3 + 2], "grey pixel %d not grey", i);
        d += abs(im.px[i * 3] - gray[i]);
    }
    KT_CHECK(d / (W * H) < 3, "grey mean |diff| %.2f", d / (W * H));
    KT_CHECK_OK(kt_image_decode(&dec, cj, clen, NULL, &im, &err), &err);
    KT_CHECK(im.w == W && im.h == H, "cmyk %dx%d", im.w, im.h);
    int maxd;
    double mad = dst_mad(im.px, rgb, (size_t)W * H * 3, &maxd);
    KT_CHECK(mad < 3, "CMYK -> RGB mean |diff| %.2f (max %d)", mad, maxd);
    kt_image_free(&im);
    kt_decoder_free(&dec);
    free(gj), free(cj), free(gray), free(cmyk), free(rgb);
}

static uint8_t *encode_png(const uint8_t *px, int w, int h, int color_type, int channels, size_t *len) {
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = (uint32_t)w, .height = (uint32_t)h, .bit_depth = 8, .color_type = (uint8_t)color_type};
    spng_set_ihdr(ctx, &ihdr);
    int r = spng_encode_image(ctx, px, (size_t)w * h * channels, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    int e = 0;
    uint8_t *out = r ? NULL : spng_get_png_buffer(ctx, len, &e);
    spng_ctx_free(ctx);
    return e ? NULL : out;
}

KT_TEST(test_png_alpha_and_grey_decode_to_rgb) {
    const int W = 20, H = 12;
    uint8_t *rgb = dst_picture(W, H);
    uint8_t *rgba = malloc((size_t)W * H * 4), *ga = malloc((size_t)W * H * 2);
    for (int i = 0; i < W * H; i++) {
        memcpy(rgba + i * 4, rgb + i * 3, 3);
        rgba[i * 4 + 3] = (uint8_t)(i * 7);
        ga[i * 2] = rgb[i * 3 + 1];
        ga[i * 2 + 1] = (uint8_t)(255 - i);
    }
    size_t l1, l2;
    uint8_t *p1 = encode_png(rgba, W, H, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 4, &l1);
    uint8_t *p2 = encode_png(ga, W, H, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 2, &l2);
    KT_REQUIRE(p1 && p2, "libspng encode");
    kt_err err = {0};
    kt_decoder dec;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    KT_CHECK_OK(kt_image_decode(&dec, p1, l1, NULL, &im, &err), &err);
    KT_CHECK(im.w == W && im.h == H && memcmp(im.px, rgb, (size_t)W * H * 3) == 0,
             "RGBA PNG must come out as its RGB channels (alpha dropped, as PIL's convert)");
    KT_CHECK_OK(kt_image_decode(&dec, p2, l2, NULL, &im, &err), &err);
    int ok = im.w == W && im.h == H;
    for (int i = 0; ok && i < W * H; i++)
        ok = im.px[i * 3] == ga[i * 2] && im.px[i * 3 + 1] == ga[i * 2] && im.px[i * 3 + 2] == ga[i * 2];
    KT_CHECK(ok, "grey+alpha PNG must come out as grey RGB");
    kt_image_free(&im);
    kt_decoder_free(&dec);
    free(p1), free(p2), free(rgba), free(ga), free(rgb);
}

KT_TEST(test_decode_bad_bytes_are_clear_errors) {
    kt_err err = {0};
    kt_decoder dec;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    KT_CHECK(kt_image_decode(&dec, (const uint8_t *)"", 0, NULL, &im, &err) == KT_ERR_FORMAT && strstr(err.msg, "empty"),
             "empty: %s", err.msg);
    const char *text = "this is not an image at all";
    KT_CHECK(kt_image_decode(&dec, (const uint8_t *)text, strlen(text), NULL, &im, &err) == KT_ERR_FORMAT &&
                 strstr(err.msg, "not a JPEG or PNG"),
             "text: %s", err.msg);
    const int W = 64, H = 48;
    uint8_t *px = dst_picture(W, H);
    for (int i = 0; i < W * H * 3; i++) px[i] = (uint8_t)(px[i] ^ (i * 37));
    size_t jlen;
    uint8_t *jpg = dst_jpeg(px, W, H, TJPF_RGB, TJSAMP_420, 90, &jlen);
    KT_CHECK(kt_image_decode(&dec, jpg, jlen / 2, NULL, &im, &err) == KT_ERR_FORMAT && strstr(err.msg, "truncated"),
             "truncated JPEG: %s", err.msg);
    KT_CHECK(kt_image_decode(&dec, jpg, 20, NULL, &im, &err) == KT_ERR_FORMAT, "20-byte JPEG: %s", err.msg);
    kt_image_header hdr;
    KT_CHECK_OK(kt_image_probe(&dec, jpg, jlen, NULL, &hdr, &err), &err);
    KT_CHECK(hdr.complete == 1 && hdr.w == W && hdr.h == H, "whole JPEG probe");
    KT_CHECK_OK(kt_image_probe(&dec, jpg, jlen - 100, NULL, &hdr, &err), &err);
    KT_CHECK(hdr.complete == 0, "truncated JPEG probe must say incomplete");
    size_t plen;
    uint8_t *rgba = malloc((size_t)W * H * 4);
    for (int i = 0; i < W * H; i++) memcpy(rgba + i * 4, px + i * 3, 3), rgba[i * 4 + 3] = 255;
    uint8_t *png = encode_png(rgba, W, H, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 4, &plen);
    KT_REQUIRE(png, "png encode");
    KT_CHECK(kt_image_decode(&dec, png, plen * 2 / 3, NULL, &im, &err) == KT_ERR_FORMAT, "truncated PNG: %s", err.msg);
    KT_CHECK_OK(kt_image_probe(&dec, png, plen * 2 / 3, NULL, &hdr, &err), &err);
    KT_CHECK(hdr.complete == 0, "truncated PNG probe must say incomplete");
    KT_CHECK(kt_image_load(&dec, dst_path("nope.jpg"), NULL, &im, &err) == KT_ERR_NOTFOUND && strstr(err.msg, "nope.jpg"),
             "missing file: %s", err.msg);
    kt_image_free(&im);
    kt_decoder_free(&dec);
    free(png), free(rgba), free(jpg), free(px);
}

/* One decoder serves one thread for its whole life (a server worker, a loader thread): a corrupt
 * JPEG must not fail the good images after it. TurboJPEG 2.1 leaves its handle mid-header after
 * a failed header read, and about 1 in 20 of these junk files made the next good JPEG fail with
 * "Unsupported marker type" (a flaky 400 in test_serve_predict) before the decoder reset it. */
KT_TEST(test_bad_jpeg_does_not_fail_the_next_image) {
    kt_err err = {0};
    kt_decoder dec, fresh;
    kt_image im, want;
    kt_image_init(&im);
    kt_image_init(&want);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    KT_REQUIRE_OK(kt_decoder_init(&fresh, &err), &err);
    const int W = 40, H = 24;
    uint8_t *px = dst_picture(W, H);
    size_t jlen;
    uint8_t *jpg = dst_jpeg(px, W, H, TJPF_RGB, TJSAMP_420, 90, &jlen);
    KT_REQUIRE_OK(kt_image_decode(&fresh, jpg, jlen, NULL, &want, &err), &err);
    uint8_t junk[3004] = {0xFF, 0xD8, 0xFF, 0xE0};
    uint32_t x = 12345;
    int header_failures = 0, bad_after = 0;
    for (int trial = 0; trial < 200; trial++) {
        for (size_t i = 4; i < sizeof junk; i++) x = x * 1664525u + 1013904223u, junk[i] = (uint8_t)(x >> 24);
        int probe = trial % 2; /* the header-only probe shares the handle too */
        kt_image_header hdr;
        kt_status st = probe ? kt_image_probe(&dec, junk, sizeof junk, NULL, &hdr, &err)
                             : kt_image_decode(&dec, junk, sizeof junk, NULL, &im, &err);
        if (st == KT_OK) continue;
        KT_CHECK(st == KT_ERR_FORMAT, "junk %d: status %d: %s", trial, (int)st, err.msg);
        header_failures += strstr(err.msg, "unreadable JPEG header") != NULL;
        st = probe ? kt_image_probe(&dec, jpg, jlen, NULL, &hdr, &err) : kt_image_decode(&dec, jpg, jlen, NULL, &im, &err);
        if (st != KT_OK) {
            if (bad_after++ < 3) KT_CHECK(0, "good JPEG after junk %d (%s) failed: %s", trial, probe ? "probe" : "decode", err.msg);
            continue;
        }
        if (probe)
            KT_CHECK(hdr.w == W && hdr.h == H && hdr.complete, "probe after junk %d: %dx%d", trial, hdr.w, hdr.h);
        else
            KT_CHECK(im.w == W && im.h == H && memcmp(im.px, want.px, (size_t)W * H * 3) == 0,
                     "good JPEG after junk %d decoded differently", trial);
    }
    KT_CHECK(bad_after == 0, "%d good JPEGs failed after a corrupt one", bad_after);
    /* The case that poisoned the handle (8 of these 200 junk files): some must fail in the header. */
    KT_CHECK(header_failures >= 5, "only %d of 200 junk files failed in the header", header_failures);
    kt_image_free(&im);
    kt_image_free(&want);
    kt_decoder_free(&dec);
    kt_decoder_free(&fresh);
    free(jpg), free(px);
}

KT_TEST(test_decompression_bomb_guard) {
    kt_err err = {0};
    kt_decoder dec;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    uint8_t *px = dst_picture(16, 16);
    size_t jlen;
    uint8_t *jpg = dst_jpeg(px, 16, 16, TJPF_RGB, TJSAMP_444, 90, &jlen);
    /* Claim 60000 x 60000 in the SOF0 header: 3.6 Gpx that must never be allocated. */
    int patched = 0;
    for (size_t i = 2; i + 9 < jlen && !patched; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = 0xEA, jpg[i + 6] = 0x60, jpg[i + 7] = 0xEA, jpg[i + 8] = 0x60;
            patched = 1;
        }
    KT_REQUIRE(patched, "no SOF0 marker found");
    KT_CHECK(kt_image_decode(&dec, jpg, jlen, NULL, &im, &err) == KT_ERR_FORMAT && strstr(err.msg, "decompression-bomb"),
             "JPEG bomb: %s", err.msg);
    /* A PNG whose IHDR says 30000 x 30000 (CRC fixed so only the size is wrong). */
    uint8_t *rgba = calloc(16 * 16 * 4, 1);
    size_t plen;
    uint8_t *png = encode_png(rgba, 16, 16, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 4, &plen);
    KT_REQUIRE(png && plen > 33, "png encode");
    const uint8_t big[8] = {0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30};
    memcpy(png + 16, big, 8);
    uLong crc = crc32(0, png + 12, 17);
    png[29] = (uint8_t)(crc >> 24), png[30] = (uint8_t)(crc >> 16), png[31] = (uint8_t)(crc >> 8), png[32] = (uint8_t)crc;
    KT_CHECK(kt_image_decode(&dec, png, plen, NULL, &im, &err) == KT_ERR_FORMAT && strstr(err.msg, "decompression-bomb"),
             "PNG bomb: %s", err.msg);
    /* The limit is configurable. */
    uint8_t *ok = dst_jpeg(px, 16, 16, TJPF_RGB, TJSAMP_444, 90, &jlen);
    kt_decode_opts small = {.max_pixels = 100};
    KT_CHECK(kt_image_decode(&dec, ok, jlen, &small, &im, &err) == KT_ERR_FORMAT, "16x16 over a 100 px limit");
    KT_CHECK_OK(kt_image_decode(&dec, ok, jlen, NULL, &im, &err), &err);
    kt_image_free(&im);
    kt_decoder_free(&dec);
    free(ok), free(png), free(rgba), free(jpg), free(px);
}

KT_TEST(test_dct_scaled_decode_respects_minimum) {
    const int S = 256;
    uint8_t *px = dst_picture(S, S);
    size_t jlen;
    uint8_t *jpg = dst_jpeg(px, S, S, TJPF_RGB, TJSAMP_420, 90, &jlen);
    kt_err err = {0};
    kt_decoder dec;
    kt_image im;
    kt_image_init(&im);
    KT_REQUIRE_OK(kt_decoder_init(&dec, &err), &err);
    struct {
        int min, want;
    } cases[] = {{100, 128}, {60, 64}, {20, 32}, {200, 256}, {256, 256}, {300, 256}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_decode_opts o = {.min_w = cases[i].min, .min_h = cases[i].min};
        KT_CHECK_OK(kt_image_decode(&dec, jpg, jlen, &o, &im, &err), &err);
        KT_CHECK(im.w == cases[i].want && im.h == cases[i].want, "min %d: got %dx%d, want %d", cases[i].min, im.w, im.h,
                 cases[i].want);
    }
    kt_image_free(&im);
    kt_decoder_free(&dec);
    free(jpg), free(px);
}
