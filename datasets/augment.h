/* The image transform between decoded bytes and a normalised (H, W, 3) float tensor: seeded training
 * augmentation (random resized crop, flips, rotation, colour) or the deterministic evaluation resize. */
#ifndef KT_AUGMENT_H
#define KT_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "datasets/image.h"
#include "datasets/resize.h"

typedef struct kt_aug_config {
    int train;            /* 1: random augmentation below; 0: evaluation (deterministic) */
    int out_w, out_h;     /* output size in pixels (the model's input) */
    float mean[3], std[3]; /* normalisation, per RGB channel, on 0..1 values */
    int64_t max_pixels;   /* decompression-bomb guard; 0 = KT_IMAGE_MAX_PIXELS_DEFAULT */

    /* Evaluation. center_crop = 0: resize the whole image to out_w x out_h (the seed recipe).
     * center_crop = 1: resize the shorter side to out/crop_pct keeping the aspect ratio, then cut the
     * centre out_w x out_h (timm's eval transform). */
    int center_crop;
    float crop_pct;       /* (0, 1] */

    /* Training; each op is applied with its probability p (0 = never, 1 = always). */
    float rrc_p;          /* random resized crop (torchvision RandomResizedCrop); else whole-image resize */
    float rrc_scale[2];   /* fraction of the image area, 0 < lo <= hi <= 1 */
    float rrc_ratio[2];   /* aspect ratio w/h of the crop, 0 < lo <= hi */
    float hflip_p, vflip_p;
    float rotate_p;
    float rotate_deg;     /* angle uniform in [-deg, +deg], 0..180; corners filled with black */
    float bc_p;
    float brightness;     /* factor uniform in [1-b, 1+b], 0..1 */
    float contrast;       /* factor uniform in [1-c, 1+c] around the mean grey, 0..1 */
    float hs_p;
    float hue;            /* shift uniform in [-h, +h] turns, 0..0.5 */
    float saturation;     /* factor uniform in [1-s, 1+s], 0..1 */
    int fast_decode;      /* 1: JPEGs may be decoded at 1/2..1/8 scale when the crop allows (on by default
                           * in training; opt-in for evaluation, as predict/serve --fast-decode: not
                           * PIL's pixels, which the default evaluation path matches) */
} kt_aug_config;

/* Training defaults for a square model input of size pixels: random resized crop scale
 * (0.25, 1), ratio (3/4, 4/3); hflip 0.5; rotation p 0.3 up to 15 degrees; brightness/contrast
 * p 0.5 +-0.2; hue/saturation p 0.3, hue +-0.03 turn, saturation +-0.2; ImageNet mean/std;
 * fast JPEG decoding on. */
void kt_aug_default_train(kt_aug_config *c, int size);
/* Evaluation defaults: whole-image resize to size x size (no crop), ImageNet mean/std. */
void kt_aug_default_eval(kt_aug_config *c, int size);
/* Every field in range; the error names the field and the value. */
kt_status kt_aug_validate(const kt_aug_config *c, kt_err *err);

/* The random choices for one image, drawn from counter-based hashes of a key, so the same
 * (seed, epoch, item) always gives the same augmentation whatever thread draws it. */
typedef struct kt_aug_params {
    float box[4];       /* crop x0, y0, x1, y1 in source pixels (the whole image when no crop) */
    int hflip, vflip;
    float angle_deg;    /* 0 = no rotation */
    float brightness, contrast, saturation, hue; /* factors (1 = none) and hue shift in turns (0 = none) */
} kt_aug_params;

/* key for one image of one epoch: kt_hash of (seed, epoch, item). */
uint64_t kt_aug_key(uint64_t seed, int64_t epoch, int64_t item);
/* Draws the parameters for an image of src_w x src_h (as displayed); eval configs give the
 * identity parameters (box = whole image). */
void kt_aug_sample(const kt_aug_config *c, uint64_t key, int src_w, int src_h, kt_aug_params *p);

/* Per-thread working memory: decoder, decoded image, resizer and two output-size byte buffers.
 * Everything grows to the largest size seen and is then reused. */
typedef struct kt_aug_ctx {
    kt_decoder dec;
    kt_image img;        /* decoded source */
    kt_resizer rz;
    uint8_t *a, *b;      /* (out_h, out_w, 3) or the eval pre-crop size; ping-pong buffers */
    size_t a_cap, b_cap; /* bytes */
} kt_aug_ctx;

kt_status kt_aug_ctx_init(kt_aug_ctx *x, kt_err *err);
void kt_aug_ctx_free(kt_aug_ctx *x);

/* Decodes JPEG/PNG bytes and writes the transformed, normalised image to dst (out_h, out_w, 3).
 * key selects the random draws (ignored for eval). */
kt_status kt_aug_run(kt_aug_ctx *x, const kt_aug_config *c, uint64_t key, const uint8_t *data, size_t len,
                     float *dst, kt_err *err);
/* Frees the context's buffers over 64 MB (a giant image's), including a file read through its
 * decoder (kt_decoder_read_file); kt_aug_run does this itself except for the file. */
void kt_aug_ctx_trim(kt_aug_ctx *x);
/* The same from a file (errors name the path). */
kt_status kt_aug_run_file(kt_aug_ctx *x, const kt_aug_config *c, uint64_t key, const char *path, float *dst,
                          kt_err *err);
/* Transforms an already decoded image with given parameters (train) or the eval path, into
 * uint8 (out_h, out_w, 3) before normalisation; used by kt_aug_run and by tests. */
kt_status kt_aug_apply_u8(kt_aug_ctx *x, const kt_aug_config *c, const kt_aug_params *p, const kt_image *src,
                          uint8_t *dst, kt_err *err);
/* Colour jitter (train, when p says so) fused with normalisation: src (n_px, 3) -> dst (n_px, 3). */
void kt_aug_color_normalize(const kt_aug_config *c, const kt_aug_params *p, const uint8_t *src, int64_t n_px,
                            float *dst);

#endif
