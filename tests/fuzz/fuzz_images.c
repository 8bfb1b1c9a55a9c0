/* Fuzz targets of images: JPEG/PNG decoding (+ header probe, scaled decode) and a prediction on the
 * decoded upload. See fuzz_targets.h. */
#include "fuzz_targets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/ckpt_meta.h"
#include "datasets/image.h"
#include "nets/model.h"
#include "serve/predict.h"

#include "fuzz_internal.h"

/* ---- JPEG / PNG ------------------------------------------------------------------------------ */
/* One decoder for the process, as each loader thread keeps one (NULL if it cannot be made). */
static kt_decoder *decoder(void) {
    static kt_decoder dec;
    static int state; /* 0 not made, 1 ready, -1 failed */
    kt_err err;
    if (!state) state = kt_decoder_init(&dec, &err) == KT_OK ? 1 : -1;
    return state > 0 ? &dec : NULL;
}

int kt_fuzz_image(const uint8_t *data, size_t len) {
    kt_decoder *dec = decoder();
    if (!dec) return 0;
    kt_err err = {0};
    /* 0.26 Mpx keeps each run fast (the limit is the decompression-bomb guard, itself under test) */
    kt_decode_opts o = {.max_pixels = 1 << 18};
    kt_image_header hdr;
    kt_status ps = kt_image_probe(dec, data, len, &o, &hdr, &err);
    kt_image im;
    kt_image_init(&im);
    kt_status ds = kt_image_decode(dec, data, len, &o, &im, &err);
    if (ds == KT_OK) {
        if (ps != KT_OK) kt_fuzz_broken("image", "decoded a %dx%d image whose header the probe refused", im.w, im.h);
        if (im.w != hdr.w || im.h != hdr.h)
            kt_fuzz_broken("image", "the probe says %dx%d (orientation %d), the decoder gives %dx%d", hdr.w, hdr.h,
                   hdr.orientation, im.w, im.h);
        if (!im.px || im.cap < (size_t)im.w * im.h * 3) kt_fuzz_broken("image", "a %dx%d image in %zu bytes", im.w, im.h, im.cap);
        unsigned sum = 0; /* read every pixel: uninitialised or freed bytes show under the sanitizers */
        for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++) sum += im.px[i];
        if (sum == 0xFFFFFFFFu) fputc(' ', stderr);
        /* The scaled decode (training's fast path) keeps the orientation and at least the asked size. */
        kt_decode_opts so = o;
        so.min_w = so.min_h = 8;
        kt_image small;
        kt_image_init(&small);
        if (kt_image_decode(dec, data, len, &so, &small, &err) == KT_OK) {
            int full = im.w < 8 || im.h < 8; /* nothing smaller would keep 8x8: the full size */
            if (small.w > im.w || small.h > im.h || (full && (small.w != im.w || small.h != im.h)) ||
                (!full && (small.w < 8 || small.h < 8)) || (im.w > im.h && small.w < small.h) ||
                (im.w < im.h && small.w > small.h))
                kt_fuzz_broken("image", "scaled decode %dx%d of a %dx%d image", small.w, small.h, im.w, im.h);
        }
        kt_image_free(&small);
    } else if (!err.msg[0]) {
        kt_fuzz_broken("image", "refused without saying why");
    }
    kt_image_free(&im);
    return 0;
}


/* ---- prediction on uploaded bytes: decode, EXIF, resize and crop, a small CNN's forward -------- */
static kt_predictor *pred, *pred_batched;
static char pred_dir[64];

static void pred_stop(void) {
    kt_predictor_free(pred);
    kt_predictor_free(pred_batched);
    pred = pred_batched = NULL;
    char p[128];
    snprintf(p, sizeof p, "%s/model.safetensors", pred_dir);
    unlink(p);
    rmdir(pred_dir);
}

kt_predictor *kt_fuzz_model(void) {
    static int state;
    if (state) return pred;
    state = 1;
    snprintf(pred_dir, sizeof pred_dir, "/tmp/kt_fuzz_predict.XXXXXX");
    if (!mkdtemp(pred_dir)) kt_fuzz_broken("predict", "cannot make a temporary folder");
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", pred_dir);
    kt_model m;
    kt_model_opts o = {.arch = "smallcnn", .num_classes = 4, .batch = 1, .img_h = 32, .img_w = 32};
    kt_err err = {0};
    kt_ckpt_meta meta;
    kt_ckpt_meta_init(&meta);
    static const char *const names[] = {"LEVEL_2", "LEVEL_3", "LEVEL_4", "LEVEL_5"};
    meta.img_h = meta.img_w = 32;
    if (kt_model_create(&m, &o, NULL, &err) || kt_model_init_weights(&m, 1, &err) ||
        kt_ckpt_meta_set_classes(&meta, names, 4, &err) || kt_model_save_weights(&m, path, &meta, &err))
        kt_fuzz_broken("predict", "cannot make the model: %s", err.msg);
    kt_model_free(&m);
    kt_ckpt_meta_free(&meta);
    const char *paths[1] = {path};
    if (kt_predictor_open(&pred, paths, 1, "cpu", 1, &err)) kt_fuzz_broken("predict", "cannot open the model: %s", err.msg);
    atexit(pred_stop);
    return pred;
}

kt_predictor *kt_fuzz_model_batched(void) {
    if (pred_batched) return pred_batched;
    kt_fuzz_model(); /* the checkpoint */
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", pred_dir);
    const char *paths[1] = {path};
    kt_err err = {0};
    if (kt_predictor_open(&pred_batched, paths, 1, "cpu", 1, &err) || kt_predictor_set_max_batch(pred_batched, 4, &err))
        kt_fuzz_broken("http", "cannot open the batching model: %s", err.msg);
    return pred_batched;
}

int kt_fuzz_predict(const uint8_t *data, size_t len) {
    kt_predictor *p = kt_fuzz_model();
    kt_decoder *dec = decoder();
    if (!dec) return 0;
    kt_err err = {0};
    /* images over 1 Mpx are left out: the decoder's own limit (100 Mpx) is a guard, not a fuzz target */
    kt_decode_opts small = {.max_pixels = 1 << 20};
    kt_image_header hdr;
    if (kt_image_probe(dec, data, len, &small, &hdr, &err) != KT_OK) return 0;
    float probs[4] = {-1, -1, -1, -1};
    if (kt_predictor_run_bytes(p, data, len, probs, &err) == KT_OK) {
        double sum = 0;
        for (int i = 0; i < 4; i++) {
            if (!(probs[i] >= 0.0f && probs[i] <= 1.0f)) kt_fuzz_broken("predict", "a %dx%d image: probability %g", hdr.w, hdr.h, probs[i]);
            sum += probs[i];
        }
        if (fabs(sum - 1.0) > 1e-4) kt_fuzz_broken("predict", "a %dx%d image: probabilities sum to %.6f", hdr.w, hdr.h, sum);
        if (getenv("KT_FUZZ_VERBOSE"))
            fprintf(stderr, "fuzz predict: %dx%d -> %.3f %.3f %.3f %.3f\n", hdr.w, hdr.h, probs[0], probs[1], probs[2], probs[3]);
    } else if (!err.msg[0]) {
        kt_fuzz_broken("predict", "refused without a message");
    }
    return 0;
}
